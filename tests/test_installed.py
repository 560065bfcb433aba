"""Every command from an installed wheel, in an empty folder, with no checkout (issue 24).

This repository's wheel is built (uv build, hatchling from uv's cache) and installed into a
fresh venv outside the checkout, with the floor cell's JAX, Optax and Equinox (in uv's cache:
the floor cell's env was built from them); the installed `lbfgs-equinox-repro` then runs from an
empty temporary folder, with its cache in a temporary XDG_CACHE_HOME. Each test checks that
nothing was written into the installed package or the checkout, and nothing into the working
folder but what was asked. The package index is the recorded one (`fake_index`).

The host-side rules behind it (where the cache is, the wheel an installed copy is re-packed
into, the survey's problem jobs) are checked first, without environments.
"""

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import zipfile

import pytest

from repro import _envs, _paths, _survey, _wheel
from repro._heatmap import subject
from repro._matrix import BY_ID, RESOLVED
from repro._observations import DATA_DIR, PROBLEM_MODULE, ObservationFile, Observation
from repro._catalogue import SCENARIOS
from repro._errors import UsageError
from repro._versions import DISTRIBUTION, SCRIPT, TRACKED

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBLEM = '''"""A module with a Python callable and a str field next to its weights."""
import equinox as eqx
import jax
import jax.numpy as jnp


class Scaled(eqx.Module):
    w: jax.Array
    act: object
    name: str

    def __call__(self, x):
        return self.act(self.w * x)


model = Scaled(jnp.array([0.5, -1.0]), jnp.tanh, "tiny")
target = jnp.array([0.3, -0.2])


def loss(m):
    return jnp.sum((m(jnp.ones(2)) - target) ** 2)
'''


# --- where things live ------------------------------------------------------------------------

def test_the_cache_is_the_flag_or_variable_else_the_checkouts_else_the_users(monkeypatch, tmp_path):
    monkeypatch.setattr(_paths, "checkout", lambda: "/src/checkout")
    assert _paths.cache_dir({}) == "/src/checkout/.repro-cache"  # from a checkout: where it always was
    assert _paths.cache_dir({_paths.CACHE_ENV: str(tmp_path)}) == str(tmp_path)
    monkeypatch.setattr(_paths, "checkout", lambda: None)  # an installed copy
    assert _paths.cache_dir({"XDG_CACHE_HOME": "/xdg"}) == "/xdg/lbfgs-equinox-repro"
    home = os.path.expanduser("~")
    assert _paths.cache_dir({}) == os.path.join(home, ".cache", "lbfgs-equinox-repro")
    assert _paths.cache_dir({"XDG_CACHE_HOME": "relative/path"}) == os.path.join(home, ".cache", "lbfgs-equinox-repro")
    assert _paths.user_cache_dir({}, "darwin") == os.path.join(home, "Library", "Caches", "lbfgs-equinox-repro")
    assert _paths.user_cache_dir({"LOCALAPPDATA": "C:/L"}, "win32") == os.path.join("C:/L", "lbfgs-equinox-repro",
                                                                                      "Cache")
    monkeypatch.setenv(_paths.CACHE_ENV, str(tmp_path / "c"))
    assert _paths.cache_path("envs") == str(tmp_path / "c" / "envs")
    assert set(_paths.CACHE_KINDS) == {"envs", "survey", "git", "wheels"}


def test_this_checkout_is_recognised_and_an_unusable_cache_is_one_line(tmp_path):
    assert _paths.checkout() == ROOT  # the suite runs from the checkout: its envs install it editable
    assert not _paths.inside_package(os.path.join(ROOT, "repro", "_data"))  # a checkout's package is writable
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot create it"):
        _paths.writable_dir(str(blocker / "cache"), "--cache-dir")
    assert _paths.writable_dir(str(tmp_path / "new" / "cache"), "--cache-dir") == str(tmp_path / "new" / "cache")


def _fake_installed(version="0.1.0", text="X = 1\n"):
    info = f"lbfgs_equinox_repro-{version}.dist-info"
    return info, {"repro/__init__.py": text.encode(), "repro/_data/observations/a.json": b"{}",
                  f"{info}/METADATA": f"Name: {DISTRIBUTION}\nVersion: {version}\n".encode(),
                  f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
                  f"{info}/entry_points.txt": b"[console_scripts]\nlbfgs-equinox-repro = repro._cli:main\n"}


def test_an_installed_copy_is_packed_into_a_wheel_whose_record_matches_its_files():
    info, files = _fake_installed()
    archive = zipfile.ZipFile(io.BytesIO(_wheel.pack(info, files)))
    assert sorted(archive.namelist()) == sorted([*files, f"{info}/RECORD"])
    rows = list(csv.reader(io.StringIO(archive.read(f"{info}/RECORD").decode())))
    assert rows[-1] == [f"{info}/RECORD", "", ""]
    for name, digest, size in rows[:-1]:
        data = archive.read(name)
        assert data == files[name] and int(size) == len(data)
        assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert _wheel.wheel_name(info, files) == "lbfgs_equinox_repro-0.1.0-py3-none-any.whl"
    assert _wheel.pack(info, files) == _wheel.pack(info, dict(reversed(list(files.items()))))  # same files, same bytes


def test_the_wheel_carries_the_package_and_the_wheels_own_metadata_not_what_installers_add():
    info = "lbfgs_equinox_repro-0.1.0.dist-info"
    record = ["repro/__init__.py", "repro/_data/observations/jax-0.4.30.json", "repro/__pycache__/_cli.cpython-311.pyc",
              "../../../bin/lbfgs-equinox-repro", f"{info}/METADATA", f"{info}/WHEEL", f"{info}/entry_points.txt",
              f"{info}/licenses/LICENSE", f"{info}/RECORD", f"{info}/INSTALLER", f"{info}/REQUESTED",
              f"{info}/direct_url.json", f"{info}/uv_cache.json"]
    assert [name for name in record if _wheel._packed(name, info)] == record[:2] + record[4:8]


def test_an_env_of_an_installed_copy_is_rebuilt_when_the_copy_changes(monkeypatch):
    """From a checkout the stamp holds the pyproject facts (the code is live, editable); from an
    installed copy, the digest of the files its wheel is packed from."""
    monkeypatch.setattr(_paths, "checkout", lambda: None)
    installed = {"files": _fake_installed()}
    monkeypatch.setattr(_wheel, "installed_files", lambda: installed["files"])
    kw = dict(backend="uv", project=True, extras=[], exclude_newer=None)
    key = _envs.env_key("/usr/bin/python3.11", ["jax==0.4.30"], **kw)
    assert _envs.env_key("/usr/bin/python3.11", ["jax==0.4.30"], **kw) == key
    installed["files"] = _fake_installed(text="X = 2\n")  # an edited installed file
    assert _envs.env_key("/usr/bin/python3.11", ["jax==0.4.30"], **kw) != key
    installed["files"] = _fake_installed(version="0.2.0")
    assert _envs.env_key("/usr/bin/python3.11", ["jax==0.4.30"], **kw) != key


def test_from_a_checkout_an_env_installs_it_editable_and_keeps_its_stamp():
    assert _envs.harness(["test"]) == ["-e", f"{ROOT}[test]"]
    assert _envs.harness_facts(["test"]) == _envs.project_facts(["test"])


# --- survey --problem, without environments ---------------------------------------------------------

def test_a_problem_runs_under_its_own_path_and_an_edit_is_a_new_plan(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("model = 1\nloss = None\nwhere = __file__\n\n\ndef boom():\n    raise ValueError('here')\n")
    problem = _survey.Problem.read(str(path))
    namespace = {"__name__": "__repro_problem__", "__file__": "<repro case>"}  # as repro._jax._run runs a job
    exec(compile(problem.job_source(), "<repro case>", "exec"), namespace)
    assert namespace["where"] == str(path) and namespace["model"] == 1
    with pytest.raises(ValueError) as raised:
        namespace["boom"]()
    frame = raised.traceback[-1]
    assert (str(frame.path), frame.lineno + 1) == (str(path), 7)  # the file's own line, for the signatures

    jobs = _survey.problem_jobs(problem, "jit")
    assert [(module, job[1], job[2], job[3]) for module, job in jobs] == [(PROBLEM_MODULE, s, "jit", {})
                                                                            for s in SCENARIOS]
    cell = _survey.CellPlan("optax-0.2.3", "optax", "3.11", ("optax==0.2.3",), problem=problem)
    corpus = _survey.CellPlan("optax-0.2.3", "optax", "3.11", ("optax==0.2.3",))
    assert cell.plan_key() != corpus.plan_key()
    path.write_text(path.read_text() + "# edited\n")
    assert _survey.CellPlan("optax-0.2.3", "optax", "3.11", ("optax==0.2.3",),
                               problem=_survey.Problem.read(str(path))).plan_key() != cell.plan_key()
    assert problem.record()["source"] == problem.source and problem.record()["file"] == "mine.py"


def test_the_heat_map_draws_the_problem_a_folder_measured():
    problem = {"file": "mine.py", "path": "/x/mine.py", "digest": "d", "source": ""}
    cell = ObservationFile("optax-0.2.3", "optax", "3.11", [], problem=problem,
                            observations=[Observation(PROBLEM_MODULE, "no_params", "jit", "converged")])
    assert subject([cell]) == (PROBLEM_MODULE, "problem mine.py")
    assert ObservationFile.from_dict(cell.to_dict()).problem == problem
    assert subject([ObservationFile("optax-0.2.3", "optax", "3.11", [])]) == ("builtin", "built-in problem")
    assert "problem" not in ObservationFile("optax-0.2.3", "optax", "3.11", []).to_dict()  # corpus files unchanged


@pytest.mark.parametrize("args, words", [
    (["--data", DATA_DIR], "packaged corpus observations"),
])
def test_a_problems_observations_never_go_into_the_packaged_data(run_cli, tmp_path, args, words):
    problem = tmp_path / "mine.py"
    problem.write_text(PROBLEM)
    proc = run_cli("survey", "--problem", str(problem), "--only", "optax-0.2.3", *args, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# --- the installed wheel ---------------------------------------------------------------------------

def _snapshot(folder):
    """{relative path: (size, mtime)} of every file under `folder` but bytecode caches."""
    found = {}
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = os.path.join(parent, name)
            info = os.stat(path)
            found[os.path.relpath(path, folder)] = (info.st_size, info.st_mtime_ns)
    return found


def _git_status():
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


class Installed:
    """The installed tool: run it from a folder, and check what it left where."""

    def __init__(self, venv, site, env):
        self.venv, self.site, self.env = venv, site, env
        self.script = os.path.join(venv, "bin", SCRIPT)
        self.package = _snapshot(os.path.join(site, "repro"))
        self.checkout = _git_status()

    def run(self, cwd, *args, env=None, timeout=900):
        return subprocess.run([self.script, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**self.env, **(env or {})})

    def assert_nothing_written_into_the_package_or_the_checkout(self):
        assert _snapshot(os.path.join(self.site, "repro")) == self.package
        assert _git_status() == self.checkout

    @property
    def cache(self):
        return os.path.join(self.env["XDG_CACHE_HOME"], "lbfgs-equinox-repro")


def _uv(*args, env):
    proc = subprocess.run(["uv", *args], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def installed(tmp_path_factory, fake_index):
    """This repository's wheel, installed with the floor cell's pins into a venv in a temp dir
    (offline: everything comes from uv's cache), and the environment its commands run with: a
    temp XDG_CACHE_HOME (so its cache is the user cache of an installed copy), uv's own cache
    where it is (XDG_CACHE_HOME would move it too), no JAX compilation cache of the suite's."""
    base = tmp_path_factory.mktemp("installed")
    offline = {**_envs.uv_env(), "UV_OFFLINE": "1", "UV_EXCLUDE_NEWER": RESOLVED}
    _uv("build", "-q", "--wheel", "--out-dir", str(base / "dist"), ROOT, env=offline)
    (wheel,) = [str(base / "dist" / name) for name in os.listdir(base / "dist") if name.endswith(".whl")]
    venv, floor = str(base / "venv"), BY_ID["floor-py311"]
    _uv("venv", "-q", "--python", _envs.find_interpreter(floor.python), venv, env=offline)
    _uv("pip", "install", "-q", "--python", _envs.env_python(venv), wheel, *floor.requirements(), env=offline)
    site = subprocess.run([_envs.env_python(venv), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    uv_cache = _uv("cache", "dir", env=_envs.uv_env()).strip()
    env = {k: v for k, v in _envs.uv_env().items() if not k.startswith(("JAX_", "REPRO_", "PYTHON", "VIRTUAL_ENV"))
           and k != "XLA_FLAGS"}
    env.update(XDG_CACHE_HOME=str(base / "xdg"), UV_CACHE_DIR=uv_cache, REPRO_INDEX_URL=fake_index,
               PYTHONDONTWRITEBYTECODE="1")
    return Installed(venv, site, env)


def _work(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


NO_PARAMS_BOUNDARY = ["--scenario", "no_params", "--mode", "jit", "--json", "--quiet"]
PINS = "optax==0.2.4,equinox==0.11.10"  # first, as bisect orders them: the same requirement list, the same env stamp


@pytest.mark.slow
def test_diff_and_bisect_run_from_an_installed_wheel_in_an_empty_folder(installed, tmp_path):
    """jax 0.4.33 -> 0.4.34 changes the no_params message (measured): diff sees it, and bisect
    over the same versions names 0.4.34, reusing diff's envs from the user cache."""
    work = _work(tmp_path)
    proc = installed.run(work, "diff", "--a", f"{PINS},jax==0.4.33", "--b", f"{PINS},jax==0.4.34", *NO_PARAMS_BOUNDARY)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the pair differs
    (pair,) = json.loads(proc.stdout)["differs"]
    assert (pair["a"]["signature"], pair["b"]["signature"]) == ("ValueError:custom_node_mismatch@update[jax]",
                                                                "ValueError:expected_none@update[jax]")
    proc = installed.run(work, "bisect", "--package", "jax", "--good", "0.4.33", "--bad", "0.4.34",
                         "--pin", "optax==0.2.4", "--pin", "equinox==0.11.10", *NO_PARAMS_BOUNDARY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert (data["last_unchanged"], data["first_changed"]) == ("0.4.33", "0.4.34")
    assert data["built"] == 0  # diff's envs, found in the user cache and reused as they are

    envs = [os.path.join(installed.cache, "envs", name) for name in os.listdir(os.path.join(installed.cache, "envs"))]
    (digest,) = os.listdir(os.path.join(installed.cache, "wheels"))
    (wheel,) = os.listdir(os.path.join(installed.cache, "wheels", digest))
    assert len(envs) == 2 and wheel.startswith("lbfgs_equinox_repro-") and wheel.endswith("-py3-none-any.whl")
    for env in envs:  # the harness inside each env is the installed copy's wheel, not a path that may not exist
        code = f"import importlib.metadata as m; print(m.distribution({DISTRIBUTION!r}).read_text('direct_url.json'))"
        url = json.loads(subprocess.run([_envs.env_python(env), "-c", code], capture_output=True, text=True,
                                        check=True).stdout)["url"]
        assert url.endswith(f"/wheels/{digest}/{wheel}"), url
    assert os.listdir(work) == []
    installed.assert_nothing_written_into_the_package_or_the_checkout()


@pytest.mark.slow
def test_survey_measures_a_problem_file_into_the_users_folder_and_draws_it(installed, tmp_path):
    work, data = _work(tmp_path), tmp_path / "data"
    data.mkdir()
    problem = tmp_path / "mine.py"
    problem.write_text(PROBLEM)
    cell = "optax-0.2.3"  # as of its release day: jax 0.4.30, equinox 0.11.4, the tool venv's (floor) versions
    measure = ["survey", "--problem", str(problem), "--only", cell, "--mode", "jit", "--data", str(data)]
    proc = installed.run(work, *measure)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(os.listdir(data)) == [f"{cell}.json"]
    with open(data / f"{cell}.json") as f:
        measured = ObservationFile.from_dict(json.load(f))
    assert measured.status == "ok", measured.reason
    assert measured.problem["source"] == PROBLEM and measured.problem["file"] == "mine.py"
    assert [(o.module, o.scenario, o.mode) for o in measured.observations] == [(PROBLEM_MODULE, s, "jit")
                                                                              for s in SCENARIOS]
    leaves = measured.contents[PROBLEM_MODULE]["leaves"]
    assert leaves[0] == "float-array" and leaves[-1] == "str" and len(leaves) == 3  # weights, function, str

    # The oracle: `run --problem` on the same file, here in the tool's own env with the same versions.
    proc = installed.run(work, "run", "--problem", str(problem), "--mode", "jit", "--batch", "--jobs", "1", "--json",
                         "--quiet")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    ran = json.loads(proc.stdout)
    assert {k: ran["versions"][k] for k in TRACKED} == measured.versions
    assert {r["scenario"]: r["signature"] for r in ran["results"]} == {o.scenario: o.signature()
                                                                       for o in measured.observations}

    proc = installed.run(work, "survey", "--heatmap-files", str(data), "--data", str(data))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(data / "survey.svg") as f:
        assert ">problem mine.py</text>" in f.read()
    with open(data / "survey.md") as f:
        glyphs = f.read()
    assert all(f"| {s} [jit] |" in glyphs for s in SCENARIOS)

    proc = installed.run(work, *measure, "--dry-run")
    assert proc.stdout.startswith(f"measured {cell}"), proc.stdout + proc.stderr
    problem.write_text(PROBLEM + "# edited\n")
    proc = installed.run(work, *measure, "--dry-run")
    assert proc.stdout.startswith(f"pending  {cell}"), proc.stdout + proc.stderr  # an edited file: measured again

    packaged = os.path.join(installed.site, "repro", "_data", "observations")
    proc = installed.run(work, "survey", "--heatmap-files", str(tmp_path / "map"), "--data", packaged)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "map" / "survey.svg") as drawn, open(os.path.join(ROOT, "docs", "survey.svg")) as docs:
        assert drawn.read() == docs.read()  # the packaged survey, read (never written) from the installed copy
    assert os.listdir(work) == []
    installed.assert_nothing_written_into_the_package_or_the_checkout()


@pytest.mark.slow
def test_report_runs_from_an_installed_wheel_in_an_empty_folder(installed, tmp_path):
    work = _work(tmp_path)
    proc = installed.run(work, "report", "--scenario", "no_params", "--mode", "jit", "--output", "report.md", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.listdir(work) == ["report.md"]  # what was asked, where it was asked
    title = (work / "report.md").read_text().splitlines()[0]
    pins = BY_ID["floor-py311"].pins  # the tool venv's versions: measured, no_params fails this way there
    assert title.startswith("# optax.lbfgs on an Equinox module: ValueError Custom node type mismatch"), title
    assert title.endswith(f"(jax {pins['jax']}, optax {pins['optax']}, equinox {pins['equinox']})"), title
    installed.assert_nothing_written_into_the_package_or_the_checkout()


@pytest.mark.slow
def test_bad_input_to_an_installed_wheel_is_one_line_before_anything_is_built(installed, tmp_path):
    work = _work(tmp_path)
    (tmp_path / "broken.py").write_text("model = (\n")
    (tmp_path / "number.py").write_text("model = 3\n\n\ndef loss(m):\n    return m\n")
    (tmp_path / "a_file").write_text("")
    package_data = os.path.join(installed.site, "repro", "_data", "observations")
    fresh = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    cases = [
        (["survey", "--problem", str(tmp_path / "broken.py"), "--only", "optax-0.2.3"], "syntax error at line 1", 2),
        (["survey", "--problem", str(tmp_path / "number.py"), "--only", "optax-0.2.3", "--mode", "jit"],
         "model has no floating-point arrays", 2),
        (["survey", "--only", "optax-0.2.3", "--data", package_data], "inside the installed package", 2),
        (["survey", "--only", "optax-0.2.3", "--data", str(tmp_path / "missing")], "not a directory", 2),
        (["survey", "--heatmap"], "no observation files in", 2),
        (["diff", "--a", "jax==0.4.33", "--b", "jax==0.4.34", "--python", "3.99"], "no Python 3.99 interpreter", 2),
        (["diff", "--a", "jax==0.4.33", "--b", "jax==0.4.34", "--cache-dir", str(tmp_path / "a_file" / "c")],
         "cannot create it", 2),
        (["bisect", "--package", "jax", "--good", "0.4.33", "--bad", "0.4.34", "--scenario", "no_params", "--problem",
          "missing.py"], "cannot read it", 2),
        (["diff", "--a", "jax==0.4.33", "--b", "jax==0.4.34"], "cannot read the package index", 5, ),
    ]
    for args, words, code in cases:
        env = {**fresh, **({"REPRO_INDEX_URL": "http://127.0.0.1:9/pypi"} if code == 5 else {})}
        proc = installed.run(work, *args, env=env, timeout=300)
        assert proc.returncode == code, (args, proc.stdout + proc.stderr)
        assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not os.path.exists(os.path.join(tmp_path, "xdg", "lbfgs-equinox-repro", "envs"))  # nothing built
    assert os.listdir(work) == []
    installed.assert_nothing_written_into_the_package_or_the_checkout()


def test_the_installed_copy_ships_its_type_marker_and_data(installed):
    """`py.typed` (PEP 561: type checkers read the installed package's annotations) and the
    packaged observations are in the wheel."""
    package = os.path.join(installed.site, "repro")
    assert os.path.isfile(os.path.join(package, "py.typed"))
    assert os.path.isfile(os.path.join(package, "_data", "observations", "jax-0.4.30.json"))
