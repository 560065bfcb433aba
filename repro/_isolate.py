"""Run scenarios in child processes so a segfault or hang is recorded, not fatal. No JAX.

The child prints each Outcome as JSON behind RESULT_MARKER as soon as it has it. Two ways
to use children:
- `run_isolated`: one child per scenario (the CLI default).
- `run_batch`: one child runs many scenarios (one JAX import, shared warm-up); if it
  crashes or hangs, the scenario it was on is recorded as CRASH/TIMEOUT and a fresh child
  carries on with the rest, so nothing already measured is lost and nothing is skipped.
A child killed by a signal after reporting (e.g. a crash at exit) keeps its results, each
marked as a crash with what it printed.
"""

import concurrent.futures
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from ._outcome import Outcome

RESULT_MARKER = "@@repro-outcome@@"
OUTPUT_TAIL = 4000


def _tail(text):
    text = text or ""
    return text if len(text) <= OUTPUT_TAIL else "…" + text[-OUTPUT_TAIL:]


def parse_result(line):
    if line.startswith(RESULT_MARKER):
        return json.loads(line[len(RESULT_MARKER):])
    return None


def _describe_exit(returncode):
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class _Child:
    """A child process whose stdout lines arrive on a queue (so waits can time out)."""

    def __init__(self, pairs, python, env):
        cmd = [python or sys.executable, "-m", "repro._jax._child", *[f"{s}:{m}" for s, m in pairs]]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        self.lines, self.stderr, self.printed = queue.Queue(), [], []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        self._err = threading.Thread(target=self._drain, daemon=True)
        self._err.start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line)
        q.put(None)

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def next_result(self, timeout):
        """The next Outcome dict; None at EOF; raises queue.Empty on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            data = parse_result(line)
            if data is not None:
                return data
            self.printed.append(line)

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def finish(self):
        self.proc.wait()
        self._err.join(timeout=5)
        return self.proc.returncode

    def output(self):
        return _tail("".join(self.printed) + "".join(self.stderr))


def run_batch(pairs, *, timeout, python=None, env=None):
    """Run (scenario, mode) pairs in as few children as crashes allow; `timeout` is per pair."""
    pairs, results = list(pairs), []
    while len(results) < len(pairs):
        todo = pairs[len(results):]
        child, got = _Child(todo, python, env), []
        try:
            while len(got) < len(todo):
                data = child.next_result(timeout)
                if data is None:
                    break
                got.append(Outcome.from_dict(data))
        except queue.Empty:
            child.kill()
            child.finish()
            scenario, mode = todo[len(got)]
            results += got + [Outcome(scenario, mode, "timeout", message=f"no result within {timeout:g} s",
                                      output=child.output())]
            continue
        returncode = child.finish()
        if returncode != 0:
            reason = _describe_exit(returncode)
            if len(got) == len(todo):  # all reported, then the process died: a crash at exit
                for outcome in got:
                    outcome.message = f"{reason} after reporting its result ({outcome.observed()})"
                    outcome.status, outcome.returncode, outcome.output = "crash", returncode, child.output()
            else:  # died during the next pair: the results before it stand
                scenario, mode = todo[len(got)]
                got.append(Outcome(scenario, mode, "crash", returncode=returncode,
                                   message=f"{reason} without a result", output=child.output()))
        results += got
    return results


def run_isolated(scenario, mode, *, timeout, python=None, env=None):
    """Run one scenario in a fresh child and return its Outcome."""
    return run_batch([(scenario, mode)], timeout=timeout, python=python, env=env)[0]


def run_many(pairs, *, timeout, jobs=2, python=None, batch=False):
    """Run pairs, `jobs` children at a time; results in input order.

    batch=False: a child per pair. batch=True: the pairs are split into `jobs` batches.
    """
    pairs = list(pairs)
    if batch:
        chunks = [pairs[i::jobs] for i in range(jobs)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            done = list(pool.map(lambda c: run_batch(c, timeout=timeout, python=python), chunks))
        by_pair = {}
        for chunk, outcomes in zip(chunks, done):
            by_pair.update({pair: o for pair, o in zip(chunk, outcomes)})
        return [by_pair[p] for p in pairs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_isolated, s, m, timeout=timeout, python=python) for s, m in pairs]
        return [f.result() for f in futures]
