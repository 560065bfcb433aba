"""`Workers`: long-lived scenario workers that run generated cases on demand, in parallel. No JAX.

Used by the property tests, the survey and their benchmarks. Each worker is a
`python -m repro._jax._child --serve` process (repro._isolate._Child) speaking repro._protocol;
its environment follows repro._policy.
"""

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading

from ._catalogue import NO_LINESEARCH, Budget
from ._isolate import _Child, _describe_exit
from ._outcome import Outcome
from ._policy import (_without_unknown, default_max_rss, default_workers, fast_compile_candidates,
                      jax_cache_env, resident_bytes)
from ._protocol import REFERENCE_JOB, REFERENCE_STORE_ENV
from ._settings import enabled


class Workers:
    """Long-lived scenario workers (`python -m repro._jax._child --serve`), one per core.

    `run(jobs)` takes (source, scenario, mode) triples, where `source` is standalone case
    code defining model, loss and optimum, spreads them over the workers and returns their
    Outcomes in input order. Each worker imports JAX once and keeps its caches warm across
    jobs; all share one persistent compilation cache (`jax_cache_env`; `compilation_cache=False`:
    none, as the survey runs, so that no measured fact rests on a cache). A worker that
    crashes (twice: see `_ask`) or hangs costs only the job it was on (recorded as CRASH or
    TIMEOUT with what it printed); a fresh worker takes its place.

    Jobs start longest-expected first (by the mean seconds each (scenario, mode) has taken
    so far, unseen ones first), so a long job does not start last and leave a worker idle.

    Workers compile with FAST_COMPILE_FLAGS (the first set this XLA accepts; `xla_flags`
    says which) unless XLA_FLAGS is set or REPRO_FAST_COMPILE=0: generated cases are
    mostly new programs, so compiling is most of their cost. Finding the set costs a JAX
    import for every set this XLA rejects; a caller that already knows what this jaxlib
    took passes it as `xla_flags=` and the workers start with it at once.

    A case's working scenarios are all judged against the same flat-vector reference (the
    oracle), and compiling it is most of what the oracle costs. So that it is computed once per
    case, not once per worker, the pool gives its workers a shared store for reference records,
    and `run` sends a `_reference:NAME` job for each case with two or more scenarios judged
    against the line-search reference ahead of them: one worker compiles it while the other
    runs scenarios, and a worker that needs it before it is ready waits for it
    (`share_references=False`, or a pool of one worker: each worker computes its own).

    Every new module structure leaves compiled programs behind in a worker, so a worker whose
    resident memory has grown past `max_rss` bytes (default: `default_max_rss()`) is retired
    after its job and a fresh one takes the next: memory stays bounded however many jobs run.
    `peak_rss` and `recycled` say what happened.
    """

    def __init__(self, count=None, *, timeout=600, start_timeout=300, python=None, env=None, max_rss=None,
                 compilation_cache=True, share_references=True, xla_flags=None):
        self.count, self.timeout, self.python = count or default_workers(), timeout, python
        self.max_rss = max_rss or default_max_rss(self.count)
        self.peak_rss, self.recycled = 0, 0
        self.start_timeout = start_timeout  # importing JAX into a cold env can take a while
        self.env = {**(jax_cache_env(python) if compilation_cache else {}), **(env or {})}
        self.oracle = enabled("REPRO_ORACLE", {**os.environ, **self.env})
        # One worker has no one to share with, and a shared record is computed for the whole
        # budget ahead of time, where a worker's own is extended only as far as a scenario needs.
        sharing = self.oracle and share_references and self.count > 1
        self._store = tempfile.mkdtemp(prefix="repro-references-") if sharing else None
        if self._store:
            self.env[REFERENCE_STORE_ENV] = self._store
        # narrowed to one by the first start; `xla_flags`: the ones this XLA is known to take
        self._flags = [xla_flags] if xla_flags is not None else list(fast_compile_candidates(self.env))
        self._probing = threading.Lock()
        self._slots = [None] * self.count
        self._seconds = {}  # (scenario, mode) -> (total seconds, runs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        """Start every worker and wait until each has imported JAX (so later timings are work)."""
        for slot in range(self.count):
            self._spawn(slot)
        return self

    @property
    def xla_flags(self):
        """The XLA_FLAGS the workers run with (known once one has started)."""
        return self._flags[0] if len(self._flags) == 1 else None

    def _spawn(self, slot):
        if self._slots[slot] is None and len(self._flags) > 1:
            with self._probing:  # one worker at a time finds the flags this XLA accepts
                return self._start(slot)
        return self._start(slot)

    def _start(self, slot):
        while self._slots[slot] is None:
            child = _Child(["--serve"], self.python, {**self.env, "XLA_FLAGS": self._flags[0]},
                           stdin=subprocess.PIPE)
            try:
                ready = child.next_result(self.start_timeout)
            except queue.Empty:
                ready = None
            if ready == {}:
                self._slots[slot], self._flags[:] = child, self._flags[:1]
                break
            child.kill()
            child.finish()
            if ready is None and len(self._flags) > 1 and "XLA_FLAGS" in child.output():
                narrowed = _without_unknown(self._flags[0], child.output())
                if narrowed is None:
                    self._flags.pop(0)  # this XLA does not know a flag: try the next set
                else:
                    self._flags[0] = narrowed  # the same set without the flags it named
                continue
            raise RuntimeError(f"a scenario worker did not start: {child.output()}")
        return self._slots[slot]

    def close(self):
        for index, child in enumerate(self._slots):
            if child is not None:
                self._retire(index, child)
        if self._store:
            shutil.rmtree(self._store, ignore_errors=True)

    def _retire(self, slot, child):
        """Stop an idle worker. Killed, not asked to exit: it holds nothing to save, and a JAX
        process that has compiled a few hundred programs takes seconds to tear itself down, time
        the next cell or job would wait for."""
        child.proc.stdin.close()
        child.kill()
        child.finish()
        self._slots[slot] = None

    def _recycle_if_big(self, slot, child):
        rss = resident_bytes(child.proc.pid)
        self.peak_rss = max(self.peak_rss, rss or 0)
        if rss and rss > self.max_rss:
            self._retire(slot, child)
            self.recycled += 1

    def run(self, jobs, budget=None):
        """Outcomes of (source, scenario, mode[, budget]) jobs, in order. A budget is a dict of
        repro._catalogue.Budget fields; `budget` is the one for jobs that carry none (default:
        the Budget defaults)."""
        jobs = [(*job[:3], job[3] if len(job) > 3 else budget) for job in jobs]
        asked = len(jobs)
        jobs += self._reference_jobs(jobs)
        todo = queue.SimpleQueue()
        for index in range(asked, len(jobs)):  # the shared references first: others wait for them
            todo.put(index)
        for index in sorted(range(asked), key=lambda i: -self._expected_seconds(jobs[i][1:3])):
            todo.put(index)
        results = [None] * len(jobs)

        def drain(slot):
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                results[index] = self._ask(slot, *jobs[index])

        threads = [threading.Thread(target=drain, args=(slot,)) for slot in range(min(self.count, len(jobs)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for job, outcome in zip(jobs, results):
            total, runs = self._seconds.get(job[1:3], (0.0, 0))
            self._seconds[job[1:3]] = (total + (outcome.seconds or 0.0), runs + 1)
        return results[:asked]

    def _reference_jobs(self, jobs):
        """One `_reference:NAME` job per case (source) with two or more scenarios judged against
        the line-search reference, for the longest budget among them (none without the oracle)."""
        if not self._store:
            return []
        by_source = {}
        for source, scenario, mode, budget in jobs:
            if not scenario.startswith("_") and scenario not in NO_LINESEARCH:
                by_source.setdefault(source, []).append((scenario, mode, budget))
        extra = []
        for source, found in by_source.items():
            if len(found) > 1:
                steps = max(Budget(**(budget or {})).max_steps for _, _, budget in found)
                scenario, mode, budget = found[0]
                extra.append((source, REFERENCE_JOB + scenario, mode, {**(budget or {}), "max_steps": steps}))
        return extra

    def _expected_seconds(self, key):
        total, runs = self._seconds.get(key, (0.0, 0))
        return total / runs if runs else float("inf")

    def _ask(self, slot, source, scenario, mode, budget=None):
        """Run one job; a crash is retried once in a fresh worker, since a process that has
        compiled many XLA programs can die late for reasons of its own (how often:
        docs/performance.md). Only a crash that repeats is the job's verdict."""
        outcome = self._ask_once(slot, source, scenario, mode, budget)
        if outcome.status != "crash":
            return outcome
        retried = self._ask_once(slot, source, scenario, mode, budget)
        if retried.status != "crash":
            retried.output = f"(a long-running worker died on this job first: {outcome.message}; " \
                             f"rerun in a fresh worker)\n{retried.output or ''}"
        return retried

    def _ask_once(self, slot, source, scenario, mode, budget=None):
        try:
            child = self._spawn(slot)
        except RuntimeError as error:
            return Outcome(scenario, mode, "crash", message=str(error).splitlines()[0], output=str(error))
        try:
            job = {"source": source, "scenario": scenario, "mode": mode, "budget": budget or {}}
            child.proc.stdin.write(json.dumps(job) + "\n")
            child.proc.stdin.flush()
            data = child.next_result(self.timeout)
        except BrokenPipeError:
            data = None
        except queue.Empty:
            child.kill()
            child.finish()
            self._slots[slot] = None
            return Outcome(scenario, mode, "timeout", message=f"no result within {self.timeout:g} s",
                           output=child.output())
        if data is not None:
            self._recycle_if_big(slot, child)
            return Outcome.from_dict(data)
        child.kill()  # it closed its output: it is dead or dying
        returncode = child.finish()
        self._slots[slot] = None
        return Outcome(scenario, mode, "crash", returncode=returncode,
                       message=f"{_describe_exit(returncode)} without a result", output=child.output())
