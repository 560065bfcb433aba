"""The deciding leaf: which stage of optax.lbfgs meets which leaf first, for hand-written leaf lists."""

import pytest

from repro._catalogue import SCENARIOS
from repro._leaves import KINDS, SCENARIO_VIEWS, STAGES, broken, deciding, describe, leaf_list, path, silent, view

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host


def flags(*leaves, **more):
    return {"leaves": list(leaves), "top": "module", **more}


@pytest.mark.parametrize("scenario, contents, expected", [
    # Leaf order: the subtraction of old params meets a bool mask before a function listed after it...
    ("params_unfiltered", flags("float-array", "bool-array", "function"), "sub-params: bool"),
    # ...and the function first when it comes first.
    ("params_unfiltered", flags("float-array", "function", "bool-array"), "sub-params: function"),
    # init() needs every leaf's shape: the first non-array leaf decides, a bool array has one.
    ("init_unfiltered", flags("float-array", "bool-array", "function"), "init-shape: function"),
    ("init_unfiltered", flags("float-array", "bool-array"), "sub-params: bool"),
    # Integer arrays: where the gradients are None; the path names the class, not the shape.
    ("seed_fix_no_linesearch", flags("float-array", "int-scalar"), "sub-updates: int"),
    ("seed_fix_no_linesearch", flags("float-array", "int-array"), "sub-updates: int"),
    # A bool mask breaks the subtraction of params before the integer array's None gradient matters.
    ("seed_fix_no_linesearch", flags("float-array", "int-array", "bool-array"), "sub-params: bool"),
    # An integer array first: the zoom line search's dtype (on some releases), then the gradients.
    ("seed_fix_value_fn", flags("int-array", "float-array"), "init-dtype: int, sub-updates: int"),
    ("seed_fix_no_linesearch", flags("int-array", "float-array"), "sub-updates: int"),  # no zoom line search
    ("no_params", flags("int-array", "float-array"), "init-dtype: int, no-params: module"),
    ("no_params", {"leaves": ["float-array", "custom-jvp"], "top": "tuple"}, "no-params: tuple"),
    # partition_fix sees the float arrays only; their precision decides the zoom line search.
    ("partition_fix", flags("float-array", "function", "int-scalar", "bool-array"), "clean"),
    ("partition_fix", flags("low-array", "float-array", float_dtypes=["float16", "float32"]),
     "zoom-dtypes: mixed-low-first-params/float-loss"),
    ("partition_fix", flags("float-array", "low-array", float_dtypes=["float32", "bfloat16"]),
     "zoom-dtypes: mixed-float-first-params/float-loss"),
    ("partition_fix", flags("low-array", "low-array", float_dtypes=["float16", "bfloat16"]),
     "zoom-dtypes: mixed-low-first-params/float-loss"),  # two low dtypes are mixed dtypes too
    ("partition_fix", flags("low-array", low_precision_loss=True, float_dtypes=["bfloat16"]),
     "zoom-dtypes: low-params/low-loss"),
    # The line search evaluates the loss on the filtered module: what the loss makes of it.
    ("value_fn_full_model", flags("float-array", "py-bool", loss_of_filtered="differs"), "value-fn: differs"),
    ("value_fn_full_model", flags("low-array", "py-bool", loss_of_filtered="differs", float_dtypes=["bfloat16"]),
     "value-fn: differs, zoom-dtypes: low-params/float-loss"),
    ("value_fn_full_model", flags("float-array", "jitted", loss_of_filtered="raises",
                                  loss_error="TypeError:none_not_callable@equinox"),
     "value-fn: raises TypeError:none_not_callable@equinox"),
    ("value_fn_full_model", flags("float-array", "str", loss_of_filtered="same"), "clean"),
    # A dtype kept in a field: with it None, the loss comes back in another dtype.
    ("value_fn_full_model", flags("low-array", "class", loss_of_filtered="differs-dtype", float_dtypes=["bfloat16"]),
     "value-fn: differs-dtype, zoom-dtypes: low-params/float-loss"),
    ("seed_fix", flags("float-array", "jitted"), "linesearch-args: missing"),
])
def test_path(scenario, contents, expected):
    assert describe(path(scenario, contents)) == expected


def test_a_path_stops_at_the_first_stage_that_always_breaks():
    found = path("params_unfiltered", flags("int-array", "float-array", "function", "bool-array"))
    assert found == (("init-dtype", "int"), ("sub-params", "function"))
    assert broken(found) and deciding(found) == ("sub-params", "function")
    clean = path("partition_fix", flags("float-array"))
    assert clean == () and not broken(clean) and deciding(clean) is None


def test_only_a_steering_field_is_a_silent_breakage():
    assert silent(path("value_fn_full_model", flags("float-array", "py-bool", loss_of_filtered="differs")))
    assert silent(path("value_fn_full_model", flags("float-array", "class", loss_of_filtered="differs-dtype")))
    assert not silent(path("value_fn_full_model", flags("float-array", "py-bool", loss_of_filtered="raises")))
    assert not silent(path("params_unfiltered", flags("float-array", "py-bool", loss_of_filtered="differs")))


def test_views_keep_what_equinox_keeps():
    leaves = ["int-array", "function", "float-scalar", "low-array", "bool-scalar", "key-scalar", "py-float"]
    assert view(leaves, "raw") == leaves
    assert view(leaves, "arrays") == ["int-array", "float-scalar", "low-array", "bool-scalar", "key-scalar"]
    assert view(leaves, "floats") == ["float-scalar", "low-array"]


def test_contents_without_a_leaf_list_have_no_path():
    assert path("no_params", {"loss_of_filtered": "raises"}) is None
    assert describe(None).startswith("unknown")


def test_every_scenario_has_its_views_and_every_stage_a_reason():
    assert set(SCENARIO_VIEWS) == set(SCENARIOS)
    assert all(stage.why for stage in STAGES.values())
    assert all(stage.breaks <= set(KINDS) for stage in STAGES.values())
    assert len(set(KINDS)) == len(KINDS)


def test_leaf_list_collapses_runs():
    assert leaf_list(["float-array"] * 4 + ["jitted", "function"]) == "float-array x4, jitted, function"
