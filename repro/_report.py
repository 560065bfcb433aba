"""`repro report`: a paste-ready upstream bug report around a standalone reproducer. No JAX here.

Host side only. The reproducer script is cut with `ast` from the *source text* of
repro/_jax/_problems.py and repro/_jax/_scenarios.py (read as files, never imported), so
the code a maintainer runs is the code the harness runs. The script is then run as-is
with this interpreter in a fresh process, and the report shows what it really printed:

    script_for_scenario(name, mode)   -> the standalone script text
    render_report(script_text, ...)   -> Report (runs any standalone script, e.g. one emitted
                                         for a Hypothesis counterexample); .markdown(), .to_dict()
    scenario_report(name, mode)       -> render_report(script_for_scenario(name, mode), ...)

The outcome is read back from the script's output: a traceback gives the exception type,
message family (repro._signatures), phase (the innermost `with phase("..."):` block of the
script enclosing a frame of the traceback) and raising library; otherwise the script's final
`converged ...` / `did NOT converge ...` line gives the convergence result.
"""

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Optional

from ._catalogue import SCENARIOS, UsageError
from ._expectations import expected_for
from ._outcome import AS_EXPECTED, Outcome, classify
from ._signatures import library_of, message_family, raising_library, refine_phase

_HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS_FILE = os.path.join(_HERE, "_jax", "_scenarios.py")
PROBLEMS_FILE = os.path.join(_HERE, "_jax", "_problems.py")

# The convergence definition of repro._jax._run.Budget() (tests check they agree).
MAX_STEPS, LOSS_TOL, GRAD_TOL = 50, 1e-6, 1e-3

SCRIPT_NAME = "lbfgs_equinox_repro.py"

# repro._jax._run.contents(mlp_problem()[0], "mlp"), fixed by construction (tests check it): the
# MLP's activations are functions, its arrays all float.
BUILTIN_CONTENTS = {"non_array_leaves": True, "int_arrays": False, "bool_arrays": False,
                    "low_precision_floats": False, "mixed_float_dtypes": False, "low_precision_loss": False,
                    "problem": "mlp"}

LINKS = (
    ("optax#1017", "https://github.com/google-deepmind/optax/issues/1017"),
    ("optax#1304", "https://github.com/google-deepmind/optax/issues/1304"),
    ("optax#1399", "https://github.com/google-deepmind/optax/issues/1399"),
    ("equinox#796", "https://github.com/patrick-kidger/equinox/issues/796"),
)

SUBJECT = "optax.lbfgs on an Equinox module"

# --- Cutting the script out of the sources ----------------------------------------


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
    if mode not in ("eager", "jit"):
        raise UsageError(f"unknown mode {mode!r}; known: eager, jit")
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


# --- Running it --------------------------------------------------------------------

_ENV_PROBE = r"""
import json, platform, sys
from importlib import metadata
env = {"python": platform.python_version(), "implementation": platform.python_implementation(),
       "platform": platform.platform(), "executable": sys.executable}
for name in ("jax", "jaxlib", "optax", "equinox", "numpy"):
    try:
        env[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        env[name] = None
try:
    import jax
    env["backend"] = jax.default_backend()
    env["devices"] = [str(d) for d in jax.devices()]
except Exception as error:
    env["devices"] = ["unavailable: %s" % error]
print("ENV-JSON " + json.dumps(env))
"""


def _start_environment(python=None):
    return subprocess.Popen([python or sys.executable, "-c", _ENV_PROBE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish_environment(proc, timeout=300):
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError("environment probe timed out") from None
    for line in stdout.splitlines():
        if line.startswith("ENV-JSON "):
            return json.loads(line[len("ENV-JSON "):])
    raise RuntimeError(f"environment probe failed: {(stderr or stdout).strip()[-500:]}")


def environment(python=None, *, timeout=300):
    """python, platform, jax, jaxlib, optax, equinox, numpy and devices of `python` (a fresh process)."""
    return _finish_environment(_start_environment(python), timeout)


@dataclasses.dataclass
class Run:
    returncode: Optional[int]  # None: timed out
    output: str  # stdout + stderr, as printed
    seconds: float


def run_script(script_text, *, python=None, timeout=300, workdir=None):
    """Write the script to a fresh directory and run it there with `python` (default: this one)."""
    import time

    with tempfile.TemporaryDirectory(prefix="repro-report-", dir=workdir) as folder:
        path = os.path.join(folder, SCRIPT_NAME)
        with open(path, "w", encoding="utf-8") as f:
            f.write(script_text)
        start = time.perf_counter()
        try:
            proc = subprocess.run([python or sys.executable, path], capture_output=True, text=True,
                                  timeout=timeout, cwd=folder)
        except subprocess.TimeoutExpired as error:
            out = (error.stdout or b"") + (error.stderr or b"")
            text = out.decode(errors="replace") if isinstance(out, bytes) else out
            return Run(None, text, round(time.perf_counter() - start, 3))
        # stderr after stdout: the traceback comes last, as in a terminal where it was raised.
        return Run(proc.returncode, proc.stdout + proc.stderr, round(time.perf_counter() - start, 3))


# --- Reading the output back --------------------------------------------------------

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
_EXC = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::(?: (?P<message>.*))?)?$")
_RESULT = re.compile(r"^(?P<what>converged|did NOT converge)\b(?P<rest>.*)$")
_STEPS = re.compile(r"in (\d+) steps")


@dataclasses.dataclass
class Frame:
    file: str
    line: int
    func: str
    text: list  # the lines printed under the File line (source, ^^^ markers)


@dataclasses.dataclass
class Traceback:
    head: list  # lines before the last "Traceback (most recent call last):" (output, chained tbs)
    frames: list
    exc_type: str
    message: str
    tail: list  # the exception lines as printed


def parse_traceback(output):
    """The last traceback in `output`, or None."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")]
    if not starts:
        return None
    start = starts[-1]
    frames, i = [], start + 1
    while i < len(lines):
        match = _FRAME.match(lines[i])
        if match:
            frames.append(Frame(match["file"], int(match["line"]), match["func"], []))
        elif lines[i].startswith("    ") and frames:
            frames[-1].text.append(lines[i])
        elif lines[i].startswith("  ") and "[Previous line repeated" in lines[i] and frames:
            frames[-1].text.append(lines[i])
        else:
            break
        i += 1
    tail = lines[i:]
    match = _EXC.match(tail[0]) if tail else None
    if not match:
        return None
    message = "\n".join([match["message"] or ""] + tail[1:]).strip()
    return Traceback(lines[:start], frames, match["type"].rsplit(".", 1)[-1], message, tail)


def phase_lines(script_text):
    """[(first line, last line, name)] of every `with phase("name"):` block in the script."""
    spans = []
    for node in ast.walk(ast.parse(script_text)):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "phase"
                        and call.args and isinstance(call.args[0], ast.Constant)):
                    spans.append((node.lineno, node.end_lineno, str(call.args[0].value)))
    return spans


def _is_script(frame, script_path_hint=SCRIPT_NAME):
    return os.path.basename(frame.file) == script_path_hint


def phase_of(traceback, script_text, script_name=SCRIPT_NAME):
    """The innermost `with phase(...)` block enclosing the deepest script frame that has one."""
    spans = phase_lines(script_text)
    for frame in reversed(traceback.frames):
        if os.path.basename(frame.file) != script_name:
            continue
        inside = [(end - start, name) for start, end, name in spans if start <= frame.line <= end]
        if inside:
            return min(inside)[1]
    return "setup"


def outcome_from_run(run, script_text, *, scenario, mode, versions, contents, script_name=SCRIPT_NAME):
    """An Outcome (repro._outcome) for what the script printed, classified like the harness does."""
    outcome = Outcome(scenario=scenario or "script", mode=mode or "?", status="error", versions=versions,
                      contents=contents or {}, returncode=run.returncode, seconds=run.seconds)
    if run.returncode is None:
        outcome.status = "timeout"
        return outcome
    parsed = parse_traceback(run.output) if run.returncode != 0 else None
    if parsed:
        files = [f.file for f in parsed.frames]
        outcome.exc_type = parsed.exc_type
        outcome.message = parsed.message.splitlines()[0][:500] if parsed.message else ""
        outcome.family = message_family(parsed.message)
        outcome.phase = refine_phase(phase_of(parsed, script_text, script_name), files)
        outcome.library = raising_library(files)
        outcome.traceback = "\n".join(["Traceback (most recent call last):"]
                                      + [line for f in parsed.frames for line in _frame_lines(f)] + parsed.tail)
        return outcome
    if run.returncode != 0:
        outcome.status = "crash"
        outcome.output = run.output[-2000:]
        return outcome
    results = [m for m in map(_RESULT.match, run.output.splitlines()) if m]
    if not results:
        outcome.status = "ran"  # exited 0 without saying whether it converged
        return outcome
    last = results[-1]
    steps = _STEPS.search(last["rest"])
    outcome.iterations = int(steps.group(1)) if steps else None
    if last["what"] == "converged":
        outcome.status = "converged"
    else:
        outcome.status, outcome.family = "not_converged", "not_converged"
        outcome.message = "did not converge" + last["rest"]
    return outcome


def _frame_lines(frame):
    return [f'  File "{frame.file}", line {frame.line}, in {frame.func}'] + frame.text


# Frames of jax/equinox that only wrap the call (tracing, jit dispatch, tree plumbing), and stdlib.
_NOISE = re.compile(
    r"[\\/](traceback_util|linear_util|api_util|profiler|pjit|partial_eval|core|source_info_util|"
    r"_jit|_module|_compile_utils|_ad|_make_jaxpr|_eval_shape|_filters|contextlib|functools|"
    r"interpreters[\\/]\w+|dispatch|config)\.py$")


def trim_traceback(output, script_name=SCRIPT_NAME):
    """The output with its last traceback cut to the frames that matter: the script, optax, and the
    library frames where the error is raised. Wrapper frames are replaced by one `...` line each run."""
    parsed = parse_traceback(output)
    if parsed is None:
        return output.rstrip("\n")
    frames = parsed.frames

    def kind(frame):
        if os.path.basename(frame.file) == script_name:
            return "script"
        return library_of(frame.file) or "other"

    kinds = [kind(f) for f in frames]
    last_ours = max((i for i, k in enumerate(kinds) if k in ("script", "optax")), default=-1)
    keep = []
    for i, (frame, k) in enumerate(zip(frames, kinds)):
        if k in ("script", "optax"):
            keep.append(not _NOISE.search(frame.file))
        elif k in ("jax", "jaxlib", "equinox"):
            # Below the last script/optax frame: where it is raised. Keep the entry point and the
            # raising frames, drop the wrappers in between.
            tail = i > last_ours
            keep.append(tail and (i == len(frames) - 1 or not _NOISE.search(frame.file)))
        else:
            keep.append(i == len(frames) - 1)
    out, hidden = ["Traceback (most recent call last):"], 0
    for frame, kept in zip(frames, keep):
        if kept:
            if hidden:
                out.append(f"  ... {hidden} frame{'s' if hidden > 1 else ''} hidden ...")
                hidden = 0
            out += _frame_lines(frame)
        else:
            hidden += 1
    if hidden:
        out.append(f"  ... {hidden} frame{'s' if hidden > 1 else ''} hidden ...")
    tail = parsed.tail
    if len(tail) > 25:  # huge reprs in the message (a whole module)
        tail = tail[:20] + [f"... ({len(tail) - 20} more lines in the full output)"]
    head = [line for line in parsed.head if not line.startswith(("  ", "Traceback"))]
    return "\n".join(head + out + tail)


# --- The report ---------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    title: str
    script: str
    run: Run
    outcome: Outcome
    expected: Optional[object]  # repro._outcome.Expected, or None (UNKNOWN)
    verdict: str
    env: dict
    scenario: Optional[str] = None
    mode: Optional[str] = None
    summary: str = ""

    @property
    def trimmed_output(self):
        return trim_traceback(self.run.output)

    def to_dict(self):
        return {
            "title": self.title,
            "scenario": self.scenario,
            "mode": self.mode,
            "summary": self.summary,
            "script": self.script,
            "returncode": self.run.returncode,
            "seconds": self.run.seconds,
            "output": self.run.output,
            "trimmed_output": self.trimmed_output,
            "outcome": {k: v for k, v in self.outcome.to_dict().items() if k not in ("traceback",)},
            "signature": self.outcome.signature(),
            "expected": None if self.expected is None else dataclasses.asdict(self.expected),
            "expected_description": "UNKNOWN" if self.expected is None else self.expected.describe(),
            "verdict": self.verdict,
            "as_expected": self.verdict in {str(v) for v in AS_EXPECTED},
            "environment": self.env,
            "links": [url for _, url in LINKS],
            "markdown": self.markdown(),
        }

    def markdown(self):
        return render_markdown(self)


def _versions_of(env):
    return {k: env.get(k) for k in ("python", "jax", "jaxlib", "optax", "equinox", "numpy")}


def _short(message, limit=60):
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def make_title(outcome, scenario, env):
    """One line: what happened and the versions, e.g. `...: ValueError Expected None, got MLP( in update (...)`."""
    versions = f"jax {env.get('jax')}, optax {env.get('optax')}, equinox {env.get('equinox')}"
    named = f" {scenario}" if scenario else ""
    if outcome.status == "error":
        what = f"{outcome.exc_type} {_short(outcome.message)} in {outcome.phase}".replace("  ", " ")
    elif outcome.status == "converged":
        what = f"workaround{named} works, converges in {outcome.iterations} steps"
    elif outcome.status == "not_converged":
        what = f"pattern{named} does not converge in {outcome.iterations} steps"
    elif outcome.status == "timeout":
        what = f"reproducer{named} times out"
    elif outcome.status == "crash":
        what = f"reproducer{named} crashes (exit code {outcome.returncode})"
    else:
        what = f"reproducer{named} runs without error"
    return f"{SUBJECT}: {what} ({versions})"


def render_report(script_text, *, scenario=None, mode=None, contents=None, summary="", python=None,
                  timeout=300, env=None):
    """Run `script_text` (any standalone reproducer) with `python` in a fresh process and build the
    report around its real output. `scenario`/`mode`/`contents` (repro._jax._run.contents flags) select
    the expectation row; without them the expectation is UNKNOWN unless a generic row applies."""
    probe = _start_environment(python) if env is None else None  # alongside the script: it is light
    run = None
    try:
        run = run_script(script_text, python=python, timeout=timeout)
    finally:
        if probe is not None and run is None:
            probe.kill()
            probe.communicate()
    env = env if env is not None else _finish_environment(probe)
    versions = _versions_of(env)
    outcome = outcome_from_run(run, script_text, scenario=scenario, mode=mode, versions=versions,
                               contents=contents or {})
    expected = expected_for(scenario, mode, versions, contents or {}) if scenario and mode else None
    verdict = str(classify(expected, outcome)) if outcome.status != "ran" else "UNKNOWN"
    return Report(title=make_title(outcome, scenario, env), script=script_text, run=run, outcome=outcome,
                  expected=expected, verdict=verdict, env=env, scenario=scenario, mode=mode, summary=summary)


def scenario_report(scenario, mode="eager", *, python=None, timeout=300):
    """The report for one catalogue scenario on the built-in problem, run in this environment."""
    script = script_for_scenario(scenario, mode)
    return render_report(script, scenario=scenario, mode=mode, contents=dict(BUILTIN_CONTENTS),
                         summary=SCENARIOS[scenario], python=python, timeout=timeout)


def fence(text, lang=""):
    """A fenced code block that survives backticks inside `text`."""
    longest = max([len(run) for run in re.findall(r"`+", text)] + [2])
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _observed(outcome):
    if outcome.status == "error":
        return f"`{outcome.exc_type}` ({outcome.family}) in {outcome.phase}, raised in {outcome.library}"
    if outcome.status in ("converged", "not_converged"):
        return outcome.status.replace("_", " ") + (f" after {outcome.iterations} steps"
                                                  if outcome.iterations is not None else "")
    return outcome.status


def _expected_text(expected):
    if expected is None:
        return "UNKNOWN: nothing measured for these versions"
    if expected.converges:
        return "converges"
    return f"`{expected.exc_type}` ({expected.family}) in {expected.phase}, raised in {expected.library}"


_VERDICT_TEXT = {
    "REPRODUCED": "it fails exactly as recorded for these versions.",
    "WORKAROUND-OK": "it converges, as recorded for these versions.",
    "FIXED-UPSTREAM": "this used to fail here and now converges: possibly fixed upstream.",
    "REGRESSION": "this is recorded to converge here, but it did not.",
    "CHANGED": "it fails, but not in the way recorded for these versions.",
    "CRASH": "the process died without a Python traceback.",
    "TIMEOUT": "the script did not finish in time.",
    "UNKNOWN": "nothing was measured for these versions, so there is no expectation to compare with.",
}


def render_markdown(report):
    o, env = report.outcome, report.env
    out = [f"# {report.title}", ""]
    if o.status == "converged":
        out += ["This is a **workaround that works**: the call pattern below converges with these versions. "
                "It is posted for reference next to the failing patterns.", ""]
    if report.summary:
        out += [f"Call pattern: {report.summary}" + (f" (`{report.scenario}`, {report.mode})." if report.scenario
                                                    else "."), ""]
    out += ["`optax.lbfgs()` is given an Equinox module whose leaves are not all arrays (an `eqx.nn.MLP`: "
            "its activations are functions).", ""] if report.scenario else []
    out += ["## Reproducer", "",
            f"Standalone: needs only jax, optax, equinox and numpy. Save as `{SCRIPT_NAME}` and run "
            f"`python {SCRIPT_NAME}`.", "",
            fence(report.script, "python"), ""]
    out += ["## Actual output", ""]
    trimmed, full = report.trimmed_output, report.run.output.rstrip("\n")
    if o.status == "error":
        out += ["Traceback trimmed to the script, optax and the frames where the error is raised:", ""]
    out += [fence(trimmed or "(no output)"), ""]
    same = " (nothing was trimmed)" if trimmed == full else ""
    out += [f"<details><summary>Full output, {len(full.splitlines())} lines{same}</summary>", "",
            fence(full or "(no output)"), "", "</details>", ""]
    out += ["## Expected vs actual", "",
            "| | |", "|---|---|",
            f"| Expected (repro's measured table for these versions) | {_cell(_expected_text(report.expected))} |",
            f"| Actual | {_cell(_observed(o))} |",
            f"| Verdict | **{report.verdict}**: {_cell(_VERDICT_TEXT.get(report.verdict, ''))} |", ""]
    if o.status == "error" and o.message:
        out += [f"Message (first line): `{_cell(_short(o.message, 200)).replace('`', chr(39))}`", ""]
    summary_line = ", ".join(f"{k} {env.get(k)}" for k in ("python", "jax", "jaxlib", "optax", "equinox", "numpy"))
    out += ["## Environment", "", f"<details><summary>{summary_line}</summary>", "",
            "| | |", "|---|---|"]
    for key in ("python", "implementation", "platform", "jax", "jaxlib", "optax", "equinox", "numpy", "backend"):
        if key in env:
            out.append(f"| {key} | {_cell(env[key])} |")
    out.append(f"| devices | {_cell(', '.join(env.get('devices') or []))} |")
    out += ["", "</details>", ""]
    out += ["## Related upstream threads", ""] + [f"- {name}: {url}" for name, url in LINKS]
    command = f"repro report --scenario {report.scenario} --mode {report.mode}" if report.scenario else "repro"
    out += ["", f"<sub>Generated by `{command}`; "
            f"the script above is the one that ran, in a fresh `{os.path.basename(env.get('executable') or 'python')}` "
            f"process ({report.run.seconds:.1f} s).</sub>", ""]
    return "\n".join(out)


# --- CLI -------------------------------------------------------------------------------


def cmd_report(argv):
    from ._cli import _Parser, _check_writable

    p = _Parser(prog="repro report", description="A paste-ready upstream bug report for one scenario: "
                "runs its standalone reproducer here, in a fresh process.")
    p.add_argument("--scenario", required=True, metavar="NAME", help=f"one of: {', '.join(SCENARIOS)}")
    p.add_argument("--mode", default="eager", choices=("eager", "jit"), help="eager (default) or jit")
    p.add_argument("--format", default="md", choices=("md", "json"), help="md (default) or json")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the script (default 300)")
    args = p.parse_args(argv)
    if args.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {args.scenario!r}; known: {', '.join(SCENARIOS)}")
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    if args.output:
        _check_writable(args.output)
        if os.path.isdir(args.output):
            raise UsageError(f"cannot write {args.output}: it is a directory")
        if os.path.exists(args.output) and not os.access(args.output, os.W_OK):
            raise UsageError(f"cannot write {args.output}: permission denied")
    report = scenario_report(args.scenario, args.mode, timeout=args.timeout)
    text = json.dumps(report.to_dict(), indent=2) if args.format == "json" else report.markdown()
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text if text.endswith("\n") else text + "\n")
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error.strerror or error}") from None
        print(f"wrote {args.output}: {report.title}", file=sys.stderr)
    else:
        print(text)
    return 0
