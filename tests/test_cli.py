"""The command line: a real run, JSON output, and one-line errors with exit 2 on bad input."""

import json

import pytest


def test_run_one_scenario_prints_versions_and_verdicts(run_cli, tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("--scenario", "no_params", "--scenario", "partition_fix", "--mode", "jit", "--output", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].startswith("python ")
    assert "REPRODUCED" in proc.stdout and "WORKAROUND-OK" in proc.stdout
    data = json.loads(out.read_text())
    assert data["as_expected"] is True
    assert [(r["scenario"], r["mode"]) for r in data["results"]] == [("no_params", "jit"), ("partition_fix", "jit")]


def test_json_flag(run_cli):
    proc = run_cli("run", "--scenario", "seed_fix", "--mode", "jit", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["results"][0]["verdict"] == "REPRODUCED"
    assert data["results"][0]["outcome"]["family"] == "missing_linesearch_args"


def test_a_crash_makes_the_exit_code_1(run_cli):
    proc = run_cli("--scenario", "_crash", "--mode", "eager")
    assert proc.returncode == 1
    assert "CRASH" in proc.stdout


@pytest.mark.parametrize("args, words", [
    (("--scenario", "nope"), "unknown scenario 'nope'"),
    (("--mode", "fast"), "invalid choice"),
    (("--timeout", "0"), "--timeout"),
    (("--bogus",), "unrecognized arguments"),
    (("--output", "/nonexistent/dir/r.json"), "cannot write"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, words):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
