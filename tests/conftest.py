import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def run_cli():
    """Run `python -m repro ARGS` in a fresh process; return the CompletedProcess."""
    import subprocess

    def run(*args, timeout=900):
        return subprocess.run([sys.executable, "-m", "repro", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)

    return run
