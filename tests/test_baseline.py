"""A module compared with its own earlier result (repro/_baseline.py), on constructed rows.

The rows are what repro._results.judge makes of an Outcome (its signature, verdict, observed
text and the outcome itself); the comparison with real environments (jax 0.4.33 -> 0.4.34)
is in tests/test_baseline_envs.py.
"""

import json
import os
import stat
import subprocess
import sys

import pytest

from repro import _baseline
from repro._diff import Diff
from repro._errors import UsageError
from repro._outcome import Outcome

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

V33 = {"python": "3.11.7", "jax": "0.4.33", "jaxlib": "0.4.33", "optax": "0.2.4", "equinox": "0.11.10"}
V34 = {**V33, "jax": "0.4.34", "jaxlib": "0.4.34"}
CONTENTS = {"leaves": ["float-array", "function"], "top": "module"}
AGREES = {"compared": 12, "departed_at": None, "reference_error": None}


def row(outcome, verdict):
    """A result row as repro._results.judge writes it (its expectation left out: not compared)."""
    return {"scenario": outcome.scenario, "mode": outcome.mode, "expected": "-", "observed": outcome.observed(),
            "verdict": verdict, "signature": outcome.signature(), "outcome": outcome.to_dict()}


def raised(family, scenario="no_params", mode="jit", versions=V33):
    return row(Outcome(scenario, mode, "error", "ValueError", "...", family, "update", "jax", versions=versions,
                       contents=CONTENTS), "REPRODUCED")


def converged(scenario="partition_fix", mode="jit", reference=AGREES, status="converged", verdict="WORKAROUND-OK"):
    return row(Outcome(scenario, mode, status, iterations=12, initial_loss=1.0, final_loss=1e-7, grad_norm=1e-4,
                       contents=CONTENTS, reference=dict(reference)), verdict)


def test_agreement_names_how_a_finished_run_compares_with_the_reference():
    def agreement(status, **reference):
        return _baseline.agreement(Outcome("partition_fix", "jit", status, reference=reference or None))

    assert agreement("converged", **AGREES) == "agrees"
    assert agreement("wrong_result", compared=3, departed_at=2, reference_error=None) == "departed at iteration 2"
    assert agreement("converged", compared=0, departed_at=None,
                     reference_error="TypeError: unsupported operand") == "reference raised TypeError"
    assert agreement("error") is None and agreement("converged") is None  # nothing compared


def test_the_first_check_records_and_a_later_one_reports_exactly_what_changed(tmp_path):
    path = tmp_path / "sub" / "baseline.json"  # its folder is made
    before = [raised("custom_node_mismatch"), converged()]
    assert _baseline.read(path) is None
    first = _baseline.compare(path, None, before, V33, {"max_steps": 50})
    assert first.action == "recorded" and first.compared == 2 and first.changes == []
    stored = json.loads(path.read_text())
    assert stored["schema"] == 1 and stored["versions"] == V33 and stored["contents"] == CONTENTS
    assert stored["recorded"] and stored["settings"] == {"max_steps": 50}
    assert [(p["scenario"], p["signature"], p["reference"]) for p in stored["pairs"]] == [
        ("no_params", "ValueError:custom_node_mismatch@update[jax]", None), ("partition_fix", "converged", "agrees")]

    same = _baseline.compare(path, _baseline.read(path), before, V33, {"max_steps": 50})
    assert same.action == "compared" and same.changes == [] and same.notes == [] and same.compared == 2
    assert "no change in the 2 pairs compared" in same.render()

    after = [raised("expected_none", versions=V34), converged()]
    written = path.read_text()
    moved = _baseline.compare(path, _baseline.read(path), after, V34, {"max_steps": 50})
    assert path.read_text() == written  # comparing never rewrites the file
    assert [str(c) for c in moved.changes] == [
        "no_params [jit]: signature ValueError:custom_node_mismatch@update[jax] -> ValueError:expected_none@update[jax]"]
    text = moved.render()
    assert "jax 0.4.33" in text and "1 change in the 2 pairs compared" in text and str(moved.changes[0]) in text

    updated = _baseline.compare(path, _baseline.read(path, update=True), after, V34, {"max_steps": 50}, update=True)
    assert updated.action == "updated" and json.loads(path.read_text())["versions"] == V34
    assert _baseline.compare(path, _baseline.read(path), after, V34).changes == []


def test_reference_agreement_is_compared_and_verdicts_only_by_diff():
    before = _baseline.by_pair([_baseline.record(converged())])
    departed = {"compared": 3, "departed_at": 2, "reference_error": None}
    after = _baseline.by_pair([_baseline.record(converged(reference=departed, status="wrong_result",
                                                          verdict="WRONG-RESULT"))])
    assert [(c.field, c.before, c.after) for c in _baseline.changes(before, after)] == [
        ("signature", "converged", "wrong_result"), ("reference", "agrees", "departed at iteration 2")]
    rejudged = _baseline.by_pair([_baseline.record(converged(verdict="FIXED-UPSTREAM"))])
    assert _baseline.changes(before, rejudged) == []  # the same behaviour, judged otherwise: not a change here
    assert [c.field for c in _baseline.changes(before, rejudged, _baseline.DIFFERENCES)] == ["verdict"]  # diff's
    pair = ("partition_fix", "jit")
    diff = Diff({"a": {"installed": V33}, "b": {"installed": V34}}, [pair], [(pair, before[pair], after[pair])])
    assert "a WORKAROUND-OK converged (agrees)  ->  b WRONG-RESULT wrong_result (departed at iteration 2)" \
        in diff.render()
    assert diff.to_dict()["differs"][0]["b"]["reference"] == "departed at iteration 2"


def test_pairs_only_one_side_has_are_named_not_compared(tmp_path):
    path = tmp_path / "b.json"
    _baseline.compare(path, None, [raised("expected_none"), raised("expected_none", mode="eager")], V34)
    result = _baseline.compare(path, _baseline.read(path), [raised("expected_none"), converged()], V34)
    assert result.compared == 1 and result.changes == []
    assert result.missing == [("no_params", "eager")] and result.new == [("partition_fix", "jit")]
    text = result.render()
    assert "in the baseline, not checked now: no_params [eager]" in text
    assert "not in the baseline (update it to record them): partition_fix [jit]" in text
    assert [p["mode"] for p in json.loads(path.read_text())["pairs"]] == ["jit", "eager"]  # not rewritten


def test_other_settings_or_module_contents_are_noted(tmp_path):
    path = tmp_path / "b.json"
    _baseline.compare(path, None, [converged()], V33, {"max_steps": 50, "optimum": None})
    other = converged()
    other["outcome"]["contents"] = {**CONTENTS, "leaves": ["int-array", "function"]}
    result = _baseline.compare(path, _baseline.read(path), [other], V33, {"max_steps": 80, "optimum": None})
    assert result.changes == []
    assert result.notes == ["checked with other settings than the baseline: max_steps 50 -> 80",
                            "the module's contents differ from the baseline's (another module, or another "
                            "version of this tool): leaves ['float-array', 'function'] -> ['int-array', 'function']"]


@pytest.mark.parametrize("text, words", [
    ("{not json", "Expecting property name"),
    ('["a list"]', "not a baseline file"),
    ('{"schema": 7, "pairs": []}', "schema 7, this version reads schema 1"),
    ('{"schema": 1, "pairs": [{"scenario": "no_params"}]}', "not scenario/mode/signature records"),
])
def test_a_corrupt_baseline_is_one_usage_error_sentence(tmp_path, text, words):
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(UsageError) as error:
        _baseline.read(path)
    message = str(error.value)
    assert words in message and str(path) in message and "\n" not in message
    assert "update_baseline=True (--update-baseline)" in message
    assert _baseline.read(path, update=True) is None  # rewriting it does not read it


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_baseline_that_cannot_be_written_is_refused_before_the_run(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(UsageError, match="not a writable directory"):
        _baseline.read(locked / "new" / "b.json")


def test_a_directory_is_not_a_baseline(tmp_path):
    with pytest.raises(UsageError, match="it is a directory"):
        _baseline.read(tmp_path, update=True)
    with pytest.raises(UsageError, match="cannot be read"):
        _baseline.read(tmp_path)


@pytest.mark.parametrize("args, words", [
    (("--update-baseline",), "--update-baseline needs --baseline"),
    (("--baseline", "{corrupt}"), "cannot be read"),
])
def test_run_baseline_bad_input_is_one_line_and_exit_2_before_anything_runs(run_cli, tmp_path, args, words):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{")
    proc = run_cli(*[str(corrupt) if a == "{corrupt}" else a for a in args], "--scenario", "no_params", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""


def test_a_matrix_cell_refuses_a_baseline_before_building_anything():
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "repro(floor-py311)", "--", "--baseline", "b.json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode != 0
    assert "--baseline compares one environment with a file" in proc.stderr and "env floor-py311" not in proc.stderr


# --- the same module under two real version sets ------------------------------------------

# A user's problem file: an eqx.nn.MLP (its activation functions are the non-array leaves).
PROBLEM = '''
import equinox as eqx, jax, jax.numpy as jnp

model = eqx.nn.MLP(2, 1, 8, 1, activation=jax.nn.tanh, key=jax.random.PRNGKey(0))
x = jnp.linspace(-1.0, 1.0, 32).reshape(16, 2)
y = jnp.sin(x[:, :1])


def loss(m):
    return jnp.mean((jax.vmap(m)(x) - y) ** 2)
'''

# Runs in the env: repro.check on the problem file's module, against the baseline; prints the result.
CHECK = '''
import json, runpy, sys
import repro

problem = runpy.run_path(sys.argv[1])
report = repro.check(problem["model"], problem["loss"], scenarios=["no_params"], modes=["jit"], baseline=sys.argv[2])
print(json.dumps({"action": report.baseline.action, "changes": [str(c) for c in report.changes], "ok": report.ok,
                  "signature": report.results[0]["signature"], "text": str(report)}))
'''

# no_params's message family changes between these (custom_node_mismatch -> expected_none: the
# real bisect in tests/test_bisect.py, with optax 0.2.4); with optax 0.2.5 both are survey cells
# (repro/_data/observations/jax-0.4.33.json, jax-0.4.34.json), so every verdict is as expected
# in both and only the baseline can make a check not ok.
PINS = {"0.4.33": ["jax==0.4.33", "jaxlib==0.4.33", "optax==0.2.5", "equinox==0.11.10"],
        "0.4.34": ["jax==0.4.34", "jaxlib==0.4.34", "optax==0.2.5", "equinox==0.11.10"]}


@pytest.fixture(scope="module")
def two_envs():
    """{jax version: the env's python}: this project (editable) with each version set, built
    (or reused) where `bisect` keeps its envs."""
    from repro import _envs
    from repro._bisect import EnvProbe

    pythons = {}
    for jax, reqs in PINS.items():
        oracle = EnvProbe(lambda _version: (reqs, None), [("no_params", "jit")], python="3.11", timeout=600)
        env = _envs.build_env(oracle.env_path(reqs, None), oracle.interpreter, reqs, extras=(), project=True)
        assert env.ok, env.reason
        pythons[jax] = env.python
    return pythons


def _in_env(python, *args, timeout=900):
    """Run in a child of `python`, without this session's shared JAX cache (another jaxlib)."""
    from conftest import SHARED_JAX_CACHE

    env = {k: v for k, v in os.environ.items() if k not in SHARED_JAX_CACHE}
    return subprocess.run([python, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_a_baseline_reports_the_change_between_two_real_version_sets_and_nothing_without_one(two_envs, tmp_path):
    problem, script, baseline = tmp_path / "problem.py", tmp_path / "check.py", tmp_path / "baseline.json"
    problem.write_text(PROBLEM)
    script.write_text(CHECK)

    def check(jax):
        proc = _in_env(two_envs[jax], str(script), str(problem), str(baseline))
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    old, new = "ValueError:custom_node_mismatch@update[jax]", "ValueError:expected_none@update[jax]"
    recorded = check("0.4.33")
    assert recorded["action"] == "recorded" and recorded["signature"] == old and recorded["changes"] == []
    assert recorded["ok"], recorded["text"]
    stored = baseline.read_text()
    assert json.loads(stored)["versions"]["jax"] == "0.4.33"

    moved = check("0.4.34")
    assert moved["signature"] == new and not moved["ok"]
    assert "all 1 as expected" in moved["text"]  # REPRODUCED as measured for 0.4.34: only the baseline differs
    assert moved["changes"] == [f"no_params [jit]: signature {old} -> {new}"]
    assert moved["changes"][0] in moved["text"] and "jax 0.4.33" in moved["text"]

    same = check("0.4.33")
    assert same["action"] == "compared" and same["changes"] == [] and same["ok"]
    assert baseline.read_text() == stored  # compared, never rewritten

    # The command line compares with the same file (a problem file, children of the env's python).
    proc = _in_env(two_envs["0.4.34"], "-m", "repro", "run", "--problem", str(problem), "--scenario", "no_params",
                   "--mode", "jit", "--baseline", str(baseline), "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"no_params [jit]: signature {old} -> {new}" in proc.stdout
    assert "all 1 as expected" in proc.stdout  # exit 1 for the baseline's change alone
