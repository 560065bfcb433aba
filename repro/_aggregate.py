"""Run one matrix cell and aggregate cell results into one report. No JAX.

`run_cell` is the one helper behind the nox `repro` session (and the benchmark). Whatever
happens, it leaves `results/cells/<id>.json`:

  status        meaning                                                    verdicts
  ok            the verdict run finished (each scenario has a verdict)     as measured
  skipped       the cell's interpreter is not on this machine              none
  unresolvable  the installer could not satisfy the pins (its message kept) none
  import-failed the env was built but `import jax, optax, equinox` fails   none
  incomplete    the run was interrupted before it finished                 none

A scenario that crashes or hangs is a CRASH/TIMEOUT verdict inside an `ok` cell (see
repro/_isolate.py: the other scenarios still run, results before a crash are kept).

`aggregate` reads every cell JSON and writes results/matrix.json and results/matrix.md
atomically. Each row comes only from its own cell file, so rerunning one cell changes
only that row; a cell file that cannot be read is a row saying so, never a crash.
"""

import contextlib
import datetime
import glob
import json
import os
import subprocess
import sys
import time

from ._catalogue import UsageError
from ._results import write_json_atomic, write_text_atomic

SCHEMA = 1
RESULTS = "results"
CELL_DIR = os.path.join(RESULTS, "cells")
ENV_ROOT = os.path.join(".nox", "cells")
AS_EXPECTED = ("REPRODUCED", "WORKAROUND-OK")
# Short forms for the wide table; the legend under it spells them out.
SHORT = {"REPRODUCED": "REPRO", "WORKAROUND-OK": "WA-OK", "FIXED-UPSTREAM": "FIXED", "REGRESSION": "REGR",
         "CHANGED": "CHANGED", "CRASH": "CRASH", "TIMEOUT": "TIMEOUT", "UNKNOWN": "UNKNOWN"}

_VERSIONS_CODE = "import json; from repro._versions import installed_versions as v; print(json.dumps(v()))"
_IMPORT_CODE = "import jax, optax, equinox"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cell_path(cell_id, results=RESULTS):
    return os.path.join(results, "cells", f"{cell_id}.json")


def _record(cell, status, reason="", **extra):
    return {"schema": SCHEMA, "cell": cell.to_dict(), "status": status, "reason": reason,
            "versions": extra.pop("versions", {}), "results": extra.pop("results", []),
            "as_expected": extra.pop("as_expected", False), "finished": _now(), **extra}


def run_cell(cell, run_args=(), *, results=RESULTS, env_root=ENV_ROOT, log=print, python=None,
             find_interpreter=None, build_env=None):
    """Build the cell's env, run the verdicts in it, write and return its cell record.

    `run_args` are `repro run` arguments (--scenario, --mode, --timeout, --jobs, --batch);
    scenarios always run batched. `python` skips the env build and uses that interpreter
    (tests, experiments). Never raises for a cell-level failure: it is recorded.
    """
    from . import _envs
    from ._cli import _run_parser
    from ._catalogue import check_modes, check_scenarios

    find_interpreter = find_interpreter or _envs.find_interpreter
    build_env = build_env or _envs.build_env
    args = _run_parser("repro session").parse_args(list(run_args))  # UsageError on bad input
    scenarios, modes = check_scenarios(args.scenario), check_modes(args.mode)
    out = cell_path(cell.id, results)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    started = time.perf_counter()
    common = {"args": list(run_args), "started": _now()}
    # Written first: if this process is killed, the cell says so instead of showing stale results.
    write_json_atomic(out, _record(cell, "incomplete", "the run was interrupted before it finished", **common))

    env = {"backend": None, "seconds": 0.0, "reused": None}
    if python is None:
        interpreter = find_interpreter(cell.python)
        if interpreter is None:
            return _finish(out, _record(cell, "skipped", f"no Python {cell.python} interpreter on this machine",
                                        env=env, **common), log)
        built = build_env(os.path.join(env_root, cell.id), interpreter, cell.requirements())
        env = {"backend": "uv" if _envs.have_uv() else "virtualenv", "seconds": round(built.seconds, 2),
               "reused": built.reused}
        if not built.ok:
            return _finish(out, _record(cell, "unresolvable", built.reason, env=env, **common), log)
        log(f"env {cell.id} {'reused' if built.reused else f'built in {built.seconds:.1f} s'}: {built.path}")
        python = built.python

    versions = _env_versions(python)
    log(f"{cell.id}: " + "  ".join(f"{k} {versions.get(k) or '-'}"
                                   for k in ("python", "jax", "jaxlib", "optax", "equinox")))
    summary = _verdicts(python, scenarios, modes, args, versions)
    rows = summary["results"]
    if rows and all(r["outcome"]["status"] == "crash" and "without a result" in (r["outcome"].get("message") or "")
                    for r in rows):
        failed = _import_error(python)  # every child died before reporting: can the env import at all?
        if failed:
            return _finish(out, _record(cell, "import-failed", failed, versions=versions, env=env,
                                        results=rows, **common), log)
    common["seconds"] = round(time.perf_counter() - started, 2)
    return _finish(out, _record(cell, "ok", "", versions=versions, env=env, results=rows,
                                as_expected=summary["as_expected"], **common), log)


def _finish(path, record, log):
    write_json_atomic(path, record)
    log(f"{record['cell']['id']}: {record['status'].upper()}"
        + (f": {record['reason'].splitlines()[-1] if record['reason'] else ''}" if record["reason"] else "")
        + f" -> {path}")
    return record


def _env_versions(python):
    try:
        proc = subprocess.run([python, "-c", _VERSIONS_CODE], capture_output=True, text=True, timeout=120)
        return json.loads(proc.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}


def _import_error(python):
    try:
        proc = subprocess.run([python, "-c", _IMPORT_CODE], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"import check failed: {error}"
    if proc.returncode == 0:
        return ""
    lines = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()]
    return "\n".join(lines[-6:]) or f"import exited with code {proc.returncode}"


def _verdicts(python, scenarios, modes, args, versions):
    from ._results import run_here

    with _jax_cache(python):
        return run_here(scenarios, modes, timeout=args.timeout, jobs=args.jobs, python=python, batch=True,
                        versions=versions)


@contextlib.contextmanager
def _jax_cache(python):
    """Run children with a persistent XLA compilation cache in the env (`jax_cache_env`):
    the warm-matrix speed target depends on it. REPRO_JAX_CACHE=0 turns it off."""
    from ._isolate import jax_cache_env

    added = jax_cache_env(python)
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


# --- aggregation ---------------------------------------------------------------------------

def load_cells(cell_dir):
    """Every cell record in `cell_dir`, sorted by matrix order then id; unreadable files become rows."""
    from ._matrix import CELLS

    order = {c.id: i for i, c in enumerate(CELLS)}
    records = []
    for path in glob.glob(os.path.join(cell_dir, "*.json")):
        cell_id = os.path.basename(path)[:-len(".json")]
        try:
            with open(path) as f:
                record = json.load(f)
            if not isinstance(record, dict) or "status" not in record or "cell" not in record:
                raise ValueError("not a cell record")
        except (OSError, ValueError) as error:
            record = {"schema": SCHEMA, "cell": {"id": cell_id, "python": None, "pins": {}, "tags": []},
                      "status": "unreadable", "reason": f"{os.path.basename(path)}: {error}", "versions": {},
                      "results": [], "as_expected": False}
        records.append(record)
    records.sort(key=lambda r: (order.get(r["cell"]["id"], len(order)), r["cell"]["id"]))
    return records


def _columns(records):
    from ._catalogue import MODES, SCENARIOS

    seen = {(r["scenario"], r["mode"]) for rec in records for r in rec.get("results", [])}
    known = [(s, m) for m in MODES for s in SCENARIOS if (s, m) in seen]
    return known + sorted(seen - set(known))


def summarise_matrix(records):
    """The matrix as data: one row per cell, verdict per scenario/mode, with versions."""
    columns = _columns(records)
    rows = []
    for rec in records:
        verdicts = {f"{r['scenario']}/{r['mode']}": r["verdict"] for r in rec.get("results", [])}
        bad = [r for r in rec.get("results", []) if r["verdict"] not in AS_EXPECTED]
        rows.append({
            "cell": rec["cell"]["id"], "tags": rec["cell"].get("tags", []), "status": rec["status"],
            "reason": rec.get("reason", ""), "versions": rec.get("versions", {}),
            "pins": rec["cell"].get("pins", {}), "python": rec["cell"].get("python"),
            "verdicts": verdicts, "as_expected": bool(rec.get("as_expected")) and rec["status"] == "ok",
            "not_as_expected": [{"scenario": r["scenario"], "mode": r["mode"], "verdict": r["verdict"],
                                 "expected": r.get("expected"), "observed": r.get("observed"),
                                 "signature": r.get("signature"),
                                 "message": (r.get("outcome") or {}).get("message")} for r in bad],
            "finished": rec.get("finished"),
        })
    default = [r for r in rows if "default" in r["tags"]]
    return {"schema": SCHEMA, "generated": _now(), "columns": [f"{s}/{m}" for s, m in columns],
            "all_as_expected": bool(rows) and all(r["as_expected"] for r in rows),
            "default_as_expected": bool(default) and all(r["as_expected"] for r in default), "cells": rows}


def _md_escape(text):
    return " ".join(str(text).replace("|", "\\|").split())


def render_markdown(matrix):
    cols = matrix["columns"]
    rows = matrix["cells"]
    n_default = sum(1 for r in rows if "default" in r["tags"])
    n_ok = sum(1 for r in rows if r["as_expected"])
    out = ["# repro matrix", "",
           f"{len(rows)} cells ({n_default} default): {n_ok} with every verdict as expected; "
           + ("default cells all as expected." if matrix["default_as_expected"]
              else "default cells NOT all as expected." if n_default else "no default cell."),
           "", "## Cells", "",
           "| cell | tags | status | python | jax | jaxlib | optax | equinox | as expected |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in matrix["cells"]:
        v = row["versions"] or {}
        pins = row["pins"] or {}
        ver = lambda k: v.get(k) or (f"({pins[k]})" if k in pins else "-")  # noqa: E731
        n_ok = sum(1 for x in row["verdicts"].values() if x in AS_EXPECTED)
        counted = f"{n_ok}/{len(row['verdicts'])}" if row["verdicts"] else "-"
        python = v.get("python") or (f"({row['python']})" if row["python"] else "-")
        out.append(f"| {row['cell']} | {' '.join(row['tags'])} | {row['status'].upper()} | {python} | "
                   f"{ver('jax')} | {ver('jaxlib')} | {ver('optax')} | {ver('equinox')} | {counted} |")
    out += ["", "Versions in parentheses are the pins of a cell that never ran (nothing was installed).", ""]
    if cols:
        out += ["## Verdicts", "", "| cell | " + " | ".join(c.replace("/", " ") for c in cols) + " |",
                "| --- |" + " --- |" * len(cols)]
        for row in matrix["cells"]:
            if row["verdicts"]:
                cells = [SHORT.get(row["verdicts"].get(c, ""), row["verdicts"].get(c, "")) or "·" for c in cols]
            else:
                cells = [row["status"].upper()] + [""] * (len(cols) - 1)
            out.append(f"| {row['cell']} | " + " | ".join(cells) + " |")
        out += ["", "REPRO = REPRODUCED, WA-OK = WORKAROUND-OK, FIXED = FIXED-UPSTREAM, REGR = REGRESSION, "
                    "· = not run in this cell.", ""]
    notes = [row for row in matrix["cells"] if row["status"] != "ok" or row["not_as_expected"]]
    if notes:
        out += ["## Not as expected", ""]
        for row in notes:
            if row["status"] != "ok":
                out.append(f"- **{row['cell']}** {row['status'].upper()}: {_md_escape(row['reason'])}")
            for r in row["not_as_expected"]:
                detail = r["message"] or r["observed"]
                out.append(f"- **{row['cell']}** `{r['scenario']}` [{r['mode']}] {r['verdict']}: "
                           f"expected {_md_escape(r['expected'])}; observed `{_md_escape(r['signature'])}`"
                           + (f" ({_md_escape(detail)[:200]})" if detail else ""))
        out.append("")
    return "\n".join(out)


def aggregate(results=RESULTS):
    """Collect results/cells/*.json into results/matrix.json and results/matrix.md (atomically)."""
    records = load_cells(os.path.join(results, "cells"))
    matrix = summarise_matrix(records)
    write_json_atomic(os.path.join(results, "matrix.json"), matrix)
    write_text_atomic(os.path.join(results, "matrix.md"), render_markdown(matrix))
    return matrix


def cmd_matrix(argv):
    """`repro matrix`: aggregate cell results into results/matrix.{md,json}; print the table."""
    from ._cli import EXIT_MISMATCH, EXIT_OK, _Parser

    p = _Parser(prog="repro matrix",
                description="Collect results/cells/<cell>.json (written by `nox -s repro`) into one "
                            "Markdown table (results/matrix.md) and one JSON file (results/matrix.json).")
    p.add_argument("--results", default=RESULTS, metavar="DIR", help="results folder (default results/)")
    p.add_argument("--json", action="store_true", help="print matrix.json instead of the Markdown")
    p.add_argument("--quiet", action="store_true", help="write the files, print nothing")
    args = p.parse_args(argv)
    cell_dir = os.path.join(args.results, "cells")
    if not os.path.isdir(cell_dir):
        raise UsageError(f"no cell results in {cell_dir}: run `nox -s repro` (or one cell) first")
    if not glob.glob(os.path.join(cell_dir, "*.json")):
        raise UsageError(f"no cell results in {cell_dir}: run `nox -s repro` (or one cell) first")
    if not os.access(args.results, os.W_OK):
        raise UsageError(f"cannot write to {args.results}")
    matrix = aggregate(args.results)
    if not args.quiet:
        print(json.dumps(matrix, indent=2) if args.json
              else render_markdown(matrix) + f"\nwritten: {os.path.join(args.results, 'matrix.md')}, "
                                             f"{os.path.join(args.results, 'matrix.json')}")
    return EXIT_OK if matrix["all_as_expected"] else EXIT_MISMATCH


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cmd_matrix(sys.argv[1:]))
