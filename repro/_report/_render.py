"""The report as Markdown: title, reproducer, output, expected vs actual, environment, threads."""

import os
import re

from .._outcome import Verdict
from .._versions import PACKAGES, SCRIPT, TRACKED, version_text
from ._extract import SCRIPT_NAME

LINKS = (
    ("optax#1017", "https://github.com/google-deepmind/optax/issues/1017"),
    ("optax#1304", "https://github.com/google-deepmind/optax/issues/1304"),
    ("optax#1399", "https://github.com/google-deepmind/optax/issues/1399"),
    ("equinox#796", "https://github.com/patrick-kidger/equinox/issues/796"),
)

SUBJECT = "optax.lbfgs on an Equinox module"


def _short(message, limit=60):
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def make_title(outcome, scenario, env):
    """One line: what happened and the versions, e.g. `...: ValueError Expected None, got MLP( in update (...)`."""
    versions = ", ".join(f"{name} {version_text(env, name)}" for name in ("jax", "optax", "equinox"))
    named = f" {scenario}" if scenario else ""
    if outcome.status == "error":
        what = f"{outcome.exc_type} {_short(outcome.message)} in {outcome.phase}".replace("  ", " ")
    elif outcome.status == "converged":
        what = f"workaround{named} works, converges in {outcome.iterations} steps"
    elif outcome.status == "not_converged":
        what = f"pattern{named} does not converge in {outcome.iterations} steps"
    elif outcome.status == "wrong_result":
        what = (f"pattern{named} runs without an error but computes a wrong result (departs from L-BFGS on "
                f"the flat vector at iteration {(outcome.reference or {}).get('departed_at')})")
    elif outcome.status == "timeout":
        what = f"reproducer{named} times out"
    elif outcome.status == "crash":
        what = f"reproducer{named} crashes (exit code {outcome.returncode})"
    else:
        what = f"reproducer{named} runs without error"
    return f"{SUBJECT}: {what} ({versions})"


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
        same = ", matching the flat-vector reference" if outcome.agrees() else ""
        return outcome.status.replace("_", " ") + (f" after {outcome.iterations} steps"
                                                  if outcome.iterations is not None else "") + same
    if outcome.status == "wrong_result":
        return f"wrong result: {outcome.message}"
    return outcome.status


def _expected_text(expected):
    if expected is None:
        return "UNKNOWN: nothing measured for these versions"
    return expected.describe()


def _expected_label(report):
    """Whose expectations the Expected row shows: these versions', or a source build's base release."""
    source = _cell(report.expected_from or "")
    if not report.base:
        return f"Expected (repro's survey data: {source})"
    bases = ", ".join(f"{name} {base or '(unknown)'}" for name, base in report.base.items())
    return (f"Expected (repro's survey data for the base release of the source build: {bases}; "
            f"a hint, not a measurement: {source})")


def render_markdown(report):
    """The Markdown of a Report (repro._report._compose)."""
    o, env = report.outcome, report.env
    out = [f"# {report.title}", ""]
    if o.status == "converged" and o.agrees():
        out += ["This is a **workaround that works**: the call pattern below converges with these versions, "
                "and its iterates match the same L-BFGS run on the flat vector of the float arrays. "
                "It is posted for reference next to the failing patterns.", ""]
    if o.status == "wrong_result":
        out += ["**No error is raised, but the result is wrong**: the call pattern below runs to the end, yet "
                "its iterates depart from the same `optax.lbfgs` run on the flat vector of the module's float "
                "arrays (what it must compute), as the script's last line shows.", ""]
    if report.summary:
        out += [f"Call pattern: {report.summary}" + (f" (`{report.scenario}`, {report.mode})." if report.scenario
                                                    else "."), ""]
    if report.problem:
        out += [f"`optax.lbfgs()` is given the Equinox module defined in `{report.problem}` (its source is part "
                "of the script below).", ""]
    elif report.scenario:
        out += ["`optax.lbfgs()` is given an Equinox module whose leaves are not all arrays (an `eqx.nn.MLP`: "
                "its activations are functions).", ""]
    out += ["## Reproducer", "",
            f"Standalone: needs only jax, optax, equinox and numpy. Save as `{SCRIPT_NAME}` and run "
            f"`uv run {SCRIPT_NAME}`: its `# /// script` block (PEP 723) pins the versions it ran with "
            f"(or `python {SCRIPT_NAME}` where those are installed).", "",
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
            f"| {_expected_label(report)} | {_cell(_expected_text(report.expected))} |",
            f"| Actual | {_cell(_observed(o))} |",
            f"| Verdict | **{report.verdict}**: {_cell(Verdict(report.verdict).meaning)} |", ""]
    if o.status == "error" and o.message:
        out += [f"Message (first line): `{_cell(_short(o.message, 200)).replace('`', chr(39))}`", ""]
    summary_line = ", ".join(f"{k} {version_text(env, k) if k in TRACKED else env.get(k)}" for k in ("python", *PACKAGES))
    out += ["## Environment", "", f"<details><summary>{summary_line}</summary>", "",
            "| | |", "|---|---|"]
    for key in ("python", "implementation", "platform", *PACKAGES, "backend"):
        if key in env:
            out.append(f"| {key} | {_cell(env[key])} |")
    for name, source in (env.get("sources") or {}).items():
        out.append(f"| {name} source | {_cell(source.get('url'))} at {source.get('commit') or 'no commit'}"
                   + (" with uncommitted changes |" if source.get("dirty") else " |"))
    out.append(f"| devices | {_cell(', '.join(env.get('devices') or []))} |")
    if env.get("jax_environment_info"):
        out += ["", "`jax.print_environment_info()`:", "", fence(env["jax_environment_info"])]
    out += ["", "</details>", ""]
    out += ["## Related upstream threads", ""] + [f"- {name}: {url}" for name, url in LINKS]
    command = f"{SCRIPT} report --scenario {report.scenario} --mode {report.mode}" if report.scenario else SCRIPT
    command += f" --problem {report.problem}" if report.problem else ""
    out += ["", f"<sub>Generated by `{command}`; "
            f"the script above is the one that ran, in a fresh `{os.path.basename(env.get('executable') or 'python')}` "
            f"process ({report.run.seconds:.1f} s).</sub>", ""]
    return "\n".join(out)
