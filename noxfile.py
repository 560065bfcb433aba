"""Nox sessions: one environment per matrix cell (see repro/_matrix.py), built with uv.

    nox -l                             list the sessions (one per cell) with their tags
    nox -s ci                          pytest in every `ci` cell at once (what ./go test and .ci/run run):
                                       one `tests(<cell>)` session per cell, side by side, each line of
                                       output prefixed with its cell
    nox -s tests                       the same, one cell after the other; each on every core
                                       (pytest-xdist); host-only tests in the first ci cell only
    nox -s "tests(newest-py311)"       pytest in one cell
    nox -s nightly                     the thorough Hypothesis profile (400 examples) in the `ci` cells
    nox -t default                     verdicts in every default cell, then the matrix report
    nox -s "repro(optax026-py311)"     the verdict run in one cell (writes results/cells/<id>.json)
    nox -s repro matrix                every cell (crash, broken, missing and latest too), then the report
    nox -t demo                        the crash, unresolvable and missing-interpreter cells, then the report
    nox -t dev                         the nightly check: newest JAX, Optax and Equinox main (REPRO_CHECKOUTS:
                                       "optax=DIR,equinox=DIR" installs local checkouts instead)
    nox -s "repro(newest-py311)" -- --pin "optax @ ~/optax"
                                       one cell with a local checkout of optax (a candidate patch)
    nox -s matrix                      `lbfgs-equinox-repro matrix`: results/cells/*.json into matrix.{md,json}, heatmap.md
    nox -s bisect -- --package jax --good 0.4.30 --bad 0.4.35 --scenario no_params
                                       `repro bisect` (builds its own envs per probed version)
    nox -s survey [-- --new]           `repro survey`: every release into repro/_data/observations/
    nox -s properties                  the property tests in every default cell (ci Hypothesis profile)

Sessions run with python=False: a cell's env is built by repro._cells.prepare_env
(repro._envs: uv, bytecode written lazily on first import, interpreters from pyenv or PATH),
the same builder bisect uses. `tests` prepares the env and runs pytest in it; `repro`
parses the arguments after `--` with `repro run`'s parser (bad ones stop the session before
anything is built or written) and calls repro._cells.run_cell; `matrix` calls the CLI's
`lbfgs-equinox-repro matrix` (repro._cli.main). This file and everything it imports run without JAX.
"""

import os
import sys

import nox

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from repro._cli import main as cli_main  # noqa: E402
from repro._cells import effective_cell, prepare_env, run_cell  # noqa: E402
from repro._errors import EXIT_NOT_AS_EXPECTED, EXIT_OK, UsageError  # noqa: E402
from repro._matrix import CELLS, TAGS, cells_tagged  # noqa: E402
from repro._options import run_options  # noqa: E402
from repro._parallel import run_labelled  # noqa: E402
from repro._progress import Progress  # noqa: E402
from repro._results import as_expected  # noqa: E402

nox.options.sessions = ["ci"]
nox.options.error_on_missing_interpreters = False


def _params(tag=None, session_tags=None):
    return [nox.param(c, id=c.id, tags=list(session_tags if session_tags is not None else c.tags))
            for c in CELLS if tag is None or tag in c.tags]


def _stop(session, status, cell, reason):
    """End a session whose cell could not run: skipped is a skip, anything else an error."""
    message = f"{status.upper()} {cell.id}: {reason}"
    if status == "skipped":
        session.skip(message)
    session.error(message)


def _xdist(posargs):
    """pytest-xdist options for every core, unless the arguments already choose (-n, -p no:xdist)."""
    chosen = any(a in ("-n", "--numprocesses", "--dist") or a.startswith(("-n", "--numprocesses=", "--dist="))
                 for a in posargs) or "no:xdist" in posargs
    return [] if chosen else ["-n", str(os.cpu_count() or 1), "--dist", "loadgroup"]


def _pytest(session, cell, args, env=None):
    """Prepare the cell's env (or stop the session) and run pytest there on every core.

    Exit 5 (no test collected) fails the session, except in a later ci cell of a targeted run
    (arguments given) where every selected test is host-only and ran in the first cell."""
    prepared = prepare_env(cell, log=session.log)
    if prepared.status != "ok":
        _stop(session, prepared.status, cell, prepared.reason)
    session.run(prepared.python, "-c", "from repro._versions import installed_versions as v, header; print(header(v()))")
    first = cell.id == cells_tagged("ci")[0].id
    env = {"REPRO_CELL": cell.id, **(env or {})}
    if not first and "REPRO_HOST_TESTS" not in env:
        env["REPRO_HOST_TESTS"] = os.environ.get("REPRO_HOST_TESTS", "0")
    skipping_host = env.get("REPRO_HOST_TESTS", "1") == "0"
    if skipping_host:
        session.log(f"host-only tests (marked `host`) run in {cells_tagged('ci')[0].id}; "
                    "REPRO_HOST_TESTS=1 runs them here too")
    codes = [0, 5] if skipping_host and args else [0]
    session.run(prepared.python, "-m", "pytest", *_xdist(args), *args, env=env, success_codes=codes)


@nox.session(python=False)
@nox.parametrize("cell", _params("ci", session_tags=["tests"]))
def tests(session, cell):
    """pytest in a `ci` cell, on every core; arguments after -- go to pytest."""
    _pytest(session, cell, session.posargs)


@nox.session(python=False)
def ci(session):
    """Every `ci` cell's `tests` session at once (arguments after -- go to pytest in each).

    One cell's suite leaves the two cores idle about half the time, so side by side the two
    take little more than the longer alone; each line says which cell printed it."""
    noxfile = os.path.abspath(__file__)
    commands = [(cell.id, [sys.executable, "-m", "nox", "-f", noxfile, "-s", f"tests({cell.id})",
                           "--", *session.posargs]) for cell in cells_tagged("ci")]
    results = run_labelled(commands)
    for label, (code, seconds) in results.items():
        session.log(f"tests({label}): {'passed' if code == 0 else f'FAILED (exit {code})'} in {seconds / 60:.1f} min")
    failed = [label for label, (code, _) in results.items() if code != 0]
    if failed:
        session.error(f"tests failed in {', '.join(failed)}")


@nox.session(python=False)
@nox.parametrize("cell", _params("ci", session_tags=["nightly"]))
def nightly(session, cell):
    """The thorough Hypothesis profile (400 examples) on the property tests in a `ci` cell."""
    _pytest(session, cell, session.posargs or ["tests/test_properties.py"],
            env={"REPRO_HYPOTHESIS_PROFILE": "thorough", "REPRO_HOST_TESTS": "1"})


@nox.session(python=False)
@nox.parametrize("cell", _params())
def repro(session, cell):
    """Verdicts in this cell -> results/cells/<cell>.json; arguments after -- go to `repro run`."""
    try:
        options = run_options(session.posargs, prog=f"nox -s repro({cell.id}) --")
        if options.baseline:
            raise UsageError("--baseline compares one environment with a file: `lbfgs-equinox-repro run --baseline`, "
                             "not a matrix cell")
        effective_cell(cell, options.pins)  # REPRO_CHECKOUTS read and checked before anything is built
    except UsageError as error:
        session.error(f"bad arguments after --: {error} (nothing was built, run or written)")
    with Progress(len(options.scenarios) * len(options.modes), quiet=options.quiet) as progress:
        record = run_cell(cell, options, log=session.log, progress=progress)
    if record.status != "ok":
        _stop(session, record.status, cell, record.reason)
    if not record.as_expected:
        bad = [r for r in record.results if not as_expected(r["verdict"])]
        session.error(f"{cell.id}: {len(bad)} of {len(record.results)} verdicts not as expected: "
                      + ", ".join(f"{r['scenario']}[{r['mode']}] {r['verdict']}" for r in bad))


@nox.session(python=False, tags=sorted(TAGS))
def matrix(session):
    """`lbfgs-equinox-repro matrix`: results/cells/*.json into results/matrix.md, matrix.json and
    heatmap.md (arguments after -- go to it). A verdict not as expected already failed its cell's
    session, so here only a usage error fails."""
    code = cli_main(["matrix", *session.posargs])
    if code not in (EXIT_OK, EXIT_NOT_AS_EXPECTED):
        session.error(f"`matrix` exited {code}")


@nox.session(python=False)
def bisect(session):
    """`python -m repro bisect` with the arguments after --; it builds and caches its own envs."""
    if not session.posargs:
        session.error("usage: nox -s bisect -- --package jax --good 0.4.30 --bad 0.4.35 --scenario no_params")
    session.run(sys.executable, "-m", "repro", "bisect", *session.posargs, external=True)


@nox.session(python=False)
def survey(session):
    """`python -m repro survey` with the arguments after --; it builds its own env per cell."""
    session.run(sys.executable, "-m", "repro", "survey", *session.posargs, external=True)


@nox.session(python=False)
@nox.parametrize("cell", _params("default", session_tags=["properties"]))
def properties(session, cell):
    """The property tests in a default cell (their expectations come from the survey's data)."""
    prepared = prepare_env(cell, log=session.log)
    if prepared.status != "ok":
        _stop(session, prepared.status, cell, prepared.reason)
    session.run(prepared.python, "-m", "pytest", "tests/test_properties.py", *session.posargs,
                env={"REPRO_CELL": cell.id})
