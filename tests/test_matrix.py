"""The version matrix table, the per-cell runner, the aggregated report and the CI workflow."""

import copy
import json
import os
import re
import subprocess
import sys

import pytest
from packaging.version import Version

from repro import _aggregate
from repro._cells import CellResult, run_cell
from repro._errors import UsageError
from repro._matrix import BY_ID, CELLS, RESULTS, TAGS, cells_tagged
from repro._options import run_options
from repro._outcome import AS_EXPECTED, Verdict
from repro._results import as_expected

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOW = os.path.join(ROOT, ".github", "workflows", "matrix.yml")
TESTS_WORKFLOW = os.path.join(ROOT, ".github", "workflows", "tests.yml")
SURVEY_WORKFLOW = os.path.join(ROOT, ".github", "workflows", "survey.yml")
PROBLEM_WORKFLOW = os.path.join(ROOT, ".github", "workflows", "problem-matrix.yml")  # reusable: a caller's problem
DEPENDABOT = os.path.join(ROOT, ".github", "dependabot.yml")

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host



# --- the table -----------------------------------------------------------------------------

def test_cell_ids_are_unique_readable_and_tags_known():
    ids = [c.id for c in CELLS]
    assert len(ids) == len(set(ids))
    for cell in CELLS:
        assert re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", cell.id), cell.id
        assert cell.tags and set(cell.tags) <= set(TAGS), (cell.id, cell.tags)
        assert re.fullmatch(r"3\.\d+", cell.python), cell.python


def test_default_matrix_covers_what_the_issue_asks():
    default = cells_tagged("default")
    assert len(default) >= 8
    assert {c.pins["optax"] for c in default} >= {"0.2.3", "0.2.4", "0.2.5", "0.2.6", "0.2.7", "0.2.8"}
    assert {c.python for c in default} >= {"3.11", "3.12", "3.13"}
    assert {c.id for c in cells_tagged("ci")} <= {c.id for c in default} and len(cells_tagged("ci")) == 2
    assert [c.pins["optax"] for c in cells_tagged("floor")] == ["0.2.3"]  # the first Optax with lbfgs
    for cell in default:
        assert set(cell.pins) >= {"jax", "optax", "equinox"}, cell.id
        assert all(re.fullmatch(r"\d+(\.\d+)+", v) for v in cell.pins.values()), cell.id  # exact pins


def test_special_cells_are_tagged_out_of_the_default_run():
    latest = cells_tagged("latest")
    assert len(latest) == 1 and latest[0].pins == {} and "default" not in latest[0].tags
    assert latest[0].requirements() == ["jax", "jaxlib", "optax", "equinox"]
    for tag in ("crash", "broken", "missing"):
        cells = cells_tagged(tag)
        assert cells and all("default" not in c.tags and "demo" in c.tags for c in cells), tag
    assert BY_ID["crash-jax070-eqx0130"].pins["jax"] == "0.7.0"
    assert BY_ID["crash-jax070-eqx0130"].pins["equinox"] == "0.13.0"


def test_default_cells_respect_the_measured_install_constraints():
    for cell in cells_tagged("default"):
        jax, eqx = Version(cell.pins["jax"]), Version(cell.pins["equinox"])
        if eqx >= Version("0.11.11"):
            assert jax >= Version("0.4.38"), cell.id
        if eqx >= Version("0.13.1"):
            assert not Version("0.7.0") <= jax < Version("0.7.2"), cell.id
        if jax >= Version("0.11"):
            assert Version(cell.python) >= Version("3.12"), cell.id
        assert cell.pins.get("jaxlib", cell.pins["jax"]) == cell.pins["jax"], cell.id


def test_nox_lists_one_repro_session_per_cell_with_its_tags():
    proc = subprocess.run([sys.executable, "-m", "nox", "--list", "--json", "-s", "repro", "tests", "matrix"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    sessions = {s["session"]: s for s in json.loads(proc.stdout)}
    for cell in CELLS:
        assert sessions[f"repro({cell.id})"]["tags"] == list(cell.tags)
    assert {name for name in sessions if name.startswith("tests(")} == {f"tests({c.id})" for c in cells_tagged("ci")}
    assert "default" in sessions["matrix"]["tags"]


# --- the cell runner: every failure leaves a result ------------------------------------------

def _read(path):
    with open(path) as f:
        return json.load(f)


def _run(cell, *args, **kw):
    return run_cell(cell, run_options(args), log=lambda m: None, **kw)


def test_missing_interpreter_cell_is_recorded_skipped(tmp_path):
    from repro._envs import find_interpreter

    cell = BY_ID["missing-py314"]
    if find_interpreter(cell.python) is not None:
        pytest.skip(f"this machine has Python {cell.python}")
    record = _run(cell, results=str(tmp_path), env_root=str(tmp_path / "envs"))
    assert record.status == "skipped" and "no Python 3.14" in record.reason
    assert _read(tmp_path / "cells" / "missing-py314.json") == record.to_dict()


def test_cell_records_round_trip_and_old_files_still_load():
    from repro._cells import EnvInfo

    cell = BY_ID["floor-py311"]
    record = CellResult(cell, "ok", versions={"python": "3.11.7", **cell.pins}, results=[_result("no_params", "jit",
                        "REPRODUCED")], as_expected=True, args=["--mode", "jit"], started="2025-01-01T00:00:00+00:00",
                        finished="2025-01-01T00:01:00+00:00", seconds=60.0, env=EnvInfo("uv", 3.0, False),
                        packages={"numpy": "2.4.6"})
    assert CellResult.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert set(record.to_dict()) == {"schema", "cell", "status", "reason", "versions", "results", "as_expected",
                                     "finished", "args", "started", "env", "seconds", "packages"}
    old = {"schema": 1, "cell": cell.to_dict(), "status": "skipped", "reason": "no Python", "versions": {},
           "results": [], "as_expected": False, "finished": "2025-01-01T00:00:00+00:00"}  # no env/args/seconds/packages
    loaded = CellResult.from_dict(old)
    assert (loaded.cell, loaded.status, loaded.reason, loaded.env.backend) == (cell, "skipped", "no Python", None)
    with pytest.raises(ValueError):
        CellResult.from_dict({"cell": cell.to_dict()})


@pytest.mark.slow
def test_unresolvable_pins_are_reported_with_the_resolver_message(tmp_path):
    """equinox 0.13.8 needs jax >= 0.4.38: the real resolver refuses jax 0.4.30."""
    cell = BY_ID["broken-jax0430-eqx0138"]
    record = _run(cell, results=str(tmp_path), env_root=str(tmp_path / "envs"))
    assert record.status == "unresolvable", record
    assert "equinox" in record.reason and "0.4.30" in record.reason
    assert re.search(r"unsatisfiable|ResolutionImpossible|conflict", record.reason), record.reason
    assert record.env.backend == "uv"
    assert _read(tmp_path / "cells" / f"{cell.id}.json")["status"] == "unresolvable"


@pytest.mark.slow
def test_crash_keeps_the_results_before_it_and_a_hang_is_a_timeout(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    import io

    from repro._progress import Progress

    cell, lines = BY_ID["newest-py311"], io.StringIO()
    record = _run(cell, "--scenario", "no_params", "--scenario", "_crash", "--mode", "jit", "--jobs", "1",
                  results=str(tmp_path), python=sys.executable, progress=Progress(2, stream=lines))
    assert record.status == "ok" and not record.as_expected
    progress = lines.getvalue().splitlines()  # a line per finished scenario, as the cell ran them
    assert [line.split(" s")[0].rsplit(" ", 1)[0] for line in progress] == [
        f"[1/2] no_params jit {record.results[0]['verdict']}", "[2/2] _crash jit CRASH"], progress
    by_name = {r["scenario"]: r for r in record.results}
    assert by_name["no_params"]["outcome"]["status"] == "error"  # measured before the crash, kept
    assert by_name["_crash"]["verdict"] == "CRASH"
    assert "SIGSEGV" in by_name["_crash"]["outcome"]["message"]
    assert record.versions["jax"]
    assert record.args == ["--scenario", "no_params", "--scenario", "_crash", "--mode", "jit", "--jobs", "1"]

    hang = _run(BY_ID["floor-py311"], "--scenario", "_hang", "--mode", "jit", "--timeout", "2",
                results=str(tmp_path), python=sys.executable)
    assert [r["verdict"] for r in hang.results] == ["TIMEOUT"]

    matrix = _aggregate.aggregate(str(tmp_path))
    rows = {r["cell"]: r for r in matrix["cells"]}
    assert rows["newest-py311"]["verdicts"] == {"no_params/jit": by_name["no_params"]["verdict"],
                                                "_crash/jit": "CRASH"}
    assert rows["floor-py311"]["verdicts"] == {"_hang/jit": "TIMEOUT"}


def test_env_that_cannot_import_jax_is_import_failed(tmp_path, monkeypatch):
    """A real env without JAX: a venv of this interpreter's Python that sees only repro itself."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    (site,) = bare.glob("lib/python*/site-packages")
    (site / "repro.pth").write_text(ROOT + "\n")
    python = str(bare / "bin" / "python")
    assert subprocess.run([python, "-c", "import repro._jax._child"], capture_output=True).returncode == 0
    assert subprocess.run([python, "-c", "import jax"], capture_output=True).returncode != 0
    monkeypatch.chdir(ROOT)
    record = _run(BY_ID["newest-py311"], "--scenario", "no_params", "--mode", "jit", results=str(tmp_path),
                  python=python)
    assert record.status == "import-failed", record
    assert "No module named" in record.reason
    assert [r["verdict"] for r in record.results] == ["CRASH"]  # what the child did is kept
    assert _read(tmp_path / "cells" / "newest-py311.json")["status"] == "import-failed"


def test_bad_arguments_after_the_double_dash_stop_the_session_before_anything_is_written():
    cell_file = os.path.join(ROOT, RESULTS, "cells", "floor-py311.json")
    before = os.stat(cell_file).st_mtime_ns if os.path.exists(cell_file) else None
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "repro(floor-py311)", "--", "--scenario", "nope"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode != 0
    assert "bad arguments after --: unknown scenario 'nope'" in proc.stderr, proc.stderr
    assert "env floor-py311" not in proc.stderr  # no env was prepared
    after = os.stat(cell_file).st_mtime_ns if os.path.exists(cell_file) else None
    assert after == before  # the cell's result file was neither written nor touched
    with pytest.raises(UsageError):
        run_options(["--scenario", "nope"])


# --- aggregation from constructed cell results -----------------------------------------------

def _result(scenario, mode, verdict, status="error"):
    return {"scenario": scenario, "mode": mode, "expected": "converges", "observed": status, "verdict": verdict,
            "signature": status, "outcome": {"status": status, "message": f"{scenario} said so"}}


def _cell(cell_id, status, results=(), reason="", as_expected=False):
    cell = BY_ID[cell_id]
    return {"schema": 1, "cell": cell.to_dict(), "status": status, "reason": reason,
            "versions": {"python": "3.11.7", **cell.pins} if status == "ok" else {},
            "results": list(results), "as_expected": as_expected}


@pytest.fixture
def constructed(tmp_path):
    cells = tmp_path / "cells"
    cells.mkdir()
    records = {
        "floor-py311": _cell("floor-py311", "ok", [_result("no_params", "jit", "REPRODUCED"),
                                                   _result("partition_fix", "jit", "WORKAROUND-OK", "converged")],
                             as_expected=True),
        "crash-jax070-eqx0130": _cell("crash-jax070-eqx0130", "ok", [
            _result("no_params", "jit", "REPRODUCED"),  # before the crash: kept
            _result("init_unfiltered", "jit", "CRASH", "crash")]),
        "broken-jax0430-eqx0138": _cell("broken-jax0430-eqx0138", "unresolvable",
                                        reason="No solution found when resolving dependencies:\n"
                                               "  equinox==0.13.8 depends on jax>=0.4.38 | unsatisfiable"),
        "missing-py314": _cell("missing-py314", "skipped", reason="no Python 3.14 interpreter on this machine"),
        "newest-py312": _cell("newest-py312", "incomplete", reason="the run was interrupted before it finished"),
    }
    for cell_id, record in records.items():
        (cells / f"{cell_id}.json").write_text(json.dumps(record))
    (cells / "newest-py313.json").write_text('{"schema": 1, "cell": {"id": "newest-py3')  # truncated
    return tmp_path, records


def test_aggregation_reports_every_cell_with_its_reason(constructed):
    folder, _ = constructed
    matrix = _aggregate.aggregate(str(folder))
    rows = {r["cell"]: r for r in matrix["cells"]}
    assert [r["cell"] for r in matrix["cells"]][:2] == ["floor-py311", "newest-py312"]  # matrix order
    assert {c: r["status"] for c, r in rows.items()} == {
        "floor-py311": "ok", "crash-jax070-eqx0130": "ok", "broken-jax0430-eqx0138": "unresolvable",
        "missing-py314": "skipped", "newest-py312": "incomplete", "newest-py313": "unreadable"}
    assert rows["crash-jax070-eqx0130"]["verdicts"] == {"no_params/jit": "REPRODUCED", "init_unfiltered/jit": "CRASH"}
    assert [r["scenario"] for r in rows["crash-jax070-eqx0130"]["not_as_expected"]] == ["init_unfiltered"]
    assert rows["floor-py311"]["as_expected"] and not matrix["all_as_expected"]
    assert matrix["columns"] == ["no_params/jit", "init_unfiltered/jit", "partition_fix/jit"]
    assert _read(folder / "matrix.json") == matrix

    md = (folder / "matrix.md").read_text()
    assert "| broken-jax0430-eqx0138 | broken demo | UNRESOLVABLE |" in md
    assert "equinox==0.13.8 depends on jax>=0.4.38 \\| unsatisfiable" in md  # reason kept, table not broken
    assert "**missing-py314** SKIPPED: no Python 3.14 interpreter" in md
    assert "**newest-py313** UNREADABLE" in md
    assert "| crash-jax070-eqx0130 | REPRO | CRASH | · |" in md
    assert "| floor-py311 | REPRO | · | WA-OK |" in md
    for line in md.splitlines():
        if line.startswith("| ") and "---" not in line:
            assert line.count(" | ") in (9, 3), line  # every row has its table's column count


def test_rerunning_one_cell_updates_only_its_row(constructed):
    folder, records = constructed
    before = _aggregate.aggregate(str(folder))
    md_before = (folder / "matrix.md").read_text().splitlines()

    rerun = copy.deepcopy(records["crash-jax070-eqx0130"])
    rerun["results"][1] = _result("init_unfiltered", "jit", "REPRODUCED")
    rerun["as_expected"] = True
    from repro._files import write_json_atomic

    write_json_atomic(str(folder / "cells" / "crash-jax070-eqx0130.json"), rerun)
    after = _aggregate.aggregate(str(folder))

    changed = [b["cell"] for b, a in zip(before["cells"], after["cells"]) if a != b]
    assert changed == ["crash-jax070-eqx0130"]
    assert {r["cell"]: r for r in after["cells"]}["crash-jax070-eqx0130"]["as_expected"]
    md_after = (folder / "matrix.md").read_text().splitlines()
    differing = {line for line in set(md_before) ^ set(md_after) if not line.startswith("6 cells (")}
    assert differing and all("crash-jax070-eqx0130" in line for line in differing), differing
    assert md_after[2].startswith("6 cells (2 default): 2 with every verdict as expected")  # the count moved
    assert sorted(os.listdir(folder)) == ["cells", "heatmap.md", "matrix.json", "matrix.md"]  # no temp files left


def test_the_heat_map_is_one_glyph_per_verdict_with_a_legend(constructed, run_cli):
    folder, _ = constructed
    matrix = _aggregate.aggregate(str(folder))
    heat = (folder / "heatmap.md").read_text()
    assert heat == _aggregate.render_heatmap(matrix)
    # One jit strip, left to right: no_params, init_unfiltered, partition_fix (the legend says so).
    assert "Each jit strip, left to right: no_params, init_unfiltered, partition_fix." in heat
    assert "| floor-py311 | 🟦⬛🟩 | 2/2 |" in heat  # REPRODUCED, not run, WORKAROUND-OK
    assert "| crash-jax070-eqx0130 | 🟦💥⬛ | 1/2 |" in heat
    assert "| broken-jax0430-eqx0138 | ⛔ unresolvable | - |" in heat
    assert "| missing-py314 | ➖ skipped | - |" in heat and "| newest-py313 | ❓ unreadable | - |" in heat
    for verdict in Verdict:
        assert f"{verdict.glyph} {verdict.value}" in heat  # the legend
    for line in heat.splitlines():
        if line.startswith("| ") and "---" not in line:
            assert line.count(" | ") == 2, line  # cell, one strip per mode, as expected
    proc = run_cli("matrix", "--results", str(folder), "--heatmap")
    assert proc.returncode == 1 and proc.stdout == heat + "\n"


def test_repro_matrix_cli_exit_codes(constructed, tmp_path_factory, run_cli):
    folder, _ = constructed
    proc = run_cli("matrix", "--results", str(folder))
    assert proc.returncode == 1 and "UNRESOLVABLE" in proc.stdout
    ok = tmp_path_factory.mktemp("ok")
    (ok / "cells").mkdir()
    (ok / "cells" / "floor-py311.json").write_text((folder / "cells" / "floor-py311.json").read_text())
    assert run_cli("matrix", "--results", str(ok), "--quiet").returncode == 0
    empty = tmp_path_factory.mktemp("empty")
    proc = run_cli("matrix", "--results", str(empty))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


# --- the GitHub Actions workflow --------------------------------------------------------------

def _check_workflow(path, schema="vendor.github-workflows"):
    """check-jsonschema against its vendored copy of a schema (no network)."""
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)


def _workflows():
    folder = os.path.join(ROOT, ".github", "workflows")
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith((".yml", ".yaml")))


def test_workflow_passes_the_github_workflow_schema(tmp_path):
    assert _workflows() == sorted([WORKFLOW, TESTS_WORKFLOW, SURVEY_WORKFLOW, PROBLEM_WORKFLOW])
    for path in _workflows():
        proc = _check_workflow(path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = tmp_path / "broken.yml"  # the same check rejects a malformed workflow
    broken.write_text(open(WORKFLOW).read().replace("contents: read", "contents: sometimes"))
    assert _check_workflow(broken).returncode != 0


def test_dependabot_keeps_the_actions_current_and_passes_its_schema(tmp_path):
    from ruamel.yaml import YAML

    proc = _check_workflow(DEPENDABOT, "vendor.dependabot")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    updates = YAML(typ="safe").load(open(DEPENDABOT))["updates"]
    assert [(u["package-ecosystem"], u["directory"]) for u in updates] == [("github-actions", "/")]
    broken = tmp_path / "dependabot.yml"
    broken.write_text(open(DEPENDABOT).read().replace("interval: weekly", "interval: whenever"))
    assert _check_workflow(broken, "vendor.dependabot").returncode != 0


def test_every_action_is_pinned_by_commit_sha_with_its_version_beside_it():
    uses = []
    for path in _workflows():
        for number, line in enumerate(open(path), 1):
            if re.match(r"^\s*-?\s*uses:", line):
                uses.append((os.path.basename(path), number, line.strip()))
    assert uses
    for name, number, line in uses:
        assert re.fullmatch(r"(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40}  # v\d+(\.\d+){2}", line), (name, number, line)
    assert any("astral-sh/setup-uv@" in line for _, _, line in uses)
    for path in _workflows():  # uv from the official action (with its cache), never pip-installed
        text = open(path).read()
        assert "pip install uv" not in text and '"uv>=' not in text, path


def test_the_tests_workflow_runs_the_readme_test_command_on_push_and_pull_request():
    from ruamel.yaml import YAML

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    setup = readme[readme.index("## Set-up"):]
    commands = re.findall(r"^(\./go \w+)\s", setup[setup.index("```bash"):setup.index("```", setup.index("```bash") + 3)], re.M)
    assert commands == ["./go repro", "./go test"]
    doc = YAML(typ="safe").load(open(TESTS_WORKFLOW))
    assert {"push", "pull_request", "schedule"} <= set(doc["on"]) and doc["permissions"] == {"contents": "read"}
    steps = doc["jobs"]["tests"]["steps"]
    assert [s["run"] for s in steps if "run" in s] == ["./go test"]
    setup_uv = next(s for s in steps if s.get("uses", "").startswith("astral-sh/setup-uv@"))
    assert setup_uv["with"]["enable-cache"] is True
    assert [s["run"] for s in doc["jobs"]["nightly"]["steps"] if "run" in s] == ["./go nightly"]
    assert "schedule" in doc["jobs"]["nightly"]["if"] and "schedule" in doc["jobs"]["tests"]["if"]
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert "./go test" in f.read()  # CI here runs the same command


def test_workflow_fans_out_the_nox_cells_and_aggregates():
    from ruamel.yaml import YAML  # declared in the `test` extra

    doc = YAML(typ="safe").load(open(WORKFLOW))
    assert doc["permissions"] == {"contents": "read"}
    jobs = doc["jobs"]
    assert "nox --list --json -t" in "".join(s.get("run", "") for s in jobs["list"]["steps"])
    assert jobs["cell"]["strategy"]["fail-fast"] is False
    assert "fromJSON(needs.list.outputs.sessions)" in jobs["cell"]["strategy"]["matrix"]["session"]
    uploads = [s for s in jobs["cell"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "${{ always() }}"
    assert jobs["aggregate"]["needs"] == "cell" and "always()" in jobs["aggregate"]["if"]
    aggregate = "".join(s.get("run", "") for s in jobs["aggregate"]["steps"])
    assert "repro matrix" in aggregate
    assert 'cat results/heatmap.md results/matrix.md >> "$GITHUB_STEP_SUMMARY"' in aggregate  # the picture first


def test_every_verdict_has_a_distinct_short_form_and_a_meaning():
    """The matrix's wide table and legend and the report's verdict line read these off Verdict."""
    shorts = [v.short for v in Verdict]
    assert len(set(shorts)) == len(shorts) and all(len(s) <= 8 for s in shorts), shorts
    glyphs = [v.glyph for v in Verdict] + list(_aggregate.STATUS_GLYPH.values()) + [_aggregate.NOT_RUN_GLYPH]
    assert len(set(glyphs)) == len(glyphs), glyphs  # the heat map tells every verdict and status apart
    assert all(v.meaning.endswith(".") for v in Verdict)
    assert {v for v in Verdict if v.short == v.value} >= {Verdict.CRASH, Verdict.TIMEOUT}
    assert AS_EXPECTED == {v for v in Verdict if as_expected(v.value)}


def test_an_env_is_rebuilt_when_the_bytecode_hook_or_the_test_extra_changes(monkeypatch):
    from repro import _envs

    args = ("/usr/bin/python3.11", ["jax==0.4.30"])
    kw = dict(backend="uv", project=True, extras=["test"], exclude_newer=None)
    key = _envs.env_key(*args, **kw)
    assert _envs.env_key(*args, **kw) == key
    monkeypatch.setattr(_envs, "BYTECODE_HOOK", "")  # an env stamped before the hook existed
    assert _envs.env_key(*args, **kw) != key
    monkeypatch.undo()
    facts = _envs.project_facts(["test"])
    assert any(req.startswith("pytest") for req in facts["test"])  # read from pyproject.toml, not copied
    monkeypatch.setattr(_envs, "project_facts", lambda extras: {**facts, "test": facts["test"] + ["extra-dep"]})
    assert _envs.env_key(*args, **kw) != key


def _step(doc, job, name):
    return next(step for step in doc["jobs"][job]["steps"] if step.get("name") == name)


@pytest.mark.parametrize("args, expected", [
    ("--mode jit", ["--mode", "jit"]),
    ("", []),
    ("--output 'my results.json' --scenario *", ["--output", "my results.json", "--scenario", "*"]),
    ('--scenario "$(touch pwned)" $HOME', ["--scenario", "$(touch pwned)", "$HOME"]),
])
def test_the_args_input_reaches_nox_as_separate_literal_arguments(tmp_path, args, expected):
    """The cell job's `run` script, executed as Actions would (bash -eo pipefail) with a stand-in
    `nox` that records its arguments: quotes group, nothing is expanded or globbed."""
    from ruamel.yaml import YAML

    step = _step(YAML(typ="safe").load(open(WORKFLOW)), "cell", "verdict run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nox").write_text('#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n')
    (bin_dir / "nox").chmod(0o755)
    (tmp_path / "a-file").write_text("")  # something for `*` to glob, were it globbed
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path),
           "SESSION": "repro(floor-py311)", "ARGS": args}
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["-s", "repro(floor-py311)", "--", *expected]
    assert not (tmp_path / "pwned").exists()


def test_unbalanced_args_stop_the_cell_job_before_nox(tmp_path):
    from ruamel.yaml import YAML

    step = _step(YAML(typ="safe").load(open(WORKFLOW)), "cell", "verdict run")
    env = {**os.environ, "RUNNER_TEMP": str(tmp_path), "SESSION": "repro(floor-py311)", "ARGS": '--mode "jit',
           "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    (tmp_path / "nox").write_text("#!/bin/sh\necho nox-ran\n")
    (tmp_path / "nox").chmod(0o755)
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "nox-ran" not in proc.stdout
    assert "cannot split the args input" in proc.stdout + proc.stderr


# --- the reusable workflow: a downstream repository's problem file through the cells ------------

def _run_step(step, cwd, env, bin_dir=None):
    """A workflow step's `run` script as Actions runs it (bash -eo pipefail), `bin_dir` first on PATH."""
    path = f"{bin_dir}:{os.environ['PATH']}" if bin_dir else os.environ["PATH"]
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                          env={**os.environ, "PATH": path, **env}, capture_output=True, text=True, timeout=60)


def _stand_in(bin_dir, name, script):
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text("#!" + sys.executable + "\n" + script)
    (bin_dir / name).chmod(0o755)


def test_the_reusable_workflow_is_called_with_a_problem_file_and_reports_like_the_matrix():
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(open(PROBLEM_WORKFLOW))
    inputs = doc["on"]["workflow_call"]["inputs"]
    assert {name for name, spec in inputs.items() if spec.get("required")} == {
        "problem", "harness-repository", "harness-ref"}
    assert {"tag", "python-versions", "args", "python-path"} <= set(inputs)
    assert doc["permissions"] == {"contents": "read"}
    jobs = doc["jobs"]
    assert jobs["cell"]["strategy"]["fail-fast"] is False
    checkouts = [s for s in jobs["cell"]["steps"] if str(s.get("uses", "")).startswith("actions/checkout")]
    assert [c["with"]["path"] for c in checkouts] == ["project", "harness"]  # the caller's, then this harness
    assert checkouts[1]["with"]["repository"] == "${{ inputs.harness-repository }}"
    uploads = [s for s in jobs["cell"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "${{ always() }}"
    assert jobs["aggregate"]["needs"] == "cell" and "always()" in jobs["aggregate"]["if"]
    aggregate = _step(doc, "aggregate", "aggregate")["run"]
    assert "python -m repro matrix" in aggregate and "exit $status" in aggregate  # fails when not as expected
    assert 'cat results/heatmap.md results/matrix.md >> "$GITHUB_STEP_SUMMARY"' in aggregate


@pytest.mark.parametrize("pythons, expected", [
    ("", ["repro(floor-py311)", "repro(newest-py312)", "repro(newest-py313)"]),
    ("3.12 3.13", ["repro(newest-py312)", "repro(newest-py313)"]),
])
def test_the_reusable_workflow_lists_the_cells_of_a_tag_on_the_python_versions_asked(tmp_path, pythons, expected):
    from ruamel.yaml import YAML

    step = _step(YAML(typ="safe").load(open(PROBLEM_WORKFLOW)), "list", "cells")
    listed = [{"session": name, "name": "repro", "tags": ["default"]} for name in
              ("repro(floor-py311)", "repro(newest-py312)", "repro(newest-py313)")]
    listed.append({"session": "matrix", "name": "matrix", "tags": ["default"]})
    _stand_in(tmp_path / "bin", "nox", f"import sys; assert sys.argv[1:] == ['--list', '--json', '-t', 'default']\n"
                                       f"print({json.dumps(listed)!r})\n")
    output = tmp_path / "output"
    proc = _run_step(step, ROOT, {"TAG": "default", "PYTHONS": pythons, "RUNNER_TEMP": str(tmp_path),
                                  "GITHUB_OUTPUT": str(output)}, tmp_path / "bin")
    assert proc.returncode == 0, proc.stderr
    assert output.read_text() == f"sessions={json.dumps(expected)}\n"


def test_the_reusable_workflow_runs_the_callers_problem_file_with_its_folders_importable(tmp_path):
    from ruamel.yaml import YAML

    step = _step(YAML(typ="safe").load(open(PROBLEM_WORKFLOW)), "cell", "verdict run")
    project, harness = tmp_path / "project", tmp_path / "harness"
    (project / "checks").mkdir(parents=True)
    harness.mkdir()
    (project / "checks" / "lbfgs_problem.py").write_text("model = loss = None\n")
    _stand_in(tmp_path / "bin", "nox", "import json, os, sys\n"
                                       "print(json.dumps([sys.argv[1:], os.environ['PYTHONPATH']]))\n")
    env = {"GITHUB_WORKSPACE": str(tmp_path), "RUNNER_TEMP": str(tmp_path), "SESSION": "repro(floor-py311)",
           "PROBLEM": "checks/lbfgs_problem.py", "ARGS": "--mode jit --scenario 'partition_fix'",
           "PROJECT_PATH": ". src", "PYTHONPATH": ""}
    proc = _run_step(step, harness, env, tmp_path / "bin")
    assert proc.returncode == 0, proc.stderr
    argv, python_path = json.loads(proc.stdout)
    assert argv == ["-s", "repro(floor-py311)", "--", "--problem", f"{project}/checks/lbfgs_problem.py",
                    "--mode", "jit", "--scenario", "partition_fix"]
    assert python_path == f"{project}/.:{project}/src"

    proc = _run_step(step, harness, {**env, "PROBLEM": "checks/missing.py"}, tmp_path / "bin")
    assert proc.returncode != 0 and proc.stdout.startswith("::error::problem file checks/missing.py not found")
