"""The line between host code (no JAX) and in-env code (repro._jax) holds."""

import subprocess
import sys

HOST_MODULES = ["repro", "repro._cli", "repro._catalogue", "repro._envs", "repro._expectations",
                "repro._isolate", "repro._matrix", "repro._aggregate", "repro._outcome", "repro._results",
                "repro._signatures", "repro._versions", "repro._report", "repro._bisect", "repro._index"]


def test_host_modules_import_without_jax():
    code = ("import sys; sys.modules['jax'] = None; sys.modules['optax'] = None; sys.modules['equinox'] = None\n"
            + "".join(f"import {m}\n" for m in HOST_MODULES))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_noxfile_imports_without_jax():
    code = "import sys, runpy; sys.modules['jax'] = None; runpy.run_path('noxfile.py')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_catalogue_names_match_implementations():
    from repro._catalogue import SCENARIOS
    from repro._jax import _scenarios

    for name in SCENARIOS:
        assert callable(getattr(_scenarios, name)), name


def test_scenario_module_imports_nothing_from_repro():
    import ast
    import inspect

    from repro._jax import _problems, _scenarios

    for module in (_scenarios, _problems):
        tree = ast.parse(inspect.getsource(module))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert imported <= {"contextlib", "equinox", "jax", "jax.numpy", "numpy", "optax"}, imported
