"""The downstream example (examples/downstream/) as its users run it: this repository's wheel
installed with the newest cell's pins into a fresh venv outside the checkout, the example
project copied elsewhere, its pytest run there; and its workflow calling the reusable one."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from repro._envs import find_interpreter, uv_env
from repro._matrix import BY_ID

# Host-side checks: the venv is built here, whatever the cell's versions (first ci cell only).
pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "downstream")
CALLER = os.path.join(EXAMPLE, ".github", "workflows", "lbfgs.yml")
REUSABLE = os.path.join(ROOT, ".github", "workflows", "problem-matrix.yml")


def _clean_env():
    """This environment without what would let the checkout or this session's JAX cache in."""
    from conftest import SHARED_JAX_CACHE

    return {k: v for k, v in uv_env().items() if k not in SHARED_JAX_CACHE and k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def installed_harness(tmp_path_factory):
    """The python of a venv outside the checkout holding this repository's wheel (built now),
    the newest matrix cell's pins (resolved as of its date) and pytest: nothing else of ours."""
    root = tmp_path_factory.mktemp("installed-harness")
    cell = BY_ID["newest-py311"]
    run = lambda *cmd: subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), timeout=1800)
    built = run("uv", "build", "--wheel", "--out-dir", str(root / "dist"), ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("lbfgs_equinox_repro-*.whl")
    venv = root / "venv"
    made = run("uv", "venv", "-q", "--python", find_interpreter(cell.python), str(venv))
    assert made.returncode == 0, made.stderr
    python = str(venv / "bin" / "python")
    date = ["--exclude-newer", cell.exclude_newer] if cell.exclude_newer else []
    installed = run("uv", "pip", "install", "-q", "--python", python, str(wheel), *cell.requirements(), "pytest", *date)
    assert installed.returncode == 0, installed.stderr
    return python


@pytest.mark.slow
def test_the_example_project_passes_one_test_and_fails_the_other_with_the_verdict_table(installed_harness, tmp_path):
    project = tmp_path / "downstream"
    shutil.copytree(EXAMPLE, project)
    where = subprocess.run([installed_harness, "-c", "import json, repro, sys; print(json.dumps([repro.__file__, "
                            "sys.path]))"], cwd=project, capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert where.returncode == 0, where.stderr
    module, path = json.loads(where.stdout)
    venv = os.path.dirname(os.path.dirname(installed_harness))
    assert module.startswith(venv) and not any(entry.startswith(ROOT) for entry in path), (module, path)

    proc = subprocess.run([installed_harness, "-m", "pytest", "-p", "no:cacheprovider", "--trace-config"], cwd=project,
                          capture_output=True, text=True, env=_clean_env(), timeout=1800)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "1 failed, 1 passed" in out
    assert "FAILED tests/test_lbfgs.py::test_the_shared_workaround_works" in out
    plugins = out[out.index("active plugins:"):]
    plugin = next(line for line in plugins.splitlines() if line.strip().startswith("lbfgs_equinox_repro "))
    assert plugin.split(":", 1)[1].strip().startswith(venv), plugin  # by its entry point, from the wheel
    failure = out[out.index("_ test_the_shared_workaround_works _"):out.index("short test summary")]
    assert "call patterns this project uses that do not work here:" in failure
    assert "scenario  mode  expected" in failure and "seed_fix  jit" in failure  # the verdict table
    assert "Traceback" not in failure


def test_the_example_workflow_calls_the_reusable_one_with_the_inputs_it_declares():
    from ruamel.yaml import YAML

    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           CALLER], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job,) = YAML(typ="safe").load(open(CALLER))["jobs"].values()
    assert job["uses"].split("@")[0].endswith("/.github/workflows/problem-matrix.yml")
    declared = YAML(typ="safe").load(open(REUSABLE))["on"]["workflow_call"]["inputs"]
    assert set(job["with"]) <= set(declared)
    assert {name for name, spec in declared.items() if spec.get("required")} <= set(job["with"])
    assert os.path.isfile(os.path.join(EXAMPLE, job["with"]["problem"]))
    assert job["uses"].split("@")[1] == job["with"]["harness-ref"]  # the same harness version twice
