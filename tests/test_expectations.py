"""The expectations table, derived from the survey's data: every default cell measured exactly,
UNKNOWN outside what was measured, the known facts where the data puts them, no path mixing
working and failing modules."""

import pytest
from packaging.version import Version

from repro._catalogue import MODES, SCENARIOS
from repro._expectations import BUILTIN, CATEGORY, expectation_for, table
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
    assert expectation_for("no_params", "eager", v, MLP).expected is None


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


def test_every_failure_names_its_phase_and_no_path_mixes_working_and_failing_modules():
    """A broken pattern is expected to fail *where* it fails (derived from what was seen), unless
    the path's corpus modules failed in different phases there (an int scalar and an int vector
    on JAX <= 0.4.33: the path keeps what they share); a path whose corpus modules both work and
    fail in one cell is too coarse (derived as None)."""
    conflicts = []
    for cell in CELLS:
        for key, expected in cell.expected.items():
            if expected is None:
                conflicts.append((cell.key, key, cell.sources[key]))
                continue
            phases = {sig.split("@")[1].split("[")[0] for sig in cell.signatures[key] if "@" in sig}
            for option in _options(expected):
                if option.status == "error":
                    assert option.phase or len(phases) > 1, (cell.key, key, cell.signatures[key])
    assert not conflicts, conflicts[:5]


def test_the_builtin_problem_must_converge_and_other_modules_must_agree():
    for cell in CELLS:
        for (key, _, _), expected in cell.expected.items():
            for option in _options(expected):
                if option.works:
                    assert option.optimum_known == (key == BUILTIN), (cell.key, key)


def leaves(*kinds, **flags):
    return {"leaves": list(kinds), "top": "module", **flags}


@pytest.mark.parametrize("flags, expected", [
    ({"loss_of_filtered": "raises", "loss_error": "TypeError:none_not_callable@equinox"}, "in linesearch"),
    ({"loss_of_filtered": "differs"}, "wrong result (departs from the reference)"),
    ({"loss_of_filtered": "same"}, "matches the reference"),
])
def test_value_fn_full_model_follows_what_the_loss_makes_of_a_filtered_module(flags, expected):
    for cell in cells_tagged("ci"):
        found = expectation_for("value_fn_full_model", "jit", cell.pins, leaves("float-array", "py-bool", **flags))
        assert expected in found.expected.describe(), (cell.id, found)


@pytest.mark.parametrize("cell", cells_tagged("ci"), ids=lambda c: c.id)
def test_leaf_order_decides_the_expected_message(cell):
    """A bool mask before a function fails the subtraction of params on the mask; a jitted
    function before the mask fails it on the function: two measured paths, two signatures."""
    mask_first = expectation_for("params_unfiltered", "jit", cell.pins, leaves("float-array", "bool-array", "function"))
    fn_first = expectation_for("params_unfiltered", "jit", cell.pins, leaves("float-array", "jitted", "bool-array"))
    assert mask_first.match == fn_first.match == "exact", (mask_first, fn_first)
    assert mask_first.expected.family == "bool_dtype" and fn_first.expected.family == "unsupported_operand"


@pytest.mark.parametrize("cell", cells_tagged("ci"), ids=lambda c: c.id)
def test_a_leaf_kind_never_measured_gets_its_stage_s_category(cell):
    """A plain object stored in a module: no corpus module holds one, but the subtraction of
    params cannot handle it whatever the release: broken, any signature, with the corpus's beside it."""
    found = expectation_for("params_unfiltered", "jit", cell.pins, leaves("float-array", "object"))
    assert found.match == "category" and found.source == "measured" and not found.expected.works, found
    assert any("unsupported_operand" in signature for signature in found.corpus), found.corpus


def test_a_precision_never_measured_is_unknown():
    """float32 params with a bfloat16 loss: no corpus module, and the zoom line search's dtypes
    break on some releases only (which precisions, only a measurement says): nothing is invented."""
    odd = leaves("float-array", low_precision_loss=True, float_dtypes=["float32"])
    for cell in cells_tagged("ci"):
        found = expectation_for("partition_fix", "jit", cell.pins, odd)
        assert found.expected is None and "float-params/low-loss" in found.why, found


def test_every_category_of_a_stage_sure_to_break_is_broken():
    certain = {"init-shape", "no-params", "sub-params", "sub-updates", "linesearch-args", "value-fn"}
    seen = set()
    for cell in CELLS:
        for (key, scenario, mode), expected in cell.expected.items():
            if key[:1] == (CATEGORY,) and key[1] in certain:
                seen.add(key[1])
                assert not expected.works and expected.status is None, (cell.key, key, scenario, mode)
    assert seen == certain
