"""Run scenarios in child processes so a segfault or hang is recorded, not fatal. No JAX.

The child prints each Outcome as JSON behind RESULT_MARKER as soon as it has it. Three ways
to use children:
- `run_isolated`: one child per scenario (the CLI default).
- `run_batch`: one child runs many scenarios (one JAX import, shared warm-up); if it
  crashes or hangs, the scenario it was on is recorded as CRASH/TIMEOUT and a fresh child
  carries on with the rest, so nothing already measured is lost and nothing is skipped.
- `Workers`: long-lived children that run generated cases (source code) on demand, in
  parallel; the property tests and their benchmark use them.
A child killed by a signal after reporting (e.g. a crash at exit) keeps its results, each
marked as a crash with what it printed.
"""

import concurrent.futures
import functools
import glob
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from ._catalogue import NO_LINESEARCH, Budget
from ._outcome import Outcome
from ._settings import enabled, setting

RESULT_MARKER = "@@repro-outcome@@"
# A Workers job whose scenario is REFERENCE_JOB + NAME computes the reference record scenario
# NAME is judged against and leaves it in the pool's store (REFERENCE_STORE_ENV, a directory)
# for the workers that judge the case's other scenarios (repro._jax._shared).
REFERENCE_JOB = "_reference:"
REFERENCE_STORE_ENV = "REPRO_REFERENCE_STORE"
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


def run_isolated(scenario, mode, *, timeout, python=None, env=None, problem=None, on_outcome=None):
    """Run one scenario in a fresh child and return its Outcome."""
    return run_batch([(scenario, mode)], timeout=timeout, python=python, env=env, problem=problem,
                     on_outcome=on_outcome)[0]


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


# jaxlib releases whose persistent compilation cache made compiled programs compute wrong
# results here ([first bad, first good) ranges), found by the survey under jit on CPU: with the
# cache, `partition_fix` on a module of float arrays only departs from the flat-vector reference
# at iteration 1 and other working patterns stop converging (with one worker or two, with or
# without FAST_COMPILE_FLAGS); without it every working pattern agrees. jaxlib 0.5.0 and 0.6.1
# onwards do not show it. The measurement: docs/property-tests.md and docs/survey-findings.md.
CACHE_UNSAFE_JAXLIB = (("0.5.1", "0.6.1"),)


def _release(version):
    """(0, 5, 1) for "0.5.1": standard library only, because the scenario child imports this
    module, and an env must be able to report "No module named jax" without `packaging`."""
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def compilation_cache_safe(jaxlib_version):
    """Whether a jaxlib's persistent compilation cache can be trusted (CACHE_UNSAFE_JAXLIB)."""
    if not jaxlib_version:
        return True
    version = _release(jaxlib_version)
    return not any(_release(lo) <= version < _release(hi) for lo, hi in CACHE_UNSAFE_JAXLIB)


def _env_jaxlib(env_dir):
    """The jaxlib version installed in the env at `env_dir` (from its dist-info), or None."""
    found = glob.glob(os.path.join(env_dir, "lib", "python*", "site-packages", "jaxlib-*.dist-info"))
    return os.path.basename(found[0])[len("jaxlib-"):-len(".dist-info")] if found else None


def jax_cache_env(python=None):
    """Env vars for a persistent XLA compilation cache inside `python`'s env (so a rebuilt env
    starts empty); {} if REPRO_JAX_CACHE=0, if JAX_COMPILATION_CACHE_DIR is already set, if
    the env is not writable, or if its jaxlib's cache gave wrong results (CACHE_UNSAFE_JAXLIB).

    Tracing, and so every error a scenario raises, still happens on each run; only compiled
    executables of identical programs are reused.
    """
    if not enabled("REPRO_JAX_CACHE") or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return {}
    env_dir = os.path.dirname(os.path.dirname(os.path.abspath(python or sys.executable)))
    if not os.access(env_dir, os.W_OK) or not compilation_cache_safe(_env_jaxlib(env_dir)):
        return {}
    return {"JAX_COMPILATION_CACHE_DIR": os.path.join(env_dir, ".jax-cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


# XLA CPU flags that make compiling faster without changing what a program computes, most
# preferred first. XLA aborts on a flag it does not know and names it, so a worker that fails
# to start retries without the flags named (`_without_unknown`), else with the next set.
# Measured (newest-py311, jax 0.10.2): compiling the L-BFGS step or its line search takes
# about a third of the time with the first two flags; over the 100-example benchmark every verdict
# (outcome signature, iterations) is the same with and without them, and final losses differ
# only in rounding (at most 3e-10). --xla_cpu_parallel_codegen_split_count=1 compiles each
# program as one LLVM module instead of splitting it for threads that two busy cores cannot
# run anyway: measured on a survey cell (jax 0.6.2) 16% less CPU for the same observations.
# What each XLA takes (the survey's cells record it): jax 0.4.30-0.5.0 only the optimisation
# level (which alone still cuts compile time by 30-60%), 0.5.1-0.5.2 and 0.11.1 onwards that
# and the split count, 0.5.3-0.11.0 all three.
FAST_COMPILE_FLAGS = (
    "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0 --xla_cpu_parallel_codegen_split_count=1",
    "--xla_backend_optimization_level=0",
    "",
)


def _without_unknown(flags, output):
    """`flags` without those XLA's abort message in `output` names as unknown ("Unknown flags
    in XLA_FLAGS: --a=1 --b=2"), or None if it names none of them."""
    match = re.search(r"Unknown flags? in XLA_FLAGS:\s*(.*)", output)
    if not match:
        return None
    unknown = {flag.split("=", 1)[0] for flag in match.group(1).split()}
    kept = [flag for flag in flags.split() if flag.split("=", 1)[0] not in unknown]
    return " ".join(kept) if len(kept) < len(flags.split()) else None


def fast_compile_candidates(env=None):
    """XLA_FLAGS values for a worker to try in order: FAST_COMPILE_FLAGS, or only the
    caller's own XLA_FLAGS if set, or only "" if REPRO_FAST_COMPILE=0."""
    merged = {**os.environ, **(env or {})}
    if "XLA_FLAGS" in merged:
        return (merged["XLA_FLAGS"],)
    if not enabled("REPRO_FAST_COMPILE", merged):
        return ("",)
    return FAST_COMPILE_FLAGS


def default_workers():
    """REPRO_WORKERS, else one worker per core."""
    value = setting("REPRO_WORKERS")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


def resident_bytes(pid):
    """Resident memory of process `pid` in bytes (Linux /proc), or None where unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def default_max_rss(count):
    """REPRO_WORKER_MAX_RSS_MB, else a third of this machine's memory shared by `count` workers
    (capped at 4 GiB: measured, a worker that has compiled a few hundred module structures
    holds several GiB, and a fresh one costs only the JAX import)."""
    value = setting("REPRO_WORKER_MAX_RSS_MB")
    if value.isdigit() and int(value) > 0:
        return int(value) * 2**20
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return min(4 * 2**30, total // (3 * max(1, count)))


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
        compiled many XLA programs can die late for reasons of its own (measured: one crash in
        800 jobs of bench_properties). Only a crash that repeats is the job's verdict."""
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
