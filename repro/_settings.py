"""Every `REPRO_*` environment setting: its default and what it does, read in one place. No JAX.

Code asks `setting(NAME)` (or `setting(NAME, environ)` for an environment about to be handed
to a child) instead of reading `os.environ` itself, so this table is the whole list; the table
in docs/architecture.md is checked against it (tests/test_docs.py).
"""

import dataclasses
import os
from typing import Mapping, Optional


@dataclasses.dataclass(frozen=True)
class Setting:
    default: str
    meaning: str


SETTINGS = {
    "REPRO_CACHE_DIR": Setting("", "the cache folder (environments, clones, wheels, survey envs); `--cache-dir` sets it "
                                   "for one run; empty: a checkout's `.repro-cache/`, else the user cache directory"),
    "REPRO_CHECKOUTS": Setting("", "`optax=DIR,equinox=DIR`: a cell pinned to a `git+` source (the dev cell, or `--pin "
                                   "NAME @ git+URL`) installs these local checkouts instead"),
    "REPRO_INDEX_URL": Setting("https://pypi.org/pypi", "the package index's JSON API (a mirror, or the test suite's "
                                                        "recorded index)"),
    "REPRO_WORKERS": Setting("", "scenario worker processes in a pool; empty: one per core"),
    "REPRO_WORKER_MAX_RSS_MB": Setting("", "a worker above this resident memory is replaced; empty: a third of the "
                                           "machine's memory shared by the workers, at most 4 GiB each"),
    "REPRO_FAST_COMPILE": Setting("1", "`0`: workers keep XLA's default flags instead of the fast-compile flags"),
    "REPRO_JAX_CACHE": Setting("1", "`0`: no persistent XLA compilation cache for workers and tests (never used "
                                    "where it computed wrong results, nor by the survey)"),
    "REPRO_ORACLE": Setting("1", "`0`: skip the flat-vector reference comparison (benchmarks only: a wrong result "
                                 "then cannot be told from a right one)"),
    "REPRO_REFERENCE_STORE": Setting("", "set by a worker pool for its workers: the folder where reference records "
                                         "are shared"),
    "REPRO_CELL": Setting("", "set by nox for the tests: the matrix cell they run in"),
    "REPRO_HOST_TESTS": Setting("1", "`0`: deselect host-only tests (nox sets it in every ci cell but the first)"),
    "REPRO_HYPOTHESIS_PROFILE": Setting("ci", "the Hypothesis profile of the property tests: `ci`, `dev` or "
                                              "`thorough`"),
}


def setting(name: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """The value of setting `name` in `environ` (default: this process's environment), else its
    default. A name not in SETTINGS is a programming error (KeyError)."""
    default = SETTINGS[name].default
    return (os.environ if environ is None else environ).get(name, default)


def enabled(name: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """A `0`/`1` switch: anything but `0` is on."""
    return setting(name, environ) != "0"
