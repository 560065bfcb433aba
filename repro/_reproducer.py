"""Standalone reproducer scripts: a module's source + one scenario, needing only jax/optax/equinox.

Host side (no JAX import): the scenario code is taken from the *source text* of
repro/_jax/_scenarios.py with `ast`, so the script runs the same implementation the
harness ran, and nothing in it imports repro.
"""

import ast
import os
import subprocess
import sys

from ._catalogue import SCENARIOS, UsageError

_HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS_FILE = os.path.join(_HERE, "_jax", "_scenarios.py")

# Definitions every scenario script needs, and extra helpers some scenarios call.
_ALWAYS = ("_PHASE", "phase", "current_phase", "solve")
_HELPERS = {"seed_fix": ("_seed_fix",), "seed_fix_no_linesearch": ("_seed_fix",), "seed_fix_value_fn": ("_seed_fix",)}
_IMPORTS = "import contextlib\n\nimport equinox as eqx\nimport jax\nimport jax.numpy as jnp\nimport optax\n"


def scenario_source(scenario):
    """The source of `scenario` and what it needs, cut from repro/_jax/_scenarios.py."""
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    with open(SCENARIOS_FILE) as f:
        text = f.read()
    wanted = set(_ALWAYS) | set(_HELPERS.get(scenario, ())) | {scenario}
    lines, pieces = text.splitlines(), []
    for node in ast.parse(text).body:
        names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [
            t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if wanted & set(names):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            pieces.append("\n".join(lines[start - 1:node.end_lineno]))
    return "\n\n\n".join(pieces)


def standalone_script(case_source, scenario, mode, *, max_steps=50, loss_tol=1e-6, grad_tol=1e-3):
    """A script that builds the module from `case_source` (defining model, loss, optimum) and
    runs `scenario` on it; it prints the result, or lets the exception show its traceback."""
    driver = f'''

if __name__ == "__main__":
    print("jax", jax.__version__, "| optax", optax.__version__, "| equinox", eqx.__version__)
    result = solve({scenario}, model, loss, jit={mode == "jit"!r}, max_steps={max_steps}, loss_tol={loss_tol!r},
                   grad_tol={grad_tol!r}, optimum=optimum)
    print("converged" if result["converged"] else "did NOT converge", result)
'''
    lines = case_source.strip().splitlines()
    imports = sorted({x for x in lines + _IMPORTS.splitlines() if x.startswith("import ")},
                     key=lambda x: (x != "import contextlib", x != "import functools", x))
    body = "\n".join(x for x in lines if not x.startswith("import ")).strip()
    return "\n".join([
        f"# Standalone reproducer: scenario {scenario!r} ({mode}) on a generated Equinox module.",
        "# Needs only jax, optax and equinox.",
        *imports,
        "",
        "",
        "# --- the module and its loss (optimum known) " + "-" * 30,
        body,
        "",
        "",
        "# --- the scenario, as the repro harness runs it " + "-" * 27,
        scenario_source(scenario),
        driver,
    ])


def run_script(path, *, python=None, timeout=600):
    """Run a script in a fresh interpreter; return (returncode, combined output)."""
    proc = subprocess.run([python or sys.executable, path], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr
