"""Run each scenario in its own process so a segfault or hang is recorded, not fatal. No JAX.

The child prints its Outcome as JSON behind RESULT_MARKER. A child killed by a signal
is a CRASH (keeping its result if it printed one before dying, e.g. a crash at exit);
one that outlives the timeout is a TIMEOUT; either way its output is kept.
"""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys

from ._outcome import Outcome

RESULT_MARKER = "@@repro-outcome@@"
OUTPUT_TAIL = 4000


def _tail(text):
    text = text or ""
    return text if len(text) <= OUTPUT_TAIL else "…" + text[-OUTPUT_TAIL:]


def parse_result(stdout):
    for line in reversed((stdout or "").splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    return None


def run_isolated(scenario, mode, *, timeout, python=None, env=None):
    """Run one scenario in a fresh `python -m repro._jax._child` and return its Outcome."""
    cmd = [python or sys.executable, "-m", "repro._jax._child", scenario, mode]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        return Outcome(scenario, mode, "timeout", message=f"no result within {timeout:g} s",
                       output=_tail(stdout + stderr))
    data = parse_result(stdout)
    if data is not None and proc.returncode == 0:
        return Outcome.from_dict(data)
    outcome = Outcome.from_dict(data) if data is not None else Outcome(scenario, mode, "crash")
    outcome.status, outcome.returncode = "crash", proc.returncode
    reason = (f"killed by signal {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
              else f"exited with code {proc.returncode}")
    kept = " after reporting its result" if data is not None else " without a result"
    outcome.message = reason + kept
    outcome.output = _tail(stdout.replace(RESULT_MARKER, "[result]") + stderr)
    return outcome


def run_many(pairs, *, timeout, jobs=2, python=None):
    """Run (scenario, mode) pairs isolated, `jobs` at a time; results in input order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_isolated, s, m, timeout=timeout, python=python) for s, m in pairs]
        return [f.result() for f in futures]
