"""The survey's observations, as data: one JSON file per surveyed cell. No JAX.

`repro survey` writes `<data folder>/<cell>.json` (from a checkout, by default, the packaged
`repro/_data/observations/`); the expectations table (`repro/_expectations.py`) is derived
from the packaged files and nothing else. A file holds where
and how it was measured (date, command, Python, every installed package), the leaf kinds
of each corpus module as that env computed them, and one compact observation per (module,
scenario, mode): its status and failure signature, iterations, and how it compared with the
flat-vector reference.
"""

import dataclasses
import glob
import json
import os
from typing import Optional

from ._outcome import Outcome, signature
from ._versions import TRACKED as TRACKED  # re-exported: what expectations are keyed by

SCHEMA = 2  # 2: leaf lists in contents, no status in `family`, provenance (tool, commit, cache)
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_data", "observations")
PROBLEM_MODULE = "problem"  # the module a user's problem file is recorded as (`survey --problem`)


@dataclasses.dataclass(frozen=True)
class Observation:
    """What one corpus module did in one scenario and mode, in one cell."""

    module: str
    scenario: str
    mode: str
    status: str  # converged | not_converged | wrong_result | error | crash | timeout
    exc_type: Optional[str] = None
    family: Optional[str] = None
    phase: Optional[str] = None
    library: Optional[str] = None
    message: Optional[str] = None  # first line, shortened
    iterations: Optional[int] = None
    agrees: Optional[bool] = None  # finished and matched the flat-vector reference
    departed_at: Optional[int] = None
    diverged_at: Optional[int] = None  # finished, and diverged where the reference diverges
    margin: Optional[float] = None  # the closest call: largest deviation / what was allowed (> 1: departed)
    horizon: Optional[int] = None  # where rounding alone could move the iterates 100%: compared up to there
    seconds: Optional[float] = None

    @classmethod
    def of(cls, module, outcome: Outcome):
        ref = outcome.reference or {}
        return cls(module, outcome.scenario, outcome.mode, outcome.status, outcome.exc_type, outcome.family,
                   outcome.phase, outcome.library, (outcome.message or "")[:160] or None, outcome.iterations,
                   outcome.agrees() if outcome.status in ("converged", "not_converged") else None,
                   ref.get("departed_at"), ref.get("diverged_at"),
                   float(f"{ref['margin']:.3g}") if ref.get("margin") is not None else None, ref.get("horizon"),
                   outcome.seconds)

    def signature(self):
        """`_outcome.signature`, and a finished run that disagreed with its reference marked `?`."""
        disagreed = self.status in ("converged", "not_converged") and self.agrees is False
        return signature(self.status, self.exc_type, self.family, self.phase, self.library) + ("?" if disagreed else "")

    def to_dict(self):
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data):
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


@dataclasses.dataclass
class ObservationFile:
    """Everything one surveyed cell measured (one file)."""

    key: str  # e.g. jax-0.4.30, optax-0.2.5, equinox-0.12.2, matrix-floor-py311
    series: str  # jax | optax | equinox | matrix
    python: str  # the requested Python (3.11)
    requirements: list  # as given to the installer
    exclude_newer: Optional[str] = None  # the date the env was resolved as of (None: today)
    plan: str = ""  # the planned inputs (repro._survey.CellPlan.plan_key): same plan, same cell
    status: str = "ok"  # ok | unresolvable | import-failed | skipped
    reason: str = ""
    installed: dict = dataclasses.field(default_factory=dict)  # every installed distribution -> version
    python_version: Optional[str] = None  # the interpreter's full version
    contents: dict = dataclasses.field(default_factory=dict)  # module -> content flags
    observations: list = dataclasses.field(default_factory=list)  # Observation
    measured: Optional[str] = None  # UTC date and time
    command: Optional[str] = None
    seconds: dict = dataclasses.field(default_factory=dict)  # build / jit / eager wall seconds
    attempts: list = dataclasses.field(default_factory=list)  # earlier installs that failed, with why
    tool: str = ""  # this harness's distribution and version ("lbfgs-equinox-repro 0.1.0")
    commit: Optional[str] = None  # its checkout's commit ("+dirty": uncommitted changes); None: installed
    # Whether JAX's persistent compilation cache was on: never for the survey (it computed wrong
    # results on some jaxlib releases, repro._policy.CACHE_UNSAFE_JAXLIB): a fact must not rest on it.
    compilation_cache: bool = False
    # The XLA_FLAGS its workers compiled with (repro._policy.FAST_COMPILE_FLAGS, narrowed to
    # what that XLA knows).
    xla_flags: Optional[str] = None
    # mode -> a cell measured earlier in the same run whose env was identical (same Python,
    # every installed distribution at the same version): its observations are this cell's.
    same_env_as: dict = dataclasses.field(default_factory=dict)
    # `survey --problem`: the problem file measured instead of the built-in problem and the corpus
    # (repro._survey.Problem.record: file, path, digest, source); None for the corpus survey.
    problem: Optional[dict] = None
    # mode -> the run that measured that mode's observations ({"commit", "command", "measured"}),
    # when a later run added a mode to the file (repro._survey._merge): `commit` and `command`
    # above are the last run's. Empty (left out of the file) when one run measured every mode.
    by_mode: dict = dataclasses.field(default_factory=dict)
    schema: int = SCHEMA

    @property
    def versions(self):
        """The tracked packages as installed (what expectations are keyed by)."""
        return {name: self.installed.get(name) for name in TRACKED}

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["observations"] = [o.to_dict() for o in self.observations]
        if data["problem"] is None:  # the corpus survey's files stay as they were
            del data["problem"]
        if not data["by_mode"]:
            del data["by_mode"]
        return data

    @classmethod
    def from_dict(cls, data):
        fields = {f.name for f in dataclasses.fields(cls)}
        cell = cls(**{k: v for k, v in data.items() if k in fields})
        cell.observations = [Observation.from_dict(o) for o in data.get("observations", [])]
        return cell


def path_of(key, directory=DATA_DIR):
    return os.path.join(directory, f"{key}.json")


def load(directory=DATA_DIR):
    """Every cell file in `directory` (sorted by key); unreadable files are skipped."""
    cells = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        try:
            with open(path, encoding="utf-8") as f:
                cells.append(ObservationFile.from_dict(json.load(f)))
        except (OSError, ValueError, TypeError):
            continue
    return cells
