"""The expectations table: lookups by version and contents, UNKNOWN outside what was measured."""

import pytest

from repro._expectations import REFERENCE, ROWS, expected_for
from repro._outcome import AnyOf
from repro._catalogue import SCENARIOS, MODES
from repro._matrix import cells_tagged
from repro._report import BUILTIN_CONTENTS as MLP
from repro._signatures import FAMILIES

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host


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


def _options(expect):
    return expect.options if isinstance(expect, AnyOf) else (expect,)


def test_rows_use_known_families_and_say_where_they_were_measured():
    known = {name for name, _ in FAMILIES} | {"wrong_result"}
    for row in ROWS:
        assert row.evidence, row
        assert set(row.scenarios) <= set(SCENARIOS), row
        for option in _options(row.expect):
            assert option.converges or option.family in known | {None}, row


def test_every_failure_row_names_its_phase():
    """A broken pattern is expected to fail *where* it fails: no row accepts any exception
    anywhere (a bug in a generated loss or in the harness would pass as REPRODUCED)."""
    for row in ROWS:
        for option in _options(row.expect):
            if not option.converges and option.family != "wrong_result":
                assert option.phase, row


def test_generic_workarounds_agree_and_the_builtin_problem_converges():
    """Any module but the built-in one: a working pattern must match the flat-vector reference;
    the built-in problem (known optimum) must also converge."""
    for row in ROWS:
        if row.expect.converges:
            assert row.expect.optimum == (row.contents == REFERENCE), row


@pytest.mark.parametrize("flags, expected", [
    ({"loss_of_filtered": "raises"}, "fails in linesearch"),
    ({"loss_of_filtered": "differs"}, "wrong result (departs from the reference)"),
    ({"loss_of_filtered": "same"}, "matches the reference"),
])
def test_value_fn_full_model_follows_what_the_loss_makes_of_a_filtered_module(flags, expected):
    contents = {"non_array_leaves": True, "int_arrays": False, "bool_arrays": False, "first_array": "float",
                "low_precision_loss": False, "mixed_float_dtypes": False, **flags}
    for cell in cells_tagged("ci"):  # the two cells the generic rows were measured in
        described = expected_for("value_fn_full_model", "jit", cell.pins, contents).describe()
        assert described.replace("any error (any message) in linesearch [any]", "fails in linesearch") == expected
