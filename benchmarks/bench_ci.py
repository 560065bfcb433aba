"""Benchmark CI: a cold `.ci/run` in a fresh clone with an empty uv cache, as CI runs it.

    python benchmarks/bench_ci.py                  # clone HEAD into a temporary folder, run .ci/run there
    python benchmarks/bench_ci.py --warm-uv        # the same with uv's usual (warm) download cache
    python benchmarks/bench_ci.py --keep           # keep the clone (its .nox/ envs) for a look afterwards

Prints the load average before and after (the machine is shared: timings taken under load are
slower), the wall time of the whole `.ci/run`, each cell's time and pytest's summary line
per cell, and `.ci/run`'s exit code. The clone is of the committed HEAD: commit first.
Figures, not assertions.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--warm-uv", action="store_true", help="use uv's usual cache instead of an empty one")
    p.add_argument("--keep", action="store_true", help="keep the clone")
    args = p.parse_args()
    folder = tempfile.mkdtemp(prefix="repro-bench-ci-")
    clone = os.path.join(folder, "repo")
    subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
    env = {**os.environ, "CI": "true"}
    if not args.warm_uv:
        env["UV_CACHE_DIR"] = os.path.join(folder, "uv-cache")
    head = subprocess.run(["git", "-C", clone, "log", "--oneline", "-1"], capture_output=True, text=True).stdout
    print(f"clone {clone} at {head.strip()}; uv cache {'warm' if args.warm_uv else 'empty'}; load before {load()}",
          flush=True)
    start = time.perf_counter()
    proc = subprocess.run(["bash", ".ci/run"], cwd=clone, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    with open(os.path.join(folder, "ci.log"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    print(f".ci/run exit {proc.returncode} in {wall:.0f} s ({wall / 60:.1f} min); load after {load()}")
    for line in (proc.stdout + proc.stderr).splitlines():
        if re.search(r"nox > \* |nox > Ran |nox > tests\(|nox > Session ci |(^|\| )=+ .*(passed|failed|error).* in ", line):
            print("  " + line.strip("= "))  # `nox -s ci` prefixes each cell's lines with "<cell> | "
    print(f"log: {os.path.join(folder, 'ci.log')}")
    if not args.keep:
        shutil.rmtree(clone, ignore_errors=True)
        shutil.rmtree(os.path.join(folder, "uv-cache"), ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
