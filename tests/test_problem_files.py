"""`--problem FILE.py`: the scenarios on a user's module; a bad file is one line and exit 2."""

import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOWPREC = os.path.join(ROOT, "examples", "lowprec.py")

GOOD = """import equinox as eqx
import jax
import jax.numpy as jnp

model = eqx.nn.MLP(2, 1, 4, 1, activation=jax.nn.tanh, key=jax.random.PRNGKey(0))
x = jnp.linspace(-1, 1, 16).reshape(8, 2)


def loss(m):
    return jnp.mean((jax.vmap(m)(x) - 0.5) ** 2)
"""

BAD = {
    "syntax.py": ("def loss(:\n", "syntax error at line 1"),
    "names.py": ("x = 1\n", "defines no `model` and no `loss`"),
    "types.py": ("model = 3\n\ndef loss(m):\n    return m\n", "model has no floating-point arrays"),
    "imports.py": ("import no_such_module_repro\nmodel = loss = None\n", "line 1: ModuleNotFoundError"),
    "loss.py": (GOOD.replace("return jnp.mean(", "return (").replace("** 2)", "** 2)[0]"),
                "must return a float scalar"),
    "optimum.py": (GOOD + "\noptimum = 'zero'\n", "optimum must be a number or None, got str"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_problem_file_is_one_line_and_exit_2(run_cli, tmp_path, name):
    text, words = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    proc = run_cli("run", "--problem", str(path), "--scenario", "no_params", "--mode", "jit", timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_a_missing_problem_file_is_bad_input_for_every_command(run_cli):
    for command in (("run",), ("report", "--scenario", "no_params"), ("diff", "--a", "jax==0.4.30", "--b", "jax==0.4.31"),
                    ("bisect", "--package", "jax", "--good", "0.4.30", "--bad", "0.4.31", "--scenario", "no_params")):
        proc = run_cli(*command, "--problem", "/nonexistent/problem.py", timeout=120)
        assert proc.returncode == 2 and "cannot read it" in proc.stderr, (command, proc.stderr)


def test_the_scenarios_run_on_the_problem_files_module(run_cli, tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(GOOD)
    proc = run_cli("run", "--problem", str(path), "--scenario", "no_params", "--scenario", "partition_fix",
                   "--mode", "jit", "--json", timeout=600)
    data = json.loads(proc.stdout)
    by_name = {r["scenario"]: r for r in data["results"]}
    assert by_name["no_params"]["verdict"] == "REPRODUCED", by_name["no_params"]
    assert by_name["partition_fix"]["verdict"] == "WORKAROUND-OK", by_name["partition_fix"]
    contents = by_name["partition_fix"]["outcome"]["contents"]
    assert contents["problem"] is None and "jitted" in contents["leaves"]  # judged as a user's module
    assert by_name["partition_fix"]["outcome"]["reference"]["departed_at"] is None  # the oracle ran
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_report_embeds_the_problem_files_source(run_cli, tmp_path):
    out = tmp_path / "report.json"
    proc = run_cli("report", "--scenario", "no_params", "--mode", "jit", "--problem", LOWPREC, "--format", "json",
                   "--output", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert "model = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16)" in report["script"]
    assert "model, loss, optimum = (model, loss, None)" in report["script"]  # the file defines no optimum
    assert report["problem"] == "lowprec.py" and report["outcome"]["contents"]["low_precision_loss"] is True
    assert report["verdict"] == "REPRODUCED"
    assert "the Equinox module defined in `lowprec.py`" in report["markdown"]
    assert "repro report --scenario no_params --mode jit --problem lowprec.py" in report["markdown"]
