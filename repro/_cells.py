"""One matrix cell: find its interpreter, prepare its env, run its verdicts, write its record. No JAX.

The noxfile's sessions (`tests` and `repro`) and benchmarks/bench_matrix.py go through
here. `prepare_env` builds (or reuses) the cell's env in ENV_ROOT/<id>; `run_cell` then
runs the verdicts there and, whatever happens, leaves `results/cells/<id>.json`:

  status        meaning                                                    verdicts
  ok            the verdict run finished (each scenario has a verdict)     as measured
  skipped       the cell's interpreter is not on this machine              none
  unresolvable  the installer could not satisfy the pins (its message kept) none
  import-failed the env was built but cannot import and run JAX            none
  problem-failed the --problem file cannot be used in this env (why)       none
  incomplete    the run was interrupted before it finished                 none

A scenario that crashes or hangs is a CRASH/TIMEOUT verdict inside an `ok` cell (see
repro/_isolate.py: the other scenarios still run, results before a crash are kept).
`run_cell` takes parsed options (repro._options.RunOptions): bad arguments are rejected
while parsing, before any env is built or any file written.

The record keeps what the env holds: the tracked versions with the commit of each one built
from a source (`versions`), and every installed distribution (`packages`). `--pin` after `--`
overrides the cell's pins (`Cell.with_pins`; the env then lives in its own folder, so the
cell's own env stays as it is), and REPRO_CHECKOUTS ("optax=DIR,equinox=DIR") installs the
dev cell's git sources from local checkouts instead.
"""

import dataclasses
import hashlib
import json
import os
import subprocess
import time
from typing import Optional

from . import _envs
from ._errors import UsageError
from ._files import utc_now, write_json_atomic
from ._isolate import check_problem
from ._policy import jax_cache_env
from ._matrix import ENV_ROOT, RESULTS, Cell
from ._options import RunOptions
from ._results import as_expected, run_here
from ._settings import setting
from ._versions import header, parse_checkouts, with_checkouts

SCHEMA = 1
_VERSIONS_CODE = ("import json; from repro._versions import installed_versions as v, all_packages as p; "
                  "print(json.dumps({'versions': v(), 'packages': p()}))")


def effective_cell(cell, pins=None, environ=None):
    """The cell as it will be built: `pins` (from `--pin` after `--`) override its own, and
    REPRO_CHECKOUTS points its git sources at local checkouts. UsageError for a bad REPRO_CHECKOUTS."""
    try:
        checkouts = parse_checkouts(setting("REPRO_CHECKOUTS", environ))
    except ValueError as error:
        raise UsageError(str(error)) from None
    cell = cell.with_pins(pins or {})
    return dataclasses.replace(cell, pins=with_checkouts(cell.pins, checkouts))


def env_folder(cell_id, overrides):
    """Where a cell's env lives: ENV_ROOT/<id>, or beside it, keyed by the overrides, when `--pin`
    changed its pins (so the cell's own env, which its tests session uses too, stays as it is)."""
    if not overrides:
        return cell_id
    return f"{cell_id}+{hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]}"


def cell_path(cell_id, results=RESULTS):
    return os.path.join(results, "cells", f"{cell_id}.json")


@dataclasses.dataclass
class EnvInfo:
    """How a cell's env was obtained."""

    backend: Optional[str] = None  # uv, virtualenv or venv; None: no env was built
    seconds: float = 0.0
    reused: Optional[bool] = None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in (data or {})})


@dataclasses.dataclass
class CellResult:
    """What one cell run left: the contents of results/cells/<id>.json."""

    cell: Cell
    status: str  # ok | skipped | unresolvable | import-failed | problem-failed | incomplete (| unreadable, on loading)
    reason: str = ""
    versions: dict = dataclasses.field(default_factory=dict)  # tracked, installed in the env (+ their sources)
    results: list = dataclasses.field(default_factory=list)  # result rows (repro._results.judge)
    as_expected: bool = False
    args: list = dataclasses.field(default_factory=list)  # the `repro run` arguments given
    started: Optional[str] = None
    finished: Optional[str] = None
    seconds: Optional[float] = None  # the whole run, when it finished
    env: EnvInfo = dataclasses.field(default_factory=EnvInfo)
    schema: int = SCHEMA
    packages: dict = dataclasses.field(default_factory=dict)  # every distribution in the env: name -> version

    def to_dict(self):
        return {"schema": self.schema, "cell": self.cell.to_dict(), "status": self.status, "reason": self.reason,
                "versions": self.versions, "results": self.results, "as_expected": self.as_expected,
                "finished": self.finished, "args": self.args, "started": self.started, "env": self.env.to_dict(),
                "seconds": self.seconds, "packages": self.packages}

    @classmethod
    def from_dict(cls, data):
        """A record read back from JSON; KeyError/TypeError/ValueError if it is not one."""
        if not isinstance(data, dict) or "status" not in data or "cell" not in data:
            raise ValueError("not a cell record")
        return cls(Cell.from_dict(data["cell"]), data["status"], data.get("reason", ""), data.get("versions") or {},
                   list(data.get("results") or []), bool(data.get("as_expected")), list(data.get("args") or []),
                   data.get("started"), data.get("finished"), data.get("seconds"),
                   EnvInfo.from_dict(data.get("env") or {}), data.get("schema", SCHEMA), dict(data.get("packages") or {}))

    @classmethod
    def unreadable(cls, cell_id, reason):
        return cls(Cell(cell_id, None, {}, ()), "unreadable", reason)


@dataclasses.dataclass
class Prepared:
    """A cell's env, ready (status ok) or not (skipped, unresolvable) with the reason."""

    status: str
    reason: str = ""
    python: str = ""  # the env's interpreter
    env: EnvInfo = dataclasses.field(default_factory=EnvInfo)


def prepare_env(cell, *, env_root=ENV_ROOT, log=print, find_interpreter=None, build_env=None, folder=None):
    """Find the cell's interpreter and build (or reuse) its env in `env_root`/<folder or id>, its
    packages resolved as of the cell's `exclude_newer`."""
    find_interpreter = find_interpreter or _envs.find_interpreter
    build_env = build_env or _envs.build_env
    interpreter = find_interpreter(cell.python)
    if interpreter is None:
        return Prepared("skipped", f"no Python {cell.python} interpreter on this machine")
    built = build_env(os.path.join(env_root, folder or cell.id), interpreter, cell.requirements(),
                      exclude_newer=cell.exclude_newer)
    env = EnvInfo(built.backend, round(built.seconds, 2), built.reused)
    if not built.ok:
        return Prepared("unresolvable", built.reason, env=env)
    log(f"env {cell.id} {'reused' if built.reused else f'built in {built.seconds:.1f} s'}: {built.path}")
    return Prepared("ok", python=built.python, env=env)


def run_cell(cell, options=RunOptions(), *, results=RESULTS, env_root=ENV_ROOT, log=print, python=None,
             find_interpreter=None, build_env=None, progress=None):
    """Prepare the cell's env, run the verdicts in it, write and return its CellResult.

    `options`: what to run (scenarios, modes, timeout, jobs, pins overriding the cell's, a
    problem file); scenarios always run batched. `python` skips the env build and uses that
    interpreter (tests, experiments). Never raises for a cell-level failure: it is recorded.
    `progress` (repro._progress.Progress): a line per finished scenario.
    """
    cell = effective_cell(cell, options.pins)
    out = cell_path(cell.id, results)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    started = time.perf_counter()
    record = CellResult(cell, "incomplete", "the run was interrupted before it finished", args=list(options.argv),
                        started=utc_now())
    # Written first: if this process is killed, the cell says so instead of showing stale results.
    write_json_atomic(out, dataclasses.replace(record, finished=utc_now()).to_dict())

    if python is None:
        prepared = prepare_env(cell, env_root=env_root, log=log, find_interpreter=find_interpreter,
                               build_env=build_env, folder=env_folder(cell.id, options.pins))
        record.env = prepared.env
        if prepared.status != "ok":
            return _finish(out, dataclasses.replace(record, status=prepared.status, reason=prepared.reason), log)
        python = prepared.python

    record.versions, record.packages = _env_versions(python)
    log(f"{cell.id}: {header(record.versions)}")
    if options.problem:
        problem = check_problem(options.problem, python=python, timeout=options.timeout)
        if "error" in problem:
            return _finish(out, dataclasses.replace(record, status="problem-failed", reason=problem["error"]), log)
    summary = run_here(options.scenarios, options.modes, timeout=options.timeout, jobs=options.jobs, python=python,
                       batch=True, versions=record.versions, env=jax_cache_env(python), problem=options.problem,
                       progress=progress)
    record.results = summary["results"]
    if record.results and all(r["outcome"]["status"] == "crash"
                              and "without a result" in (r["outcome"].get("message") or "") for r in record.results):
        failed = _envs.import_error(python)  # every child died before reporting: can the env import at all?
        if failed:
            return _finish(out, dataclasses.replace(record, status="import-failed", reason=failed), log)
    return _finish(out, dataclasses.replace(record, status="ok", reason="", as_expected=summary["as_expected"],
                                            seconds=round(time.perf_counter() - started, 2)), log)


def _finish(path, record, log):
    record.finished = utc_now()
    write_json_atomic(path, record.to_dict())
    last = record.reason.splitlines()[-1] if record.reason else ""
    counted = (f" {sum(1 for r in record.results if as_expected(r['verdict']))}/{len(record.results)} as expected"
               if record.results else "")
    took = f" in {record.seconds:.0f} s" if record.seconds is not None else ""
    log(f"{record.cell.id}: {record.status.upper()}{counted}{took}" + (f": {last}" if last else "") + f" -> {path}")
    return record


def _env_versions(python):
    """(tracked versions with their sources, every installed distribution) of `python`'s env."""
    try:
        proc = subprocess.run([python, "-c", _VERSIONS_CODE], capture_output=True, text=True, timeout=120)
        found = json.loads(proc.stdout)
        return found["versions"], found["packages"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError):
        return {}, {}
