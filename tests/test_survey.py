"""`repro survey`: cells planned from the index, measured into data files, expectations derived
from them, the heat map drawn from them. Host side only: a fake index and a fake measurement
stand in for the network and the environments; the stored data is checked as it is."""

import json
import os
import xml.etree.ElementTree as ET

import pytest

from repro import _expectations, _heatmap, _survey
from repro._catalogue import MODES, SCENARIOS
from repro._corpus import SURVEY
from repro._index import Release
from repro._observations import DATA_DIR, CellObservations, Observation, load
from repro._outcome import AGREES, CONVERGES, WRONG_RESULT, AnyOf, fails

# Host-side checks: the same in every cell, so they run in the first ci cell only (tests/conftest.py).
pytestmark = pytest.mark.host


class FakeIndex:
    """Three packages' releases as the index would list them (oldest first)."""

    RELEASES = {
        "jax": [("0.4.30", "2024-06-18"), ("0.4.31", "2024-07-30"), ("0.11.0", "2026-07-16")],
        "jaxlib": [("0.4.30", "2024-06-18"), ("0.4.31", "2024-07-30"), ("0.11.0", "2026-07-16")],
        "optax": [("0.2.2", "2024-03-27"), ("0.2.3", "2024-07-09"), ("0.2.4", "2024-11-12")],
        "equinox": [("0.11.3", "2023-12-01"), ("0.11.4", "2024-04-14"), ("0.11.5", "2024-08-18")],
    }

    def releases(self, name, **_):
        return [Release(v, f"{day}T10:00:00Z", False) for v, day in self.RELEASES[name]]

    def fetch_json(self, name):
        python = {"0.11.0": ">=3.12"}
        return {"releases": {v: [{"requires_python": python.get(v, ">=3.9")}] for v, _ in self.RELEASES[name]}}

    def jaxlib_for(self, version):
        return version


def test_plan_picks_every_release_from_the_floors_each_on_a_python_it_supports():
    cells = _survey.plan(FakeIndex())
    keys = [c.key for c in cells]
    assert len(keys) == len(set(keys))
    assert keys[0].startswith("matrix-")  # measured first: a cut-short survey still covers the matrix
    by_key = {c.key: c for c in cells}
    assert {"jax-0.4.30", "jax-0.4.31", "jax-0.11.0", "optax-0.2.3", "optax-0.2.4", "equinox-0.11.4",
            "equinox-0.11.5"} <= set(keys)
    assert "optax-0.2.2" not in keys and "equinox-0.11.3" not in keys  # below the floors (no lbfgs)
    assert by_key["jax-0.4.30"].python == "3.11" and by_key["jax-0.11.0"].python == "3.12"
    assert by_key["jax-0.4.30"].requirements == ("jax==0.4.30", "jaxlib==0.4.30", "optax>=0.2.3", "equinox>=0.11.4")
    assert by_key["jax-0.4.30"].exclude_newer is None  # the newest Optax/Equinox that resolve
    assert by_key["jax-0.4.30"].fallback_exclude_newer == "2024-07-30T00:00:00Z"  # until the next JAX
    # Optax/Equinox cells: the others as of the release day, never before the floors existed.
    assert by_key["optax-0.2.4"].exclude_newer == "2024-11-13T00:00:00Z"
    assert by_key["equinox-0.11.4"].exclude_newer == "2024-07-10T00:00:00Z"  # optax 0.2.3's day + 1
    matrix = [c for c in cells if c.series == "matrix"]
    assert all("==" in r for c in matrix for r in c.requirements)


def fake_measure(outcomes):
    """A measurement that records what it was asked and returns canned observations."""
    asked = []

    def measure(planned, *, modes, **_):
        asked.append(planned.key)
        if planned.key in outcomes.get("interrupt", ()):
            raise KeyboardInterrupt
        cell = CellObservations(planned.key, planned.series, planned.python, list(planned.requirements),
                                planned.exclude_newer, plan=planned.plan_key(), installed={"jax": "0.4.30"})
        cell.observations = [Observation("builtin", "no_params", mode, "error", "ValueError", "custom_node_mismatch",
                                         "update", "jax") for mode in modes]
        return cell

    return measure, asked


def test_survey_writes_each_cell_as_measured_and_resumes_after_an_interruption(tmp_path):
    planned = _survey.plan(FakeIndex(), series=("jax",))
    measure, asked = fake_measure({"interrupt": {"jax-0.4.31"}})
    with pytest.raises(KeyboardInterrupt):
        _survey.survey(planned, directory=str(tmp_path), measure=measure, log=lambda m: None)
    assert sorted(os.listdir(tmp_path)) == ["jax-0.4.30.json"]  # written before the interruption, whole
    measure, asked = fake_measure({})
    run = _survey.survey(planned, directory=str(tmp_path), measure=measure, log=lambda m: None)
    assert asked == ["jax-0.4.31", "jax-0.11.0"] and run.skipped == ["jax-0.4.30"]
    again = _survey.survey(planned, directory=str(tmp_path), measure=measure, log=lambda m: None)
    assert again.measured == [] and len(again.skipped) == 3
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]


def test_cells_side_by_side_are_each_written_and_a_failing_cell_stops_the_taking_of_more(tmp_path):
    import threading
    import time

    planned = _survey.plan(FakeIndex(), series=("jax",))
    measure, asked = fake_measure({})
    running, most = set(), []

    def slow(cell, **kw):
        running.add(cell.key)
        most.append(len(running))
        time.sleep(0.3)
        running.discard(cell.key)
        return measure(cell, **kw)

    run = _survey.survey(planned, directory=str(tmp_path), measure=slow, log=lambda m: None, cells_at_once=2)
    assert sorted(asked) == sorted(p.key for p in planned) and run.measured == [p.key for p in planned]
    assert sorted(os.listdir(tmp_path)) == sorted(f"{p.key}.json" for p in planned)
    assert max(most) == 2  # two at once, never more

    started, asked[:] = threading.Event(), []

    def failing(cell, **kw):
        if cell.key == planned[1].key:
            started.wait(5)  # both cells are running
            raise RuntimeError("a bug")
        started.set()
        time.sleep(0.3)
        return measure(cell, **kw)

    with pytest.raises(RuntimeError, match="a bug"):
        _survey.survey(planned, directory=str(tmp_path / "b"), measure=failing, log=lambda m: None,
                       cells_at_once=2)
    assert asked == [planned[0].key]  # the one already running finished and was written; no more were taken
    assert os.listdir(tmp_path / "b") == [f"{planned[0].key}.json"]


def test_a_cell_whose_env_is_identical_to_one_measured_in_this_run_takes_its_observations(tmp_path, monkeypatch):
    """Two cells that install exactly the same distributions on the same Python run the same
    programs: the second is not measured again, and its file says whose observations it holds."""
    from repro._outcome import Outcome

    planned = _survey.plan(FakeIndex(), series=("jax",))  # jax-0.4.30, jax-0.4.31, jax-0.11.0
    envs = {"jax-0.4.30": {"jax": "0.4.30"}, "jax-0.4.31": {"jax": "0.4.30"}, "jax-0.11.0": {"jax": "0.11.0"}}
    runs = []

    def record_installed(cell, python):
        cell.python_version, cell.installed, cell.status = "3.11.7", dict(envs[cell.key]), "ok"

    class Closable:
        xla_flags = "--xla_backend_optimization_level=0"

        def close(self):
            pass

    def run_corpus(cell, pool, modes, problem=None):
        runs.append(cell.key)
        cell.xla_flags = "--xla_backend_optimization_level=0"
        for mode in modes:
            cell.observations.append(Observation.of("builtin", Outcome("no_params", mode, "converged", iterations=7)))

    monkeypatch.setattr(_survey._envs, "find_interpreter", lambda version: "/usr/bin/python3")
    monkeypatch.setattr(_survey, "_build", lambda cell, planned, interpreter, path, exclude_newer, log: "python")
    monkeypatch.setattr(_survey, "_record_installed", record_installed)
    monkeypatch.setattr(_survey, "_start_workers", lambda python, timeout, workers, worker_count, xla_flags: (Closable(), ""))
    monkeypatch.setattr(_survey, "_run_corpus", run_corpus)
    _survey.survey(planned, directory=str(tmp_path), modes=("jit",), log=lambda m: None)
    assert runs == ["jax-0.4.30", "jax-0.11.0"]  # jax-0.4.31 resolved to jax-0.4.30's env
    cells = {c.key: c for c in load(str(tmp_path))}
    assert cells["jax-0.4.31"].same_env_as == {"jit": "jax-0.4.30"} and cells["jax-0.11.0"].same_env_as == {}
    assert [o.to_dict() for o in cells["jax-0.4.31"].observations] == [o.to_dict() for o in cells["jax-0.4.30"].observations]
    assert cells["jax-0.4.31"].xla_flags == "--xla_backend_optimization_level=0"

    # A twin from an earlier run is not used: only what this run measured.
    runs.clear()
    _survey.survey(planned[1:2], directory=str(tmp_path), modes=("jit",), force=True, log=lambda m: None)
    again = {c.key: c for c in load(str(tmp_path))}["jax-0.4.31"]
    assert runs == ["jax-0.4.31"] and again.same_env_as == {}


def test_the_cores_are_shared_out_between_the_cells_measured_at_once(monkeypatch):
    monkeypatch.setenv("REPRO_WORKERS", "2")
    assert [_survey.workers_per_cell(n) for n in (1, 2, 3)] == [2, 1, 1]
    monkeypatch.setenv("REPRO_WORKERS", "4")
    assert _survey.workers_per_cell(2) == 2


def test_a_cell_records_the_xla_flags_its_workers_compiled_with():
    from repro._outcome import Outcome

    class Pool:
        xla_flags = "--xla_backend_optimization_level=0 --xla_cpu_parallel_codegen_split_count=1"

        def start(self):
            return self

        def run(self, jobs):
            return [Outcome(scenario, mode, "converged", iterations=3) for _, scenario, mode, _ in jobs]

    cell = CellObservations("jax-0.6.2", "jax", "3.11", [])
    _survey._run_corpus(cell, Pool().start(), ("jit",))
    assert cell.xla_flags == Pool.xla_flags
    assert len(cell.observations) == len(SURVEY) * len(SCENARIOS)


def test_an_env_whose_workers_cannot_import_is_recorded_and_the_fallback_date_measured(tmp_path, monkeypatch):
    """Starting the workers is the cell's import check: when they do not start, the env is asked
    why, that is recorded as an import-failed attempt, and the fallback date is tried; a worker
    that does not start in an env that imports is a bug, not a finding."""
    from repro._outcome import Outcome

    planned = _survey.plan(FakeIndex(), series=("jax",))[0]  # jax-0.4.30, with a fallback date
    built, ran, closed = [], [], []

    class Pool:
        xla_flags = ""

        def __init__(self, count=None, *, python=None, **kwargs):
            self.python = python

        def start(self):
            if self.python.endswith("broken"):
                raise RuntimeError("a scenario worker did not start: ...")
            return self

        def run(self, jobs):
            ran.append(self.python)
            return [Outcome(scenario, mode, "converged", iterations=3) for _, scenario, mode, _ in jobs]

        def close(self):
            closed.append(self.python)

    def build_env(path, interpreter, requirements, extras, exclude_newer):
        built.append(exclude_newer)
        python = "env-broken" if exclude_newer is None else "env-good"
        return _survey._envs.EnvResult(True, path, python, 0.1, False)

    def record_installed(cell, python):
        cell.python_version, cell.installed, cell.status, cell.reason = "3.11.7", {"jax": "0.4.30"}, "ok", ""

    monkeypatch.setattr(_survey._envs, "find_interpreter", lambda version: "/usr/bin/python3")
    monkeypatch.setattr(_survey._envs, "build_env", build_env)
    monkeypatch.setattr(_survey._envs, "import_error", lambda python: "ModuleNotFoundError: No module named 'jax'"
                        if python.endswith("broken") else "")
    monkeypatch.setattr(_survey, "_record_installed", record_installed)
    monkeypatch.setattr(_survey, "Workers", Pool)
    cell = _survey.measure_cell(planned, modes=("jit",), env_root=str(tmp_path), log=lambda m: None)
    assert built == [None, planned.fallback_exclude_newer] and ran == ["env-good"]
    assert closed == ["env-broken", "env-good"]  # both pools closed, the one that failed to start too
    assert cell.status == "ok" and cell.exclude_newer == planned.fallback_exclude_newer
    assert cell.attempts == [{"exclude_newer": None, "status": "import-failed",
                              "reason": "ModuleNotFoundError: No module named 'jax'"}]
    assert len(cell.observations) == len(SURVEY) * len(SCENARIOS)

    # Both dates broken: the cell is import-failed, with no installed versions claimed.
    monkeypatch.setattr(_survey._envs, "import_error", lambda python: "ModuleNotFoundError: No module named 'jax'")
    monkeypatch.setattr(_survey.Workers, "start", lambda self: (_ for _ in ()).throw(RuntimeError("no")))
    cell = _survey.measure_cell(planned, modes=("jit",), env_root=str(tmp_path), log=lambda m: None)
    assert (cell.status, cell.installed, len(cell.attempts)) == ("import-failed", {}, 2)

    # An env that imports but whose workers do not start: raised, not recorded as a finding.
    monkeypatch.setattr(_survey._envs, "import_error", lambda python: "")
    with pytest.raises(RuntimeError):
        _survey.measure_cell(planned, modes=("jit",), env_root=str(tmp_path), log=lambda m: None)


def test_a_cell_starts_its_workers_with_the_flags_a_cell_with_the_same_jaxlib_started_with(tmp_path, monkeypatch):
    """XLA's flags are built into jaxlib: the flags the first cell's workers ended up with are
    given to the next cell with that jaxlib (on that Python), and no other cell gets them."""
    from repro._outcome import Outcome

    planned = _survey.plan(FakeIndex(), series=("jax",))  # jax-0.4.30, jax-0.4.31, jax-0.11.0
    jaxlib = {"jax-0.4.30": "0.4.30", "jax-0.4.31": "0.4.30", "jax-0.11.0": "0.11.0"}
    given = {}

    class Pool:
        def __init__(self, count=None, *, python=None, xla_flags=None, **kwargs):
            self.key = python
            given[python] = xla_flags
            self.xla_flags = xla_flags if xla_flags is not None else f"found by {python}"

        def start(self):
            return self

        def run(self, jobs):
            return [Outcome(scenario, mode, "converged", iterations=3) for _, scenario, mode, _ in jobs]

        def close(self):
            pass

    def record_installed(cell, python):
        cell.python_version, cell.status, cell.reason = "3.11.7", "ok", ""
        cell.installed = {"jax": cell.key[4:], "jaxlib": jaxlib[cell.key]}  # distinct envs: no twins

    monkeypatch.setattr(_survey._envs, "find_interpreter", lambda version: "/usr/bin/python3")
    monkeypatch.setattr(_survey, "_build", lambda cell, planned, interpreter, path, exclude_newer, log: cell.key)
    monkeypatch.setattr(_survey, "_record_installed", record_installed)
    monkeypatch.setattr(_survey, "Workers", Pool)
    _survey.survey(planned, directory=str(tmp_path), modes=("jit",), log=lambda m: None)
    assert given == {"jax-0.4.30": None, "jax-0.4.31": "found by jax-0.4.30", "jax-0.11.0": None}
    cells = {c.key: c for c in load(str(tmp_path))}
    assert cells["jax-0.4.31"].xla_flags == "found by jax-0.4.30" and cells["jax-0.4.31"].same_env_as == {}


def test_a_changed_plan_is_measured_again(tmp_path):
    planned = _survey.plan(FakeIndex(), series=("optax",))
    measure, asked = fake_measure({})
    _survey.survey(planned, directory=str(tmp_path), measure=measure, log=lambda m: None)
    moved = [_survey.PlannedCell(p.key, p.series, p.python, p.requirements, "2030-01-01T00:00:00Z") for p in planned]
    assert [p.key for p in _survey.pending(moved, str(tmp_path))] == [p.key for p in planned]
    assert _survey.pending(planned, str(tmp_path)) == []


# --------------------------------------------------------------------------- derivation

def obs(module, scenario, status, *fields, mode="jit", agrees=None):
    return Observation(module, scenario, mode, status, *fields, agrees=agrees)


def cell(key, versions, observations, contents):
    series = key.split("-", 1)[0]
    return CellObservations(key, series, "3.11", [], installed=dict(versions), contents=contents,
                            observations=observations, plan="p")


PLAIN = {"non_array_leaves": False, "int_arrays": False, "bool_arrays": False, "first_array": "float"}
RAISES = {"non_array_leaves": True, "int_arrays": False, "bool_arrays": False, "first_array": "float",
          "loss_of_filtered": "raises"}
MLP = {**RAISES, "problem": "mlp"}


def test_meet_keeps_what_every_module_shares_and_refuses_to_mix_working_and_failing():
    a = fails("TypeError", "none_not_callable", "linesearch", "equinox")
    b = fails("RuntimeError", "other", "linesearch", "equinox")
    assert _expectations.meet([a, a]) == a
    assert _expectations.meet([a, b]) == fails(None, None, "linesearch", "equinox")
    assert _expectations.meet([a, WRONG_RESULT]) == AnyOf((a, WRONG_RESULT))
    assert _expectations.meet([AGREES, AGREES]) == AGREES
    assert _expectations.meet([AGREES, a]) is None  # the rule is too coarse: a conflict, not a guess
    assert _expectations.meet([AGREES, WRONG_RESULT]) is None


def survey_data(tmp_path):
    """Four JAX cells: no_params's message changes between 0.4.33 and 0.4.34."""
    def observations(family):
        return [obs("builtin", "no_params", "error", "ValueError", family, "update", "jax"),
                obs("builtin", "partition_fix", "converged", agrees=True),
                obs("callable_scalar", "value_fn_full_model", "error", "TypeError", "unsupported_operand", "linesearch",
                    "jax"),
                obs("dropout", "value_fn_full_model", "error", "RuntimeError", "other", "linesearch", "equinox"),
                obs("floats_only", "init_unfiltered", "converged", agrees=True)]

    contents = {"builtin": MLP, "callable_scalar": RAISES, "dropout": RAISES, "floats_only": PLAIN}
    for jax, family in (("0.4.30", "custom_node_mismatch"), ("0.4.33", "custom_node_mismatch"),
                        ("0.4.34", "expected_none"), ("0.4.35", "expected_none")):
        data = cell(f"jax-{jax}", {"jax": jax, "optax": "0.2.3", "equinox": "0.11.4"}, observations(family), contents)
        with open(tmp_path / f"jax-{jax}.json", "w") as f:
            json.dump(data.to_dict(), f)
    _expectations.table.cache_clear()
    return str(tmp_path)


def lookup(directory, jax, scenario="no_params", contents=MLP, mode="jit"):
    return _expectations.expectation_for(scenario, mode, {"jax": jax, "optax": "0.2.3", "equinox": "0.11.4"},
                                         contents, directory)


def test_expectations_come_from_the_observations_measured_or_inferred_and_say_which(tmp_path):
    directory = survey_data(tmp_path)
    measured = lookup(directory, "0.4.34")
    assert measured.expected == fails("ValueError", "expected_none", "update", "jax")
    assert measured.source == "measured" and measured.cells == ("jax-0.4.34",)
    inferred = lookup(directory, "0.4.31")  # between two cells that agree
    assert inferred.expected == fails("ValueError", "custom_node_mismatch", "update", "jax")
    assert inferred.source == "inferred" and inferred.cells == ("jax-0.4.30", "jax-0.4.33")
    assert "inferred: no change between jax-0.4.30 and jax-0.4.33" in inferred.describe_source()
    assert lookup(directory, "0.4.335").expected is None  # across a change: nothing is inferred
    assert lookup(directory, "0.4.36").expected is None  # beyond what was measured
    assert lookup(directory, "0.4.30", "partition_fix").expected == CONVERGES  # the built-in must converge


def test_two_cells_that_differ_in_one_package_and_agree_let_it_be_inferred_between_them(tmp_path):
    """A line: matrix cells with the same Optax and Equinox and JAX 0.4.30 and 0.4.33 agree, so
    0.4.31 with that Optax and Equinox is inferred; with another Optax it is not."""
    family = [obs("builtin", "no_params", "error", "ValueError", "custom_node_mismatch", "update", "jax")]
    for key, jax in (("matrix-floor-py311", "0.4.30"), ("matrix-edge-jax0433-py311", "0.4.33")):
        data = cell(key, {"jax": jax, "optax": "0.2.3", "equinox": "0.11.4"}, family, {"builtin": MLP})
        with open(tmp_path / f"{key}.json", "w") as f:
            json.dump(data.to_dict(), f)
    _expectations.table.cache_clear()
    found = lookup(str(tmp_path), "0.4.31")
    assert found.source == "inferred" and found.cells == ("matrix-edge-jax0433-py311", "matrix-floor-py311")
    assert found.expected == fails("ValueError", "custom_node_mismatch", "update", "jax")
    other = _expectations.expectation_for("no_params", "jit", {"jax": "0.4.31", "optax": "0.2.4", "equinox": "0.11.4"},
                                          MLP, str(tmp_path))
    assert other.expected is None and other.source == "unknown"
    _expectations.table.cache_clear()


def test_a_generic_rule_keeps_only_what_its_modules_share(tmp_path):
    directory = survey_data(tmp_path)
    user = {**RAISES}  # a user's module whose loss raises on a None field: not the built-in problem
    found = lookup(directory, "0.4.30", "value_fn_full_model", user).expected
    assert found == fails(None, None, "linesearch", None)  # TypeError in jax, RuntimeError in equinox
    assert lookup(directory, "0.4.30", "init_unfiltered", PLAIN).expected == AGREES
    assert lookup(directory, "0.4.30", "seed_fix", PLAIN).expected is None  # no corpus module measured it


def test_changes_against_the_previous_release_are_what_a_maintainer_reads(tmp_path):
    directory = survey_data(tmp_path)
    previous, changed = _survey.changes_against_previous("jax-0.4.34", directory)
    assert previous == "jax-0.4.33"
    assert changed == [("builtin", "no_params", "jit", "ValueError:custom_node_mismatch@update[jax]",
                        "ValueError:expected_none@update[jax]")]
    text = _survey.render_changes("jax-0.4.34", previous, changed)
    assert "1 changed against jax-0.4.33" in text and "custom_node_mismatch" in text
    assert "nothing changed" in _survey.render_changes("jax-0.4.35", *_survey.changes_against_previous("jax-0.4.35", directory))


def test_heat_map_marks_where_an_outcome_changed(tmp_path):
    cells = load(survey_data(tmp_path))
    svg = _heatmap.render_svg(cells)
    ET.fromstring(svg)  # well-formed
    (title, releases, rows), = _heatmap.panels(cells)
    assert releases == ["0.4.30", "0.4.33", "0.4.34", "0.4.35"]
    assert rows[("no_params", "jit")] == ["custom_node_mismatch", "custom_node_mismatch", "expected_none",
                                          "expected_none"]
    assert rows[("seed_fix", "jit")] == ["missing"] * 4
    assert svg.count('fill="#000"') == 1  # one change, one heavy edge
    glyphs = _heatmap.render_glyphs(cells)
    assert "| no_params | jit | 🟧🟧🟨🟨 |" in glyphs
    assert len([line for line in glyphs.splitlines() if line.startswith("| ") and line[2:5] not in ("sce", "---")]) == \
        len(SCENARIOS) * len(MODES)


# --------------------------------------------------------------------------- the stored data

STORED = load(DATA_DIR)


def test_the_stored_observations_carry_their_provenance():
    assert STORED, "no survey data: run `repro survey`"
    for cell in STORED:
        assert cell.measured and cell.command.startswith(("repro survey", "lbfgs-equinox-repro survey")) and cell.plan, cell.key
        if cell.status == "ok":
            assert cell.python_version and {"jax", "jaxlib", "optax", "equinox", "numpy"} <= set(cell.installed)
            assert {o.module for o in cell.observations} == set(SURVEY), cell.key
        else:
            assert cell.reason, cell.key


def test_every_rule_is_covered_by_a_corpus_module():
    """A rule no corpus module falls under would be UNKNOWN everywhere: the corpus must cover it."""
    covered = {(_expectations.rule_for(o.scenario, c.contents[o.module]), o.scenario)
               for c in STORED if c.status == "ok" for o in c.observations}
    for rule in _expectations.RULES:
        assert any((rule.name, scenario) in covered for scenario in rule.scenarios), rule.name


def test_a_mode_measured_later_is_added_to_the_cell(tmp_path):
    """`--mode jit` first, `--mode eager` later: the cell ends up with both, measured once each."""
    planned = _survey.plan(FakeIndex(), series=("optax",))[:1]
    asked = []

    def measure(p, *, modes, **_):
        asked.append(tuple(modes))
        cell = CellObservations(p.key, p.series, p.python, list(p.requirements), plan=p.plan_key(),
                                installed={"jax": "0.4.30"}, seconds={m: 1.0 for m in modes})
        cell.observations = [Observation("builtin", "no_params", m, "error", "ValueError", "x", "update", "jax")
                             for m in modes]
        return cell

    quiet = {"directory": str(tmp_path), "measure": measure, "log": lambda m: None}
    _survey.survey(planned, modes=("jit",), **quiet)
    _survey.survey(planned, modes=("jit", "eager"), **quiet)
    _survey.survey(planned, modes=("jit", "eager"), **quiet)
    assert asked == [("jit",), ("eager",)]
    (stored,) = load(str(tmp_path))
    assert {o.mode for o in stored.observations} == {"jit", "eager"} and set(stored.seconds) == {"jit", "eager"}


def test_a_cell_names_the_modes_measured_with_the_compilation_cache_and_force_keeps_other_modes(tmp_path):
    planned = _survey.plan(FakeIndex(), series=("optax",))[:1]
    cached = {"value": True}

    def measure(p, *, modes, **_):
        cell = CellObservations(p.key, p.series, p.python, list(p.requirements), plan=p.plan_key(),
                                installed={"jax": "0.4.30"}, cached_modes=list(modes) if cached["value"] else [])
        cell.observations = [Observation("builtin", "no_params", m, "error") for m in modes]
        return cell

    quiet = {"directory": str(tmp_path), "measure": measure, "log": lambda m: None}
    _survey.survey(planned, modes=("jit",), **quiet)  # an old run, with the cache
    cached["value"] = False
    _survey.survey(planned, modes=("eager",), **quiet)
    assert load(str(tmp_path))[0].cached_modes == ["jit"]  # its jit records still came from the cache
    _survey.survey(planned, modes=("jit",), force=True, **quiet)
    (stored,) = load(str(tmp_path))
    assert stored.cached_modes == [] and {o.mode for o in stored.observations} == {"jit", "eager"}


def test_the_survey_workflow_is_valid_and_uploads_data_diff_and_heat_map():
    import subprocess
    import sys

    from ruamel.yaml import YAML

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".github", "workflows",
                        "survey.yml")
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           path], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = YAML(typ="safe").load(open(path))
    assert doc["permissions"] == {"contents": "read"} and "schedule" in doc["on"]
    steps = doc["jobs"]["survey"]["steps"]
    runs = "".join(s.get("run", "") for s in steps)
    assert "repro survey" in runs and "--heatmap" in runs and "GITHUB_STEP_SUMMARY" in runs
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert "repro/_data/observations/" in upload["with"]["path"] and upload["if"] == "${{ always() }}"


def test_the_committed_heat_map_is_drawn_from_the_committed_data(tmp_path):
    """docs/survey.* (embedded in the README) agree with repro/_data/observations: redraw them
    with `lbfgs-equinox-repro survey --heatmap` whenever the data change."""
    written = _heatmap.write_heatmap(DATA_DIR, str(tmp_path))
    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
    for path in written:
        with open(path) as fresh, open(os.path.join(docs, os.path.basename(path))) as committed:
            assert fresh.read() == committed.read(), f"docs/{os.path.basename(path)} is stale"
