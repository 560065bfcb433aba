"""Read the outcome back from what the script printed. No JAX here.

A traceback gives the exception type, message family (repro._signatures), phase (the
innermost `with phase("..."):` block of the script enclosing a frame of the traceback) and
raising library; otherwise the script's `converged ...` / `did NOT converge ...` line gives the
convergence result, and the oracle's line after it (`matches the flat-vector reference ...` or
`WRONG RESULT: departs ...`) whether the run computed what L-BFGS computes.
"""

import ast
import dataclasses
import os
import re

from .._outcome import Outcome
from .._signatures import message_family, raising_library, refine_phase
from ._extract import SCRIPT_NAME

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
_EXC = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::(?: (?P<message>.*))?)?$")
_RESULT = re.compile(r"^(?P<what>converged|did NOT converge)\b(?P<rest>.*)$")
_STEPS = re.compile(r"in (\d+) steps")
# The oracle's verdict line (repro._jax._oracle.Agreement.summary), printed last by the script.
_AGREEMENT = re.compile(
    r"^(?:WRONG RESULT: departs from the flat-vector reference at iteration (?P<departed>\d+): relative "
    r"deviation (?P<deviation>\S+) > (?P<allowed>\S+) allowed"
    r"|matches the flat-vector reference at all (?P<compared>\d+) iterates .*"
    r"|the flat-vector reference itself raised (?P<error>.*): nothing compared"
    r"|(?P<vacuous>the flat-vector reference cannot judge this run: .*))$")


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
                                      + [line for f in parsed.frames for line in frame_lines(f)] + parsed.tail)
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
        outcome.status = "not_converged"
        outcome.message = "did not converge" + last["rest"]
    _read_agreement(outcome, run.output)
    return outcome


def _read_agreement(outcome, output):
    """The oracle's line: whether the run matched the flat-vector reference (Outcome.reference)."""
    found = [m for m in map(_AGREEMENT.match, output.splitlines()) if m]
    if not found:
        return
    m = found[-1]
    if m["error"] is not None:
        outcome.reference = {"compared": 0, "departed_at": None, "reference_error": m["error"]}
    elif m["vacuous"] is not None:
        outcome.reference = {"compared": 1, "departed_at": None, "reference_error": None, "vacuous": True}
    elif m["departed"] is not None:
        outcome.reference = {"departed_at": int(m["departed"]), "deviation": float(m["deviation"]),
                             "allowed": float(m["allowed"]), "reference_error": None}
        outcome.status, outcome.message = "wrong_result", m.group(0)
    else:
        outcome.reference = {"compared": int(m["compared"]), "departed_at": None, "reference_error": None}


def frame_lines(frame):
    """A frame as the traceback printed it."""
    return [f'  File "{frame.file}", line {frame.line}, in {frame.func}'] + frame.text
