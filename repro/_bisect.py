"""`repro bisect` and `repro diff`: find the release where an outcome signature changed. No JAX.

Host side only. For each probed version an environment is built with uv
(repro._envs.build_env, cached under .repro-cache/envs/), the scenarios run there in an
isolated child (`python -m repro._jax._child`), and the outcome *signatures* (exception
type, message family, phase, library; or converged/crash/timeout) are compared with the
good end's. A version whose env cannot be built, or where JAX/Optax/Equinox cannot be
imported, is a SKIP (git bisect's 125): the search goes on around it, and if skips leave
several candidates, they are all named.

The search (`search`) and the sweep (`sweep`) take any oracle `version -> Probe`, so the
logic is tested with a fake oracle and used with `EnvOracle` for real.
"""

import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from typing import Callable, Optional

from . import _envs, _index
from ._catalogue import MODES, SCENARIOS, UsageError, check_modes, check_scenarios

EXIT_FOUND, EXIT_NO_CHANGE, EXIT_USAGE, EXIT_AMBIGUOUS, EXIT_ENDPOINT = 0, 1, 2, 3, 4
EXIT_DIFF_SAME, EXIT_DIFF_DIFFERS, EXIT_DIFF_UNBUILDABLE = 0, 1, 4
CACHE_DIR = os.path.join(_envs.ROOT, ".repro-cache", "envs")
TRACKED = ("jax", "jaxlib", "optax", "equinox")
IMPORT_CHECK = "import jax, jaxlib, optax, equinox, jax.numpy as jnp; jnp.zeros(1).block_until_ready(); import repro._jax._run"


# --------------------------------------------------------------------------- search logic

@dataclasses.dataclass
class Probe:
    version: str
    signature: Optional[str] = None  # None when skipped
    skipped: bool = False
    reason: str = ""  # why skipped
    outcomes: list = dataclasses.field(default_factory=list)  # Outcome dicts
    installed: dict = dataclasses.field(default_factory=dict)
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    reused: bool = False
    order: int = 0  # 1 = probed first

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Result:
    status: str  # found | no_change | ambiguous | endpoint_skipped | swept
    candidates: list
    probes: list  # Probe, in candidate order
    first_changed: Optional[str] = None
    last_unchanged: Optional[str] = None
    remaining: list = dataclasses.field(default_factory=list)  # ambiguous: first-changed candidates
    changes: list = dataclasses.field(default_factory=list)  # sweep: (before, after) pairs

    @property
    def environments(self):
        return len(self.probes)

    def exit_code(self):
        return {"found": EXIT_FOUND, "no_change": EXIT_NO_CHANGE, "ambiguous": EXIT_AMBIGUOUS,
                "endpoint_skipped": EXIT_ENDPOINT}.get(self.status, EXIT_FOUND)


def env_bound(n):
    """The most environments a bisect over n candidates may build without skips."""
    return math.ceil(math.log2(n)) + 2 if n > 1 else 1


def search(candidates, oracle: Callable[[str], Probe], on_probe=None):
    """Binary search for the first candidate whose signature differs from candidates[0]'s.

    Probes both ends first. Skipped candidates are stepped around (the untested candidate
    nearest the middle is probed instead); if skips are all that separate the last
    unchanged from the first changed, the result is `ambiguous` with those candidates.
    """
    candidates = list(candidates)
    if len(candidates) < 2:
        raise ValueError("need at least two candidates")
    probes = {}

    def get(i):
        if i not in probes:
            probe = oracle(candidates[i])
            probe.order = len(probes) + 1
            probes[i] = probe
            if on_probe:
                on_probe(probe)
        return probes[i]

    def result(status, **kw):
        return Result(status, candidates, [probes[i] for i in sorted(probes)], **kw)

    good, bad = get(0), get(len(candidates) - 1)
    if good.skipped or bad.skipped:
        return result("endpoint_skipped")
    if bad.signature == good.signature:
        return result("no_change")
    lo, hi = 0, len(candidates) - 1
    while True:
        untested = [i for i in range(lo + 1, hi) if i not in probes]
        if not untested:
            break
        middle = (lo + hi) / 2
        pick = min(untested, key=lambda i: (abs(i - middle), i))
        probe = get(pick)
        if probe.skipped:
            continue
        if probe.signature == good.signature:
            lo = pick
        else:
            hi = pick
    if hi - lo == 1:
        return result("found", first_changed=candidates[hi], last_unchanged=candidates[lo])
    return result("ambiguous", last_unchanged=candidates[lo], remaining=candidates[lo + 1:hi + 1])


def sweep(candidates, oracle, on_probe=None):
    """Probe every candidate; report each signature change between consecutive probed ones."""
    probes = []
    for version in candidates:
        probe = oracle(version)
        probe.order = len(probes) + 1
        probes.append(probe)
        if on_probe:
            on_probe(probe)
    if probes[0].skipped or probes[-1].skipped:
        return Result("endpoint_skipped", list(candidates), probes)
    ran = [p for p in probes if not p.skipped]
    changes = [(a.version, b.version) for a, b in zip(ran, ran[1:]) if a.signature != b.signature]
    first = changes[0] if changes else (None, None)
    return Result("swept" if changes else "no_change", list(candidates), probes, first_changed=first[1],
                  last_unchanged=first[0], changes=changes)


# --------------------------------------------------------------------------- real oracle

def combined_signature(outcomes):
    """One string for the outcomes of all probed (scenario, mode) pairs."""
    if len(outcomes) == 1:
        return outcomes[0].signature()
    return " | ".join(f"{o.scenario}[{o.mode}]={o.signature()}" for o in outcomes)


class EnvOracle:
    """Builds (or reuses) an env per version and runs the scenario pairs there, isolated.

    `requirements(version)` -> (requirements list, exclude_newer or None).
    """

    def __init__(self, requirements, pairs, *, python="3.11", timeout=300.0, cache_dir=CACHE_DIR, log=None):
        self.requirements, self.pairs, self.timeout = requirements, list(pairs), timeout
        self.interpreter = _envs.find_interpreter(python)
        if self.interpreter is None:
            raise UsageError(f"no Python {python} interpreter on this machine (pyenv or PATH)")
        self.cache_dir, self.log = cache_dir, log or (lambda msg: None)

    def env_path(self, reqs, exclude_newer):
        key = json.dumps([self.interpreter, sorted(reqs), exclude_newer])
        return os.path.join(self.cache_dir, hashlib.sha256(key.encode()).hexdigest()[:16])

    def __call__(self, version):
        from ._isolate import run_batch

        reqs, exclude_newer = self.requirements(version)
        self.log(f"probing {version}: {' '.join(reqs)}" + (f" (exclude-newer {exclude_newer})" if exclude_newer else ""))
        env = _envs.build_env(self.env_path(reqs, exclude_newer), self.interpreter, reqs, extras=(),
                              exclude_newer=exclude_newer)
        probe = Probe(version, build_seconds=env.seconds, reused=env.reused)
        if not env.ok:
            probe.skipped, probe.reason = True, "cannot install: " + _one_line(env.reason)
            return probe
        start = time.perf_counter()
        check = subprocess.run([env.python, "-c", IMPORT_CHECK], capture_output=True, text=True,
                               timeout=self.timeout)
        if check.returncode != 0:
            probe.skipped, probe.reason = True, "cannot import: " + _one_line(check.stderr)
            probe.run_seconds = time.perf_counter() - start
            return probe
        outcomes = run_batch(self.pairs, timeout=self.timeout, python=env.python)
        probe.run_seconds = time.perf_counter() - start
        probe.outcomes = [o.to_dict() for o in outcomes]
        probe.signature = combined_signature(outcomes)
        probe.installed = next((o.versions for o in outcomes if o.versions), {})
        return probe


def _one_line(text, limit=300):
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[:limit]


# --------------------------------------------------------------------------- requirements

def parse_pins(pins, label="--pin"):
    """["optax==0.2.3", ...] -> {"optax": "0.2.3"}; each must be an exact release on the index."""
    out = {}
    for pin in pins:
        name, sep, version = pin.partition("==")
        name, version = name.strip().lower(), version.strip()
        if not sep or not name or not version:
            raise UsageError(f"{label} {pin!r}: expected NAME==VERSION")
        _index.check_release(name, version)
        out[name] = version
    return out


def with_jaxlib(pins):
    """Pins plus a jaxlib that moves with a pinned jax (unless jaxlib is pinned too)."""
    pins = dict(pins)
    if "jax" in pins and "jaxlib" not in pins:
        jaxlib = _index.jaxlib_for(pins["jax"])
        if jaxlib:
            pins["jaxlib"] = jaxlib
    return pins


def version_requirements(package, pins):
    def requirements(version):
        return [f"{k}=={v}" for k, v in with_jaxlib({**pins, package: version}).items()], None
    return requirements


def date_requirements(pins):
    def requirements(day):
        floating = [name for name in TRACKED if name not in pins]
        return floating + [f"{k}=={v}" for k, v in with_jaxlib(pins).items()], f"{day}T23:59:59Z"
    return requirements


def parse_date_range(text):
    start, sep, end = (text or "").partition("..")
    if not sep:
        raise UsageError(f"--by-date {text!r}: expected START..END, e.g. 2024-06-01..2025-06-01")
    start, end = _index.parse_day(start.strip()), _index.parse_day(end.strip())
    if start == end:
        raise UsageError(f"--by-date {text!r}: start and end are the same day")
    if start > end:
        raise UsageError(f"--by-date {text!r}: start is after end")
    return start, end


def date_candidates(start, end):
    """The start day, every day a tracked package released in (start, end), and the end day."""
    days = [d for d in _index.release_days(TRACKED, start, end) if d != end]
    return [start, *days, end]


# --------------------------------------------------------------------------- rendering

def _pair_signatures(probe):
    from ._outcome import Outcome

    return {(o["scenario"], o["mode"]): Outcome.from_dict(o).signature() for o in probe.outcomes}


def _pair_changes(before, after):
    """'scenario[mode]: old -> new' for each pair whose signature differs between two probes."""
    a, b = _pair_signatures(before), _pair_signatures(after)
    return [f"{s}[{m}]: {a.get((s, m))} -> {b.get((s, m))}" for (s, m) in a if a.get((s, m)) != b.get((s, m))]


def _probe_summary(probe, good=None):
    if probe.skipped:
        return f"SKIP ({probe.reason})"
    if len(probe.outcomes) > 1 and good is not None:
        changed = _pair_changes(good, probe)
        return f"{len(probe.outcomes)} pairs, " + (f"{len(changed)} differ from the good end" if changed
                                                   else "all as at the good end")
    if len(probe.outcomes) == 1:
        o = probe.outcomes[0]
        message = (o.get("message") or "").strip().splitlines()
        return probe.signature + (f'  "{message[0][:70]}"' if message and o.get("status") == "error" else "")
    return probe.signature


def render(result, header, *, package):
    good = result.probes[0]
    lines = [header, ""]
    cols = ("#", "version", "installed", "vs good", "build", "run", "outcome")
    rows = []
    for p in result.probes:
        installed = " ".join(f"{k}={p.installed[k]}" for k in TRACKED if p.installed.get(k))
        verdict = "SKIP" if p.skipped else ("same" if p.signature == good.signature else "CHANGED")
        build = ("cached" if p.reused else f"{p.build_seconds:.0f}s")
        rows.append((str(p.order), p.version, installed or "-", verdict, build, f"{p.run_seconds:.1f}s",
                     _probe_summary(p, good)))
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    lines += [fmt(cols), fmt(["-" * w for w in widths]), *map(fmt, rows), ""]
    by_version = {p.version: p for p in result.probes}
    if result.status == "found" and len(good.outcomes) > 1:
        lines.append(f"first changed:  {package} {result.first_changed}; last unchanged: {package} {result.last_unchanged}")
        lines += [f"  {c}" for c in _pair_changes(by_version[result.last_unchanged], by_version[result.first_changed])]
    elif result.status == "found":
        lines.append(f"first changed:  {package} {result.first_changed}  {by_version[result.first_changed].signature}")
        lines.append(f"last unchanged: {package} {result.last_unchanged}  {by_version[result.last_unchanged].signature}")
    elif result.status == "swept":
        for before, after in result.changes:
            if len(by_version[before].outcomes) > 1:
                lines.append(f"changed between {package} {before} and {after}:")
                lines += [f"  {c}" for c in _pair_changes(by_version[before], by_version[after])]
            else:
                lines.append(f"changed between {package} {before} and {after}: "
                             f"{by_version[before].signature}  ->  {by_version[after].signature}")
    elif result.status == "no_change":
        lines.append(f"no change: {package} {result.candidates[-1]} has the good end's signature ({good.signature})")
    elif result.status == "ambiguous":
        lines.append(f"ambiguous: last unchanged {package} {result.last_unchanged}; the first changed is one of "
                     f"{', '.join(result.remaining)} (skipped versions could not be probed)")
    else:
        ends = [p for p in (result.probes[0], result.probes[-1]) if p.skipped]
        lines.append("cannot bisect: " + "; ".join(f"{package} {p.version} {p.reason}" for p in ends))
    return "\n".join(lines)


def _result_json(result, **extra):
    data = dataclasses.asdict(result)
    data["environments"] = result.environments
    data.update(extra)
    return data


# --------------------------------------------------------------------------- commands

def _bisect_parser():
    from ._cli import _Parser

    p = _Parser(prog="repro bisect",
                description="Find the first released version whose outcome signature differs from the good end's.")
    p.add_argument("--package", help="package to move: jax, jaxlib, optax or equinox (not with --by-date)")
    p.add_argument("--good", help="older version (the reference signature)")
    p.add_argument("--bad", help="newer version")
    p.add_argument("--by-date", metavar="START..END",
                   help="move jax, optax and equinox together: uv --exclude-newer at each release day")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help=f"scenario(s) to compare (repeatable; 'all' for every one): {', '.join(SCENARIOS)}")
    p.add_argument("--mode", action="append", default=[], choices=MODES, help="eager or jit (repeatable; default jit)")
    p.add_argument("--pin", action="append", default=[], metavar="NAME==VERSION",
                   help="keep another package at a version (repeatable); jaxlib follows a pinned jax")
    p.add_argument("--python", default="3.11", help="Python version of the probed envs (default 3.11)")
    p.add_argument("--every", action="store_true", help="probe every candidate and list every change (a sweep)")
    p.add_argument("--pre", action="store_true", help="include pre-releases")
    p.add_argument("--yanked", action="store_true", help="include yanked releases")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per scenario (default 300)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _scenarios_and_modes(args):
    names = list(SCENARIOS) if args.scenario == ["all"] else args.scenario
    if not names:
        raise UsageError("--scenario is required (a name, or 'all')")
    return check_scenarios(names, allow_self_tests=False), check_modes(args.mode or ["jit"])


def cmd_bisect(argv):
    args = _bisect_parser().parse_args(argv)
    scenarios, modes = _scenarios_and_modes(args)
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    pins = parse_pins(args.pin)
    if args.by_date:
        if args.package or args.good or args.bad:
            raise UsageError("--by-date replaces --package/--good/--bad")
        start, end = parse_date_range(args.by_date)
        candidates, package = date_candidates(start, end), "date"
        requirements = date_requirements(pins)
    else:
        if not (args.package and args.good and args.bad):
            raise UsageError("give --package, --good and --bad (or --by-date START..END)")
        package = args.package.lower()
        candidates = _index.versions_between(package, args.good, args.bad, prereleases=args.pre, yanked=args.yanked)
        if package in pins:
            raise UsageError(f"--pin {package}==… conflicts with bisecting {package}")
        requirements = version_requirements(package, pins)
    pairs = [(s, m) for s in scenarios for m in modes]
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"[bisect] {msg}", file=sys.stderr, flush=True))
    oracle = EnvOracle(requirements, pairs, python=args.python, timeout=args.timeout, log=log)
    log(f"{len(candidates)} candidates: {' '.join(candidates)}")

    def on_probe(p):
        log(f"  {p.version}: " + (f"SKIP {p.reason}" if p.skipped else p.signature)
            + f"  (env {'cached' if p.reused else f'{p.build_seconds:.0f} s'}, run {p.run_seconds:.1f} s)")

    start_time = time.perf_counter()
    result = (sweep if args.every else search)(candidates, oracle, on_probe=on_probe)
    wall = time.perf_counter() - start_time
    built = sum(1 for p in result.probes if not p.reused)
    pin_text = " ".join(f"{k}=={v}" for k, v in pins.items()) or "none"
    what = ", ".join(f"{s}[{m}]" for s, m in pairs)
    span = f"{candidates[0]}..{candidates[-1]}"
    header = (f"{'sweep' if args.every else 'bisect'} {package} {span} ({len(candidates)} candidates: "
              f"{' '.join(candidates)})\nscenario {what}; pins {pin_text}; python {args.python}")
    if args.json:
        print(json.dumps(_result_json(result, package=package, pins=pins, pairs=pairs, python=args.python,
                                      wall_seconds=round(wall, 1), built=built), indent=2, default=str))
    else:
        print(render(result, header, package=package))
        bound = "" if args.every else f"; bound ceil(log2 {len(candidates)})+2 = {env_bound(len(candidates))}"
        print(f"environments: {result.environments} ({built} built, {result.environments - built} reused){bound}; "
              f"wall {wall:.1f} s")
    if args.every:
        return EXIT_ENDPOINT if result.status == "endpoint_skipped" else (
            EXIT_FOUND if result.changes else EXIT_NO_CHANGE)
    return result.exit_code()


def _diff_parser():
    from ._cli import _Parser

    p = _Parser(prog="repro diff", description="Run every scenario under two version sets; print what differs.")
    p.add_argument("--a", required=True, metavar="PINS", help="e.g. jax==0.4.30,optax==0.2.3,equinox==0.11.4")
    p.add_argument("--b", required=True, metavar="PINS", help="e.g. jax==0.4.35,optax==0.2.4,equinox==0.11.10")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME", help="default: all")
    p.add_argument("--mode", action="append", default=[], choices=MODES, help="default: both")
    p.add_argument("--python", default="3.11", help="Python of both envs (default 3.11)")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--json", action="store_true")
    return p


def cmd_diff(argv):
    from ._results import judge

    args = _diff_parser().parse_args(argv)
    scenarios = check_scenarios([] if args.scenario == ["all"] else args.scenario, allow_self_tests=False)
    modes = check_modes(args.mode)
    sides = {}
    for label, text in (("a", args.a), ("b", args.b)):
        pins = with_jaxlib(parse_pins([p for p in text.split(",") if p.strip()], label=f"--{label}"))
        if not pins:
            raise UsageError(f"--{label}: no pins given")
        sides[label] = pins
    if sides["a"] == sides["b"]:
        raise UsageError("--a and --b are the same version set")
    pairs = [(s, m) for s in scenarios for m in modes]
    oracle = EnvOracle(lambda _: ([], None), pairs, python=args.python, timeout=args.timeout)
    rows, meta = {}, {}
    for label, pins in sides.items():
        reqs = [f"{k}=={v}" for k, v in pins.items()]
        print(f"[diff] building {label}: {' '.join(reqs)}", file=sys.stderr, flush=True)
        oracle.requirements = lambda _v, reqs=reqs: (reqs, None)
        probe = oracle(label)
        meta[label] = {"pins": pins, "installed": probe.installed, "skipped": probe.skipped, "reason": probe.reason}
        if probe.skipped:
            print(f"repro diff: --{label} {','.join(reqs)}: {probe.reason}", file=sys.stderr)
            return EXIT_DIFF_UNBUILDABLE
        from ._outcome import Outcome

        rows[label] = {(r["scenario"], r["mode"]): r for r in (judge(Outcome.from_dict(o)) for o in probe.outcomes)}
    differs = [(pair, rows["a"][pair], rows["b"][pair]) for pair in pairs
               if (rows["a"][pair]["verdict"], rows["a"][pair]["signature"])
               != (rows["b"][pair]["verdict"], rows["b"][pair]["signature"])]
    if args.json:
        print(json.dumps({"a": meta["a"], "b": meta["b"], "compared": len(pairs), "differs": [
            {"scenario": s, "mode": m, "a": {k: ra[k] for k in ("verdict", "signature", "observed")},
             "b": {k: rb[k] for k in ("verdict", "signature", "observed")}} for (s, m), ra, rb in differs]}, indent=2))
    else:
        for label in ("a", "b"):
            inst = meta[label]["installed"]
            print(f"{label}: " + " ".join(f"{k} {inst.get(k) or '-'}" for k in ("python", *TRACKED)))
        print(f"{len(pairs)} scenario/mode pairs compared, {len(differs)} differ")
        for (s, m), ra, rb in differs:
            print(f"  {s} [{m}]: a {ra['verdict']} {ra['signature']}  ->  b {rb['verdict']} {rb['signature']}")
    return EXIT_DIFF_DIFFERS if differs else EXIT_DIFF_SAME
