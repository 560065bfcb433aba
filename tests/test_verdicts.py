"""Verdict classification on constructed outcomes: every verdict, both directions."""

import pytest

from repro import Outcome, Verdict, classify
from repro._outcome import AGREES, BROKEN, CONVERGES, NOT_CONVERGED, WRONG_RESULT, any_of, fails

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host


FAILS = fails("ValueError", "expected_none", "update", "jax")


def error(**overrides):
    fields = dict(exc_type="ValueError", family="expected_none", phase="update", library="jax")
    fields.update(overrides)
    return Outcome("no_params", "eager", "error", **fields)


def finished(scenario, status, departed_at=None, reference_error=None):
    """A run that finished, compared with the flat-vector reference."""
    reference = {"compared": 12, "departed_at": departed_at, "reference_error": reference_error}
    return Outcome(scenario, "jit", status, iterations=11, final_loss=0.1, reference=reference)


CASES = [
    ("reproduced", FAILS, error(), Verdict.REPRODUCED),
    ("other family", FAILS, error(family="pytree_structure_error"), Verdict.CHANGED),
    ("other type", FAILS, error(exc_type="TypeError"), Verdict.CHANGED),
    ("other phase", FAILS, error(phase="init"), Verdict.CHANGED),
    ("other library", FAILS, error(library="optax"), Verdict.CHANGED),
    ("failure vanished", FAILS, finished("no_params", "converged"), Verdict.FIXED_UPSTREAM),
    ("failure vanished, not converged", FAILS, finished("no_params", "not_converged"), Verdict.FIXED_UPSTREAM),
    ("workaround ok", CONVERGES, finished("partition_fix", "converged"), Verdict.WORKAROUND_OK),
    ("workaround raises", CONVERGES, error(), Verdict.REGRESSION),
    ("workaround stalls", CONVERGES, finished("partition_fix", "not_converged"), Verdict.REGRESSION),
    ("crash beats expectation", CONVERGES, Outcome("partition_fix", "jit", "crash"), Verdict.CRASH),
    ("timeout", FAILS, Outcome("no_params", "jit", "timeout"), Verdict.TIMEOUT),
    ("nothing measured", None, error(), Verdict.UNKNOWN),
    ("wrong result, as measured", WRONG_RESULT, finished("value_fn_full_model", "wrong_result", departed_at=2),
     Verdict.REPRODUCED),
    ("wrong result expected, raised instead", WRONG_RESULT, error(), Verdict.CHANGED),
    ("wrong result expected, now right", WRONG_RESULT, finished("value_fn_full_model", "not_converged"),
     Verdict.FIXED_UPSTREAM),
    ("workaround computes a wrong result", CONVERGES, finished("partition_fix", "wrong_result", departed_at=1),
     Verdict.WRONG_RESULT),
    ("an expected error became a wrong result", FAILS, finished("no_params", "wrong_result", departed_at=1),
     Verdict.WRONG_RESULT),
    ("user module: agrees, not converged", AGREES, finished("partition_fix", "not_converged"), Verdict.WORKAROUND_OK),
    ("user module: agrees and converged", AGREES, finished("partition_fix", "converged"), Verdict.WORKAROUND_OK),
    ("user module: raised", AGREES, error(), Verdict.REGRESSION),
    # The reference itself raised: nothing says whether the iterates are right. On the built-in
    # problem convergence to the known optimum decides; anywhere else there is no verdict.
    ("user module: reference raised", AGREES,
     finished("partition_fix", "converged", reference_error="TypeError: x"), Verdict.UNKNOWN),
    ("built-in problem: reference raised, converged", CONVERGES,
     finished("partition_fix", "converged", reference_error="TypeError: x"), Verdict.WORKAROUND_OK),
    ("built-in problem: reference raised, not converged", CONVERGES,
     finished("partition_fix", "not_converged", reference_error="TypeError: x"), Verdict.REGRESSION),
    ("broken pattern: reference raised", FAILS,
     finished("no_params", "converged", reference_error="TypeError: x"), Verdict.UNKNOWN),
    ("built-in problem: measured too slow, still", NOT_CONVERGED, finished("partition_fix", "not_converged"),
     Verdict.REPRODUCED),
    ("built-in problem: measured too slow, now converges", NOT_CONVERGED, finished("partition_fix", "converged"),
     Verdict.FIXED_UPSTREAM),
    ("built-in problem: measured too slow, now raises", NOT_CONVERGED, error(), Verdict.CHANGED),
    # A structure never measured: broken, whatever it raises or if it computes a wrong result.
    ("category: raises", BROKEN, error(family="anything"), Verdict.REPRODUCED),
    ("category: wrong result", BROKEN, finished("seed_fix", "wrong_result", departed_at=1), Verdict.REPRODUCED),
    ("category: works", BROKEN, finished("seed_fix", "converged"), Verdict.FIXED_UPSTREAM),
    ("built-in problem: agrees but not converged", CONVERGES, finished("partition_fix", "not_converged"),
     Verdict.REGRESSION),
    ("one of several failures", any_of(FAILS, WRONG_RESULT), finished("seed_fix", "wrong_result", departed_at=1),
     Verdict.REPRODUCED),
    ("the other of several failures", any_of(FAILS, WRONG_RESULT), error(), Verdict.REPRODUCED),
    ("none of several failures", any_of(FAILS, WRONG_RESULT), error(phase="init"), Verdict.CHANGED),
]


@pytest.mark.parametrize("expected, outcome, verdict", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(expected, outcome, verdict):
    assert classify(expected, outcome) is verdict


def test_unset_field_is_not_compared():
    loose = fails("ValueError", None, "update", "jax")
    assert classify(loose, error(family="anything")) is Verdict.REPRODUCED


def test_outcome_round_trips_through_json():
    import json

    original = error(message="Expected None, got MLP(", versions={"jax": "0.6.2"})
    assert Outcome.from_dict(json.loads(json.dumps(original.to_dict()))) == original
