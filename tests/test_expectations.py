"""The expectations table, derived from the survey's data: every default cell measured exactly,
UNKNOWN outside what was measured, the known facts where the data puts them, no rule mixing
working and failing modules."""

import pytest
from packaging.version import Version

from repro._catalogue import MODES, SCENARIOS
from repro._expectations import BUILTIN, RULES, expectation_for, expected_for, table
from repro._matrix import cells_tagged
from repro._outcome import AnyOf
from repro._report import BUILTIN_CONTENTS as MLP

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host

CELLS = table()


def versions(jax, optax="0.2.8", equinox="0.13.8"):
    return {"jax": jax, "jaxlib": jax, "optax": optax, "equinox": equinox}


@pytest.mark.parametrize("cell", cells_tagged("default"), ids=lambda c: c.id)
def test_every_default_cell_is_measured_exactly_for_the_builtin_problem(cell):
    for name in SCENARIOS:
        for mode in MODES:
            found = expectation_for(name, mode, cell.pins, MLP)
            assert found.expected is not None and found.source == "measured", (cell.id, name, mode, found)


def test_no_params_message_follows_jax_through_three_eras():
    """Measured release by release: "Custom node type mismatch" up to JAX 0.4.33, "Expected None,
    got ..." from 0.4.34, "pytree structure error" from 0.10.2."""
    seen = {}
    for cell in CELLS:
        expected = cell.expected.get((BUILTIN, "no_params", "jit"))
        if cell.series == "jax" and expected is not None:
            seen[cell.versions["jax"]] = expected.family
    assert len(seen) >= 20, sorted(seen)
    for jax, family in seen.items():
        era = ("custom_node_mismatch" if Version(jax) <= Version("0.4.33") else
               "expected_none" if Version(jax) < Version("0.10.2") else "pytree_structure_error")
        assert family == era, (jax, family)


@pytest.mark.parametrize("v", [
    versions("0.4.20"),  # older than anything measured
    versions("99.0"),  # newer than anything measured
    versions("0.10.2", optax="0.3.0"),  # outside the measured optax versions
    {"optax": "0.2.8", "equinox": "0.13.8"},  # jax missing
])
def test_unmeasured_versions_are_unknown(v):
    assert expected_for("no_params", "eager", v, MLP) is None


def test_an_unmeasured_release_inside_an_unchanged_run_is_inferred_and_names_its_cells():
    """JAX 0.4.32 was yanked, so no cell has it; 0.4.31 and 0.4.33 around it agree."""
    around = {c.versions["jax"]: c for c in CELLS if c.series == "jax" and c.versions["jax"] in ("0.4.31", "0.4.33")}
    assert set(around) == {"0.4.31", "0.4.33"}
    query = dict(around["0.4.31"].versions, jax="0.4.32", jaxlib="0.4.31")
    found = expectation_for("seed_fix", "jit", query, MLP)
    assert found.source == "inferred" and {"jax-0.4.31", "jax-0.4.33"} <= set(found.cells), found
    assert found.expected == around["0.4.31"].expected[(BUILTIN, "seed_fix", "jit")]
    assert "inferred: no change between" in found.describe_source()


def _options(expected):
    return expected.options if isinstance(expected, AnyOf) else (expected,)


def test_every_failure_names_its_phase_and_no_rule_mixes_working_and_failing_modules():
    """A broken pattern is expected to fail *where* it fails (derived from what was seen); a rule
    whose corpus modules both work and fail in one cell is too coarse (derived as None)."""
    conflicts = []
    for cell in CELLS:
        for key, expected in cell.expected.items():
            if expected is None:
                conflicts.append((cell.key, key, cell.sources[key]))
                continue
            for option in _options(expected):
                if not option.converges and option.family not in ("wrong_result", "not_converged"):
                    assert option.phase, (cell.key, key)
    assert not conflicts, conflicts[:5]


def test_the_builtin_problem_must_converge_and_other_modules_must_agree():
    for cell in CELLS:
        for (rule, _, _), expected in cell.expected.items():
            for option in _options(expected):
                if option.converges:
                    assert option.optimum == (rule == BUILTIN), (cell.key, rule)


@pytest.mark.parametrize("flags, expected", [
    ({"loss_of_filtered": "raises"}, "in linesearch"),
    ({"loss_of_filtered": "differs"}, "wrong result (departs from the reference)"),
    ({"loss_of_filtered": "same"}, "matches the reference"),
])
def test_value_fn_full_model_follows_what_the_loss_makes_of_a_filtered_module(flags, expected):
    contents = {"non_array_leaves": True, "int_arrays": False, "bool_arrays": False, "first_array": "float",
                "low_precision_loss": False, "low_precision_floats": False, "mixed_float_dtypes": False, **flags}
    for cell in cells_tagged("ci"):
        assert expected in expected_for("value_fn_full_model", "jit", cell.pins, contents).describe(), cell.id


def test_rules_have_unique_names_and_cover_only_known_scenarios():
    assert len({r.name for r in RULES}) == len(RULES)
    assert all(set(r.scenarios) <= set(SCENARIOS) and r.why for r in RULES)
