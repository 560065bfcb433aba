"""repro: reproduction and regression harness for `optax.lbfgs()` on Equinox modules.

`import repro` does not import JAX: host-side tools (matrix, bisect, aggregation) use this
package where JAX is absent. `repro.check`, `repro.CheckReport` and `repro.strategies`
load JAX on first use.
"""

from ._catalogue import MODES, SCENARIOS, UsageError
from ._outcome import Expected, Outcome, Verdict, classify

__version__ = "0.1.0"

_LAZY = {
    "check": ("repro._jax._check", "check"),
    "CheckReport": ("repro._jax._check", "CheckReport"),
    "strategies": ("repro.strategies", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'repro' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


__all__ = ["MODES", "SCENARIOS", "UsageError", "Expected", "Outcome", "Verdict", "classify", *_LAZY]
