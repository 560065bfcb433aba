"""Entry point of an isolated scenario process.

- `python -m repro._jax._child [--problem FILE.py] NAME:MODE ...` runs the pairs on the
  built-in problem (or the problem file's), in order, and prints one line
  `RESULT_MARKER <json Outcome>` after each, flushed, so the parent keeps every result
  measured before a crash or hang.
- `python -m repro._jax._child --check-problem FILE.py` loads a problem file and answers
  `{"contents": {...}}`, or `{"error": "one line"}` when the file is not usable.
- `python -m repro._jax._child --serve` is a long-lived worker (`repro._workers.Workers`):
  it reads one JSON job per stdin line, `{"source", "scenario", "mode", "budget"}` where
  `source` defines `model`, `loss` and `optimum` (a generated case) and `budget` holds
  repro._catalogue.Budget fields (empty: the defaults), and answers each the same way.
  A job whose scenario is `_reference:NAME` computes the flat-vector reference scenario NAME
  is judged against, for the whole budget, and shares it with the pool's other workers
  (REPRO_REFERENCE_STORE, `_shared`): Workers sends one ahead of a case's scenarios.
  One JAX import and warm caches serve many jobs. It prints an empty result `{}` once
  it has imported JAX and started its backend, so the parent can start workers before
  timing anything, and knows XLA accepted its XLA_FLAGS.

REPRO_ORACLE=0 skips the flat-vector reference comparison (`repro._jax._oracle`): only the
benchmarks use it, to measure what the oracle costs.
"""

import collections
import ctypes
import gc
import hashlib
import json
import sys
import time

from .._catalogue import BUILTIN_PROBLEM, Budget
from .._protocol import REFERENCE_JOB, RESULT_MARKER
from .._outcome import Outcome
from .._settings import enabled


def _self_test(name):
    """The catalogue's `_crash` and `_hang` entries: prove the parent survives both."""
    if name == "_crash":
        ctypes.string_at(0)  # segfault
    if name == "_hang":
        time.sleep(3600)


_CASES_KEPT = 24  # a survey cell interleaves the jobs of its 17 modules


def _oracle():
    return enabled("REPRO_ORACLE")


def _report(outcome):
    sys.stdout.write(f"{RESULT_MARKER} {json.dumps(outcome.to_dict())}\n")
    sys.stdout.flush()


def _load(path):
    """(model, loss, optimum, label): the problem file's, or the built-in problem (BUILTIN_PROBLEM)."""
    if path:
        from ._problem_file import load_problem

        return (*load_problem(path), None)
    from ._problems import mlp_problem

    return (*mlp_problem(), BUILTIN_PROBLEM)


def main(pairs, problem_file=None):
    problem = None
    for pair in pairs:
        name, mode = pair.split(":")
        _self_test(name)
        from ._run import run_scenario

        problem = problem or _load(problem_file)
        model, loss, optimum, label = problem
        _report(run_scenario(name, mode, model, loss, optimum=optimum, problem=label, oracle=_oracle()))


def check_problem(path):
    """Answer whether the problem file is usable here (one RESULT line), exit 0 either way."""
    from .._catalogue import UsageError
    from ._problem_file import describe_problem

    try:
        answer = describe_problem(path)
    except UsageError as error:
        answer = {"error": str(error)}
    sys.stdout.write(f"{RESULT_MARKER} {json.dumps(answer)}\n")
    sys.stdout.flush()


def _prefetch(name, mode, case, budget, share):
    """Run a `_reference:NAME` job: the reference record NAME needs, computed and shared."""
    from ._run import prefetch_reference

    start = time.perf_counter()
    try:
        steps = prefetch_reference(name.split(":", 1)[1], case["model"], case["loss"], budget, share)
    except Exception as error:  # noqa: BLE001 -- the scenarios compute it themselves then
        return Outcome(name, mode, "error", exc_type=type(error).__name__, message=str(error)[:500])
    return Outcome(name, mode, "converged", iterations=steps, seconds=round(time.perf_counter() - start, 3))


def serve(lines):
    import jax

    from ._run import load_case, run_scenario

    jax.devices()  # start the backend now: XLA reads (and may reject) XLA_FLAGS here
    # Tracing makes a lot of short-lived garbage, and every collection walked JAX's own
    # objects again: frozen, and collected less often (what it saves: docs/performance.md).
    # Nothing computed changes.
    gc.freeze()
    gc.set_threshold(20000, 20, 20)
    sys.stdout.write(f"{RESULT_MARKER} {{}}\n")  # ready: JAX is imported and its backend up
    sys.stdout.flush()
    # The last few cases' sources -> their namespaces (model, loss, optimum...): one build per
    # case, and the same model object each time, so the flat-vector references computed for it
    # (cached by model identity) serve every scenario and mode of the case.
    built = collections.OrderedDict()
    for line in lines:
        job = json.loads(line)
        name, mode, source = job["scenario"], job["mode"], job["source"]
        _self_test(name)
        if source not in built:
            try:
                built[source] = load_case(source)
            except Exception as error:  # a case that does not build is its own finding
                built[source] = error
            while len(built) > _CASES_KEPT:
                built.popitem(last=False)
        built.move_to_end(source)
        failed = built[source]
        if isinstance(failed, Exception):
            _report(Outcome(name, mode, "error", exc_type=type(failed).__name__, message=str(failed)[:500],
                            phase="build"))
            continue
        case = built[source]
        budget = Budget(**job.get("budget") or {})
        share = hashlib.sha256(source.encode()).hexdigest()[:32]
        if name.startswith(REFERENCE_JOB):
            _report(_prefetch(name, mode, case, budget, share))
            continue
        _report(run_scenario(name, mode, case["model"], case["loss"], optimum=case.get("optimum"), budget=budget,
                             problem=case.get("problem"), oracle=_oracle(), share=share))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--serve"]:
        serve(sys.stdin)
    elif args[:1] == ["--check-problem"]:
        check_problem(args[1])
    elif args[:1] == ["--problem"]:
        main(args[2:], problem_file=args[1])
    else:
        main(args)
