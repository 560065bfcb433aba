"""A module compared with its own earlier result, and the pair comparison `diff` shares. No JAX.

A baseline file (`repro.check(baseline=PATH)`, `lbfgs-equinox-repro run --baseline PATH`) holds,
per (scenario, mode), what one module did: its outcome signature (exception type, message
family, phase, raising library; or converged, not_converged, wrong_result, crash, timeout) and
its agreement with the flat-vector reference (agrees, departed at iteration k, the reference
raised), with the verdict and the observed text as information; and, for the whole file, the
versions, the module's contents (leaf kinds), the convergence settings, this tool's version and the
date. Written the first time (no file), compared every later time: what differs is listed as
`Change`s, pair by pair, the way snapshot tests do (syrupy, pytest-regressions); the file is
rewritten only when asked (`update`).

`changes` is the one comparison of pair records: a baseline compares what the module did
(`BEHAVIOUR`), `repro diff` also the verdicts (`DIFFERENCES`).
"""

import dataclasses
import datetime
import json
import os
from typing import Optional

from ._errors import UsageError
from ._files import write_json_atomic
from ._outcome import Outcome
from ._versions import __version__, header

SCHEMA = 1

# What a baseline compares: what the module did, whatever the expectations of the day say.
BEHAVIOUR = ("signature", "reference")
# What `diff` compares: the same, and the verdicts (the same behaviour judged differently
# means the expectations differ between the two version sets).
DIFFERENCES = ("verdict", *BEHAVIOUR)


def agreement(outcome):
    """The run's agreement with the flat-vector reference, as a baseline records it: "agrees",
    "departed at iteration K", "reference raised TYPE", or None (no finished run to compare)."""
    ref = outcome.reference or {}
    if outcome.status not in ("converged", "not_converged", "wrong_result") or not ref:
        return None
    if ref.get("reference_error") is not None:
        return f"reference raised {str(ref['reference_error']).split(':')[0]}"
    if ref.get("departed_at") is not None:
        return f"departed at iteration {ref['departed_at']}"
    return "agrees" if outcome.agrees() else None


def record(row):
    """One judged result row (repro._results.judge) as a pair record: what is compared and shown."""
    return {"scenario": row["scenario"], "mode": row["mode"], "signature": row["signature"],
            "reference": agreement(Outcome.from_dict(row["outcome"])), "verdict": row["verdict"],
            "observed": row.get("observed")}


def by_pair(records):
    return {(r["scenario"], r["mode"]): r for r in records}


@dataclasses.dataclass(frozen=True)
class Change:
    """One compared field of one (scenario, mode) that differs between two records."""

    scenario: str
    mode: str
    field: str  # signature | reference | verdict
    before: Optional[str]
    after: Optional[str]

    def __str__(self):
        return f"{self.scenario} [{self.mode}]: {self.field} {self.before or '-'} -> {self.after or '-'}"

    def to_dict(self):
        return dataclasses.asdict(self)


def changes(before, after, fields=BEHAVIOUR):
    """Every `Change` of `fields` between two {(scenario, mode): record} maps, over the pairs both
    have, in `after`'s order."""
    return [Change(s, m, field, before[(s, m)].get(field), record.get(field))
            for (s, m), record in after.items() if (s, m) in before
            for field in fields if before[(s, m)].get(field) != record.get(field)]


# --------------------------------------------------------------------------- the file

def read(path, *, update=False):
    """The baseline at `path` as stored (a dict), or None when it will be written (there is no
    file, or `update`). Called before the run, so that bad input stops it early: UsageError, one
    sentence, when the file cannot be read or is not a baseline this version compares with, or
    when it is to be written where it cannot be."""
    path = os.fspath(path)
    if update or not os.path.exists(path):
        _check_writable(path)
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        problem = _malformed(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = getattr(error, "strerror", None) or str(error).splitlines()[0]
    if problem:
        raise UsageError(f"baseline {path} cannot be read ({problem}): delete it, or record it again with "
                         "update_baseline=True (--update-baseline)")
    return data


def _check_writable(path):
    """UsageError unless a baseline can be written at `path` (its folder may not exist yet)."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if os.path.isdir(path) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write baseline {path}: " + ("it is a directory" if os.path.isdir(path)
                                                               else f"{folder} is not a writable directory"))


def _malformed(data):
    """What is wrong with a parsed baseline file, or "" when it can be compared with."""
    if not isinstance(data, dict) or "pairs" not in data:
        return "not a baseline file"
    if data.get("schema") != SCHEMA:
        return f"schema {data.get('schema')!r}, this version reads schema {SCHEMA}"
    pairs = data["pairs"]
    if not isinstance(pairs, list) or not all(isinstance(p, dict) and {"scenario", "mode", "signature"} <= set(p)
                                              for p in pairs):
        return "its pairs are not scenario/mode/signature records"
    return ""


def _document(records, versions, contents, settings):
    return {"schema": SCHEMA, "tool": __version__,
            "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions, "contents": contents, "settings": settings, "pairs": records}


def _write(path, document):
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        write_json_atomic(path, document)
    except OSError as error:
        raise UsageError(f"cannot write baseline {path}: {error.strerror or error}") from None


# --------------------------------------------------------------------------- the comparison

@dataclasses.dataclass
class Comparison:
    """A check against a baseline file: `action` "recorded" (no file: written now), "updated"
    (rewritten on request) or "compared"; `changes` (empty when nothing changed); the pairs only
    one side has; notes on what makes the comparison less direct (other settings, other module
    contents, another version of this tool)."""

    path: str
    action: str
    recorded: str  # when the baseline compared with (or written) was recorded
    versions: dict  # the baseline's
    compared: int = 0
    changes: list = dataclasses.field(default_factory=list)  # Change
    missing: list = dataclasses.field(default_factory=list)  # (scenario, mode) in the baseline, not checked now
    new: list = dataclasses.field(default_factory=list)  # (scenario, mode) checked now, not in the baseline
    notes: list = dataclasses.field(default_factory=list)

    def render(self):
        """What a report prints under its verdict table."""
        where = f"baseline {self.path}"
        if self.action != "compared":
            return f"{where} {self.action}: {_count(self.compared, 'scenario/mode pair')} ({header(self.versions)})"
        lines = [f"{where}, recorded {self.recorded} with {header(self.versions)}:"]
        if self.changes:
            lines.append(f"  {_count(len(self.changes), 'change')} in the {_count(self.compared, 'pair')} compared:")
            lines += [f"    {change}" for change in self.changes]
        else:
            lines.append(f"  no change in the {_count(self.compared, 'pair')} compared")
        if self.missing:
            lines.append("  in the baseline, not checked now: " + _pairs(self.missing))
        if self.new:
            lines.append("  not in the baseline (update it to record them): " + _pairs(self.new))
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["changes"] = [c.to_dict() for c in self.changes]
        return data


def _count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _pairs(pairs):
    return ", ".join(f"{s} [{m}]" for s, m in pairs)


def compare(path, stored, rows, versions, settings=None, *, update=False):
    """Check judged result `rows` (repro._results.judge) against the baseline `stored` (as `read`
    returned it from `path`, before the run, so a bad file stops it early; None with `update`,
    which does not read it): write the file when there is none or `update` asks, else compare.
    `settings`: what else decides an outcome (the convergence budget, the optimum), noted when
    it differs from the baseline's."""
    path = os.fspath(path)
    records = [record(row) for row in rows]
    contents = next((row["outcome"].get("contents") for row in rows if row["outcome"].get("contents")), {})
    if stored is None or update:
        existed = os.path.exists(path)
        document = _document(records, versions, contents, settings or {})
        _write(path, document)
        return Comparison(path, "updated" if update and existed else "recorded", document["recorded"], versions,
                          len(records))
    before, after = by_pair(stored["pairs"]), by_pair(records)
    return Comparison(path, "compared", stored.get("recorded", "?"), stored.get("versions") or {},
                      compared=sum(1 for pair in after if pair in before), changes=changes(before, after),
                      missing=[pair for pair in before if pair not in after],
                      new=[pair for pair in after if pair not in before],
                      notes=_notes(stored, contents, settings or {}))


def _notes(stored, contents, settings):
    """What differs besides the outcomes: the convergence settings, the module's contents,
    the version of this tool that recorded the baseline."""
    notes = []
    old = stored.get("settings") or {}
    moved = {k: (old[k], v) for k, v in settings.items() if k in old and old[k] != v}
    if moved:
        notes.append("checked with other settings than the baseline: "
                     + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in moved.items()))
    recorded = stored.get("contents") or {}
    if recorded and contents and recorded != contents:
        keys = sorted(k for k in {*recorded, *contents} if recorded.get(k) != contents.get(k))
        notes.append("the module's contents differ from the baseline's (another module, or another "
                     "version of this tool): " + ", ".join(f"{k} {recorded.get(k)} -> {contents.get(k)}"
                                                          for k in keys))
    if stored.get("tool") not in (None, __version__):
        notes.append(f"recorded by lbfgs-equinox-repro {stored['tool']}, compared by {__version__}")
    return notes
