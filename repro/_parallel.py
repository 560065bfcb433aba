"""Run a few labelled commands at once and stream their output, a prefix on every line.

`nox -s ci` (what `./go test` and CI run) uses it to run the `ci` cells' pytest sessions
side by side. One cell's suite alone leaves the cores idle much of the time (waiting on
timeouts it provokes, on subprocesses and on the longest xdist test), so two cells together
finish in little more than the longer one (figures: docs/performance.md). Standard library only: it runs
on the host, beside nox.
"""

import subprocess
import sys
import threading
import time


def run_labelled(commands, *, out=None, env=None):
    """Start every `(label, argv)` at once; copy each one's stdout and stderr, line by line,
    onto `out` (default: sys.stdout) as `label | line`; return {label: (returncode, seconds)}.

    A command that cannot be started gets returncode 127 and one line saying why. Lines of
    different commands interleave; the lines of one command keep their order."""
    out = out or sys.stdout
    width = max((len(label) for label, _ in commands), default=0)
    lock = threading.Lock()
    results = {}

    def emit(label, text):
        with lock:
            out.write(f"{label:<{width}} | {text}\n")
            out.flush()

    def follow(label, argv):
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                    text=True, errors="replace", bufsize=1)
        except OSError as error:
            emit(label, f"could not start {argv[0]}: {error}")
            results[label] = (127, 0.0)
            return
        for line in proc.stdout:
            emit(label, line.rstrip("\n"))
        results[label] = (proc.wait(), time.perf_counter() - started)

    threads = [threading.Thread(target=follow, args=command, daemon=True) for command in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {label: results[label] for label, _ in commands}
