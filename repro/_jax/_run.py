"""Run one scenario on one model in this process and return an Outcome."""

import contextlib
import dataclasses
import time
import traceback as tb

import equinox as eqx
import jax
import jax.numpy as jnp

from .._outcome import Outcome
from .._signatures import message_family, raising_library, refine_phase
from .._versions import installed_versions
from . import _scenarios


@dataclasses.dataclass(frozen=True)
class Budget:
    """The convergence definition: within `max_steps` iterations, gradient norm <= grad_tol
    and (when the optimum is known) loss - optimum <= loss_tol; losses finite, not growing."""

    max_steps: int = 50
    loss_tol: float = 1e-6
    grad_tol: float = 1e-3


def _loss_dtype(loss, model):
    try:
        return eqx.filter_eval_shape(loss, model).dtype
    except Exception:  # a loss that cannot even be traced fails in the scenario itself
        return None


def contents(model, problem=None, loss=None):
    """What kinds of leaves the module holds (float arrays of more than one dtype among
    them?), whether `loss` returns float16/bfloat16, and which built-in problem it is."""
    leaves = jax.tree_util.tree_leaves(model)
    arrays = [leaf for leaf in leaves if eqx.is_array(leaf)]
    return {
        "non_array_leaves": len(arrays) < len(leaves),
        "int_arrays": any(jnp.issubdtype(a.dtype, jnp.integer) for a in arrays),
        "bool_arrays": any(a.dtype == jnp.bool_ for a in arrays),
        "low_precision_floats": any(a.dtype in (jnp.float16, jnp.bfloat16) for a in arrays),
        "mixed_float_dtypes": len({a.dtype for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)}) > 1,
        "low_precision_loss": loss is not None and _loss_dtype(loss, model) in (jnp.float16, jnp.bfloat16),
        "problem": problem,
    }


def build_case(source):
    """Execute standalone case source (a generated module); return (model, loss, optimum)."""
    namespace = {}
    exec(compile(source, "<repro case>", "exec"), namespace)
    return namespace["model"], namespace["loss"], namespace["optimum"]


@contextlib.contextmanager
def _unfiltered_tracebacks():
    """Keep JAX's internal frames so the raising library can be read off the traceback."""
    previous = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")
    try:
        yield
    finally:
        jax.config.update("jax_traceback_filtering", previous)


def run_scenario(name, mode, model, loss, *, optimum=None, budget=Budget(), problem=None):
    """Run scenario `name` ("eager" or "jit" mode) and record what happened."""
    scenario = getattr(_scenarios, name)
    outcome = Outcome(scenario=name, mode=mode, status="error",
                      versions=installed_versions(), contents=contents(model, problem, loss))
    start = time.perf_counter()
    _scenarios._PHASE[0] = "setup"
    try:
        with _unfiltered_tracebacks():
            result = _scenarios.solve(
                scenario, model, loss, jit=(mode == "jit"), optimum=optimum,
                max_steps=budget.max_steps, loss_tol=budget.loss_tol, grad_tol=budget.grad_tol,
            )
    except Exception as error:  # the failure is the measurement
        frames = [frame.filename for frame in tb.extract_tb(error.__traceback__)]
        message = str(error)
        outcome.exc_type = type(error).__name__
        outcome.message = message.strip().splitlines()[0][:500] if message.strip() else ""
        outcome.family = message_family(message)
        outcome.phase = refine_phase(_scenarios.current_phase(), frames)
        outcome.library = raising_library(frames)
        outcome.traceback = "".join(tb.format_exception(type(error), error, error.__traceback__))
    else:
        outcome.status = "converged" if result["converged"] else "not_converged"
        outcome.iterations = result["iterations"]
        outcome.initial_loss = result["initial_loss"]
        outcome.final_loss = result["final_loss"]
        outcome.grad_norm = result["grad_norm"]
        if not result["converged"]:
            outcome.family = "not_converged"
            outcome.message = (
                f"did not converge: loss {result['initial_loss']:.3g} -> {result['final_loss']:.3g}, "
                f"grad norm {result['grad_norm']:.3g} after {result['iterations']} iterations"
            )
    outcome.seconds = round(time.perf_counter() - start, 3)
    return outcome
