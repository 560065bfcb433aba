"""The pytest plugin (entry point `pytest11`): a project checks its own models with L-BFGS in
its own test suite. Host side: loading it imports no JAX (`repro.check` is imported by the
fixture, when a test uses it).

- `lbfgs_check(model, loss, **options)`: a fixture; runs `repro.check` on the test's module and
  loss and fails the test (no traceback, the verdict table and a paste-ready hint) when
  something is not as it should be; returns the CheckReport otherwise. `options` are
  `repro.check`'s, plus `uses`.
- `@pytest.mark.lbfgs(uses=[...], scenarios=[...], modes=[...])`: the call patterns (scenario
  names) the project relies on. The check then runs only those (fast), and the test fails
  unless each one works: finishes and matches L-BFGS on the flat vector of the module's float
  arrays (`Outcome.agrees`). That is WORKAROUND-OK, and also FIXED-UPSTREAM (the measurements
  expected this pattern to fail with these versions and it works: no concern of a project that
  uses it) or UNKNOWN (nothing measured for these versions yet, but it computes what L-BFGS
  computes). Any other scenario checked must be as expected (REPRODUCED or WORKAROUND-OK).
- Options: `--lbfgs-modes`, `--lbfgs-scenarios` (comma-separated; the defaults of tests that
  do not say), `--lbfgs-baseline-dir DIR` (one baseline file per test node id under DIR, so each
  module is also compared with its own earlier result: repro/_baseline.py) and
  `--lbfgs-update-baseline` (write them again).
Precedence: the fixture's arguments, then the marker, then the command line.
"""

import hashlib
import itertools
import os
import re

import pytest

from ._catalogue import MODES, check_modes, check_scenarios
from ._errors import UsageError
from ._outcome import Outcome, Verdict
from ._versions import SCRIPT

MARKER = ("lbfgs(uses=[...], scenarios=[...], modes=[...]): the L-BFGS call patterns (lbfgs-equinox-repro "
          "scenarios) this test's project uses, and the modes (eager, jit); the `lbfgs_check` fixture checks only "
          "those and fails unless each used pattern works")
MARKER_ARGUMENTS = ("uses", "scenarios", "modes")

# (flag, pytest option name, addoption keywords): the command-line options, one prefix.
OPTIONS = (
    ("--lbfgs-modes", "lbfgs_modes", dict(metavar="MODES", help=f"modes to check, comma-separated ({', '.join(MODES)}; "
                                                                "default: repro.check's) where a test does not say")),
    ("--lbfgs-scenarios", "lbfgs_scenarios", dict(metavar="NAMES", help="scenarios to check, comma-separated, or "
                                                                        "'all' (default) where a test does not say")),
    ("--lbfgs-baseline-dir", "lbfgs_baseline_dir", dict(metavar="DIR", help="compare each module with its own "
                                                                            "earlier result: one baseline file per "
                                                                            "test node id under DIR (relative to the "
                                                                            "rootdir), written the first time")),
    ("--lbfgs-update-baseline", "lbfgs_update_baseline", dict(action="store_true", help="write the baseline files "
                                                                                        "again instead of comparing")),
)


def pytest_addoption(parser):
    group = parser.getgroup("lbfgs", "L-BFGS on Equinox modules (lbfgs-equinox-repro)")
    for flag, dest, kwargs in OPTIONS:
        group.addoption(flag, dest=dest, **kwargs)


def pytest_configure(config):
    config.addinivalue_line("markers", MARKER)
    for flag, dest, _ in OPTIONS[:2]:
        try:
            _names(config.getoption(dest), flag)
        except UsageError as error:
            raise pytest.UsageError(str(error)) from None


def _names(text, flag):
    """A comma-separated option as a list of checked names; None when not given (or 'all')."""
    if not text:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return None
    try:
        return check_modes(names) if flag == "--lbfgs-modes" else check_scenarios(names, allow_self_tests=False)
    except UsageError as error:
        raise UsageError(f"{flag}: {error}") from None


@pytest.fixture
def lbfgs_check(request):
    """`lbfgs_check(model, loss, **options)`: check `optax.lbfgs()` call patterns on this module
    (`repro.check`; `options` are its keywords, plus `uses`) and fail the test with the verdict
    table when a used pattern does not work, a verdict is not as expected, or (with a baseline)
    the module's outcomes changed. Returns the CheckReport."""
    calls = itertools.count(1)

    def run(model, loss, **options):
        return _check(request, next(calls), model, loss, options)

    return run


def _check(request, call, model, loss, options):
    try:
        settings = _settings(request, call, options)
    except UsageError as error:
        pytest.fail(f"lbfgs_check: {error}", pytrace=False)
    import repro  # JAX is imported here, by the first check

    uses = settings.pop("uses")
    try:
        report = repro.check(model, loss, **settings, **options)
    except UsageError as error:
        pytest.fail(f"lbfgs_check: {error}", pytrace=False)
    broken = [r for r in report.results if r["scenario"] in uses and not _works(r)]
    unexpected = [r for r in report.results if r["scenario"] not in uses and not _as_expected(r)]
    if broken or unexpected or report.changes:
        pytest.fail(_failure(request, report, broken, unexpected, settings), pytrace=False)
    return report


def _works(row):
    """A used pattern works when it finished and matched the flat-vector reference, whatever
    the measurements expected for these versions."""
    return Outcome.from_dict(row["outcome"]).agrees()


def _as_expected(row):
    from ._results import as_expected

    return as_expected(row["verdict"])


def _settings(request, call, options):
    """What to check: `uses`, scenarios, modes, baseline and update_baseline, from the fixture's
    arguments (taken out of `options`), else the marker, else the command line."""
    config = request.config
    marker = request.node.get_closest_marker("lbfgs")
    marked = dict(marker.kwargs) if marker else {}
    if marker and (marker.args or set(marked) - set(MARKER_ARGUMENTS)):
        raise UsageError(f"@pytest.mark.lbfgs takes only the keywords {', '.join(MARKER_ARGUMENTS)}")
    given = {key: options.pop(key, None) for key in MARKER_ARGUMENTS}
    pick = {key: marked.get(key) if given[key] is None else given[key] for key in MARKER_ARGUMENTS}
    uses = check_scenarios(list(pick["uses"] or []), allow_self_tests=False) if pick["uses"] else []
    scenarios = pick["scenarios"]
    if scenarios is None:
        scenarios = None if uses else _names(config.getoption("lbfgs_scenarios"), "--lbfgs-scenarios")
    modes = pick["modes"] or _names(config.getoption("lbfgs_modes"), "--lbfgs-modes")
    if uses and scenarios is not None:
        scenarios = list(dict.fromkeys([*scenarios, *uses]))
    baseline, update = options.pop("baseline", None), options.pop("update_baseline", None)
    folder = config.getoption("lbfgs_baseline_dir")
    if baseline is None and folder:
        baseline = baseline_path(os.path.join(str(config.rootpath), folder), request.node.nodeid, call)
    if update is None:  # the option rewrites the baselines in effect (none: nothing to rewrite)
        update = bool(config.getoption("lbfgs_update_baseline")) and baseline is not None
    return {"uses": uses, "scenarios": scenarios or (uses or None), "modes": modes, "baseline": baseline,
            "update_baseline": update}


def baseline_path(folder, nodeid, call=1):
    """The baseline file of a test's `call`-th check under `folder`: its node id made a file name
    (readable, and a short digest of the id so two ids never share a file)."""
    readable = re.sub(r"[^\w.-]+", "-", nodeid).strip("-")[:120]
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:8]
    return os.path.join(folder, f"{readable}-{digest}" + (f"-{call}" if call > 1 else "") + ".json")


def _failure(request, report, broken, unexpected, settings):
    """The failure message: what is wrong, the verdict table (with the baseline's changes), and
    what to paste next."""
    lines = []
    if broken:
        lines.append("call patterns this project uses that do not work here:")
        lines += [_line(r) for r in broken]
    if unexpected:
        lines.append("verdicts not as expected:")
        lines += [_line(r) for r in unexpected]
    if report.changes:
        lines.append(f"changed against this module's baseline {report.baseline.path}:")
        lines += [f"  {change}" for change in report.changes]
    lines += ["", str(report), "", "hint:"]
    lines += _hints(request, broken, unexpected, report, settings)
    return "\n".join(lines)


def _line(row):
    """`  seed_fix [jit] REPRODUCED: what it did; what the verdict means.`"""
    try:
        meaning = " " + Verdict(row["verdict"]).meaning
    except ValueError:  # a verdict this version does not know
        meaning = ""
    return f"  {row['scenario']} [{row['mode']}] {row['verdict']}: {row['observed']};{meaning}"


def _hints(request, broken, unexpected, report, settings):
    hints = []
    if broken:
        modes = sorted({r["mode"] for r in broken})
        hints.append("  every call pattern on this module, to pick one that works here (in the test, or a Python "
                     f"shell with the same model and loss):\n    import repro; print(repro.check(model, loss, modes={modes!r}))")
    for r in broken + unexpected:
        hints.append(f"  an upstream bug report for {r['scenario']} [{r['mode']}] (standalone reproducer, built-in "
                     f"problem):\n    {SCRIPT} report --scenario {r['scenario']} --mode {r['mode']} "
                     f"--output {r['scenario']}-{r['mode']}.md")
    if report.changes:
        folder = request.config.getoption("lbfgs_baseline_dir")
        where = f" --lbfgs-baseline-dir={folder}" if folder else ""
        update = (f'    pytest "{request.node.nodeid}"{where} --lbfgs-update-baseline' if folder
                  else f"    lbfgs_check(model, loss, baseline={settings['baseline']!r}, update_baseline=True)")
        hints.append(f"  if the change is expected, record this module's outcomes again:\n{update}")
    return hints
