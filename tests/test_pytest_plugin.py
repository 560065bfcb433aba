"""The pytest plugin (repro/_pytest_plugin.py), run the way a project's suite runs it: pytester
sessions in which the plugin is loaded by its `pytest11` entry point (this project is installed
in the cell's env), on small Equinox modules written here."""

import json
import os
import subprocess
import sys

import pytest

import repro._jax._check  # noqa: F401  JAX imported here once: pytester's in-process runs drop the modules
#                                       they import first, and importing jaxlib a second time aborts
from repro._pytest_plugin import baseline_path

pytest_plugins = ["pytester"]

MODEL = '''
import equinox as eqx, jax, jax.numpy as jnp, pytest


def problem():
    """A small regression MLP: its activation functions are the non-array leaves."""
    model = eqx.nn.MLP(2, 1, 8, 1, activation=jax.nn.tanh, key=jax.random.PRNGKey(0))
    x = jnp.linspace(-1.0, 1.0, 32).reshape(16, 2)
    y = jnp.sin(x[:, :1])
    return model, lambda m: jnp.mean((jax.vmap(m)(x) - y) ** 2)
'''


def _failure(result, test):
    """The report section of one failed test in a pytester run's output."""
    text = result.stdout.str()
    start = text.index(f"_ {test} _")
    end = min(i for i in (text.find("\n_", start + 1), text.find("short test summary", start)) if i > 0)
    return text[start:end]


@pytest.mark.host
def test_the_marker_is_registered_for_strict_marker_suites(pytester):
    pytester.makepyfile('''
        import pytest

        @pytest.mark.lbfgs(uses=["partition_fix"], modes=["jit"])
        def test_marked():
            pass
    ''')
    pytester.runpytest("--strict-markers", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makepyfile(test_other='''
        import pytest

        @pytest.mark.lbfgz
        def test_misspelled():
            pass
    ''')
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider", "test_other.py")
    result.assert_outcomes(errors=1)  # the strictness is real: an unregistered marker is refused
    assert "'lbfgz' not found in `markers` configuration option" in result.stdout.str()
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.lbfgs(uses=[...], scenarios=[...], modes=[...])" in markers


@pytest.mark.host
def test_the_options_share_one_prefix_and_bad_names_are_one_line(pytester):
    help_text = pytester.runpytest("--help").stdout.str()
    for flag in ("--lbfgs-modes", "--lbfgs-scenarios", "--lbfgs-baseline-dir", "--lbfgs-update-baseline"):
        assert flag in help_text
    for flag, words in (("--lbfgs-modes=jit,nope", "--lbfgs-modes: unknown mode 'nope'"),
                        ("--lbfgs-scenarios=nope", "--lbfgs-scenarios: unknown scenario 'nope'")):
        result = pytester.runpytest(flag)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert words in result.stderr.str() and "Traceback" not in result.stderr.str()


@pytest.mark.host
def test_loading_the_plugin_imports_no_jax(tmp_path):
    """JAX made unimportable: the plugin loads, its marker is known, a test not using the fixture runs."""
    (tmp_path / "test_plain.py").write_text("import pytest\n\n@pytest.mark.lbfgs(modes=['jit'])\n"
                                            "def test_plain():\n    pass\n")
    code = ("import sys; sys.modules['jax'] = sys.modules['equinox'] = sys.modules['optax'] = None\n"
            "import pytest\nsys.exit(pytest.main(['--strict-markers', '-q', '-p', 'repro._pytest_plugin', "
            "'-p', 'no:cacheprovider', sys.argv[1]]))")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # only this plugin: others may import JAX
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_a_used_pattern_that_works_passes_and_one_that_does_not_fails_with_the_table(pytester):
    pytester.makepyfile(MODEL + '''

@pytest.mark.lbfgs(uses=["partition_fix"], modes=["jit"])
def test_partition_fix(lbfgs_check):
    report = lbfgs_check(*problem())
    assert [(r["scenario"], r["mode"]) for r in report.results] == [("partition_fix", "jit")]  # narrow


@pytest.mark.lbfgs(uses=["seed_fix"], modes=["jit"])
def test_shared_workaround(lbfgs_check):
    lbfgs_check(*problem())
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    failure = _failure(result, "test_shared_workaround")
    assert "call patterns this project uses that do not work here:" in failure
    assert "seed_fix [jit] REPRODUCED: " in failure  # it fails as measured: as expected, but not working
    assert "scenario  mode  expected" in failure and "seed_fix  jit" in failure  # the verdict table
    assert "hint:" in failure and "lbfgs-equinox-repro report --scenario seed_fix --mode jit" in failure
    assert "print(repro.check(model, loss, modes=['jit']))" in failure
    assert "lbfgs_check(*problem())" not in failure and "_pytest_plugin.py" not in failure  # no traceback noise


def test_bad_fixture_input_fails_the_test_with_one_sentence(pytester, tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{")
    pytester.makepyfile(MODEL + f'''

@pytest.mark.lbfgs(uses=["nope"])
def test_unknown_pattern(lbfgs_check):
    lbfgs_check(*problem())


def test_corrupt_baseline(lbfgs_check):
    lbfgs_check(*problem(), modes=["jit"], baseline={str(corrupt)!r})
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    assert "lbfgs_check: unknown scenario 'nope'" in _failure(result, "test_unknown_pattern")
    message = _failure(result, "test_corrupt_baseline")
    assert f"lbfgs_check: baseline {corrupt} cannot be read" in message and "Traceback" not in message


def test_a_baseline_per_test_is_recorded_compared_and_updated(pytester):
    pytester.makepyfile(test_model=MODEL + '''

def test_model(lbfgs_check):
    lbfgs_check(*problem())
''')
    args = ["-p", "no:cacheprovider", "--lbfgs-scenarios=no_params", "--lbfgs-modes=jit", "--lbfgs-baseline-dir=bl"]
    path = baseline_path(str(pytester.path / "bl"), "test_model.py::test_model")
    pytester.runpytest(*args).assert_outcomes(passed=1)
    recorded = json.loads(open(path).read())
    assert [(p["scenario"], p["mode"]) for p in recorded["pairs"]] == [("no_params", "jit")]  # the options narrowed it
    signature = recorded["pairs"][0]["signature"]
    pytester.runpytest(*args).assert_outcomes(passed=1)
    assert json.loads(open(path).read()) == recorded  # compared, not rewritten

    earlier = {**recorded, "pairs": [{**recorded["pairs"][0], "signature": "TypeError:other@update[optax]"}]}
    with open(path, "w") as f:
        json.dump(earlier, f)  # as if an earlier version set had failed otherwise
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    failure = _failure(result, "test_model")
    assert "changed against this module's baseline" in failure
    assert f"no_params [jit]: signature TypeError:other@update[optax] -> {signature}" in failure
    assert 'pytest "test_model.py::test_model" --lbfgs-baseline-dir=bl --lbfgs-update-baseline' in failure

    pytester.runpytest(*args, "--lbfgs-update-baseline").assert_outcomes(passed=1)
    assert json.loads(open(path).read())["pairs"][0]["signature"] == signature
    pytester.runpytest(*args).assert_outcomes(passed=1)


@pytest.mark.host
def test_each_test_node_id_has_its_own_baseline_file():
    ids = ["tests/test_m.py::test_x[a/b]", "tests/test_m.py::test_x[a-b]", "tests/test_m.py::test_y"]
    paths = [baseline_path("/bl", nodeid) for nodeid in ids]
    assert len(set(paths)) == 3 and all(p.startswith("/bl/tests-test_m.py-test_") and p.endswith(".json")
                                        for p in paths)
    assert baseline_path("/bl", ids[0]) == paths[0] and baseline_path("/bl", ids[0], 2) != paths[0]


@pytest.mark.host
def test_an_env_built_before_the_entry_point_is_rebuilt_with_it(monkeypatch):
    """An editable install writes its entry points only when installed: they are in the env's stamp."""
    from repro import _envs

    facts = _envs.project_facts([])
    assert facts["entry-points"] == {"pytest11": {"lbfgs_equinox_repro": "repro._pytest_plugin"}}
    args = ("/usr/bin/python3.11", ["jax==0.4.30"])
    kw = dict(backend="uv", project=True, extras=[], exclude_newer=None)
    key = _envs.env_key(*args, **kw)
    monkeypatch.setattr(_envs, "project_facts", lambda extras: {**facts, "entry-points": {}})
    assert _envs.env_key(*args, **kw) != key
