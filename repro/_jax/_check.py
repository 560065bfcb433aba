"""`repro.check`: the scenario verdicts for a user's own module and loss, in this process."""

import dataclasses
import os
from typing import Any, Callable, Optional, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _baseline
from .._catalogue import CHECK_DEFAULT_MODES, UsageError, check_modes, check_scenarios
from .._outcome import AS_EXPECTED, Verdict
from .._results import judge, render_table, summarise
from .._versions import installed_versions
from .._catalogue import Budget
from ._run import clear_caches as clear_run_caches
from ._run import run_scenario


@dataclasses.dataclass
class CheckReport:
    """Verdicts for one model: `report.ok`, `report.verdicts[(scenario, mode)]`, `print(report)`;
    with a baseline, `report.baseline` (repro._baseline.Comparison) and its `report.changes`."""

    versions: dict
    results: list
    baseline: Optional[_baseline.Comparison] = None

    @property
    def ok(self) -> bool:
        """Every verdict as expected, and nothing changed against the baseline (if one was given)."""
        return all(Verdict(r["verdict"]) in AS_EXPECTED for r in self.results) and not self.changes

    @property
    def changes(self) -> list:
        """What differs from the baseline, pair by pair (repro._baseline.Change); [] without one."""
        return self.baseline.changes if self.baseline else []

    @property
    def verdicts(self) -> dict[tuple[str, str], Verdict]:
        return {(r["scenario"], r["mode"]): Verdict(r["verdict"]) for r in self.results}

    def to_dict(self) -> dict:
        data = summarise(self.results, self.versions)
        if self.baseline:
            data["baseline"] = self.baseline.to_dict()
        return data

    def __str__(self) -> str:
        table = render_table(summarise(self.results, self.versions))
        return table + ("\n\n" + self.baseline.render() if self.baseline else "")


def validate(model: Any, loss_fn: Callable[[Any], Any]) -> None:
    """Raise UsageError with one clear sentence unless (model, loss_fn) can be checked. The model
    is any pytree with floating-point arrays: an `eqx.Module`, or a tuple, list or dict of them
    and of raw arrays, as users hand L-BFGS."""
    if not callable(loss_fn):
        raise UsageError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)):
        raise UsageError("model has no floating-point arrays: there is nothing for L-BFGS to optimise")
    try:
        value = loss_fn(model)
    except Exception as error:
        raise UsageError(f"loss_fn(model) raised {type(error).__name__}: {error}") from error
    shape = getattr(value, "shape", None)
    if shape is None or tuple(shape) != () or not jnp.issubdtype(jnp.result_type(value), jnp.floating):
        raise UsageError(f"loss_fn(model) must return a float scalar, got {type(value).__name__} "
                         f"with shape {shape}")


_DEFAULT = Budget()


def check(model: Any, loss_fn: Callable[[Any], Any], *, scenarios: Optional[Sequence[str]] = None,
          modes: Optional[Sequence[str]] = None, optimum: Optional[float] = None,
          max_steps: int = _DEFAULT.max_steps, loss_tol: float = _DEFAULT.loss_tol,
          grad_tol: float = _DEFAULT.grad_tol, keep_compiled: bool = False,
          baseline: Optional[str | os.PathLike] = None, update_baseline: bool = False) -> CheckReport:
    """Run the scenario catalogue on `model` with scalar `loss_fn(model)` and judge each outcome.

    `modes` defaults to `["jit"]` (how training loops run); `modes=["eager", "jit"]` adds the
    eager runs, which execute Optax's line search op by op and cost several times more.

    Tells whether this model breaks `optax.lbfgs()` unfiltered, as measured for the installed
    versions, and whether the workarounds work: every call pattern that finishes is compared,
    iterate by iterate, with the same `optax.lbfgs` on the flat vector of the module's float
    arrays (WRONG-RESULT where it departs). Convergence (gradient norm <= grad_tol within
    `max_steps` iterations, and loss - optimum <= loss_tol when `optimum` is given) is reported
    as information: a working pattern may need more steps on a hard problem.
    Runs in this process (a user's module and closure cannot be shipped to a child), so a
    hard crash here ends the caller; the CLI isolates its own scenarios instead.

    What it compiled is freed when it returns (`jax.clear_caches()`, which also drops the
    caller's own compiled functions: they compile again on next use), so checking many models
    in one process keeps memory flat (benchmarks/bench_check_memory.py; docs/performance.md);
    `keep_compiled=True` keeps everything.

    `baseline` (a path): this module compared with its own earlier result (repro._baseline):
    the first time, what each (scenario, mode) did is recorded there; every later time what
    changed is in `report.changes` and `str(report)`, and makes `report.ok` False.
    `update_baseline=True` records it again. A baseline file that cannot be read is a UsageError
    before anything runs.
    """
    validate(model, loss_fn)
    names = check_scenarios(list(scenarios or []), allow_self_tests=False)
    budget = Budget(max_steps=max_steps, loss_tol=loss_tol, grad_tol=grad_tol)
    if update_baseline and baseline is None:
        raise UsageError("update_baseline=True needs baseline=PATH (the file to write again)")
    stored = _baseline.read(baseline, update=update_baseline) if baseline is not None else None
    try:
        rows = [
            judge(run_scenario(name, mode, model, loss_fn, optimum=optimum, budget=budget))
            for name in names
            for mode in check_modes(list(modes or CHECK_DEFAULT_MODES))
        ]
    finally:
        if not keep_compiled:
            free_compiled()
    report = CheckReport(versions=installed_versions(), results=rows)
    if baseline is not None:
        settings = {**dataclasses.asdict(budget), "optimum": optimum}
        report.baseline = _baseline.compare(baseline, stored, rows, report.versions, settings, update=update_baseline)
    return report


def free_compiled():
    """Drop what checks compiled: the cached references and content flags (they hold the
    user's module), and JAX's compiled programs: each model checked leaves a few hundred MB
    behind until `jax.clear_caches()` (docs/performance.md); clearing repro's own caches alone
    releases next to nothing."""
    clear_run_caches()
    jax.clear_caches()
