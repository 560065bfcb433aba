"""A user's problem file (`--problem FILE.py`): run it, check what it defines. Imports JAX.

The file is the same form as a generated case (repro.strategies) and the corpus
(repro._jax._corpus): Python that defines `model` (an eqx.Module), `loss` (model -> float
scalar) and optionally `optimum` (a number, or None when unknown). Anything wrong with it is
one line, a UsageError: a missing name, a wrong type, an import error or any exception
while it runs (with the file's line).
"""

import os
import traceback

from .._catalogue import UsageError
from ._check import validate
from ._run import contents, execute_source


def load_problem(path):
    """(model, loss, optimum) from the problem file at `path`, or UsageError saying what is wrong."""
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as error:
        raise UsageError(f"{name}: cannot read it ({error.strerror})") from None
    try:
        namespace = execute_source(source, path)
    except Exception as error:  # noqa: BLE001 -- whatever the file raises is the user's to see
        raise UsageError(f"{name}: {_where(error, path)}{type(error).__name__}: {_first_line(error)}") from None
    missing = [key for key in ("model", "loss") if key not in namespace]
    if missing:
        raise UsageError(f"{name} defines no {' and no '.join(f'`{key}`' for key in missing)} "
                         "(it must define model, loss and optionally optimum)")
    model, loss, optimum = namespace["model"], namespace["loss"], namespace.get("optimum")
    try:
        validate(model, loss)
    except UsageError as error:
        raise UsageError(f"{name}: {_first_line(error)}") from None
    if optimum is not None and (isinstance(optimum, bool) or not isinstance(optimum, (int, float))):
        raise UsageError(f"{name}: optimum must be a number or None, got {type(optimum).__name__}")
    return model, loss, None if optimum is None else float(optimum)


def describe_problem(path):
    """What the check child reports for a good file: its content flags (repro._jax._run.contents)."""
    model, loss, _ = load_problem(path)
    return {"contents": contents(model, None, loss)}


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def _where(error, path):
    """"line N: " of the file's own deepest frame in the traceback, or ""."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == path]
    if isinstance(error, SyntaxError) and error.filename == path:
        lines.append(error.lineno)
    return f"line {lines[-1]}: " if lines else ""
