"""Entry point of the isolated scenario process: `python -m repro._jax._child NAME MODE`.

Prints one line `RESULT_MARKER <json Outcome>` on stdout. Whatever else happens (a
segfault at exit, a hang) the parent already has what was measured.
"""

import ctypes
import json
import sys
import time

from .._isolate import RESULT_MARKER


def main(argv):
    name, mode = argv
    if name == "_crash":
        ctypes.string_at(0)  # segfault: proves the parent records a crash
    if name == "_hang":
        time.sleep(3600)
    from ._problems import mlp_problem
    from ._run import run_scenario

    model, loss, optimum = mlp_problem()
    outcome = run_scenario(name, mode, model, loss, optimum=optimum)
    sys.stdout.write(f"{RESULT_MARKER} {json.dumps(outcome.to_dict())}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
