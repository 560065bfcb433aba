"""What each scenario is expected to do, derived from the survey's observations. No JAX.

The facts are data: `repro survey` measures the built-in problem and a fixed corpus of modules
(`repro/_corpus.py: SURVEY`) through every scenario in one cell per JAX, Optax and Equinox
release (`repro/_data/observations/*.json`). Nothing here states an outcome. What is written by
hand is which content flags decide a scenario's fate, and why (RULES): the expectation of a rule
in a cell is what the corpus modules it covers did there (their `meet`).

For installed versions that were measured exactly (jax, optax, equinox all equal to a cell's),
that cell's observations decide. Otherwise an expectation is *inferred* only inside a run of
consecutive releases of one series in which the survey saw no change, and it says so and from
which cells (`expectation_for`). Outside what was measured, it is UNKNOWN: nothing is invented.

Module contents are the flags `repro._jax._run.contents` computes:
`non_array_leaves` (functions, Python scalars, strings... among the leaves),
`int_arrays` and `bool_arrays` (integer / boolean arrays among the leaves),
`low_precision_floats` and `mixed_float_dtypes` (float16/bfloat16 arrays; float arrays of more
than one dtype), `first_array` (int, bool, low_precision or float: the first array leaf),
`low_precision_loss` (the loss itself is float16/bfloat16), `loss_of_filtered` (what the loss
makes of the module with its non-array leaves None: raises, differs or same), and `problem`
("mlp" for the built-in problem, which has its own observations).

A working pattern is expected to CONVERGE on the built-in problem (its optimum is known) and
to AGREE with the flat-vector reference on any other module (convergence is information
there); WRONG_RESULT is a run that finishes but departs from the reference.
"""

import dataclasses
import functools
from typing import Mapping, Optional

from packaging.version import InvalidVersion, Version

from ._observations import DATA_DIR, TRACKED, load
from ._outcome import AGREES, CONVERGES, WRONG_RESULT, Expected, any_of, fails


@dataclasses.dataclass(frozen=True)
class Rule:
    """Which scenarios' fate a set of content flags decides, and why (first match wins)."""

    name: str
    scenarios: tuple
    contents: Mapping[str, object]
    why: str
    # For a steering field at float16/bfloat16 precision: a wrong result can hide inside what
    # rounding allows, so when the corpus module finished, finishing either way is as expected.
    undecided: bool = False

    def applies(self, scenario, contents):
        return scenario in self.scenarios and all(contents.get(k) == v for k, v in self.contents.items())


N, NO_N = {"non_array_leaves": True}, {"non_array_leaves": False}
B, I = {"bool_arrays": True}, {"int_arrays": True, "bool_arrays": False}
LP, MIXED = {"low_precision_loss": True}, {"mixed_float_dtypes": True}
PLAIN = {"non_array_leaves": False, "int_arrays": False, "bool_arrays": False}
INT_FIRST = {"first_array": "int"}
# Scenarios whose L-BFGS is handed an `eqx.is_array`-filtered module (params, or grads and state).
IS_ARRAY = ("value_fn_full_model", "seed_fix", "seed_fix_no_linesearch", "seed_fix_value_fn")
# Scenarios that call init() on the filtered module, with the default zoom line search.
ZOOM_INIT_FILTERED = ("no_params", "params_unfiltered", "value_fn_full_model", "seed_fix", "seed_fix_value_fn")
UNFILTERED = ("init_unfiltered", "params_unfiltered")
PLAIN_OK = ("init_unfiltered", "params_unfiltered", "value_fn_full_model")
VFFM = ("value_fn_full_model",)


def _rules():
    r = Rule
    return (
        r("int-first-zoom", ZOOM_INIT_FILTERED, INT_FIRST,
          "init() gets the filtered module; newer Optax takes the zoom line search's value dtype "
          "from the first leaf, and an int32 cannot hold inf"),
        r("int-first-init", ("init_unfiltered",), {**NO_N, **INT_FIRST}, "the same, from the raw module"),
        r("no-params", ("no_params",), {}, "update() without params: nothing to subtract the old params from"),
        r("partition-lp-loss", ("partition_fix",), LP, "a float16/bfloat16 loss in the zoom line search"),
        r("partition-mixed", ("partition_fix",), MIXED, "float arrays of mixed dtypes in the zoom line search"),
        r("partition", ("partition_fix",), {}, "L-BFGS sees the float arrays only"),
        r("is-array-bool", IS_ARRAY, B, "params - old_params on a bool array"),
        r("is-array-int", IS_ARRAY, I, "None gradients where the params hold int arrays"),
        r("seed-fix", ("seed_fix",), {}, "the zoom line search needs value, grad and value_fn"),
        r("value-fn-lp-loss", ("seed_fix_value_fn",), LP, "a float16/bfloat16 loss in the zoom line search"),
        r("value-fn-mixed", ("seed_fix_value_fn",), MIXED, "float arrays of mixed dtypes in the zoom line search"),
        r("is-array", ("seed_fix_no_linesearch", "seed_fix_value_fn"), {}, "float arrays and static leaves only"),
        r("vffm-raises", VFFM, {**N, "loss_of_filtered": "raises"},
          "the line search evaluates the loss on the filtered module: the loss raises on a None field "
          "(what it raises is the loss's own business)"),
        r("vffm-differs-lp-loss", VFFM, {**N, "loss_of_filtered": "differs", **LP},
          "a steering field, and a float16/bfloat16 loss", undecided=True),
        r("vffm-differs-mixed", VFFM, {**N, "loss_of_filtered": "differs", **MIXED},
          "a steering field, and float arrays of mixed dtypes", undecided=True),
        r("vffm-differs-low-precision", VFFM, {**N, "loss_of_filtered": "differs", "low_precision_floats": True},
          "a steering field, at float16/bfloat16 precision", undecided=True),
        r("vffm-differs", VFFM, {**N, "loss_of_filtered": "differs"},
          "a field steers the loss: the line search evaluates another function, no error"),
        r("vffm-same-lp-loss", VFFM, {**N, "loss_of_filtered": "same", **LP}, "a float16/bfloat16 loss"),
        r("vffm-same-mixed", VFFM, {**N, "loss_of_filtered": "same", **MIXED}, "float arrays of mixed dtypes"),
        r("vffm-same", VFFM, {**N, "loss_of_filtered": "same"}, "the loss never reads a non-array field"),
        r("params-unfiltered", ("params_unfiltered",), N, "params - old_params on a non-array leaf"),
        r("init-unfiltered", ("init_unfiltered",), N, "init() reads the shape of every leaf"),
        r("unfiltered-int", UNFILTERED, I, "int arrays in the raw module"),
        r("unfiltered-bool", UNFILTERED, B, "bool arrays in the raw module"),
        r("plain-lp-loss", PLAIN_OK, {**PLAIN, **LP}, "float arrays only, a float16/bfloat16 loss"),
        r("plain-mixed", PLAIN_OK, {**PLAIN, **MIXED}, "float arrays only, of mixed dtypes"),
        r("plain", PLAIN_OK, PLAIN, "float arrays only: nothing to filter out"),
    )


RULES = _rules()
BUILTIN = "builtin"  # the corpus name of the built-in problem (contents["problem"] == "mlp")


def rule_for(scenario, contents):
    """The key a module's expectation is derived under: the built-in problem's own, or the first rule."""
    if contents.get("problem") == "mlp":
        return BUILTIN
    return next((rule.name for rule in RULES if rule.applies(scenario, contents)), None)


# --------------------------------------------------------------------------- from observations to expectations

def expected_of(observation, *, optimum):
    """One observation as an Expected (None for a crash or timeout: nothing to expect)."""
    o = observation
    if o.status in ("converged", "not_converged") and o.agrees is not False:
        if optimum and o.status == "not_converged":
            return Expected(False, family="not_converged")
        return CONVERGES if optimum else AGREES
    if o.status == "wrong_result":
        return WRONG_RESULT
    if o.status == "error":
        return fails(o.exc_type, o.family, o.phase, o.library)
    return None


def meet(expectations):
    """The most specific expectation every one of `expectations` satisfies: equal ones stay,
    failures keep the fields they share, a failure and a wrong result become either. A pattern
    that works for some modules and not for others is a conflict (None): its rule is too coarse."""
    kinds = set(expectations)
    if not kinds:
        return None
    if len(kinds) == 1:
        return kinds.pop()
    failures = [e for e in kinds if not e.converges and e.family not in ("wrong_result", "not_converged")]
    if len(failures) < len(kinds) - (WRONG_RESULT in kinds):  # something worked, something did not
        return None
    wrong = WRONG_RESULT in kinds
    shared = fails(*(_common(getattr(e, f) for e in failures) for f in ("exc_type", "family", "phase", "library")))
    return any_of(shared, WRONG_RESULT) if wrong else shared


def _common(values):
    values = set(values)
    return values.pop() if len(values) == 1 else None


@dataclasses.dataclass(frozen=True)
class Cell:
    """One surveyed cell, reduced to what expectations need."""

    key: str
    series: str
    versions: Mapping[str, str]
    expected: Mapping[tuple, object]  # (rule or BUILTIN, scenario, mode) -> Expected, or None (conflict)
    sources: Mapping[tuple, tuple]  # the same key -> the corpus modules it was derived from


def derive_cell(cell):
    """The expectations one cell's observations give, per (rule, scenario, mode)."""
    groups, sources = {}, {}
    for o in cell.observations:
        contents = cell.contents.get(o.module, {})
        key = (rule_for(o.scenario, contents), o.scenario, o.mode)
        expected = expected_of(o, optimum=key[0] == BUILTIN)
        if key[0] is None or expected is None:
            continue
        groups.setdefault(key, []).append(expected)
        sources.setdefault(key, []).append(o.module)
    rules = {rule.name: rule for rule in RULES}
    expected = {}
    for key, found in groups.items():
        derived = meet(found)
        rule = rules.get(key[0])
        if rule is not None and rule.undecided and derived is not None and not any(
                e.converges is False and e.family not in ("wrong_result",) for e in found):
            derived = any_of(WRONG_RESULT, AGREES)
        expected[key] = derived
    return Cell(cell.key, cell.series, cell.versions, expected, {k: tuple(v) for k, v in sources.items()})


@functools.lru_cache(maxsize=4)
def table(directory=DATA_DIR):
    """Every measured cell's derived expectations (cached per process)."""
    return tuple(derive_cell(c) for c in load(directory) if c.status == "ok" and c.observations)


# --------------------------------------------------------------------------- lookup

@dataclasses.dataclass(frozen=True)
class Expectation:
    """An expectation and where it comes from: `measured` in one cell, or `inferred` from a run
    of cells of one series in which nothing changed (the cells named)."""

    expected: Optional[object]
    source: str = "unknown"  # measured | inferred | unknown
    cells: tuple = ()
    why: str = ""

    def describe_source(self):
        if self.source == "measured":
            return f"measured in {self.cells[0]}"
        if self.source == "inferred":
            return f"inferred: no change between {self.cells[0]} and {self.cells[-1]} ({len(self.cells)} cells)"
        return self.why or "nothing measured for these versions"


def _v(text):
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


def _same(versions, cell):
    return all(_v(versions.get(p)) is not None and _v(versions.get(p)) == _v(cell.versions.get(p))
               for p in ("jax", "optax", "equinox"))


def _runs(cells, key):
    """Maximal runs of consecutive measured cells with one derived expectation for `key`, along
    two kinds of path: a series (its releases in order, the other packages as of each release)
    and a line (one package's versions in order, the other two the same in every cell, e.g. two
    matrix cells that differ only in jax). Inference stays inside a run: no change was seen there."""
    paths = []
    for series in ("jax", "optax", "equinox"):
        paths.append(sorted((c for c in cells if c.series == series and key in c.expected),
                            key=lambda c: _v(c.key.split("-", 1)[1])))
    for package in ("jax", "optax", "equinox"):
        others = [p for p in ("jax", "optax", "equinox") if p != package]
        lines = {}
        for cell in cells:
            if key in cell.expected and _v(cell.versions.get(package)) is not None:
                lines.setdefault(tuple(cell.versions.get(o) for o in others), []).append(cell)
        paths += [sorted(line, key=lambda c: _v(c.versions[package])) for line in lines.values()]
    out = []
    for path in paths:
        run = []
        for cell in path:
            if run and cell.expected[key] != run[-1].expected[key]:
                out.append(run)
                run = []
            run.append(cell)
        if run:
            out.append(run)
    return [run for run in out if len({c.key for c in run}) > 1]


def _cell_order(key):
    """Series cells by release (jax-0.4.9 before jax-0.4.30), matrix cells by name."""
    series, _, rest = key.partition("-")
    return series, _v(rest) or Version("0"), key


def _inside(versions, run):
    for package in ("jax", "optax", "equinox"):
        have = [_v(c.versions.get(package)) for c in run]
        wanted = _v(versions.get(package))
        if wanted is None or None in have or not min(have) <= wanted <= max(have):
            return False
    return True


def expectation_for(scenario, mode, versions, contents, directory=DATA_DIR) -> Expectation:
    """What `scenario` is expected to do (mode, installed `versions`, module `contents`)."""
    rule = rule_for(scenario, contents)
    if rule is None:
        return Expectation(None, why="no rule covers this module's contents")
    key = (rule, scenario, mode)
    cells = table(directory)
    exact = [c for c in cells if _same(versions, c) and key in c.expected]
    if exact:
        found = {c.expected[key] for c in exact}
        if len(found) == 1 and None not in found:
            return Expectation(found.pop(), "measured", (exact[0].key,))
        return Expectation(None, why=f"the corpus modules disagree in {exact[0].key} ({rule}): the rule is too coarse")
    holding = [run for run in _runs(cells, key) if _inside(versions, run)]
    found = {run[0].expected[key] for run in holding}
    if len(found) == 1 and None not in found:
        cited = sorted({c.key for run in holding for c in run}, key=_cell_order)
        return Expectation(found.pop(), "inferred", tuple(cited))
    if found:
        return Expectation(None, why="the surveyed cells around these versions disagree")
    return Expectation(None)


def expected_for(scenario, mode, versions, contents, directory=DATA_DIR) -> Optional[Expected]:
    """The Expected (None: UNKNOWN) for `scenario`; see `expectation_for` for where it comes from."""
    return expectation_for(scenario, mode, versions, contents, directory).expected


def measured_versions(directory=DATA_DIR):
    """{package: sorted versions} the survey measured (what the heat map and --new compare)."""
    found = {p: set() for p in TRACKED}
    for cell in table(directory):
        for package in TRACKED:
            if cell.versions.get(package):
                found[package].add(cell.versions[package])
    return {p: sorted(v, key=_v) for p, v in found.items()}
