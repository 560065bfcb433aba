"""The layout holds: host code (no JAX) vs in-env code (repro._jax), and layers without cycles."""

import ast
import os
import subprocess
import sys

import pytest

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "repro")


def modules():
    """{module name: path} of every module in the repro package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
    return found


def imports_of(name, path):
    """The repro modules `name` imports, anywhere in the file (function-level imports too), but
    not under `if TYPE_CHECKING:`: what only a type checker reads is not imported at run time."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            source = (base + (f".{node.module}" if node.module else "")) if node.level else node.module
            out.add(source)
            out |= {f"{source}.{alias.name}" for alias in node.names}  # `from . import _envs` imports a module
    return out


def import_graph():
    found = modules()
    return {name: {i for i in imports_of(name, path) if i in found and i != name} for name, path in found.items()}


def cycles(graph):
    """Every import cycle in `graph`, each as the list of modules around it (depth-first search)."""
    found, state = [], {}  # state: 1 on the current path, 2 done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


HOST_MODULES = sorted(m for m in modules() if not m.startswith("repro._jax") and m not in
                      ("repro.strategies", "repro.__main__"))


def test_host_modules_import_without_jax():
    assert {"repro._cli", "repro._cells", "repro._report._compose"} <= set(HOST_MODULES)
    code = ("import sys; sys.modules['jax'] = None; sys.modules['optax'] = None; sys.modules['equinox'] = None\n"
            + "".join(f"import {m}\n" for m in HOST_MODULES)
            + "import repro\nrepro.report, repro.Report, repro.reproducer\n"  # public, lazy, host side
            + "assert 'repro._jax._run' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_noxfile_imports_without_jax():
    code = "import sys, runpy; sys.modules['jax'] = None; runpy.run_path('noxfile.py')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_no_import_cycle_among_repro_modules():
    graph = import_graph()
    assert len(graph) > 20 and graph["repro._cli"], "the graph was read"
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_layers_bottom_and_top():
    """_errors imports nothing from repro; nothing but __main__ imports the CLI; the option
    parsers sit below every library module that uses them."""
    graph = import_graph()
    assert graph["repro._errors"] == set()
    assert {m for m, deps in graph.items() if "repro._cli" in deps} == {"repro.__main__"}
    assert graph["repro._options"] <= {"repro", "repro._errors", "repro._catalogue", "repro._matrix",
                                       "repro._versions"}


def test_catalogue_names_match_implementations():
    from repro._catalogue import SCENARIOS
    from repro._jax import _scenarios

    for name in SCENARIOS:
        assert callable(getattr(_scenarios, name)), name


def test_scenario_module_imports_nothing_from_repro():
    import inspect

    from repro._jax import _oracle, _problems, _scenarios

    for module in (_scenarios, _problems, _oracle):  # all three are cut into reproducers
        tree = ast.parse(inspect.getsource(module))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert imported <= {"contextlib", "dataclasses", "equinox", "functools", "jax", "jax.flatten_util", "jax.numpy",
                            "numpy", "optax"}, (module.__name__, imported)


def _docs_text():
    """README.md and every docs/*.md page, as one text."""
    import glob

    paths = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    return "\n".join(open(path, encoding="utf-8").read() for path in paths)


def test_docs_import_only_public_names():
    """Users are shown `repro`, `repro.strategies`: never a private module (README and docs/)."""
    import re

    code = "\n".join(re.findall(r"```python\n(.*?)```", _docs_text(), re.S))
    imported = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    ours = {name for name in imported if name.split(".")[0] == "repro"}
    assert {"repro", "repro.strategies"} <= ours
    assert not [name for name in ours if any(part.startswith("_") for part in name.split("."))], ours


def test_architecture_page_lists_every_host_module_below_what_imports_it():
    """docs/architecture.md's layer table is the host side's file list, bottom first: every host
    module is in it, and each imports only modules listed above it."""
    import re

    page = open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8").read()
    section = page[page.index("## Layers"):]
    files = re.findall(r"^\|[^|]*\| `(_\w+\.py|_\w+/|__\w+__\.py)` \|", section, re.M)

    def unit(module):  # a package in the table (`_report/`) is one unit
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 2 else module

    order = [unit("repro" if f == "__init__.py" else "repro." + f.replace(".py", "").rstrip("/")) for f in files]
    assert len(order) == len(set(order)), order
    host = {unit(m) for m in modules() if not m.startswith("repro._jax") and m != "repro.strategies"}
    assert set(order) == host
    graph = import_graph()
    for index, module in enumerate(order):
        deps = {unit(d) for m, ds in graph.items() if unit(m) == module for d in ds} - {module, "repro"}
        assert deps <= set(order[:index]), (module, deps - set(order[:index]))


# Names the glossary (docs/architecture.md) retired: bisect's probe was an "oracle", `diff` lived
# in _bisect, a test-only runner, and two helpers nobody called.
RETIRED = ("EnvOracle", "FakeOracle", "run_isolated", "**oracle", "expected_for", "measured_versions",
           "PlannedCell", "CellRecord", "CellObservations",
           "_scenarios._PHASE", "_aggregate.render_markdown", "_jax._problem import", "from ._problem import")


def test_retired_names_do_not_come_back():
    """A retired name is found nowhere in the package, the tests, the benchmarks or the noxfile."""
    paths = [os.path.join(ROOT, "noxfile.py")]
    for top in ("repro", "tests", "benchmarks"):
        for folder, _, names in os.walk(os.path.join(ROOT, top)):
            paths += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    import re

    words = [re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)") for word in RETIRED]
    found = [(os.path.relpath(path, ROOT), word.pattern) for path in paths if path != os.path.abspath(__file__)
             for word in words if word.search(open(path, encoding="utf-8").read())]
    assert not found, found


def test_a_long_module_says_at_its_top_why_it_is_one_module():
    """Split by job, not by size; but a module past ~400 lines states why it is still one."""
    long = []
    for folder, _, names in os.walk(os.path.join(ROOT, "repro")):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                text = open(path, encoding="utf-8").read()
                doc = ast.get_docstring(ast.parse(text)) or ""
                if text.count("\n") > 400 and "Why one module" not in doc:
                    long.append(os.path.relpath(path, ROOT))
    assert not long, long
