"""Cut the standalone reproducer out of the harness's own sources. No JAX.

The script is cut with `ast` from the *source text* of repro/_jax/_problems.py,
repro/_jax/_scenarios.py and repro/_jax/_oracle.py (read as files, never imported), so the
code a maintainer runs is the code the harness runs: the `mlp_problem` builder (or any module
source given), the one scenario function, the harness's own `solve` loop (with its
convergence definition, `Budget`), the flat-vector reference and the oracle that compares the
two, each with whatever it calls, and a few driver lines.

On top sits a PEP 723 `# /// script` block pinning the versions the script runs with (python,
jax, jaxlib, optax, equinox, numpy), so `uv run lbfgs_equinox_repro.py` rebuilds that
environment anywhere. The caller says which versions: `repro report` reads them from the
interpreter that will run the script (repro._report._probe.probe_versions) before it cuts the
script, so the script a report shows is the script that ran, block included.
"""

import ast
import os
import sys
from typing import Optional

from .._catalogue import BUILTIN_PROBLEM, MODES, NO_LINESEARCH, SCENARIOS, Budget, UsageError
from .._versions import PACKAGES, installed_versions

_JAX_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_jax")
SCENARIOS_FILE = os.path.join(_JAX_DIR, "_scenarios.py")
PROBLEMS_FILE = os.path.join(_JAX_DIR, "_problems.py")
ORACLE_FILE = os.path.join(_JAX_DIR, "_oracle.py")

SCRIPT_NAME = "lbfgs_equinox_repro.py"

# repro._jax._run.contents(model, BUILTIN_PROBLEM, loss) of mlp_problem(), fixed by construction (tests
# check it): the MLP's activations are functions (the loss raises without them), its arrays float32.
BUILTIN_CONTENTS = {"leaves": ["float-array"] * 4 + ["jitted", "function"], "float_dtypes": ["float32"] * 4, "top": "module",
                    "low_precision_loss": False, "loss_of_filtered": "raises",
                    "loss_error": "TypeError:none_not_callable@equinox", "problem": BUILTIN_PROBLEM}


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _top_level(text):
    """{name: (node, source segment incl. decorators)} for top-level defs/assignments, and imports."""
    tree, lines = ast.parse(text), text.splitlines()
    defs, imports = {}, []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        segment = "\n".join(lines[start - 1:node.end_lineno])
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(segment)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = (node, segment)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    defs[target.id] = (node, segment)
    return defs, imports


def _needed(defs, roots):
    """`roots` and every top-level definition they reference, in source order."""
    wanted, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in wanted or name not in defs:
            continue
        wanted.add(name)
        todo.extend(n.id for n in ast.walk(defs[name][0]) if isinstance(n, ast.Name))
    order = list(defs)
    seen, out = set(), []
    for name in sorted(wanted, key=order.index):
        segment = defs[name][1]
        if segment not in seen:
            seen.add(segment)
            out.append(segment)
    return out


def _import_block(imports):
    unique = list(dict.fromkeys(imports))
    stdlib = sorted(i for i in unique if i.split()[1].split(".")[0] in sys.stdlib_module_names)
    third = sorted(i for i in unique if i not in stdlib)
    return "\n\n".join("\n".join(group) for group in (stdlib, third) if group)


def _docstring_summary(node):
    doc = ast.get_docstring(node) or ""
    return " ".join(doc.split())


def _driver(scenario, mode, problem_expr):
    """The lines that run the scenario with the harness's budget, then its flat-vector reference
    (as many steps) and the oracle's comparison: the last two lines printed are the verdict."""
    jit, budget = mode == "jit", Budget()
    linesearch = scenario not in NO_LINESEARCH
    return "\n".join([
        'if __name__ == "__main__":',
        '    jax.config.update("jax_traceback_filtering", "off")  # show every frame, JAX\'s own included',
        '    print("jax", jax.__version__, "| optax", optax.__version__, "| equinox", eqx.__version__)',
        f"    model, loss, optimum = {problem_expr}",
        f"    result = solve({scenario}, model, loss, jit={jit}, max_steps={budget.max_steps}, "
        f"loss_tol={budget.loss_tol!r}, grad_tol={budget.grad_tol!r},",
        "                   optimum=optimum, record=True)",
        '    print("converged" if result["converged"] else "did NOT converge", f"in {result[\'iterations\']} steps: '
        'loss {result[\'initial_loss\']:.3g} -> {result[\'final_loss\']:.3g}, grad norm {result[\'grad_norm\']:.3g}")',
        "",
        "    # What the pattern must compute: the same optax.lbfgs on one flat vector of the float arrays.",
        '    steps = reference_steps(result)',
        "",
        "    def candidate(jit):  # the reference under jit or eager (float16/bfloat16: either may be the match)",
        "        try:",
        f"            ref = solve(reference(linesearch={linesearch}), model, loss, jit=jit, steps=steps, record=True)",
        "        except Exception as error:  # the reference itself fails: an Optax problem, not a pytree one",
        '            ref = {"losses": [], "iterates": [], "error": f"{type(error).__name__}: {error}"}',
        f"        shadow = lambda: solve(reference(linesearch={linesearch}, shadow=True), nudge(model), loss, jit=jit,",
        "                               steps=steps, record=True)",
        "        return ref, shadow",
        "",
        f"    candidates = [lambda jit=jit: candidate(jit) for jit in reference_modes(model, loss, {jit})]",
        "    print(compare_either(result, candidates, tolerance(model, loss), overflow_limit(model, loss)).summary())",
    ])


def script_metadata(versions):
    """The PEP 723 block pinning `versions` ({"python": "3.11.7", "jax": ..., ...}); a package
    whose version is unknown (None) is listed unpinned; one built from a source names it
    (a git URL at its commit, or the local directory it came from)."""
    deps = [_dependency(name, versions) for name in PACKAGES]
    lines = ["/// script"]
    if versions.get("python"):
        lines.append(f'requires-python = "=={versions["python"]}"')
    lines += ["dependencies = [", *(f'    "{dep}",' for dep in deps), "]", "///"]
    return "\n".join(f"# {line}" for line in lines)


def _dependency(name, versions):
    source = (versions.get("sources") or {}).get(name) or {}
    url, commit = source.get("url"), source.get("commit")
    if url and commit and not url.startswith("file:"):
        return f"{name} @ git+{url}@{commit}"
    if url:
        return f"{name} @ {url}"
    return f"{name}=={versions[name]}" if versions.get(name) else name


def script_for_scenario(scenario: str, mode: str = "eager", *, problem_source: Optional[str] = None,
                        problem_expr: Optional[str] = None, note: Optional[str] = None,
                        subject: Optional[str] = None, versions: Optional[dict] = None) -> str:
    """The standalone reproducer for `scenario` (`mode` eager or jit), as text.

    By default the module is the built-in problem (`mlp_problem()` from repro/_jax/_problems.py).
    For another module pass `problem_source` (code defining it, e.g. a shrunk Hypothesis example)
    and `problem_expr`, an expression in that code evaluating to `(model, loss, optimum)`
    (optimum may be None); `subject` says what the module is in the script's first line.
    Only jax/optax/equinox/numpy (and whatever `problem_source` imports) are imported.

    `versions` ({"python": ..., "jax": ..., ...}, e.g. an Outcome's `versions`) are pinned in
    the script's PEP 723 block; default: this interpreter's (repro._versions.installed_versions).
    """
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    scen_defs, scen_imports = _top_level(_read(SCENARIOS_FILE))
    if problem_source is None:
        problem_defs, problem_imports = _top_level(_read(PROBLEMS_FILE))
        problem_code = "\n\n\n".join(_needed(problem_defs, ["mlp_problem"]))
        problem_expr = problem_expr or "mlp_problem()"
        what = "an eqx.nn.MLP, whose activations are functions (non-array leaves)"
    else:
        if not problem_expr:
            raise UsageError("problem_expr is required with problem_source")
        problem_code, problem_imports = problem_source.strip(), []
        what = subject or "a generated Equinox module"
    # The scenario pulls in whatever it references (`phase`...); the driver calls the rest.
    scenario_parts = _needed(scen_defs, [scenario])
    scenario_code = "\n\n\n".join(scenario_parts)
    runner_code = "\n\n\n".join(p for p in _needed(scen_defs, ["solve", "reference"]) if p not in scenario_parts)
    oracle_defs, oracle_imports = _top_level(_read(ORACLE_FILE))
    oracle_names = ["compare_either", "tolerance", "nudge", "overflow_limit", "reference_steps", "reference_modes"]
    oracle_code = "\n\n\n".join(_needed(oracle_defs, oracle_names))
    summary = _docstring_summary(scen_defs[scenario][0])
    header = [
        f"# Standalone reproducer: optax.lbfgs() on {what};",
        f"# call pattern {scenario!r}, {'under eqx.filter_jit' if mode == 'jit' else 'eager'}.",
        *(f"# {line}" for line in _wrap(summary, 92)),
        *(f"# {line}" for line in _wrap(note or "", 92)),
        f"# Needs only jax, optax, equinox and numpy. Run: uv run {SCRIPT_NAME} (the block above pins the",
        f"# versions it ran with), or python {SCRIPT_NAME} where they are installed.",
    ]
    return "\n".join([
        script_metadata(installed_versions() if versions is None else versions),
        "",
        "\n".join(header),
        _import_block(scen_imports + oracle_imports + problem_imports),
        "",
        "",
        "# --- the module and its loss " + "-" * 60,
        problem_code,
        "",
        "",
        "# --- the call pattern (phase() only labels the step that fails) " + "-" * 24,
        scenario_code,
        "",
        "",
        "# --- the harness's own loop, and L-BFGS on the flat vector (what the pattern must compute) " + "-" * 1,
        runner_code,
        "",
        "",
        "# --- the oracle: compare the two, iterate by iterate " + "-" * 37,
        oracle_code,
        "",
        "",
        _driver(scenario, mode, problem_expr),
        "",
    ])


def _wrap(text, width):
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def script_imports(script_text):
    """Top-level module names the script imports (tests: never `repro`)."""
    names = set()
    for node in ast.walk(ast.parse(script_text)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0] if node.level == 0 else ".")
    return names
