"""`lbfgs-equinox-repro` / `python -m repro`: the top of the host side. No JAX.

`main` splits the command line (repro._options.parse_command: `run` when the first word is an
option, "did you mean" for a mistyped command), answers --help (every command, the exit codes)
and --version (with the installed jax/optax/equinox), or runs one command. Each command parses
its arguments into typed options (repro._options), calls the library with them and a
repro._progress.Progress on stderr, prints, and returns the exit code (repro._errors). Nothing
imports this module. Bad input is one line on stderr and exit 2; an unreachable package index
one line and exit 5. Subcommands that need JAX run it in child processes.
"""

import dataclasses
import json
import os
import sys

from . import _options, _paths
from ._errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_MEANINGS,
    EXIT_NOT_AS_EXPECTED,
    EXIT_OK,
    IndexUnreachable,
    UsageError,
)
from ._progress import Progress
from ._versions import SCRIPT, installed_versions, shadowing_distributions, version_line


def _stderr(message):
    print(message, file=sys.stderr, flush=True)


def cmd_run(argv):
    """`run`: every scenario here, isolated; the verdict table (or JSON); with --baseline, what
    changed against the module's earlier result (repro/_baseline.py)."""
    from . import _baseline
    from ._files import write_json_atomic
    from ._results import render_table, run_here

    opts = _options.run_options(argv)
    if opts.pins:
        raise UsageError(f"--pin changes a matrix cell's pins (nox -s \"repro(<cell>)\" -- --pin ...); `{SCRIPT} run` "
                         f"uses this environment as it is (compare version sets with `{SCRIPT} diff`)")
    stored = _baseline.read(opts.baseline, update=opts.update_baseline) if opts.baseline else None
    _check_problem_here(opts.problem, opts.timeout)
    with Progress(len(opts.scenarios) * len(opts.modes), quiet=opts.quiet) as progress:
        result = run_here(opts.scenarios, opts.modes, timeout=opts.timeout, jobs=opts.jobs, batch=opts.batch,
                          problem=opts.problem, progress=progress)
    comparison = None
    if opts.baseline:
        comparison = _baseline.compare(opts.baseline, stored, result["results"], result["versions"],
                                       update=opts.update_baseline)
        result["baseline"] = comparison.to_dict()
    if opts.output:
        write_json_atomic(opts.output, result)
    text = render_table(result) + (f"\n\n{comparison.render()}" if comparison else "")
    print(json.dumps(result, indent=2) if opts.json else text)
    changed = bool(comparison and comparison.changes)
    return EXIT_OK if result["as_expected"] and not changed else EXIT_NOT_AS_EXPECTED


def _use_cache(opts):
    """This run's cache folder (`--cache-dir`, else REPRO_CACHE_DIR, else the default: repro._paths),
    made if missing; one that cannot be made or written is bad input, before anything is built."""
    if opts.cache_dir:
        return _paths.use_cache_dir(opts.cache_dir)
    label = _paths.CACHE_ENV if os.environ.get(_paths.CACHE_ENV) else "cache folder"
    return _paths.writable_dir(_paths.cache_dir(), label)


def _check_problem_here(problem, timeout):
    """The problem file's content flags in this environment; a file that does not load is bad input."""
    if not problem:
        return None
    from ._isolate import check_problem

    answer = check_problem(problem, timeout=timeout)
    if "error" in answer:
        raise UsageError(f"--problem {answer['error']}")
    return answer["contents"]


def cmd_bisect(argv):
    """`bisect`: the first released version whose outcome signature changed (repro/_bisect.py)."""
    from ._bisect import bisect

    opts = _options.bisect_options(argv)
    _use_cache(opts)
    with Progress(unit="probe", quiet=opts.quiet) as progress:
        run = bisect(opts, progress=progress)
    print(json.dumps(run.to_dict(), indent=2, default=str) if opts.json else run.render())
    return run.exit_code()


def cmd_diff(argv):
    """`diff`: every scenario whose verdict or signature differs between two version sets."""
    from ._diff import diff

    opts = _options.diff_options(argv)
    _use_cache(opts)
    with Progress(unit="side", quiet=opts.quiet) as progress:
        result = diff(opts, progress=progress)
    if result.unbuildable:
        from ._versions import requirement

        side = result.sides[result.unbuildable]
        pins = ",".join(requirement(k, v) for k, v in side["pins"].items())
        _stderr(f"{SCRIPT} diff: --{result.unbuildable} {pins}: {side['reason']}")
    else:
        print(json.dumps(result.to_dict(), indent=2) if opts.json else result.render())
    return result.exit_code()


def cmd_report(argv):
    """`report`: a paste-ready upstream bug report around a standalone reproducer (repro/_report/)."""
    from ._report import scenario_report

    opts = _options.report_options(argv)
    contents = _check_problem_here(opts.problem, opts.timeout)
    with Progress(quiet=opts.quiet) as progress:
        report = scenario_report(opts.scenario, opts.mode, timeout=opts.timeout, problem=opts.problem,
                                 contents=contents, progress=progress)
    text = json.dumps(report.to_dict(), indent=2) if opts.format == "json" else report.markdown()
    if not opts.output:
        print(text)
        return EXIT_OK
    try:
        with open(opts.output, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
    except OSError as error:
        raise UsageError(f"cannot write {opts.output}: {error.strerror or error}") from None
    if not opts.quiet:
        _stderr(f"wrote {opts.output}: {report.title}")
    return EXIT_OK  # whatever the report found: it was written


def cmd_matrix(argv):
    """`matrix`: collect results/cells/*.json into results/matrix.{md,json} and heatmap.md."""
    from ._aggregate import aggregate, render_heatmap, render_matrix

    opts = _options.matrix_options(argv)
    cell_dir = os.path.join(opts.results, "cells")
    if not os.path.isdir(cell_dir) or not any(name.endswith(".json") for name in os.listdir(cell_dir)):
        raise UsageError(f"no cell results in {cell_dir}: run `nox -s repro` (or one cell) first")
    if not os.access(opts.results, os.W_OK):
        raise UsageError(f"cannot write to {opts.results}")
    matrix = aggregate(opts.results)
    if not opts.quiet:
        written = ", ".join(os.path.join(opts.results, name) for name in ("matrix.md", "matrix.json", "heatmap.md"))
        text = (json.dumps(matrix, indent=2) if opts.json else render_heatmap(matrix) if opts.heatmap
                else render_matrix(matrix) + f"\nwritten: {written}")
        print(text)
    return EXIT_OK if matrix["all_as_expected"] else EXIT_NOT_AS_EXPECTED


def cmd_survey(argv):
    """`survey`: measure every release into a folder of observations (repro/_survey.py)."""
    from . import _survey

    opts = _options.survey_options(argv)
    directory = _survey_folder(opts)
    if opts.heatmap or opts.heatmap_files:
        return _survey_heatmap(opts, directory)
    if opts.merge:
        return _survey_merge(opts, directory)
    planned = _survey.plan(series=opts.series)
    if opts.problem:
        problem = _survey.Problem.read(opts.problem)
        planned = [dataclasses.replace(cell, problem=problem) for cell in planned]
    if opts.only:
        unknown = sorted(set(opts.only) - {c.key for c in planned})
        if unknown:
            raise UsageError(f"--only {unknown[0]}: not a planned cell (see --dry-run)")
        planned = [c for c in planned if c.key in opts.only]
    if opts.new:
        planned = _survey.pending(planned, directory, modes=opts.modes)
    if opts.dry_run:
        plan = _survey_plan(opts, planned, directory)
        if opts.json:
            print(json.dumps(plan, indent=2))
            return EXIT_OK
        for cell in planned:
            print(f"{'pending ' if cell.key in plan['pending'] else 'measured'} {cell.key:24} python {cell.python}  "
                  f"{' '.join(cell.requirements)}" + (f"  (as of {cell.exclude_newer[:10]})" if cell.exclude_newer else ""))
        for shard in plan.get("shards", []):
            print(f"{shard['name']}: about {shard['expected_seconds']:.0f} s: {' '.join(shard['cells'])}")
        return EXIT_OK
    _writable_data(directory, opts)
    _check_problem_where_jax_is(opts.problem, opts.timeout)
    _use_cache(opts)
    command = _survey.command_line(argv, directory)
    run = _survey.survey(planned, directory=directory, modes=opts.modes, force=opts.force, keep_envs=opts.keep_envs,
                         timeout=opts.timeout, command=command, log=_stderr, cells_at_once=opts.cells)
    changes = {key: _survey.changes_against_previous(key, directory) for key in run.measured} if opts.new else {}
    if opts.json:
        print(json.dumps({"measured": run.measured, "skipped": run.skipped, "seconds": round(run.seconds, 1),
                          "data": directory,
                          "changes": {k: {"previous": p, "changed": c} for k, (p, c) in changes.items()}}, indent=2))
    else:
        print(f"{len(run.measured)} cells measured, {len(run.skipped)} already in the data, {run.seconds:.0f} s: "
              f"{directory}")
        for key, (previous, changed) in changes.items():
            print(_survey.render_changes(key, previous, changed))
    return EXIT_OK


def _survey_plan(opts, planned, directory):
    """`survey --dry-run --json [--shards N]`: the planned cells (with their inputs and a digest of
    them, which a merge can check against), which are pending, and the pending ones in shards
    with the arguments that measure each (repro/_fanout.py)."""
    from . import _fanout, _survey

    todo = _survey.pending(planned, directory, force=opts.force, modes=opts.modes)
    plan = {"cells": [{"key": c.key, "series": c.series, "python": c.python, "requirements": list(c.requirements),
                       "exclude_newer": c.exclude_newer, "plan": c.plan_key(), "pending": c in todo}
                      for c in planned],
            "pending": [c.key for c in todo],
            "digest": _fanout.plan_digest({c.key: c.plan_key() for c in planned})}
    if opts.shards:
        seconds = _fanout.expected_seconds(todo, directory, opts.modes)
        plan["shards"] = [{"name": s.name, "cells": list(s.cells), "expected_seconds": s.seconds,
                           "args": s.args(opts.modes, opts.timeout)} for s in _fanout.shards(todo, opts.shards, seconds)]
    return plan


def _survey_merge(opts, directory):
    """`survey --merge DIR... --data OUT [--plan-file PLAN]`: the shards' cells into OUT, then what
    changed in each against the release before (as `--new` prints it). A planned pending cell
    that no shard brought is named on stderr: its job failed, and the rest is kept."""
    from . import _fanout, _survey

    plans, pending = _fanout.read_plan(opts.plan_file) if opts.plan_file else (None, [])
    merged = _fanout.merge(opts.merge, directory, plans)
    missing = [key for key in pending if key not in merged]
    if missing:
        _stderr(f"not in any shard's folder, so not merged: {', '.join(missing)}")
    changes = {key: _survey.changes_against_previous(key, directory) for key in merged}
    if opts.json:
        print(json.dumps({"merged": merged, "missing": missing, "into": directory,
                          "changes": {k: {"previous": p, "changed": c} for k, (p, c) in changes.items()}}, indent=2))
    else:
        print(f"{len(merged)} cells merged into {directory} from {len(opts.merge)} folders")
        for key, (previous, changed) in changes.items():
            print(_survey.render_changes(key, previous, changed))
    return EXIT_OK


def _survey_heatmap(opts, directory):
    """`survey --heatmap` prints the glyph heat map of the data; `--heatmap-files DIR` writes its
    three forms there (never inside an installed package)."""
    from ._heatmap import panels, render_glyphs, write_heatmap
    from ._observations import load

    cells = load(directory)
    if not cells:
        raise UsageError(f"no observation files in {directory}: give --data DIR (a folder `survey` measured into)")
    if not panels(cells):
        raise UsageError(f"nothing to draw in {directory}: the heat map has a panel per jax, optax and equinox "
                         f"release series, and its cells are {', '.join(sorted({c.series for c in cells}))} cells")
    if opts.heatmap_files:
        target = os.path.abspath(opts.heatmap_files)
        if _paths.inside_package(target):
            raise UsageError(f"--heatmap-files {target}: inside the installed package: choose a folder of your own")
        for path in write_heatmap(cells, _paths.writable_dir(target, "--heatmap-files")):
            _stderr(f"wrote {path}")
    if opts.heatmap:
        print(render_glyphs(cells), end="")
    return EXIT_OK


def _survey_folder(opts):
    """The survey's data folder, read and written: --data; else, from a checkout and without
    --problem, the packaged observations (the maintainers' workflow: the expectations' data);
    else the current directory (an installed copy's package is read-only data, and a problem's
    observations are the user's, never the packaged ones)."""
    from ._observations import DATA_DIR

    if opts.data:
        return os.path.abspath(opts.data)
    return DATA_DIR if _paths.checkout() and not opts.problem else os.getcwd()


def _writable_data(directory, opts):
    """Bad input, before anything is built: a data folder inside the installed package, the
    packaged corpus data for a problem's observations, or a folder that cannot be written."""
    from ._observations import DATA_DIR

    label = "--data" if opts.data else "the current directory (no --data given):"
    if _paths.inside_package(directory):
        raise UsageError(f"--data {directory}: inside the installed package, whose observations are read-only data: "
                         "choose a folder of your own")
    if opts.problem and os.path.realpath(directory) == os.path.realpath(DATA_DIR):
        raise UsageError(f"--data {directory}: the packaged corpus observations; a problem's observations go into a "
                         "folder of their own")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{label} {directory}: not writable")


def _check_problem_where_jax_is(problem, timeout):
    """Load the problem file here before any env is built, when JAX is installed here (with the
    tool, as its dependencies are): a file that does not load is bad input, found in seconds,
    not a survey of failed cells. Without JAX here, each cell finds out and records why."""
    import importlib.util

    if problem and importlib.util.find_spec("jax") is not None:
        _check_problem_here(problem, timeout)


COMMANDS = {"run": cmd_run, "report": cmd_report, "bisect": cmd_bisect, "diff": cmd_diff, "matrix": cmd_matrix,
            "survey": cmd_survey}


def render_help():
    """The top-level --help: usage, every command with its line, the global options, the exit codes."""
    width = max(map(len, COMMANDS))
    lines = [f"usage: {SCRIPT} [COMMAND] [OPTIONS]      (or: python -m repro [COMMAND] [OPTIONS])", "",
             "Reproduction and regression harness for optax.lbfgs() on Equinox modules with non-array leaves.", "",
             "commands:"]
    lines += [f"  {name.ljust(width)}  {_options.COMMANDS[name]}" for name in COMMANDS]
    lines += ["", f"Without a command, the options are `{_options.DEFAULT_COMMAND}`'s. "
                  f"`{SCRIPT} COMMAND --help` lists a command's options.", "",
              "options:",
              "  -h, --help     this help",
              "  -V, --version  this tool's version and the installed python, jax, jaxlib, optax, equinox, numpy",
              "", "exit codes:"]
    for code, meanings in EXIT_MEANINGS.items():
        if "*" in meanings:
            lines.append(f"  {code:<3}  {meanings['*']} (every command)")
            continue
        for index, name in enumerate(name for name in COMMANDS if name in meanings):
            lines.append(f"  {str(code) if index == 0 else '':<3}  {name}: {meanings[name]}")
    return "\n".join(lines)


def _warn_if_shadowed():
    """Say so when another distribution installs a `repro` package over (or under) this one."""
    others = shadowing_distributions()
    if others:
        _stderr(f"{SCRIPT}: warning: {', '.join(others)} also install(s) a `repro` package: its files and "
                f"this tool's overwrite each other; `python -m repro` may run the other project")


def main(argv=None):
    """Run one command line; its exit code. Output cut short by a closed pipe (`| head`) is not an
    error to report: the rest is dropped quietly, as other command-line tools do."""
    try:
        return _main(argv)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return EXIT_BROKEN_PIPE


def _main(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    _warn_if_shadowed()
    try:
        invocation = _options.parse_command(argv)
    except UsageError as error:
        _stderr(f"{SCRIPT}: error: {error}")
        return error.exit_code
    if invocation.help:
        print(render_help())
        return EXIT_OK
    if invocation.version:
        print(version_line(installed_versions()))
        return EXIT_OK
    command = invocation.command
    try:
        return COMMANDS[command](list(invocation.argv))
    except (UsageError, IndexUnreachable) as error:
        _stderr(f"{SCRIPT} {command}: error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        _stderr(f"{SCRIPT}: interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
