"""How the suite runs: host-only tests once per `./go test`, the Workers-based tests first, every
core through pytest-xdist, one XLA compilation cache for the run, the recorded package index."""

import os
import runpy
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.host


def collect(*args, env=None):
    """The test ids pytest would run (in order), collected in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_host_tests_are_deselected_where_the_session_says_they_ran_already():
    files = ["tests/test_cli.py", "tests/test_layout.py", "tests/test_expectations.py"]
    everything = collect(*files)
    later_cell = collect(*files, env={"REPRO_HOST_TESTS": "0"})
    assert later_cell and set(later_cell) < set(everything)
    assert not [t for t in later_cell if t.startswith(("tests/test_layout.py", "tests/test_expectations.py"))]
    assert "tests/test_cli.py::test_json_flag" in later_cell  # needs the cell's versions: stays
    assert "tests/test_cli.py::test_version_names_the_tool_and_the_installed_packages" in later_cell
    assert not [t for t in later_cell if "test_a_mistyped_command" in t]  # host-only: deselected


def test_the_workers_tests_come_first_then_the_slow_ones():
    order = collect("tests/test_properties.py", "tests/test_cli.py", "tests/test_report.py")
    first = [t for t in order if "test_every_scenario_matches_the_expectations" in t
             or "test_a_wrong_expectation" in t]
    assert order[:len(first)] == first and len(first) == 2
    slow = [i for i, t in enumerate(order) if "test_report_script_reproduces_what_the_report_states" in t]
    rest = [i for i, t in enumerate(order) if "test_cli.py" in t]
    assert slow and rest and max(slow) < min(rest)


def test_the_test_session_runs_on_every_core_unless_told_otherwise():
    noxfile = runpy.run_path(os.path.join(ROOT, "noxfile.py"))
    xdist = noxfile["_xdist"]
    assert xdist([]) == ["-n", str(os.cpu_count() or 1), "--dist", "loadgroup"]
    assert xdist(["tests/test_cli.py", "-x"])[:1] == ["-n"]
    for chosen in (["-n", "0"], ["-n0"], ["--numprocesses=1"], ["-p", "no:xdist"], ["--dist", "load"]):
        assert xdist(chosen) == [], chosen


def test_every_jax_process_of_the_run_shares_the_envs_compilation_cache():
    from conftest import SHARED_JAX_CACHE

    if not SHARED_JAX_CACHE:
        pytest.skip("JAX_COMPILATION_CACHE_DIR was set before the run, or REPRO_JAX_CACHE=0")
    expected = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(sys.executable))), ".jax-cache")
    assert SHARED_JAX_CACHE["JAX_COMPILATION_CACHE_DIR"] == expected
    code = "import jax; print(jax.config.jax_compilation_cache_dir)"  # a child started as the tests start them
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == expected, proc.stderr


def test_the_ci_cells_run_side_by_side_each_line_labelled_and_each_exit_kept():
    """`nox -s ci` runs the cells' sessions at once through run_labelled: a failure in one
    is that cell's own exit code; output keeps each command's order under its label."""
    from repro._parallel import run_labelled

    say = "import sys, time\nfor i in range(3):\n    print(sys.argv[1], i, flush=True); time.sleep(1)\nsys.exit(int(sys.argv[2]))"
    lines = []

    class Out:
        def write(self, text):
            lines.extend(text.splitlines())

        def flush(self):
            pass

    results = run_labelled([("floor", [sys.executable, "-c", say, "a", "0"]),
                            ("newest-cell", [sys.executable, "-c", say, "b", "3"]),
                            ("gone", ["/nonexistent/python"])], out=Out())
    assert {label: code for label, (code, _) in results.items()} == {"floor": 0, "newest-cell": 3, "gone": 127}
    assert [line for line in lines if line.startswith("floor ")] == [f"floor       | a {i}" for i in range(3)]
    assert [line for line in lines if line.startswith("newest-cell")] == [f"newest-cell | b {i}" for i in range(3)]
    assert any(line.startswith("gone        | could not start /nonexistent/python") for line in lines)
    # side by side, not one after the other: both ran their 3 s at once
    assert lines.index("newest-cell | b 0") < lines.index("floor       | a 2")
    noxfile = runpy.run_path(os.path.join(ROOT, "noxfile.py"))
    assert noxfile["nox"].options.sessions == ["ci"]
