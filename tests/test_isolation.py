"""A scenario process that segfaults or hangs is recorded, and the others still run."""

from repro._isolate import run_isolated, run_many
from repro._results import judge


def test_segfault_is_a_crash_with_its_output():
    outcome = run_isolated("_crash", "eager", timeout=120)
    assert outcome.status == "crash"
    assert outcome.returncode == -11
    assert "SIGSEGV" in outcome.message
    assert judge(outcome)["verdict"] == "CRASH"


def test_hang_is_a_timeout_and_is_killed():
    outcome = run_isolated("_hang", "eager", timeout=3)
    assert outcome.status == "timeout"
    assert "3 s" in outcome.message
    assert judge(outcome)["verdict"] == "TIMEOUT"


def test_the_rest_still_run_around_a_crash():
    outcomes = run_many([("_crash", "eager"), ("seed_fix", "jit"), ("_hang", "eager")], timeout=60, jobs=3)
    assert [o.status for o in outcomes] == ["crash", "error", "timeout"]
    assert outcomes[1].family == "missing_linesearch_args"
