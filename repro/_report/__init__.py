"""`repro report`: a paste-ready upstream bug report around a standalone reproducer. No JAX here.

Host side only; one file per job, in the order a report is made:

    _extract.py   cut the standalone script (scenario, solve loop, flat-vector reference, oracle)
                  out of repro/_jax's sources (script_for_scenario)
    _execute.py   run it as-is in a fresh process (run_script -> Run)
    _probe.py     the environment probe that runs beside it (python, packages, devices)
    _parse.py     read the outcome back from its output (parse_traceback, outcome_from_run)
    _trim.py      trim the traceback to the frames that matter (trim_traceback)
    _render.py    the Markdown (render_markdown, fence, LINKS)
    _compose.py   all of it together: Report, render_report, scenario_report, report

Public as `repro.report(...)` (a Report) and `repro.reproducer(...)` (the script text).
"""

from ._compose import Report, render_report, report, scenario_report
from ._execute import Run, run_script
from ._extract import (
    BUILTIN_CONTENTS,
    ORACLE_FILE,
    PROBLEMS_FILE,
    SCENARIOS_FILE,
    SCRIPT_NAME,
    script_for_scenario,
    script_imports,
)
from ._parse import Frame, Traceback, outcome_from_run, parse_traceback, phase_lines, phase_of
from ._render import LINKS, fence, make_title, render_markdown
from ._trim import trim_traceback

reproducer = script_for_scenario

__all__ = [
    "BUILTIN_CONTENTS", "LINKS", "ORACLE_FILE", "PROBLEMS_FILE", "SCENARIOS_FILE",
    "SCRIPT_NAME", "Frame", "Report", "Run", "Traceback", "fence", "make_title", "outcome_from_run",
    "parse_traceback", "phase_lines", "phase_of", "render_markdown", "render_report", "report", "reproducer",
    "run_script", "scenario_report", "script_for_scenario", "script_imports", "trim_traceback",
]
