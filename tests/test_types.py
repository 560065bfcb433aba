"""The type checker CI runs: mypy over the package (configured in pyproject.toml), and the
public API as a user's type checker sees it (the names `repro` loads on first use included)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mypy(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_package_type_checks_clean():
    run = _mypy()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success: no issues found" in run.stdout


def test_a_users_type_checker_sees_the_public_api_and_its_types(tmp_path):
    """`repro.check` is loaded on first use, yet a type checker sees its signature: a loss that
    is not callable and a report used as a string are both errors, a correct call is not."""
    user = tmp_path / "user_code.py"
    user.write_text(
        "import repro\n"
        "def loss(model: object) -> float:\n"
        "    return 0.0\n"
        "report: repro.CheckReport = repro.check(object(), loss, scenarios=['partition_fix'])\n"
        "ok: bool = report.ok\n"
        "repro.check(object(), 3)\n"
        "text: int = repro.reproducer('no_params')\n"
    )
    run = _mypy("--config-file", os.path.join(ROOT, "pyproject.toml"), str(user))
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["6", "7"], run.stdout
    assert 'Argument 2 to "check" has incompatible type "int"' in errors[0]
    assert '(expression has type "str", variable has type "int")' in errors[1]
