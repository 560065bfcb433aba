"""Benchmark the matrix: env build uv vs virtualenv+pip, and the warm default-matrix verdict run.

    python benchmarks/bench_matrix.py                 # both figures (the pip build takes minutes)
    python benchmarks/bench_matrix.py --no-build      # only the warm default-matrix wall time
    python benchmarks/bench_matrix.py --cell newest-py311 --mode jit --mode eager

Prints, from one run:
  1. the time to build one cell's env from scratch (same pins, project + test extra) with uv
     (`uv venv` + `uv pip install`, bytecode written lazily on first import: what the sessions
     use) and with pip (in a `virtualenv`, or a stdlib `venv` where the interpreter has no
     virtualenv: the line says which), and the ratio. Both use their warm download caches.
  2. the wall time of the default matrix verdict run with warm envs: every `default` cell in
     turn, exactly what `nox -t default -- --mode jit` does per session (repro._cells.run_cell,
     scenarios batched, per-env XLA compilation cache), written to a temporary folder so
     results/ is not touched. Run it twice: the first run after an env build fills the cache.
Targets (issue 4): ratio >= 10; default matrix (>= 8 cells) <= 90 s. Figures, not assertions.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from repro._aggregate import aggregate  # noqa: E402
from repro._cells import prepare_env, run_cell  # noqa: E402
from repro._envs import build_env, find_interpreter, have_uv  # noqa: E402
from repro._matrix import BY_ID, cells_tagged  # noqa: E402
from repro._options import run_options  # noqa: E402


def bench_build(cell):
    interpreter = find_interpreter(cell.python)
    if interpreter is None:
        print(f"build: no Python {cell.python} here; skipped")
        return
    if not have_uv():
        print("build: uv is not installed; skipped")
        return
    scratch = tempfile.mkdtemp(prefix="bench-env-")
    try:
        times = {}
        for backend in ("uv", "pip"):
            result = build_env(os.path.join(scratch, backend), interpreter, cell.requirements(), backend=backend,
                               fresh=True)
            if not result.ok:
                print(f"build {backend}: FAILED: {result.reason}")
                return
            times[backend] = result.seconds
            label = "uv" if result.backend == "uv" else f"{result.backend} + pip"
            print(f"build {cell.id} with {label:16s} {result.seconds:7.1f} s", flush=True)
        print(f"build ratio pip / uv: {times['pip'] / times['uv']:.1f}x (target >= 10x)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def bench_matrix(run_args):
    cells = cells_tagged("default")
    # Warm the envs first (not timed): the target is for warm envs.
    for cell in cells:
        prepared = prepare_env(cell, log=lambda message: None)
        if prepared.status != "ok":
            print(f"warm-up {cell.id}: {prepared.status}: {prepared.reason}")
    out = tempfile.mkdtemp(prefix="bench-results-")
    try:
        start = time.perf_counter()
        for cell in cells:
            t0 = time.perf_counter()
            record = run_cell(cell, run_options(run_args), results=out, log=lambda message: None)
            verdicts = [r["verdict"] for r in record.results]
            counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
            print(f"  {cell.id:18s} {time.perf_counter() - t0:6.1f} s  {record.status:8s} "
                  + " ".join(f"{v}={n}" for v, n in counts.items()), flush=True)
        matrix = aggregate(out)
        total = time.perf_counter() - start
        print(f"default matrix, warm, `repro run --batch {' '.join(run_args)}`: {len(cells)} cells in {total:.1f} s "
              f"(target <= 90 s); all as expected: {matrix['all_as_expected']}")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default="newest-py311", choices=sorted(BY_ID), help="cell for the build comparison")
    p.add_argument("--mode", action="append", choices=("eager", "jit"), help="modes of the verdict run (default jit)")
    p.add_argument("--no-build", action="store_true", help="skip the uv vs pip build comparison")
    p.add_argument("--no-matrix", action="store_true", help="skip the default-matrix wall time")
    args = p.parse_args(argv)
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    print("load average before: %.1f %.1f %.1f (2 cores, shared)" % os.getloadavg())
    if not args.no_build:
        bench_build(BY_ID[args.cell])
    if not args.no_matrix:
        bench_matrix([arg for mode in (args.mode or ["jit"]) for arg in ("--mode", mode)])
    print("load average after: %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main()
