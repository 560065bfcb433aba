"""The command-line options of every `repro` command, parsed into typed values. No JAX.

Each `*_options(argv)` parses and checks what can be checked without the network or an
environment, and returns a frozen dataclass; library code takes those values, never argv.
Bad input is a UsageError (one line, exit 2), never argparse's usage dump. The noxfile
parses the arguments after `--` with `run_options`, the same parser as `repro run`.

Imports only the bottom of the host side (errors, the catalogue, the matrix table, the
tracked packages).
"""

import argparse
import dataclasses
import datetime
import os
from typing import Optional

from ._catalogue import MODES, SCENARIOS, check_modes, check_scenarios
from ._errors import UsageError
from ._matrix import RESULTS
from ._versions import TRACKED


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit 2 (no usage dump)."""

    def error(self, message):
        raise UsageError(message)


def check_writable(path):
    """UsageError unless `path` can be written (a file in an existing, writable folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: {folder} is not a writable directory")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a directory")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"cannot write {path}: permission denied")


def _positive(value, flag):
    if value <= 0:
        raise UsageError(f"{flag} must be > 0")
    return value


def _scenario_help(what="scenario to run (repeatable; default all)"):
    return f"{what}: {', '.join(SCENARIOS)}"


# --- repro run (and the arguments after `--` of a matrix cell) --------------------------------

@dataclasses.dataclass(frozen=True)
class RunOptions:
    scenarios: tuple = tuple(SCENARIOS)
    modes: tuple = MODES
    timeout: float = 300.0  # seconds per scenario
    jobs: int = 2  # scenario processes at once
    batch: bool = False
    json: bool = False
    output: Optional[str] = None
    argv: tuple = ()  # the arguments as given (a cell records them)


def run_parser(prog="repro run"):
    p = Parser(prog=prog, description="Run the scenarios in this environment, in child processes: one per "
                                      "scenario, or a few batches of them with --batch.")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME", help=_scenario_help())
    p.add_argument("--mode", action="append", default=[], choices=MODES,
                   help="eager or jit (repeatable; default both)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--output", metavar="FILE", help="also write the JSON results to FILE (atomically)")
    p.add_argument("--timeout", type=float, default=RunOptions.timeout,
                   help=f"seconds per scenario (default {RunOptions.timeout:g})")
    p.add_argument("--jobs", type=int, default=RunOptions.jobs,
                   help=f"processes at once (default {RunOptions.jobs})")
    p.add_argument("--batch", action="store_true",
                   help="run many scenarios per process, --jobs batches (faster: one JAX import each); "
                        "a crash or hang still costs only the scenario it hit: a fresh process resumes "
                        "with the rest")
    return p


def run_options(argv, prog="repro run"):
    argv = tuple(argv)
    args = run_parser(prog).parse_args(list(argv))
    if args.timeout <= 0 or args.jobs < 1:
        raise UsageError("--timeout must be > 0 and --jobs >= 1")
    if args.output:
        check_writable(args.output)
    return RunOptions(tuple(check_scenarios(args.scenario)), tuple(check_modes(args.mode)), args.timeout,
                      args.jobs, args.batch, args.json, args.output, argv)


# --- repro bisect / repro diff ----------------------------------------------------------------

def parse_pins(pins, label="--pin"):
    """["optax==0.2.3", ...] -> {"optax": "0.2.3"} (whether each is released is checked later)."""
    out = {}
    for pin in pins:
        name, sep, version = pin.partition("==")
        name, version = name.strip().lower(), version.strip()
        if not sep or not name or not version:
            raise UsageError(f"{label} {pin!r}: expected NAME==VERSION")
        out[name] = version
    return out


def parse_day(text, label="--by-date"):
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise UsageError(f"{label}: {text!r} is not a date (YYYY-MM-DD)") from None


def parse_date_range(text):
    start, sep, end = (text or "").partition("..")
    if not sep:
        raise UsageError(f"--by-date {text!r}: expected START..END, e.g. 2024-06-01..2025-06-01")
    start, end = parse_day(start.strip()), parse_day(end.strip())
    if start == end:
        raise UsageError(f"--by-date {text!r}: start and end are the same day")
    if start > end:
        raise UsageError(f"--by-date {text!r}: start is after end")
    return start, end


@dataclasses.dataclass(frozen=True)
class BisectOptions:
    scenarios: tuple
    modes: tuple
    pins: dict  # name -> version, kept fixed
    package: Optional[str] = None  # None with by_date
    good: Optional[str] = None
    bad: Optional[str] = None
    by_date: Optional[tuple] = None  # (start day, end day)
    python: str = "3.11"
    timeout: float = 300.0
    every: bool = False
    prereleases: bool = False
    yanked: bool = False
    json: bool = False
    quiet: bool = False

    @property
    def pairs(self):
        return [(s, m) for s in self.scenarios for m in self.modes]


def bisect_parser():
    p = Parser(prog="repro bisect",
               description="Find the first released version whose outcome signature differs from the good end's.")
    p.add_argument("--package", help="the package to move: any name on the package index (the expectations track "
                                     f"{', '.join(TRACKED)}); not with --by-date")
    p.add_argument("--good", help="older version (the reference signature)")
    p.add_argument("--bad", help="newer version")
    p.add_argument("--by-date", metavar="START..END",
                   help=f"move {', '.join(TRACKED)} together (all that is not --pin'ned): "
                        "uv --exclude-newer at each day one of them released")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help=_scenario_help("scenario(s) to compare (repeatable; 'all' for every one)"))
    p.add_argument("--mode", action="append", default=[], choices=MODES, help="eager or jit (repeatable; default jit)")
    p.add_argument("--pin", action="append", default=[], metavar="NAME==VERSION",
                   help="keep another package at a version (repeatable); jaxlib follows a pinned jax")
    p.add_argument("--python", default=BisectOptions.python,
                   help=f"Python version of the probed envs (default {BisectOptions.python})")
    p.add_argument("--every", action="store_true", help="probe every candidate and list every change (a sweep)")
    p.add_argument("--pre", action="store_true", help="include pre-releases")
    p.add_argument("--yanked", action="store_true", help="include yanked releases")
    p.add_argument("--timeout", type=float, default=BisectOptions.timeout,
                   help=f"seconds per scenario (default {BisectOptions.timeout:g})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def bisect_options(argv):
    args = bisect_parser().parse_args(list(argv))
    names = list(SCENARIOS) if args.scenario == ["all"] else args.scenario
    if not names:
        raise UsageError("--scenario is required (a name, or 'all')")
    scenarios = tuple(check_scenarios(names, allow_self_tests=False))
    modes = tuple(check_modes(args.mode or ["jit"]))
    _positive(args.timeout, "--timeout")
    pins = parse_pins(args.pin)
    common = dict(scenarios=scenarios, modes=modes, pins=pins, python=args.python, timeout=args.timeout,
                  every=args.every, prereleases=args.pre, yanked=args.yanked, json=args.json, quiet=args.quiet)
    if args.by_date:
        if args.package or args.good or args.bad:
            raise UsageError("--by-date replaces --package/--good/--bad")
        return BisectOptions(by_date=parse_date_range(args.by_date), **common)
    if not (args.package and args.good and args.bad):
        raise UsageError("give --package, --good and --bad (or --by-date START..END)")
    package = args.package.lower()
    if package in pins:
        raise UsageError(f"--pin {package}==… conflicts with bisecting {package}")
    return BisectOptions(package=package, good=args.good, bad=args.bad, **common)


@dataclasses.dataclass(frozen=True)
class DiffOptions:
    a: dict  # name -> version
    b: dict
    scenarios: tuple
    modes: tuple
    python: str = "3.11"
    timeout: float = 300.0
    json: bool = False

    @property
    def pairs(self):
        return [(s, m) for s in self.scenarios for m in self.modes]


def diff_options(argv):
    p = Parser(prog="repro diff", description="Run every scenario under two version sets; print what differs.")
    p.add_argument("--a", required=True, metavar="PINS", help="e.g. jax==0.4.30,optax==0.2.3,equinox==0.11.4")
    p.add_argument("--b", required=True, metavar="PINS", help="e.g. jax==0.4.35,optax==0.2.4,equinox==0.11.10")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME", help="default: all")
    p.add_argument("--mode", action="append", default=[], choices=MODES, help="default: both")
    p.add_argument("--python", default=DiffOptions.python, help=f"Python of both envs (default {DiffOptions.python})")
    p.add_argument("--timeout", type=float, default=DiffOptions.timeout)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(list(argv))
    scenarios = check_scenarios([] if args.scenario == ["all"] else args.scenario, allow_self_tests=False)
    sides = {}
    for label, text in (("a", args.a), ("b", args.b)):
        sides[label] = parse_pins([p for p in text.split(",") if p.strip()], label=f"--{label}")
        if not sides[label]:
            raise UsageError(f"--{label}: no pins given")
    return DiffOptions(sides["a"], sides["b"], tuple(scenarios), tuple(check_modes(args.mode)), args.python,
                       _positive(args.timeout, "--timeout"), args.json)


# --- repro report / repro matrix --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReportOptions:
    scenario: str
    mode: str = "eager"
    format: str = "md"
    output: Optional[str] = None
    timeout: float = 300.0


def report_options(argv):
    p = Parser(prog="repro report", description="A paste-ready upstream bug report for one scenario: "
               "runs its standalone reproducer here, in a fresh process.")
    p.add_argument("--scenario", required=True, metavar="NAME", help=f"one of: {', '.join(SCENARIOS)}")
    p.add_argument("--mode", default=ReportOptions.mode, choices=MODES, help="eager (default) or jit")
    p.add_argument("--format", default=ReportOptions.format, choices=("md", "json"), help="md (default) or json")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--timeout", type=float, default=ReportOptions.timeout,
                   help=f"seconds for the script (default {ReportOptions.timeout:g})")
    args = p.parse_args(list(argv))
    (scenario,) = check_scenarios([args.scenario], allow_self_tests=False)
    _positive(args.timeout, "--timeout")
    if args.output:
        check_writable(args.output)
    return ReportOptions(scenario, args.mode, args.format, args.output, args.timeout)


@dataclasses.dataclass(frozen=True)
class MatrixOptions:
    results: str = RESULTS
    json: bool = False
    quiet: bool = False


def matrix_options(argv):
    p = Parser(prog="repro matrix",
               description="Collect results/cells/<cell>.json (written by `nox -s repro`) into one "
                           "Markdown table (results/matrix.md) and one JSON file (results/matrix.json).")
    p.add_argument("--results", default=MatrixOptions.results, metavar="DIR",
                   help=f"results folder (default {MatrixOptions.results}/)")
    p.add_argument("--json", action="store_true", help="print matrix.json instead of the Markdown")
    p.add_argument("--quiet", action="store_true", help="write the files, print nothing")
    args = p.parse_args(list(argv))
    return MatrixOptions(args.results, args.json, args.quiet)


# --- repro survey ------------------------------------------------------------------------------

SURVEY_SERIES = ("jax", "optax", "equinox", "matrix")


@dataclasses.dataclass(frozen=True)
class SurveyOptions:
    series: tuple = SURVEY_SERIES
    only: tuple = ()  # cell keys; empty: every planned cell
    modes: tuple = MODES
    new: bool = False  # only releases not in the data yet, then what changed
    force: bool = False  # measure again cells already in the data
    keep_envs: bool = False
    dry_run: bool = False  # print the plan, measure nothing
    data: Optional[str] = None  # observation folder (default: the package's own)
    timeout: float = 600.0
    heatmap: bool = False  # (re)draw the heat map from the data, measure nothing
    json: bool = False


def survey_options(argv):
    p = Parser(prog="repro survey",
               description="Measure every JAX, Optax and Equinox release (cells picked from the package index) "
                           "into repro/_data/observations/; the expectations are derived from those files.")
    p.add_argument("--series", action="append", default=[], choices=SURVEY_SERIES,
                   help="which cells (repeatable; default all): one per jax, optax or equinox release, or the "
                        "default matrix cells")
    p.add_argument("--only", action="append", default=[], metavar="CELL", help="just this cell (e.g. jax-0.6.2)")
    p.add_argument("--mode", action="append", default=[], choices=MODES, help="eager or jit (default both)")
    p.add_argument("--new", action="store_true",
                   help="only releases not in the data yet; print what changed against the release before")
    p.add_argument("--force", action="store_true", help="measure cells already in the data again")
    p.add_argument("--keep-envs", action="store_true", help="keep each cell's env (.repro-cache/survey/)")
    p.add_argument("--dry-run", action="store_true", help="print the planned cells and what is pending")
    p.add_argument("--data", metavar="DIR", help="observation folder (default: repro/_data/observations)")
    p.add_argument("--timeout", type=float, default=SurveyOptions.timeout, help="seconds per scenario")
    p.add_argument("--heatmap", action="store_true", help="only draw docs/survey.{svg,html} from the data")
    p.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    args = p.parse_args(list(argv))
    _positive(args.timeout, "--timeout")
    if args.data and not os.path.isdir(args.data):
        raise UsageError(f"--data {args.data}: not a directory")
    return SurveyOptions(tuple(dict.fromkeys(args.series)) or SURVEY_SERIES, tuple(args.only),
                         tuple(check_modes(args.mode)), args.new, args.force, args.keep_envs, args.dry_run,
                         args.data, args.timeout, args.heatmap, args.json)
