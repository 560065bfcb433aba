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

import equinox as eqx
import jax
import jax.numpy as jnp
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


# --- Driving a scenario -------------------------------------------------------------


def solve(scenario, model, loss, *, jit, max_steps, loss_tol, grad_tol, optimum=None):
    """Run `scenario` until converged or `max_steps`; return a dict of what happened.

    Converged means: every loss finite, the final loss no larger than the initial one,
    the gradient norm <= grad_tol and, when the optimum is known, loss - optimum <= loss_tol.
    Exceptions propagate; `current_phase()` then says where.
    """
    init, step = scenario(model, loss)
    value_and_grad = eqx.filter_value_and_grad(loss)
    if jit:
        init, step, value_and_grad = eqx.filter_jit(init), eqx.filter_jit(step), eqx.filter_jit(value_and_grad)

    def measure(model):
        with phase("loss"):
            value, grads = value_and_grad(model)
            leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
            grad_norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in leaves))
        return float(value), float(grad_norm)

    initial_loss, grad_norm = measure(model)
    with phase("init"):
        opt_state = init(model)
    final_loss, iterations, history = initial_loss, 0, [initial_loss]

    def done():
        close = optimum is None or final_loss - optimum <= loss_tol
        return grad_norm <= grad_tol and close

    while not done() and iterations < max_steps:
        model, opt_state = step(model, opt_state)
        iterations += 1
        final_loss, grad_norm = measure(model)
        history.append(final_loss)
        if not jnp.isfinite(final_loss):
            break
    finite = all(bool(jnp.isfinite(v)) for v in history) and bool(jnp.isfinite(grad_norm))
    converged = finite and final_loss <= initial_loss and done()
    return {
        "converged": converged,
        "finite": finite,
        "iterations": iterations,
        "initial_loss": initial_loss,
        "final_loss": final_loss,
        "grad_norm": grad_norm,
    }
