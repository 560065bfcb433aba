"""`repro survey`: measure every release into data. No JAX here.

The cells come from the package index, not from a hand-written list:
- one per JAX release from 0.4.30, on the oldest Python it supports of 3.11/3.12 that this
  project tests, with the newest Optax and Equinox the installer resolves for it (and, if
  that env cannot import, the ones released within 30 days of that JAX: `attempts` says so);
- one per Optax release from 0.2.3 and one per Equinox release from 0.11.4, each with the
  other packages as they were the day it was released (`uv --exclude-newer`);
- the default matrix cells, with their exact pins, so every default cell is measured exactly.

Each cell builds its env (uv), runs the built-in problem and the fixed corpus
(`repro/_corpus.py: SURVEY`) through every scenario, jit then eager, in `Workers` (the cores
shared out between the cells measured at once), and writes
`repro/_data/observations/<cell>.json` atomically. A cell whose env is identical to one
measured earlier in the same run takes its observations (`Twins`), and a later cell starts
with what earlier ones found: the XLA flags its jaxlib takes (`AcceptedFlags`) and the bytecode
of the distributions they share (`_bytecode`). A cell already measured with the
same plan is skipped, so an interrupted survey resumes where it stopped; a cell that cannot
be installed or imported is written with its reason. `--new` measures only releases that are
not in the data yet and prints what changed against the release before.

With a `Problem` (`survey --problem FILE.py`) each cell measures that file instead of the built-in
problem and the corpus, through every scenario, as `run --problem` runs it: the user's
question is what their own model does on each release, and the corpus, already measured in the
packaged data for the same cells, would multiply the cost by its size for nothing new. The
cell's file records the problem (`Problem.record`: file name, digest, source), and the plan key
holds its digest, so an edited file is measured again.

Why one module of this length: planning a cell from the index, measuring it and reading the
folder back share one on-disk format (the cell plan and the observation file); split, that
format would be spread over several modules.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Callable, Optional

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from . import _bytecode, _envs, _index, _paths
from ._catalogue import BUILTIN_MODULE, GENERATED_BUDGETS, MODES, SCENARIOS
from ._corpus import SURVEY
from ._files import utc_now, write_json_atomic
from ._policy import default_workers
from ._workers import Workers
from ._matrix import CELLS
from ._observations import DATA_DIR, PROBLEM_MODULE, ObservationFile, Observation, load, path_of
from ._versions import DISTRIBUTION, SCRIPT, __version__, checkout_state

FLOORS = {"jax": "0.4.30", "optax": "0.2.3", "equinox": "0.11.4"}  # lbfgs since optax 0.2.3
PYTHONS = ("3.11", "3.12")  # the oldest that a release supports is the one it is surveyed on
_INSTALLED_CODE = ("import json, platform; from importlib import metadata; print(json.dumps({'python': "
                   "platform.python_version(), 'installed': {d.metadata['Name'].lower(): d.version "
                   "for d in metadata.distributions()}}))")


@dataclasses.dataclass(frozen=True)
class Problem:
    """A user's problem file as the survey measures it (`survey --problem FILE.py`): where it
    is (its tracebacks and `__file__` name it) and its text as read once, when the survey began."""

    path: str
    source: str

    @classmethod
    def read(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(os.path.abspath(path), f.read())

    def digest(self):
        """A short digest of the file's text and the scenario list: what its plan key holds."""
        return hashlib.sha256(json.dumps([self.source, list(SCENARIOS)]).encode()).hexdigest()[:12]

    def job_source(self):
        """What a worker runs: the file's text compiled under its own path, so that tracebacks
        and `__file__` name the file, as when `run --problem` loads it."""
        return f"__file__ = {self.path!r}\nexec(compile({self.source!r}, {self.path!r}, 'exec'))\n"

    def record(self):
        """What a cell's file keeps of it: enough to know, and to rerun, what was measured."""
        return {"file": os.path.basename(self.path), "path": self.path, "digest": self.digest(),
                "source": self.source}


@dataclasses.dataclass(frozen=True)
class CellPlan:
    key: str
    series: str
    python: str
    requirements: tuple
    exclude_newer: Optional[str] = None
    fallback_exclude_newer: Optional[str] = None  # when the newest resolution cannot import
    problem: Optional[Problem] = None  # measured instead of the built-in problem and the corpus

    def plan_key(self):
        """Everything a cell's measurement depends on but the code: a new corpus, or an edited
        problem file, measures again."""
        what = f"problem:{self.problem.digest()}" if self.problem else corpus_digest()
        return json.dumps([self.python, list(self.requirements), self.exclude_newer, what])


def corpus_of(plan_key):
    """The corpus digest inside a cell's `plan` (CellPlan.plan_key), or None if it has none."""
    try:
        return json.loads(plan_key)[-1]
    except (ValueError, TypeError, IndexError, KeyError):
        return None


def corpus_digest():
    """A short digest of the corpus and the scenario list."""
    text = json.dumps([sorted((k, e.source) for k, e in SURVEY.items()), list(SCENARIOS)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _day_after(uploaded, days=1):
    day = datetime.date.fromisoformat(uploaded[:10]) + datetime.timedelta(days=days)
    return f"{day.isoformat()}T00:00:00Z"


def _python_for(release_json, version):
    """The oldest of PYTHONS that the release's files say they support."""
    files = release_json.get("releases", {}).get(version, [])
    specs = {f.get("requires_python") or "" for f in files}
    for python in PYTHONS:
        if all(not spec or Version(python + ".99") in SpecifierSet(spec) for spec in specs):
            return python
    return None


def plan(index=_index, series=("jax", "optax", "equinox", "matrix")):
    """The survey's cells, from the package index (and the matrix table)."""
    floors = {name: f"{name}>={version}" for name, version in FLOORS.items()}
    # The other packages "as they were" may not predate the floors: optax 0.2.3 came out after
    # equinox 0.11.4, and an optax without lbfgs would measure nothing.
    floor_day = _day_after(max(r.uploaded for name, v in FLOORS.items() for r in index.releases(name)
                               if r.version == v))
    cells = []
    if "matrix" in series:  # first: every default cell measured exactly, even if the survey is cut short
        for cell in CELLS:
            if "default" in cell.tags:
                cells.append(CellPlan(f"matrix-{cell.id}", "matrix", cell.python, tuple(cell.requirements())))
    if "jax" in series:
        jax_json, releases = index.fetch_json("jax"), _after_floor(index, "jax")
        for i, release in enumerate(releases):
            python = _python_for(jax_json, release.version)
            if python is None:
                continue
            jaxlib = index.jaxlib_for(release.version)
            later = releases[i + 1].uploaded if i + 1 < len(releases) else None
            cells.append(CellPlan(f"jax-{release.version}", "jax", python,
                                     (f"jax=={release.version}", f"jaxlib=={jaxlib}", floors["optax"], floors["equinox"]),
                                     fallback_exclude_newer=_day_after(later or release.uploaded, 0 if later else 30)))
    for name in ("optax", "equinox"):
        if name in series:
            others = [floors[p] for p in ("jax", "optax", "equinox") if p != name] + ["jaxlib"]
            for release in _after_floor(index, name):
                cells.append(CellPlan(f"{name}-{release.version}", name, "3.11",
                                         (f"{name}=={release.version}", *others),
                                         max(_day_after(release.uploaded), floor_day)))
    return cells


def _after_floor(index, name):
    return [r for r in index.releases(name) if r.parsed >= Version(FLOORS[name])]


# --------------------------------------------------------------------------- running one cell

def corpus_jobs(mode):
    """[(module, (source, scenario, mode, budget))] for the built-in problem and every corpus
    module: the built-in problem with the full budget (it must converge), the others with
    GENERATED_BUDGETS (they are judged by the oracle)."""
    return [(module, (entry.source, scenario, mode, {} if module == BUILTIN_MODULE else GENERATED_BUDGETS[mode]))
            for module, entry in SURVEY.items() for scenario in SCENARIOS]


def problem_jobs(problem, mode):
    """[(PROBLEM_MODULE, (source, scenario, mode, budget))]: a problem file through every
    scenario with the full budget, as `run --problem` runs it."""
    return [(PROBLEM_MODULE, (problem.job_source(), scenario, mode, {})) for scenario in SCENARIOS]


def measure_cell(planned, *, modes=MODES, env_root=None, keep_env=False, timeout=600, log=print,
                 command="repro survey", workers=None, worker_count=None, twins=None, flags=None, bytecode=None):
    """Build the cell's env, run the corpus there, return its ObservationFile (never raises
    for a cell-level failure: an unresolvable or unimportable env is recorded as such, after
    the fallback date was tried too).

    Starting the cell's workers is its import check: a worker imports JAX, Optax, Equinox and
    the scenario code, starts the backend and only then says it is ready, so a separate check
    process would import all of that once more. Only when they
    do not start is the env asked why (`_envs.import_error`), and that is the recorded reason.
    `twins` (a `Twins`): if a cell measured earlier in this run installed exactly the same
    distributions on the same Python, its observations are this cell's too (`same_env_as`).
    `flags` (an `AcceptedFlags`): the XLA flags a cell with the same jaxlib started with in this
    run, so that this cell's workers do not try again the flags that XLA rejected.
    `bytecode`: a folder where the `.pyc` files of the distributions this cell's workers imported
    are kept, and from which the env gets those of earlier cells (`_bytecode`).
    `env_root`: where the env is built (default: the cache's survey/, repro._paths)."""
    tool, commit = provenance()
    cell = ObservationFile(planned.key, planned.series, planned.python, list(planned.requirements),
                            planned.exclude_newer, plan=planned.plan_key(), command=command, measured=utc_now(),
                            tool=tool, commit=commit)
    if planned.problem:
        cell.problem = planned.problem.record()
    interpreter = _envs.find_interpreter(planned.python)
    if interpreter is None:
        cell.status, cell.reason = "skipped", f"no Python {planned.python} interpreter on this machine"
        return cell
    path, pool = os.path.join(env_root or _paths.cache_path("survey"), planned.key), None
    tries = [planned.exclude_newer] + ([planned.fallback_exclude_newer] if planned.fallback_exclude_newer else [])
    try:
        for exclude_newer in tries:
            python = _build(cell, planned, interpreter, path, exclude_newer, log)
            if python is None:
                continue
            _record_installed(cell, python)
            twin = twins.find(cell, modes) if twins else None
            if twin is not None:
                cell.exclude_newer = exclude_newer
                _copy_measurement(cell, twin, modes)
                log(f"{planned.key}: the same env as {twin.key} (every installed version): its observations are this cell's")
                return cell
            if bytecode:
                _bytecode.seed(path, bytecode)
            known = flags.get(cell) if flags else None
            pool, error = _start_workers(python, timeout, workers, worker_count, known)
            if pool is None:
                cell.installed, cell.python_version = {}, None
                _failed(cell, exclude_newer, "import-failed", error, log)
                continue
            cell.exclude_newer = exclude_newer
            if flags:
                flags.add(cell, pool.xla_flags)
            _run_corpus(cell, pool, modes, planned.problem)
            if bytecode:
                _bytecode.keep(path, bytecode)
            return cell
    finally:
        if pool is not None and workers is None:
            pool.close()
        if not keep_env:
            shutil.rmtree(path, ignore_errors=True)
    return cell


def _build(cell, planned, interpreter, path, exclude_newer, log):
    """The env's python, or None when it cannot be resolved (recorded as an attempt)."""
    start = time.perf_counter()
    built = _envs.build_env(path, interpreter, planned.requirements, extras=(), exclude_newer=exclude_newer)
    cell.seconds["build"] = round(time.perf_counter() - start, 1)
    if built.ok:
        return built.python
    _failed(cell, exclude_newer, "unresolvable", built.reason, log)
    return None


def _failed(cell, exclude_newer, status, reason, log):
    """Record an install that cannot be measured: the cell's status until a later try works."""
    cell.attempts.append({"exclude_newer": exclude_newer, "status": status, "reason": reason[-600:]})
    log(f"{cell.key}: {status} (exclude-newer {exclude_newer}): {(reason.splitlines() or [''])[-1][:200]}")
    cell.status, cell.reason = status, reason


def _record_installed(cell, python):
    proc = subprocess.run([python, "-c", _INSTALLED_CODE], capture_output=True, text=True, timeout=300)
    data = json.loads(proc.stdout)
    cell.python_version, cell.installed = data["python"], dict(sorted(data["installed"].items()))
    cell.status, cell.reason = "ok", ""


def _start_workers(python, timeout, workers=None, worker_count=None, xla_flags=None):
    """(the cell's workers, started, "") or (None, why the env cannot import JAX or the scenario
    code). A worker that does not start in an env that imports is a bug and raises."""
    pool = workers or Workers(worker_count, python=python, timeout=timeout, compilation_cache=False,
                              xla_flags=xla_flags)
    try:
        return pool.start(), ""
    except RuntimeError:
        if workers is None:
            pool.close()
        error = _envs.import_error(python)
        if not error:
            raise
        return None, error


def _run_corpus(cell, pool, modes, problem=None):
    """Every module (or the `problem` alone) through every scenario on the started `pool`, jit
    then eager, each mode timed; the cell records the XLA flags its workers compile with."""
    cell.xla_flags = pool.xla_flags
    for mode in [m for m in ("jit", "eager") if m in modes]:
        start = time.perf_counter()
        jobs = problem_jobs(problem, mode) if problem else corpus_jobs(mode)
        for (module, _), outcome in zip(jobs, pool.run([job for _, job in jobs])):
            cell.contents.setdefault(module, dict(outcome.contents or {}))
            cell.observations.append(Observation.of(module, outcome))
        cell.seconds[mode] = round(time.perf_counter() - start, 1)


class Twins:
    """The cells measured in this run, by their env (Python and every installed distribution).

    The same programs on the same libraries compute the same thing, so a cell whose env is
    identical to one already measured (the survey's JAX cell for the newest JAX and the matrix's
    `newest` cell, say) takes that cell's observations instead of measuring them again."""

    def __init__(self):
        self._cells, self._lock = {}, threading.Lock()

    @staticmethod
    def _env(cell):
        return cell.python_version, tuple(sorted(cell.installed.items()))

    def add(self, cell):
        if cell.status == "ok" and cell.observations:
            with self._lock:
                self._cells.setdefault(self._env(cell), ObservationFile.from_dict(cell.to_dict()))

    def find(self, cell, modes):
        with self._lock:
            twin = self._cells.get(self._env(cell))
        return twin if twin is not None and set(modes) <= _modes_of(twin) else None


class AcceptedFlags:
    """The XLA flags each jaxlib's workers started with in this run.

    XLA and its flags are built into jaxlib, and a worker started with a flag its XLA does not
    know aborts only after importing JAX, so each rejected set of FAST_COMPILE_FLAGS costs a
    cell a JAX import (which jaxlibs narrow them: each survey file's `xla_flags`).
    A later cell with the same jaxlib on the same Python starts with what the first one found."""

    def __init__(self):
        self._flags, self._lock = {}, threading.Lock()

    @staticmethod
    def _key(cell):
        return cell.python_version, cell.installed.get("jaxlib")

    def add(self, cell, flags):
        if flags is not None and cell.installed.get("jaxlib"):
            with self._lock:
                self._flags.setdefault(self._key(cell), flags)

    def get(self, cell):
        with self._lock:
            return self._flags.get(self._key(cell))


def _copy_measurement(cell, twin, modes):
    cell.observations = [Observation.from_dict(o.to_dict()) for o in twin.observations if o.mode in modes]
    cell.contents = json.loads(json.dumps(twin.contents))
    cell.xla_flags = twin.xla_flags
    cell.same_env_as = {mode: twin.same_env_as.get(mode, twin.key) for mode in modes}


def provenance():
    """(this tool's distribution and version, its checkout's commit or None when installed)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    state = checkout_state(root) if os.path.exists(os.path.join(root, ".git")) else {"commit": None}
    commit = state["commit"] and state["commit"][:12] + ("+dirty" if state.get("dirty") else "")
    return f"{DISTRIBUTION} {__version__}", commit


# Options whose value is a path: recorded relative to the data folder, so a file says how to
# measure it again from there, on any machine.
PATH_OPTIONS = ("--data", "--problem", "--cache-dir", "--out")


def command_line(argv, directory, program=f"{SCRIPT} survey"):
    """The survey command as run, with the values of PATH_OPTIONS relative to `directory`."""
    words, after = [program], None
    for arg in argv:
        name, eq, value = arg.partition("=")
        if after is not None:
            words.append(os.path.relpath(os.path.abspath(arg), directory))
        elif name in PATH_OPTIONS and eq:
            words.append(f"{name}={os.path.relpath(os.path.abspath(value), directory)}")
        else:
            words.append(arg)
        after = arg if arg in PATH_OPTIONS and after is None else None
    return " ".join(words)


# --------------------------------------------------------------------------- the whole survey

@dataclasses.dataclass
class SurveyRun:
    planned: list
    measured: list = dataclasses.field(default_factory=list)  # keys measured this run
    skipped: list = dataclasses.field(default_factory=list)  # keys already in the data
    seconds: float = 0.0


def pending(planned, directory=DATA_DIR, *, force=False, modes=MODES):
    """The planned cells not yet measured with the same plan in every one of `modes` (all of
    them with `force`)."""
    done = {c.key: c for c in load(directory)}
    return [p for p in planned if force or p.key not in done or done[p.key].plan != p.plan_key()
            or (done[p.key].status == "ok" and not set(modes) <= _modes_of(done[p.key]))]


def _modes_of(cell):
    return {o.mode for o in cell.observations}


def _merge(earlier, measured):
    """A cell measured in more modes: the earlier file's other modes are kept."""
    if earlier is None or earlier.plan != measured.plan or measured.status != "ok" or earlier.status != "ok":
        return measured
    new_modes = _modes_of(measured)
    kept = [o for o in earlier.observations if o.mode not in new_modes]
    measured.observations = kept + measured.observations
    measured.seconds = {**{k: v for k, v in earlier.seconds.items() if k not in new_modes}, **measured.seconds}
    measured.same_env_as = {**{m: k for m, k in earlier.same_env_as.items() if m not in new_modes},
                            **measured.same_env_as}
    kept_modes = _modes_of(earlier) - new_modes
    if kept_modes:  # two runs wrote this file: say which measured what
        measured.by_mode = {**{m: earlier.by_mode.get(m) or _run_of(earlier) for m in sorted(kept_modes)},
                            **{m: _run_of(measured) for m in sorted(new_modes)}}
    order = {name: i for i, name in enumerate(SURVEY)}
    measured.observations.sort(key=lambda o: (o.mode, order.get(o.module, 99), list(SCENARIOS).index(o.scenario)))
    return measured


def _run_of(cell):
    return {"commit": cell.commit, "command": cell.command, "measured": cell.measured}


def survey(planned, *, directory=DATA_DIR, modes=MODES, force=False, keep_envs=False, timeout=600,
           log=print, command="repro survey", measure: Callable = measure_cell, cells_at_once=1):
    """Measure every pending cell, writing each cell's file as soon as it is measured.

    `cells_at_once` cells are measured side by side (each with its own env and workers): one
    cell's workers leave the cores idle between jobs and while its env is built, its packages
    listed and its workers start, and another cell's work fills that time. A cell's recorded
    seconds are then those of a shared machine."""
    os.makedirs(directory, exist_ok=True)
    todo = pending(planned, directory, force=force, modes=modes)
    earlier = {c.key: c for c in load(directory)}
    worker_count, twins, flags = workers_per_cell(cells_at_once), Twins(), AcceptedFlags()
    bytecode = tempfile.mkdtemp(prefix="repro-bytecode-")  # this run's, removed at its end
    run = SurveyRun(planned, skipped=[p.key for p in planned if p not in todo])
    start = time.perf_counter()

    def one(numbered):
        number, cell = numbered
        log(f"[{number}/{len(todo)}] {cell.key}: {' '.join(cell.requirements)}"
            + (f" (exclude-newer {cell.exclude_newer})" if cell.exclude_newer else ""))
        done = earlier.get(cell.key)
        missing = [m for m in modes if force or done is None or done.plan != cell.plan_key() or m not in _modes_of(done)]
        fresh = measure(cell, modes=missing, keep_env=keep_envs, timeout=timeout, log=log, command=command,
                        worker_count=worker_count, twins=twins, flags=flags, bytecode=bytecode)
        twins.add(fresh)  # what this run measured, not what an earlier file adds to it
        measured = _merge(done, fresh)
        write_json_atomic(path_of(cell.key, directory), measured.to_dict())
        run.measured.append(cell.key)
        log(f"[{number}/{len(todo)}] {cell.key}: {measured.status.upper()} "
            + " ".join(f"{k} {measured.versions.get(k)}" for k in ("jax", "optax", "equinox"))
            + f" ({', '.join(f'{k} {v:.0f} s' for k, v in measured.seconds.items())})")

    try:
        _side_by_side(one, list(enumerate(todo, 1)), cells_at_once)
    finally:
        shutil.rmtree(bytecode, ignore_errors=True)
    run.measured.sort(key=[c.key for c in todo].index)
    run.seconds = time.perf_counter() - start
    return run


def workers_per_cell(cells_at_once):
    """The cores (REPRO_WORKERS, else all) shared out between the cells measured at once, at
    least one worker each: the survey is CPU-bound, so more processes than cores only add a
    second JAX import and a second compile of what each worker compiles for itself."""
    return max(1, default_workers() // max(1, cells_at_once))


def _side_by_side(work, items, count):
    """`work(item)` for every item, `count` at a time, in order of the items. One at a time runs
    here in this thread. Otherwise daemon threads take the items, and this thread keeps waking
    so that Ctrl-C stops the run (the cells' workers see their input close and exit); an item
    that raised (not a cell-level failure, which is recorded: a bug) stops the taking of more,
    and is raised here once the others running have finished."""
    if count <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    todo, errors = queue.SimpleQueue(), []
    for item in items:
        todo.put(item)

    def drain():
        while not errors:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                work(item)
            except BaseException as error:  # noqa: BLE001 -- re-raised in the calling thread
                errors.append(error)

    threads = [threading.Thread(target=drain, daemon=True) for _ in range(min(count, len(items)))]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(0.2)
    if errors:
        raise errors[0]


def _series_version(cell):
    """The version of the package a cell's series moves (None for matrix cells)."""
    return Version(cell.key.split("-", 1)[1]) if cell.series in FLOORS else None


def changes_against_previous(key, directory=DATA_DIR):
    """(previous key, [(module, scenario, mode, before, after)]): what changed between a cell and
    the release before it in its series (None, [] if there is none)."""
    cells = {c.key: c for c in load(directory) if c.status == "ok"}
    cell = cells.get(key)
    if cell is None or _series_version(cell) is None:
        return None, []
    earlier = [c for c in cells.values() if c.series == cell.series and _series_version(c) < _series_version(cell)]
    if not earlier:
        return None, []
    previous = max(earlier, key=_series_version)
    old = {(o.module, o.scenario, o.mode): o.signature() for o in previous.observations}
    return previous.key, [(o.module, o.scenario, o.mode, old.get((o.module, o.scenario, o.mode)), o.signature())
                          for o in cell.observations if old.get((o.module, o.scenario, o.mode)) != o.signature()]


def render_changes(key, previous, changed):
    """What a maintainer reads: the signatures that changed against the release before."""
    if previous is None:
        return f"{key}: no earlier release in its series to compare with"
    if not changed:
        return f"{key}: nothing changed against {previous}"
    lines = [f"{key}: {len(changed)} changed against {previous}"]
    lines += [f"  {module} {scenario} [{mode}]: {before} -> {after}" for module, scenario, mode, before, after in changed]
    return "\n".join(lines)
