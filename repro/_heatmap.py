"""A timeline heat map of the survey's observations. No JAX, no plotting library.

One panel per series (JAX, Optax, Equinox), its releases along the x axis. In each panel,
the built-in problem gets a row per scenario, and the corpus (`repro._corpus.SURVEY`) a row
per behaviour: the (module, scenario) pairs that did the same thing in every surveyed
release share a row, so sixteen modules by eight scenarios read as a few rows and a change
in any of them shows. A row stands for both modes when they agreed everywhere, else there
is a row per mode. A square is coloured by the outcome (works, wrong result, or the failure's
message family). Where a row's outcome changes from one release to the next, the square gets
a heavy left edge and the column a line; when a tracked package other than the series' own
moved between those two cells too (an Optax cell installs the JAX of its release day), the
line is dashed and labelled, and its note says which packages moved: the change is not the
release's alone.

Outcomes are drawn with round glyphs and the matrix heat map's verdicts with squares
(`Verdict.glyph`): a glyph both maps use means the same in both (crash, timeout).
Written as SVG (for the docs), as HTML (the SVG with hover titles and the notes, for a
browser), and as a Markdown glyph table (for a GitHub job summary, where images cannot be
inlined).

Why one module of this length: one grid (rows, squares, change lines, legend) drawn in three
formats (SVG, HTML, Markdown) that must say the same thing.
"""

import dataclasses
import html
import os

from packaging.version import Version

from . import _paths
from ._catalogue import BUILTIN_MODULE, MODES, SCENARIOS
from ._corpus import SURVEY
from ._files import write_text_atomic
from ._observations import PROBLEM_MODULE, TRACKED
from ._signatures import FAMILIES

MODULE = BUILTIN_MODULE
BUILTIN = "built-in problem"
# Where `survey --heatmap-files` defaults to from a checkout: its docs/ (the README shows it); None elsewhere.
DOCS = os.path.join(_paths.checkout(), "docs") if _paths.checkout() else None
FILES = ("survey.svg", "survey.html", "survey.md")
# (series, title, the tracked packages its cells pin to the release): a boundary names the others that moved.
SERIES = (("jax", "JAX", ("jax", "jaxlib")), ("optax", "Optax", ("optax",)), ("equinox", "Equinox", ("equinox",)))
# What an outcome is called, its colour in the SVG and its glyph in Markdown. Round glyphs (circles,
# hearts, diamonds): the matrix heat map's squares are verdicts. Every message family has its own.
STYLES = (
    ("works", "#3a9d5d", "🟢"),
    ("wrong result", "#8e44ad", "🟣"),
    ("crash", "#222222", "💥"),
    ("timeout", "#666666", "⌛"),
    ("missing", "#eeeeee", "⚪"),
    ("custom_node_mismatch", "#f0a202", "🟠"),
    ("expected_none", "#f5d547", "🟡"),
    ("expected_container", "#bcbd22", "🧡"),
    ("pytree_structure_error", "#c0392b", "🔴"),
    ("tree_structure_mismatch", "#ff9896", "❤️"),
    ("no_shape_attr", "#2c6fbb", "🔵"),
    ("no_dtype_attr", "#9ecae9", "💙"),
    ("unsupported_operand", "#5ec4c0", "🔷"),
    ("none_not_callable", "#c994c7", "💜"),
    ("missing_linesearch_args", "#8c564b", "🟤"),
    ("bool_dtype", "#d9b38c", "🤎"),
    ("not_valid_jax_type", "#17becf", "🔹"),
    ("dot_general_shapes", "#e6550d", "🔶"),
    ("inf_to_int", "#9c9ede", "💛"),
    ("control_flow_dtypes", "#393b79", "⚫"),
    ("not_converged", "#ad494a", "🔻"),
    ("other", "#b0a8a4", "🤍"),
)
OTHER = ("#7f7f7f", "⭕")  # a failure with no family recorded, once SPARE is used up
# For a message family the table does not list yet (a family added to repro._signatures.FAMILIES
# later): the next of these, in FAMILIES order; never one of the table's.
SPARE = (("#98df8a", "💚"), ("#ce6dbd", "🌸"), ("#fdae6b", "🔸"), ("#6baed6", "💠"), ("#e377c2", "🔺"),
         ("#a55194", "🔘"), ("#dbdb8d", "⭐"), ("#843c39", "✴️"), ("#31a354", "❇️"), ("#3182bd", "🌀"),
         ("#fd8d3c", "🎯"), ("#637939", "🌐"), ("#e7ba52", "🔆"), ("#7b4173", "🌟"))
CELL, GAP, TOP = 14, 2, 46
CONFOUNDED = "#d95f02"  # the line of a boundary where other tracked packages moved too


def label_of(observation):
    """What the heat map calls an observation's outcome (one of STYLES, or an unknown family)."""
    if observation is None:
        return "missing"
    if observation.status in ("converged", "not_converged"):
        return "works" if observation.agrees is not False else "wrong result"
    if observation.status == "wrong_result":
        return "wrong result"
    if observation.status in ("crash", "timeout"):
        return observation.status
    return observation.family or observation.exc_type or "error"


def style_of(label):
    """(colour, glyph) of an outcome label: the table's, else a spare one of its own."""
    for name, colour, glyph in STYLES:
        if name == label:
            return colour, glyph
    listed = {name for name, _, _ in STYLES}
    unlisted = [family for family, _ in FAMILIES if family not in listed]
    if label in unlisted and unlisted.index(label) < len(SPARE):
        return SPARE[unlisted.index(label)]
    return OTHER


# --------------------------------------------------------------------------- the model

class Lookup:
    """Each cell's observations by (module, scenario, mode), indexed once."""

    def __init__(self, cells):
        self._by_key = {c.key: {(o.module, o.scenario, o.mode): o for o in c.observations} for c in cells}

    def __call__(self, cell, module, scenario, mode):
        return self._by_key.get(cell.key, {}).get((module, scenario, mode))


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of every panel: the (module, scenario, modes) triples it stands for."""

    ident: str  # the built-in problem's rows: the scenario (and mode); the corpus's: "c1", "c2", ...
    name: str
    members: tuple
    corpus: bool

    @property
    def title(self):
        """What the row is called beside it."""
        return f"{self.ident} {self.name}" if self.corpus else self.name

    def describe(self):
        """Every member, module by module (for the hover title and the corpus key)."""
        by_module = {}
        for module, scenario, modes in self.members:
            by_module.setdefault(module, []).append(scenario + _modes_text(modes))
        return "; ".join(f"{module}: {', '.join(items)}" for module, items in by_module.items())


@dataclasses.dataclass(frozen=True)
class Boundary:
    """Between two neighbouring cells of a series where some row's outcome changed."""

    index: int  # the column on whose left it is
    before: object  # ObservationFile
    after: object
    moved: tuple  # ((package, before, after), ...): tracked packages other than the series' own that moved
    rows: tuple  # the rows whose outcome changed here

    def note(self):
        """What moved besides the release, e.g. "jax 0.4.33 → 0.4.35 installed with it"."""
        if not self.moved:
            return ""
        return ", ".join(f"{name} {old or '?'} → {new or '?'}" for name, old, new in self.moved) + " installed with it"


@dataclasses.dataclass(frozen=True)
class Panel:
    """One series: its cells (releases in order), every row's labels, the boundaries."""

    series: str
    title: str
    cells: tuple
    rows: tuple
    grid: tuple  # per row, a label per cell
    boundaries: tuple
    left_out: tuple  # (key, status) of the series' cells that measured nothing
    find: Lookup
    what: str = BUILTIN  # what the top rows measured (`subject`)

    @property
    def releases(self):
        return [release_of(c) for c in self.cells]

    def details(self, row_index, column):
        """The distinct failures behind a square (exception, phase, library; the message when its
        family is `other`): a row's members share the label, not always the exception."""
        cell, seen = self.cells[column], []
        for module, scenario, modes in self.rows[row_index].members:
            for mode in modes:
                o = self.find(cell, module, scenario, mode)
                if o is None or o.exc_type is None:
                    continue
                text = f"{o.exc_type} in {o.phase} [{o.library}]" + (f": {o.message}" if o.family == "other" else "")
                if text not in seen:
                    seen.append(text)
        return seen


def subject(cells):
    """(module, what it is called): the problem file(s) that `survey --problem` measured into
    these cells, else the built-in problem."""
    files = sorted({c.problem["file"] for c in cells if getattr(c, "problem", None)})
    return (PROBLEM_MODULE, "problem " + ", ".join(files)) if files else (MODULE, BUILTIN)


def release_of(cell):
    return cell.key.split("-", 1)[1]


def _modes_text(modes):
    return "" if tuple(modes) == tuple(MODES) else f" [{', '.join(modes)}]"


def series_cells(cells):
    """[(series, title, own packages, [its measured cells, releases in order], [(key, status) left out])]."""
    out = []
    for series, title, own in SERIES:
        members = [c for c in cells if c.series == series]
        ok = sorted((c for c in members if c.status == "ok"), key=lambda c: Version(release_of(c)))
        if ok:
            out.append((series, title, own, ok, tuple((c.key, c.status) for c in members if c.status != "ok")))
    return out


def _units(find, module, columns):
    """[(module, scenario, modes)]: a scenario once when its modes did the same in every column,
    else once per mode."""
    units = []
    for scenario in SCENARIOS:
        per_mode = {mode: tuple(label_of(find(c, module, scenario, mode)) for c in columns) for mode in MODES}
        if len(set(per_mode.values())) == 1:
            units.append((module, scenario, tuple(MODES)))
        else:
            units += [(module, scenario, (mode,)) for mode in MODES]
    return units


def _labels(find, unit, columns):
    module, scenario, modes = unit
    return tuple(label_of(find(c, module, scenario, modes[0])) for c in columns)


def _group_name(members):
    """A short row name: the modules (up to three, else how many) and the scenarios (up to two)."""
    modules = list(dict.fromkeys(m for m, _, _ in members))
    scenarios = list(dict.fromkeys(s for _, s, _ in members))
    modes = {tuple(m) for _, _, m in members}
    who = ", ".join(modules) if len(modules) <= 3 else f"{len(modules)} modules"
    what = ", ".join(scenarios) if len(scenarios) <= 2 else f"{len(scenarios)} scenarios"
    count = f" ({len(members)} pairs)" if len(members) > max(len(modules), len(scenarios)) else ""
    return f"{who}: {what}{count}" + (_modes_text(next(iter(modes))) if len(modes) == 1 else " [by mode]")


def build_rows(cells, find=None):
    """Every panel's rows: the built-in problem's scenarios, then the corpus's behaviours (rows
    that change somewhere first, each group in corpus order), the same in every panel."""
    find = find or Lookup(cells)
    columns = [c for _, _, _, members, _ in series_cells(cells) for c in members]
    top, _ = subject(cells)
    rows = [Row(scenario + _modes_text(modes), scenario + _modes_text(modes), ((module, scenario, modes),), False)
            for module, scenario, modes in _units(find, top, columns)]
    groups = {}
    for module in (m for m in SURVEY if m != top):
        for unit in _units(find, module, columns):
            groups.setdefault(_labels(find, unit, columns), []).append(unit)
    ordered = sorted(groups.items(), key=lambda item: len(set(item[0])) == 1)  # stable: changing rows first
    rows += [Row(f"c{i}", _group_name(members), tuple(members), True) for i, (_, members) in enumerate(ordered, 1)]
    return rows


def panels(cells):
    """[Panel] per series that has measured cells."""
    find = Lookup(cells)
    rows = build_rows(cells, find)
    out = []
    for series, title, own, members, left_out in series_cells(cells):
        grid = tuple(_labels(find, row.members[0], members) for row in rows)
        out.append(Panel(series, title, tuple(members), tuple(rows), grid,
                         tuple(_boundaries(members, rows, grid, own)), left_out, find, subject(cells)[1]))
    return out


def _changed(labels, i):
    return labels[i] != labels[i - 1] and "missing" not in (labels[i], labels[i - 1])


def _boundaries(members, rows, grid, own):
    out = []
    for i in range(1, len(members)):
        changed = tuple(row for row, labels in zip(rows, grid) if _changed(labels, i))
        if changed:
            before, after = members[i - 1], members[i]
            moved = tuple((name, before.installed.get(name), after.installed.get(name)) for name in TRACKED
                          if name not in own and before.installed.get(name) != after.installed.get(name))
            out.append(Boundary(i, before, after, moved, changed))
    return out


def _marks(panel):
    """A letter per boundary, in column order (its note below the panel says what moved)."""
    return {b.index: chr(ord("a") + n) if n < 26 else str(n + 1) for n, b in enumerate(panel.boundaries)}


def _versions_text(cell):
    return ", ".join(f"{name} {cell.installed.get(name, '?')}" for name in TRACKED)


def _boundary_text(panel, boundary):
    changed = f"{len(boundary.rows)} row{'s' if len(boundary.rows) != 1 else ''} changed"
    where = f"{panel.title} {release_of(boundary.before)} → {release_of(boundary.after)}"
    if boundary.moved:
        return f"{where}: {changed}; {boundary.note()}: not {panel.title} {release_of(boundary.after)} alone"
    return f"{where}: {changed}; no other tracked package moved"


def legend_labels(all_panels):
    order = [name for name, _, _ in STYLES]
    seen = {label for p in all_panels for labels in p.grid for label in labels}
    return sorted(seen, key=lambda l: (order.index(l) if l in order else len(order), l))


# How to read the picture, under its legend (the Markdown gives the first line and its own for the separators).
GUIDE = ("A row stands for both modes (jit and eager) unless it is marked [jit] or [eager]: they did the same "
         "everywhere.",
         "Heavy left edge: the outcome changed from the release before; a lettered line marks the column (the note "
         "says what).",
         "Dashed orange line: another tracked package moved between those two cells too, so the change is not the "
         "release's alone.")
LEGEND_NOTE = ("Colours are outcomes (what a call did, as measured), not verdicts: the matrix heat map "
               "(results/heatmap.md) judges runs against what was expected.")
GLYPH_NOTE = ("Round glyphs are outcomes (what a call did, as measured); the matrix heat map (results/heatmap.md) "
              "draws verdicts (what a run did against what was expected) as squares (💥 and ⌛ mean the same in both).")


# --------------------------------------------------------------------------- SVG and HTML

def _left(rows):
    return max(210, 12 + 6 * max(len(r.title) for r in rows))


def render_svg(cells):
    """The heat map as one SVG document (a panel per series, stacked, then the legend)."""
    all_panels = panels(cells)
    parts, y, width = [], 0, 600
    for panel in all_panels:
        svg, height, w = _panel_svg(panel, y)
        parts.append(svg)
        y, width = y + height + 24, max(width, w)
    legend, legend_height = _legend(y, legend_labels(all_panels), width)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + legend_height}" '
            f'font-family="sans-serif" font-size="10">\n' + "\n".join(parts) + legend + "\n</svg>\n")


def _panel_svg(panel, y0):
    left, rows, releases = _left(panel.rows), panel.rows, panel.releases
    marks = _marks(panel)
    out = [f'<text x="4" y="{y0 + 14}" font-size="13" font-weight="bold">{html.escape(panel.title)} releases</text>']
    for i, release in enumerate(releases):
        x = left + i * (CELL + GAP) + CELL / 2
        tip = html.escape(f"{panel.cells[i].key}: {_versions_text(panel.cells[i])}")
        out.append(f'<text transform="translate({x},{y0 + TOP - 4}) rotate(-60)" font-size="8">{release}'
                   f'<title>{tip}</title></text>')
    y, row_y = y0 + TOP, []
    for r, row in enumerate(rows):
        if row.corpus and (r == 0 or not rows[r - 1].corpus):
            y += 6
            out.append(f'<text x="4" y="{y + 9}" font-weight="bold">corpus: (module, scenario) pairs that did the '
                       f'same in every release share a row</text>')
            y += 14
        if r == 0:
            out.append(f'<text x="4" y="{y - 4}" font-weight="bold">{html.escape(panel.what)}</text>')
        row_y.append(y)
        out.append(f'<text x="{left - 6}" y="{y + CELL - 3}" text-anchor="end">{html.escape(row.title)}'
                   f'<title>{html.escape(row.describe())}</title></text>')
        for i, label in enumerate(panel.grid[r]):
            out.append(_square(panel, r, i, left + i * (CELL + GAP), y))
        y += CELL + GAP
    bottom = y
    for boundary in panel.boundaries:
        x = left + boundary.index * (CELL + GAP) - GAP / 2
        tip = html.escape(_boundary_text(panel, boundary))
        style = (f'stroke="{CONFOUNDED}" stroke-width="1.5" stroke-dasharray="3,2"' if boundary.moved
                 else 'stroke="#000" stroke-dasharray="2,2"')
        out.append(f'<line x1="{x}" y1="{y0 + TOP - 2}" x2="{x}" y2="{bottom}" {style}><title>{tip}</title></line>')
        out.append(f'<text x="{x}" y="{bottom + 10}" text-anchor="middle" font-weight="bold" '
                   f'fill="{CONFOUNDED if boundary.moved else "#000"}">{marks[boundary.index]}<title>{tip}</title></text>')
    notes = _notes(panel, marks)
    y = bottom + (16 if marks else 6)
    for note in notes:
        out.append(f'<text x="4" y="{y + 9}">{html.escape(note)}</text>')
        y += 13
    width = max(left + len(releases) * (CELL + GAP) + 10, 12 + 6 * max((len(n) for n in notes), default=0))
    return "\n".join(out), y - y0, width


def _square(panel, r, i, x, y):
    label, row, cell = panel.grid[r][i], panel.rows[r], panel.cells[i]
    colour, _ = style_of(label)
    details = panel.details(r, i)
    tip = (f"{row.ident} · {panel.title} {release_of(cell)}: {label}"
           + (f" — {'; '.join(details)}" if details else ""))
    out = f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{colour}"><title>{html.escape(tip)}</title></rect>'
    if i and _changed(panel.grid[r], i):
        boundary = next(b for b in panel.boundaries if b.index == i)
        edge = html.escape(f"{panel.grid[r][i - 1]} → {label}; " + _boundary_text(panel, boundary))
        out += (f'<rect x="{x - GAP}" y="{y}" width="{GAP + 1}" height="{CELL}" fill="#000">'
                f'<title>{edge}</title></rect>')
    return out


def _notes(panel, marks):
    """Below a panel: what moved at each lettered boundary, and the cells that measured nothing."""
    notes = [f"{marks[b.index]}: {_boundary_text(panel, b)}" for b in panel.boundaries]
    if panel.left_out:
        notes.append("not measured: " + ", ".join(f"{key} ({status})" for key, status in panel.left_out))
    return notes


def _legend(y0, labels, width):
    """Coloured squares with their names, wrapped to `width`; returns (svg, height)."""
    out, x, y = [f'<text x="4" y="{y0 + 9}">{html.escape(LEGEND_NOTE)}</text>'], 4, y0 + 16
    for label in labels:
        step = CELL + 16 + 6 * len(label)
        if x + step > width:
            x, y = 4, y + CELL + 6
        colour, _ = style_of(label)
        pattern = dict(FAMILIES).get(label)
        tip = f"<title>{html.escape(f'messages matching /{pattern}/')}</title>" if pattern else ""
        out.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{colour}"/>'
                   f'<text x="{x + CELL + 4}" y="{y + CELL - 3}">{html.escape(label)}{tip}</text>')
        x += step
    for text in GUIDE:
        y += CELL + 6
        out.append(f'<text x="4" y="{y + CELL - 3}">{html.escape(text)}</text>')
    return "\n".join(out), y - y0 + CELL + 8


def render_html(cells):
    """The SVG with a short guide and the corpus key: which pairs each corpus row stands for."""
    rows = build_rows(cells)
    key = "\n".join(f"<li><b>{r.ident}</b> {html.escape(r.name)}: {html.escape(r.describe())}</li>"
                    for r in rows if r.corpus)
    return ("<!doctype html>\n<meta charset=\"utf-8\">\n<title>repro survey: optax.lbfgs on Equinox modules</title>\n"
            "<h1>optax.lbfgs on Equinox modules, release by release</h1>\n"
            "<p>Each square: what a call pattern did in one surveyed release (hover a square for the exception, "
            "a release for the versions installed). The built-in problem has a row per scenario; the corpus a row "
            f"per behaviour (the list below says which pairs). {html.escape(' '.join(GUIDE))} "
            f"{html.escape(LEGEND_NOTE)}</p>\n"
            + render_svg(cells) + f"<h2>Corpus rows</h2>\n<ul>\n{key}\n</ul>\n")


# --------------------------------------------------------------------------- Markdown

def render_glyphs(cells):
    """Every panel as a Markdown table of glyphs (GitHub job summaries show no inline images):
    a `│` between the releases where an outcome changed, `┊` where other packages moved too,
    then what moved at each, the corpus key and the legend."""
    all_panels = panels(cells)
    out = []
    for panel in all_panels:
        seps = {b.index: "┊" if b.moved else "│" for b in panel.boundaries}
        header = []
        for i, release in enumerate(panel.releases):
            header += [seps[i], release] if i in seps else [release]
        out += [f"**{panel.title} releases**", "", f"| row | {' '.join(header)} |", "| --- | --- |"]
        for r, row in enumerate(panel.rows):
            if row.corpus and (r == 0 or not panel.rows[r - 1].corpus):
                out.append("| **corpus** | |")
            strip = "".join(seps.get(i, "") + style_of(label)[1] for i, label in enumerate(panel.grid[r]))
            out.append(f"| {row.title} | {strip} |")
        out.append("")
        for boundary in panel.boundaries:
            out.append(f"- {seps[boundary.index]} {_boundary_text(panel, boundary)}")
        if panel.left_out:
            out.append("- not measured: " + ", ".join(f"{key} ({status})" for key, status in panel.left_out))
        out.append("")
    corpus = [row for row in (all_panels[0].rows if all_panels else ()) if row.corpus]
    if corpus:
        out += ["**Corpus rows**", ""] + [f"- {row.ident}: {row.describe()}" for row in corpus] + [""]
    out.append("Legend: " + " · ".join(f"{style_of(label)[1]} {label}" for label in legend_labels(all_panels)))
    out += ["", GLYPH_NOTE, "", GUIDE[0], "`│` between two releases: an outcome changed there; `┊`: another tracked "
            "package moved there too, so the change is not the release's alone (the list under the table says which)."]
    return "\n".join(out) + "\n"


def write_heatmap(cells, folder):
    """survey.svg, survey.html and survey.md in `folder` from `cells`; the paths written."""
    os.makedirs(folder, exist_ok=True)
    written = []
    for name, render in zip(FILES, (render_svg, render_html, render_glyphs)):
        path = os.path.join(folder, name)
        write_text_atomic(path, render(cells))
        written.append(path)
    return written
