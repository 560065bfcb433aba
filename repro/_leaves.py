"""Which leaf decides a scenario's fate: leaf kinds, and the stages of `optax.lbfgs` that meet them. No JAX.

A module is described by its leaves in flattening order (`jax.tree_util.tree_leaves`), each
as a *leaf kind* (KINDS), computed in the environment by `repro._jax._run.leaf_kinds`.

Each scenario hands `optax.lbfgs` one view of the module: `init()` gets the raw module, its
arrays (`eqx.filter(model, eqx.is_array)`) or its float arrays (`eqx.partition(model,
eqx.is_inexact_array)`), and `update()` gets params and gradients of its own. L-BFGS then
runs through *stages* (STAGES), each meeting the leaves of one view in order: `init()` builds
zeros shaped like every leaf, the zoom line search reads the first leaf's dtype,
`update()` subtracts the old params from the new and the old gradients from the new, the
line search evaluates `value_fn`... The first leaf a stage cannot handle decides what
happens there. A module's *path* for a scenario is the list of (stage, kind of that leaf)
for every stage that meets a leaf it cannot handle, up to the first stage that breaks on
every measured release (`Stage.certain`): what can happen before it depends on the
versions; after it, nothing runs.

Two modules with the same path are expected to behave the same (the survey's corpus is
chosen to cover the paths, and `repro._expectations` derives what each path does per
release from it); a path that contains a certain stage is broken whatever the versions
(a test holds that against every measurement). The stage table is a hypothesis read off
Optax's source; the survey checks it.
"""

import dataclasses
from typing import Mapping, Optional, Sequence, Tuple

# --------------------------------------------------------------------------- leaf kinds

#: Array kinds are `<dtype class>-<scalar|array>` (a 0-d array is a scalar): float (float32,
#: float64, complex), low (float16, bfloat16), int (signed and unsigned), bool, key (typed
#: PRNG keys). Everything else `eqx.is_array` rejects is a non-array kind.
ARRAY_CLASSES = ("float", "low", "int", "bool", "key")
NON_ARRAY_KINDS = (
    "function",  # a Python function, lambda, functools.partial, builtin or bound method
    "jitted",  # a jax.jit-wrapped function (jax.nn.tanh is one)
    "custom-jvp",  # a jax.custom_jvp / custom_vjp function (jax.nn.relu is one)
    "callable",  # any other callable object
    "py-int",  # a Python int
    "py-float",  # a Python float (inf and nan included)
    "py-bool",  # a Python bool
    "py-complex",  # a Python complex
    "str",
    "class",  # a class object
    "object",  # anything else
)
KINDS = tuple(f"{c}-{s}" for c in ARRAY_CLASSES for s in ("scalar", "array")) + NON_ARRAY_KINDS
LOW_DTYPES = ("float16", "bfloat16")  # the `low` class; contents["float_dtypes"] names each float leaf's dtype


def is_array(kind: str) -> bool:
    return kind.split("-", 1)[0] in ARRAY_CLASSES and kind.endswith(("-scalar", "-array"))


def array_class(kind: str) -> str:
    """An array kind without its shape (`int-scalar` -> `int`). A path names the class only: what
    a misaligned integer leaf does on JAX 0.4.33 and older depends on its neighbours' shapes,
    not its own (measured: an int32[1] beside a float scalar behaves as a scalar counter does),
    so the expectation is what all the corpus's integer modules share there."""
    return kind.rsplit("-", 1)[0]


def is_float(kind: str) -> bool:
    """A kind `eqx.is_inexact_array` keeps (what `partition_fix` and the reference optimise)."""
    return kind.startswith(("float-", "low-"))


def view(leaves: Sequence[str], name: str) -> list:
    """The kinds of the leaves one view of the module keeps, in order: `raw` (all of them),
    `arrays` (`eqx.filter(model, eqx.is_array)`) or `floats` (`eqx.is_inexact_array`)."""
    keep = {"raw": lambda k: True, "arrays": is_array, "floats": is_float}[name]
    return [kind for kind in leaves if keep(kind)]


# --------------------------------------------------------------------------- stages

NON_ARRAY = frozenset(NON_ARRAY_KINDS)
_NOT_FLOAT_ARRAYS = frozenset(f"{c}-{s}" for c in ("int", "bool", "key") for s in ("scalar", "array"))
_BOOL_OR_KEY = frozenset(k for k in _NOT_FLOAT_ARRAYS if not k.startswith("int-"))


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of `optax.lbfgs` that meets the module's leaves (or the whole module)."""

    name: str
    why: str
    # Breaks on every measured release when it meets one of `breaks` (False: on some only).
    certain: bool
    breaks: frozenset = frozenset()  # the leaf kinds it cannot handle ({} for module-level stages)


STAGES = {s.name: s for s in (
    Stage("init-shape", "init() builds zeros shaped like every leaf: a non-array has no shape", True, NON_ARRAY),
    Stage("init-dtype", "the zoom line search takes its value dtype from the first leaf init() gets "
                        "(Optax 0.2.5 on): an integer cannot hold inf", False, _NOT_FLOAT_ARRAYS),
    Stage("no-params", "update() without params: nothing to subtract the old params from; the message "
                       "names the module's top-level type on some releases", True),
    Stage("sub-params", "update() subtracts the old params from the new: a non-array leaf that the state "
                        "holds as None, or a boolean array, cannot be subtracted", True, NON_ARRAY | _BOOL_OR_KEY),
    Stage("sub-updates", "update() subtracts the old gradients from the new: the gradients are None where the "
                         "state holds integer arrays", True, _NOT_FLOAT_ARRAYS),
    Stage("value-fn", "the line search evaluates the loss on the module with its non-array leaves None: "
                      "the loss raises (kind `raises ...`, what it raised when traced so), or computes another "
                      "function without an error (`differs`: a wrong result, visible or not at this precision; "
                      "`differs-dtype`: it returns another dtype)", False),
    Stage("linesearch-args", "the zoom line search needs value, grad and value_fn", True),
    Stage("zoom-dtypes", "the zoom line search's lax.cond/while_loop branches disagree on dtypes when the "
                         "loss or the params are float16/bfloat16 (Optax 0.2.4 and older)", False),
)}

# Stages that always break once they apply, whatever the kind.
_MODULE_LEVEL_CERTAIN = {"no-params", "linesearch-args"}


@dataclasses.dataclass(frozen=True)
class Views:
    """What one scenario hands L-BFGS: the view init() gets, the view update() gets as params
    (None: no params at all), whether it runs the zoom line search, and its own stages."""

    init: str
    params: Optional[str]
    zoom: bool = True
    extra: Tuple[str, ...] = ()  # module-level stages of this scenario only


SCENARIO_VIEWS = {
    "no_params": Views("arrays", None),
    "init_unfiltered": Views("raw", "raw"),
    "params_unfiltered": Views("arrays", "raw"),
    "value_fn_full_model": Views("arrays", "arrays", extra=("value-fn",)),
    "seed_fix": Views("arrays", "arrays", extra=("linesearch-args",)),
    "seed_fix_no_linesearch": Views("arrays", "arrays", zoom=False),
    "seed_fix_value_fn": Views("arrays", "arrays"),
    "partition_fix": Views("floats", "floats"),
}

Path = Tuple[Tuple[str, str], ...]


def _first(kinds, breaks):
    return next((k for k in kinds if k in breaks), None)


def _precision(contents):
    """The zoom-dtypes kind, `<params>-params/<loss>-loss`: params `float` (float32 or float64
    alone), `low` (float16 or bfloat16 alone) or `mixed-<first>-first` (more than one float dtype,
    the first leaf's class named), the loss `float` or `low`; None for float params and loss."""
    dtypes = list(contents.get("float_dtypes") or [])
    first = "low" if dtypes and dtypes[0] in LOW_DTYPES else "float"
    params = first if len(set(dtypes)) <= 1 else f"mixed-{first}-first"
    loss = "low" if contents.get("low_precision_loss") else "float"
    return None if (params, loss) == ("float", "float") else f"{params}-params/{loss}-loss"


def _value_fn_kind(contents):
    made = contents.get("loss_of_filtered")
    if made == "raises":
        return f"raises {contents.get('loss_error') or 'an error'}"
    return made if made in ("differs", "differs-dtype") else None


def stages_of(scenario: str) -> Tuple[str, ...]:
    """The stages `scenario` can reach, in the order L-BFGS reaches them (none after one that
    every module reaches and always breaks: no-params, linesearch-args)."""
    v = SCENARIO_VIEWS[scenario]
    filtered = v.init != "floats"  # partition_fix's L-BFGS sees float arrays only
    out = ["init-shape"] if v.init == "raw" else []  # only the raw view holds non-arrays
    out += ["init-dtype"] if v.zoom and filtered else []
    if v.params is None:
        return (*out, "no-params")
    out += ["sub-params", "sub-updates"] if filtered else []
    out += list(v.extra)
    if v.zoom and "linesearch-args" not in v.extra:
        out.append("zoom-dtypes")
    return tuple(out)


def _kind_at(stage, scenario, leaves, contents):
    """The kind of what `stage` of `scenario` meets first that it cannot handle (None: nothing)."""
    v = SCENARIO_VIEWS[scenario]
    init = view(leaves, v.init)
    if stage == "init-shape":
        return _first(init, STAGES["init-shape"].breaks)
    if stage == "init-dtype":
        return init[0] if init and init[0] in STAGES["init-dtype"].breaks else None
    if stage == "no-params":
        return contents.get("top") or "module"
    if stage == "sub-params":  # a non-array the state holds as None only if init() saw the arrays alone
        missing = NON_ARRAY if v.params == "raw" and v.init != "raw" else frozenset()
        return _first(view(leaves, v.params), missing | _BOOL_OR_KEY)
    if stage == "sub-updates":
        return _first(init, STAGES["sub-updates"].breaks)
    if stage == "value-fn":
        return _value_fn_kind(contents) if any(k in NON_ARRAY for k in leaves) else None
    if stage == "linesearch-args":
        return "missing"
    return _precision(contents)  # zoom-dtypes


def certain(stage: str, kind: str) -> bool:
    """Whether (stage, kind) breaks the scenario on every release (see Stage.certain)."""
    if stage in _MODULE_LEVEL_CERTAIN:
        return True
    if stage == "value-fn":
        return kind.startswith("raises")
    return STAGES[stage].certain


def path(scenario: str, contents: Mapping) -> Optional[Path]:
    """The (stage, kind) pairs that decide `scenario` on a module with these content flags (its
    `leaves` in flattening order, `top`, `loss_of_filtered`, `loss_error`, `low_precision_loss`),
    cut after the first certain one; array kinds by their class (`array_class`). None when the
    contents do not list the leaves."""
    leaves = contents.get("leaves")
    if leaves is None:
        return None
    out = []
    for stage in stages_of(scenario):
        kind = _kind_at(stage, scenario, list(leaves), contents)
        if kind is None:
            continue
        kind = array_class(kind) if is_array(kind) else kind
        out.append((stage, kind))
        if certain(stage, kind):
            break
    return tuple(out)


def broken(found: Path) -> bool:
    """A path with a certain stage: the scenario fails (or computes a wrong result) on every release."""
    return any(certain(stage, kind) for stage, kind in found)


def deciding(found: Path) -> Optional[Tuple[str, str]]:
    """The first certain (stage, kind) of a path: where the scenario is sure to break."""
    return next(((s, k) for s, k in found if certain(s, k)), None)


def silent(found: Path) -> bool:
    """The line search evaluates another function (a steering field): a wrong result, not an error,
    is this pattern's known breakage, whether or not the oracle resolves it at this precision."""
    return any(stage == "value-fn" and kind.startswith("differs") for stage, kind in found)


def describe(found: Optional[Path]) -> str:
    """`sub-params: function, sub-updates: int-array`; `clean` for a path that meets nothing."""
    if found is None:
        return "unknown (no leaf list)"
    return ", ".join(f"{stage}: {kind}" for stage, kind in found) or "clean"


def leaf_list(leaves: Sequence[str]) -> str:
    """A module's leaves for a human, runs collapsed: `float-array x4, jitted x2`."""
    runs: list[list] = []  # [kind, count]
    for kind in leaves:
        if runs and runs[-1][0] == kind:
            runs[-1][1] += 1
        else:
            runs.append([kind, 1])
    return ", ".join(kind if n == 1 else f"{kind} x{n}" for kind, n in runs)
