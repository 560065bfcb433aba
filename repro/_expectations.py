"""What each scenario is expected to do, derived from the survey's observations. No JAX.

The facts are data: `repro survey` measures the built-in problem and a fixed corpus of modules
(`repro/_corpus.py: SURVEY`) through every scenario in one cell per JAX, Optax and Equinox
release (`repro/_data/observations/*.json`). Nothing here states an outcome.

A module meets a scenario along its *path* (`repro/_leaves.py`): the stages of `optax.lbfgs`
that meet a leaf they cannot handle, each with the kind of the first such leaf (`sub-params:
function`, `init-dtype: int-array, sub-updates: int-array`...). What a path does in a cell is
what the corpus modules with that path did there (their `meet`): an **exact** expectation,
held to the full signature. A path the corpus never took, but which contains a stage that
breaks on every release (`_leaves.certain`), still has a **category**: the pattern is broken
(it raises, or computes a wrong result); what it raises is compared with what the corpus's
modules raise at that stage as information, not as a verdict. Anything else is UNKNOWN.

For installed versions that were measured exactly (jax, optax, equinox all equal to a cell's),
that cell decides. Otherwise an expectation is *inferred* only inside a run of consecutive
releases of one series in which the survey saw no change, and it says so and from which cells.
Outside what was measured, it is UNKNOWN: nothing is invented.

The built-in problem (`contents["problem"] == BUILTIN_PROBLEM`) has its own observations (key BUILTIN);
it must CONVERGE (its optimum is known), any other module must AGREE with the flat-vector
reference (convergence is information there).
"""

import dataclasses
import functools
from typing import Mapping, Optional

from packaging.version import InvalidVersion, Version

from . import _leaves
from ._catalogue import BUILTIN_MODULE, BUILTIN_PROBLEM
from ._observations import DATA_DIR, load
from ._outcome import AGREES, BROKEN, CONVERGES, NOT_CONVERGED, WRONG_RESULT, Verdict, any_of, classify, fails

BUILTIN = (BUILTIN_MODULE,)  # the key of the built-in problem (contents["problem"] == BUILTIN_PROBLEM)
CATEGORY = "category"  # keys (CATEGORY, stage): every module whose path is sure to break at that stage
_SERIES = ("jax", "optax", "equinox")


def key_for(scenario, contents):
    """The key a module's expectation is derived under: BUILTIN for the built-in problem, else
    its path for `scenario` (None without a leaf list: contents from before leaf lists)."""
    if contents.get("problem") == BUILTIN_PROBLEM:
        return BUILTIN
    return _leaves.path(scenario, contents)


def category_of(key):
    """(CATEGORY, stage) of a path sure to break (its deciding stage), else None."""
    if key is None or key == BUILTIN or key[:1] == (CATEGORY,):
        return None
    decided = _leaves.deciding(key)
    return (CATEGORY, decided[0]) if decided else None


# --------------------------------------------------------------------------- from observations to expectations

def expected_of(observation, *, optimum_known):
    """One observation as an Expected (None for a crash, a timeout, or a finished run the
    reference could not judge: nothing to expect)."""
    o = observation
    if o.status in ("converged", "not_converged"):
        if not o.agrees:
            return None
        if optimum_known and o.status == "not_converged":
            return NOT_CONVERGED
        return CONVERGES if optimum_known else AGREES
    if o.status == "wrong_result":
        return WRONG_RESULT
    if o.status == "error":
        return fails(o.exc_type, o.family, o.phase, o.library)
    return None


def meet(expectations):
    """The most specific expectation every one of `expectations` satisfies: equal ones stay,
    failures keep the fields they share, a failure and a wrong result become either. A pattern
    that works for some modules and not for others is a conflict (None): the key is too coarse."""
    kinds = set(expectations)
    if not kinds:
        return None
    if len(kinds) == 1:
        return kinds.pop()
    if any(e.works or e.status == "not_converged" for e in kinds):  # something worked, something did not
        return None
    errors = [e for e in kinds if e.status == "error"]
    if not errors:
        return WRONG_RESULT
    shared = fails(*(_common(getattr(e, f) for e in errors) for f in ("exc_type", "family", "phase", "library")))
    return any_of(shared, WRONG_RESULT) if WRONG_RESULT in kinds else shared


def _common(values):
    values = set(values)
    return values.pop() if len(values) == 1 else None


@dataclasses.dataclass(frozen=True)
class CellExpectations:
    """One surveyed cell, reduced to what expectations need."""

    key: str
    series: str
    versions: Mapping[str, str]
    # (key, scenario, mode) -> Expected / AnyOf, or None (a conflict); key is a path, BUILTIN,
    # or (CATEGORY, stage) -> BROKEN when every module sure to break there did, else None.
    expected: Mapping[tuple, object]
    sources: Mapping[tuple, tuple]  # the same key -> the corpus modules it was derived from
    signatures: Mapping[tuple, tuple]  # the same key -> the outcome signatures seen there, sorted


def derive_cell(cell):
    """The expectations one cell's observations give, per (key, scenario, mode)."""
    groups, sources, signatures = {}, {}, {}
    for o in cell.observations:
        contents = cell.contents.get(o.module, {})
        key = key_for(o.scenario, contents)
        expected = expected_of(o, optimum_known=key == BUILTIN)
        if key is None or expected is None:  # a crash, a timeout, a run the reference could not judge
            continue
        for k in (key, category_of(key)):
            if k is None:
                continue
            entry = (k, o.scenario, o.mode)
            groups.setdefault(entry, []).append(expected)
            sources.setdefault(entry, []).append(o.module)
            signatures.setdefault(entry, set()).add(o.signature())
    expected = {}
    for entry, found in groups.items():
        if entry[0][:1] == (CATEGORY,):
            expected[entry] = _category(found)
        else:
            expected[entry] = meet(found)
    return CellExpectations(cell.key, cell.series, cell.versions, expected, {k: tuple(v) for k, v in sources.items()},
                {k: tuple(sorted(v)) for k, v in signatures.items()})


def _category(found):
    """BROKEN when every module of a category failed or computed a wrong result, else None (the
    stage is not sure to break after all: a test holds that this never happens)."""
    return BROKEN if all(not e.works and e.status != "not_converged" for e in found) else None


@functools.lru_cache(maxsize=4)
def table(directory=DATA_DIR):
    """Every measured cell's derived expectations (cached per process)."""
    return tuple(derive_cell(c) for c in load(directory) if c.status == "ok" and c.observations)


# --------------------------------------------------------------------------- lookup

@dataclasses.dataclass(frozen=True)
class Expectation:
    """An expectation and where it comes from: `measured` in one cell, or `inferred` from a run
    of cells of one series in which nothing changed (the cells named); `match` says whether
    the corpus took this module's very path (`exact`) or only broke at the same stage
    (`category`: the signatures it saw there are in `corpus`)."""

    expected: Optional[object]
    source: str = "unknown"  # measured | inferred | unknown
    cells: tuple = ()
    why: str = ""
    match: str = "exact"  # exact | category
    path: Optional[tuple] = None  # the module's path for this scenario (None: the built-in problem)
    corpus: tuple = ()  # category: the signatures the corpus's modules had at the deciding stage

    def describe_source(self):
        if self.source == "measured":
            where = f"measured in {self.cells[0]}"
        elif self.source == "inferred":
            where = f"inferred: no change between {self.cells[0]} and {self.cells[-1]} ({len(self.cells)} cells)"
        else:
            return self.why or "nothing measured for these versions"
        if self.match == "category":
            return (f"{where}, as every module that breaks at {category_of(self.path)[1]} (this path, "
                    f"{_leaves.describe(self.path)}, was never measured)")
        return where


def _v(text):
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


def _same(versions, cell):
    return all(_v(versions.get(p)) is not None and _v(versions.get(p)) == _v(cell.versions.get(p)) for p in _SERIES)


def _unchanged_runs(cells, key):
    """Maximal runs of consecutive measured cells with one derived expectation for `key`, along
    two kinds of path: a series (its releases in order, the other packages as of each release)
    and a line (one package's versions in order, the other two the same in every cell, e.g. two
    matrix cells that differ only in jax). Inference stays inside a run: no change was seen there."""
    paths = []
    for series in _SERIES:
        paths.append(sorted((c for c in cells if c.series == series and key in c.expected),
                            key=lambda c: _v(c.key.split("-", 1)[1])))
    for package in _SERIES:
        others = [p for p in _SERIES if p != package]
        lines = {}
        for cell in cells:
            if key in cell.expected and _v(cell.versions.get(package)) is not None:
                lines.setdefault(tuple(cell.versions.get(o) for o in others), []).append(cell)
        paths += [sorted(line, key=lambda c: _v(c.versions[package])) for line in lines.values()]
    out = []
    for path in paths:
        run = []
        for cell in path:
            if run and cell.expected[key] != run[-1].expected[key]:
                out.append(run)
                run = []
            run.append(cell)
        if run:
            out.append(run)
    return [run for run in out if len({c.key for c in run}) > 1]


def _cell_order(key):
    """Series cells by release (jax-0.4.9 before jax-0.4.30), matrix cells by name."""
    series, _, rest = key.partition("-")
    return series, _v(rest) or Version("0"), key


def _inside(versions, run):
    for package in _SERIES:
        have = [_v(c.versions.get(package)) for c in run]
        wanted = _v(versions.get(package))
        if wanted is None or None in have or not min(have) <= wanted <= max(have):
            return False
    return True


def _lookup(entry, versions, cells):
    """(Expected, source, cells, why) for one (key, scenario, mode): measured, inferred or not found."""
    exact = [c for c in cells if _same(versions, c) and entry in c.expected]
    if exact:
        found = {c.expected[entry] for c in exact}
        if len(found) == 1 and None not in found:
            return found.pop(), "measured", (exact[0].key,), ""
        return None, "unknown", (), f"the corpus modules disagree in {exact[0].key}: the key is too coarse"
    holding = [run for run in _unchanged_runs(cells, entry) if _inside(versions, run)]
    found = {run[0].expected[entry] for run in holding}
    if len(found) == 1 and None not in found:
        return found.pop(), "inferred", tuple(sorted({c.key for run in holding for c in run}, key=_cell_order)), ""
    if found:
        return None, "unknown", (), "the surveyed cells around these versions disagree"
    return None, "unknown", (), ""


def expectation_for(scenario, mode, versions, contents, directory=DATA_DIR) -> Expectation:
    """What `scenario` is expected to do (mode, installed `versions`, module `contents`)."""
    key = key_for(scenario, contents)
    if key is None:
        return Expectation(None, why="the module's leaves are not listed (contents from an older version)")
    path = None if key == BUILTIN else key
    cells = table(directory)
    expected, source, where, why = _lookup((key, scenario, mode), versions, cells)
    if expected is not None or why:
        return Expectation(expected, source, where, why, path=path)
    category = category_of(key)
    if category is not None:
        expected, source, where, why = _lookup((category, scenario, mode), versions, cells)
        if expected is not None:
            seen = set()
            for cell in cells:
                if cell.key in where:
                    seen |= set(cell.signatures.get((category, scenario, mode), ()))
            return Expectation(expected, source, where, match="category", path=path, corpus=tuple(sorted(seen)))
    return Expectation(None, why=f"nothing measured for these versions and this path ({_leaves.describe(path)})"
                       if path is not None else "", path=path)


def verdict(expectation, outcome):
    """(Verdict, note): `outcome` judged against `expectation`. The note is information beside
    the verdict: for a category, how the outcome differs from what the corpus's modules did at
    the same stage; for a pattern whose line search evaluates another function (a steering
    field), that a wrong result is its known breakage even where the corpus's module of the same
    kind agreed with the reference (within what its precision lets the oracle resolve)."""
    found = classify(expectation.expected, outcome)
    if expectation.match == "category":
        return found, _category_note(expectation, outcome, found)
    if found is Verdict.WRONG_RESULT and expectation.path and _leaves.silent(expectation.path):
        return Verdict.REPRODUCED, ("a wrong result: this pattern's known breakage (its line search evaluates the "
                                    "loss with a steering field None), where the corpus's module agreed with the "
                                    "reference at its precision")
    return found, ""


def _category_note(expectation, outcome, found):
    """Beside a category's verdict: how the outcome differs from what the corpus's modules did."""
    if outcome.signature() in expectation.corpus or outcome.status in ("crash", "timeout"):
        return ""
    corpus = ", ".join(expectation.corpus) or "nothing"
    how = "computes a wrong result" if outcome.status == "wrong_result" else f"gives {outcome.signature()}"
    said = "broken" if found is Verdict.REPRODUCED else str(found)
    return (f"{said}: this path ({_leaves.describe(expectation.path)}) was never measured; it {how}, where the "
            f"corpus's modules at {category_of(expectation.path)[1]} give {corpus}")


def rule_table(directory=DATA_DIR):
    """[(scenario, stage, {kind: [corpus modules]})]: for each rule (a stage of a scenario), the
    deciding-leaf kinds the survey measured there and the corpus modules that measured each,
    read off the data (the docs' table, `docs/expectations.md`)."""
    found = {}
    for cell in load(directory):
        for o in cell.observations:
            key = key_for(o.scenario, cell.contents.get(o.module, {}))
            if key in (None, BUILTIN):
                continue
            for stage, kind in (key or (("clean", "-"),)):
                found.setdefault((o.scenario, stage), {}).setdefault(kind, set()).add(o.module)
    return [(scenario, stage, {k: sorted(v) for k, v in sorted(kinds.items())})
            for (scenario, stage), kinds in sorted(found.items())]


def render_rule_table(directory=DATA_DIR):
    """`rule_table` as Markdown: a row per rule and deciding-leaf kind, with the stage's reason."""
    from ._leaves import STAGES

    lines = ["| scenario | stage | deciding-leaf kind | corpus modules that measure it |", "| --- | --- | --- | --- |"]
    for scenario, stage, kinds in rule_table(directory):
        for kind, modules in kinds.items():
            lines.append(f"| `{scenario}` | {stage} | `{kind}` | {', '.join(modules)} |")
    reasons = ["", "| stage | what it does | breaks on every release |", "| --- | --- | --- |"]
    reasons += [f"| {s.name} | {s.why} | {'yes' if s.certain else 'no'} |" for s in STAGES.values()]
    return "\n".join(lines + reasons) + "\n"


if __name__ == "__main__":  # python -m repro._expectations: the docs' rule table, from the data
    print(render_rule_table(), end="")
