"""Nox sessions: one environment per matrix cell (see repro/_matrix.py), built with uv.

    nox -l                          list the cells
    nox -s tests                    pytest in the `ci` cells (what .ci/run runs)
    nox -s "tests(newest-py311)"    one cell
    nox -s repro                    the verdict run in every default cell
    nox -t latest                   sessions of cells tagged `latest`
    nox -s bisect -- --package jax --good 0.4.30 --bad 0.4.35 --scenario no_params
                                    `repro bisect` (builds its own envs per probed version)

Sessions run with python=False: the env is built by repro._envs (uv + --compile-bytecode,
virtualenv fallback, interpreters from pyenv), the same builder bisect uses. This file
and everything it imports run without JAX.
"""

import os
import sys

import nox

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from repro._envs import build_env, find_interpreter  # noqa: E402
from repro._matrix import CELLS  # noqa: E402

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = False

ENV_ROOT = os.path.join(".nox", "cells")


def _params(tag=None):
    return [nox.param(c, id=c.id, tags=list(c.tags)) for c in CELLS if tag is None or tag in c.tags]


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
@nox.parametrize("cell", _params("ci"))
def tests(session, cell):
    """pytest in a `ci` cell; arguments after -- go to pytest."""
    python = cell_env(session, cell)
    session.run(python, "-m", "pytest", *session.posargs, env={"REPRO_CELL": cell.id})


@nox.session(python=False)
@nox.parametrize("cell", _params("default"))
def repro(session, cell):
    """The verdict run in a cell; writes results/<cell>.json. Arguments after -- go to repro."""
    python = cell_env(session, cell)
    os.makedirs("results", exist_ok=True)
    session.run(python, "-m", "repro", "--output", os.path.join("results", f"{cell.id}.json"), *session.posargs)


@nox.session(python=False)
def bisect(session):
    """`python -m repro bisect` with the arguments after --; it builds and caches its own envs."""
    if not session.posargs:
        session.error("usage: nox -s bisect -- --package jax --good 0.4.30 --bad 0.4.35 --scenario no_params")
    session.run(sys.executable, "-m", "repro", "bisect", *session.posargs, external=True)
