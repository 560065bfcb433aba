"""The command-line options of every `repro` command, parsed into typed values. No JAX.

Each `*_options(argv)` parses and checks what can be checked without the network or an
environment, and returns a frozen dataclass; library code takes those values, never argv.
Bad input is a UsageError (one line, exit 2), never argparse's usage dump. The noxfile
parses the arguments after `--` with `run_options`, the same parser as `repro run`.

`parse_command` splits a command line into the command and its arguments (`run` when the
first word is an option), and answers a mistyped command with the nearest one.

Imports only the bottom of the host side (errors, the catalogue, the matrix table, the
tracked packages).

Why one module of this length: every command's options are declared here as data, so each
option has one home (as nox's own _options.py does).
"""

import argparse
import ast
import dataclasses
import datetime
import difflib
import os
from typing import Optional

from ._catalogue import MODES, SCENARIOS, check_modes, check_scenarios
from ._errors import UsageError
from ._matrix import RESULTS
from ._versions import SCRIPT, TRACKED, parse_pin

# Every command, with the line the top-level --help gives it (its parser's description starts with it).
COMMANDS = {
    "run": "run the scenarios in this environment, each in a child process; print the verdicts (default)",
    "report": "run one scenario's standalone reproducer and write a paste-ready upstream bug report",
    "bisect": "find the first released version (or, with --source, the first commit) whose outcome signature "
              "differs from the good end's",
    "diff": "run every scenario under two version sets and print the pairs that differ",
    "matrix": "collect the matrix cells' results into results/matrix.{md,json} and a glyph heat map",
    "survey": "measure every JAX, Optax and Equinox release (the corpus, or your --problem file) into a folder "
              "of observations (the expectations' data)",
}
DEFAULT_COMMAND = "run"


@dataclasses.dataclass(frozen=True)
class Invocation:
    """A command line split: the command and its arguments, or a request for help or the version."""

    command: Optional[str] = DEFAULT_COMMAND
    argv: tuple = ()
    help: bool = False
    version: bool = False


def parse_command(argv):
    """Split `argv` into an Invocation. An option first means `run`; a first word that is no
    command is a UsageError that names the nearest command, if one is close."""
    argv = list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "-V", "--version")):
        return Invocation(DEFAULT_COMMAND, tuple(argv))
    first = argv[0]
    if first in ("-h", "--help"):
        return Invocation(None, help=True)
    if first in ("-V", "--version"):
        return Invocation(None, version=True)
    if first in COMMANDS:
        return Invocation(first, tuple(argv[1:]))
    close = difflib.get_close_matches(first, list(COMMANDS), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UsageError(f"unknown command {first!r}{hint} (commands: {', '.join(COMMANDS)}; see --help)")


def _prog(command):
    return f"{SCRIPT} {command}"


def _description(command, more=""):
    return COMMANDS[command][0].upper() + COMMANDS[command][1:] + "." + (f" {more}" if more else "")


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


# --- options several commands take, declared once ---------------------------------------------

TIMEOUT = 300.0  # seconds per scenario (or per script, for `report`): every command's default
PYTHON = "3.11"  # the Python of the envs bisect and diff build

_CACHE_HELP = ("where environments (and clones, wheels) are built and reused; default: $REPRO_CACHE_DIR, else "
               "a checkout's .repro-cache/, else ~/.cache/lbfgs-equinox-repro ($XDG_CACHE_HOME)")
_PIN_HELP = "NAME==VERSION, NAME @ git+URL[@REF] or NAME @ DIRECTORY (a local checkout, uncommitted changes included)"
_PROBLEM_HELP = "a Python file defining `model` (an eqx.Module), `loss` (model -> float scalar) and optionally " \
                "`optimum`: the scenarios run on it instead of the built-in problem"

# flag -> argparse keywords. Each command picks the ones it takes with `_add(parser, flag, ...)`,
# overriding only what narrows for it (its help, its default mode).
SHARED_OPTIONS = {
    "--scenario": dict(action="append", default=[], metavar="NAME"),
    "--mode": dict(action="append", default=[], choices=MODES),
    "--timeout": dict(type=float, default=TIMEOUT, help=f"seconds per scenario (default {TIMEOUT:g})"),
    "--json": dict(action="store_true", help="print the result as JSON"),
    "--quiet": dict(action="store_true", help="no progress lines on stderr"),
    "--cache-dir": dict(metavar="DIR", help=_CACHE_HELP),
    "--problem": dict(metavar="FILE.py", help=_PROBLEM_HELP),
    "--python": dict(default=PYTHON),
    "--pin": dict(action="append", default=[], metavar="PIN"),
}


def _add(parser, flag, **overrides):
    """Add the shared option `flag` to `parser`, with this command's `overrides`."""
    parser.add_argument(flag, **{**SHARED_OPTIONS[flag], **overrides})


# --- repro run (and the arguments after `--` of a matrix cell) --------------------------------

@dataclasses.dataclass(frozen=True)
class RunOptions:
    scenarios: tuple = tuple(SCENARIOS)
    modes: tuple = MODES
    timeout: float = TIMEOUT
    jobs: int = 2  # scenario processes at once
    batch: bool = False
    json: bool = False
    output: Optional[str] = None
    argv: tuple = ()  # the arguments as given (a cell records them)
    pins: dict = dataclasses.field(default_factory=dict)  # a matrix cell's pins overridden (name -> spec)
    problem: Optional[str] = None  # a problem file (absolute path) instead of the built-in problem
    quiet: bool = False  # no progress lines on stderr
    baseline: Optional[str] = None  # a baseline file: this module compared with its earlier result
    update_baseline: bool = False  # write the baseline again instead of comparing


def run_parser(prog=_prog("run")):
    p = Parser(prog=prog, description=_description("run", "One process per scenario, or a few batches of "
                                                           "them with --batch; a line per finished scenario "
                                                           "on stderr."))
    _add(p, "--scenario", help=_scenario_help())
    _add(p, "--mode", help="eager or jit (repeatable; default both)")
    _add(p, "--json", help="print the results as JSON")
    p.add_argument("--output", metavar="FILE", help="also write the JSON results to FILE (atomically)")
    _add(p, "--timeout")
    p.add_argument("--jobs", type=int, default=RunOptions.jobs,
                   help=f"processes at once (default {RunOptions.jobs})")
    p.add_argument("--batch", action="store_true",
                   help="run many scenarios per process, --jobs batches (faster: one JAX import each); "
                        "a crash or hang still costs only the scenario it hit: a fresh process resumes "
                        "with the rest")
    _add(p, "--problem")
    _add(p, "--pin", help=f"in a matrix cell: replace the cell's pin of a package ({_PIN_HELP}); repeatable")
    p.add_argument("--baseline", metavar="FILE.json",
                   help="compare what each scenario did with FILE (written the first time): the changes are "
                        "listed under the table and exit 1; --problem names the module (default: the built-in one)")
    p.add_argument("--update-baseline", action="store_true", help="write the --baseline file again")
    _add(p, "--quiet")
    return p


def run_options(argv, prog=_prog("run")):
    argv = tuple(argv)
    args = run_parser(prog).parse_args(list(argv))
    if args.timeout <= 0 or args.jobs < 1:
        raise UsageError("--timeout must be > 0 and --jobs >= 1")
    if args.output:
        check_writable(args.output)
    if args.update_baseline and not args.baseline:
        raise UsageError("--update-baseline needs --baseline FILE.json")
    return RunOptions(tuple(check_scenarios(args.scenario)), tuple(check_modes(args.mode)), args.timeout,
                      args.jobs, args.batch, args.json, args.output, argv, parse_pins(args.pin),
                      problem_file(args.problem), args.quiet, args.baseline, args.update_baseline)


def problem_file(path):
    """The absolute path of a problem file (None stays None), once it is a readable Python file
    that binds `model` and `loss` at top level. Whether they are what they must be (a module, a
    float-scalar loss) is checked where JAX is: repro._jax._problem_file."""
    if path is None:
        return None
    label = f"--problem {path}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{label}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as error:
        raise UsageError(f"{label}: syntax error at line {error.lineno}: {error.msg}") from None
    missing = [name for name in ("model", "loss") if name not in _top_level_names(tree)]
    if missing and not _star_import(tree):
        raise UsageError(f"{label}: defines no {' and no '.join(f'`{n}`' for n in missing)} at top level "
                         "(it must define model, loss and optionally optimum)")
    return os.path.abspath(path)


def _top_level_names(tree):
    """Names a module binds at top level: assignments, defs, classes, imports."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For)):
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def _star_import(tree):
    return any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in tree.body)


def problem_defines_optimum(path):
    """Whether a problem file binds `optimum` at top level (its reproducer then passes it on)."""
    with open(path, encoding="utf-8") as f:
        return "optimum" in _top_level_names(ast.parse(f.read()))


# --- repro bisect / repro diff ----------------------------------------------------------------

def parse_pins(pins, label="--pin"):
    """["optax==0.2.3", "equinox @ ~/equinox", ...] -> {"optax": "0.2.3", "equinox": "/home/me/equinox"}
    (repro._versions.parse_pin; whether each version is released is checked later)."""
    out = {}
    for pin in pins:
        try:
            name, spec = parse_pin(pin)
        except ValueError as error:
            raise UsageError(f"{label} {error}") from None
        out[name] = spec
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
    python: str = PYTHON
    timeout: float = TIMEOUT
    every: bool = False
    prereleases: bool = False
    yanked: bool = False
    json: bool = False
    quiet: bool = False
    source: Optional[str] = None  # a git URL or checkout: --good/--bad are commits of it
    problem: Optional[str] = None
    cache_dir: Optional[str] = None  # --cache-dir (None: repro._paths.cache_dir decides)

    @property
    def pairs(self):
        return [(s, m) for s in self.scenarios for m in self.modes]


def bisect_parser():
    p = Parser(prog=_prog("bisect"), description=_description("bisect", "A line per probed version on stderr."))
    p.add_argument("--package", help="the package to move: any name on the package index (the expectations track "
                                     f"{', '.join(TRACKED)}); not with --by-date")
    p.add_argument("--good", help="older version (the reference signature); with --source a tag, branch or sha")
    p.add_argument("--bad", help="newer version; with --source a tag, branch or sha")
    p.add_argument("--source", metavar="GIT_URL_OR_PATH",
                   help="bisect the package's commits (first-parent history from --good to --bad) in this git "
                        "repository: a local checkout or a URL (cloned into the cache's git/: --cache-dir)")
    _add(p, "--problem")
    p.add_argument("--by-date", metavar="START..END",
                   help=f"move {', '.join(TRACKED)} together (all that is not --pin'ned): "
                        "uv --exclude-newer at each day one of them released")
    _add(p, "--scenario", help=_scenario_help("scenario(s) to compare (repeatable; 'all' for every one)"))
    _add(p, "--mode", help="eager or jit (repeatable; default jit)")
    _add(p, "--pin", help=f"keep another package fixed: {_PIN_HELP} (repeatable); jaxlib follows a pinned jax")
    _add(p, "--python", help=f"Python version of the probed envs (default {BisectOptions.python})")
    p.add_argument("--every", action="store_true", help="probe every candidate and list every change (a sweep)")
    p.add_argument("--pre", action="store_true", help="include pre-releases")
    p.add_argument("--yanked", action="store_true", help="include yanked releases")
    _add(p, "--timeout")
    _add(p, "--json")
    _add(p, "--quiet")
    _add(p, "--cache-dir")
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
                  every=args.every, prereleases=args.pre, yanked=args.yanked, json=args.json, quiet=args.quiet,
                  source=args.source, problem=problem_file(args.problem), cache_dir=args.cache_dir)
    if args.by_date:
        if args.package or args.good or args.bad or args.source:
            raise UsageError("--by-date replaces --package/--good/--bad/--source")
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
    python: str = PYTHON
    timeout: float = TIMEOUT
    json: bool = False
    problem: Optional[str] = None
    quiet: bool = False
    cache_dir: Optional[str] = None  # --cache-dir (None: repro._paths.cache_dir decides)

    @property
    def pairs(self):
        return [(s, m) for s in self.scenarios for m in self.modes]


def diff_options(argv):
    p = Parser(prog=_prog("diff"), description=_description("diff"))
    p.add_argument("--a", required=True, metavar="PINS", help="e.g. jax==0.4.30,optax==0.2.3,equinox==0.11.4")
    p.add_argument("--b", required=True, metavar="PINS",
                   help="e.g. jax==0.4.35,optax==0.2.4,equinox==0.11.10; a pin may be a source: "
                        "optax @ ~/optax (a checkout, uncommitted changes included) or optax @ git+URL@REF")
    _add(p, "--problem")
    _add(p, "--scenario", help="default: all")
    _add(p, "--mode", help="default: both")
    _add(p, "--python", help=f"Python of both envs (default {DiffOptions.python})")
    _add(p, "--timeout")
    _add(p, "--json")
    _add(p, "--quiet")
    _add(p, "--cache-dir")
    args = p.parse_args(list(argv))
    scenarios = check_scenarios([] if args.scenario == ["all"] else args.scenario, allow_self_tests=False)
    sides = {}
    for label, text in (("a", args.a), ("b", args.b)):
        sides[label] = parse_pins([p for p in text.split(",") if p.strip()], label=f"--{label}")
        if not sides[label]:
            raise UsageError(f"--{label}: no pins given")
    return DiffOptions(sides["a"], sides["b"], tuple(scenarios), tuple(check_modes(args.mode)), args.python,
                       _positive(args.timeout, "--timeout"), args.json, problem_file(args.problem), args.quiet,
                       args.cache_dir)


# --- repro report / repro matrix --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReportOptions:
    scenario: str
    mode: str = "eager"
    format: str = "md"
    output: Optional[str] = None
    timeout: float = TIMEOUT
    problem: Optional[str] = None
    quiet: bool = False


def report_options(argv):
    p = Parser(prog=_prog("report"), description=_description("report", "The reproducer runs here, as-is, "
                                                                        "in a fresh process."))
    p.add_argument("--scenario", required=True, metavar="NAME", help=f"one of: {', '.join(SCENARIOS)}")
    p.add_argument("--mode", default=ReportOptions.mode, choices=MODES, help="eager (default) or jit")
    p.add_argument("--format", default=ReportOptions.format, choices=("md", "json"), help="md (default) or json")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    _add(p, "--timeout", default=ReportOptions.timeout,
         help=f"seconds for the script (default {ReportOptions.timeout:g})")
    _add(p, "--problem", help=_PROBLEM_HELP + "; the reproducer embeds its source")
    _add(p, "--quiet")
    args = p.parse_args(list(argv))
    (scenario,) = check_scenarios([args.scenario], allow_self_tests=False)
    _positive(args.timeout, "--timeout")
    if args.output:
        check_writable(args.output)
    return ReportOptions(scenario, args.mode, args.format, args.output, args.timeout, problem_file(args.problem),
                         args.quiet)


@dataclasses.dataclass(frozen=True)
class MatrixOptions:
    results: str = RESULTS
    json: bool = False
    quiet: bool = False
    heatmap: bool = False


def matrix_options(argv):
    p = Parser(prog=_prog("matrix"),
               description=_description("matrix", "Reads results/cells/<cell>.json (written by `nox -s repro`); "
                                                  "writes matrix.md, matrix.json and heatmap.md beside them."))
    p.add_argument("--results", default=MatrixOptions.results, metavar="DIR",
                   help=f"results folder (default {MatrixOptions.results}/)")
    _add(p, "--json", help="print matrix.json instead of the Markdown")
    _add(p, "--quiet", help="write the files, print nothing")
    p.add_argument("--heatmap", action="store_true",
                   help="print the glyph heat map (heatmap.md: a square per verdict) instead of the table; the "
                        "files are written either way")
    args = p.parse_args(list(argv))
    if args.json and args.heatmap:
        raise UsageError("--json and --heatmap: choose one")
    return MatrixOptions(args.results, args.json, args.quiet, args.heatmap)


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
    data: Optional[str] = None  # observation folder (None: repro._cli._survey_folder decides)
    timeout: float = 600.0
    heatmap: bool = False  # print the glyph heat map of the data, measure nothing
    heatmap_files: Optional[str] = None  # write survey.{svg,html,md} of the data into this folder, measure nothing
    shards: Optional[int] = None  # with --dry-run: the pending cells in this many shards, one job each
    merge: tuple = ()  # shards' data folders to merge into the data folder, measure nothing
    plan_file: Optional[str] = None  # with merge: the `--dry-run --json` plan the shards were cut from
    json: bool = False
    cells: int = 2  # cells measured at once
    problem: Optional[str] = None  # a problem file measured instead of the built-in problem and the corpus
    cache_dir: Optional[str] = None  # --cache-dir (None: repro._paths.cache_dir decides)


def survey_options(argv):
    p = Parser(prog=_prog("survey"), description=_description(
        "survey", "Cells are picked from the package index; the expectations are derived from the files."))
    p.add_argument("--series", action="append", default=[], choices=SURVEY_SERIES,
                   help="which cells (repeatable; default all): one per jax, optax or equinox release, or the "
                        "default matrix cells")
    p.add_argument("--only", action="append", default=[], metavar="CELL", help="just this cell (e.g. jax-0.6.2)")
    _add(p, "--mode", help="eager or jit (default both)")
    p.add_argument("--new", action="store_true",
                   help="only cells not in the data yet with their current plan (new releases; every cell "
                        "after a corpus change); print what changed against the release before")
    p.add_argument("--force", action="store_true",
                   help="measure cells already in the data again (in the --mode(s) asked; other modes are kept)")
    p.add_argument("--keep-envs", action="store_true", help="keep each cell's env (in the cache's survey/)")
    p.add_argument("--dry-run", action="store_true", help="print the planned cells and what is pending")
    _add(p, "--problem", help=_PROBLEM_HELP + ", in every cell asked, instead of the built-in problem and the corpus; "
                        "its observations go into --data (default: the current directory), never the packaged data")
    p.add_argument("--data", metavar="DIR",
                   help="observation folder, read and written (default: from a checkout without --problem, the "
                        "packaged repro/_data/observations, which is the maintainers' workflow; otherwise the "
                        "current directory: an installed copy's packaged data is read-only)")
    p.add_argument("--timeout", type=float, default=SurveyOptions.timeout, help="seconds per scenario")
    p.add_argument("--cells", type=int, default=SurveyOptions.cells, metavar="N",
                   help="cells measured at once, each with its own env; the cores (REPRO_WORKERS) are shared "
                        "out between them, one worker each at least (default 2: on 2 cores, one worker per cell, "
                        "measured faster than two workers per cell or three cells at once)")
    p.add_argument("--heatmap", action="store_true",
                   help="print the glyph heat map of the data (Markdown: a round glyph per outcome) and measure nothing")
    p.add_argument("--heatmap-files", metavar="DIR",
                   help="write the heat map of the data as survey.svg, survey.html and survey.md into DIR (created if "
                        "missing; this project's docs/ holds the committed ones) and measure nothing")
    _add(p, "--json", help="print the run's summary as JSON (with --dry-run: the plan; with --merge: what was merged)")
    p.add_argument("--shards", type=int, metavar="N",
                   help="with --dry-run: group the pending cells into N shards of about the same expected time, "
                        "each with the `survey` arguments that measure exactly its cells (for a CI job matrix)")
    p.add_argument("--merge", nargs="+", action="extend", default=[], metavar="DIR",
                   help="merge the cell files of shards' data folders into the --data folder (required), as one "
                        "run would have written them, and print what changed against the release before; refused "
                        "(exit 2) when they disagree on the observation schema, this tool's version or commit, or "
                        "the corpus. Measures nothing")
    p.add_argument("--plan-file", metavar="FILE",
                   help="with --merge: the plan the shards were cut from (`--dry-run --json` output); a cell "
                        "measured with other inputs than planned is refused, a pending one no shard brought is named")
    _add(p, "--cache-dir")
    args = p.parse_args(list(argv))
    _positive(args.timeout, "--timeout")
    _positive(args.cells, "--cells")
    if args.plan_file and not args.merge:
        raise UsageError("--plan-file checks a merge: use it with --merge")
    if args.shards is not None:
        _positive(args.shards, "--shards")
        if not args.dry_run:
            raise UsageError("--shards plans a fan-out: use it with --dry-run")
    if args.merge:
        mixed = [flag for flag, given in (("--dry-run", args.dry_run), ("--only", args.only), ("--new", args.new),
                                          ("--force", args.force), ("--heatmap", args.heatmap),
                                          ("--heatmap-files", args.heatmap_files)) if given]
        if mixed:
            raise UsageError(f"--merge and {mixed[0]}: --merge only merges (then run --heatmap-files on the result)")
        if not args.data:
            raise UsageError("--merge needs --data OUT: the folder the shards' cells are merged into")
    if args.data and not os.path.isdir(args.data):
        raise UsageError(f"--data {args.data}: not a directory")
    if args.heatmap_files:
        _check_folder(args.heatmap_files, "--heatmap-files")
    return SurveyOptions(tuple(dict.fromkeys(args.series)) or SURVEY_SERIES, tuple(args.only),
                         tuple(check_modes(args.mode)), args.new, args.force, args.keep_envs, args.dry_run,
                         args.data, args.timeout, args.heatmap, heatmap_files=args.heatmap_files, json=args.json,
                         cells=args.cells, shards=args.shards, merge=tuple(args.merge),
                         plan_file=args.plan_file, problem=problem_file(args.problem), cache_dir=args.cache_dir)


def _check_folder(path, flag):
    """UsageError unless `path` is a writable folder or one that can be created."""
    existing = path
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(os.path.abspath(existing))
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
        raise UsageError(f"{flag} {path}: not a writable directory")
