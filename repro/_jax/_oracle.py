"""The reference oracle: does a call pattern that finished compute what L-BFGS computes?

The reference is the same `optax.lbfgs` configuration run on one flat vector of the module's
float arrays (`_scenarios.reference`): a plain array has nothing for this bug to bite on. A
scenario that finishes is compared with it iterate by iterate: after every update, the
relative deviation of the parameter vector and of the loss. The two agree to rounding, not
bit for bit (a pytree and a flat vector sum in different orders), and a hard problem
amplifies rounding step by step until the iterates differ in their leading digits. So what
is allowed at iteration k is the larger of

- `TOLERANCE_ULPS * (k + 1)` epsilons of the least precise float dtype in play (rounding
  that adds up step by step), and
- `DRIFT_FACTOR` times how far the *shadow* reference has drifted from the reference by then:
  the same flat computation with the vector stored back to front (every sum in another
  order), started one epsilon away. Its drift is what rounding alone does to this problem.

Once that allows a 100% deviation, the iterates are rounding's to decide (a chaotic problem,
unit-step L-BFGS blowing up): the comparison ends there (`horizon`). Bugs of this class show
at the first iterations, long before.

A reference that *diverges* (its loss or iterate stops being finite, or grows past
`DIVERGENCE` times its start and stays there to the end: unit-step L-BFGS blowing up) leaves
the range where comparing digits means anything: iterates are compared only before that
iteration, and a run that
diverges at the same iteration (give or take one: rounding decides the exact step where two
exploding sequences cross a threshold) agrees with it (`diverged_at`); one that does not
diverge there computes something else.

References run under jit whatever the scenario's mode (eager and jit runs of a module share them);
a float16/bfloat16 run may agree with the reference in either mode (`reference_modes`).

Like `_scenarios`, this module imports only numpy, jax and equinox: `repro report` ships it
in its reproducers, so a script judges its own run exactly as the harness does.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

# Both measured on 69 generated modules x 8 patterns x 2 modes in each of the floor and
# newest cells. The floor, in epsilons per step: a pytree's iterates stayed
# within 2 epsilons per step of the flat vector's where the shadow did not drift. The factor:
# a correct pattern drifted at most about 50 times as far as the shadow (a badly scaled
# quadratic, eager, jax 0.4.30); a corrupted update departs by hundreds of times what is
# allowed at its first iteration.
TOLERANCE_ULPS = 16.0
DRIFT_FACTOR = 1000.0
# At float16/bfloat16 one epsilon is 1e-3 to 8e-3, so a thousand times the shadow's drift allows
# a 100% deviation after one step: the comparison would end before it began. Measured on the
# survey's float16/bfloat16 modules (every working pattern, jax 0.4.30 and 0.10.2), working runs
# stayed within 0.9 times the shadow's drift and within 0.005 of the per-step floor: the
# low-precision factor keeps an eighteenfold margin over that.
LOW_PRECISION_DRIFT_FACTOR = 16.0
# Diverged: the loss or the iterate's norm past this many times its start (or 1, if larger),
# or any of them past 1/OVERFLOW_MARGIN of the largest value the least precise dtype holds
# (float16 overflows at 65504, long before a million times a start of 100).
DIVERGENCE = 1e6
OVERFLOW_MARGIN = 16.0


@dataclasses.dataclass
class Agreement:
    """How a run's iterates compare with the reference's. A deviation is the larger of the
    parameter vector's (relative to its norm) and the loss's (relative to the initial loss)."""

    compared: int  # iterates compared (the starting point included)
    tolerance: float  # the floor per step: TOLERANCE_ULPS epsilons of the least precise dtype
    departed_at: int | None = None  # first iteration past what is allowed (None: agrees throughout)
    deviation: float = 0.0  # at the departure, else at the closest call (largest deviation / allowed)
    allowed: float = 0.0  # what was allowed there
    drift: float | None = None  # how far the shadow reference had drifted (None: not needed)
    margin: float = 0.0  # the largest deviation / allowed ratio (> 1: departed)
    horizon: int | None = None  # where rounding alone could move the iterates 100%: compared up to there
    reference_steps: int = 0
    run_steps: int = 0  # the run's iterations
    reference_error: str | None = None  # the reference itself raised: its exception, nothing compared
    diverged_at: int | None = None  # the reference and the run both diverge here (compared up to it)
    other_rounding: bool = False  # agreed with the reference run in the other mode (`reference_modes`)

    @property
    def agrees(self):
        return self.reference_error is None and self.departed_at is None and not self.vacuous

    @property
    def vacuous(self):
        """Nothing past the start was compared (the horizon, or a divergence, at the first
        update): at this precision the reference cannot tell a right run from a wrong one."""
        return self.departed_at is None and self.reference_error is None and self.compared <= 1 <= self.run_steps

    def summary(self):
        """One line, as the reproducer prints it and the report reads it back."""
        if self.reference_error is not None:
            return f"the flat-vector reference itself raised {self.reference_error}: nothing compared"
        if self.vacuous:
            return ("the flat-vector reference cannot judge this run: nothing past the start compared "
                    "(rounding alone decides from the first update)")
        if self.departed_at is not None:
            return (f"WRONG RESULT: departs from the flat-vector reference at iteration {self.departed_at}: "
                    f"relative deviation {self.deviation:.3g} > {self.allowed:.3g} allowed")
        horizon = (f" up to iteration {self.horizon}, where rounding alone could move them as far as they are "
                   f"from zero" if self.horizon is not None else
                   f" before iteration {self.diverged_at}, where both diverge" if self.diverged_at is not None else "")
        other = " (as L-BFGS rounds in the other mode)" if self.other_rounding else ""
        return (f"matches the flat-vector reference at all {self.compared} iterates{horizon} (closest call: "
                f"relative deviation {self.deviation:.3g}, {100 * self.margin:.0f}% of what was allowed){other}")

    def to_dict(self):
        found = {k: (float(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}
        return {**found, "vacuous": self.vacuous}


def loss_dtype(loss, model):
    """The dtype `loss(model)` returns, or None if it cannot even be traced."""
    try:
        return eqx.filter_eval_shape(loss, model).dtype
    except Exception:  # noqa: BLE001 -- a loss that cannot be traced fails in the scenario itself
        return None


def tolerance(model, loss):
    """TOLERANCE_ULPS epsilons of the least precise float dtype among the module's arrays and loss."""
    dtypes = {a.dtype for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))}
    returned = loss_dtype(loss, model)
    if returned is not None and jnp.issubdtype(returned, jnp.inexact):
        dtypes.add(jnp.dtype(returned))
    eps = max((float(jnp.finfo(d).eps) for d in dtypes), default=float(jnp.finfo(jnp.float32).eps))
    return TOLERANCE_ULPS * eps


def reference_modes(model, loss, jit):
    """Under which modes (True: jit) the reference runs for a run in mode `jit`, in the order
    they are tried: jit alone at float32 (eager and jit runs of a module share it), and at
    float16/bfloat16 the run's own mode, then the other. There XLA computes a fused expression
    in float32 and rounds once, while eager JAX rounds after every operation, and the flat
    vector fuses differently from the module's leaves: each is L-BFGS, rounded another way, and
    near the dtype's range they part within a few steps (measured: a badly scaled float16 module
    whose flat reference overflowed under jit and stayed at its start, while the module's jit run
    and both eager runs moved alike)."""
    if tolerance(model, loss) <= TOLERANCE_ULPS * float(jnp.finfo(jnp.float32).eps):
        return (True,)
    return (jit, not jit)


def compare_either(run, candidates, tol, limit=float("inf")):
    """`compare` with each candidate (a callable returning (reference record, shadow callable),
    called lazily) in turn: the first agreement, else the first comparison. A run that computes
    what L-BFGS computes, rounded as one of the candidates rounds, agrees."""
    first = None
    for i, candidate in enumerate(candidates):
        ref, shadow = candidate()
        agreement = compare(run, ref, tol, shadow, limit)
        agreement.other_rounding = i > 0
        if agreement.agrees:
            return agreement
        first = first or agreement
        if agreement.departed_at is None:  # unjudged (vacuous, or the reference raised): nothing better to try
            return first
    return first


def overflow_limit(model, loss):
    """1/OVERFLOW_MARGIN of the largest finite value of the least precise float dtype among the
    module's arrays and the loss: past it, rounding (an overflow) may decide a step."""
    dtypes = {a.dtype for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))}
    returned = loss_dtype(loss, model)
    if returned is not None and jnp.issubdtype(returned, jnp.inexact):
        dtypes.add(jnp.dtype(returned))
    return min((float(jnp.finfo(d).max) for d in dtypes), default=float("inf")) / OVERFLOW_MARGIN


def reference_steps(result):
    """How far to run the reference for a run `solve` recorded: its iterations, and one more when
    it ended non-finite (the reference may diverge one step later: rounding's choice)."""
    return result["iterations"] + (0 if np.isfinite(result["final_loss"]) else 1)


def nudge(model):
    """The shadow's start: every float moved by one epsilon of its dtype, relative to its size
    or to 1, whichever is larger (a zero moves too), computed in its own dtype."""

    def move(a):
        return a + jnp.asarray(jnp.finfo(a.dtype).eps, a.dtype) * (jnp.abs(a) + 1) if eqx.is_inexact_array(a) else a

    return jax.tree_util.tree_map(move, model)


def _deviation(a, b, scale):
    """||a - b|| / scale; infinite where only one of them is non-finite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(finite_a, finite_b):
        return float("inf")
    diff = float(np.linalg.norm(np.where(finite_a, a, 0.0) - np.where(finite_b, b, 0.0)))
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0 and np.isfinite(scale) else float("inf")


def diverged(record, limit=float("inf")):
    """The iteration from which `record` (losses and iterates, as `solve` records them) stays out
    of the meaningful range to its end: a loss or iterate that is not finite, that grew past
    DIVERGENCE times its start, or past `limit` (overflow_limit). None if it ends in range: an
    excursion L-BFGS comes back from is not divergence (the comparison goes on through it, and
    the shadow's horizon says where rounding took over)."""
    losses, iterates = record["losses"], record["iterates"]
    if not losses:
        return None
    loss_bound = min(DIVERGENCE * max(abs(losses[0]), 1.0), limit)
    norm_bound = DIVERGENCE * max(float(np.linalg.norm(iterates[0])), 1.0) if iterates else None

    def out(k):
        x = iterates[k] if k < len(iterates) else None
        if not np.isfinite(losses[k]) or abs(losses[k]) > loss_bound:
            return True
        return x is not None and (not np.all(np.isfinite(x)) or float(np.linalg.norm(x)) > norm_bound
                                  or float(np.max(np.abs(x), initial=0.0)) > limit)

    start = len(losses)
    while start > 0 and out(start - 1):
        start -= 1
    return start if start < len(losses) else None


def deviations(run, ref, upto=None):
    """The deviation of `run` from `ref` (each a dict with "losses" and "iterates", as `solve`
    records them) at every iteration both have, before `upto` and before the first where `ref`
    is not finite."""
    x0, l0 = ref["iterates"][0], ref["losses"][0]
    out = []
    for k in range(min(len(run["losses"]), len(ref["losses"]), len(ref["losses"]) if upto is None else upto)):
        x, value = ref["iterates"][k], ref["losses"][k]
        if not (np.isfinite(value) and np.all(np.isfinite(x))):
            break  # the reference itself blew up (as unit-step L-BFGS may): nothing to compare with
        scale = max(np.linalg.norm(x), np.linalg.norm(x0))
        out.append(max(_deviation(run["iterates"][k], x, scale),
                       _deviation([run["losses"][k]], [value], max(abs(value), abs(l0)))))
    return out


def compare(run, ref, tol, shadow=None, limit=float("inf")):
    """How `run` agrees with `ref` (dicts as `solve` records them; `ref` may carry an "error").
    `shadow` is a callable returning the shadow reference's record, called only when some
    deviation exceeds `tol`; a shadow that overflowed tells nothing past that point. Where the
    reference diverges, the run must diverge too (give or take one iteration)."""
    steps = len(ref["losses"]) - 1
    if ref.get("error") is not None and len(ref["losses"]) < len(run["losses"]):
        return Agreement(compared=0, tolerance=tol, reference_steps=steps, reference_error=ref["error"])
    end, run_end = diverged(ref, limit), diverged(run, limit)
    both = end is not None and run_end is not None and abs(run_end - end) <= 1
    devs = deviations(run, ref, upto=min(end, run_end) if both else end)
    result = Agreement(compared=len(devs), tolerance=tol, reference_steps=steps, run_steps=len(run["losses"]) - 1)
    drifts = deviations(shadow(), ref, upto=len(devs)) if shadow is not None and devs and max(devs) > tol else []
    factor = DRIFT_FACTOR if tol <= TOLERANCE_ULPS * float(jnp.finfo(jnp.float32).eps) else LOW_PRECISION_DRIFT_FACTOR
    envelope = 0.0
    for k, dev in enumerate(devs):
        if 0 < k < len(drifts) and np.isfinite(drifts[k]):  # at 0 the shadow's offset is its nudge, not drift
            envelope = max(envelope, drifts[k])
        allowed = max(tol * (k + 1), factor * envelope)
        if allowed >= 1.0:  # rounding alone may now move the iterates as far as they are from 0 (or past
            result.compared, result.horizon = k, k  # any overflow): nothing beyond is compared
            break
        if not np.isfinite(dev):  # one side finite, the other not, where rounding cannot do that
            result.departed_at, result.deviation, result.allowed = k, dev, allowed
            break
        if dev / allowed > result.margin:
            result.margin, result.deviation, result.allowed = dev / allowed, dev, allowed
        if dev > allowed:
            result.departed_at = k
            break
    result.drift = envelope if drifts else None
    if result.departed_at is None and result.horizon is None:
        if both:  # both left the meaningful range at the same step: L-BFGS diverges, and so does the run
            result.diverged_at = min(end, run_end)
        elif end is not None and end < len(run["losses"]):  # L-BFGS diverges here, the run does not
            result.departed_at, result.deviation, result.allowed = end, float("inf"), 0.0
    return result
