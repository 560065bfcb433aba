"""The command line: a real run, JSON output, progress on stderr, one top-level help, the
version, and one-line errors with exit 2 on bad input."""

import io
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_one_scenario_prints_versions_and_verdicts(run_cli, tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("--scenario", "no_params", "--scenario", "partition_fix", "--mode", "jit", "--output", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].startswith("python ")
    assert "REPRODUCED" in proc.stdout and "WORKAROUND-OK" in proc.stdout
    data = json.loads(out.read_text())
    assert data["as_expected"] is True
    assert [(r["scenario"], r["mode"]) for r in data["results"]] == [("no_params", "jit"), ("partition_fix", "jit")]
    progress = sorted(proc.stderr.splitlines())  # one line per finished scenario, in the order they finished
    assert len(progress) == 2, proc.stderr
    assert re.fullmatch(r"\[1/2\] \w+ jit (REPRODUCED|WORKAROUND-OK) [\d.]+ s", progress[0]), progress
    assert re.fullmatch(r"\[2/2\] \w+ jit (REPRODUCED|WORKAROUND-OK) [\d.]+ s", progress[1]), progress
    assert {line.split()[1] for line in progress} == {"no_params", "partition_fix"}


def test_json_flag(run_cli):
    proc = run_cli("run", "--scenario", "seed_fix", "--mode", "jit", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # stdout is the JSON alone; progress went to stderr
    assert re.fullmatch(r"\[1/1\] seed_fix jit REPRODUCED [\d.]+ s\n", proc.stderr), proc.stderr
    assert data["results"][0]["verdict"] == "REPRODUCED"
    assert data["results"][0]["outcome"]["family"] == "missing_linesearch_args"


def test_a_crash_makes_the_exit_code_1(run_cli):
    proc = run_cli("--scenario", "_crash", "--mode", "eager", "--quiet")
    assert proc.returncode == 1
    assert "CRASH" in proc.stdout
    assert proc.stderr == ""  # --quiet: no progress


@pytest.mark.host
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


# --- one top-level help, did-you-mean, --version, the names ---------------------------------


@pytest.mark.host
def test_help_lists_every_command_with_its_line_and_every_exit_code(run_cli):
    from repro._errors import EXIT_MEANINGS
    from repro._options import COMMANDS
    from repro._versions import SCRIPT

    for flag in ("--help", "-h"):
        proc = run_cli(flag)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        text = proc.stdout
        assert text.count("usage:") == 1 and text.startswith(f"usage: {SCRIPT} ")
        for name, line in COMMANDS.items():
            assert re.search(rf"^  {name} +{re.escape(line)}$", text, re.M), name
        codes = text[text.index("exit codes:"):]
        for code, meanings in EXIT_MEANINGS.items():
            assert re.search(rf"^  {code} ", codes, re.M), code
            for meaning in meanings.values():
                assert meaning in codes


@pytest.mark.host
def test_every_command_has_its_own_help(run_cli):
    from repro._options import COMMANDS

    for name in COMMANDS:
        proc = run_cli(name, "--help")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"usage: lbfgs-equinox-repro {name} ")
        assert COMMANDS[name][1:] in " ".join(proc.stdout.split())  # its line from the top-level help


@pytest.mark.host
@pytest.mark.parametrize("word, hint", [("bisec", "did you mean 'bisect'?"), ("reprot", "did you mean 'report'?"),
                                        ("matirx", "did you mean 'matrix'?"), ("frobnicate", "commands: run,")])
def test_a_mistyped_command_is_one_line_with_the_nearest_command(run_cli, word, hint):
    proc = run_cli(word, "--package", "jax")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"unknown command '{word}'" in lines[0] and hint in lines[0], proc.stderr
    if "did you mean" not in hint:
        assert "did you mean" not in lines[0]


def test_version_names_the_tool_and_the_installed_packages(run_cli):
    from repro._versions import DISTRIBUTION, PACKAGES, __version__, installed_versions

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stderr == ""
    line = proc.stdout.strip()
    assert line.startswith(f"{DISTRIBUTION} {__version__} (python ") and "\n" not in line
    installed = installed_versions()
    for name in PACKAGES:
        assert f"{name} {installed[name]}" in line  # this env's versions, as installed
    assert installed["jax"] and installed["optax"] and installed["equinox"]


@pytest.mark.host
def test_pyproject_declares_the_distribution_and_script_names():
    """The free distribution name and the script named after it; the import package stays `repro`."""
    import tomllib

    from repro._versions import DISTRIBUTION, SCRIPT

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["name"] == DISTRIBUTION != "repro"
    assert project["scripts"] == {SCRIPT: "repro._cli:main"}
    assert "version" in project["dynamic"]


@pytest.mark.host
def test_another_project_installing_a_repro_package_is_reported(run_cli, tmp_path):
    """The `repro` distribution on the package index ships `repro/` too: whichever is installed
    second overwrites the other's files, so the CLI says so instead of staying silent."""
    info = tmp_path / "repro-0.1.6.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: repro\nVersion: 0.1.6\n")
    (info / "RECORD").write_text("repro/__init__.py,,\nrepro/__main__.py,,\nrepro-0.1.6.dist-info/METADATA,,\n")
    proc = run_cli("--version", env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0
    assert "warning: repro also install(s) a `repro` package" in proc.stderr
    assert run_cli("--version").stderr == ""  # not without it


# --- progress on stderr -------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.host
def test_progress_lines_count_and_time_each_finished_unit():
    from repro._progress import Progress

    out = io.StringIO()
    with Progress(3, stream=out) as progress:
        progress.done("no_params jit REPRODUCED", 12.3)
        progress.done("seed_fix eager REPRODUCED", 4.04)
        progress.note("a note")
    assert out.getvalue() == "[1/3] no_params jit REPRODUCED 12 s\n[2/3] seed_fix eager REPRODUCED 4.0 s\na note\n"
    out = io.StringIO()
    with Progress(unit="probe", stream=out) as progress:
        progress.expect(4, bound=True)
        progress.done("jax 0.4.33: sig")
        progress.extend(1)
        progress.done("jax 0.4.34: SKIP")
    assert out.getvalue().splitlines() == ["probe 1 of ≤ 4: jax 0.4.33: sig", "probe 2 of ≤ 5: jax 0.4.34: SKIP"]


@pytest.mark.host
def test_progress_is_silent_when_quiet_and_draws_a_bar_only_on_a_terminal():
    from repro._progress import Progress

    quiet = FakeTerminal()
    with Progress(2, stream=quiet, quiet=True) as progress:
        progress.done("x", 1.0)
    assert quiet.getvalue() == ""
    term = FakeTerminal()
    with Progress(2, stream=term) as progress:
        progress.working("running y")
        progress.done("x", 1.0)
    text = term.getvalue()
    assert "\r\033[K[--------------------] 0/2" in text and "running y" in text  # the bar, in place
    assert "\r\033[K[1/2] x 1.0 s\n" in text  # the finished line replaces the bar, then it is redrawn
    assert "[##########----------] 1/2" in text
    assert text.endswith("\r\033[K")  # cleared when done: only the lines stay


def test_a_live_bar_on_a_real_terminal(tmp_path):
    """stderr on a pseudo-terminal: the bar is drawn; the JSON on stdout is untouched."""
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "repro", "--scenario", "_crash", "--mode", "eager", "--json"],
                            stdout=subprocess.PIPE, stderr=follower, cwd=ROOT, env={**os.environ, "TERM": "xterm"})
    os.close(follower)
    stdout, _ = proc.communicate(timeout=300)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: everything was read
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    text = seen.decode()
    assert proc.returncode == 1
    assert json.loads(stdout)["results"][0]["verdict"] == "CRASH"
    assert "\r\033[K[" in text and "[1/1] _crash eager CRASH" in text, text


@pytest.mark.host
def test_a_reader_that_goes_away_cuts_the_output_short_without_a_traceback():
    """`lbfgs-equinox-repro --help | head -1`: the pipe closes before the help is written."""
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    proc = subprocess.Popen([sys.executable, "-m", "repro", "--help"], stdout=write, stderr=subprocess.PIPE,
                            cwd=ROOT, text=True)
    os.close(write)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 141 and "Traceback" not in stderr, stderr
