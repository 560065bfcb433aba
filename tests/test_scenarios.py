"""Every scenario, eager and jit, in this environment, each in its own process.

The expectation for the installed versions must exist (this env is a measured cell) and
the observed outcome must match it; the workarounds must converge per the definition and
match the flat-vector reference at every iterate.
"""

import pytest

from repro._catalogue import MODES, SCENARIOS, Budget
from repro._expectations import expectation_for
from repro._isolate import run_many
from repro._outcome import AS_EXPECTED, classify
from repro._report import BUILTIN_CONTENTS

BUDGET = Budget()  # the convergence definition the child processes use


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_matches_its_measured_expectation(scenario, mode):
    outcome = run_many([(scenario, mode)], timeout=600)[0]
    expected = expectation_for(scenario, mode, outcome.versions, outcome.contents).expected
    assert expected is not None, f"no measured expectation for {outcome.versions}"
    verdict = classify(expected, outcome)
    assert verdict in AS_EXPECTED, (verdict, expected, outcome.signature(), outcome.message, outcome.output)
    assert outcome.contents == BUILTIN_CONTENTS
    if expected.works:
        assert outcome.agrees(), outcome.reference
        assert outcome.reference["compared"] == outcome.iterations + 1
        assert outcome.iterations <= BUDGET.max_steps
        assert outcome.final_loss <= BUDGET.loss_tol  # the optimum is 0
        assert outcome.grad_norm <= BUDGET.grad_tol
        assert outcome.final_loss < outcome.initial_loss
    else:
        assert outcome.traceback and outcome.message
