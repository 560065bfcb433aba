"""Verdict classification on constructed outcomes: every verdict, both directions."""

import pytest

from repro import Outcome, Verdict, classify
from repro._outcome import CONVERGES, STALLS, fails

FAILS = fails("ValueError", "expected_none", "update", "jax")


def error(**overrides):
    fields = dict(exc_type="ValueError", family="expected_none", phase="update", library="jax")
    fields.update(overrides)
    return Outcome("no_params", "eager", "error", **fields)


CASES = [
    ("reproduced", FAILS, error(), Verdict.REPRODUCED),
    ("other family", FAILS, error(family="pytree_structure_error"), Verdict.CHANGED),
    ("other type", FAILS, error(exc_type="TypeError"), Verdict.CHANGED),
    ("other phase", FAILS, error(phase="init"), Verdict.CHANGED),
    ("other library", FAILS, error(library="optax"), Verdict.CHANGED),
    ("failure vanished", FAILS, Outcome("no_params", "jit", "converged", iterations=9, final_loss=1e-8),
     Verdict.FIXED_UPSTREAM),
    ("ran but no convergence", FAILS, Outcome("no_params", "jit", "not_converged", family="not_converged"),
     Verdict.CHANGED),
    ("workaround ok", CONVERGES, Outcome("partition_fix", "jit", "converged"), Verdict.WORKAROUND_OK),
    ("workaround raises", CONVERGES, error(), Verdict.REGRESSION),
    ("workaround stalls", CONVERGES, Outcome("partition_fix", "jit", "not_converged"), Verdict.REGRESSION),
    ("crash beats expectation", CONVERGES, Outcome("partition_fix", "jit", "crash"), Verdict.CRASH),
    ("timeout", FAILS, Outcome("no_params", "jit", "timeout"), Verdict.TIMEOUT),
    ("nothing measured", None, error(), Verdict.UNKNOWN),
    ("silent stall, as measured", STALLS, Outcome("seed_fix_no_linesearch", "eager", "not_converged",
                                                  family="not_converged"), Verdict.REPRODUCED),
    ("stall expected, raised instead", STALLS, error(), Verdict.CHANGED),
    ("stall expected, converged", STALLS, Outcome("seed_fix_no_linesearch", "eager", "converged"),
     Verdict.FIXED_UPSTREAM),
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
