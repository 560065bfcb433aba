"""The scenario catalogue: each way users call `optax.lbfgs()` on an Equinox module.

This module is deliberately self-contained (it imports only jax, optax and equinox):
`repro report` ships its source verbatim as a standalone reproducer, so the code a
maintainer runs is the code the harness ran. Keep it that way: no imports from `repro`.

A scenario is a function `(model, loss) -> (init, step)`:
- `init(model) -> opt_state`
- `step(model, opt_state) -> (model, opt_state)`, one optimiser iteration.
`solve` drives either one, eagerly or under `eqx.filter_jit`, and `phase` labels the
part of the call pattern that is running so a failure can say where it happened.
"""

import contextlib
import functools as ft

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax

_PHASE = ["setup"]


@contextlib.contextmanager
def phase(name):
    """Label what runs inside (init/update/apply/loss). On error the label stays set."""
    previous = _PHASE[0]
    _PHASE[0] = name
    yield
    _PHASE[0] = previous


def current_phase():
    return _PHASE[0]


def start_run():
    """A new scenario run begins in the `setup` phase (an error before `init` is a setup error)."""
    _PHASE[0] = "setup"


# --- The patterns that break -------------------------------------------------------


def no_params(model, loss):
    """The Adam habit: state from the filtered model, then `update(grads, state)` with no params."""
    optim = optax.lbfgs()

    def init(model):
        return optim.init(eqx.filter(model, eqx.is_array))

    def step(model, opt_state):
        grads = eqx.filter_grad(loss)(model)
        with phase("update"):
            updates, opt_state = optim.update(grads, opt_state)
        with phase("apply"):
            model = eqx.apply_updates(model, updates)
        return model, opt_state

    return init, step


def init_unfiltered(model, loss):
    """`optim.init(model)` on the raw module, then a full update with value/grad/value_fn."""
    optim = optax.lbfgs()

    def init(model):
        return optim.init(model)

    def step(model, opt_state):
        value, grads = eqx.filter_value_and_grad(loss)(model)
        with phase("update"):
            updates, opt_state = optim.update(
                grads, opt_state, model, value=value, grad=grads, value_fn=loss
            )
        with phase("apply"):
            model = eqx.apply_updates(model, updates)
        return model, opt_state

    return init, step


def params_unfiltered(model, loss):
    """State from the filtered model, but `update(..., params=model)` gets the raw module."""
    optim = optax.lbfgs()

    def init(model):
        return optim.init(eqx.filter(model, eqx.is_array))

    def step(model, opt_state):
        value, grads = eqx.filter_value_and_grad(loss)(model)
        with phase("update"):
            updates, opt_state = optim.update(
                grads, opt_state, model, value=value, grad=grads, value_fn=loss
            )
        with phase("apply"):
            model = eqx.apply_updates(model, updates)
        return model, opt_state

    return init, step


def value_fn_full_model(model, loss):
    """Params filtered, but `value_fn` is the loss of the full model, not of the params."""
    optim = optax.lbfgs()

    def init(model):
        return optim.init(eqx.filter(model, eqx.is_array))

    def step(model, opt_state):
        value, grads = eqx.filter_value_and_grad(loss)(model)
        params = eqx.filter(model, eqx.is_array)
        with phase("update"):
            updates, opt_state = optim.update(
                grads, opt_state, params, value=value, grad=grads, value_fn=loss
            )
        with phase("apply"):
            model = eqx.apply_updates(model, updates)
        return model, opt_state

    return init, step


# --- The widely shared workaround, verbatim, and its variants -----------------------


def _seed_fix(optim, pass_value_fn):
    def make(model, loss):
        static = eqx.filter(model, eqx.is_array, inverse=True)

        def value_fn(params):
            return loss(eqx.combine(params, static))

        def init(model):
            return optim.init(eqx.filter(model, eqx.is_array))

        def step(model, opt_state):
            value, grads = eqx.filter_value_and_grad(loss)(model)
            grads = eqx.filter(grads, eqx.is_array)
            opt_state = eqx.filter(opt_state, eqx.is_array)
            params = eqx.filter(model, eqx.is_array)
            with phase("update"):
                if pass_value_fn:
                    updates, opt_state = optim.update(
                        grads, opt_state, params, value=value, grad=grads, value_fn=value_fn
                    )
                else:
                    updates, opt_state = optim.update(grads, opt_state, params)
            with phase("apply"):
                model = eqx.apply_updates(model, updates)
            return model, opt_state

        return init, step

    return make


def seed_fix(model, loss):
    """The shared workaround exactly: grads, state, params through `eqx.filter(., eqx.is_array)`,
    `optim.update(grads, opt_state, params)`, `eqx.apply_updates`, with `optax.lbfgs()` defaults."""
    return _seed_fix(optax.lbfgs(), pass_value_fn=False)(model, loss)


def seed_fix_no_linesearch(model, loss):
    """The shared workaround with `optax.lbfgs(linesearch=None)`."""
    return _seed_fix(optax.lbfgs(linesearch=None), pass_value_fn=False)(model, loss)


def seed_fix_value_fn(model, loss):
    """The shared workaround, also passing `value`, `grad` and a `value_fn` of the filtered params."""
    return _seed_fix(optax.lbfgs(), pass_value_fn=True)(model, loss)


def partition_fix(model, loss):
    """`eqx.partition(model, eqx.is_inexact_array)`; L-BFGS sees only the float arrays and a
    `value_fn` that recombines them with the static part."""
    optim = optax.lbfgs()
    _, static = eqx.partition(model, eqx.is_inexact_array)

    def value_fn(params):
        return loss(eqx.combine(params, static))

    def init(model):
        params, _ = eqx.partition(model, eqx.is_inexact_array)
        return optim.init(params)

    def step(model, opt_state):
        params, _ = eqx.partition(model, eqx.is_inexact_array)
        value, grads = jax.value_and_grad(value_fn)(params)
        with phase("update"):
            updates, opt_state = optim.update(
                grads, opt_state, params, value=value, grad=grads, value_fn=value_fn
            )
        with phase("apply"):
            params = optax.apply_updates(params, updates)
        return eqx.combine(params, static), opt_state

    return init, step


# --- The reference: what every working call pattern must compute ---------------------


def reference(linesearch=True, shadow=False, strong_start=True, program=None):
    """L-BFGS on one flat vector holding the module's float arrays (`ravel_pytree`), with a
    `value_fn` that unravels it and recombines the static part: a plain array has nothing for
    this bug to bite on, so its iterates are what L-BFGS computes. `linesearch=False` mirrors
    `optax.lbfgs(linesearch=None)`, called as the shared workaround calls it.

    `shadow=True` is the same computation with the vector stored back to front, so every sum
    runs in another order: started one epsilon away, how far it drifts from the first shows how far
    rounding alone moves this problem's iterates. The order is data, not code: `program` (from
    `flat_program`, for the same module structure and loss) lets the reference and its shadow
    share one compiled step instead of compiling two.

    `strong_start`: the state `optim.init` returns holds weak-typed scalars (the step count and
    step sizes) that the first step returns strongly typed, so under jit the step is traced and
    compiled twice. When the vector and the loss are float32, a weak float32 or int32 scalar
    promotes exactly as a strong one against everything the step computes with, so the
    starting state is made strong (`_strong`) and the same program is compiled once. With
    bfloat16 or float16 in play it is left as it is."""

    def make(model, loss):
        init, step, size = program or flat_program(model, loss, linesearch, strong_start)
        order = jnp.arange(size)[::-1] if shadow else jnp.arange(size)
        return jax.tree_util.Partial(init, order), jax.tree_util.Partial(step, order)

    return make


def flat_program(model, loss, linesearch=True, strong_start=True):
    """`(init(order, model), step(order, model, opt_state), size)` of `reference`: the flat
    vector is `ravel_pytree(...)[order]`, `order` being the identity or its reverse (each its own
    inverse), passed as an array so one compiled program serves both."""
    optim = optax.lbfgs() if linesearch else optax.lbfgs(linesearch=None)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    x0, unravel = jax.flatten_util.ravel_pytree(params)

    def flat(model, order):
        return jax.flatten_util.ravel_pytree(eqx.filter(model, eqx.is_inexact_array))[0][order]

    def value_fn(x, order):
        return loss(eqx.combine(unravel(x[order]), static))

    float32 = x0.dtype == jnp.float32 and jax.eval_shape(value_fn, x0, jnp.arange(x0.size)).dtype == jnp.float32

    def init(order, model):
        state = optim.init(flat(model, order))
        return _strong(state) if strong_start and float32 else state

    def step(order, model, opt_state):
        x = flat(model, order)
        ordered = ft.partial(value_fn, order=order)
        value, grad = jax.value_and_grad(ordered)(x)
        with phase("update"):
            if linesearch:
                updates, opt_state = optim.update(grad, opt_state, x, value=value, grad=grad, value_fn=ordered)
            else:
                updates, opt_state = optim.update(grad, opt_state, x)
        with phase("apply"):
            x = optax.apply_updates(x, updates)
        return eqx.combine(unravel(x[order]), static), opt_state

    return init, step, x0.size


def _strong(tree):
    """`tree` with its weak-typed float32 and int32 arrays made strongly typed (same values)."""

    def strong(leaf):
        weak = getattr(getattr(leaf, "aval", None), "weak_type", False)
        if weak and leaf.dtype in (jnp.float32, jnp.int32):
            return jax.lax.convert_element_type(leaf, leaf.dtype)
        return leaf

    return jax.tree_util.tree_map(strong, tree)


def iterate(model):
    """The module's float arrays as one NumPy vector: how iterates are compared."""
    return np.asarray(jax.flatten_util.ravel_pytree(eqx.filter(model, eqx.is_inexact_array))[0], np.float64)


# --- Driving a scenario -------------------------------------------------------------


_MEASURES: dict = {}  # (id(loss), jit) -> (loss, its value_and_grad): the last few


def measured(loss, *, jit):
    """`loss`'s value and gradient, under `eqx.filter_jit` or not; the same function object for
    the same loss, so every scenario run on a module measures its iterates with one compiled
    program instead of compiling the same one again."""
    key = (id(loss), jit)
    if key not in _MEASURES or _MEASURES[key][0] is not loss:
        value_and_grad = eqx.filter_value_and_grad(loss)
        _MEASURES[key] = (loss, eqx.filter_jit(value_and_grad) if jit else value_and_grad)
        while len(_MEASURES) > 32:
            del _MEASURES[next(iter(_MEASURES))]
    return _MEASURES[key][1]


def iterations(scenario, model, loss, *, jit):
    """Run `scenario` one L-BFGS iteration at a time, eagerly or under `eqx.filter_jit`.

    Yields `(model, loss, gradient norm)` for the starting point, then after every step.
    Exceptions propagate; `current_phase()` then says where.
    """
    init, step = scenario(model, loss)
    value_and_grad = measured(loss, jit=jit)
    if jit:
        init, step = eqx.filter_jit(init), eqx.filter_jit(step)

    def measure(model):
        with phase("loss"):
            value, grads = value_and_grad(model)
            leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
            grad_norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in leaves))
        return model, float(value), float(grad_norm)

    yield measure(model)
    with phase("init"):
        opt_state = init(model)
    while True:
        model, opt_state = step(model, opt_state)
        yield measure(model)


def solve(scenario, model, loss, *, jit, max_steps=None, loss_tol=None, grad_tol=None, optimum=None,
          record=False, steps=None):
    """Run `scenario` until converged or `max_steps`; return a dict of what happened.

    Converged means: every loss finite, the final loss no larger than the initial one,
    the gradient norm <= grad_tol and, when the optimum is known, loss - optimum <= loss_tol.
    `record=True` also returns every iterate (`iterate(model)`), the starting point first.
    `steps=N` runs exactly N iterations instead (fewer only if the loss stops being finite).
    """
    run = iterations(scenario, model, loss, jit=jit)
    model, initial_loss, grad_norm = next(run)
    losses, iterates = [initial_loss], [iterate(model)] if record else []

    def done():
        close = optimum is None or losses[-1] - optimum <= loss_tol
        return grad_tol is not None and grad_norm <= grad_tol and close

    while len(losses) <= steps if steps is not None else (not done() and len(losses) <= max_steps):
        model, value, grad_norm = next(run)
        losses.append(value)
        if record:
            iterates.append(iterate(model))
        if not np.isfinite(value):
            break
    finite = bool(np.all(np.isfinite(losses))) and bool(np.isfinite(grad_norm))
    return {
        "converged": finite and losses[-1] <= losses[0] and done(),
        "finite": finite,
        "iterations": len(losses) - 1,
        "initial_loss": initial_loss,
        "final_loss": losses[-1],
        "grad_norm": grad_norm,
        "losses": losses,
        "iterates": iterates,
    }
