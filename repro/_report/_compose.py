"""The report: run the script (and the environment probe beside it), read its outcome back,
judge it against the measured table, and keep it all in a Report. No JAX here.

`report` and `reproducer` (script_for_scenario) are public as `repro.report` and
`repro.reproducer`.
"""

import dataclasses
import os
import time
from typing import Optional

from .._catalogue import SCENARIOS, UsageError
from .._expectations import Expectation, expectation_for, verdict as judge_against
from .._options import problem_defines_optimum
from .._outcome import AnyOf, Expected, Outcome
from .._progress import Progress
from .._results import as_expected, base_releases
from .._versions import PACKAGES, header
from ._execute import Run, run_script
from ._extract import BUILTIN_CONTENTS, SCRIPT_NAME, script_for_scenario
from ._parse import outcome_from_run
from ._probe import finish_probe, probe_versions, start_probe
from ._render import LINKS, make_title, render_markdown
from ._trim import trim_traceback


@dataclasses.dataclass
class Report:
    """A report: the script, what it printed, the outcome read back, expectation, verdict, environment.
    `.markdown()` to paste upstream, `.to_dict()` for JSON."""

    title: str
    script: str
    run: Run
    outcome: Outcome
    expected: Optional[Expected | AnyOf]  # None: UNKNOWN
    verdict: str
    env: dict
    scenario: Optional[str] = None
    mode: Optional[str] = None
    summary: str = ""
    problem: Optional[str] = None  # the problem file's name, when the module came from one
    base: dict = dataclasses.field(default_factory=dict)  # source builds: name -> the base release judged by
    expected_from: str = ""  # where the expectation comes from: measured in a cell, inferred, or why none

    @property
    def trimmed_output(self) -> str:
        return trim_traceback(self.run.output)

    def to_dict(self) -> dict:
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
            "expected_from": self.expected_from,
            "verdict": self.verdict,
            "as_expected": as_expected(self.verdict),
            "environment": self.env,
            "problem": self.problem,
            "base": self.base,
            "links": [url for _, url in LINKS],
            "markdown": self.markdown(),
        }

    def markdown(self) -> str:
        return render_markdown(self)


def _versions_of(env):
    return {k: env.get(k) for k in ("python", *PACKAGES, "sources") if k in env or k != "sources"}


def render_report(script_text, *, scenario=None, mode=None, contents=None, summary="", python=None,
                  timeout=300, env=None, problem=None, progress=None):
    """Run `script_text` (any standalone reproducer) with `python` in a fresh process and build the
    report around its real output. `scenario`/`mode`/`contents` (repro._jax._run.contents flags) select
    the expectation row; without them the expectation is UNKNOWN unless a generic row applies.
    `progress` (repro._progress.Progress): a line when the script has run."""
    progress = progress or Progress(quiet=True)
    probe = start_probe(python) if env is None else None  # alongside the script: it is light
    run = None
    try:
        progress.working(f"running {SCRIPT_NAME}" + (f" ({scenario}, {mode})" if scenario else ""))
        run = run_script(script_text, python=python, timeout=timeout)
    finally:
        if probe is not None and run is None:
            probe.kill()
            probe.communicate()
    env = env if env is not None else finish_probe(probe)
    versions = _versions_of(env)
    outcome = outcome_from_run(run, script_text, scenario=scenario, mode=mode, versions=versions,
                               contents=contents or {})
    bases = base_releases(versions)
    judged = {**versions, **{k: v for k, v in bases.items() if v}}
    expectation = (expectation_for(scenario, mode, judged, contents or {}) if scenario and mode
                   else Expectation(None, why="no scenario given: nothing to compare with"))
    expected = expectation.expected
    verdict = str(judge_against(expectation, outcome)[0]) if outcome.status != "ran" else "UNKNOWN"
    what = outcome.status if outcome.status == "ran" else outcome.signature()
    progress.done(f"{SCRIPT_NAME}" + (f" {scenario} {mode}" if scenario else "") + f": {what}, {verdict}", run.seconds)
    return Report(title=make_title(outcome, scenario, env), script=script_text, run=run, outcome=outcome,
                  expected=expected, verdict=verdict, env=env, scenario=scenario, mode=mode, summary=summary,
                  problem=problem and os.path.basename(problem), base=bases,
                  expected_from=expectation.describe_source())


def scenario_report(scenario, mode="eager", *, python=None, timeout=300, problem=None, contents=None, progress=None):
    """The report for one catalogue scenario, run with `python` (default: this interpreter): on
    the built-in problem, or on a problem file's module (`problem`, a path; `contents`: its
    content flags, as the check child reported them), whose source the script embeds. The
    env's versions are read first and pinned in the script's PEP 723 block."""
    progress = progress or Progress(quiet=True)
    progress.expect(2)
    progress.working("reading the versions to pin")
    start = time.perf_counter()
    versions = probe_versions(python)
    progress.done(f"environment: {header(versions)}", time.perf_counter() - start)
    if problem is None:
        script = script_for_scenario(scenario, mode, versions=versions)
        contents = dict(BUILTIN_CONTENTS)
    else:
        with open(problem, encoding="utf-8") as f:
            source = f.read()
        optimum = "optimum" if problem_defines_optimum(problem) else "None"
        script = script_for_scenario(scenario, mode, problem_source=source, problem_expr=f"(model, loss, {optimum})",
                                     subject=f"the module defined in {os.path.basename(problem)}", versions=versions)
    return render_report(script, scenario=scenario, mode=mode, contents=contents, summary=SCENARIOS[scenario],
                         python=python, timeout=timeout, problem=problem, progress=progress)


def report(scenario: Optional[str] = None, mode: str = "eager", *, script: Optional[str] = None,
           contents: Optional[dict] = None, summary: str = "", python: Optional[str] = None,
           timeout: float = 300, progress: Optional[Progress] = None) -> Report:
    """Run a standalone reproducer in a fresh process and build the upstream bug report around
    what it really printed. Returns a Report (`.markdown()`, `.to_dict()`, `.outcome`, `.verdict`).

        repro.report("no_params", "jit")          the built-in problem's reproducer (`repro report`)
        repro.report("init_unfiltered", "jit", script=text, contents=flags)
                                                  any script, judged as that scenario on a module
                                                  with these content flags (repro._jax._run.contents)
        repro.report(script=text)                 any script; the verdict is UNKNOWN

    `python`: the interpreter that runs the script (default: this one); `timeout` in seconds;
    `progress`: a repro._progress.Progress to report to (default: silent).
    """
    if script is None:
        if scenario is None:
            raise UsageError("give a scenario, or a script (e.g. from repro.reproducer)")
        return scenario_report(scenario, mode, python=python, timeout=timeout, progress=progress)
    return render_report(script, scenario=scenario, mode=mode if scenario else None, contents=contents,
                         summary=summary, python=python, timeout=timeout, progress=progress)
