"""Run scenarios here, attach expectations and verdicts, render tables. No JAX.

A result row (`judge`) is the JSON of one judged Outcome; `repro.check`, `repro run` and
the matrix cells all produce and read these rows.
"""

from ._expectations import expectation_for
from ._isolate import run_many
from ._outcome import AS_EXPECTED, Verdict, classify
from ._versions import header, installed_versions


def as_expected(verdict):
    """Whether a verdict (a Verdict, or its name as read from JSON) means "as measured"."""
    try:
        return Verdict(verdict) in AS_EXPECTED
    except ValueError:  # a name this version does not know (a newer result file)
        return False


def judge(outcome):
    """A result row: the outcome plus what was expected and the verdict."""
    expectation = expectation_for(outcome.scenario, outcome.mode, outcome.versions, outcome.contents)
    expected = expectation.expected
    verdict = classify(expected, outcome)
    return {
        "scenario": outcome.scenario,
        "mode": outcome.mode,
        "expected": expected.describe() if expected else f"unknown ({expectation.describe_source()})",
        "expected_from": expectation.describe_source(),
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


def run_here(scenarios, modes, *, timeout, jobs, python=None, batch=False, versions=None, env=None):
    """Run each (scenario, mode) isolated (in this env, or `python`'s) and judge it.

    `versions`: the env's, used for a child that died before reporting its own; `env`: extra
    environment variables for the children."""
    outcomes = run_many([(s, m) for s in scenarios for m in modes], timeout=timeout, jobs=jobs, python=python,
                        batch=batch, env=env)
    versions = next((o.versions for o in outcomes if o.versions), None) or versions or installed_versions()
    for o in outcomes:  # a crashed child may not have reported versions: they are this env's
        o.versions = o.versions or versions
    return summarise([judge(o) for o in outcomes], versions)


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
