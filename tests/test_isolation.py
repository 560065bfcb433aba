"""A scenario process that segfaults or hangs is recorded, and the others still run."""

import pytest

from repro._isolate import run_many
from repro._results import judge


def test_segfault_is_a_crash_with_its_output():
    outcome = run_many([("_crash", "eager")], timeout=120)[0]
    assert outcome.status == "crash"
    assert outcome.returncode == -11
    assert "SIGSEGV" in outcome.message
    assert judge(outcome)["verdict"] == "CRASH"


def test_hang_is_a_timeout_and_is_killed():
    outcome = run_many([("_hang", "eager")], timeout=3)[0]
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
    for outcomes in (single, batched):  # real outcomes on both sides, not two crashes that agree
        assert [o.status for o in outcomes] == ["error", "converged"], [o.message for o in outcomes]
        assert [judge(o)["verdict"] for o in outcomes] == ["REPRODUCED", "WORKAROUND-OK"]
    assert [o.signature() for o in single] == [o.signature() for o in batched]
    assert [o.iterations for o in single] == [o.iterations for o in batched]


# --- Workers: long-lived processes for generated cases (the property tests use them) --------

CASE = ("import jax.numpy as jnp\nimport equinox as eqx\n\n\nclass M0(eqx.Module):\n    w: object\n\n\n"
        "model = M0(w=jnp.full((2,), 1.5, jnp.float32))\n\n\ndef loss(m):\n    return jnp.sum((m.w - 0.5) ** 2)\n\n\n"
        "optimum = 0.0\n")


def test_workers_keep_order_and_carry_on_past_a_crash_and_a_hang():
    from repro._workers import Workers

    jobs = [(CASE, "seed_fix", "jit"), (CASE, "_crash", "eager"), (CASE, "partition_fix", "jit"),
            (CASE, "_hang", "eager"), (CASE, "no_params", "eager")]
    with Workers(2, timeout=15) as workers:
        outcomes = workers.run(jobs)
        again = workers.run([(CASE, "seed_fix_no_linesearch", "jit")])  # dead workers were replaced
    assert [(o.scenario, o.mode) for o in outcomes] == [(s, m) for _, s, m in jobs]
    assert [o.status for o in outcomes] == ["error", "crash", "converged", "timeout", "error"]
    assert outcomes[0].family == "missing_linesearch_args"
    assert outcomes[1].returncode == -11 and "SIGSEGV" in outcomes[1].message
    assert "15 s" in outcomes[3].message
    assert again[0].status == "converged"


def test_a_case_that_does_not_build_is_an_error_in_build_not_a_dead_worker():
    from repro._workers import Workers

    with Workers(1, timeout=60) as workers:
        broken, fine = workers.run([("model = undefined_name\n", "partition_fix", "jit"), (CASE, "partition_fix", "jit")])
    assert (broken.status, broken.exc_type, broken.phase) == ("error", "NameError", "build")
    assert fine.status == "converged"


def test_jax_cache_env_is_inside_the_env_and_can_be_turned_off(monkeypatch, tmp_path):
    from repro._policy import jax_cache_env

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("REPRO_JAX_CACHE", raising=False)
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    assert jax_cache_env(str(python))["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "env" / ".jax-cache")
    monkeypatch.setenv("REPRO_JAX_CACHE", "0")
    assert jax_cache_env(str(python)) == {}
    monkeypatch.setenv("REPRO_JAX_CACHE", "1")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert jax_cache_env(str(python)) == {}  # the user's own setting wins


@pytest.mark.host
@pytest.mark.parametrize("jaxlib, cached", [("0.5.0", True), ("0.5.1", False), ("0.5.3", False), ("0.6.0", False),
                                            ("0.6.1", True), ("0.10.2", True)])
def test_no_compilation_cache_where_it_gave_wrong_results(monkeypatch, tmp_path, jaxlib, cached):
    """jaxlib 0.5.1-0.6.0's persistent cache made the survey's working patterns compute wrong
    results (repro._policy.CACHE_UNSAFE_JAXLIB): an env with such a jaxlib gets no cache."""
    from repro._policy import jax_cache_env

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("REPRO_JAX_CACHE", raising=False)
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    (tmp_path / "env" / "lib" / "python3.11" / "site-packages" / f"jaxlib-{jaxlib}.dist-info").mkdir(parents=True)
    assert ("JAX_COMPILATION_CACHE_DIR" in jax_cache_env(str(python))) is cached


# A case whose build reports the worker's pid and the compilation cache its JAX was configured with.
CACHE_PROBE = ("import os\nimport jax\n\n"
               "raise RuntimeError(f'pid={os.getpid()} cache={jax.config.jax_compilation_cache_dir}')\n")


def test_workers_share_a_compilation_cache_inside_the_env(monkeypatch):
    """Started workers are separate processes whose JAX uses the one cache in this env, and
    compiling a job there writes to it."""
    import os
    import sys
    import time

    from repro._workers import Workers

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("REPRO_JAX_CACHE", raising=False)
    cache = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(sys.executable))), ".jax-cache")
    with Workers(2, timeout=120) as workers:
        workers.start()
        pids = {child.proc.pid for child in workers._slots}
        seen = {}
        # Until both workers have answered a probe. A probe takes milliseconds, so a worker that
        # is ready can take every probe while the other still imports JAX (seconds on a loaded
        # machine): wait by the clock, not by a count of rounds.
        deadline = time.monotonic() + 120
        while set(seen) != pids and time.monotonic() < deadline:
            for outcome in workers.run([(CACHE_PROBE, "partition_fix", "jit")] * 2):
                assert (outcome.exc_type, outcome.phase) == ("RuntimeError", "build"), outcome.message
                pid, _, configured = outcome.message.partition(" cache=")
                seen[int(pid[len("pid="):])] = configured
        assert set(seen) == pids and len(pids) == 2
        assert set(seen.values()) == {cache}
        before = {os.path.join(d, f) for d, _, files in os.walk(cache) for f in files}
        target = repr(0.5 + (time.time_ns() % 10**9) * 1e-12)  # a constant no earlier run compiled
        fresh = CASE.replace("(m.w - 0.5)", f"(m.w - {target})")
        assert fresh != CASE
        (outcome,) = workers.run([(fresh, "partition_fix", "jit")])
    assert outcome.status == "converged"
    after = {os.path.join(d, f) for d, _, files in os.walk(cache) for f in files}
    assert after - before, "compiling a new program wrote to the shared cache"


def test_a_worker_crash_that_does_not_repeat_is_retried_once(monkeypatch):
    """A long-running worker can die for reasons of its own; the job reruns in a fresh one."""
    from repro._workers import Workers
    from repro._outcome import Outcome

    calls = []
    with Workers(1, timeout=60) as workers:
        real = workers._ask_once

        def flaky(slot, source, scenario, mode, budget=None):
            calls.append(scenario)
            if len(calls) == 1:
                return Outcome(scenario, mode, "crash", returncode=-11, message="killed by signal SIGSEGV")
            return real(slot, source, scenario, mode, budget)

        monkeypatch.setattr(workers, "_ask_once", flaky)
        (outcome,) = workers.run([(CASE, "seed_fix", "jit")])
    assert calls == ["seed_fix", "seed_fix"]
    assert outcome.family == "missing_linesearch_args"
    assert "died on this job first" in outcome.output


def test_workers_drop_the_fast_compile_flags_this_xla_does_not_know(monkeypatch):
    """XLA aborts on a flag it does not know and names it; the workers keep the rest of the set."""
    from repro import _policy, _workers

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("REPRO_FAST_COMPILE", raising=False)
    monkeypatch.setattr(_policy, "FAST_COMPILE_FLAGS",
                        ("--xla_repro_no_such_flag=1 --xla_backend_optimization_level=0 --xla_repro_nor_this=2", ""))
    with _workers.Workers(2, timeout=120) as workers:
        assert workers.xla_flags is None  # not known before a worker has started
        workers.start()
        assert workers.xla_flags == "--xla_backend_optimization_level=0"
        (outcome,) = workers.run([(CASE, "partition_fix", "jit")])
    assert outcome.status == "converged"

    # Flags known to work for this jaxlib (`xla_flags=`) are used as given: nothing else is tried.
    with _workers.Workers(1, timeout=120, xla_flags="--xla_backend_optimization_level=0") as workers:
        assert workers.start().xla_flags == "--xla_backend_optimization_level=0"
    with _workers.Workers(1, timeout=120, xla_flags="--xla_repro_no_such_flag=1") as workers:
        with pytest.raises(RuntimeError, match="xla_repro_no_such_flag"):
            workers.start()


def test_unknown_xla_flags_are_read_off_the_abort_message():
    from repro._policy import _without_unknown

    flags = "--xla_a=false --xla_b=0 --xla_c=1"
    message = "2026-11-27 F external/xla/xla/parse_flags_from_env.cc:224] Unknown flags in XLA_FLAGS: --xla_a=false --xla_c=1  \n"
    assert _without_unknown(flags, message) == "--xla_b=0"
    assert _without_unknown(flags, "Unknown flags in XLA_FLAGS: --xla_zz=1") is None  # names none of ours
    assert _without_unknown(flags, "Segmentation fault") is None


def test_user_xla_flags_and_repro_fast_compile_0_switch_the_flags_off(monkeypatch):
    from repro._policy import FAST_COMPILE_FLAGS, fast_compile_candidates

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("REPRO_FAST_COMPILE", raising=False)
    assert fast_compile_candidates() == FAST_COMPILE_FLAGS
    assert fast_compile_candidates({"XLA_FLAGS": "--xla_dump_to=/tmp/x"}) == ("--xla_dump_to=/tmp/x",)
    monkeypatch.setenv("REPRO_FAST_COMPILE", "0")
    assert fast_compile_candidates() == ("",)


MLP_CASE = (
    "import equinox as eqx\nimport jax\nimport jax.numpy as jnp\n\n"
    "target = eqx.nn.MLP(3, 2, 4, 2, activation=jax.nn.softplus, key=jax.random.PRNGKey(1))\n"
    "model = jax.tree_util.tree_map(lambda a: a + 0.25 if eqx.is_inexact_array(a) else a, target)\n"
    "target = eqx.filter(target, eqx.is_inexact_array)\n\n\n"
    "def loss(m):\n"
    "    diffs = jax.tree_util.tree_map(lambda a, b: jnp.sum((a - b) ** 2), eqx.filter(m, eqx.is_inexact_array), target)\n"
    "    return sum(jax.tree_util.tree_leaves(diffs)) + 0.0 * jnp.sum(m(jnp.ones(3)))\n\n\n"
    "optimum = 0.0\n")


def test_fast_compile_flags_do_not_change_a_verdict(monkeypatch):
    """The flags change how XLA compiles, not what the scenarios find: same outcome
    signatures and iterations with and without them, final losses equal to rounding."""
    from repro._workers import Workers

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    jobs = [(source, name, mode) for source in (CASE, MLP_CASE) for mode in ("jit", "eager")
            for name in ("init_unfiltered", "seed_fix_value_fn", "partition_fix")]
    runs = {}
    for setting in ("1", "0"):
        monkeypatch.setenv("REPRO_FAST_COMPILE", setting)
        with Workers(2, timeout=300) as workers:
            runs[setting] = workers.run(jobs)
    fast, default = runs["1"], runs["0"]
    assert [(o.signature(), o.iterations) for o in fast] == [(o.signature(), o.iterations) for o in default]
    assert {o.status for o in fast} == {"converged", "error"}  # both kinds of verdict are compared
    for a, b in zip(fast, default):
        if a.final_loss is not None:
            assert abs(a.final_loss - b.final_loss) <= 1e-7  # far inside loss_tol (1e-6)


def test_a_worker_past_its_memory_limit_is_replaced_after_its_job():
    """Every new module structure leaves compiled programs behind in a worker: one whose
    resident memory passed `max_rss` is retired after its job, and the next job gets a fresh one."""
    from repro._workers import Workers

    with Workers(1, timeout=120, max_rss=1) as workers:  # 1 byte: every worker is over it
        first = workers.run([(CASE, "seed_fix", "jit")])
        second = workers.run([(CASE, "no_params", "jit")])
        assert workers.recycled == 2 and workers.peak_rss > 100 * 2**20
    assert first[0].family == "missing_linesearch_args"
    assert second[0].status == "error" and second[0].phase == "update"


def test_workers_compute_a_cases_reference_once_and_judge_as_without_sharing():
    """The pool's reference store: the `_reference:` job leaves the line-search record for the
    case, the workers judge with it, and every verdict and agreement is what each worker
    computing its own reference gives (same env, same flags: the same numbers)."""
    import os

    from repro._workers import Workers

    jobs = [(CASE, name, "jit") for name in ("partition_fix", "seed_fix_value_fn", "value_fn_full_model",
                                             "seed_fix_no_linesearch", "no_params")]
    with Workers(2, timeout=120) as shared:
        store = shared._store
        got = shared.run(jobs)
        files = sorted(os.listdir(store))
    with Workers(2, timeout=120, share_references=False) as alone:
        assert alone._store is None
        want = alone.run(jobs)
    with Workers(1, timeout=120) as single:
        assert single._store is None  # no one to share with: extended only as far as needed
        one = single.run(jobs)
    assert not os.path.exists(store)  # removed when the pool closes
    assert [o.scenario for o in got] == [name for _, name, _ in jobs]  # the reference job is not among them
    assert [o.status for o in got] == ["converged"] * 4 + ["error"]
    assert [(o.status, o.iterations, o.final_loss, o.reference) for o in got] == \
        [(o.status, o.iterations, o.final_loss, o.reference) for o in want] == \
        [(o.status, o.iterations, o.final_loss, o.reference) for o in one]
    assert [f.rsplit("-", 1)[1] for f in files] == ["nols.npz", "zoom.npz"]  # no lock left behind
