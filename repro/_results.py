"""Run scenarios here, attach expectations and verdicts, render tables. No JAX.

A result row (`judge`) is the JSON of one judged Outcome; `repro.check`, `repro run` and
the matrix cells all produce and read these rows.

A tracked package built from a source (a git commit, a local checkout) has no measured
expectations of its own: it is judged by what its base release did (`base_releases`), as a
hint. Its row names that base, so REPRODUCED/WORKAROUND-OK there mean "as the base release",
and any other verdict is what the source changes (FIXED-UPSTREAM: an expected failure stopped).
"""

import dataclasses

from ._errors import IndexUnreachable, UsageError
from ._expectations import expectation_for, verdict
from ._index import base_release
from ._isolate import run_many
from ._outcome import AS_EXPECTED, Verdict
from ._versions import TRACKED, header, installed_versions, version_text


def as_expected(verdict):
    """Whether a verdict (a Verdict, or its name as read from JSON) means "as measured"."""
    try:
        return Verdict(verdict) in AS_EXPECTED
    except ValueError:  # a name this version does not know (a newer result file)
        return False


def base_releases(versions):
    """{name: base release or None} for each tracked package `versions` says was built from a
    source: the version it claims when that is a release, else the last release before it
    (repro._index.base_release; None where the package index would be needed and cannot be read)."""
    sources = versions.get("sources") or {}
    bases = {}
    for name in TRACKED:
        if name in sources:
            try:
                bases[name] = base_release(name, versions.get(name))
            except (IndexUnreachable, UsageError):
                bases[name] = None
    return bases


def judge(outcome):
    """A result row: the outcome plus what was expected (and where that comes from: measured,
    inferred, or why there is nothing), the verdict and, where there is one, the note beside it
    (repro._expectations.verdict). A source build is judged against its base release's
    expectations, named in `base`."""
    bases = base_releases(outcome.versions or {})
    versions = {**(outcome.versions or {}), **{k: v for k, v in bases.items() if v}}
    expectation = expectation_for(outcome.scenario, outcome.mode, versions, outcome.contents)
    expected = expectation.expected
    found, note = verdict(expectation, outcome)
    row = {
        "scenario": outcome.scenario,
        "mode": outcome.mode,
        "expected": expected.describe() if expected else f"unknown ({expectation.describe_source()})",
        "expected_from": expectation.describe_source(),
        "match": expectation.match,
        "observed": outcome.observed(),
        "verdict": str(found),
        "signature": outcome.signature(),
        "outcome": outcome.to_dict(),
    }
    if note:
        row["note"] = note
    if bases:
        row["base"] = bases
    return row


def base_note(versions, rows):
    """The lines that say a table's verdicts for source builds are against their base release."""
    bases = next((r["base"] for r in rows if r.get("base")), None)
    if not bases:
        return []
    said = ", ".join(f"{name} {version_text(versions, name)} -> "
                     + (f"{name} {base}" if base else "unknown (the package index could not be read)")
                     for name, base in bases.items())
    return ["", f"source builds, judged by what their base release did (a hint, not a measurement): {said}.",
            "REPRODUCED/WORKAROUND-OK: as the base release; FIXED-UPSTREAM: an expected failure stopped; "
            "any other verdict: the source changed what the base release did."]


def summarise(rows, versions):
    return {
        "versions": versions,
        "as_expected": all(as_expected(r["verdict"]) for r in rows),
        "results": rows,
    }


def run_here(scenarios, modes, *, timeout, jobs, python=None, batch=False, versions=None, env=None, problem=None,
             progress=None):
    """Run each (scenario, mode) isolated (in this env, or `python`'s) and judge it.

    `versions`: the env's, used for a child that died before reporting its own; `env`: extra
    environment variables for the children; `problem`: a problem file (checked already);
    `progress` (repro._progress.Progress): a line per finished pair, `[5/16] seed_fix jit REPRODUCED 12 s`."""
    pairs = [(s, m) for s in scenarios for m in modes]
    on_outcome = _reporter(progress, versions or (installed_versions() if python is None else {})) if progress else None
    outcomes = run_many(pairs, timeout=timeout, jobs=jobs, python=python, batch=batch, env=env, problem=problem,
                        on_outcome=on_outcome)
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
    cells = [[r[c] if c != "verdict" or not r.get("base") else f"{r[c]} vs base" for c in cols] for r in rows]
    widths = [max(len(c), *(len(str(row[i])) for row in cells)) for i, c in enumerate(cols)]
    line = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()
    out = [header(result["versions"]), "", line(cols), line("-" * w for w in widths)]
    out += [line(row) for row in cells]
    failing = [r for r in rows if not as_expected(r["verdict"])]
    noted = [r for r in rows if r.get("note")]
    if noted:
        out += ["", "notes (information, not alarms):"]
        out += [f"  {r['scenario']} [{r['mode']}]: {r['note']}" for r in noted]
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
    return "\n".join(out + base_note(result["versions"], rows))
