"""Benchmark `repro bisect`: environments built vs ceil(log2 N) + 2, and wall time.

    python benchmarks/bench_bisect.py                 # search logic (instant) + one real bisect
    python benchmarks/bench_bisect.py --logic-only    # only the search-logic table
    python benchmarks/bench_bisect.py --package jax --good 0.7.2 --bad 0.10.2 \
        --pin optax==0.2.8 --pin equinox==0.13.8      # another real range
    python benchmarks/bench_bisect.py --cache .repro-cache/envs   # reuse the bisect cache

The real bisect builds its envs in a fresh temporary folder unless --cache is given (uv's
wheel cache still applies), so "built" counts real environment builds. Prints figures only.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from repro import _bisect, _index  # noqa: E402
from repro._options import parse_pins  # noqa: E402


def logic_table():
    print("search logic, fake oracle: most environments over every possible change point")
    print(f"{'N':>5}  {'worst':>5}  {'bound':>5}")
    for n in (2, 3, 5, 8, 12, 16, 33, 100, 1000):
        versions = [str(i) for i in range(n)]
        worst = 0
        for change in range(1, n):
            oracle = lambda v, change=change: _bisect.Probe(v, signature="old" if int(v) < change else "new")
            worst = max(worst, _bisect.search(versions, oracle).environments)
        print(f"{n:>5}  {worst:>5}  {_bisect.env_bound(n):>5}" + ("" if worst <= _bisect.env_bound(n) else "  OVER"))


def real(args):
    pins = _bisect.check_pins(parse_pins(args.pin))
    candidates = _index.versions_between(args.package, args.good, args.bad)
    cache = args.cache or tempfile.mkdtemp(prefix="repro-bench-bisect-")
    oracle = _bisect.EnvProbe(_bisect.version_requirements(args.package, pins), [(args.scenario, args.mode)],
                               python="3.11", cache_dir=cache, timeout=600)
    start = time.perf_counter()
    result = _bisect.search(candidates, oracle)
    wall = time.perf_counter() - start
    built = sum(1 for p in result.probes if not p.reused)
    print(f"\nreal bisect {args.package} {args.good}..{args.bad} ({len(candidates)} candidates), "
          f"{args.scenario}[{args.mode}], pins {' '.join(args.pin) or 'none'}, env cache {cache}")
    for p in result.probes:
        print(f"  #{p.order} {p.version:<8} {'SKIP ' + p.reason if p.skipped else p.signature}  "
              f"build {'cached' if p.reused else f'{p.build_seconds:.1f} s'}, run {p.run_seconds:.1f} s")
    print(f"result: {result.status}; first changed {result.first_changed}, last unchanged {result.last_unchanged}")
    print(f"environments: {result.environments} used, {built} built; bound ceil(log2 {len(candidates)})+2 = "
          f"{_bisect.env_bound(len(candidates))}")
    print(f"wall time: {wall:.1f} s (build {sum(p.build_seconds for p in result.probes):.1f} s, "
          f"run {sum(p.run_seconds for p in result.probes):.1f} s)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--logic-only", action="store_true")
    p.add_argument("--package", default="jax")
    p.add_argument("--good", default="0.4.30")
    p.add_argument("--bad", default="0.4.35")
    p.add_argument("--pin", action="append", default=None)
    p.add_argument("--scenario", default="no_params")
    p.add_argument("--mode", default="jit")
    p.add_argument("--cache", help="env cache folder (default: a fresh temporary one)")
    args = p.parse_args()
    if args.pin is None:
        args.pin = ["optax==0.2.4", "equinox==0.11.10"]
    logic_table()
    if not args.logic_only:
        real(args)


if __name__ == "__main__":
    main()
