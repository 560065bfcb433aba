"""Benchmark: resident memory across many `repro.check` calls in one process.

    python benchmarks/bench_check_memory.py [--python PATH] [--models N]

Checks N models (the realistic corpus, then the survey corpus) one after another in one
fresh process, jit mode, twice: as `repro.check` runs by default (it frees what it compiled)
and with `keep_compiled=True`. Prints resident memory after each model and the growth per
model. Figures, not assertions: with the default, memory should stay flat.
"""

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, os, sys, time
import repro
from repro._policy import resident_bytes
from repro._jax._corpus import CORPUS, SURVEY

keep, count = sys.argv[1] == "keep", int(sys.argv[2])
models = [(k, v) for k, v in {**CORPUS, **SURVEY}.items() if k != "builtin"][:count]
rows = []
for name, case in models:
    model, loss, _ = case.build()
    start = time.perf_counter()
    try:
        repro.check(model, loss, modes=["jit"], keep_compiled=keep)
    except repro.UsageError:
        continue  # not an eqx.Module (a tuple): nothing checked
    rows.append((name, resident_bytes(os.getpid()) / 2**30, time.perf_counter() - start))
print(json.dumps(rows))
"""


def run(python, mode, count):
    proc = subprocess.run([python, "-c", CHILD, mode, str(count)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench_check_memory: the child failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the env to measure")
    parser.add_argument("--models", type=int, default=12)
    args = parser.parse_args()
    for label, mode in (("default (frees compiled programs)", "free"), ("keep_compiled=True", "keep")):
        rows = run(args.python, mode, args.models)
        print(f"{label}:")
        for name, gb, seconds in rows:
            print(f"  {name:18} {gb:5.2f} GB resident  ({seconds:.0f} s)")
        if len(rows) > 1:
            growth = (rows[-1][1] - rows[0][1]) / (len(rows) - 1)
            print(f"  growth after the first model: {growth * 1024:.0f} MB per model, peak {max(r[1] for r in rows):.2f} GB")


if __name__ == "__main__":
    main()
