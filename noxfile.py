"""Nox sessions: one environment per matrix cell (see repro/_matrix.py), built with uv.

    nox -l                             list the sessions (one per cell) with their tags
    nox -s tests                       pytest in the `ci` cells (what ./go test and .ci/run run)
    nox -s "tests(newest-py311)"       pytest in one cell
    nox -t default                     verdicts in every default cell, then the matrix report
    nox -s "repro(optax026-py311)"     the verdict run in one cell (writes results/cells/<id>.json)
    nox -s repro matrix                every cell (crash, broken, missing and latest too), then the report
    nox -t demo                        the crash, unresolvable and missing-interpreter cells, then the report
    nox -s matrix                      aggregate results/cells/*.json into results/matrix.{md,json}
    nox -s bisect -- --package jax --good 0.4.30 --bad 0.4.35 --scenario no_params
                                       `repro bisect` (builds its own envs per probed version)

Sessions run with python=False: the env is built by repro._envs (uv + --compile-bytecode,
virtualenv fallback, interpreters from pyenv or PATH), the same builder bisect uses. Each
session is a thin call to one helper (repro._aggregate.run_cell). This file and everything
it imports run without JAX.
"""

import os
import sys

import nox

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from repro._aggregate import aggregate, render_markdown, run_cell  # noqa: E402
from repro._envs import build_env, find_interpreter  # noqa: E402
from repro._matrix import CELLS, TAGS  # noqa: E402

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = False

ENV_ROOT = os.path.join(".nox", "cells")


def _params(tag=None, session_tags=None):
    return [nox.param(c, id=c.id, tags=list(session_tags if session_tags is not None else c.tags))
            for c in CELLS if tag is None or tag in c.tags]


def cell_env(session, cell):
    """Build (or reuse) the cell's env; skip the session with the reason if it cannot be."""
    interpreter = find_interpreter(cell.python)
    if interpreter is None:
        session.skip(f"SKIPPED {cell.id}: no Python {cell.python} interpreter on this machine")
    result = build_env(os.path.join(ENV_ROOT, cell.id), interpreter, cell.requirements())
    if not result.ok:
        session.error(f"UNRESOLVABLE {cell.id}: {result.reason}")
    how = "reused" if result.reused else f"built in {result.seconds:.1f} s"
    session.log(f"env {cell.id} {how}: {result.path}")
    session.run(result.python, "-c", "from repro._versions import installed_versions as v, header; print(header(v()))")
    return result.python


@nox.session(python=False)
@nox.parametrize("cell", _params("ci", session_tags=["tests"]))
def tests(session, cell):
    """pytest in a `ci` cell; arguments after -- go to pytest."""
    python = cell_env(session, cell)
    session.run(python, "-m", "pytest", *session.posargs, env={"REPRO_CELL": cell.id})


@nox.session(python=False)
@nox.parametrize("cell", _params())
def repro(session, cell):
    """Verdicts in this cell -> results/cells/<cell>.json; arguments after -- go to `repro run`."""
    record = run_cell(cell, session.posargs, env_root=ENV_ROOT, log=session.log)
    if record["status"] == "skipped":
        session.skip(f"SKIPPED {cell.id}: {record['reason']}")
    if record["status"] != "ok":
        session.error(f"{record['status'].upper()} {cell.id}: {record['reason']}")
    if not record["as_expected"]:
        bad = [r for r in record["results"] if r["verdict"] not in ("REPRODUCED", "WORKAROUND-OK")]
        session.error(f"{cell.id}: {len(bad)} of {len(record['results'])} verdicts not as expected: "
                      + ", ".join(f"{r['scenario']}[{r['mode']}] {r['verdict']}" for r in bad))


@nox.session(python=False, tags=sorted(TAGS))
def matrix(session):
    """Aggregate results/cells/*.json into results/matrix.md and results/matrix.json."""
    if not os.path.isdir(os.path.join("results", "cells")):
        session.error("no cell results: run `nox -t default` or one `repro(<cell>)` session first")
    report = aggregate("results")
    print(render_markdown(report))
    session.log("written: results/matrix.md, results/matrix.json")


@nox.session(python=False)
def bisect(session):
    """`python -m repro bisect` with the arguments after --; it builds and caches its own envs."""
    if not session.posargs:
        session.error("usage: nox -s bisect -- --package jax --good 0.4.30 --bad 0.4.35 --scenario no_params")
    session.run(sys.executable, "-m", "repro", "bisect", *session.posargs, external=True)
