"""Names and one-line descriptions of the scenarios and modes (no JAX needed).

The implementations live in `repro._jax._scenarios` under the same names; host-side
code (CLI validation, bisect, reports) uses this table so it never imports JAX.
"""

import dataclasses

from ._errors import UsageError


@dataclasses.dataclass(frozen=True)
class Budget:
    """The convergence definition: within `max_steps` iterations, gradient norm <= grad_tol
    and (when the optimum is known) loss - optimum <= loss_tol; losses finite, not growing.
    The harness's runs, `repro.check`'s defaults and every emitted reproducer use it."""

    max_steps: int = 50
    loss_tol: float = 1e-6
    grad_tol: float = 1e-3


# Budgets for generated modules (property tests, their benchmark, the survey's corpus), by
# mode. They are judged by the reference oracle, not by converging, and every departure this
# bug class produced in the measurements happened by iteration 2; eager runs execute Optax's
# zoom line search op by op and trace its while_loop again at every step (a large share of a second each),
# so they stop after 8 steps. Jit steps are cheap: the full budget.
GENERATED_BUDGETS = {"eager": {"max_steps": 8}, "jit": {}}

SCENARIOS = {
    "no_params": "Adam habit: state from the filtered model, update(grads, state) with no params",
    "init_unfiltered": "optim.init(model) on the raw module",
    "params_unfiltered": "state from the filtered model, update(..., params=model) raw",
    "value_fn_full_model": "params filtered, but value_fn is the loss of the full model",
    "seed_fix": "shared workaround verbatim (eqx.filter(., eqx.is_array)) with optax.lbfgs() defaults",
    "seed_fix_no_linesearch": "shared workaround with optax.lbfgs(linesearch=None)",
    "seed_fix_value_fn": "shared workaround also passing value, grad and value_fn of the filtered params",
    "partition_fix": "eqx.partition(model, eqx.is_inexact_array) + value_fn recombining the static part",
}

# Scenarios whose `optax.lbfgs` has no line search; every other one uses the default zoom line
# search. Each is judged against the flat-vector reference of its own configuration.
NO_LINESEARCH = frozenset({"seed_fix_no_linesearch"})

# Self-test scenarios prove the isolation works; they are never in the default run.
SELF_TESTS = {
    "_crash": "self-test: the scenario process segfaults",
    "_hang": "self-test: the scenario process sleeps past its timeout",
}

MODES = ("eager", "jit")
# The built-in problem's name as a module of the survey's corpus, in the heat map and as an
# expectation key.
BUILTIN_MODULE = "builtin"
# Its label in a module's content flags and in every observation file (`contents[...]["problem"]`).
# The corpus source sets it, so renaming it to BUILTIN_MODULE changes the corpus digest and with it
# every survey cell's plan: due with the next full re-survey, not before.
BUILTIN_PROBLEM = "mlp"


def check_scenarios(names, *, allow_self_tests=True):
    """Return `names` (all scenarios when empty), or raise UsageError naming the unknown one."""
    if not names:
        return list(SCENARIOS)
    known = {**SCENARIOS, **(SELF_TESTS if allow_self_tests else {})}
    for name in names:
        if name not in known:
            raise UsageError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return list(dict.fromkeys(names))


# `repro.check`'s modes when none are asked: jit, as users train (a jitted step) and as CI runs.
# Eager runs Optax's zoom line search op by op and costs several times more: ask for it.
CHECK_DEFAULT_MODES = ("jit",)


def check_modes(modes):
    if not modes:
        return list(MODES)
    for mode in modes:
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    return list(dict.fromkeys(modes))
