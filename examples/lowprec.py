"""A problem file for `--problem`: an eqx.nn.MLP whose weights, and so whose loss, are bfloat16.

Measured: Optax 0.2.4's zoom line search cannot take a bfloat16 loss (its lax.cond branches
disagree on dtypes: `TypeError: true_fun and false_fun output must have identical types`), while
Optax 0.2.5 converges; `repro bisect --source` names the Optax commit in between that fixed it.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

rng = np.random.default_rng(0)
mlp = eqx.nn.MLP(2, 1, 8, 1, activation=jax.nn.tanh, key=jax.random.PRNGKey(0))
model = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16) if eqx.is_inexact_array(a) else a, mlp)
x = jnp.asarray(rng.standard_normal((32, 2)), jnp.bfloat16)
y = jnp.tanh(x[:, :1] - x[:, 1:])


def loss(m):
    return jnp.mean((jax.vmap(m)(x) - y) ** 2)  # bfloat16, like the weights
