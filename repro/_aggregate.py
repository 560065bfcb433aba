"""Aggregate cell records into one matrix report: load, summarise, render. No JAX.

`aggregate` reads every results/cells/<id>.json (repro._cells.CellResult, written by the
nox `repro` sessions) and writes results/matrix.json, results/matrix.md and the glyph heat
map results/heatmap.md (a glyph per verdict: the picture for a CI job summary) atomically.
Each row comes only from its own cell file, so rerunning one cell changes only that row;
a cell file that cannot be read is a row saying so, never a crash. matrix.json is the
summary itself (`summarise_matrix`); the Markdown is rendered from it.
"""

import glob
import json
import os

from ._catalogue import MODES, SCENARIOS
from ._cells import SCHEMA, CellResult
from ._files import utc_now
from ._files import write_json_atomic, write_text_atomic
from ._matrix import CELLS, RESULTS
from ._outcome import Verdict
from ._results import as_expected
from ._versions import TRACKED, version_text

# Heat-map glyphs of a cell with no verdicts (by status), and of a pair a cell did not run.
STATUS_GLYPH = {"unresolvable": "⛔", "skipped": "➖", "import-failed": "🚫", "incomplete": "⏸️",
                "problem-failed": "📛", "unreadable": "❓"}
NOT_RUN_GLYPH = "⬛"
VERDICTS_NOTE = ("Verdicts (what a run did against what was expected) are squares here; the release survey's heat "
                 "map (`survey --heatmap`) draws outcomes (what a call did) with round glyphs (💥 and ⌛ mean the "
                 "same in both).")


def load_cells(cell_dir):
    """Every CellResult in `cell_dir`, sorted by matrix order then id; unreadable files become rows."""
    order = {c.id: i for i, c in enumerate(CELLS)}
    records = []
    for path in glob.glob(os.path.join(cell_dir, "*.json")):
        cell_id = os.path.basename(path)[:-len(".json")]
        try:
            with open(path) as f:
                record = CellResult.from_dict(json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as error:
            record = CellResult.unreadable(cell_id, f"{os.path.basename(path)}: {error}")
        records.append(record)
    records.sort(key=lambda r: (order.get(r.cell.id, len(order)), r.cell.id))
    return records


def _columns(records):
    seen = {(r["scenario"], r["mode"]) for rec in records for r in rec.results}
    known = [(s, m) for m in MODES for s in SCENARIOS if (s, m) in seen]
    return known + sorted(seen - set(known))


def summarise_matrix(records):
    """The matrix as data (the matrix.json document): one row per cell, verdict per scenario/mode."""
    columns = _columns(records)
    rows = []
    for rec in records:
        verdicts = {f"{r['scenario']}/{r['mode']}": r["verdict"] for r in rec.results}
        bad = [r for r in rec.results if not as_expected(r["verdict"])]
        rows.append({
            "cell": rec.cell.id, "tags": list(rec.cell.tags), "status": rec.status,
            "reason": rec.reason, "versions": rec.versions,
            "pins": dict(rec.cell.pins), "python": rec.cell.python, "exclude_newer": rec.cell.exclude_newer,
            "verdicts": verdicts, "as_expected": rec.as_expected and rec.status == "ok",
            "not_as_expected": [{"scenario": r["scenario"], "mode": r["mode"], "verdict": r["verdict"],
                                 "expected": r.get("expected"), "observed": r.get("observed"),
                                 "signature": r.get("signature"), "base": r.get("base"),
                                 "message": (r.get("outcome") or {}).get("message")} for r in bad],
            "finished": rec.finished,
        })
    default = [r for r in rows if "default" in r["tags"]]
    return {"schema": SCHEMA, "generated": utc_now(), "columns": [f"{s}/{m}" for s, m in columns],
            "all_as_expected": bool(rows) and all(r["as_expected"] for r in rows),
            "default_as_expected": bool(default) and all(r["as_expected"] for r in default), "cells": rows}


def _short(verdict):
    """The short form of a verdict name for the wide table (the name itself if this version does not know it)."""
    try:
        return Verdict(verdict).short
    except ValueError:
        return verdict


def _md_escape(text):
    return " ".join(str(text).replace("|", "\\|").split())


def render_matrix(matrix):
    cols = matrix["columns"]
    rows = matrix["cells"]
    n_default = sum(1 for r in rows if "default" in r["tags"])
    n_ok = sum(1 for r in rows if r["as_expected"])
    out = ["# repro matrix", "",
           f"{len(rows)} cells ({n_default} default): {n_ok} with every verdict as expected; "
           + ("default cells all as expected." if matrix["default_as_expected"]
              else "default cells NOT all as expected." if n_default else "no default cell."),
           "", "## Cells", "",
           "| cell | tags | status | python | " + " | ".join(TRACKED) + " | resolved as of | as expected |",
           "| --- |" + " --- |" * (len(TRACKED) + 5)]
    for row in matrix["cells"]:
        v = row["versions"] or {}
        pins = row["pins"] or {}
        ver = lambda k: version_text(v, k) or (f"({pins[k]})" if k in pins else "-")  # noqa: E731
        n_ok = sum(1 for x in row["verdicts"].values() if as_expected(x))
        counted = f"{n_ok}/{len(row['verdicts'])}" if row["verdicts"] else "-"
        python = v.get("python") or (f"({row['python']})" if row["python"] else "-")
        resolved = (row.get("exclude_newer") or "floating")[:10]
        out.append(f"| {row['cell']} | {' '.join(row['tags'])} | {row['status'].upper()} | {python} | "
                   + " | ".join(_md_escape(ver(k)) for k in TRACKED) + f" | {resolved} | {counted} |")
    out += ["", "Versions in parentheses are the pins of a cell that never ran (nothing was installed); "
                "`version@commit` a package built from a source (`+dirty`: with uncommitted changes). "
                "A pinned cell resolves everything else as of its date (uv --exclude-newer); `floating` cells "
                "resolve whatever is newest.", ""]
    if cols:
        out += ["## Verdicts", "", "| cell | " + " | ".join(c.replace("/", " ") for c in cols) + " |",
                "| --- |" + " --- |" * len(cols)]
        for row in matrix["cells"]:
            if row["verdicts"]:
                cells = [_short(row["verdicts"][c]) if c in row["verdicts"] else "·" for c in cols]
            else:
                cells = [row["status"].upper()] + [""] * (len(cols) - 1)
            out.append(f"| {row['cell']} | " + " | ".join(cells) + " |")
        legend = [f"{v.short} = {v.value}" for v in Verdict if v.short != v.value]
        out += ["", ", ".join(legend + ["· = not run in this cell."]), ""]
    notes = [row for row in matrix["cells"] if row["status"] != "ok" or row["not_as_expected"]]
    if notes:
        out += ["## Not as expected", ""]
        for row in notes:
            if row["status"] != "ok":
                out.append(f"- **{row['cell']}** {row['status'].upper()}: {_md_escape(row['reason'])}")
            for r in row["not_as_expected"]:
                detail = r["message"] or r["observed"]
                base = ", ".join(f"{k} {v or '(unknown)'}" for k, v in (r.get("base") or {}).items())
                out.append(f"- **{row['cell']}** `{r['scenario']}` [{r['mode']}] {r['verdict']}: "
                           + (f"expected as the base release ({base}) did: " if base else "expected ")
                           + f"{_md_escape(r['expected'])}; observed `{_md_escape(r['signature'])}`"
                           + (f" ({_md_escape(detail)[:200]})" if detail else ""))
        out.append("")
    return "\n".join(out)


def _glyph(verdict):
    try:
        return Verdict(verdict).glyph
    except ValueError:  # a verdict this version does not know (a newer result file)
        return "❔"


def render_heatmap(matrix):
    """The matrix as a picture: a row per cell, per mode one glyph per scenario (in the order
    the legend gives), then the legend. Markdown, for a CI job summary."""
    by_mode = {}
    for column in matrix["columns"]:
        scenario, _, mode = column.partition("/")
        by_mode.setdefault(mode, []).append(scenario)
    out = ["## Heat map", "", "| cell | " + " | ".join(by_mode) + " | as expected |",
           "| --- |" + " --- |" * (len(by_mode) + 1)]
    for row in matrix["cells"]:
        if row["verdicts"]:
            strips = ["".join(_glyph(row["verdicts"][f"{s}/{m}"]) if f"{s}/{m}" in row["verdicts"] else NOT_RUN_GLYPH
                              for s in scenarios) for m, scenarios in by_mode.items()]
            n_ok = sum(1 for x in row["verdicts"].values() if as_expected(x))
            counted = f"{n_ok}/{len(row['verdicts'])}"
        else:
            strips = [f"{STATUS_GLYPH.get(row['status'], '❓')} {row['status']}"] + [""] * (len(by_mode) - 1)
            counted = "-"
        out.append(f"| {row['cell']} | " + " | ".join(strips) + f" | {counted} |")
    out += [""] + [f"Each {mode} strip, left to right: {', '.join(scenarios)}." for mode, scenarios in by_mode.items()]
    legend = [f"{v.glyph} {v.value}" for v in Verdict] + [f"{NOT_RUN_GLYPH} not run in this cell"]
    legend += [f"{glyph} {status}" for status, glyph in STATUS_GLYPH.items()]
    return "\n".join(out + ["", " · ".join(legend), "", VERDICTS_NOTE, ""])


def aggregate(results=RESULTS):
    """Collect results/cells/*.json into results/matrix.json, results/matrix.md and
    results/heatmap.md (each written atomically)."""
    records = load_cells(os.path.join(results, "cells"))
    matrix = summarise_matrix(records)
    write_json_atomic(os.path.join(results, "matrix.json"), matrix)
    write_text_atomic(os.path.join(results, "matrix.md"), render_matrix(matrix))
    write_text_atomic(os.path.join(results, "heatmap.md"), render_heatmap(matrix))
    return matrix
