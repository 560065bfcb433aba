"""Cut the standalone reproducer out of the harness's own sources. No JAX.

The script is cut with `ast` from the *source text* of repro/_jax/_problems.py and
repro/_jax/_scenarios.py (read as files, never imported), so the code a maintainer runs is
the code the harness runs: the `mlp_problem` builder (or any module source given), the one
scenario function plus the `phase` label helper and any helper it calls, and a short
driver loop with the harness's convergence definition.
"""

import ast
import os
import sys

from .._catalogue import MODES, SCENARIOS, UsageError

_JAX_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_jax")
SCENARIOS_FILE = os.path.join(_JAX_DIR, "_scenarios.py")
PROBLEMS_FILE = os.path.join(_JAX_DIR, "_problems.py")

# The convergence definition of repro._jax._run.Budget() (tests check they agree).
MAX_STEPS, LOSS_TOL, GRAD_TOL = 50, 1e-6, 1e-3

SCRIPT_NAME = "lbfgs_equinox_repro.py"

# repro._jax._run.contents(mlp_problem()[0], "mlp"), fixed by construction (tests check it): the
# MLP's activations are functions, its arrays all float.
BUILTIN_CONTENTS = {"non_array_leaves": True, "int_arrays": False, "bool_arrays": False,
                    "low_precision_floats": False, "mixed_float_dtypes": False, "low_precision_loss": False,
                    "problem": "mlp"}


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
    jit = mode == "jit"
    lines = [
        'if __name__ == "__main__":',
        '    jax.config.update("jax_traceback_filtering", "off")  # show every frame, JAX\'s own included',
        '    print("jax", jax.__version__, "| optax", optax.__version__, "| equinox", eqx.__version__)',
        f"    model, loss, optimum = {problem_expr}",
        f"    init, step = {scenario}(model, loss)",
        "    value_and_grad = eqx.filter_value_and_grad(loss)",
    ]
    if jit:
        lines.append("    init, step, value_and_grad = eqx.filter_jit(init), eqx.filter_jit(step), "
                     "eqx.filter_jit(value_and_grad)")
    lines += [
        "",
        "    def measure(model):",
        '        with phase("loss"):',
        "            value, grads = value_and_grad(model)",
        "            leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))",
        "            return float(value), float(jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in leaves)))",
        "",
        "    def done(value, grad_norm):",
        f"        return grad_norm <= {GRAD_TOL!r} and (optimum is None or value - optimum <= {LOSS_TOL!r})",
        "",
        "    initial_loss, grad_norm = measure(model)",
        '    with phase("init"):',
        "        opt_state = init(model)",
        "    losses, steps = [initial_loss], 0",
        f"    while not done(losses[-1], grad_norm) and steps < {MAX_STEPS}:",
        "        model, opt_state = step(model, opt_state)  # one L-BFGS iteration",
        "        value, grad_norm = measure(model)",
        "        losses.append(value)",
        "        steps += 1",
        "        if not jnp.isfinite(value):",
        "            break",
        "    finite = all(bool(jnp.isfinite(v)) for v in losses) and bool(jnp.isfinite(grad_norm))",
        "    ok = finite and losses[-1] <= losses[0] and done(losses[-1], grad_norm)",
        '    print("converged" if ok else "did NOT converge", f"in {steps} steps: loss {losses[0]:.3g} -> '
        '{losses[-1]:.3g}, grad norm {grad_norm:.3g}")',
    ]
    return "\n".join(lines)


def script_for_scenario(scenario, mode="eager", *, problem_source=None, problem_expr=None, note=None):
    """The standalone reproducer for `scenario` (`mode` eager or jit), as text.

    By default the module is the built-in problem (`mlp_problem()` from repro/_jax/_problems.py).
    For another module pass `problem_source` (code defining it, e.g. a shrunk Hypothesis example)
    and `problem_expr`, an expression in that code evaluating to `(model, loss, optimum)`
    (optimum may be None). Only jax/optax/equinox/numpy are imported.
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
        what = "a generated Equinox module"
    # The driver below calls `phase`; the scenario pulls in whatever else it references.
    scenario_code = "\n\n\n".join(_needed(scen_defs, ["phase", scenario]))
    summary = _docstring_summary(scen_defs[scenario][0])
    header = [
        f"# Standalone reproducer: optax.lbfgs() on {what};",
        f"# call pattern {scenario!r}, {'under eqx.filter_jit' if mode == 'jit' else 'eager'}.",
        *(f"# {line}" for line in _wrap(summary, 92)),
        *(f"# {line}" for line in _wrap(note or "", 92)),
        "# Needs only jax, optax, equinox and numpy. Run: python " + SCRIPT_NAME,
    ]
    return "\n".join([
        "\n".join(header),
        _import_block(scen_imports + problem_imports),
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
