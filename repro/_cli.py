"""`repro` / `python -m repro`: the top of the host side. No JAX.

Each command parses its arguments into typed options (repro._options), calls the library
with them, prints, and returns the exit code (repro._errors). Nothing imports this module.
Bad input is one line on stderr and exit 2; an unreachable package index one line and
exit 5. Subcommands that need JAX run it in child processes.
"""

import json
import os
import sys

from . import _options
from ._errors import EXIT_INTERRUPTED, EXIT_NOT_AS_EXPECTED, EXIT_OK, IndexUnreachable, UsageError


def _stderr(message):
    print(message, file=sys.stderr, flush=True)


def cmd_run(argv):
    """`repro run`: every scenario here, isolated; the verdict table (or JSON)."""
    from ._files import write_json_atomic
    from ._results import render_table, run_here

    opts = _options.run_options(argv)
    result = run_here(opts.scenarios, opts.modes, timeout=opts.timeout, jobs=opts.jobs, batch=opts.batch)
    if opts.output:
        write_json_atomic(opts.output, result)
    print(json.dumps(result, indent=2) if opts.json else render_table(result))
    return EXIT_OK if result["as_expected"] else EXIT_NOT_AS_EXPECTED


def cmd_bisect(argv):
    """`repro bisect`: the first released version whose outcome signature changed (repro/_bisect.py)."""
    from ._bisect import bisect

    opts = _options.bisect_options(argv)
    log = (lambda message: None) if opts.quiet else (lambda message: _stderr(f"[bisect] {message}"))
    run = bisect(opts, log=log)
    print(json.dumps(run.to_dict(), indent=2, default=str) if opts.json else run.render())
    return run.exit_code()


def cmd_diff(argv):
    """`repro diff`: every scenario whose verdict or signature differs between two version sets."""
    from ._bisect import diff

    opts = _options.diff_options(argv)
    result = diff(opts, log=lambda message: _stderr(f"[diff] {message}"))
    if result.unbuildable:
        side = result.sides[result.unbuildable]
        pins = ",".join(f"{k}=={v}" for k, v in side["pins"].items())
        _stderr(f"repro diff: --{result.unbuildable} {pins}: {side['reason']}")
    else:
        print(json.dumps(result.to_dict(), indent=2) if opts.json else result.render())
    return result.exit_code()


def cmd_report(argv):
    """`repro report`: a paste-ready upstream bug report around a standalone reproducer (repro/_report/)."""
    from ._report import scenario_report

    opts = _options.report_options(argv)
    report = scenario_report(opts.scenario, opts.mode, timeout=opts.timeout)
    text = json.dumps(report.to_dict(), indent=2) if opts.format == "json" else report.markdown()
    if not opts.output:
        print(text)
        return EXIT_OK
    try:
        with open(opts.output, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
    except OSError as error:
        raise UsageError(f"cannot write {opts.output}: {error.strerror or error}") from None
    _stderr(f"wrote {opts.output}: {report.title}")
    return EXIT_OK  # whatever the report found: it was written


def cmd_matrix(argv):
    """`repro matrix`: collect results/cells/*.json into results/matrix.{md,json} (repro/_aggregate.py)."""
    from ._aggregate import aggregate, render_markdown

    opts = _options.matrix_options(argv)
    cell_dir = os.path.join(opts.results, "cells")
    if not os.path.isdir(cell_dir) or not any(name.endswith(".json") for name in os.listdir(cell_dir)):
        raise UsageError(f"no cell results in {cell_dir}: run `nox -s repro` (or one cell) first")
    if not os.access(opts.results, os.W_OK):
        raise UsageError(f"cannot write to {opts.results}")
    matrix = aggregate(opts.results)
    if not opts.quiet:
        written = ", ".join(os.path.join(opts.results, name) for name in ("matrix.md", "matrix.json"))
        print(json.dumps(matrix, indent=2) if opts.json else render_markdown(matrix) + f"\nwritten: {written}")
    return EXIT_OK if matrix["all_as_expected"] else EXIT_NOT_AS_EXPECTED


def cmd_survey(argv):
    """`repro survey`: measure every release into repro/_data/observations/ (repro/_survey.py)."""
    from . import _survey
    from ._observations import DATA_DIR

    opts = _options.survey_options(argv)
    directory = opts.data or DATA_DIR
    if opts.heatmap:
        from ._heatmap import write_heatmap

        for path in write_heatmap(directory):
            _stderr(f"wrote {path}")
        return EXIT_OK
    planned = _survey.plan(series=opts.series)
    if opts.only:
        unknown = sorted(set(opts.only) - {c.key for c in planned})
        if unknown:
            raise UsageError(f"--only {unknown[0]}: not a planned cell (see --dry-run)")
        planned = [c for c in planned if c.key in opts.only]
    if opts.new:
        planned = _survey.pending(planned, directory, modes=opts.modes)
    if opts.dry_run:
        todo = {c.key for c in _survey.pending(planned, directory, force=opts.force, modes=opts.modes)}
        for cell in planned:
            print(f"{'pending ' if cell.key in todo else 'measured'} {cell.key:24} python {cell.python}  "
                  f"{' '.join(cell.requirements)}" + (f"  (as of {cell.exclude_newer[:10]})" if cell.exclude_newer else ""))
        return EXIT_OK
    command = "repro survey " + " ".join(argv)
    run = _survey.survey(planned, directory=directory, modes=opts.modes, force=opts.force, keep_envs=opts.keep_envs,
                         timeout=opts.timeout, command=command.strip(), log=_stderr)
    changes = {key: _survey.changes_against_previous(key, directory) for key in run.measured} if opts.new else {}
    if opts.json:
        print(json.dumps({"measured": run.measured, "skipped": run.skipped, "seconds": round(run.seconds, 1),
                          "changes": {k: {"previous": p, "changed": c} for k, (p, c) in changes.items()}}, indent=2))
    else:
        print(f"{len(run.measured)} cells measured, {len(run.skipped)} already in the data, {run.seconds:.0f} s")
        for key, (previous, changed) in changes.items():
            print(_survey.render_changes(key, previous, changed))
    return EXIT_OK


COMMANDS = {"run": cmd_run, "bisect": cmd_bisect, "diff": cmd_diff, "report": cmd_report, "matrix": cmd_matrix,
            "survey": cmd_survey}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print("usage: repro [run] [options] | repro {" + ",".join(COMMANDS) + "} --help")
        print(_options.run_parser("repro [run]").format_help())
        return EXIT_OK
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    try:
        return COMMANDS[command](argv)
    except (UsageError, IndexUnreachable) as error:
        _stderr(f"repro {command}: error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        _stderr("repro: interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
