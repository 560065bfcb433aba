"""The expectations table: lookups by version and contents, UNKNOWN outside what was measured."""

import pytest

from repro._expectations import REFERENCE, ROWS, expected_for
from repro._catalogue import SCENARIOS, MODES
from repro._matrix import cells_tagged
from repro._report import BUILTIN_CONTENTS as MLP
from repro._signatures import FAMILIES

MEASURED_CELLS = cells_tagged("default")
NO_PARAMS_ROWS = [row for row in ROWS if row.scenarios == ("no_params",) and row.contents == REFERENCE]


def versions(jax, optax="0.2.8", equinox="0.13.8"):
    return {"jax": jax, "jaxlib": jax, "optax": optax, "equinox": equinox}


@pytest.mark.parametrize("cell", MEASURED_CELLS, ids=lambda c: c.id)
def test_no_params_message_family_follows_jax(cell):
    """The built-in problem's no_params expectation is the one row whose JAX range holds the cell."""
    holding = [row for row in NO_PARAMS_ROWS if row.applies("no_params", "jit", cell.pins, MLP)]
    assert len(holding) == 1, (cell.id, holding)
    assert expected_for("no_params", "jit", cell.pins, MLP) == holding[0].expect


def test_no_params_rows_each_change_the_message_family():
    families = [row.expect.family for row in NO_PARAMS_ROWS]
    assert len(families) >= 3 and all(a != b for a, b in zip(families, families[1:])), families


@pytest.mark.parametrize("v", [
    versions("0.4.20"),  # older than anything measured
    versions("99.0"),  # newer than anything measured
    versions("0.10.2", optax="0.3.0"),  # outside the measured optax envelope
    {"optax": "0.2.8", "equinox": "0.13.8"},  # jax missing
])
def test_unmeasured_versions_are_unknown(v):
    assert expected_for("no_params", "eager", v, MLP) is None


def test_every_scenario_and_mode_has_an_expectation_for_the_mlp_in_each_measured_cell():
    for cell in MEASURED_CELLS:
        for name in SCENARIOS:
            for mode in MODES:
                assert expected_for(name, mode, cell.pins, MLP) is not None, (cell.id, name, mode)


def test_rows_use_known_families_and_say_where_they_were_measured():
    known = {name for name, _ in FAMILIES}
    for row in ROWS:
        assert row.evidence, row
        assert set(row.scenarios) <= set(SCENARIOS), row
        assert row.expect.converges or row.expect.family in known | {None}, row
