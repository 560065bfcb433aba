"""Public Hypothesis strategies for Equinox modules (imports JAX, Equinox and Hypothesis).

    from hypothesis import given
    from repro.strategies import cases

    @given(cases())
    def test_my_optimiser(case):
        model, loss, optimum = case.build()
        ...

- `modules()`: custom `eqx.Module` classes made on the fly, with float arrays of varied
  shapes (scalars included), int/bool arrays, Python int/float/bool/str, None, callables
  (jax.nn activations, lambdas, functools.partial, jax.custom_jvp functions), static
  fields, nested sub-modules, tuples/lists/dicts of these.
- `nn_models()`: real `eqx.nn` layers (Linear, MLP, Conv1d, LayerNorm, GRUCell, Embedding,
  Sequential with Lambda).
- `cases()`: either. Each `Case` is standalone source (`case.source`) defining `model`,
  `loss` and `optimum` (0.0); `case.build()` executes it; `case.description` is readable.
"""

from ._jax._strategies import CALLABLES, Case, cases, float_arrays, modules, nn_models, other_leaves

__all__ = ["CALLABLES", "Case", "cases", "float_arrays", "modules", "nn_models", "other_leaves"]
