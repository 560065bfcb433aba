"""Run scenarios in child processes so a segfault or hang is recorded, not fatal. No JAX.

The child prints each Outcome as JSON behind RESULT_MARKER as soon as it has it. Three ways
to use children:
- `run_many`: a child per scenario, a few at a time (the CLI default), or `--batch` batches.
- `run_batch`: one child runs many scenarios (one JAX import, shared warm-up); if it
  crashes or hangs, the scenario it was on is recorded as CRASH/TIMEOUT and a fresh child
  carries on with the rest, so nothing already measured is lost and nothing is skipped.
- `Workers` (repro._workers): long-lived children that run generated cases (source code) on
  demand, in parallel; the property tests, the survey and their benchmarks use them.
The line protocol the children speak is repro._protocol; the XLA, cache and memory policy
their environments get is repro._policy.
A child killed by a signal after reporting (e.g. a crash at exit) keeps its results, each
marked as a crash with what it printed.
"""

import concurrent.futures
import functools
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from ._outcome import Outcome
from ._protocol import OUTPUT_TAIL, parse_result

def _tail(text):
    text = text or ""
    return text if len(text) <= OUTPUT_TAIL else "…" + text[-OUTPUT_TAIL:]


def _describe_exit(returncode):
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class _Child:
    """A child process whose stdout lines arrive on a queue (so waits can time out)."""

    def __init__(self, args, python, env, stdin=None):
        cmd = [python or sys.executable, "-m", "repro._jax._child", *args]
        self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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


def run_batch(pairs, *, timeout, python=None, env=None, problem=None, on_outcome=None):
    """Run (scenario, mode) pairs in as few children as crashes allow; `timeout` is per pair.

    `problem`: a problem file to run them on instead of the built-in problem.
    `on_outcome(outcome, seconds)` is called as each pair finishes (from this thread), with the
    wall seconds since the previous one finished in this child (or since it started): progress.
    A child that dies at exit after reporting turns its results into crashes: each is reported
    again then, as a crash, with seconds None."""
    pairs, results = list(pairs), []
    report = on_outcome or (lambda outcome, seconds: None)
    while len(results) < len(pairs):
        todo = pairs[len(results):]
        args = (["--problem", problem] if problem else []) + [f"{s}:{m}" for s, m in todo]
        child, got, since = _Child(args, python, env), [], time.perf_counter()
        try:
            while len(got) < len(todo):
                data = child.next_result(timeout)
                if data is None:
                    break
                got.append(Outcome.from_dict(data))
                report(got[-1], time.perf_counter() - since)
                since = time.perf_counter()
        except queue.Empty:
            child.kill()
            child.finish()
            scenario, mode = todo[len(got)]
            results += got + [Outcome(scenario, mode, "timeout", message=f"no result within {timeout:g} s",
                                      output=child.output())]
            report(results[-1], time.perf_counter() - since)
            continue
        returncode = child.finish()
        if returncode != 0:
            reason = _describe_exit(returncode)
            if len(got) == len(todo):  # all reported, then the process died: a crash at exit
                for outcome in got:
                    outcome.message = f"{reason} after reporting its result ({outcome.observed()})"
                    outcome.status, outcome.returncode, outcome.output = "crash", returncode, child.output()
                    report(outcome, None)
            else:  # died during the next pair: the results before it stand
                scenario, mode = todo[len(got)]
                got.append(Outcome(scenario, mode, "crash", returncode=returncode,
                                   message=f"{reason} without a result", output=child.output()))
                report(got[-1], time.perf_counter() - since)
        results += got
    return results


def run_many(pairs, *, timeout, jobs=2, python=None, batch=False, env=None, problem=None, on_outcome=None):
    """Run pairs, `jobs` children at a time; results in input order. `env`: extra variables;
    `problem`: a problem file; `on_outcome`: see run_batch (called from several threads).

    batch=False: a child per pair. batch=True: the pairs are split into `jobs` batches.
    """
    pairs, run = list(pairs), functools.partial(run_batch, timeout=timeout, python=python, env=env,
                                                problem=problem, on_outcome=on_outcome)
    if batch:
        chunks = [pairs[i::jobs] for i in range(jobs)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            done = list(pool.map(run, chunks))
        by_pair = {}
        for chunk, outcomes in zip(chunks, done):
            by_pair.update({pair: o for pair, o in zip(chunk, outcomes)})
        return [by_pair[p] for p in pairs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run, [pair]) for pair in pairs]
        return [f.result()[0] for f in futures]


def check_problem(path, *, python=None, timeout=300):
    """Load a problem file in a child of `python`: {"contents": flags} when it is usable there,
    {"error": one line} when it is not (or the child could not tell)."""
    child = _Child(["--check-problem", path], python, None)
    try:
        answer = child.next_result(timeout)
    except queue.Empty:
        child.kill()
        answer = {"error": f"loading it took more than {timeout:g} s"}
    child.finish()
    if answer is None:
        lines = child.output().strip().splitlines()
        answer = {"error": f"the check process died: {lines[-1] if lines else 'no output'}"}
    return answer
