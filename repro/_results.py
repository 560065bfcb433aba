"""Run scenarios here, attach expectations and verdicts, render tables. No JAX.

A result row (`judge`) is the JSON of one judged Outcome; `repro.check`, `repro run` and
the matrix cells all produce and read these rows.
"""

import dataclasses

from ._expectations import expected_for
from ._isolate import run_many
from ._outcome import AS_EXPECTED, Verdict, classify
from ._progress import Progress
from ._versions import header, installed_versions


def as_expected(verdict):
    """Whether a verdict (a Verdict, or its name as read from JSON) means "as measured"."""
    try:
        return Verdict(verdict) in AS_EXPECTED
    except ValueError:  # a name this version does not know (a newer result file)
        return False


def judge(outcome):
    """A result row: the outcome plus what was expected and the verdict."""
    expected = expected_for(outcome.scenario, outcome.mode, outcome.versions, outcome.contents)
    verdict = classify(expected, outcome)
    return {
        "scenario": outcome.scenario,
        "mode": outcome.mode,
        "expected": expected.describe() if expected else "unknown (not measured for these versions)",
        "observed": outcome.observed(),
        "verdict": str(verdict),
        "signature": outcome.signature(),
        "outcome": outcome.to_dict(),
    }


def summarise(rows, versions):
    return {
        "versions": versions,
        "as_expected": all(as_expected(r["verdict"]) for r in rows),
        "results": rows,
    }


def run_here(scenarios, modes, *, timeout, jobs, python=None, batch=False, versions=None, env=None, progress=None):
    """Run each (scenario, mode) isolated (in this env, or `python`'s) and judge it.

    `versions`: the env's, used for a child that died before reporting its own; `env`: extra
    environment variables for the children; `progress` (repro._progress.Progress): a line per
    finished pair, `[5/16] seed_fix jit REPRODUCED 12 s`."""
    pairs = [(s, m) for s in scenarios for m in modes]
    on_outcome = _reporter(progress, versions or (installed_versions() if python is None else {})) if progress else None
    outcomes = run_many(pairs, timeout=timeout, jobs=jobs, python=python, batch=batch, env=env, on_outcome=on_outcome)
    versions = next((o.versions for o in outcomes if o.versions), None) or versions or installed_versions()
    for o in outcomes:  # a crashed child may not have reported versions: they are this env's
        o.versions = o.versions or versions
    return summarise([judge(o) for o in outcomes], versions)


def _reporter(progress, versions):
    """The run_many callback that reports each finished pair's verdict to `progress`; a pair
    reported again (its process died at exit after reporting) is a note, not a second count."""
    seen = set()

    def on_outcome(outcome, seconds):
        verdict = judge(dataclasses.replace(outcome, versions=outcome.versions or versions))["verdict"]
        pair = (outcome.scenario, outcome.mode)
        if pair in seen:
            progress.note(f"  {outcome.scenario} {outcome.mode} is {verdict} after all: {outcome.message}")
            return
        seen.add(pair)
        progress.done(f"{outcome.scenario} {outcome.mode} {verdict}", seconds)

    return on_outcome


def render_table(result):
    rows = result["results"]
    cols = ("scenario", "mode", "expected", "observed", "verdict")
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    line = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()
    out = [header(result["versions"]), "", line(cols), line("-" * w for w in widths)]
    out += [line(r[c] for c in cols) for r in rows]
    failing = [r for r in rows if not as_expected(r["verdict"])]
    out.append("")
    if failing:
        out.append(f"{len(failing)} of {len(rows)} not as expected:")
        for r in failing:
            o = r["outcome"]
            detail = o.get("message") or ""
            out.append(f"  {r['scenario']} [{r['mode']}] {r['verdict']}: {detail}")
            if o.get("output"):
                out.append("    output: " + o["output"].strip().splitlines()[-1][:200])
    else:
        out.append(f"all {len(rows)} as expected")
    return "\n".join(out)
