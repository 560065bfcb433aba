"""`repro diff`: every scenario/mode pair under two version sets, and the pairs that differ. No JAX.

Each side is probed as `bisect` probes a version (repro._bisect.EnvProbe: an env built with uv,
the scenarios run in an isolated child), and the two sides' records are compared the way a
module is compared with its own baseline (repro._baseline.changes).
"""

import dataclasses
from typing import Optional

from ._baseline import DIFFERENCES, by_pair, changes, record
from ._bisect import EnvProbe, check_pins, with_jaxlib
from ._errors import EXIT_NOT_AS_EXPECTED, EXIT_OK, EXIT_UNPROBEABLE, UsageError
from ._progress import Progress
from ._results import judge
from ._versions import header, requirement


_SHOWN = (*DIFFERENCES, "observed")  # what `diff --json` shows of each side of a pair that differs


@dataclasses.dataclass
class Diff:
    """One `repro diff`: both version sets, what was installed, and the pairs that differ (in
    verdict, signature or agreement with the reference: repro._baseline.changes)."""

    sides: dict  # "a"/"b" -> {"pins", "installed", "skipped", "reason"}
    pairs: list
    differs: list = dataclasses.field(default_factory=list)  # ((scenario, mode), record a, record b)
    unbuildable: Optional[str] = None  # "a" or "b": that side could not be built or imported

    def exit_code(self):
        """0 no pair differs, 1 some do, 4 a side cannot be built."""
        if self.unbuildable:
            return EXIT_UNPROBEABLE
        return EXIT_NOT_AS_EXPECTED if self.differs else EXIT_OK

    def to_dict(self):
        return {"a": self.sides["a"], "b": self.sides["b"], "compared": len(self.pairs), "differs": [
            {"scenario": s, "mode": m, "a": {k: ra[k] for k in _SHOWN}, "b": {k: rb[k] for k in _SHOWN}}
            for (s, m), ra, rb in self.differs]}

    def render(self):
        lines = [f"{label}: {header(self.sides[label]['installed'])}" for label in ("a", "b")]
        lines.append(f"{len(self.pairs)} scenario/mode pairs compared, {len(self.differs)} differ")
        lines += [f"  {s} [{m}]: a {_side(ra, rb)}  ->  b {_side(rb, ra)}" for (s, m), ra, rb in self.differs]
        return "\n".join(lines)


def _side(record, other):
    """A pair record as a diff line shows it: verdict and signature, and the agreement with the
    reference where the two sides differ in it."""
    agreement = f" ({record['reference'] or 'no reference'})" if record["reference"] != other["reference"] else ""
    return f"{record['verdict']} {record['signature']}{agreement}"


def diff(options, *, progress=None, cache_dir=None):
    """Run every pair of `options` (repro._options.DiffOptions) under both version sets.
    `progress` (repro._progress.Progress): a line per side, `side 1 of 2: a ...`."""
    progress = progress or Progress(quiet=True)
    sides = {label: with_jaxlib(check_pins(pins)) for label, pins in (("a", options.a), ("b", options.b))}
    if sides["a"] == sides["b"]:
        raise UsageError("--a and --b are the same version set")
    progress.expect(len(sides))
    result, rows = Diff({}, options.pairs), {}
    for label, pins in sides.items():
        reqs = [requirement(k, v) for k, v in pins.items()]
        probe_env = EnvProbe(lambda _version, reqs=reqs: (reqs, None), options.pairs, python=options.python,
                           timeout=options.timeout, cache_dir=cache_dir, progress=progress, problem=options.problem)
        probe = probe_env(label)
        result.sides[label] = {"pins": pins, "installed": probe.installed, "skipped": probe.skipped,
                               "reason": probe.reason}
        progress.done(f"{label} {' '.join(reqs)}: " + (f"SKIP {probe.reason}" if probe.skipped else
                                                      f"{len(probe.outcomes)} pairs run"),
                      probe.build_seconds + probe.run_seconds)
        if probe.skipped:
            result.unbuildable = label
            return result
        rows[label] = by_pair(record(judge(outcome)) for outcome in probe.outcomes)
    differing = {(c.scenario, c.mode) for c in changes(rows["a"], rows["b"], DIFFERENCES)}
    result.differs = [(pair, rows["a"][pair], rows["b"][pair]) for pair in options.pairs if pair in differing]
    return result
