"""repro: reproduction and regression harness for `optax.lbfgs()` on Equinox modules.

`import repro` does not import JAX: host-side tools (matrix, bisect, aggregation) use this
package where JAX is absent. Loaded on first use: `repro.check` and `repro.CheckReport`
(in this process, with JAX), `repro.strategies` (Hypothesis, with JAX), and the upstream
bug reports `repro.report`, `repro.Report` and `repro.reproducer` (host side: the script
runs in a fresh process).
"""

from typing import TYPE_CHECKING

from ._catalogue import MODES as MODES
from ._catalogue import SCENARIOS as SCENARIOS
from ._errors import UsageError as UsageError
from ._outcome import Expected as Expected
from ._outcome import Outcome as Outcome
from ._outcome import Verdict as Verdict
from ._outcome import classify as classify
from ._versions import __version__ as __version__

if TYPE_CHECKING:  # what type checkers see of the names loaded on first use (below)
    from . import strategies as strategies
    from ._jax._check import CheckReport as CheckReport
    from ._jax._check import check as check
    from ._report import Report as Report
    from ._report import report as report
    from ._report import reproducer as reproducer

_LAZY = {
    "check": ("repro._jax._check", "check"),
    "CheckReport": ("repro._jax._check", "CheckReport"),
    "strategies": ("repro.strategies", None),
    "report": ("repro._report", "report"),
    "Report": ("repro._report", "Report"),
    "reproducer": ("repro._report", "reproducer"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'repro' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


__all__ = ["MODES", "SCENARIOS", "UsageError", "Expected", "Outcome", "Verdict", "classify", *_LAZY]
