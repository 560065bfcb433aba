"""A timeline heat map of the survey's observations. No JAX, no plotting library.

Releases along the x axis (one panel per series: JAX, Optax, Equinox), scenario x mode along
the y axis, one square per (release, scenario, mode) coloured by the outcome's message family
(or works / wrong result), for the built-in problem, or for the problem file a folder of
`survey --problem` measured (`subject`). Where a row's outcome changes from one
release to the next, the square gets a heavy left edge and the column a tick on top: the three
eras of the `no_params` message read off at a glance. Written as SVG (for the README), as HTML
(the SVG with a legend, hover titles, for a browser), and as a Markdown glyph table (for a
GitHub job summary, where images cannot be inlined).
"""

import html
import os

from packaging.version import Version

from . import _paths
from ._catalogue import MODES, SCENARIOS
from ._files import write_text_atomic
from ._observations import DATA_DIR, PROBLEM_MODULE, load

MODULE = "builtin"
BUILTIN = "built-in problem"
# Where `survey --heatmap` draws the packaged data from a checkout: its docs/ (the README shows it).
DOCS = os.path.join(_paths.checkout(), "docs") if _paths.checkout() else None
SERIES = (("jax", "JAX"), ("optax", "Optax"), ("equinox", "Equinox"))
# What an outcome is called in the legend, its colour and its glyph; first match on the label.
STYLES = (
    ("works", "#3a9d5d", "🟩"),
    ("wrong result", "#8e44ad", "🟪"),
    ("custom_node_mismatch", "#f0a202", "🟧"),
    ("expected_none", "#e9c46a", "🟨"),
    ("pytree_structure_error", "#c0392b", "🟥"),
    ("no_shape_attr", "#4c78a8", "🔵"),
    ("unsupported_operand", "#72b7b2", "🟦"),
    ("none_not_callable", "#b279a2", "🟣"),
    ("missing_linesearch_args", "#9d755d", "🟤"),
    ("missing", "#e8e8e8", "⬜"),
    ("crash", "#222222", "⬛"),
)
OTHER = ("#bab0ac", "⚪")  # any other failure: the family is in the hover title and the legend
CELL, GAP, LEFT, TOP = 14, 2, 210, 46


def label_of(observation):
    if observation is None:
        return "missing"
    if observation.status in ("converged", "not_converged") and observation.agrees is not False:
        return "works"
    if observation.status == "wrong_result":
        return "wrong result"
    if observation.status in ("crash", "timeout"):
        return "crash"
    return observation.family or observation.exc_type or "error"


def style_of(label):
    for name, colour, glyph in STYLES:
        if name == label:
            return colour, glyph
    return OTHER


def subject(cells):
    """(module, what it is called): the problem file(s) that `survey --problem` measured into
    these cells, else the built-in problem."""
    files = sorted({c.problem["file"] for c in cells if c.problem})
    return (PROBLEM_MODULE, "problem " + ", ".join(files)) if files else (MODULE, BUILTIN)


def panels(cells, module=MODULE):
    """[(title, [cell keys], {(scenario, mode): [label per cell]})] per series, releases in order."""
    out = []
    for series, title in SERIES:
        members = sorted((c for c in cells if c.series == series and c.status == "ok"),
                         key=lambda c: Version(c.key.split("-", 1)[1]))
        if not members:
            continue
        rows = {}
        for scenario in SCENARIOS:
            for mode in MODES:
                rows[(scenario, mode)] = [label_of(next((o for o in c.observations if o.module == module
                                                         and o.scenario == scenario and o.mode == mode), None))
                                          for c in members]
        out.append((title, [c.key.split("-", 1)[1] for c in members], rows))
    return out


def render_svg(cells, module=MODULE, what=BUILTIN):
    """The heat map as one SVG document (a panel per series, stacked)."""
    parts, y, width = [], 0, 0
    for title, releases, rows in panels(cells, module):
        svg, height, w = _panel(title, releases, rows, y, what)
        parts.append(svg)
        y, width = y + height + 24, max(width, w)
    width = max(width, 600)
    legend, legend_height = _legend(y, {label for _, _, rows in panels(cells, module) for r in rows.values()
                                        for label in r}, width)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + legend_height}" '
            f'font-family="sans-serif" font-size="10">\n' + "\n".join(parts) + legend + "\n</svg>\n")


def _panel(title, releases, rows, y0, what=BUILTIN):
    out = [f'<text x="4" y="{y0 + 14}" font-size="13" font-weight="bold">{html.escape(title)} releases '
           f'({html.escape(what)})</text>']
    for i, release in enumerate(releases):
        x = LEFT + i * (CELL + GAP) + CELL / 2
        out.append(f'<text transform="translate({x},{y0 + TOP - 4}) rotate(-60)" font-size="8">{release}</text>')
    changed_columns = set()
    for r, ((scenario, mode), labels) in enumerate(rows.items()):
        y = y0 + TOP + r * (CELL + GAP)
        out.append(f'<text x="{LEFT - 6}" y="{y + CELL - 3}" text-anchor="end">{scenario} {mode}</text>')
        for i, label in enumerate(labels):
            x = LEFT + i * (CELL + GAP)
            colour, _ = style_of(label)
            tip = html.escape(f"{scenario} [{mode}] {title} {releases[i]}: {label}")
            out.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{colour}"><title>{tip}</title></rect>')
            if i and label != labels[i - 1] and "missing" not in (label, labels[i - 1]):
                changed_columns.add(i)
                out.append(f'<rect x="{x - GAP}" y="{y}" width="{GAP + 1}" height="{CELL}" fill="#000"/>')
    bottom = y0 + TOP + len(rows) * (CELL + GAP)
    for i in sorted(changed_columns):
        x = LEFT + i * (CELL + GAP) - GAP / 2
        out.append(f'<line x1="{x}" y1="{y0 + TOP - 2}" x2="{x}" y2="{bottom}" stroke="#000" stroke-dasharray="2,2"/>')
    return "\n".join(out), bottom - y0, LEFT + len(releases) * (CELL + GAP) + 10


def _legend(y0, labels, width):
    """Coloured squares with their names, wrapped to `width`; returns (svg, height)."""
    out, x, y = [], 4, y0
    order = [name for name, _, _ in STYLES]
    for label in sorted(labels, key=lambda l: (order.index(l) if l in order else len(order), l)):
        step = CELL + 16 + 6 * len(label)
        if x + step > width:
            x, y = 4, y + CELL + 6
        colour, _ = style_of(label)
        out.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{colour}"/>'
                   f'<text x="{x + CELL + 4}" y="{y + CELL - 3}">{html.escape(label)}</text>')
        x += step
    return "\n".join(out), y - y0 + CELL + 8


def render_html(cells, module=MODULE, what=BUILTIN):
    return ("<!doctype html>\n<meta charset=\"utf-8\">\n<title>repro survey: optax.lbfgs on Equinox modules</title>\n"
            "<h1>optax.lbfgs on an Equinox module, release by release</h1>\n"
            f"<p>Each square: what one call pattern did on the {html.escape(what)} in one surveyed release "
            "(hover for details). A heavy left edge: the outcome changed from the release before.</p>\n"
            + render_svg(cells, module, what))


def render_glyphs(cells, module=MODULE, what=BUILTIN):
    """The JAX panel as a Markdown table of glyphs (GitHub job summaries show no inline images)."""
    out = []
    for title, releases, rows in panels(cells, module):
        out += [f"**{title} releases** ({what})", "",
                "| scenario | mode | " + " ".join(releases) + " |", "| --- | --- | --- |"]
        for (scenario, mode), labels in rows.items():
            out.append(f"| {scenario} | {mode} | " + "".join(style_of(label)[1] for label in labels) + " |")
        out.append("")
    seen = sorted({label for _, _, rows in panels(cells, module) for r in rows.values() for label in r})
    out.append("Legend: " + ", ".join(f"{style_of(label)[1]} {label}" for label in seen))
    return "\n".join(out) + "\n"


def write_heatmap(directory=DATA_DIR, docs=DOCS):
    """survey.svg, survey.html and survey.md in `docs` (a checkout's docs/ by default) from the
    observations in `directory`, of the problem they measured (`subject`)."""
    if docs is None:
        raise ValueError("no docs/ folder outside a checkout: say where the heat map goes")
    cells = load(directory)
    module, what = subject(cells)
    os.makedirs(docs, exist_ok=True)
    written = []
    for name, render in (("survey.svg", render_svg), ("survey.html", render_html), ("survey.md", render_glyphs)):
        text = render(cells, module, what)
        path = os.path.join(docs, name)
        write_text_atomic(path, text)
        written.append(path)
    return written
