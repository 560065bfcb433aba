"""The project's model and how it trains it.

`Regressor` holds a Python float and (inside its MLP) activation functions: non-array leaves,
the kind that break `optax.lbfgs()` when the module is handed to it unfiltered. `fit` trains
the way this project settled on: `eqx.partition` into float arrays and the rest, L-BFGS on the
arrays, the rest recombined inside `value_fn` (the harness's `partition_fix` scenario).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax


class Regressor(eqx.Module):
    mlp: eqx.nn.MLP
    scale: float  # a Python float: a non-array leaf

    def __call__(self, x):
        return self.scale * self.mlp(x)


def make_problem(seed=0):
    """(model, loss): a small regression of sin(x0 - x1)."""
    model = Regressor(eqx.nn.MLP(2, 1, 16, 2, activation=jax.nn.tanh, key=jax.random.PRNGKey(seed)), 0.5)
    x = jnp.linspace(-1.0, 1.0, 64).reshape(32, 2)
    y = jnp.sin(x[:, :1] - x[:, 1:])

    def loss(m):
        return jnp.mean((jax.vmap(m)(x) - y) ** 2)

    return model, loss


def fit(model, loss, steps=30):
    """L-BFGS on the model's float arrays; the static part is recombined in `value_fn`."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    optim = optax.lbfgs()

    def value_fn(p):
        return loss(eqx.combine(p, static))

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(value_fn)(params)
        updates, state = optim.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(params, updates), state

    state = optim.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return eqx.combine(params, static)
