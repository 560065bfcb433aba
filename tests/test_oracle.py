"""The reference oracle: a workaround is judged by agreeing with L-BFGS on the flat vector.

A deliberately corrupted workaround (one leaf's update dropped, or two leaves' updates
swapped) must be caught as a wrong result at the iteration where it departs. That a correct
one on a problem where rounding grows (slow, chaotic) is not, tests/test_check.py shows on
realistic models.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from repro._catalogue import BUILTIN_PROBLEM, Budget
from repro._jax import _oracle, _scenarios
from repro._jax._problems import mlp_problem
from repro._jax._run import run_scenario
from repro._outcome import AGREES, CONVERGES, Verdict, classify


def corrupt(make_step):
    """partition_fix whose step is changed by `make_step(new_params, old_params) -> params`."""
    real = _scenarios.partition_fix

    def corrupted(model, loss):
        init, step = real(model, loss)

        def bad_step(model, opt_state):
            new_model, opt_state = step(model, opt_state)
            old = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
            new = jax.tree_util.tree_leaves(eqx.filter(new_model, eqx.is_inexact_array))
            leaves = make_step(new, old)
            params, static = eqx.partition(new_model, eqx.is_inexact_array)
            params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), leaves)
            return eqx.combine(params, static), opt_state

        return init, bad_step

    return corrupted


def drop_first(new, old):
    return [old[0], *new[1:]]


def swap_same_shaped(new, old):
    """Apply each of the first two equal-shaped leaves' update to the other (in a depth-2 MLP:
    the two hidden biases)."""
    shapes = [leaf.shape for leaf in new]
    i, j = next((i, j) for i in range(len(new)) for j in range(i + 1, len(new)) if shapes[i] == shapes[j])
    out = list(new)
    out[i], out[j] = old[i] + (new[j] - old[j]), old[j] + (new[i] - old[i])
    return out


def assert_caught_at_the_first_update(outcome):
    assert outcome.status == "wrong_result", (outcome.status, outcome.reference)
    assert outcome.reference["departed_at"] == 1  # the first update is already wrong
    assert outcome.reference["deviation"] > 100 * outcome.reference["tolerance"]
    assert outcome.reference["deviation"] > outcome.reference["allowed"]
    assert "departs from the flat-vector reference at iteration 1:" in outcome.message
    assert classify(CONVERGES, outcome) is Verdict.WRONG_RESULT
    assert classify(AGREES, outcome) is Verdict.WRONG_RESULT


@pytest.mark.parametrize("damage", [drop_first, swap_same_shaped], ids=["drop-a-leaf", "swap-two-leaves"])
def test_a_corrupted_workaround_is_a_wrong_result_at_the_iteration_it_departs(monkeypatch, damage):
    model, loss, optimum = mlp_problem(depth=2)  # two hidden biases of shape (8,)
    honest = run_scenario("partition_fix", "jit", model, loss, optimum=optimum, problem=BUILTIN_PROBLEM)
    assert honest.status == "converged" and honest.agrees(), honest.reference
    monkeypatch.setattr(_scenarios, "partition_fix", corrupt(damage))
    assert_caught_at_the_first_update(run_scenario("partition_fix", "jit", model, loss, optimum=optimum, problem=BUILTIN_PROBLEM))


def test_a_corrupted_workaround_is_caught_eagerly_too(monkeypatch):
    """Eager scenarios are judged against the same (jit-compiled) reference."""
    model = (jnp.full((2,), 1.5), jnp.full((3,), -1.0))
    loss = lambda m: jnp.sum((m[0] - 0.5) ** 2) + 2.0 * jnp.sum((m[1] - 0.25) ** 2)  # noqa: E731
    honest = run_scenario("partition_fix", "eager", model, loss, optimum=0.0)
    assert honest.status == "converged" and honest.agrees(), honest.reference
    monkeypatch.setattr(_scenarios, "partition_fix", corrupt(drop_first))
    # It departs at the first update; five steps (not the 50 eager ones it would run) show it.
    assert_caught_at_the_first_update(run_scenario("partition_fix", "eager", model, loss, optimum=0.0,
                                                   budget=Budget(max_steps=5)))


def test_deviation_is_relative_and_infinite_when_only_one_side_is_finite():
    assert _oracle._deviation([1.0, 2.0], [1.0, 2.0], 1.0) == 0.0
    assert _oracle._deviation([3.0, 4.0], [0.0, 0.0], 10.0) == pytest.approx(0.5)
    assert _oracle._deviation([np.nan], [1.0], 1.0) == float("inf")
    assert _oracle._deviation([np.nan, 1.0], [np.nan, 1.0], 1.0) == 0.0
    assert _oracle._deviation([1.0, 2.0], [1.0], 1.0) == float("inf")


@pytest.mark.parametrize("dtype, eps", [(jnp.float32, 2.0**-23), (jnp.bfloat16, 2.0**-7), (jnp.float16, 2.0**-10)])
def test_tolerance_follows_the_least_precise_dtype(dtype, eps):
    model = (jnp.ones(2, jnp.float32), jnp.ones(3, dtype))
    assert _oracle.tolerance(model, lambda m: jnp.sum(m[0])) == pytest.approx(_oracle.TOLERANCE_ULPS * eps)


def test_a_low_precision_loss_sets_the_tolerance_too():
    model = (jnp.ones(2, jnp.float32),)
    loss = lambda m: jnp.sum(m[0]).astype(jnp.bfloat16)  # noqa: E731
    assert _oracle.tolerance(model, loss) == pytest.approx(_oracle.TOLERANCE_ULPS * 2.0**-7)


def record(losses, iterates):
    return {"losses": list(losses), "iterates": [np.asarray(x, np.float64) for x in iterates]}


def test_compare_allows_rounding_that_adds_up_and_the_shadows_drift_but_no_more():
    tol = 1e-6  # allowed at iteration k: (k + 1) * tol, or 100 x the shadow's drift
    ref = record([4.0, 1.0, 0.25], [[2.0, 0.0], [1.0, 0.0], [0.5, 0.0]])  # deviations are relative to |x0| = 2
    close = record([4.0, 1.0, 0.25], [[2.0, 0.0], [1.0, 2e-6], [0.5, 4e-6]])  # 1e-6 <= 2e-6, 2e-6 <= 3e-6
    assert _oracle.compare(close, ref, tol).agrees
    assert "matches the flat-vector reference at all 3 iterates" in _oracle.compare(close, ref, tol).summary()
    far = record([4.0, 1.0, 0.25], [[2.0, 0.0], [1.0, 5e-6], [0.5, 0.0]])  # 2.5e-6 > 2e-6 at iteration 1
    verdict = _oracle.compare(far, ref, tol)
    assert (verdict.departed_at, verdict.deviation, verdict.allowed) == (1, pytest.approx(2.5e-6), 2e-6)
    assert "WRONG RESULT: departs from the flat-vector reference at iteration 1" in verdict.summary()
    shadow = record([4.0, 1.0, 0.25], [[2.0, 0.0], [1.0, 1e-7], [0.5, 0.0]])  # drifted 5e-8: allows 5e-6
    assert _oracle.compare(far, ref, tol, lambda: shadow).agrees


def test_a_reference_that_blows_up_ends_the_comparison_and_one_that_raises_is_reported():
    ref = record([4.0, float("nan")], [[2.0, 0.0], [float("nan"), 0.0]])
    run = record([4.0, 1.0], [[2.0, 0.0], [1.0, 0.0]])
    assert _oracle.compare(run, ref, 1e-6).compared == 1
    raised = {**record([4.0], [[2.0, 0.0]]), "error": "TypeError: true_fun and false_fun output must have identical types"}
    agreement = _oracle.compare(run, raised, 1e-6)
    assert not agreement.agrees and "reference itself raised TypeError" in agreement.summary()


def test_a_reference_that_diverges_is_compared_only_before_and_a_run_diverging_with_it_agrees():
    """Unit-step L-BFGS blowing up: two exploding sequences differ wildly once they explode
    (here by 1e17 at iteration 4), which says nothing about whether the run computes what
    L-BFGS computes. Compared while the reference is meaningful, diverging where it diverges
    (give or take one iteration) is agreement; an old-style comparison to the end departs."""
    tol = 1e-6
    losses = [1.5e3, 9e2, 4e4, 3e9, 2e20, float("inf")]
    ref = record(losses, [[1.0, 2.0], [0.9, 1.5], [3.0, -4.0], [5e3, 1e2], [7e9, 0.0], [float("inf"), 0.0]])
    run = record(losses[:4] + [3e20, float("inf")],
                 [[1.0, 2.0], [0.9, 1.5], [3.0, -4.0], [5e3, 1e2], [7e9 + 1e17, 0.0], [float("inf"), 0.0]])
    agreement = _oracle.compare(run, ref, tol)
    assert agreement.agrees and agreement.diverged_at == 3, agreement  # 3e9 > 1e6 x 1.5e3
    assert agreement.compared == 3 and "before iteration 3, where both diverge" in agreement.summary()
    late = record(losses[:3] + [5e3, 4e3, 3e3], [[1.0, 2.0], [0.9, 1.5], [3.0, -4.0], [2.9, -3.9], [2.8, -3.8],
                                                 [2.7, -3.7]])
    departs = _oracle.compare(late, ref, tol)  # L-BFGS blows up at 3, this run does not: something else
    assert departs.departed_at == 3 and not departs.agrees
    run_early = record(losses[:2] + [5e9, float("inf")], [[1.0, 2.0], [0.9, 1.5], [6e9, 0.0], [float("inf"), 0.0]])
    assert _oracle.compare(run_early, ref, tol).diverged_at == 2  # one step earlier: rounding's choice


def test_an_excursion_the_reference_comes_back_from_is_not_divergence():
    """Unit-step L-BFGS's first step on a steep loss can jump far past a million times the start
    and come back (measured: an MLP on jax 0.4.30, 1.4e4 -> beyond 1e10 -> 601 after 50 steps).
    That is not divergence: the comparison goes on through it, so a run that lands elsewhere
    afterwards departs, and the same run agrees over every iterate."""
    tol = 1e-6
    losses = [1.5e3, 2e10, 9e2, 5e2, 4e2]
    iterates = [[1.0, 2.0], [3e7, -1e7], [0.9, 1.5], [0.8, 1.2], [0.7, 1.1]]
    ref = record(losses, iterates)
    assert _oracle.diverged(ref) is None
    same = _oracle.compare(record(losses, iterates), ref, tol)
    assert same.agrees and same.diverged_at is None and same.compared == 5, same
    elsewhere = record(losses[:3] + [6e2, 5e2], iterates[:3] + [[0.5, 2.2], [0.4, 2.3]])
    departs = _oracle.compare(elsewhere, ref, tol)
    assert departs.departed_at == 3 and not departs.agrees, departs
    assert _oracle.diverged(record(losses + [3e12, float("inf")], iterates + [[5e8, 0.0], [float("inf"), 0.0]])) == 5


def test_at_low_precision_a_run_may_agree_with_the_reference_rounded_in_either_mode():
    """float16 under jit fuses and rounds once, eager rounds every op, and the flat vector fuses
    unlike the module's leaves: a run agreeing with the other mode's reference agrees (and says
    so); one agreeing with neither keeps its first departure; at float32 only jit is tried."""
    tol = 1e-3
    run = record([4.0, 2.0, 1.0], [[2.0, 2.0], [1.5, 1.5], [1.0, 1.0]])
    stuck = record([4.0, 4.0, 4.0], [[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]])  # the flat jit reference overflowed
    moving = record([4.0, 2.0, 1.0], [[2.0, 2.0], [1.5, 1.5], [1.0, 1.0]])
    tried = []

    def candidate(ref):
        return lambda: (tried.append(ref) or ref, None)

    agreement = _oracle.compare_either(run, [candidate(stuck), candidate(moving)], tol)
    assert agreement.agrees and agreement.other_rounding and tried == [stuck, moving], agreement
    assert agreement.summary().endswith("(as L-BFGS rounds in the other mode)")
    elsewhere = record([4.0, 3.0, 2.5], [[2.0, 2.0], [1.9, 0.0], [1.8, -1.0]])
    neither = _oracle.compare_either(elsewhere, [candidate(stuck), candidate(moving)], tol)
    assert neither.departed_at == 1 and not neither.other_rounding
    tried.clear()
    assert _oracle.compare_either(run, [candidate(moving), candidate(stuck)], tol).agrees and tried == [moving]
    half = (jnp.ones(2, jnp.float16),)
    assert _oracle.reference_modes(half, lambda m: jnp.sum(m[0]), True) == (True, False)
    assert _oracle.reference_modes(half, lambda m: jnp.sum(m[0]), False) == (False, True)
    assert _oracle.reference_modes((jnp.ones(2),), lambda m: jnp.sum(m[0]), False) == (True,)


def test_a_run_that_turns_non_finite_where_the_reference_does_not_departs_while_rounding_cannot_explain_it():
    ref = record([2.0, 1.0, 0.5], [[1.5, 1.5], [1.0, 1.0], [0.75, 0.75]])
    run = record([2.0, 1.0, float("nan")], [[1.5, 1.5], [1.0, 1.0], [float("nan"), float("nan")]])
    agreement = _oracle.compare(run, ref, 1e-6)
    assert agreement.departed_at == 2 and not agreement.agrees


def test_where_rounding_decides_from_the_first_update_the_reference_cannot_judge():
    """A problem where one step moves the shadow (one epsilon away) by 1.4e-3: at float32 a
    thousand times that allows a 100% deviation from the first update, so nothing past the start
    is compared, and that is no agreement either. At float16 the drift factor is the measured
    low-precision one (16): the same drift leaves the comparison meaningful, and the NaN departs."""
    ref = record([2.0, 2.0], [[1.5, 1.5], [-0.5, -0.5]])
    run = record([2.0, float("nan")], [[1.5, 1.5], [float("nan"), float("nan")]])
    shadow = record([2.0, 2.0], [[1.5 + 3e-3, 1.5], [-0.5 + 3e-3, -0.5]])
    float32 = _oracle.TOLERANCE_ULPS * 2.0**-23
    agreement = _oracle.compare(run, ref, float32, lambda: shadow)
    assert agreement.horizon == 1 and agreement.vacuous and not agreement.agrees, agreement
    assert "cannot judge" in agreement.summary() and agreement.to_dict()["vacuous"] is True
    float16 = _oracle.compare(run, ref, _oracle.TOLERANCE_ULPS * 2.0**-10, lambda: shadow)
    assert float16.departed_at == 1 and float16.horizon is None, float16
    from repro._outcome import Outcome

    outcome = Outcome("seed_fix_no_linesearch", "jit", "not_converged", iterations=1, reference=agreement.to_dict())
    assert outcome.unjudged() and not outcome.agrees()
    assert classify(AGREES, outcome) is Verdict.UNKNOWN and classify(CONVERGES, outcome) is Verdict.REGRESSION


def test_float16_overflow_counts_as_divergence():
    """Unit-step L-BFGS in float16 overflows (65504) long before a million times its start: past
    the overflow limit the reference has diverged, and a run that overflows a step earlier agrees."""
    ref = record([105.0, 90.0, 3e3, 4e4], [[1.0, 2.0], [1.5, 2.0], [40.0, 3.0], [5e3, 1.0]])
    run = record([105.0, 90.0, 3e3, float("inf")], [[1.0, 2.0], [1.5, 2.0], [40.0, 3.0], [float("inf"), 1.0]])
    assert _oracle.compare(run, ref, 1.6e-2).departed_at == 3  # without the limit: a departure
    agreement = _oracle.compare(run, ref, 1.6e-2, limit=65504.0 / _oracle.OVERFLOW_MARGIN)
    assert agreement.agrees and agreement.diverged_at == 3, agreement
    assert _oracle.overflow_limit((jnp.ones(2, jnp.float16),), lambda m: jnp.sum(m[0])) == 65504.0 / 16
    assert _oracle.reference_steps({"iterations": 12, "final_loss": float("nan")}) == 13


def test_without_the_divergence_rule_the_exploding_run_was_a_false_wrong_result(monkeypatch):
    ref = record([1.5e3, 9e2, 3e9, 2e20], [[1.0, 2.0], [0.9, 1.5], [5e3, 1e2], [7e9, 0.0]])
    run = record([1.5e3, 9e2, 3e9, 3e20], [[1.0, 2.0], [0.9, 1.5], [5e3, 1e2], [7e9 + 1e17, 0.0]])
    assert _oracle.compare(run, ref, 1e-6).agrees
    monkeypatch.setattr(_oracle, "DIVERGENCE", float("inf"))
    assert _oracle.compare(run, ref, 1e-6).departed_at == 3


class Regression(eqx.Module):
    """A user's MLP regression with large targets: unit-step L-BFGS spikes past a million times
    its starting loss."""

    mlp: eqx.nn.MLP

    def __call__(self, x):
        return self.mlp(x)


def exploding_regression():
    rng = np.random.default_rng(21)
    model = Regression(eqx.nn.MLP(2, 1, 8, 2, activation=jax.nn.silu, key=jax.random.PRNGKey(21)))
    x = jnp.asarray(rng.uniform(-2, 2, (48, 2)), jnp.float32)
    y = jnp.asarray(10.0 * (x[:, :1] * x[:, 1:] + np.cos(2 * x[:, :1])) + 10.0, jnp.float32)
    return model, lambda m: jnp.sum((jax.vmap(m)(x) - y) ** 2)


def test_unit_step_lbfgs_that_blows_up_is_judged_as_divergence_not_as_a_wrong_result():
    model, loss = exploding_regression()
    outcome = run_scenario("seed_fix_no_linesearch", "jit", model, loss)
    assert outcome.status != "wrong_result", outcome.reference
    ref = outcome.reference
    assert ref["departed_at"] is None and (ref["diverged_at"] is not None or ref["horizon"] is not None), ref
    assert classify(AGREES, outcome) is Verdict.WORKAROUND_OK


def test_a_workaround_that_reaches_the_optimum_along_another_path_is_a_wrong_result(monkeypatch):
    """Converging is not agreeing: a pattern whose steps are not L-BFGS's (here every update
    halved) still reaches the optimum of a convex quadratic, but it computes another algorithm.
    That counts as a wrong result, on the built-in problem and anywhere else."""
    model = (jnp.full((2,), 1.5), jnp.full((3,), -1.0))
    loss = lambda m: jnp.sum((m[0] - 0.5) ** 2) + 2.0 * jnp.sum((m[1] - 0.25) ** 2)  # noqa: E731
    monkeypatch.setattr(_scenarios, "partition_fix", corrupt(lambda new, old: [o + 0.5 * (n - o) for n, o in zip(new, old)]))
    outcome = run_scenario("partition_fix", "jit", model, loss, optimum=0.0, budget=Budget(max_steps=200))
    assert outcome.final_loss < 1e-6 and outcome.grad_norm < 1e-3  # it does reach the optimum...
    assert outcome.status == "wrong_result" and outcome.reference["departed_at"] == 1  # ...another way
    assert classify(CONVERGES, outcome) is Verdict.WRONG_RESULT and classify(AGREES, outcome) is Verdict.WRONG_RESULT


def _dtypes(tree):
    return [(leaf.dtype, leaf.aval.weak_type) for leaf in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("name", ["builtin", "int_first", "mixed_dtypes", "bf16_loss", "steering_bf16"])
def test_the_reference_compiles_its_step_once_where_that_is_the_same_program(name):
    """A float32 reference starts from a strongly typed state, so its first step already has the
    types every later step has (one compile, not two), and it records exactly what the weakly
    typed start records; with bfloat16 in the vector or the loss the start is left weak."""
    from repro._corpus import SURVEY
    from repro._jax._run import load_case

    case = load_case(SURVEY[name].source)
    model, loss = case["model"], case["loss"]
    init, step = _scenarios.reference()(model, loss)
    start = eqx.filter_jit(init)(model)
    weak = [w for _, w in _dtypes(start)]
    if name in ("bf16_loss", "steering_bf16"):
        assert any(weak)
    else:
        assert not any(weak) and _dtypes(start) == _dtypes(eqx.filter_jit(step)(model, start)[1])

    def record(strong_start):
        try:
            return _scenarios.solve(_scenarios.reference(strong_start=strong_start), model, loss, jit=True,
                                    steps=4, record=True)
        except Exception as error:  # noqa: BLE001 -- optax 0.2.3's zoom raises on bfloat16: both must
            return {"losses": [type(error).__name__, str(error)], "iterates": []}

    weak_start, strong_start = record(False), record(True)
    assert strong_start["losses"] == weak_start["losses"]
    assert len(strong_start["iterates"]) == len(weak_start["iterates"])
    for a, b in zip(strong_start["iterates"], weak_start["iterates"]):
        np.testing.assert_array_equal(a, b)
