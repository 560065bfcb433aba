"""`repro bisect` / `repro diff`: the search against a fake probe, bad input, one real bisect."""

import json
import os

import pytest

from repro._bisect import Probe, env_bound, search, sweep

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host


VERSIONS = [f"1.{i}" for i in range(10)]


class FakeProbe:
    """Signature 'old' before `change_at`, 'new' from it on; `skips` cannot be installed."""

    def __init__(self, change_at, skips=(), signatures=None):
        self.change_at, self.skips, self.signatures = change_at, set(skips), signatures
        self.calls = []

    def __call__(self, version):
        self.calls.append(version)
        if version in self.skips:
            return Probe(version, skipped=True, reason="cannot install: fake")
        if self.signatures:
            return Probe(version, signature=self.signatures[version])
        index = VERSIONS.index(version)
        return Probe(version, signature="old" if index < self.change_at else "new")


@pytest.mark.parametrize("change_at", range(1, len(VERSIONS)))
def test_finds_every_possible_first_change_within_the_env_bound(change_at):
    probe = FakeProbe(change_at)
    result = search(VERSIONS, probe)
    assert result.status == "found"
    assert result.first_changed == VERSIONS[change_at]
    assert result.last_unchanged == VERSIONS[change_at - 1]
    assert len(probe.calls) == len(set(probe.calls)) == result.environments
    assert result.environments <= env_bound(len(VERSIONS))
    assert result.exit_code() == 0


def test_first_and_last_candidate_changed():
    assert search(VERSIONS, FakeProbe(1)).first_changed == "1.1"  # right after the good end
    result = search(VERSIONS, FakeProbe(9))  # only the bad end
    assert (result.last_unchanged, result.first_changed) == ("1.8", "1.9")


def test_all_same_is_no_change_after_probing_only_the_ends():
    probe = FakeProbe(change_at=100)
    result = search(VERSIONS, probe)
    assert result.status == "no_change" and result.exit_code() == 1
    assert probe.calls == ["1.0", "1.9"]


def test_a_skip_is_stepped_around():
    probe = FakeProbe(change_at=6, skips={"1.4"})  # 1.4 is the first middle: its neighbour is probed
    result = search(VERSIONS, probe)
    assert result.status == "found" and result.exit_code() == 0
    assert (result.last_unchanged, result.first_changed) == ("1.5", "1.6")
    assert [p.version for p in result.probes if p.skipped] == ["1.4"]
    assert result.environments <= env_bound(len(VERSIONS)) + 1  # + one per skip


def test_skips_next_to_the_change_make_it_ambiguous_and_name_the_remaining_versions():
    probe = FakeProbe(change_at=5, skips={"1.3", "1.4"})
    result = search(VERSIONS, probe)
    assert result.status == "ambiguous" and result.exit_code() == 3
    assert result.last_unchanged == "1.2"
    assert result.remaining == ["1.3", "1.4", "1.5"]


def test_a_skipped_end_cannot_be_bisected():
    for skips in ({"1.0"}, {"1.9"}):
        result = search(VERSIONS, FakeProbe(5, skips=skips))
        assert result.status == "endpoint_skipped" and result.exit_code() == 4


def test_signatures_not_pass_fail_are_compared():
    # Every version fails, but with three different signatures: the first change is found.
    sigs = {v: ("ValueError:custom_node_mismatch" if i < 3 else "ValueError:expected_none" if i < 7
                else "ValueError:pytree_structure_error") for i, v in enumerate(VERSIONS)}
    result = search(VERSIONS, FakeProbe(0, signatures=sigs))
    assert result.status == "found"
    assert (result.last_unchanged, result.first_changed) in {("1.2", "1.3"), ("1.6", "1.7")}


def test_sweep_lists_every_change_and_passes_over_skips():
    sigs = {v: ("a" if i < 3 else "b" if i < 7 else "c") for i, v in enumerate(VERSIONS)}
    result = sweep(VERSIONS, FakeProbe(0, skips={"1.3"}, signatures=sigs))
    assert result.changes == [("1.2", "1.4"), ("1.6", "1.7")]
    assert result.environments == len(VERSIONS)


def test_env_bound():
    assert [env_bound(n) for n in (1, 2, 3, 5, 12, 16)] == [1, 3, 4, 5, 6, 6]  # ceil(log2 n) + 2


def test_sweep_exit_codes():
    assert sweep(VERSIONS, FakeProbe(5)).exit_code() == 0  # a change
    assert sweep(VERSIONS, FakeProbe(100)).exit_code() == 1  # none
    assert sweep(VERSIONS, FakeProbe(5, skips={"1.9"})).exit_code() == 4


@pytest.mark.parametrize("args, words", [
    (("bisect", "--package", "no-such-package-repro-xyz", "--good", "1", "--bad", "2", "--scenario", "no_params"),
     "unknown package"),
    (("bisect", "--package", "jax", "--good", "0.4.30", "--bad", "0.4.399", "--scenario", "no_params"),
     "not a release on the package index"),
    (("bisect", "--package", "jax", "--good", "0.4.30", "--bad", "0.4.30", "--scenario", "no_params"),
     "same version"),
    (("bisect", "--package", "jax", "--good", "0.4.35", "--bad", "0.4.30", "--scenario", "no_params"),
     "newer than"),
    (("bisect", "--package", "jax", "--good", "0.4.30", "--bad", "0.4.35", "--scenario", "nope"),
     "unknown scenario"),
    (("bisect", "--by-date", "2024-06-01..2025-13-01", "--scenario", "no_params"), "not a date"),
    (("bisect", "--by-date", "2025-06-01..2024-06-01", "--scenario", "no_params"), "start is after end"),
    (("bisect", "--by-date", "2024-06-01", "--scenario", "no_params"), "expected START..END"),
    (("bisect", "--package", "jax", "--good", "0.4.30", "--bad", "0.4.35", "--scenario", "no_params",
      "--pin", "optax=0.2.3"), "expected NAME==VERSION"),
    (("diff", "--a", "jax==0.4.30", "--b", "jax==0.4.30"), "same version set"),
    (("diff", "--a", "jax==0.4.30", "--b", "jax==9.9.9"), "not a release"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, words):
    proc = run_cli(*args, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_real_bisect_names_the_jax_release_that_changed_the_no_params_message(run_cli):
    # Measured: jax 0.4.33 says "Custom node type mismatch", 0.4.34 "Expected None, got MLP(".
    proc = run_cli("bisect", "--package", "jax", "--good", "0.4.33", "--bad", "0.4.35", "--scenario", "no_params",
                   "--mode", "jit", "--pin", "optax==0.2.4", "--pin", "equinox==0.11.10", "--json", "--quiet",
                   timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["candidates"] == ["0.4.33", "0.4.34", "0.4.35"]
    assert (data["last_unchanged"], data["first_changed"]) == ("0.4.33", "0.4.34")
    by_version = {p["version"]: p for p in data["probes"]}
    assert by_version["0.4.33"]["signature"] == "ValueError:custom_node_mismatch@update[jax]"
    assert by_version["0.4.34"]["signature"] == "ValueError:expected_none@update[jax]"
    assert by_version["0.4.34"]["installed"]["jaxlib"] == "0.4.34"  # jaxlib moved with jax
    assert data["environments"] <= 4


@pytest.mark.parametrize("args", [
    ("bisect", "--package", "jax", "--good", "0.4.30", "--bad", "0.4.35", "--scenario", "no_params"),
    ("diff", "--a", "jax==0.4.30", "--b", "jax==0.4.31"),
])
def test_an_unreachable_package_index_is_exit_5_not_bad_input(run_cli, args):
    """A network outage is not the user's mistake: its own exit code, one line, no traceback."""
    proc = run_cli(*args, timeout=120, env={**os.environ, "REPRO_INDEX_URL": "http://127.0.0.1:9/pypi"})
    assert proc.returncode == 5, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read the package index" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def _no_params_family(pins):
    from repro._expectations import expectation_for
    from repro._report import BUILTIN_CONTENTS

    expected = expectation_for("no_params", "jit", pins, BUILTIN_CONTENTS).expected
    return expected.family if expected else None


def _cells_by_jax():
    from packaging.version import Version

    from repro._matrix import cells_tagged

    return sorted(cells_tagged("default"), key=lambda c: Version(c.pins["jax"]))


def test_bisected_boundaries_are_where_the_expectations_change():
    """Each `boundary` cell of the matrix sits on one side of a no_params change the bisects found:
    the expected no_params family differs between it and its neighbour across the change."""
    from repro._matrix import cells_tagged

    cells = _cells_by_jax()
    family = {c.id: _no_params_family(c.pins) for c in cells}
    assert None not in family.values()
    changes = {(a.id, b.id) for a, b in zip(cells, cells[1:]) if family[a.id] != family[b.id]}
    boundary = {c.id for c in cells_tagged("boundary")}
    assert boundary and all(any(c in pair for pair in changes) for c in boundary)
    assert changes and all(set(pair) & boundary for pair in changes)  # a boundary cell next to every change


@pytest.mark.parametrize("jax", ["0.4.31", "0.4.33", "0.4.34", "0.8.0", "0.10.1", "0.10.2"])  # G1, G2, S1, S2
def test_releases_the_bisects_probed_have_their_measured_neighbours_family(jax):
    from packaging.version import Version

    cells = _cells_by_jax()
    below = [c for c in cells if Version(c.pins["jax"]) <= Version(jax)][-1]
    above = [c for c in cells if Version(c.pins["jax"]) >= Version(jax)][0]
    assert _no_params_family(below.pins) == _no_params_family(above.pins)  # no change between them
    assert _no_params_family({**below.pins, "jax": jax, "jaxlib": jax}) == _no_params_family(below.pins)


def test_a_yanked_release_nobody_probed_is_never_measured_only_inferred_between_cells_that_agree():
    """jax 0.4.32 was yanked and never surveyed: between two cells with its Optax and Equinox
    that agree it is inferred (and says from which cells), never "measured"; with an Optax
    no cell measured it is UNKNOWN."""
    from repro._expectations import expectation_for
    from repro._report import BUILTIN_CONTENTS

    pins = {"jax": "0.4.32", "jaxlib": "0.4.32", "optax": "0.2.3", "equinox": "0.11.4"}
    found = expectation_for("no_params", "jit", pins, BUILTIN_CONTENTS)
    assert found.source == "inferred" and "matrix-floor-py311" in found.cells, found
    assert found.expected.family == _no_params_family({**pins, "jax": "0.4.30", "jaxlib": "0.4.30"})
    assert _no_params_family({**pins, "optax": "0.2.2"}) is None


# --- the package index: recorded fixtures by default, the live index on request ------------------


def _recorded(name):
    with open(os.path.join(os.path.dirname(__file__), "fixtures", "index", f"{name}.json")) as f:
        return json.load(f)


def test_the_tests_read_the_recorded_index(fake_index):
    """Offline by default: repro._index (and every CLI child, through REPRO_INDEX_URL) reads the
    fixtures from a server on 127.0.0.1; a package not recorded is unknown, as on the index."""
    from repro import _errors, _index

    assert fake_index.startswith("http://127.0.0.1:") and _index.INDEX_URL == fake_index
    assert os.environ["REPRO_INDEX_URL"] == fake_index
    assert _index.fetch_json("jax") == _recorded("jax")
    assert _index.versions_between("jax", "0.4.33", "0.4.35") == ["0.4.33", "0.4.34", "0.4.35"]
    assert _index.jaxlib_for("0.4.37") == "0.4.36"  # jax 0.4.37 shipped without a jaxlib
    with pytest.raises(_errors.UsageError, match="unknown package"):
        _index.fetch_json("no-such-package-repro-xyz")


@pytest.mark.live
def test_the_recorded_index_still_matches_the_live_index(monkeypatch):
    """`pytest -m live`: every recorded release is on the live index, uploaded at the same time
    and yanked alike (later releases may have come since: record.py records them)."""
    import importlib.util

    from repro import _index

    spec = importlib.util.spec_from_file_location("record", os.path.join(os.path.dirname(__file__), "fixtures",
                                                                         "index", "record.py"))
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    monkeypatch.setattr(_index, "INDEX_URL", "https://pypi.org/pypi")
    monkeypatch.setattr(_index, "_CACHE", {})
    for name in record.PACKAGES:
        live, recorded = record.trim(_index.fetch_json(name))["releases"], _recorded(name)["releases"]
        missing = {v: files for v, files in recorded.items() if live.get(v) != files}
        assert not missing, (name, missing)


def test_bisect_and_diff_report_a_line_per_probe(monkeypatch):
    """The library's progress: `probe N of ≤ bound` per probed version (a skip raises the bound),
    `side N of 2` per diff side; a stand-in probe stands in for building the envs."""
    import io

    from repro import _bisect, _diff
    from repro._options import bisect_options, diff_options
    from repro._progress import Progress

    from repro._outcome import Outcome

    class StandIn:
        def __init__(self, requirements, pairs, **kw):
            self.pairs = pairs

        def __call__(self, version):
            if version == "0.4.33":
                return Probe(version, skipped=True, reason="cannot install: fake")
            return Probe(version, signature="old" if version < "0.4.34" else "new", build_seconds=2.0,
                         run_seconds=1.5, outcomes=[Outcome(s, m, "crash", versions={}) for s, m in self.pairs])

    monkeypatch.setattr(_bisect, "EnvProbe", StandIn)
    monkeypatch.setattr(_diff, "EnvProbe", StandIn)
    out = io.StringIO()
    run = _bisect.bisect(bisect_options(["--package", "jax", "--good", "0.4.30", "--bad", "0.4.35",
                                         "--scenario", "no_params"]), progress=Progress(unit="probe", stream=out))
    lines = out.getvalue().splitlines()
    candidates = run.candidates
    assert lines[0] == f"{len(candidates)} candidates: {' '.join(candidates)}"
    bound = env_bound(len(candidates))
    probes = lines[1:]
    assert len(probes) == run.result.environments
    assert probes[0] == f"probe 1 of ≤ {bound}: jax 0.4.30: old  (env 2.0 s, run 1.5 s)"
    skip = next(i for i, line in enumerate(probes) if "SKIP" in line)
    assert f"of ≤ {bound + 1}: jax 0.4.33: SKIP cannot install: fake" in probes[skip]
    assert all(f"of ≤ {bound + 1}:" in line for line in probes[skip + 1:])
    assert run.result.status == "ambiguous" and run.result.remaining == ["0.4.33", "0.4.34"]

    out = io.StringIO()
    _diff.diff(diff_options(["--a", "jax==0.4.30", "--b", "jax==0.4.35", "--scenario", "no_params"]),
                 progress=Progress(unit="side", stream=out))
    assert [line.split(":")[0] for line in out.getvalue().splitlines()] == ["side 1 of 2", "side 2 of 2"]
    assert out.getvalue().splitlines()[0] == "side 1 of 2: a jax==0.4.30 jaxlib==0.4.30: 2 pairs run 3.5 s"
