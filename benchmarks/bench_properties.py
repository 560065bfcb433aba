"""Benchmark: generated examples per minute through every scenario, in one environment.

    python benchmarks/bench_properties.py [--examples 20] [--python PATH] [--workers N]

Runs the property test's workload -- Hypothesis `cases()`, every scenario, mode drawn per
example, derandomized like the `ci` profile, scenarios spread over `repro._workers.Workers`
exactly as tests/test_properties.py does -- four times, each in a fresh process:

- cold:        N workers (default: one per core), empty persistent XLA compilation cache,
               the workers' fast-compile XLA flags (as the tests run);
- warm:        the same examples again, with the cache the cold run filled;
- 1 worker:    cold again with a single worker, to show what the parallelism buys;
- default XLA: cold again without the fast-compile flags (REPRO_FAST_COMPILE=0), to show
               what they buy and that every verdict (outcome signature, iterations) is the
               same; final losses may differ in rounding, and the largest drift is printed;
- no oracle:   cold again without the flat-vector reference comparison (REPRO_ORACLE=0), to
               show what the oracle costs per example (its verdicts are not compared: without
               the oracle a wrong result cannot be told from a right one).

`--runs` picks a subset, e.g. `--runs cold,"no oracle"`.

Prints examples/min for each, the ratios, and any example whose verdicts differ between
runs. Figures, not assertions: the target is >= 30 examples/min, cold, on the 2-core
reference machine.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

WORKER = r"""
import json, sys, time
from hypothesis import HealthCheck, given, settings, strategies as st
from repro._catalogue import GENERATED_BUDGETS, MODES, SCENARIOS
from repro._workers import Workers
from repro.strategies import cases

examples, count, seconds = int(sys.argv[1]), int(sys.argv[2]), {s: 0.0 for s in SCENARIOS}
statuses = []

@settings(max_examples=examples, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(cases(), st.sampled_from(MODES))
def work(case, mode):
    outcomes = pool.run([(case.source, name, mode) for name in SCENARIOS], budget=GENERATED_BUDGETS[mode])
    for o in outcomes:
        seconds[o.scenario] += o.seconds or 0.0
    statuses.append([(o.scenario, o.signature(), o.iterations, o.final_loss) for o in outcomes])

with Workers(count) as pool:
    pool.start()
    start = time.perf_counter()
    work()
    elapsed = time.perf_counter() - start
    flags, peak, recycled = pool.xla_flags, pool.peak_rss, pool.recycled
print(json.dumps({"examples": len(statuses), "seconds": elapsed, "per_scenario": seconds,
                  "workers": count, "statuses": statuses, "xla_flags": flags, "peak_rss": peak,
                  "recycled": recycled}))
"""


def run(python, examples, workers, cache, fast_compile=True, oracle=True):
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0", "REPRO_FAST_COMPILE": "1" if fast_compile else "0",
           "REPRO_ORACLE": "1" if oracle else "0"}
    proc = subprocess.run([python, "-c", WORKER, str(examples), str(workers)], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        sys.exit(f"bench_properties: worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report_differences(results):
    """Same examples, same versions: every run must reach the same verdicts (scenario,
    outcome signature, iterations). Print where they do not, and how far final losses drift
    (compiler flags may round differently in the last bits)."""
    (first_label, first), *others = results.items()
    agree, drift = True, 0.0
    for label, other in others:
        for index, (a, b) in enumerate(zip(first["statuses"], other["statuses"])):
            facts_a, facts_b = [x[:3] for x in a], [x[:3] for x in b]
            if facts_a != facts_b:
                agree = False
                diff = [(x, y) for x, y in zip(facts_a, facts_b) if x != y]
                print(f"note: example {index} differs between {first_label} and {label}: {diff[:2]}")
                break
            drift = max([drift] + [abs(x[3] - y[3]) for x, y in zip(a, b) if x[3] is not None and y[3] is not None])
    if agree:
        print(f"verdicts (outcome signature, iterations) identical in all runs for all "
              f"{len(first['statuses'])} examples; largest final-loss difference {drift:.2g}")


RUNS = ("cold", "warm", "1 worker", "default XLA", "no oracle")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--python", default=sys.executable, help="interpreter of the env to measure")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of: {', '.join(RUNS)}")
    args = parser.parse_args()
    wanted = [r.strip() for r in args.runs.split(",") if r.strip()]
    if not wanted or set(wanted) - set(RUNS) or ("warm" in wanted and "cold" not in wanted):
        sys.exit(f"bench_properties: --runs takes {', '.join(RUNS)} (warm needs cold)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="repro-bench-cache-") as cache:
        if "cold" in wanted:
            results["cold"] = run(args.python, args.examples, args.workers, cache)
        if "warm" in wanted:
            results["warm"] = run(args.python, args.examples, args.workers, cache)
    others = {"1 worker": dict(workers=1), "default XLA": dict(fast_compile=False), "no oracle": dict(oracle=False)}
    for label, options in others.items():
        if label in wanted:
            with tempfile.TemporaryDirectory(prefix="repro-bench-cache-") as cache:
                results[label] = run(args.python, args.examples, options.pop("workers", args.workers), cache, **options)
    rates = {}
    for label, r in results.items():
        rates[label] = 60 * r["examples"] / r["seconds"]
        busy = sum(r["per_scenario"].values()) / (r["seconds"] * r["workers"])
        print(f"{label:11}  {r['workers']} worker(s)  {r['examples']} examples in {r['seconds']:.1f} s"
              f"  = {rates[label]:.1f} examples/min  (workers busy {100 * busy:.0f}%; peak worker resident "
              f"memory {r.get('peak_rss', 0) / 2**30:.1f} GiB, {r.get('recycled', 0)} workers recycled)")
    ratios = [(f"{args.workers} workers / 1 worker (cold)", "cold", "1 worker"), ("warm / cold", "warm", "cold"),
              ("fast-compile flags / default XLA (cold)", "cold", "default XLA")]
    shown = [f"{text} = {rates[a] / rates[b]:.2f}x" for text, a, b in ratios if a in rates and b in rates]
    if shown:
        print("ratios: " + ", ".join(shown))
    if "cold" in rates and "no oracle" in rates:
        print(f"oracle cost: cold time per example with / without the reference comparison = "
              f"{rates['no oracle'] / rates['cold']:.2f}x ({100 * (rates['no oracle'] / rates['cold'] - 1):+.0f}%)")
    if "cold" in results:
        print(f"fast-compile XLA_FLAGS: {results['cold']['xla_flags'] or '(none)'}")
        _report_differences({k: v for k, v in results.items() if k != "no oracle"})
        per = results["cold"]["per_scenario"]
        total = sum(per.values()) or 1.0
        print("cold time per scenario: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in
                                                       sorted(per.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
