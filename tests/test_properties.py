"""Property tests: Hypothesis-generated Equinox modules through every scenario.

For each generated module, every scenario's observed outcome must be what the
expectations table predicts for the installed versions and the module's contents, and
the fixes must converge. On a mismatch the failure message carries a standalone
reproducer script for the (shrunk) module and first disagreeing scenario, also written to
repro-reports/.
"""

import os

import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st

from repro._catalogue import MODES, SCENARIOS
from repro._expectations import expected_for
from repro._jax._run import run_scenario
from repro._outcome import AS_EXPECTED, classify
from repro._reproducer import standalone_script
from repro.strategies import Case, cases

REPORT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "repro-reports")


def mismatches(case, mode):
    model, loss, optimum = case.build()
    found = []
    for name in SCENARIOS:
        outcome = run_scenario(name, mode, model, loss, optimum=optimum)
        expected = expected_for(name, mode, outcome.versions, outcome.contents)
        verdict = classify(expected, outcome)
        note(f"{name}: {verdict} ({outcome.signature()}) expected {expected.describe() if expected else None}")
        if verdict not in AS_EXPECTED:
            found.append((name, verdict, expected, outcome))
    return found


def explain(case, mode, found):
    name, verdict, expected, outcome = found[0]
    script = standalone_script(case.source, name, mode)
    os.makedirs(REPORT_DIR, exist_ok=True)
    path = os.path.join(REPORT_DIR, f"counterexample_{name}_{mode}.py")
    with open(path, "w") as f:
        f.write(script)
    lines = [f"{len(found)} scenario(s) disagree with the expectations for {case.description} ({mode}):"]
    lines += [f"  {n}: {v}: expected {e.describe() if e else 'unknown'}, observed {o.observed()}"
              f" -- {o.message or ''}" for n, v, e, o in found]
    lines += [f"Standalone reproducer ({path}):", script]
    return "\n".join(lines)


# Pinned regressions: counterexamples found and explained (see the expectations table).
ARRAYS_ONLY = Case("import jax.numpy as jnp\nimport equinox as eqx\n\n\nclass M0(eqx.Module):\n    w: object\n\n\n"
                   "model = M0(w=jnp.full((), 1.5, jnp.float32))\n\n\ndef loss(m):\n    return jnp.sum((m.w - 0.5) ** 2)\n\n\n"
                   "optimum = 0.0\n", "module with float32[] only", frozenset({"float", "module"}))


@given(case=cases(), mode=st.sampled_from(MODES))
# Arrays only: unfiltered L-BFGS works (init/params/value_fn scenarios converge), but the
# Adam habit still fails, because update() without params cannot compute params - old params.
@example(case=ARRAYS_ONLY, mode="jit")
def test_every_scenario_matches_the_expectations(case, mode):
    note(case.source)
    found = mismatches(case, mode)
    assert not found, explain(case, mode, found)
