"""`repro bisect`: find the release (or commit) where an outcome signature changed. No JAX.

Host side only. For each probed version an environment is built with uv
(repro._envs.build_env, cached in the cache's envs/: repro._paths), the scenarios run there in an
isolated child (`python -m repro._jax._child`), and the outcome *signatures* (exception
type, message family, phase, library; or converged/crash/timeout) are compared with the
good end's. A version whose env cannot be built, or where JAX/Optax/Equinox cannot be
imported, is a SKIP (git bisect's 125): the search goes on around it, and if skips leave
several candidates, they are all named.

With `--source` the candidates are commits instead of releases: the good commit and every
first-parent commit after it up to the bad one (repro._git), each installed from the
repository at that commit (`NAME @ git+file://REPO@SHA`, an env per commit, cached like a
release's); the result names the first changed commit (sha, date, subject, PR number). A
jax commit is paired with the newest jaxlib released by the commit's date unless jaxlib is
pinned. With `--problem` the scenarios run on a problem file's module; the file is checked
in the first env probed (a bad file is a UsageError there, a SKIP in any later env).

The search (`search`) and the sweep (`sweep`) take any `run_probe: version -> Probe`, so the
logic is tested with a fake probe and used with `EnvProbe` for real. `bisect` takes the parsed
options (repro._options) and returns a `Bisection` that renders itself as text or JSON and
knows its exit code; the CLI prints it. `diff` (repro._diff) probes two version sets the same way.

Why one module of this length: the release search, the commit search and the probe they
share (an env per version, the scenarios in a child, the signature) are one algorithm; `diff`
reuses the probe from here.
"""

import dataclasses
import hashlib
import json
import math
import os
import time
from typing import Callable, Optional

from . import _envs, _git, _index, _paths
from ._errors import EXIT_AMBIGUOUS, EXIT_NOT_AS_EXPECTED, EXIT_OK, EXIT_UNPROBEABLE, UsageError
from ._isolate import check_problem, run_batch
from ._progress import Progress, format_seconds
from ._versions import TRACKED, is_source, requirement, version_text


# --------------------------------------------------------------------------- search logic

@dataclasses.dataclass
class Probe:
    version: str
    signature: Optional[str] = None  # None when skipped
    skipped: bool = False
    reason: str = ""  # why skipped
    outcomes: list = dataclasses.field(default_factory=list)  # repro._outcome.Outcome
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
        """0 found (a sweep: some change), 1 no change, 3 ambiguous, 4 an end cannot be probed."""
        return {"found": EXIT_OK, "swept": EXIT_OK, "no_change": EXIT_NOT_AS_EXPECTED, "ambiguous": EXIT_AMBIGUOUS,
                "endpoint_skipped": EXIT_UNPROBEABLE}[self.status]


def env_bound(n):
    """The most environments a bisect over n candidates may build without skips."""
    return math.ceil(math.log2(n)) + 2 if n > 1 else 1


def search(candidates, run_probe: Callable[[str], Probe], on_probe=None):
    """Binary search for the first candidate whose signature differs from candidates[0]'s.

    Probes both ends first. Skipped candidates are stepped around (the untested candidate
    nearest the middle is probed instead); if skips are all that separate the last
    unchanged from the first changed, the result is `ambiguous` with those candidates.
    """
    candidates = list(candidates)
    if len(candidates) < 2:
        raise ValueError("need at least two candidates")
    probes: dict = {}

    def get(i):
        if i not in probes:
            probe = run_probe(candidates[i])
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


def sweep(candidates, run_probe, on_probe=None):
    """Probe every candidate; report each signature change between consecutive probed ones."""
    probes = []
    for version in candidates:
        probe = run_probe(version)
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


# --------------------------------------------------------------------------- real probes

def combined_signature(outcomes):
    """One string for the outcomes of all probed (scenario, mode) pairs."""
    if len(outcomes) == 1:
        return outcomes[0].signature()
    return " | ".join(f"{o.scenario}[{o.mode}]={o.signature()}" for o in outcomes)


class EnvProbe:
    """Builds (or reuses) an env per candidate and runs the scenario pairs there, isolated.

    `requirements(candidate)` -> (requirements list, exclude_newer or None). `problem`: a
    problem file, checked in each env before the scenarios run there: a UsageError in the
    first env probed (the file is bad), a SKIP in any later one (it does not work there).
    `runner(python)` -> (outcomes, skip reason or "") replaces what runs in each env (tests
    bisect a tiny package with it); `project=False` leaves this project out of the envs.
    `progress` (repro._progress.Progress) shows what is being built or run on its live bar.
    `cache_dir`: where the envs live (default: the cache's envs/, repro._paths).
    """

    def __init__(self, requirements, pairs, *, python, timeout, cache_dir=None, progress=None, problem=None,
                 runner=None, project=True):
        self.requirements, self.pairs, self.timeout, self.problem = requirements, list(pairs), timeout, problem
        self.interpreter = _envs.find_interpreter(python)
        if self.interpreter is None:
            raise UsageError(f"no Python {python} interpreter on this machine (pyenv or PATH)")
        self.cache_dir = cache_dir or _paths.cache_path("envs")
        self.progress, self.probed = progress or Progress(quiet=True), 0
        self.runner, self.project = runner or self.run_scenarios, project

    def env_path(self, reqs, exclude_newer):
        key = json.dumps([self.interpreter, sorted(reqs), exclude_newer])
        return os.path.join(self.cache_dir, hashlib.sha256(key.encode()).hexdigest()[:16])

    def __call__(self, version):
        reqs, exclude_newer = self.requirements(version)
        self.progress.working(f"building {' '.join(reqs)}" + (f" (exclude-newer {exclude_newer})" if exclude_newer else ""))
        env = _envs.build_env(self.env_path(reqs, exclude_newer), self.interpreter, reqs, extras=(),
                              exclude_newer=exclude_newer, project=self.project)
        probe = Probe(version, build_seconds=env.seconds, reused=env.reused)
        if not env.ok:
            probe.skipped, probe.reason = True, "cannot install: " + _one_line(env.reason)
            return probe
        start = time.perf_counter()
        self.progress.working(f"running {version[:12]}: {' '.join(f'{s}[{m}]' for s, m in self.pairs)}")
        probe.outcomes, skip = self.runner(env.python)
        probe.run_seconds = time.perf_counter() - start
        if skip:
            probe.skipped, probe.reason = True, skip
            return probe
        probe.signature = combined_signature(probe.outcomes)
        probe.installed = next((o.versions for o in probe.outcomes if o.versions), {})
        return probe

    def run_scenarios(self, python):
        """The scenario pairs in `python`'s env, once JAX/Optax/Equinox import there (and the
        problem file loads): (outcomes, ""), or ([], why this env is skipped)."""
        failed = _envs.import_error(python, timeout=self.timeout)
        if failed:
            return [], "cannot import: " + _one_line(failed)
        self.probed += 1
        if self.problem:
            answer = check_problem(self.problem, python=python, timeout=self.timeout)
            if "error" in answer and self.probed == 1:
                raise UsageError(f"--problem {answer['error']}")
            if "error" in answer:
                return [], "problem file: " + answer["error"]
        return run_batch(self.pairs, timeout=self.timeout, python=python, problem=self.problem), ""


def _one_line(text, limit=300):
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[:limit]


# --------------------------------------------------------------------------- requirements

def check_pins(pins):
    """`pins` ({name: version or source}) as given, once each version is known to be a release
    on the index (a source is installed as it is: its build says whether it works)."""
    for name, spec in pins.items():
        if not is_source(spec):
            _index.check_release(name, spec)
    return dict(pins)


def with_jaxlib(pins):
    """Pins plus a jaxlib that moves with a jax pinned to a release (unless jaxlib is pinned too)."""
    pins = dict(pins)
    if "jax" in pins and "jaxlib" not in pins and not is_source(pins["jax"]):
        jaxlib = _index.jaxlib_for(pins["jax"])
        if jaxlib:
            pins["jaxlib"] = jaxlib
    return pins


def _requirements(pins):
    return [requirement(k, v) for k, v in with_jaxlib(pins).items()]


def version_requirements(package, pins):
    def requirements(version):
        return _requirements({**pins, package: version}), None
    return requirements


def date_requirements(pins):
    def requirements(day):
        floating = [name for name in TRACKED if name not in pins]
        return floating + _requirements(pins), f"{day}T23:59:59Z"
    return requirements


def commit_requirements(package, repo, pins):
    """Requirements for one commit of `package` from the git repository `repo`; a jax commit
    gets the newest jaxlib released by its date (unless jaxlib is pinned)."""
    def requirements(sha):
        fixed = dict(pins)
        if package == "jax" and "jaxlib" not in pins:
            jaxlib = _index.release_on("jaxlib", _git.commit_info(repo, sha)["date"])
            if jaxlib:
                fixed["jaxlib"] = jaxlib
        return _requirements({**fixed, package: f"git+file://{repo}@{sha}"}), None
    return requirements


def date_candidates(start, end):
    """The start day, every day a tracked package released in (start, end), and the end day."""
    days = [d for d in _index.release_days(TRACKED, start, end) if d != end]
    return [start, *days, end]


# --------------------------------------------------------------------------- rendering

def _pair_signatures(probe):
    return {(o.scenario, o.mode): o.signature() for o in probe.outcomes}


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
        message = (o.message or "").strip().splitlines()
        return probe.signature + (f'  "{message[0][:70]}"' if message and o.status == "error" else "")
    return probe.signature


def render(result, title, *, package, label=str, kind="version"):
    """The evidence table and the conclusion; `label(candidate)` names a candidate (a version, or
    a commit's short sha and subject: `kind` "commit")."""
    good = result.probes[0]
    lines = [title, ""]
    cols = ("#", kind, "installed", "vs good", "build", "run", "outcome")
    rows = []
    for p in result.probes:
        installed = " ".join(f"{k}={version_text(p.installed, k)}" for k in TRACKED if p.installed.get(k))
        verdict = "SKIP" if p.skipped else ("same" if p.signature == good.signature else "CHANGED")
        build = ("cached" if p.reused else f"{p.build_seconds:.0f}s")
        rows.append((str(p.order), label(p.version)[:60], installed or "-", verdict, build, f"{p.run_seconds:.1f}s",
                     _probe_summary(p, good)))
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    lines += [fmt(cols), fmt(["-" * w for w in widths]), *map(fmt, rows), ""]
    by_version = {p.version: p for p in result.probes}
    if result.status == "found" and len(good.outcomes) > 1:
        lines.append(f"first changed:  {package} {label(result.first_changed)}; "
                     f"last unchanged: {package} {label(result.last_unchanged)}")
        lines += [f"  {c}" for c in _pair_changes(by_version[result.last_unchanged], by_version[result.first_changed])]
    elif result.status == "found":
        lines.append(f"first changed:  {package} {label(result.first_changed)}  {by_version[result.first_changed].signature}")
        lines.append(f"last unchanged: {package} {label(result.last_unchanged)}  "
                     f"{by_version[result.last_unchanged].signature}")
    elif result.status == "swept":
        for before, after in result.changes:
            if len(by_version[before].outcomes) > 1:
                lines.append(f"changed between {package} {label(before)} and {label(after)}:")
                lines += [f"  {c}" for c in _pair_changes(by_version[before], by_version[after])]
            else:
                lines.append(f"changed between {package} {label(before)} and {label(after)}: "
                             f"{by_version[before].signature}  ->  {by_version[after].signature}")
    elif result.status == "no_change":
        lines.append(f"no change: {package} {label(result.candidates[-1])} has the good end's signature "
                     f"({good.signature})")
    elif result.status == "ambiguous":
        lines.append(f"ambiguous: last unchanged {package} {label(result.last_unchanged)}; the first changed is one of "
                     f"{', '.join(map(label, result.remaining))} (skipped candidates could not be probed)")
    else:
        ends = [p for p in (result.probes[0], result.probes[-1]) if p.skipped]
        lines.append("cannot bisect: " + "; ".join(f"{package} {label(p.version)} {p.reason}" for p in ends))
    return "\n".join(lines)


# --------------------------------------------------------------------------- bisect and diff

@dataclasses.dataclass
class Bisection:
    """One `repro bisect` (or sweep) as run: what was asked, the search result, its cost."""

    package: str  # the moved package, or "date"
    candidates: list
    pins: dict
    pairs: list
    python: str
    every: bool
    result: Result
    wall_seconds: float
    source: Optional[dict] = None  # commit bisect: {"repository", "good", "bad"} (refs as given)
    problem: Optional[str] = None

    @property
    def built(self):
        return sum(1 for p in self.result.probes if not p.reused)

    def exit_code(self):
        return self.result.exit_code()

    def commit(self, sha):
        """A candidate commit's {"sha", "short", "date", "subject", "pr"} (commit bisect only)."""
        return _git.commit_info(self.source["repository"], sha)

    def label(self, candidate):
        """How a candidate is named in the table: a version, or `short-sha subject (#PR)`."""
        if not self.source:
            return candidate
        info = self.commit(candidate)
        return f"{info['short'][:8]} {info['subject']}" + (f" (#{info['pr']})" if info["pr"] and
                                                          f"#{info['pr']}" not in info["subject"] else "")

    def to_dict(self):
        data = dataclasses.asdict(self.result)
        data["environments"] = self.result.environments
        data.update(package=self.package, pins=self.pins, pairs=self.pairs, python=self.python,
                    wall_seconds=round(self.wall_seconds, 1), built=self.built, problem=self.problem)
        if self.source:
            data["source"] = self.source
            for key in ("first_changed", "last_unchanged"):
                data[key] = data[key] and self.commit(data[key])
            data["remaining"] = [self.commit(sha) for sha in data["remaining"]]
            data["changes"] = [[self.commit(a), self.commit(b)] for a, b in data["changes"]]
        return data

    def render(self):
        pin_text = " ".join(f"{k}=={v}" if not is_source(v) else f"{k} @ {v}" for k, v in self.pins.items()) or "none"
        what = ", ".join(f"{s}[{m}]" for s, m in self.pairs) + (f" on {self.problem}" if self.problem else "")
        if self.source:
            span = f"{self.source['good']}..{self.source['bad']} in {self.source['repository']}"
            listed = "first-parent commits"
        else:
            span, listed = f"{self.candidates[0]}..{self.candidates[-1]}", " ".join(self.candidates)
        title = (f"{'sweep' if self.every else 'bisect'} {self.package} {span} ({len(self.candidates)} candidates: "
                 f"{listed})\nscenario {what}; pins {pin_text}; python {self.python}")
        n, used = len(self.candidates), self.result.environments
        bound = "" if self.every else f"; bound ceil(log2 {n})+2 = {env_bound(n)}"
        found = ""
        if self.source and self.result.status == "found":
            info = self.commit(self.result.first_changed)
            found = (f"\nfirst changed commit: {info['sha']}\n  {info['date']}  {info['subject']}\n  pull request: "
                     + (f"#{info['pr']}" if info["pr"] else "none named in the commit message"))
        return (render(self.result, title, package=self.package, label=self.label,
                       kind="commit" if self.source else "version") + found + "\n"
                + f"environments: {used} ({self.built} built, {used - self.built} reused){bound}; "
                  f"wall {self.wall_seconds:.1f} s")


def bisect(options, *, progress=None, cache_dir=None, git_cache=None, **probe_options):
    """Run the bisect (or, with `options.every`, the sweep) that `options`
    (repro._options.BisectOptions) asks for. UsageError for a pin or version not on the index,
    or a --source that is not a repository holding both refs. `progress`
    (repro._progress.Progress): a line per probe, `probe 3 of ≤ 7: jax 0.4.34 ...`. `cache_dir`,
    `git_cache`: where envs and clones live (default: the cache's envs/ and git/, repro._paths).
    `probe_options`: EnvProbe's `runner` and `project`, for tests."""
    progress = progress or Progress(quiet=True)
    pins, source = check_pins(options.pins), None
    if options.by_date:
        candidates, package, requirements = date_candidates(*options.by_date), "date", date_requirements(pins)
    elif options.source:
        package = options.package
        repo = _git.repository(options.source, git_cache or _paths.cache_path("git"))
        good, bad = _git.resolve(repo, options.good, "--good"), _git.resolve(repo, options.bad, "--bad")
        candidates, requirements = _git.first_parent(repo, good, bad), commit_requirements(package, repo, pins)
        source = {"repository": repo, "good": options.good, "bad": options.bad}
    else:
        package = options.package
        candidates = _index.versions_between(package, options.good, options.bad, prereleases=options.prereleases,
                                             yanked=options.yanked)
        requirements = version_requirements(package, pins)
    probe = EnvProbe(requirements, options.pairs, python=options.python, timeout=options.timeout,
                      cache_dir=cache_dir, progress=progress, problem=options.problem, **probe_options)
    progress.note(f"{len(candidates)} candidates: " + (f"{candidates[0][:12]}..{candidates[-1][:12]}" if source
                                                       else " ".join(candidates)))
    progress.expect(len(candidates) if options.every else env_bound(len(candidates)), bound=not options.every)

    def on_probe(p):
        if p.skipped and not options.every:
            progress.extend(1)  # the search steps around a skip: one more probe may be needed
        progress.done(f"{package} {p.version[:12] if source else p.version}: "
                      + (f"SKIP {p.reason}" if p.skipped else p.signature)
                      + f"  (env {'cached' if p.reused else format_seconds(p.build_seconds)}, "
                        f"run {format_seconds(p.run_seconds)})")

    start = time.perf_counter()
    result = (sweep if options.every else search)(candidates, probe, on_probe=on_probe)
    return Bisection(package, candidates, pins, options.pairs, options.python, options.every, result,
                     time.perf_counter() - start, source, options.problem)
