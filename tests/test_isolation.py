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
    outcomes = run_many([("_crash", "eager"), ("seed_fix", "jit"), ("_hang", "eager")], timeout=20, jobs=3)
    assert [o.status for o in outcomes] == ["crash", "error", "timeout"]
    assert outcomes[1].family == "missing_linesearch_args"


def test_batch_resumes_after_a_crash_and_a_hang_without_losing_results():
    from repro._isolate import run_batch

    pairs = [("seed_fix", "jit"), ("_crash", "eager"), ("no_params", "jit"), ("_hang", "eager"), ("seed_fix", "eager")]
    outcomes = run_batch(pairs, timeout=20)
    assert [(o.scenario, o.mode) for o in outcomes] == pairs
    assert [o.status for o in outcomes] == ["error", "crash", "error", "timeout", "error"]
    assert "without a result" in outcomes[1].message


def test_batch_and_single_process_runs_agree():
    pairs = [("no_params", "jit"), ("partition_fix", "jit")]
    single = run_many(pairs, timeout=300, jobs=2)
    batched = run_many(pairs, timeout=300, jobs=1, batch=True)
    assert [o.signature() for o in single] == [o.signature() for o in batched]
