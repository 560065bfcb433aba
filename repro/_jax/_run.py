"""Run one scenario on one model in this process and return an Outcome."""

import collections
import contextlib
import functools
import time
import traceback as tb
import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._catalogue import NO_LINESEARCH, Budget
from .._outcome import Outcome
from .._signatures import message_family, raising_library, refine_phase
from .._versions import installed_versions
from . import _oracle, _scenarios, _shared


def loss_of_filtered(model, loss):
    """What `loss` makes of the module with its non-array leaves replaced by None, as the
    line search of `value_fn_full_model` sees it: ("raises", "Type:family@library" of what it
    raised), ("differs-dtype", None) (it returns another dtype: a dtype kept in a field decided
    it), ("differs", None) (another value: a non-array field steers the loss) or ("same", None)
    (the loss never reads one). (None, None) when the loss cannot be evaluated at all. The line
    search traces the loss, so it is first traced here too: what a None field meets under
    tracing (a tracer, not a number) is what it raises there."""
    filtered = eqx.filter(model, eqx.is_array)
    try:
        full = jnp.asarray(loss(model))
    except Exception:  # noqa: BLE001 -- the scenarios will show it
        return None, None
    try:
        arrays, rest = eqx.partition(filtered, eqx.is_array)
        with _unfiltered_tracebacks():  # every frame kept, as the scenarios read them
            jax.eval_shape(lambda a: loss(eqx.combine(a, rest)), arrays)
        value = jnp.asarray(loss(filtered))
    except Exception as error:  # noqa: BLE001 -- what we are asking
        frames = [frame.filename for frame in tb.extract_tb(error.__traceback__)]
        return "raises", f"{type(error).__name__}:{message_family(str(error))}@{raising_library(frames)}"
    if value.dtype != full.dtype:
        return "differs-dtype", None
    a, b = float(full), float(value)
    return ("same" if a == b or (a != a and b != b) else "differs"), None


def leaf_kind(leaf):
    """The leaf's kind (repro._leaves.KINDS): what decides how each stage of L-BFGS treats it."""
    if eqx.is_array(leaf):
        dtype, shape = leaf.dtype, "scalar" if np.ndim(leaf) == 0 else "array"
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            return f"key-{shape}"
        if dtype == jnp.bool_:
            return f"bool-{shape}"
        if jnp.issubdtype(dtype, jnp.integer):
            return f"int-{shape}"
        return f"{'low' if dtype in (jnp.float16, jnp.bfloat16) else 'float'}-{shape}"
    return _PYTHON_KINDS.get(type(leaf)) or _other_kind(leaf)


_PYTHON_KINDS = {bool: "py-bool", int: "py-int", float: "py-float", complex: "py-complex", str: "str"}


def _other_kind(leaf):
    if isinstance(leaf, type):
        return "class"
    if isinstance(leaf, (bool, int, float, complex, str)):  # subclasses
        return next(kind for t, kind in _PYTHON_KINDS.items() if isinstance(leaf, t))
    name = type(leaf).__name__
    if "Pjit" in name:
        return "jitted"
    if name in ("custom_jvp", "custom_vjp"):
        return "custom-jvp"
    if isinstance(leaf, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)):
        return "function"
    return "callable" if callable(leaf) else "object"


def _top(model):
    """The module's top-level node: `module`, or the container type's name (tuple, list, dict)."""
    return "module" if isinstance(model, eqx.Module) else type(model).__name__


_contents: collections.OrderedDict = collections.OrderedDict()  # id(model) -> (model, loss, problem, contents), the last few


def contents(model, problem=None, loss=None):
    """What decides each scenario's fate on this module (repro._leaves): its leaves' kinds in
    flattening order (and its float arrays' dtypes), its top-level node, whether `loss` returns float16/bfloat16, what the
    loss makes of the module with its non-array leaves None (`loss_of_filtered`, and what it
    raised: `loss_error`), and which built-in problem it is."""
    known = _contents.get(id(model))
    if known is not None and known[0] is model and known[1] is loss and known[2] == problem:
        return dict(known[3])
    leaves = jax.tree_util.tree_leaves(model)
    kinds = [leaf_kind(leaf) for leaf in leaves]
    non_array = not all(eqx.is_array(leaf) for leaf in leaves)
    made, error = loss_of_filtered(model, loss) if non_array and loss is not None else (None, None)
    found = {
        "leaves": kinds,
        "float_dtypes": [str(leaf.dtype) for leaf in leaves if eqx.is_inexact_array(leaf)],
        "top": _top(model),
        "low_precision_loss": loss is not None and _oracle.loss_dtype(loss, model) in (jnp.float16, jnp.bfloat16),
        "loss_of_filtered": made,
        "loss_error": error,
        "problem": problem,
    }
    _contents[id(model)] = (model, loss, problem, found)
    while len(_contents) > 24:
        _contents.popitem(last=False)
    return dict(found)


def execute_source(source, filename="<repro case>"):
    """Run standalone source (a generated case, a problem file) as a module; its namespace."""
    namespace = {"__name__": "__repro_problem__", "__file__": filename}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def build_case(source):
    """Execute standalone case source (a generated module); return (model, loss, optimum)."""
    namespace = execute_source(source)
    return namespace["model"], namespace["loss"], namespace["optimum"]


def load_case(source):
    """Execute case source; its namespace: `model`, `loss`, `optimum` and, for a built-in
    problem, `problem` (e.g. BUILTIN_PROBLEM, which selects the problem's own expectation rows)."""
    return execute_source(source)


@contextlib.contextmanager
def _unfiltered_tracebacks():
    """Keep JAX's internal frames so the raising library can be read off the traceback."""
    previous = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")
    try:
        yield
    finally:
        jax.config.update("jax_traceback_filtering", previous)


def run_scenario(name, mode, model, loss, *, optimum=None, budget=Budget(), problem=None, oracle=True,
                 share=None):
    """Run scenario `name` ("eager" or "jit" mode) and record what happened.

    A scenario that finishes is compared with the flat-vector reference (`_oracle`) unless
    `oracle=False`: departing from it makes the outcome `wrong_result`, whatever the losses say.
    `share`: a key naming the case (its source's hash) under which the reference record is
    shared with the other workers of a pool (`_shared`), so it is computed once per case.
    """
    scenario = getattr(_scenarios, name)
    outcome = Outcome(scenario=name, mode=mode, status="error",
                      versions=installed_versions(), contents=contents(model, problem, loss))
    start = time.perf_counter()
    _scenarios.start_run()
    try:
        with _unfiltered_tracebacks():
            result = _scenarios.solve(
                scenario, model, loss, jit=(mode == "jit"), optimum=optimum, record=oracle,
                max_steps=budget.max_steps, loss_tol=budget.loss_tol, grad_tol=budget.grad_tol,
            )
    except Exception as error:  # the failure is the measurement
        _record_error(outcome, error)
    else:
        _record_result(outcome, result)
        if oracle:
            _judge_by_reference(outcome, name, model, loss, result, share)
    outcome.seconds = round(time.perf_counter() - start, 3)
    return outcome


def _record_error(outcome, error):
    frames = [frame.filename for frame in tb.extract_tb(error.__traceback__)]
    message = str(error)
    outcome.exc_type = type(error).__name__
    outcome.message = message.strip().splitlines()[0][:500] if message.strip() else ""
    outcome.family = message_family(message)
    outcome.phase = refine_phase(_scenarios.current_phase(), frames)
    outcome.library = raising_library(frames)
    outcome.traceback = "".join(tb.format_exception(type(error), error, error.__traceback__))


def _record_result(outcome, result):
    outcome.status = "converged" if result["converged"] else "not_converged"
    outcome.iterations = result["iterations"]
    outcome.initial_loss = result["initial_loss"]
    outcome.final_loss = result["final_loss"]
    outcome.grad_norm = result["grad_norm"]
    if not result["converged"]:
        outcome.message = (
            f"did not converge: loss {result['initial_loss']:.3g} -> {result['final_loss']:.3g}, "
            f"grad norm {result['grad_norm']:.3g} after {result['iterations']} iterations"
        )


class Reference:
    """A reference run (`_scenarios.reference`) advanced lazily and kept as `solve` records runs:
    {"losses", "iterates", "error"}, so a reference that ran 11 steps for one scenario is
    extended when the next needs 14."""

    def __init__(self, model, loss, *, jit, linesearch, shadow, program=None):
        self.model, self.loss = model, loss  # held so a cache key (ids) stays valid
        self.program = program or _scenarios.flat_program(model, loss, linesearch)
        start = _oracle.nudge(model) if shadow else model
        scenario = _scenarios.reference(linesearch, shadow, program=self.program)
        self._run = _scenarios.iterations(scenario, start, loss, jit=jit)
        self.record = {"losses": [], "iterates": [], "error": None}

    def extend(self, steps):
        """The record advanced to `steps` iterations (fewer if it stops being finite or raises)."""
        losses = self.record["losses"]
        with _unfiltered_tracebacks():
            while self.record["error"] is None and len(losses) <= steps and (not losses or np.isfinite(losses[-1])):
                try:
                    model, value, _ = next(self._run)
                except Exception as error:  # noqa: BLE001 -- recorded; the scenario is judged without it
                    self.record["error"] = f"{type(error).__name__}: {_first_line(str(error))[:200]}"
                    break
                losses.append(value)
                self.record["iterates"].append(_scenarios.iterate(model))
        return self.record


_references: collections.OrderedDict = collections.OrderedDict()  # the last few, for the scenarios that share them


def reference_for(name, model, loss, *, shadow=False, jit=True):
    """The (cached) reference run scenario `name` is judged against: its `optax.lbfgs`
    configuration on the flat vector; with `shadow`, the shadow reference (`_oracle`).
    References run under jit whatever the scenario's mode (compiling the line search once costs
    less than running it eagerly, and eager and jit runs of a module share it), except where
    `_oracle.reference_jit` says an eager run needs an eager one (`jit=False`)."""
    linesearch = name not in NO_LINESEARCH
    key = (id(model), id(loss), linesearch, shadow, jit)
    found = _references.get(key)
    if found is None or found.model is not model or found.loss is not loss:
        # The shadow runs the reference's program (same compiled step, the order as data).
        program = reference_for(name, model, loss, jit=jit).program if shadow else None
        found = _references[key] = Reference(model, loss, jit=jit, linesearch=linesearch, shadow=shadow,
                                             program=program)
        while len(_references) > 96:  # up to 24 cases x (zoom, no line search, their shadows)
            _references.popitem(last=False)
    _references.move_to_end(key)
    return found


def clear_caches():
    """Forget the cached references, content flags and measuring functions (and the modules,
    losses and compiled programs they hold)."""
    _references.clear()
    _contents.clear()
    _scenarios._MEASURES.clear()


def _first_line(text):
    text = text.strip()
    return text.splitlines()[0] if text else ""


def ended(record):
    """A reference record that cannot be extended: it raised or stopped being finite."""
    losses = record["losses"]
    return record["error"] is not None or bool(losses and not np.isfinite(losses[-1]))


def _upto(record, steps):
    """`record` cut to its first `steps` iterations (what a fresh reference would have recorded)."""
    if len(record["losses"]) <= steps + 1:
        return record
    return {"losses": record["losses"][:steps + 1], "iterates": record["iterates"][:steps + 1], "error": None}


def reference_record(name, model, loss, steps, share=None, jit=True):
    """The reference record for scenario `name`, advanced to `steps` iterations (fewer only if
    it ended). With `share` and a pool's store, a record another worker computed is used when
    it covers `steps`; one being computed is waited for; else this worker computes and stores it."""
    local = reference_for(name, model, loss, jit=jit)
    directory = _shared.store() if share else None
    if directory is None or len(local.record["losses"]) > steps or ended(local.record):
        return _upto(local.extend(steps), steps)
    key = f"{share}-{'nols' if name in NO_LINESEARCH else 'zoom'}" + ("" if jit else "-eager")
    while True:
        record = _shared.load(directory, key)
        if record is not None and (len(record["losses"]) > steps or ended(record)):
            return _upto(record, steps)
        if _shared.claim(directory, key):
            try:
                record = local.extend(steps)
                _shared.save(directory, key, record)
                return _upto(record, steps)
            finally:
                _shared.release(directory, key)
        _shared.wait(directory, key)


def prefetch_reference(name, model, loss, budget=Budget(), share=None):
    """Compute (and share) scenario `name`'s reference record for the whole budget, ahead of
    the scenarios that will be judged against it; returns the number of iterations recorded."""
    record = reference_record(name, model, loss, budget.max_steps, share)
    return len(record["losses"]) - 1


def _judge_by_reference(outcome, name, model, loss, result, share=None):
    """Compare the finished run with its reference; a departure makes it a wrong result."""
    steps = _oracle.reference_steps(result)

    def candidate(jit):
        return lambda: (reference_record(name, model, loss, steps, share, jit=jit),
                        lambda: reference_for(name, model, loss, shadow=True, jit=jit).extend(steps))

    modes = _oracle.reference_modes(model, loss, outcome.mode == "jit")
    agreement = _oracle.compare_either(result, [candidate(jit) for jit in modes], _oracle.tolerance(model, loss),
                                       _oracle.overflow_limit(model, loss))
    outcome.reference = agreement.to_dict()
    if agreement.departed_at is not None:
        outcome.status = "wrong_result"
        outcome.message = (f"{agreement.summary()}; loss {result['initial_loss']:.3g} -> "
                           f"{result['final_loss']:.3g} in {result['iterations']} iterations")
