"""The self-contained Python examples in README.md and docs/ run, in every ci cell: a block
that binds every name it uses and imports only what is installed here is executed as it is
written (a block that needs the reader's model, or the example project's package, is only
compiled, by tests/test_docs.py). Where an example leaves a `repro.check` report, it is ok:
the docs show it passing."""

import ast
import builtins
import importlib.util
import os

import pytest

from test_docs import PAGES, ROOT, blocks


def _free_names(tree):
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound


def _imports(tree):
    names = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return {name.split(".")[0] for name in names}


def runnable_examples():
    found = []
    for page in PAGES:
        for tag, start, body in blocks(open(page, encoding="utf-8").read()):
            if tag != "python":
                continue
            source = "\n".join(body)
            tree = ast.parse(source)
            if not _free_names(tree) and all(importlib.util.find_spec(m) for m in _imports(tree)):
                found.append(pytest.param(source, id=f"{os.path.relpath(page, ROOT)}:{start}"))
    return found


EXAMPLES = runnable_examples()


def test_the_repro_check_example_is_among_the_runnable_ones():
    """The selection is not empty by accident: docs/check.md's example is self-contained."""
    assert any(p.id.startswith("docs/check.md:") for p in EXAMPLES), [p.id for p in EXAMPLES]


@pytest.mark.parametrize("source", EXAMPLES)
def test_the_example_runs_as_written(source, capsys):
    namespace = {"__name__": "__example__"}
    exec(compile(source, "<example>", "exec"), namespace)
    report = namespace.get("report")
    if report is not None and hasattr(report, "ok"):
        assert report.ok, str(report)
