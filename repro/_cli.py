"""`repro` / `python -m repro`: run the scenarios here, or drive matrix/bisect/report. No JAX.

Every subcommand parses its own arguments; bad input is one line on stderr and exit 2.
Subcommands that need JAX run it in child processes, so this module never imports it.
"""

import argparse
import json
import sys

from ._catalogue import MODES, SCENARIOS, UsageError, check_modes, check_scenarios

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit 2 (no usage dump)."""

    def error(self, message):
        raise UsageError(message)


def _run_parser(prog="repro run"):
    p = _Parser(prog=prog, description="Run every scenario in this environment, each in its own process.")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help=f"scenario to run (repeatable; default all): {', '.join(SCENARIOS)}")
    p.add_argument("--mode", action="append", default=[], choices=MODES,
                   help="eager or jit (repeatable; default both)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--output", metavar="FILE", help="also write the JSON results to FILE (atomically)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per scenario process (default 300)")
    p.add_argument("--jobs", type=int, default=2, help="scenario processes at once (default 2)")
    p.add_argument("--batch", action="store_true",
                   help="run many scenarios per process (faster); a crash or hang still costs only "
                        "the scenario it hit: a fresh process resumes with the rest")
    return p


def cmd_run(argv):
    from ._results import run_here, render_table, write_json_atomic

    args = _run_parser().parse_args(argv)
    scenarios = check_scenarios(args.scenario)
    modes = check_modes(args.mode)
    if args.timeout <= 0 or args.jobs < 1:
        raise UsageError("--timeout must be > 0 and --jobs >= 1")
    if args.output:
        _check_writable(args.output)
    result = run_here(scenarios, modes, timeout=args.timeout, jobs=args.jobs, batch=args.batch)
    if args.output:
        write_json_atomic(args.output, result)
    print(json.dumps(result, indent=2) if args.json else render_table(result))
    return EXIT_OK if result["as_expected"] else EXIT_MISMATCH


def _check_writable(path):
    import os

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: {folder} is not a writable directory")


def cmd_bisect(argv):
    """`repro bisect`: the first released version whose outcome signature changed (repro/_bisect.py)."""
    from ._bisect import cmd_bisect as run

    return run(argv)


def cmd_diff(argv):
    """`repro diff`: every scenario whose verdict or signature differs between two version sets."""
    from ._bisect import cmd_diff as run

    return run(argv)


def cmd_report(argv):
    """`repro report`: a paste-ready upstream bug report around a standalone reproducer (repro/_report.py)."""
    from ._report import cmd_report as run

    return run(argv)


def cmd_matrix(argv):
    """`repro matrix`: collect results/cells/*.json into results/matrix.{md,json} (repro/_aggregate.py)."""
    from ._aggregate import cmd_matrix as run

    return run(argv)


COMMANDS = {"run": cmd_run, "bisect": cmd_bisect, "diff": cmd_diff, "report": cmd_report, "matrix": cmd_matrix}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print("usage: repro [run] [options] | repro {" + ",".join(COMMANDS) + "} --help")
        print(_run_parser("repro [run]").format_help())
        return EXIT_OK
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    try:
        return COMMANDS[command](argv)
    except UsageError as error:
        print(f"repro {command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("repro: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
