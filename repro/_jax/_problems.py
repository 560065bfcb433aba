"""The built-in problem: an `eqx.nn.MLP` fitted to a teacher MLP of the same shape.

Self-contained (jax, equinox, numpy only) so `repro report` can ship it verbatim.

The teacher's weights and the data come from NumPy's generator, not `jax.random`
(JAX draws different numbers for one key before and after 0.5), so every JAX version
solves the same problem. The student starts at the teacher plus a small perturbation;
the optimum, loss 0, is the teacher itself. The MLP's `activation` and
`final_activation` fields are functions: the non-array leaves that trip L-BFGS.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def mlp_problem(seed=0, in_size=2, width=8, depth=1, n=32, perturbation=0.3, anchor=0.3):
    """Return (model, loss, optimum) for a teacher-student MLP regression."""
    rng = np.random.default_rng(seed)
    skeleton = eqx.nn.MLP(in_size, 1, width, depth, activation=jax.nn.tanh, key=jax.random.PRNGKey(0))
    arrays, static = eqx.partition(skeleton, eqx.is_inexact_array)

    def draw(scale):
        return jax.tree_util.tree_map(
            lambda a: jnp.asarray(scale * rng.standard_normal(a.shape), a.dtype), arrays
        )

    teacher = eqx.combine(draw(1.0), static)
    noise = draw(perturbation)
    student = eqx.combine(jax.tree_util.tree_map(jnp.add, eqx.filter(teacher, eqx.is_inexact_array), noise), static)
    x = jnp.asarray(rng.standard_normal((n, in_size)), jnp.float32)
    y = jax.vmap(teacher)(x)

    target = eqx.filter(teacher, eqx.is_inexact_array)

    def loss(model):
        fit = jnp.mean((jax.vmap(model)(x) - y) ** 2)
        # A small pull towards the teacher makes the optimum unique and well conditioned.
        diffs = jax.tree_util.tree_map(jnp.subtract, eqx.filter(model, eqx.is_inexact_array), target)
        return fit + anchor * sum(jnp.sum(d**2) for d in jax.tree_util.tree_leaves(diffs))

    return student, loss, 0.0
