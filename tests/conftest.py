import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def run_cli():
    """Run `python -m repro ARGS` in a fresh process; return the CompletedProcess."""
    import subprocess

    def run(*args, timeout=900, env=None):
        return subprocess.run([sys.executable, "-m", "repro", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env=env)

    return run


@pytest.fixture(scope="session")
def workers():
    """Scenario worker processes for generated cases (repro._isolate.Workers), one per core."""
    from repro._isolate import Workers

    with Workers() as pool:
        yield pool


# Hypothesis profiles, chosen by REPRO_HYPOTHESIS_PROFILE (default: ci).
#   ci        derandomized, bounded, no deadline, no example database writes (CI, .ci/run)
#   dev       random, small, remembers failures in .hypothesis/ (local iteration)
#   thorough  many examples, for nightly runs
from hypothesis import HealthCheck, settings  # noqa: E402

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=20, derandomize=True, deadline=None, database=None,
                          suppress_health_check=_SLOW_OK, print_blob=True)
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("thorough", max_examples=400, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("REPRO_HYPOTHESIS_PROFILE", "ci"))
