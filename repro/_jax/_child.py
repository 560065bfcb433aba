"""Entry point of an isolated scenario process: `python -m repro._jax._child NAME:MODE ...`.

Runs the pairs in order and prints one line `RESULT_MARKER <json Outcome>` after each,
flushed, so the parent keeps every result measured before a crash or hang.
"""

import ctypes
import json
import sys
import time

from .._isolate import RESULT_MARKER


def main(pairs):
    problem = None
    for pair in pairs:
        name, mode = pair.split(":")
        if name == "_crash":
            ctypes.string_at(0)  # segfault: proves the parent records a crash
        if name == "_hang":
            time.sleep(3600)
        from ._problems import mlp_problem
        from ._run import run_scenario

        problem = problem or mlp_problem()
        model, loss, optimum = problem
        outcome = run_scenario(name, mode, model, loss, optimum=optimum, problem="mlp")
        sys.stdout.write(f"{RESULT_MARKER} {json.dumps(outcome.to_dict())}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
