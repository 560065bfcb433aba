"""Benchmark: what the release survey costs, from its own records and one real `--new` run.

    python benchmarks/bench_survey.py [--data DIR] [--new-run]

Reads every cell file (each records its env build, jit and eager wall seconds) and prints the
whole survey's time split by mode, the slowest cells, the observations that cost the most, and
the cells that could not be built.
With --new-run it also times `repro survey --new --series jax --mode jit` for real, in a copy
of the data without the newest JAX cell: what the weekly workflow pays for one new release.
Figures, not assertions: the targets are <= 30 min for the jit survey and <= 2 min per new
release on the 2-core reference machine (with a warm download cache).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from packaging.version import Version  # noqa: E402

from repro._observations import DATA_DIR, load  # noqa: E402


def summarise(cells):
    ok = [c for c in cells if c.status == "ok"]
    totals = {k: sum(c.seconds.get(k, 0.0) for c in ok) for k in ("build", "jit", "eager")}
    print(f"{len(cells)} cells: {len(ok)} measured, {len(cells) - len(ok)} not "
          f"({', '.join(sorted({c.status for c in cells if c.status != 'ok'})) or 'none'})")
    print(f"env builds {totals['build'] / 60:.1f} min, jit {totals['jit'] / 60:.1f} min, "
          f"eager {totals['eager'] / 60:.1f} min")
    print(f"the survey in jit: {(totals['build'] + totals['jit']) / 60:.1f} min; eager adds "
          f"{totals['eager'] / 60:.1f} min")
    slow = sorted(ok, key=lambda c: -(c.seconds.get("jit", 0) + c.seconds.get("build", 0)))[:5]
    print("slowest (build + jit): " + ", ".join(f"{c.key} {c.seconds.get('build', 0) + c.seconds.get('jit', 0):.0f} s"
                                                for c in slow))
    costliest(ok)
    for cell in cells:
        if cell.status != "ok":
            print(f"  {cell.key}: {cell.status}: {cell.reason.splitlines()[-1][:150] if cell.reason else ''}")


def costliest(cells, top=3):
    """The observations (module, scenario, mode) that cost the most, summed over the cells that
    measured them (a cell that took another's observations, `same_env_as`, is left out)."""
    per, mode_total = {}, {}
    for cell in cells:
        for o in cell.observations:
            if o.mode in cell.same_env_as or o.seconds is None:
                continue
            per[(o.module, o.scenario, o.mode)] = per.get((o.module, o.scenario, o.mode), 0.0) + o.seconds
            mode_total[o.mode] = mode_total.get(o.mode, 0.0) + o.seconds
    for mode in sorted(mode_total):
        worst = sorted(((k, v) for k, v in per.items() if k[2] == mode), key=lambda kv: -kv[1])[:top]
        print(f"costliest in {mode} (of {mode_total[mode] / 60:.1f} observation-min): " + ", ".join(
            f"{module} {scenario} {seconds / 60:.1f} min" for (module, scenario, _), seconds in worst))


def new_run(directory):
    jax_cells = sorted((c for c in load(directory) if c.series == "jax" and c.status == "ok"),
                       key=lambda c: Version(c.key.split("-", 1)[1]))
    newest = jax_cells[-1].key
    with tempfile.TemporaryDirectory(prefix="repro-bench-survey-") as copy:
        for name in os.listdir(directory):
            if name != f"{newest}.json":
                shutil.copy(os.path.join(directory, name), copy)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "repro", "survey", "--new", "--series", "jax", "--mode", "jit",
                               "--data", copy], capture_output=True, text=True)
        seconds = time.perf_counter() - start
    print(f"repro survey --new (one new release, {newest}, jit): {seconds:.0f} s, exit {proc.returncode}")
    print("\n".join(proc.stdout.strip().splitlines()[-3:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA_DIR)
    parser.add_argument("--new-run", action="store_true", help="also time one real `repro survey --new`")
    args = parser.parse_args()
    summarise(load(args.data))
    if args.new_run:
        new_run(args.data)


if __name__ == "__main__":
    main()
