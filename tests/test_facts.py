"""Each fact has one home; where a copy must exist (pyproject.toml, the docs), it is checked
against that home here, so the copies cannot drift."""

import os
import re

import pytest

pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def _pyproject():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_the_version_floors_are_the_survey_floors_and_the_floor_cell():
    """pyproject's `jax>=`, `optax>=`, `equinox>=` are `_survey.FLOORS`, and the matrix's floor
    cell pins exactly them: the oldest versions the tool claims are the ones it measures."""
    from repro._matrix import cells_tagged
    from repro._survey import FLOORS

    declared = {}
    for requirement in _pyproject()["project"]["dependencies"]:
        match = re.fullmatch(r"([a-z]+)>=([0-9.]+)", requirement.replace(" ", ""))
        if match and match.group(1) in FLOORS:
            declared[match.group(1)] = match.group(2)
    assert declared == FLOORS
    (floor,) = cells_tagged("floor")
    assert {name: floor.pins[name] for name in FLOORS} == FLOORS


def _cell_row(cell):
    def shown(name):
        pin = cell.pins.get(name)
        if pin is None:
            return "unpinned" if not cell.pins else "newest"
        return "main (git)" if pin.startswith("git+") else pin

    resolved = cell.exclude_newer[:10] if cell.exclude_newer else "floating"
    return [f"`{cell.id}`", cell.python, shown("jax"), shown("optax"), shown("equinox"), " ".join(cell.tags), resolved]


def test_the_docs_cell_table_is_the_matrix():
    """docs/matrix.md's table of cells lists `_matrix.CELLS`, in order, with their pins, tags and
    resolution dates."""
    from repro._matrix import CELLS

    text = _read("docs", "matrix.md")
    header = "| cell | python | jax | optax | equinox | tags | resolved as of |"
    lines = text[text.index(header):].splitlines()[2:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[:lines.index("")]]
    assert rows == [_cell_row(cell) for cell in CELLS]


def test_the_docs_cell_table_check_fails_on_a_drifted_row():
    """The comparison above is not vacuous: a cell with another pin gives another row."""
    import dataclasses

    from repro._matrix import CELLS

    moved = dataclasses.replace(CELLS[0], pins={**CELLS[0].pins, "optax": "0.2.4"})
    assert _cell_row(moved) != _cell_row(CELLS[0])


def test_the_tracked_packages_and_the_timestamp_helper_are_defined_once():
    """`TRACKED` and `utc_now` have one definition in the package."""
    sources = {}
    for folder, _, names in os.walk(os.path.join(ROOT, "repro")):
        for name in names:
            if name.endswith(".py"):
                sources[os.path.join(folder, name)] = open(os.path.join(folder, name), encoding="utf-8").read()
    for pattern in (r"^TRACKED\s*=", r"^def utc_now\("):
        homes = [path for path, text in sources.items() if re.search(pattern, text, re.M)]
        assert len(homes) == 1, (pattern, homes)
