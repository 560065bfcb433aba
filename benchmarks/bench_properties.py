"""Benchmark: generated examples per minute through every scenario, in this environment.

    python benchmarks/bench_properties.py [--examples 20] [--python PATH]

Runs the property test's workload (Hypothesis `cases()`, every scenario, mode drawn per
example, derandomized like the `ci` profile) in a fresh process twice: cold (empty XLA
compilation cache) and warm (the same examples again with JAX's persistent cache filled by
the first run). Prints examples/min for both and the share of time per scenario. Figures,
not assertions: the target is >= 30 examples/min on the 2-core reference machine.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

WORKER = r"""
import json, os, sys, time
import jax
from hypothesis import HealthCheck, given, settings, strategies as st
from repro._catalogue import MODES, SCENARIOS
from repro._jax._run import run_scenario
from repro.strategies import cases
seconds = {s: 0.0 for s in SCENARIOS}
count = [0]

@settings(max_examples=int(sys.argv[1]), derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(cases(), st.sampled_from(MODES))
def work(case, mode):
    count[0] += 1
    model, loss, optimum = case.build()
    for name in SCENARIOS:
        start = time.perf_counter()
        run_scenario(name, mode, model, loss, optimum=optimum)
        seconds[name] += time.perf_counter() - start

start = time.perf_counter()
work()
print(json.dumps({"examples": count[0], "seconds": time.perf_counter() - start, "per_scenario": seconds}))
"""


def run(python, examples, cache):
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    proc = subprocess.run([python, "-c", WORKER, str(examples)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"bench_properties: worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--python", default=sys.executable, help="interpreter of the env to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="repro-bench-cache-") as cache:
        results = {"cold": run(args.python, args.examples, cache), "warm": run(args.python, args.examples, cache)}
    for label, r in results.items():
        rate = 60 * r["examples"] / r["seconds"]
        print(f"{label:5}  {r['examples']} examples in {r['seconds']:.1f} s  = {rate:.1f} examples/min")
    per = results["cold"]["per_scenario"]
    total = sum(per.values()) or 1.0
    print("cold time per scenario: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in
                                                   sorted(per.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
