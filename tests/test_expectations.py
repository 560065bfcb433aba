"""The expectations table: lookups by version and contents, UNKNOWN outside what was measured."""

import pytest

from repro._expectations import ROWS, expected_for
from repro._catalogue import SCENARIOS, MODES
from repro._signatures import FAMILIES

MLP = {"non_array_leaves": True, "int_arrays": False, "bool_arrays": False, "problem": "mlp"}


def versions(jax, optax="0.2.8", equinox="0.13.8"):
    return {"jax": jax, "jaxlib": jax, "optax": optax, "equinox": equinox}


@pytest.mark.parametrize("jax, family", [
    ("0.4.30", "custom_node_mismatch"),
    ("0.4.35", "expected_none"),
    ("0.7.2", "expected_none"),
    ("0.10.2", "pytree_structure_error"),
    ("0.12.0.1", "pytree_structure_error"),
])
def test_no_params_message_family_follows_jax(jax, family):
    assert expected_for("no_params", "jit", versions(jax), MLP).family == family


@pytest.mark.parametrize("v", [
    versions("0.4.20"),  # older than anything measured
    versions("99.0"),  # newer than anything measured
    versions("0.10.2", optax="0.3.0"),  # outside the measured optax envelope
    {"optax": "0.2.8", "equinox": "0.13.8"},  # jax missing
])
def test_unmeasured_versions_are_unknown(v):
    assert expected_for("no_params", "eager", v, MLP) is None


def test_every_scenario_and_mode_has_an_expectation_for_the_mlp_in_each_measured_cell():
    for jax in ("0.4.30", "0.4.35", "0.6.2", "0.7.2", "0.10.2", "0.12.0.1"):
        for name in SCENARIOS:
            for mode in MODES:
                assert expected_for(name, mode, versions(jax), MLP) is not None, (jax, name, mode)


def test_rows_use_known_families_and_say_where_they_were_measured():
    known = {name for name, _ in FAMILIES}
    for row in ROWS:
        assert row.evidence, row
        assert set(row.scenarios) <= set(SCENARIOS), row
        assert row.expect.converges or row.expect.family in known | {None}, row
