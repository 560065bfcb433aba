"""What each scenario is expected to do, by installed versions and module contents. No JAX.

Facts as data: every row was measured on real installs (see `evidence`). A version range
that no row covers is UNKNOWN: nothing is invented for versions nobody ran. Ranges are
closed at the newest measured release, so a new upstream release shows up as UNKNOWN
until someone measures it (`repro bisect`, the nox matrix) and extends the row.

Module contents are the flags `repro._jax._run.contents` computes:
`non_array_leaves` (functions, Python scalars, strings… among the leaves) and
`int_arrays` and `bool_arrays` (integer / boolean arrays among the leaves).
"""

import dataclasses
from typing import Mapping, Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ._outcome import CONVERGES, Expected, fails


@dataclasses.dataclass(frozen=True)
class Row:
    scenarios: tuple  # scenario names this row covers
    versions: Mapping[str, str]  # package -> PEP 440 specifier, all must hold
    expect: Expected
    contents: Mapping[str, bool] = dataclasses.field(default_factory=dict)  # flags that must hold
    modes: tuple = ("eager", "jit")
    evidence: str = ""

    def applies(self, scenario, mode, versions, contents):
        if scenario not in self.scenarios or mode not in self.modes:
            return False
        if any(contents.get(flag) != want for flag, want in self.contents.items()):
            return False
        return all(_satisfies(versions.get(pkg), spec) for pkg, spec in self.versions.items())


def _satisfies(version, spec):
    if version is None:
        return False
    try:
        return Version(version) in SpecifierSet(spec, prereleases=True)
    except InvalidVersion:
        return False


# The envelope every row below was measured inside; outside it everything is UNKNOWN.
MEASURED = {"optax": ">=0.2.3,<=0.2.8", "equinox": ">=0.11.4,<=0.13.8"}


def _within(**specs):
    return {**MEASURED, **specs}


NON_ARRAY = {"non_array_leaves": True}
NO_INT_OR_BOOL = {"int_arrays": False, "bool_arrays": False}
ARRAYS_ONLY = {"non_array_leaves": False, **NO_INT_OR_BOOL}

# Measured cells (python 3.11 unless noted), each running every scenario eager and jit:
#   A  jax 0.4.30  optax 0.2.3  equinox 0.11.4      D  jax 0.7.2   optax 0.2.7  equinox 0.13.0
#   B  jax 0.4.35  optax 0.2.4  equinox 0.11.10     E  jax 0.10.2  optax 0.2.8  equinox 0.13.8
#   C  jax 0.6.2   optax 0.2.5  equinox 0.12.2      F  jax 0.12.0.1 optax 0.2.8 equinox 0.13.8 (3.12)
# A range between two measured cells is claimed only where nothing changed between them.
ROWS = (
    # no_params: optax's tree_sub(params=None, state.params) -- JAX's wording is what changes.
    Row(("no_params",), _within(jax="==0.4.30"), fails("ValueError", "custom_node_mismatch", "update", "jax"),
        NON_ARRAY, evidence="cell A"),
    Row(("no_params",), _within(jax=">=0.4.35,<=0.7.2"), fails("ValueError", "expected_none", "update", "jax"),
        NON_ARRAY, evidence="cells B, C, D"),
    Row(("no_params",), _within(jax=">=0.10.2,<=0.12.0.1"), fails("ValueError", "pytree_structure_error", "update", "jax"),
        NON_ARRAY, evidence="cells E, F"),
    # scale_by_lbfgs.init reads `.shape` of every leaf, the activation function included.
    Row(("init_unfiltered",), _within(jax=">=0.4.30,<=0.12.0.1"), fails("AttributeError", "no_shape_attr", "init", "optax"),
        NON_ARRAY, evidence="cells A-F"),
    # tree_sub(model, state.params): function minus None.
    Row(("params_unfiltered",), _within(jax=">=0.4.30,<=0.12.0.1"), fails("TypeError", "unsupported_operand", "update", "jax"),
        NON_ARRAY, evidence="cells A-F"),
    # The zoom line search calls value_fn(filtered params): the MLP's activation is None there.
    Row(("value_fn_full_model",), _within(jax=">=0.4.30,<=0.12.0.1"), fails("TypeError", "none_not_callable", "linesearch", "equinox"),
        NON_ARRAY, evidence="cells A-F"),
    # The shared workaround verbatim: the default zoom line search needs value, grad, value_fn.
    Row(("seed_fix",), _within(jax=">=0.4.30,<=0.12.0.1"), fails("TypeError", "missing_linesearch_args", "update", "optax"),
        evidence="cells A-F"),
    Row(("seed_fix_no_linesearch", "seed_fix_value_fn"), _within(jax=">=0.4.30,<=0.12.0.1"), CONVERGES,
        NO_INT_OR_BOOL, evidence="cells A-F"),
    Row(("partition_fix",), _within(jax=">=0.4.30,<=0.12.0.1"), CONVERGES, evidence="cells A-F"),
)


def expected_for(scenario, mode, versions, contents) -> Optional[Expected]:
    """The first row that applies, or None (UNKNOWN)."""
    for row in ROWS:
        if row.applies(scenario, mode, versions, contents):
            return row.expect
    return None
