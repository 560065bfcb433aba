"""`repro report`: the standalone script is the harness's code, it is what ran, and the report says
what it does. Nothing here is version-specific: every run is compared with what the report itself
states and with repro._expectations for the installed versions."""

import ast
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from repro._catalogue import BUILTIN_PROBLEM, SCENARIOS
from repro._expectations import expectation_for
from repro._outcome import AS_EXPECTED, classify
from repro._report import (
    BUILTIN_CONTENTS,
    LINKS,
    SCRIPT_NAME,
    Run,
    fence,
    outcome_from_run,
    parse_traceback,
    phase_of,
    run_script,
    script_for_scenario,
    script_imports,
    trim_traceback,
)
from repro._versions import installed_versions

ALLOWED_IMPORTS = {"contextlib", "dataclasses", "equinox", "functools", "jax", "numpy", "optax"}
SECTIONS = ("## Reproducer", "## Actual output", "## Expected vs actual", "## Environment",
            "## Related upstream threads")


# --- Markdown helpers -------------------------------------------------------------------


def blocks(markdown):
    """[(info string, text)] of the fenced code blocks; asserts every fence is closed."""
    found, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^(`{3,})(.*)$", lines[i])
        if opening:
            ticks, info, body = opening.group(1), opening.group(2).strip(), []
            i += 1
            while i < len(lines) and lines[i] != ticks:
                body.append(lines[i])
                i += 1
            assert i < len(lines), f"unclosed fence opened with {ticks}{info}"
            found.append((info, "\n".join(body)))
        i += 1
    return found


def prose(markdown):
    """The Markdown outside fenced code blocks."""
    out, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^(`{3,})", lines[i])
        if opening:
            i += 1
            while i < len(lines) and lines[i] != opening.group(1):
                i += 1
        else:
            out.append(lines[i])
        i += 1
    return out


def check_structure(markdown):
    text = prose(markdown)
    assert markdown.splitlines()[0].startswith("# ")
    assert [line for line in text if re.match(r"^# ", line)] == [markdown.splitlines()[0]], "one H1 title"
    assert "\n" not in markdown.splitlines()[0]
    for section in SECTIONS:
        assert section in text, section
    depth = 0
    for line in text:
        depth += line.count("<details>") - line.count("</details>")
        assert depth >= 0
    assert depth == 0, "unbalanced <details>"
    assert sum(line.count("<details>") for line in text) >= 2  # full output, environment
    for _, url in LINKS:
        assert url in markdown
    assert blocks(markdown)[0][0] == "python"


def script_from(markdown):
    return next(text for info, text in blocks(markdown) if info == "python") + "\n"


def stated(markdown):
    """What the report says happened: ('error', type, family) or ('converged'|..., None, None)."""
    row = next(line for line in prose(markdown) if line.startswith("| Actual |"))
    match = re.match(r"\| Actual \| `(\w+)` \((\w+)\) in (\w+), raised in (\w+) \|", row)
    if match:
        return ("error", match.group(1), match.group(2))
    return (row.split("|")[2].strip().split(" after")[0].replace(" ", "_"), None, None)


def verdict_of(markdown):
    row = next(line for line in prose(markdown) if line.startswith("| Verdict |"))
    return re.search(r"\*\*([A-Z-]+)\*\*", row).group(1)


# --- The script is the harness's code, and nothing else ----------------------------------


def test_builtin_contents_match_the_harness():
    from repro import _report
    from repro._jax._problems import mlp_problem
    from repro._jax._run import contents

    model, loss, _ = mlp_problem()
    assert contents(model, BUILTIN_PROBLEM, loss) == _report.BUILTIN_CONTENTS


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_script_is_the_scenario_source_and_imports_no_repro(name, mode):
    from repro._jax import _problems, _scenarios

    script = script_for_scenario(name, mode)
    compile(script, "script.py", "exec")
    assert script_imports(script) <= ALLOWED_IMPORTS, script_imports(script)
    assert "repro" not in script_imports(script)
    # The same implementation, verbatim from the source, not a copy.
    assert inspect.getsource(getattr(_scenarios, name)) in script + "\n"
    assert inspect.getsource(_problems.mlp_problem) in script + "\n"
    defined = {n.name for n in ast.parse(script).body if isinstance(n, ast.FunctionDef)}
    assert defined & set(SCENARIOS) == {name}, "only the one scenario"
    # The harness's own loop, reference and oracle, verbatim; each definition once.
    from repro._catalogue import Budget
    from repro._jax import _oracle

    for function in (_scenarios.solve, _scenarios.iterations, _scenarios.reference, _oracle.compare,
                     _oracle.deviations, _oracle.tolerance, _oracle.nudge):
        assert inspect.getsource(function) in script + "\n", function.__name__
    names = [n.name for n in ast.parse(script).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert len(names) == len(set(names)), names
    budget = Budget()
    assert (f"solve({name}, model, loss, jit={mode == 'jit'}, max_steps={budget.max_steps}, "
            f"loss_tol={budget.loss_tol!r}, grad_tol={budget.grad_tol!r}") in script
    assert f"reference(linesearch={name != 'seed_fix_no_linesearch'})" in script
    assert 'if __name__ == "__main__":' in script


def test_script_for_a_custom_module_runs_and_is_reported(tmp_path):
    """What a Hypothesis counterexample would use: its own module source + one scenario."""
    source = (
        "key = jax.random.PRNGKey(1)\n"
        "model = eqx.nn.MLP(2, 1, 4, 1, key=key)\n"
        "x = jnp.ones((3, 2))\n\n\n"
        "def module_loss(m):\n"
        "    return jnp.mean(jax.vmap(m)(x) ** 2)\n"
    )
    import repro  # the public names the README shows

    script = repro.reproducer("init_unfiltered", "eager", problem_source=source,
                              problem_expr="(model, module_loss, None)", note="A generated module.")
    assert "mlp_problem" not in script and "A generated module." in script
    report = repro.report(script=script, summary="generated module")
    assert isinstance(report, repro.Report)
    assert report.outcome.status == "error", report.run.output
    assert report.outcome.exc_type == "AttributeError" and report.outcome.phase == "init"
    assert report.verdict == "UNKNOWN"  # no scenario/mode given: nothing to compare with
    check_structure(report.markdown())
    assert script_from(report.markdown()) == script


# --- PEP 723: the reproducer pins what it ran with ----------------------------------------

# The reference implementation of PEP 723 (inline script metadata), as the specification gives it.
PEP723_REGEX = r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"


def pep723(script):
    """The script's `script` metadata block as TOML data, or None: the specification's reader."""
    matches = [m for m in re.finditer(PEP723_REGEX, script) if m.group("type") == "script"]
    assert len(matches) <= 1, "multiple script blocks"
    if not matches:
        return None
    content = "".join(line[2:] if line.startswith("# ") else line[1:]
                      for line in matches[0].group("content").splitlines(keepends=True))
    return tomllib.loads(content)


def test_every_reproducer_has_a_pep723_block_with_exact_pins():
    versions = {"python": "3.11.7", "jax": "0.4.30", "jaxlib": "0.4.30", "optax": "0.2.3", "equinox": "0.11.4",
                "numpy": "1.26.4", "platform": "linux-x86_64"}
    script = script_for_scenario("no_params", "jit", versions=versions)
    assert script.startswith("# /// script\n")
    assert pep723(script) == {"requires-python": "==3.11.7", "dependencies": [
        "jax==0.4.30", "jaxlib==0.4.30", "optax==0.2.3", "equinox==0.11.4", "numpy==1.26.4"]}
    compile(script, SCRIPT_NAME, "exec")  # still a plain Python script
    here = installed_versions()  # by default: this interpreter's versions (this cell's)
    assert pep723(script_for_scenario("seed_fix"))["dependencies"] == [
        f"{name}=={here[name]}" for name in ("jax", "jaxlib", "optax", "equinox", "numpy")]
    assert pep723(script_for_scenario("seed_fix"))["requires-python"] == f"=={here['python']}"
    unknown = pep723(script_for_scenario("seed_fix", versions={"python": "3.12.1", "jax": "0.6.2"}))
    assert unknown["dependencies"] == ["jax==0.6.2", "jaxlib", "optax", "equinox", "numpy"]  # not installed: unpinned


@pytest.mark.slow
def test_uv_run_of_a_reported_script_recreates_its_env_and_its_outcome(tmp_path):
    """`uv run lbfgs_equinox_repro.py` builds the pinned env from the script alone and fails as
    the report states. A scenario that fails at init keeps this cheap."""
    import repro

    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (./go installs it)")
    report = repro.report("init_unfiltered", "jit")
    env = report.env
    assert pep723(report.script)["dependencies"] == [f"{n}=={env[n]}" for n in ("jax", "jaxlib", "optax", "equinox",
                                                                                 "numpy")]
    assert f"jax:    {env['jax']}" in env["jax_environment_info"]  # jax.print_environment_info()'s text
    assert "`jax.print_environment_info()`:" in report.markdown()
    assert env["jax_environment_info"].strip().splitlines()[0] in report.markdown()
    path = tmp_path / SCRIPT_NAME
    path.write_text(report.script)
    proc = subprocess.run([uv, "run", "--quiet", "--no-project", SCRIPT_NAME], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    output = proc.stdout + proc.stderr
    assert output.startswith(f"jax {env['jax']} | optax {env['optax']} | equinox {env['equinox']}\n"), output
    again = outcome_from_run(Run(proc.returncode, output, 0.0), report.script, scenario="init_unfiltered", mode="jit",
                             versions=installed_versions(), contents=dict(BUILTIN_CONTENTS))
    assert report.outcome.status == "error"
    assert again.signature() == report.outcome.signature(), output


# --- Reading output back -------------------------------------------------------------------

FAKE = '''jax 1 | optax 2 | equinox 3
Traceback (most recent call last):
  File "/tmp/d/lbfgs_equinox_repro.py", line 9, in <module>
    model, opt_state = step(model, opt_state)
  File "/site-packages/equinox/_jit.py", line 209, in __call__
    return _call(self, False, args, kwargs)
  File "/site-packages/jax/_src/pjit.py", line 257, in cache_miss
    p, args_flat = _infer_params(fun, jit_info, args, kwargs)
  File "/usr/lib/python3.11/contextlib.py", line 81, in inner
    return func(*args, **kwds)
  File "/tmp/d/lbfgs_equinox_repro.py", line 5, in step
    updates, opt_state = optim.update(grads, opt_state)
  File "/site-packages/optax/_src/transform.py", line 1742, in update_fn
    diff_params = optax.tree.sub(params, state.params)
  File "/site-packages/jax/_src/tree_util.py", line 398, in tree_map
    raise ValueError("x")
ValueError: Expected None, got MLP(
  layers=(...),
)
'''
FAKE_SCRIPT = "\n".join(["import contextlib", "", "", "def step():", "    with phase('update'):",
                         "        pass", "", "", "x = 1"]) + "\n"


@pytest.mark.host
def test_parse_traceback_and_phase():
    parsed = parse_traceback(FAKE)
    assert parsed.exc_type == "ValueError" and parsed.message.startswith("Expected None, got MLP(")
    assert [f.line for f in parsed.frames] == [9, 209, 257, 81, 5, 1742, 398]
    assert phase_of(parsed, FAKE_SCRIPT) == "update"
    outcome = outcome_from_run(Run(1, FAKE, 0.1), FAKE_SCRIPT, scenario="no_params", mode="jit",
                               versions={}, contents={})
    assert outcome.signature() == "ValueError:expected_none@update[jax]"
    assert outcome.message == "Expected None, got MLP("


@pytest.mark.host
def test_trim_keeps_script_optax_and_raising_frames():
    trimmed = trim_traceback(FAKE)
    assert trimmed.splitlines()[0] == "jax 1 | optax 2 | equinox 3"
    assert "_jit.py" not in trimmed and "pjit.py" not in trimmed and "contextlib" not in trimmed
    assert "... 3 frames hidden ..." in trimmed
    for kept in ("line 9, in <module>", "line 5, in step", "optax/_src/transform.py", "tree_util.py"):
        assert kept in trimmed
    assert trimmed.rstrip().endswith(")")  # the whole message


@pytest.mark.host
def test_convergence_lines_and_exit_codes():
    ok = outcome_from_run(Run(0, "jax 1\nconverged in 12 steps: loss 1 -> 0, grad norm 1e-05\n", 1.0), "",
                          scenario="partition_fix", mode="jit", versions={}, contents={})
    assert (ok.status, ok.iterations) == ("converged", 12)
    bad = outcome_from_run(Run(0, "did NOT converge in 50 steps: loss 1 -> 2\n", 1.0), "",
                           scenario="x", mode="jit", versions={}, contents={})
    assert (bad.status, bad.family) == ("not_converged", None)  # a status, not a message family
    assert outcome_from_run(Run(None, "", 9.0), "", scenario="x", mode="jit", versions={},
                            contents={}).status == "timeout"
    assert outcome_from_run(Run(-11, "Fatal Python error", 1.0), "", scenario="x", mode="jit", versions={},
                            contents={}).status == "crash"


@pytest.mark.host
def test_fence_survives_backticks():
    text = "a ``` b ```` c"
    block = fence(text, "python")
    assert block.startswith("`````python\n") and block.endswith("\n`````")


# --- End to end: every scenario, the script alone shows what the report states -----------------

CASES = [(name, "jit") for name in SCENARIOS] + [("no_params", "eager")]


@pytest.mark.slow
@pytest.mark.parametrize("name, mode", CASES)
def test_report_script_reproduces_what_the_report_states(run_cli, tmp_path, name, mode):
    out = tmp_path / "report.md"
    proc = run_cli("report", "--scenario", name, "--mode", mode, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    markdown = out.read_text()
    check_structure(markdown)
    progress = proc.stderr.splitlines()  # the environment read, the script's outcome, the file written
    assert re.fullmatch(r"\[1/2\] environment: python \S+  jax \S+  jaxlib \S+  optax \S+  equinox \S+ [\d.]+ s",
                        progress[0]), progress
    assert progress[1].startswith(f"[2/2] {SCRIPT_NAME} {name} {mode}: ") and progress[1].endswith(" s"), progress
    assert verdict_of(markdown) in progress[1] and progress[2].startswith(f"wrote {out}: ") and len(progress) == 3
    script = script_from(markdown)
    assert script == script_for_scenario(name, mode)
    assert "repro" not in script_imports(script)
    status, exc_type, family = stated(markdown)

    # The report shows the script's real output: its exception line is in the full output block.
    full = [text for info, text in blocks(markdown) if text.startswith("jax ")]
    assert full, "the script's own first line is in the output blocks"
    if status == "error":
        assert exc_type in markdown.splitlines()[0]
        assert any(re.search(rf"^{exc_type}\b", text, re.M) for text in full)
    else:  # the convergence line, then the oracle's: it matched the flat-vector reference
        assert any(text.rstrip().splitlines()[-2].startswith(("converged", "did NOT")) for text in full)
        assert any(text.rstrip().splitlines()[-1].startswith("matches the flat-vector reference") for text in full)

    # Run the extracted script alone, in a fresh process: same outcome.
    run = run_script(script)
    again = outcome_from_run(run, script, scenario=name, mode=mode, versions=installed_versions(), contents={})
    if status == "error":
        assert (again.status, again.exc_type, again.family) == ("error", exc_type, family), run.output
        assert "Traceback (most recent call last):" in run.output
    else:
        assert again.status == status, run.output

    # And the stated outcome agrees with the measured expectations when there are some.
    expected = expectation_for(name, mode, installed_versions(), BUILTIN_CONTENTS).expected
    verdict = verdict_of(markdown)
    if expected is None:
        assert verdict == "UNKNOWN"
    else:
        assert verdict == str(classify(expected, again))
        assert classify(expected, again) in AS_EXPECTED, (expected, again.signature())


@pytest.mark.slow
def test_json_format(run_cli, tmp_path):
    out = tmp_path / "report.json"
    proc = run_cli("report", "--scenario", "seed_fix", "--mode", "jit", "--format", "json", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["scenario"] == "seed_fix" and data["script"] == script_for_scenario("seed_fix", "jit")
    assert data["outcome"]["status"] == "error" and data["outcome"]["exc_type"] in data["title"]
    assert data["markdown"].startswith("# " + data["title"])
    assert {"python", "jax", "jaxlib", "optax", "equinox", "numpy", "devices"} <= set(data["environment"])
    assert data["output"].rstrip().splitlines()[-1].startswith(data["outcome"]["exc_type"])


# --- Bad input ---------------------------------------------------------------------------------


@pytest.mark.host
@pytest.mark.parametrize("args, words", [
    (("--scenario", "nope"), "unknown scenario 'nope'"),
    ((), "--scenario"),
    (("--scenario", "no_params", "--mode", "fast"), "invalid choice"),
    (("--scenario", "no_params", "--format", "html"), "invalid choice"),
    (("--scenario", "no_params", "--output", "/nonexistent/dir/r.md"), "cannot write"),
    (("--scenario", "no_params", "--output", "/"), "cannot write"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, words):
    proc = run_cli("report", *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.host
def test_script_for_unknown_scenario_is_a_usage_error():
    import repro
    from repro._catalogue import UsageError

    with pytest.raises(UsageError):
        script_for_scenario("nope")
    with pytest.raises(UsageError):
        script_for_scenario("no_params", "fast")
    with pytest.raises(UsageError):
        repro.report("nope")
    with pytest.raises(UsageError):
        repro.report()  # neither a scenario nor a script


@pytest.mark.host
def test_cli_lists_report():
    from repro._cli import COMMANDS

    assert "report" in COMMANDS
    assert subprocess.run([sys.executable, "-c", "import repro._report"], capture_output=True).returncode == 0
