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
    if opts.pins:
        raise UsageError("--pin changes a matrix cell's pins (nox -s \"repro(<cell>)\" -- --pin ...); `repro run` "
                         "uses this environment as it is (compare version sets with `repro diff`)")
    _check_problem_here(opts.problem, opts.timeout)
    result = run_here(opts.scenarios, opts.modes, timeout=opts.timeout, jobs=opts.jobs, batch=opts.batch,
                      problem=opts.problem)
    if opts.output:
        write_json_atomic(opts.output, result)
    print(json.dumps(result, indent=2) if opts.json else render_table(result))
    return EXIT_OK if result["as_expected"] else EXIT_NOT_AS_EXPECTED


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
        from ._versions import requirement

        side = result.sides[result.unbuildable]
        pins = ",".join(requirement(k, v) for k, v in side["pins"].items())
        _stderr(f"repro diff: --{result.unbuildable} {pins}: {side['reason']}")
    else:
        print(json.dumps(result.to_dict(), indent=2) if opts.json else result.render())
    return result.exit_code()


def cmd_report(argv):
    """`repro report`: a paste-ready upstream bug report around a standalone reproducer (repro/_report/)."""
    from ._report import scenario_report

    opts = _options.report_options(argv)
    contents = _check_problem_here(opts.problem, opts.timeout)
    report = scenario_report(opts.scenario, opts.mode, timeout=opts.timeout, problem=opts.problem, contents=contents)
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


COMMANDS = {"run": cmd_run, "bisect": cmd_bisect, "diff": cmd_diff, "report": cmd_report, "matrix": cmd_matrix}


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
