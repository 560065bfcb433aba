"""The release survey fanned out over many machines: shards, then a merge. No JAX.

`survey --dry-run --json --shards N` prints the pending cells grouped into N shards of about
the same expected time (longest first, each to the least loaded shard; a cell's expected
seconds are those an earlier measurement of it took in the data, else the median of the
others'), each with the `survey` arguments that measure exactly its cells. A job per shard
runs `survey <its arguments> --data DIR` and keeps DIR; `survey --merge DIR... --data OUT`
reads every shard's cell files, refuses folders that disagree on how they were measured (the
observation schema, this tool's version and commit, the corpus and scenario list; with
`--plan-file`, each cell's planned inputs), and writes each cell
into OUT as a survey run would have (a cell already in OUT keeps the modes the shard did not
measure).
"""

import dataclasses
import glob
import hashlib
import json
import os
import statistics

from . import _survey
from ._catalogue import MODES
from ._errors import UsageError
from ._files import write_json_atomic
from ._observations import SCHEMA, ObservationFile, load, path_of
from ._versions import DISTRIBUTION, __version__


@dataclasses.dataclass(frozen=True)
class Shard:
    """Cells measured by one job: their keys (in plan order) and the seconds they are expected to take."""

    name: str
    cells: tuple
    seconds: float

    def args(self, modes=MODES, timeout=None):
        """The `survey` arguments that measure exactly these cells (a `--data DIR` is added by the job)."""
        args = [arg for key in self.cells for arg in ("--only", key)]
        if tuple(modes) != tuple(MODES):
            args += [arg for mode in modes for arg in ("--mode", mode)]
        if timeout is not None:
            args += ["--timeout", f"{timeout:g}"]
        return args


def expected_seconds(planned, directory, modes=MODES):
    """{key: seconds}: what each planned cell took to build and measure in `modes` when it was
    last measured (a cell that took a twin's observations, `same_env_as`, counts the twin's
    seconds), else the median of those known (1 when none is)."""
    done = {c.key: c for c in load(directory)}

    def took(cell):
        total = cell.seconds.get("build", 0.0)
        for mode in modes:
            measured_by = done.get(cell.same_env_as.get(mode), cell)
            if mode not in measured_by.seconds:
                return None
            total += measured_by.seconds[mode]
        return total

    known = {p.key: took(done[p.key]) for p in planned if p.key in done and done[p.key].status == "ok"}
    known = {key: seconds for key, seconds in known.items() if seconds is not None}
    default = statistics.median(known.values()) if known else 1.0
    return {p.key: known.get(p.key, default) for p in planned}


def shards(planned, count, seconds):
    """`planned` in at most `count` shards (none empty) of about the same expected time: the
    longest cell first, each into the shard with the least so far (the earlier on a tie)."""
    order = {p.key: i for i, p in enumerate(planned)}
    loads = [[0.0, []] for _ in range(min(count, len(planned)))]
    for key in sorted(order, key=lambda k: (-seconds[k], order[k])):
        least = min(loads, key=lambda load: load[0])
        least[0] += seconds[key]
        least[1].append(key)
    return [Shard(f"shard-{i}", tuple(sorted(keys, key=order.get)), round(total, 1))
            for i, (total, keys) in enumerate(loads, 1)]


# --------------------------------------------------------------------------- the merge

def tool_of(cell):
    """The harness that measured a cell, as "lbfgs-equinox-repro 0.1.0": its `tool` field where
    the schema has one, else the version its env installed (the cell envs install this project);
    None when the file cannot say (a cell that did not install)."""
    tool = getattr(cell, "tool", None)
    if tool:
        return tool
    version = cell.installed.get(DISTRIBUTION)
    return f"{DISTRIBUTION} {version}" if version else None


# What the shards' cells must agree on, and how a cell file says it. None: the file cannot say,
# which agrees with anything.
PROVENANCE = (
    ("observation schema", lambda cell: cell.schema),
    ("tool version", tool_of),
    ("commit", lambda cell: getattr(cell, "commit", None)),
    ("corpus and scenarios", lambda cell: _survey.corpus_of(cell.plan)),
)


def own_provenance():
    """What this tool must share with the cells it merges: it reads and rewrites them with its
    schema, and plans cells with its corpus (a cell measured with another would be measured
    again)."""
    return {"observation schema": SCHEMA, "tool version": f"{DISTRIBUTION} {__version__}",
            "corpus and scenarios": _survey.corpus_digest()}


def plan_digest(plans):
    """A short digest of {key: CellPlan.plan_key()}: what `--dry-run --json` prints, and what
    a merge given that plan checks the shards' cells against."""
    return hashlib.sha256(json.dumps(sorted(plans.items())).encode()).hexdigest()[:12]


def read_plan(path):
    """({key: plan}, [pending keys]) from a file `survey --dry-run --json` wrote; anything else is
    bad input."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        plans = {cell["key"]: cell["plan"] for cell in data["cells"]}
        pending = list(data["pending"])
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise UsageError(f"--plan-file {path}: not a plan from `survey --dry-run --json` ({error})") from None
    if data.get("digest") != plan_digest(plans):
        raise UsageError(f"--plan-file {path}: its digest does not match its cells (edited?)")
    return plans, pending


def check_plan(found, plans):
    """UsageError for the first cell that the plan does not hold, or holds with other inputs (the
    package index moved between the plan and the shard, say)."""
    for folder, cell in found:
        if cell.key not in plans:
            raise UsageError(f"--merge: {cell.key} in {folder} is not in the plan")
        if cell.plan != plans[cell.key]:
            raise UsageError(f"--merge: {cell.key} in {folder} was measured with inputs other than planned: "
                             f"{cell.plan} (planned: {plans[cell.key]})")


def read_folder(folder):
    """The cell files of one shard's folder; a folder with none, or a file that is not one, is bad input."""
    if not os.path.isdir(folder):
        raise UsageError(f"--merge {folder}: not a directory")
    paths = sorted(glob.glob(os.path.join(folder, "*.json")))
    if not paths:
        raise UsageError(f"--merge {folder}: no cell files (*.json) in it")
    cells = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                cell = ObservationFile.from_dict(json.load(f))
        except (OSError, ValueError, TypeError, AttributeError) as error:
            raise UsageError(f"--merge: {path} is not a survey cell file ({error})") from None
        if os.path.basename(path) != f"{cell.key}.json":
            raise UsageError(f"--merge: {path} holds cell {cell.key}")
        cells.append(cell)
    return cells


def check_agreement(found, own):
    """UsageError naming the first thing two shards' cells (or a cell and this tool) disagree on.
    `found`: [(folder, cell)]; `own`: {what: this tool's value}."""
    for what, value_of in PROVENANCE:
        first = None
        for folder, cell in found:
            value = value_of(cell)
            if value is None:
                continue
            if what in own and value != own[what]:
                raise UsageError(f"--merge: {cell.key} in {folder} was measured with {what} {value}; this tool "
                                 f"has {own[what]}")
            if first is None:
                first = (folder, cell, value)
            elif value != first[2]:
                raise UsageError(f"--merge: the shards disagree on the {what}: {first[2]} ({first[1].key} in "
                                 f"{first[0]}) and {value} ({cell.key} in {folder})")


def merge(folders, out, plans=None):
    """Every cell of `folders` into `out` (each once: a cell in two folders is refused), after
    checking they agree (and, given `plans` from `read_plan`, that each was measured as
    planned); returns the keys merged, sorted."""
    found, where = [], {}
    for folder in folders:
        for cell in read_folder(folder):
            if cell.key in where:
                raise UsageError(f"--merge: {cell.key} is in both {where[cell.key]} and {folder}")
            where[cell.key] = folder
            found.append((folder, cell))
    check_agreement(found, own_provenance())
    if plans is not None:
        check_plan(found, plans)
    earlier = {c.key: c for c in load(out)}
    for _, cell in found:
        write_json_atomic(path_of(cell.key, out), _survey._merge(earlier.get(cell.key), cell).to_dict())
    return sorted(where)
