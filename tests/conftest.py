"""Shared fixtures, and how the suite runs: offline, sharing compiled programs, in parallel.

- The package index is the recorded one (`fake_index`), unless a test is marked `live`.
- Every JAX process of the session (this one, xdist's other workers, the scenario children,
  the Workers, the reproducer scripts) uses one persistent XLA compilation cache inside this
  env (repro._policy.jax_cache_env), as the matrix cells do: a program compiled by one test
  is not compiled again by the next. Tracing, and so every error, still happens each time.
- Under pytest-xdist (`./go test` runs `-n 2 --dist loadgroup`), tests that use the
  `workers` fixture (Hypothesis over generated modules: the longest) are scheduled first and
  kept on one xdist worker (group "workers"), so one pool of scenario workers serves them.
- Tests marked `host` check host-side behaviour that does not depend on the cell's JAX,
  Optax or Equinox: with REPRO_HOST_TESTS=0 (the nox `tests` session sets it in every ci
  cell but the first) they are deselected, so they run once per `./go test`.
- `progress`: one line per unit of long work (a Hypothesis example), on the terminal while
  the test runs (pytest -q: none).
"""

import http.server
import os
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INDEX_FIXTURES = os.path.join(ROOT, "tests", "fixtures", "index")

from repro._policy import jax_cache_env  # noqa: E402  (no JAX: safe before any test imports it)

# {} when the user chose a cache or turned it off (or the env's jaxlib cannot be trusted with one).
# pytest-xdist's workers inherit what the controller set here: they share the same cache.
if os.environ.get("REPRO_TESTS_SHARED_JAX_CACHE"):
    SHARED_JAX_CACHE = {k: os.environ[k] for k in os.environ["REPRO_TESTS_SHARED_JAX_CACHE"].split(",")}
else:
    SHARED_JAX_CACHE = jax_cache_env(sys.executable)
    os.environ.update(SHARED_JAX_CACHE)  # before anything here imports JAX
    if SHARED_JAX_CACHE:
        os.environ["REPRO_TESTS_SHARED_JAX_CACHE"] = ",".join(SHARED_JAX_CACHE)


def pytest_collection_modifyitems(config, items):
    """Host-only tests once per run (REPRO_HOST_TESTS=0 deselects them); the Workers-based
    tests first and together (xdist group "workers"), then `slow` ones, then the rest; the
    tests of the installed wheel together (xdist group "installed")."""
    if os.environ.get("REPRO_HOST_TESTS", "1") == "0":
        host = [item for item in items if item.get_closest_marker("host")]
        if host:
            config.hook.pytest_deselected(items=host)
            items[:] = [item for item in items if not item.get_closest_marker("host")]
    for item in items:
        if "workers" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("workers"))
        elif "installed" in item.fixturenames:  # one installed wheel (tests/test_installed.py) serves them all
            item.add_marker(pytest.mark.xdist_group("installed"))
    items.sort(key=lambda item: 0 if "workers" in item.fixturenames else 1 if item.get_closest_marker("slow") else 2)


class _Terminal:
    """A text stream onto the terminal while pytest captures output (one write at a time)."""

    def __init__(self, config):
        self.capture = config.pluginmanager.getplugin("capturemanager")
        self.encoding = getattr(sys.stderr, "encoding", None)

    def write(self, text):
        with self.capture.global_and_fixture_disabled():
            sys.stderr.write(text)
            sys.stderr.flush()

    def flush(self):
        pass

    def isatty(self):
        return False  # lines only: a bar would fight pytest's own output


@pytest.fixture(scope="session")
def progress_stream(request):
    """Where test progress lines go: the terminal, past pytest's capture (None with -q)."""
    return None if request.config.get_verbosity() < 0 else _Terminal(request.config)


class _IndexHandler(http.server.BaseHTTPRequestHandler):
    """Answers `/pypi/<name>/json` from tests/fixtures/index/<name>.json, 404 for anything else:
    the package index as repro._index reads it, recorded (tests/fixtures/index/record.py)."""

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        path = os.path.join(INDEX_FIXTURES, f"{parts[1]}.json") if len(parts) == 3 and parts[::2] == ["pypi", "json"] else ""
        if not path or not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="session", autouse=True)
def fake_index():
    """Every test reads the package index from the recorded fixtures, served on 127.0.0.1:
    REPRO_INDEX_URL for the CLI's child processes, repro._index.INDEX_URL in this one. Tests
    marked `live` (`pytest -m live`) read the real index instead."""
    from repro import _index

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _IndexHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/pypi"
    saved = os.environ.get("REPRO_INDEX_URL"), _index.INDEX_URL
    os.environ["REPRO_INDEX_URL"], _index.INDEX_URL = url, url
    _index._CACHE.clear()
    yield url
    server.shutdown()
    if saved[0] is None:
        os.environ.pop("REPRO_INDEX_URL", None)
    else:
        os.environ["REPRO_INDEX_URL"] = saved[0]
    _index.INDEX_URL = saved[1]


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
    """Scenario worker processes for generated cases (repro._workers.Workers), one per core
    (REPRO_WORKERS to change)."""
    from repro._workers import Workers

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
