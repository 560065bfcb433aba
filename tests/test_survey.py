"""`repro survey`: cells planned from the index, measured into data files, expectations derived
from them, the heat map drawn from them. Host side only: a fake index and a fake measurement
stand in for the network and the environments; the stored data is checked as it is."""

import dataclasses
import json
import os
import re
import xml.etree.ElementTree as ET

import pytest

from repro import _expectations, _fanout, _heatmap, _observations, _survey
from repro._errors import UsageError
from repro._versions import DISTRIBUTION, __version__
from repro._catalogue import BUILTIN_PROBLEM, MODES, SCENARIOS
from repro._corpus import SURVEY
from repro._index import Release
from repro._leaves import stages_of
from repro._observations import DATA_DIR, ObservationFile, Observation, load
from repro._outcome import AGREES, BROKEN, CONVERGES, WRONG_RESULT, AnyOf, Outcome, Verdict, fails

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
        cell = ObservationFile(planned.key, planned.series, planned.python, list(planned.requirements),
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

    cell = ObservationFile("jax-0.6.2", "jax", "3.11", [])
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
    moved = [_survey.CellPlan(p.key, p.series, p.python, p.requirements, "2030-01-01T00:00:00Z") for p in planned]
    assert [p.key for p in _survey.pending(moved, str(tmp_path))] == [p.key for p in planned]
    assert _survey.pending(planned, str(tmp_path)) == []


# --------------------------------------------------------------------------- derivation

def obs(module, scenario, status, *fields, mode="jit", agrees=None):
    return Observation(module, scenario, mode, status, *fields, agrees=agrees)


def cell(key, versions, observations, contents):
    series = key.split("-", 1)[0]
    return ObservationFile(key, series, "3.11", [], installed=dict(versions), contents=contents,
                            observations=observations, plan="p")


PLAIN = {"leaves": ["float-array"], "top": "module"}
RAISES = {"loss_of_filtered": "raises", "leaves": ["float-array", "jitted"], "top": "module"}
MLP = {**RAISES, "problem": BUILTIN_PROBLEM}


def raising(error):
    """Contents of a module whose loss raises `error` ("Type:family@library") on a None field."""
    return {**RAISES, "loss_error": error}


def test_meet_keeps_what_every_module_shares_and_refuses_to_mix_working_and_failing():
    a = fails("TypeError", "none_not_callable", "linesearch", "equinox")
    b = fails("RuntimeError", "dropout_needs_key", "linesearch", "equinox")
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
                obs("callable_scalar", "value_fn_full_model", "error", "TypeError", "none_operand_traced", "linesearch",
                    "jax"),
                obs("dropout", "value_fn_full_model", "error", "RuntimeError", "dropout_needs_key", "linesearch",
                    "equinox"),
                obs("floats_only", "init_unfiltered", "converged", agrees=True)]

    contents = {"builtin": MLP, "callable_scalar": raising("TypeError:unsupported_operand@user"),
                "dropout": raising("RuntimeError:dropout_needs_key@equinox"), "floats_only": PLAIN}
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


def test_a_path_the_corpus_took_is_exact_and_one_it_never_took_falls_back_to_its_category(tmp_path):
    """A user's module whose loss raises what the corpus's `dropout` raised on a None field has
    dropout's path: its full signature. One that raises something no corpus module raised has a
    path never measured, but the stage is sure to break: the category (any failure), with the
    corpus's signatures there as information."""
    directory = survey_data(tmp_path)
    same = lookup(directory, "0.4.30", "value_fn_full_model", raising("RuntimeError:dropout_needs_key@equinox"))
    assert same.match == "exact" and same.expected == fails("RuntimeError", "dropout_needs_key", "linesearch",
                                                            "equinox")
    other = lookup(directory, "0.4.30", "value_fn_full_model", raising("KeyError:other@user"))
    assert other.match == "category" and other.expected == BROKEN and other.source == "measured"
    assert other.corpus == ("RuntimeError:dropout_needs_key@linesearch[equinox]",
                            "TypeError:none_operand_traced@linesearch[jax]")
    assert "as every module that breaks at value-fn" in other.describe_source()
    assert lookup(directory, "0.4.30", "init_unfiltered", PLAIN).expected == AGREES
    assert lookup(directory, "0.4.30", "seed_fix", PLAIN).expected is None  # no corpus module measured it


def test_a_category_verdict_shows_a_different_message_as_information_not_as_changed(tmp_path):
    directory = survey_data(tmp_path)
    expectation = lookup(directory, "0.4.30", "value_fn_full_model", raising("KeyError:other@user"))
    raised = Outcome("value_fn_full_model", "jit", "error", "KeyError", "'w'", "other", "linesearch", "jax")
    verdict, note = _expectations.verdict(expectation, raised)
    assert verdict is Verdict.REPRODUCED
    assert "never measured" in note and "KeyError:other@linesearch[jax]" in note and "dropout_needs_key" in note
    assert note.startswith("broken: ")
    wrong = Outcome("value_fn_full_model", "jit", "wrong_result", reference={"departed_at": 1})
    assert _expectations.verdict(expectation, wrong)[0] is Verdict.REPRODUCED  # the known breakage, silently
    works = Outcome("value_fn_full_model", "jit", "converged", reference={"departed_at": None, "compared": 9})
    assert _expectations.verdict(expectation, works)[0] is Verdict.FIXED_UPSTREAM  # always an alarm
    exact = lookup(directory, "0.4.30", "value_fn_full_model", raising("RuntimeError:dropout_needs_key@equinox"))
    assert _expectations.verdict(exact, raised) == (Verdict.CHANGED, "")  # the same path: held to its signature


def test_a_steering_field_s_wrong_result_is_its_known_breakage_where_the_corpus_agreed(tmp_path):
    """At bfloat16 the corpus's steering module agreed with the reference (the oracle cannot see
    the other function at that precision); a module of the same path that departs is the known
    breakage, with a note, not a WRONG-RESULT alarm. A workaround's wrong result stays an alarm."""
    steering = {"leaves": ["low-array", "py-bool"], "float_dtypes": ["bfloat16"], "top": "module",
                "loss_of_filtered": "differs"}
    data = cell("jax-0.4.30", {"jax": "0.4.30", "optax": "0.2.3", "equinox": "0.11.4"},
                [obs("steering_bf16", "value_fn_full_model", "not_converged", agrees=True),
                 obs("steering_bf16", "partition_fix", "not_converged", agrees=True)], {"steering_bf16": steering})
    with open(tmp_path / "jax-0.4.30.json", "w") as f:
        json.dump(data.to_dict(), f)
    _expectations.table.cache_clear()
    wrong = {"reference": {"departed_at": 3}}
    vffm = lookup(str(tmp_path), "0.4.30", "value_fn_full_model", steering)
    assert vffm.expected == AGREES
    verdict, note = _expectations.verdict(vffm, Outcome("value_fn_full_model", "jit", "wrong_result", **wrong))
    assert verdict is Verdict.REPRODUCED and "known breakage" in note
    fix = lookup(str(tmp_path), "0.4.30", "partition_fix", steering)
    assert _expectations.verdict(fix, Outcome("partition_fix", "jit", "wrong_result", **wrong))[0] is Verdict.WRONG_RESULT
    _expectations.table.cache_clear()


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
    (panel,) = _heatmap.panels(cells)
    assert panel.title == "JAX" and panel.releases == ["0.4.30", "0.4.33", "0.4.34", "0.4.35"]
    rows = {row.ident: labels for row, labels in zip(panel.rows, panel.grid)}
    # only jit was measured: where jit measured something the modes differ, a row each
    assert rows["no_params [jit]"] == ("custom_node_mismatch", "custom_node_mismatch", "expected_none", "expected_none")
    assert rows["no_params [eager]"] == ("missing",) * 4 and rows["seed_fix"] == ("missing",) * 4
    assert [row.ident for row in panel.rows if not row.corpus] == [
        "no_params [eager]", "no_params [jit]", *(s for s in SCENARIOS if s not in ("no_params", "partition_fix")),
        "partition_fix [eager]", "partition_fix [jit]"]
    (boundary,) = panel.boundaries
    assert boundary.index == 2 and boundary.moved == () and [r.ident for r in boundary.rows] == ["no_params [jit]"]
    assert svg.count('fill="#000"><title>custom_node_mismatch → expected_none') == 1  # one change, one heavy edge
    glyphs = _heatmap.render_glyphs(cells)
    assert "| no_params [jit] | 🟠🟠│🟡🟡 |" in glyphs and "| seed_fix | ⚪⚪│⚪⚪ |" in glyphs
    assert "- │ JAX 0.4.33 → 0.4.34: 1 row changed; no other tracked package moved" in glyphs


def _series_cell(key, installed, outcomes, modes=("jit",)):
    """A hand-made cell: `outcomes` maps (module, scenario) to (status, family) for every mode."""
    observations = [Observation(module, scenario, mode, status, "ValueError" if status == "error" else None, family,
                                "update" if status == "error" else None, "jax" if status == "error" else None,
                                agrees=True if status == "converged" else None)
                    for (module, scenario), (status, family) in outcomes.items() for mode in modes]
    return cell(key, installed, observations, {})


def test_a_boundary_names_the_other_packages_that_moved_with_the_release():
    """Optax 0.2.3 → 0.2.4 came with another JAX (the cells install the others as of the release
    day): the boundary says so in the SVG, its hover title, the HTML and the glyph table; Optax
    0.2.4 → 0.2.5 moved nothing else. In the JAX series jaxlib is the release's own package."""
    old, new = ("error", "custom_node_mismatch"), ("error", "expected_none")
    cells = [
        _series_cell("optax-0.2.3", {"jax": "0.4.33", "jaxlib": "0.4.33", "optax": "0.2.3", "equinox": "0.11.4"},
                     {("builtin", "no_params"): old}),
        _series_cell("optax-0.2.4", {"jax": "0.4.35", "jaxlib": "0.4.35", "optax": "0.2.4", "equinox": "0.11.4"},
                     {("builtin", "no_params"): new}),
        _series_cell("optax-0.2.5", {"jax": "0.4.35", "jaxlib": "0.4.35", "optax": "0.2.5", "equinox": "0.11.4"},
                     {("builtin", "no_params"): ("converged", None)}),
        _series_cell("optax-0.2.6", {"jax": "0.4.36", "jaxlib": "0.4.36", "optax": "0.2.6", "equinox": "0.11.4"},
                     {("builtin", "no_params"): ("converged", None)}),  # JAX moved, nothing changed: no boundary
        _series_cell("jax-0.4.33", {"jax": "0.4.33", "jaxlib": "0.4.33", "optax": "0.2.3", "equinox": "0.11.4"},
                     {("builtin", "no_params"): old}),
        _series_cell("jax-0.4.34", {"jax": "0.4.34", "jaxlib": "0.4.34", "optax": "0.2.3", "equinox": "0.11.4"},
                     {("builtin", "no_params"): new}),
    ]
    jax_panel, optax_panel = _heatmap.panels(cells)
    assert [(b.index, b.moved) for b in optax_panel.boundaries] == [
        (1, (("jax", "0.4.33", "0.4.35"), ("jaxlib", "0.4.33", "0.4.35"))), (2, ())]
    assert optax_panel.boundaries[0].note() == "jax 0.4.33 → 0.4.35, jaxlib 0.4.33 → 0.4.35 installed with it"
    assert [(b.index, b.moved) for b in jax_panel.boundaries] == [(1, ())]  # jaxlib moves with JAX: its own

    said = "Optax 0.2.3 → 0.2.4: 1 row changed; jax 0.4.33 → 0.4.35, jaxlib 0.4.33 → 0.4.35 installed with it: " \
           "not Optax 0.2.4 alone"
    svg = _heatmap.render_svg(cells)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    lines = [(line.get("stroke"), line.find(f"{ns}title").text) for line in root.iter(f"{ns}line")]
    assert (_heatmap.CONFOUNDED, said) in lines  # the dashed boundary line's hover title
    assert ("#000", "Optax 0.2.4 → 0.2.5: 1 row changed; no other tracked package moved") in lines
    assert ("#000", "JAX 0.4.33 → 0.4.34: 1 row changed; no other tracked package moved") in lines
    edges = [t.text for t in root.iter(f"{ns}title") if t.text.startswith("custom_node_mismatch → expected_none")]
    assert "custom_node_mismatch → expected_none; " + said in edges  # the heavy edge's title too
    assert "a: " + said in [t.text for t in root.iter(f"{ns}text")]  # the note below the panel
    assert said in _heatmap.render_html(cells)
    glyphs = _heatmap.render_glyphs(cells)
    assert "| no_params [jit] | 🟠┊🟡│🟢🟢 |" in glyphs and f"- ┊ {said}" in glyphs
    assert "| row | 0.2.3 ┊ 0.2.4 │ 0.2.5 0.2.6 |" in glyphs


def test_the_corpus_has_a_row_per_behaviour_shared_by_the_pairs_that_behaved_alike():
    """Corpus modules that did the same in every release share a row (named, with its members
    listed), one that changed somewhere gets its own, listed first; the built-in problem keeps a
    row per scenario. Every format shows them."""
    works, other = ("converged", None), ("error", "control_flow_dtypes")
    modules = [m for m in SURVEY if m != "builtin"][:3]  # the corpus's order, whatever its modules are
    def outcomes(first_fixed):
        return {("builtin", "no_params"): ("error", "custom_node_mismatch"), (modules[0], "no_params"): works,
                (modules[1], "no_params"): works, (modules[2], "no_params"): works if first_fixed else other}
    versions = {"jax": "0.4.30", "jaxlib": "0.4.30", "equinox": "0.11.4"}
    cells = [_series_cell("optax-0.2.4", {**versions, "optax": "0.2.4"}, outcomes(False), modes=MODES),
             _series_cell("optax-0.2.5", {**versions, "optax": "0.2.5"}, outcomes(True), modes=MODES)]
    (panel,) = _heatmap.panels(cells)
    corpus = [(row, labels) for row, labels in zip(panel.rows, panel.grid) if row.corpus]
    (changed, _), (alike, _), *rest = corpus
    assert changed.ident == "c1" and changed.members == ((modules[2], "no_params", MODES),)
    assert dict(corpus)[changed] == ("control_flow_dtypes", "works")
    assert alike.members == ((modules[0], "no_params", MODES), (modules[1], "no_params", MODES))
    assert alike.name == f"{modules[0]}, {modules[1]}: no_params"
    assert all(set(labels) == {"missing"} for _, labels in rest)  # the scenarios nobody measured, in one row
    assert [b.rows for b in panel.boundaries] == [(changed,)]
    assert not panel.boundaries[0].moved
    builtin = [row for row in panel.rows if not row.corpus]
    assert [row.ident for row in builtin] == list(SCENARIOS)  # both modes agree: one row per scenario

    glyphs = _heatmap.render_glyphs(cells)
    assert f"| c1 {modules[2]}: no_params | ⚫│🟢 |" in glyphs
    assert f"- c2: {modules[0]}: no_params; {modules[1]}: no_params" in glyphs
    svg = _heatmap.render_svg(cells)
    assert f">c1 {modules[2]}: no_params<title>{modules[2]}: no_params</title>" in svg
    assert f"<b>c2</b> {modules[0]}, {modules[1]}: no_params" in _heatmap.render_html(cells)


def test_the_survey_glyphs_are_round_and_never_mean_what_a_verdict_glyph_means(monkeypatch):
    """The matrix heat map draws verdicts as squares (Verdict.glyph, and its status glyphs); the
    survey map draws outcomes. A glyph both use means the same in both; every message family has
    its own glyph and colour, one the table does not list yet too; each map's legend says which
    is which."""
    from repro import _aggregate
    from repro._outcome import Verdict
    from repro._signatures import FAMILIES

    def styles(families):
        labels = dict.fromkeys([name for name, _, _ in _heatmap.STYLES] + [f for f, _ in families] + ["other"])
        return {label: _heatmap.style_of(label) for label in labels}

    listed = {name for name, _, _ in _heatmap.STYLES}
    spare = len(_heatmap.SPARE) - len([f for f, _ in FAMILIES if f not in listed])
    added = tuple((f"new_family_{i}", "never") for i in range(max(1, spare)))  # as a later FAMILIES may add
    monkeypatch.setattr(_heatmap, "FAMILIES", FAMILIES[:3] + added + FAMILIES[3:])
    grown = styles(_heatmap.FAMILIES)
    monkeypatch.undo()
    for table in (styles(FAMILIES), grown):
        glyphs, colours = [g for _, g in table.values()], [c for c, _ in table.values()]
        assert len(set(glyphs)) == len(glyphs) and len(set(colours)) == len(colours), table
        assert _heatmap.OTHER not in table.values()
    assert grown["new_family_0"] == _heatmap.SPARE[0]
    every = [style for _, *style in _heatmap.STYLES] + [list(s) for s in _heatmap.SPARE + (_heatmap.OTHER,)]
    glyphs = [glyph for _, glyph in every]
    assert len(set(glyphs)) == len(glyphs)
    matrix = {v.glyph: v.value for v in Verdict}
    matrix.update({glyph: status for status, glyph in _aggregate.STATUS_GLYPH.items()})
    matrix[_aggregate.NOT_RUN_GLYPH] = "not run"
    labels = [name for name, _, _ in _heatmap.STYLES]
    shared = {glyph: (label, matrix[glyph]) for label, _, glyph in _heatmap.STYLES if glyph in matrix}
    assert not [g for _, g in _heatmap.SPARE + (_heatmap.OTHER,) if g in matrix]
    assert shared == {"💥": ("crash", "CRASH"), "⌛": ("timeout", "TIMEOUT")}
    assert not [g for g in glyphs if g in "🟥🟧🟨🟩🟦🟪🟫⬛⬜"]  # no squares at all

    cells = load(DATA_DIR)
    assert _heatmap.GLYPH_NOTE in _heatmap.render_glyphs(cells)
    assert _heatmap.LEGEND_NOTE in _heatmap.render_svg(cells)
    assert "round glyphs" in _aggregate.VERDICTS_NOTE
    from repro._outcome import Outcome  # noqa: F401  (the label of every outcome status has a style)
    for status in ("crash", "timeout", "wrong_result", "converged"):
        assert _heatmap.label_of(Observation("m", "s", "jit", status, agrees=True)) in labels


def test_survey_heatmap_prints_the_glyph_map_and_heatmap_files_writes_the_three_forms(tmp_path, run_cli):
    data = survey_data(tmp_path / "data" if (tmp_path / "data").mkdir() is None else None)
    proc = run_cli("survey", "--heatmap", "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _heatmap.render_glyphs(load(data))
    out = tmp_path / "pictures"
    proc = run_cli("survey", "--heatmap-files", str(out), "--data", data)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    assert sorted(os.listdir(out)) == sorted(_heatmap.FILES)
    assert (out / "survey.svg").read_text() == _heatmap.render_svg(load(data))
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("survey", "--heatmap", "--data", str(empty))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    help_text = run_cli("survey", "--help").stdout + run_cli("matrix", "--help").stdout
    assert help_text.count("print the glyph heat map") == 2  # --heatmap means one thing in both commands


# --------------------------------------------------------------------------- the stored data

STORED = load(DATA_DIR)


def test_the_stored_observations_carry_their_provenance():
    assert STORED, "no survey data: run `repro survey`"
    for cell in STORED:
        assert cell.measured and cell.plan and cell.command.startswith("lbfgs-equinox-repro survey"), cell.key
        assert not [w for w in cell.command.split() if os.path.isabs(w.partition("=")[2] or w)], cell.command
        if cell.status == "ok":
            assert cell.python_version and {"jax", "jaxlib", "optax", "equinox", "numpy"} <= set(cell.installed)
            assert {o.module for o in cell.observations} == set(SURVEY), cell.key
            assert cell.xla_flags is not None, cell.key
            modes = {o.mode for o in cell.observations}
            # Every cell in both modes (a mode measured by a later run says so in `by_mode`).
            assert modes == set(MODES), cell.key
        else:
            assert cell.reason, cell.key


def test_the_stored_observations_are_one_run_of_one_tool_without_a_compilation_cache():
    """One clean measurement: every file written by one command of one tool (version and
    commit, from a clean checkout) in both modes at once, none with JAX's persistent
    compilation cache (it computed wrong results on some jaxlib releases), none with a field of
    an older schema, all on the current corpus."""
    assert {c.schema for c in STORED} == {_observations.SCHEMA}
    assert len({(c.tool, c.commit, c.command) for c in STORED}) == 1, {(c.tool, c.commit, c.command) for c in STORED}
    assert STORED[0].tool.startswith("lbfgs-equinox-repro ") and STORED[0].commit
    assert "+dirty" not in STORED[0].commit
    assert not any(c.by_mode for c in STORED), "a mode measured by a later run"
    assert all({o.mode for o in c.observations} == set(MODES) for c in STORED), "a file without both modes"
    assert not any(c.compilation_cache for c in STORED)
    assert {_survey.corpus_of(c.plan) for c in STORED} == {_survey.corpus_digest()}, "measured on another corpus"
    documented = {f.name for f in dataclasses.fields(ObservationFile)}
    for path in sorted(os.listdir(DATA_DIR)):
        with open(os.path.join(DATA_DIR, path), encoding="utf-8") as f:
            raw = json.load(f)
        omitted = {"problem"} if raw.get("problem") is None else set()  # only `survey --problem` files have one
        omitted |= {"by_mode"} if not raw.get("by_mode") else set()  # only files two runs wrote have one
        assert set(raw) == documented - omitted, (path, set(raw) ^ (documented - omitted))


def test_every_rule_is_measured_by_a_corpus_module():
    """A rule is a stage of a scenario (repro/_leaves.py): every stage a scenario can reach is
    met by some corpus module in every measured cell, or its modules would be UNKNOWN there."""
    measured = {(scenario, stage) for scenario, stage, _ in _expectations.rule_table()}
    for scenario in SCENARIOS:
        missing = set(stages_of(scenario)) - {stage for s, stage in measured if s == scenario}
        assert not missing, (scenario, missing)


def test_every_path_with_a_stage_sure_to_break_broke_in_every_cell():
    """The hypothesis behind a category (repro/_leaves.py: Stage.certain): every module whose path
    reaches a certain stage failed, or computed a wrong result, in every cell and mode.
    """
    for cell in _expectations.table():
        for (key, scenario, mode), expected in cell.expected.items():
            if key[:1] == (_expectations.CATEGORY,):
                assert expected is BROKEN, (cell.key, key, scenario, mode, cell.signatures[(key, scenario, mode)])


def test_the_docs_list_every_rule_with_the_kinds_and_modules_that_measure_it():
    """docs/expectations.md's rule table is the one the data gives (regenerate it with
    `python -m repro._expectations` when the data changes)."""
    text = open(os.path.join(ROOT, "docs", "expectations.md"), encoding="utf-8").read()
    assert _expectations.render_rule_table() in text


def test_a_mode_measured_later_is_added_to_the_cell(tmp_path):
    """`--mode jit` first, `--mode eager` later: the cell ends up with both, measured once each."""
    planned = _survey.plan(FakeIndex(), series=("optax",))[:1]
    asked = []

    def measure(p, *, modes, **_):
        asked.append(tuple(modes))
        cell = ObservationFile(p.key, p.series, p.python, list(p.requirements), plan=p.plan_key(),
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


def test_force_measures_the_asked_mode_again_and_keeps_the_others(tmp_path):
    planned = _survey.plan(FakeIndex(), series=("optax",))[:1]
    runs = []

    def measure(p, *, modes, **_):
        runs.append(tuple(modes))
        cell = ObservationFile(p.key, p.series, p.python, list(p.requirements), plan=p.plan_key(),
                                installed={"jax": "0.4.30"}, tool="lbfgs-equinox-repro 0.1.0", commit=f"c{len(runs)}")
        cell.observations = [Observation("builtin", "no_params", m, "error", seconds=len(runs)) for m in modes]
        return cell

    quiet = {"directory": str(tmp_path), "measure": measure, "log": lambda m: None}
    _survey.survey(planned, modes=("jit",), **quiet)
    _survey.survey(planned, modes=("eager",), **quiet)
    _survey.survey(planned, modes=("jit",), force=True, **quiet)
    (stored,) = load(str(tmp_path))
    assert runs == [("jit",), ("eager",), ("jit",)]
    assert {o.mode: o.seconds for o in stored.observations} == {"jit": 3, "eager": 2}
    assert stored.commit == "c3"  # the file says which run wrote it last, and which run measured each mode
    assert {m: r["commit"] for m, r in stored.by_mode.items()} == {"jit": "c3", "eager": "c2"}
    assert "by_mode" not in ObservationFile("k", "optax", "3.11", []).to_dict()  # one run: nothing to say


WORKFLOW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".github", "workflows", "survey.yml")


def _workflow():
    from ruamel.yaml import YAML

    with open(WORKFLOW) as f:
        return YAML(typ="safe").load(f)


def test_the_survey_workflow_is_valid_and_fans_the_cells_out_then_merges_and_draws():
    """Valid against the workflow schema (check-jsonschema's vendored copy, no network); a plan job,
    a job per shard, a merge job that checks against the plan and draws; the weekly run is `--new`;
    every action pinned by commit SHA with a version comment."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           WORKFLOW], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = _workflow()
    assert doc["permissions"] == {"contents": "read"} and "schedule" in doc["on"]
    assert doc["on"]["workflow_dispatch"]["inputs"]["args"]["default"] == "--new"
    with open(WORKFLOW) as f:
        uses = re.findall(r"uses: (\S+)(.*)", f.read())
    assert len(uses) == 14 and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action)
                                   and re.fullmatch(r"  # v\d+(\.\d+)*", note) for action, note in uses), uses
    jobs = doc["jobs"]
    assert "survey --dry-run --json --shards" in "".join(s.get("run", "") for s in jobs["plan"]["steps"])
    assert jobs["plan"]["outputs"]["shards"] == "${{ steps.plan.outputs.shards }}"
    shard = jobs["shard"]
    assert shard["needs"] == "plan" and shard["strategy"]["fail-fast"] is False
    assert shard["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    assert shard["if"] == "${{ needs.plan.outputs.shards != '[]' }}"  # an empty matrix is an error on GitHub
    assert '--data "$RUNNER_TEMP/shard-data"' in "".join(s.get("run", "") for s in shard["steps"])
    (upload,) = [s for s in shard["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert upload["if"] == "${{ always() }}" and upload["with"]["name"] == "survey-${{ matrix.shard.name }}"
    merge = jobs["merge"]
    assert merge["needs"] == ["plan", "shard"] and "always()" in merge["if"]
    download, plan = [s for s in merge["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact")]
    assert download["with"]["pattern"] == "survey-shard-*" and "merge-multiple" not in download["with"]
    assert plan["with"]["name"] == "survey-plan" == jobs["plan"]["steps"][-1]["with"]["name"]
    runs = "".join(s.get("run", "") for s in merge["steps"])
    assert "survey --merge" in runs and "--heatmap-files docs" in runs and "GITHUB_STEP_SUMMARY" in runs
    assert "survey --heatmap --data" in runs  # the glyph map, into the job summary
    (upload,) = [s for s in merge["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert "repro/_data/observations/" in upload["with"]["path"] and upload["if"] == "${{ always() }}"


def _run_step(tmp_path, job, name, env, uv_stdout=""):
    """A workflow step's `run` script as Actions runs it (bash -e, no profile) with a stand-in `uv`
    that records its arguments (one JSON list a line) and prints `uv_stdout`."""
    import subprocess

    step = next(s for s in _workflow()["jobs"][job]["steps"] if s.get("name") == name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "uv").write_text("#!/usr/bin/env python3\nimport json, os, sys\n"
                                "open(os.environ['UV_CALLS'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                                f"sys.stdout.write({uv_stdout!r})\n")
    (bin_dir / "uv").chmod(0o755)
    calls, output, summary = tmp_path / "uv-calls", tmp_path / "output", tmp_path / "summary"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path),
           "UV_CALLS": str(calls), "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), **env}
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-c", step["run"]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return proc, recorded


UV_PREFIX = ["run", "--no-project", "--with", "packaging>=22", "python", "-m", "repro", "survey"]


def test_the_plan_step_passes_the_args_literally_and_outputs_the_shards(tmp_path):
    plan = {"pending": ["jax-0.4.30", "optax-0.2.3"], "cells": [],
            "shards": [{"name": "shard-1", "cells": ["jax-0.4.30"], "expected_seconds": 80.0,
                        "args": ["--only", "jax-0.4.30"]},
                       {"name": "shard-2", "cells": ["optax-0.2.3"], "expected_seconds": 70.0,
                        "args": ["--only", "optax-0.2.3"]}]}
    (tmp_path / "a-file").write_text("")  # something for `*` to glob, were it globbed
    proc, calls = _run_step(tmp_path, "plan", "plan", {"ARGS": "--series optax --only '$(touch pwned)' *",
                                                      "SHARDS": "2"}, json.dumps(plan))
    assert proc.returncode == 0, proc.stderr
    assert calls == [UV_PREFIX + ["--dry-run", "--json", "--shards", "2", "--series", "optax", "--only",
                                  "$(touch pwned)", "*"]]
    assert not (tmp_path / "pwned").exists()
    (line,) = (tmp_path / "output").read_text().splitlines()
    assert line.startswith("shards=") and json.loads(line[len("shards="):]) == [
        {"name": "shard-1", "args": ["--only", "jax-0.4.30"]}, {"name": "shard-2", "args": ["--only", "optax-0.2.3"]}]
    assert "2 cells pending, in 2 shards" in (tmp_path / "summary").read_text()


def test_the_shard_step_runs_exactly_the_planned_arguments_into_its_folder(tmp_path):
    args = ["--only", "jax-0.4.30", "--only", "a b", "--mode", "jit", "--timeout", "300"]
    proc, calls = _run_step(tmp_path, "shard", "survey", {"SHARD_ARGS": json.dumps(args)})
    assert proc.returncode == 0, proc.stderr
    assert calls == [UV_PREFIX + args + ["--data", f"{tmp_path}/shard-data"]] and (tmp_path / "shard-data").is_dir()


def test_the_merge_step_merges_every_shard_folder_and_names_the_missing(tmp_path):
    shards = json.dumps([{"name": "shard-1", "args": []}, {"name": "shard-2", "args": []}])
    proc, calls = _run_step(tmp_path, "merge", "merge", {"SHARDS": "[]"})
    assert proc.returncode == 0 and calls == [], proc.stderr  # nothing pending: nothing to merge
    assert "nothing measured" in (tmp_path / "survey-changes.txt").read_text()
    (tmp_path / "shards" / "survey-shard-1").mkdir(parents=True)
    proc, calls = _run_step(tmp_path, "merge", "merge", {"SHARDS": shards}, "1 cells merged\n")
    assert proc.returncode == 0, proc.stderr
    assert calls == [UV_PREFIX + ["--merge", f"{tmp_path}/shards/survey-shard-1/", "--plan-file",
                                  f"{tmp_path}/plan/plan.json", "--data", "repro/_data/observations"]]
    assert "::warning::shard-2 uploaded nothing" in proc.stdout
    assert (tmp_path / "survey-changes.txt").read_text() == "1 cells merged\n"


def test_the_committed_heat_map_is_drawn_from_the_committed_data(tmp_path):
    """docs/survey.* (embedded in the README) agree with repro/_data/observations: redraw them
    with `lbfgs-equinox-repro survey --heatmap-files docs` whenever the data change."""
    written = _heatmap.write_heatmap(STORED, str(tmp_path))
    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
    for path in written:
        with open(path) as fresh, open(os.path.join(docs, os.path.basename(path))) as committed:
            assert fresh.read() == committed.read(), f"docs/{os.path.basename(path)} is stale"


# --------------------------------------------------------------------------- fanned out: shards and merge

def _measure_by_key(planned, *, modes, **_):
    """A deterministic measurement whose outcome and seconds depend on the cell."""
    number = sum(map(ord, planned.key))
    cell = ObservationFile(planned.key, planned.series, planned.python, list(planned.requirements),
                            planned.exclude_newer, plan=planned.plan_key(),
                            installed={"jax": "0.4.30", DISTRIBUTION: __version__},
                            seconds={"build": 1.0, **{mode: float(number % 50) for mode in modes}})
    family = ("custom_node_mismatch", "expected_none")[number % 2]
    cell.observations = [Observation("builtin", "no_params", mode, "error", "ValueError", family, "update", "jax")
                         for mode in modes]
    return cell


def _folder(path):
    return {name: (path / name).read_text() for name in sorted(os.listdir(path))}


def test_shards_cover_every_cell_once_and_balance_the_expected_seconds():
    planned = _survey.plan(FakeIndex())
    seconds = {p.key: float(10 + 7 * i % 23) for i, p in enumerate(planned)}
    shards = _fanout.shards(planned, 3, seconds)
    keys = [key for shard in shards for key in shard.cells]
    assert sorted(keys) == sorted(p.key for p in planned) and len(keys) == len(set(keys))
    order = [p.key for p in planned]
    assert all(list(shard.cells) == sorted(shard.cells, key=order.index) for shard in shards)  # plan order
    totals = [sum(seconds[k] for k in shard.cells) for shard in shards]
    assert [shard.seconds for shard in shards] == [round(t, 1) for t in totals]
    assert max(totals) - min(totals) <= max(seconds.values())  # longest first, least loaded: within one cell
    assert [s.name for s in shards] == ["shard-1", "shard-2", "shard-3"]
    # One long cell and many short ones: the long one alone, the others spread evenly over the rest.
    skewed = {p.key: 10.0 for p in planned}
    skewed[planned[-1].key] = 1000.0
    (alone, *rest) = sorted(_fanout.shards(planned, 3, skewed), key=lambda shard: -shard.seconds)
    assert alone.cells == (planned[-1].key,)
    assert abs(rest[0].seconds - rest[1].seconds) <= 10.0
    assert len(_fanout.shards(planned[:2], 5, seconds)) == 2  # never an empty shard
    assert shards[0].args() == [arg for key in shards[0].cells for arg in ("--only", key)]
    assert shards[0].args(("jit",), 300.0)[-4:] == ["--mode", "jit", "--timeout", "300"]


def test_expected_seconds_come_from_the_last_measurement_else_the_median(tmp_path):
    planned = _survey.plan(FakeIndex(), series=("jax",))  # jax-0.4.30, jax-0.4.31, jax-0.11.0
    first, twin, new = planned
    for key, seconds, same in ((first.key, {"build": 2.0, "jit": 30.0, "eager": 50.0}, {}),
                               (twin.key, {"build": 1.0}, {"jit": first.key, "eager": first.key})):
        data = ObservationFile(key, "jax", "3.11", [], seconds=seconds, same_env_as=same, plan="p")
        (tmp_path / f"{key}.json").write_text(json.dumps(data.to_dict()))
    got = _fanout.expected_seconds(planned, str(tmp_path))
    assert got == {first.key: 82.0, twin.key: 81.0, new.key: 81.5}  # a twin took its twin's; the new one, the median
    assert _fanout.expected_seconds(planned, str(tmp_path), ("jit",))[first.key] == 32.0


def test_plan_then_one_run_per_shard_then_merge_gives_the_folder_one_run_gives(tmp_path):
    planned = _survey.plan(FakeIndex())
    quiet = {"measure": _measure_by_key, "log": lambda m: None}
    _survey.survey(planned, directory=str(tmp_path / "one"), **quiet)
    shards = _fanout.shards(planned, 3, _fanout.expected_seconds(planned, str(tmp_path / "none")))
    folders = []
    for shard in shards:
        folder = tmp_path / shard.name
        _survey.survey([p for p in planned if p.key in shard.cells], directory=str(folder), **quiet)
        folders.append(str(folder))
    (tmp_path / "merged").mkdir()
    merged = _fanout.merge(folders, str(tmp_path / "merged"))
    assert merged == sorted(p.key for p in planned)
    assert _folder(tmp_path / "merged") == _folder(tmp_path / "one")


def test_merge_keeps_the_modes_a_shard_did_not_measure(tmp_path):
    planned = _survey.plan(FakeIndex(), series=("optax",))[:1]
    quiet = {"measure": _measure_by_key, "log": lambda m: None}
    _survey.survey(planned, directory=str(tmp_path / "data"), modes=("jit",), **quiet)
    _survey.survey(planned, directory=str(tmp_path / "shard"), modes=("eager",), **quiet)
    _fanout.merge([str(tmp_path / "shard")], str(tmp_path / "data"))
    _survey.survey(planned, directory=str(tmp_path / "one"), modes=("jit",), **quiet)
    _survey.survey(planned, directory=str(tmp_path / "one"), modes=("jit", "eager"), **quiet)
    assert _folder(tmp_path / "data") == _folder(tmp_path / "one")


def _shard_folder(path, key, **changes):
    planned = next(p for p in _survey.plan(FakeIndex()) if p.key == key)
    cell = _measure_by_key(planned, modes=MODES)
    data = {**cell.to_dict(), **changes}
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{key}.json").write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("change, message", [
    ({"schema": 99}, "was measured with observation schema 99; this tool has"),
    ({"installed": {DISTRIBUTION: "9.9"}}, f"was measured with tool version {DISTRIBUTION} 9.9; this tool has "
                                           f"{DISTRIBUTION} {__version__}"),
    ({"plan": json.dumps(["3.11", [], None, "0123456789ab"])}, "was measured with corpus and scenarios 0123456789ab"),
])
def test_merge_refuses_shards_that_disagree_on_how_they_were_measured(tmp_path, change, message):
    good = _shard_folder(tmp_path / "a", "jax-0.4.30")
    other = _shard_folder(tmp_path / "b", "jax-0.4.31", **change)
    (tmp_path / "out").mkdir()
    with pytest.raises(UsageError, match=re.escape(message)):
        _fanout.merge([good, other], str(tmp_path / "out"))
    assert os.listdir(tmp_path / "out") == []  # nothing written


def test_shards_must_agree_among_themselves_on_what_this_tool_cannot_check():
    """Two shards built from different commits (a field the schema may record) are refused; a
    cell that cannot say (it did not install) agrees with anything."""
    planned = [p for p in _survey.plan(FakeIndex()) if p.key in ("jax-0.4.30", "jax-0.4.31", "jax-0.11.0")]
    cells = [_measure_by_key(p, modes=MODES) for p in planned]
    for cell, commit in zip(cells, ("abc", None, "abd")):
        cell.commit = commit
    cells[1].installed = {}  # unresolvable: no tool version either
    _fanout.check_agreement([("a", cells[0]), ("b", cells[1])], _fanout.own_provenance())
    with pytest.raises(UsageError, match=re.escape("the shards disagree on the commit: abc (jax-0.4.30 in a) and abd "
                                                   "(jax-0.11.0 in c)")):
        _fanout.check_agreement([("a", cells[0]), ("b", cells[1]), ("c", cells[2])], _fanout.own_provenance())
    assert _fanout.tool_of(cells[0]) == f"{DISTRIBUTION} {__version__}" and _fanout.tool_of(cells[1]) is None


def test_merge_refuses_a_cell_twice_a_folder_without_cells_and_a_file_that_is_not_a_cell(tmp_path):
    a, b = _shard_folder(tmp_path / "a", "jax-0.4.30"), _shard_folder(tmp_path / "b", "jax-0.4.30")
    (tmp_path / "out").mkdir()
    with pytest.raises(UsageError, match="jax-0.4.30 is in both"):
        _fanout.merge([a, b], str(tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no cell files"):
        _fanout.merge([a, str(tmp_path / "empty")], str(tmp_path / "out"))
    (tmp_path / "b" / "jax-0.4.30.json").write_text("{not json")
    with pytest.raises(UsageError, match="is not a survey cell file"):
        _fanout.merge([str(tmp_path / "b")], str(tmp_path / "out"))


def test_the_survey_command_plans_shards_and_merges_them(tmp_path, run_cli):
    """Through the CLI, on the recorded index: the shards' arguments select exactly their cells;
    a merge prints what it merged; one that disagrees is one line on stderr and exit 2."""
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("survey", "--dry-run", "--json", "--shards", "2", "--series", "optax", "--data", str(empty))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["pending"] == [c["key"] for c in plan["cells"]] and len(plan["shards"]) == 2
    for shard in plan["shards"]:
        again = run_cli("survey", *shard["args"], "--dry-run", "--json", "--data", str(empty))
        assert json.loads(again.stdout)["pending"] == shard["cells"], again.stderr
    proc = run_cli("survey", "--dry-run", "--shards", "2", "--series", "optax", "--data", str(empty))
    assert proc.returncode == 0 and "shard-2: about" in proc.stdout

    out = tmp_path / "out"
    out.mkdir()
    a = _shard_folder(tmp_path / "a", "jax-0.4.30")
    proc = run_cli("survey", "--merge", a, "--data", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1 cells merged into") and os.listdir(out) == ["jax-0.4.30.json"]
    b = _shard_folder(tmp_path / "b", "jax-0.4.31", schema=99)
    proc = run_cli("survey", "--merge", a, b, "--data", str(out))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "observation schema 99" in proc.stderr
    for bad in (["--shards", "2"], ["--merge", a, "--only", "jax-0.4.30"], ["--dry-run", "--shards", "0"],
                ["--plan-file", a]):
        proc = run_cli("survey", *bad, "--data", str(out))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (bad, proc.stderr)
    proc = run_cli("survey", "--merge", a)
    assert proc.returncode == 2 and "--merge needs --data" in proc.stderr

    # Against the plan the shards were cut from: a cell measured as planned is merged, the pending
    # cells no shard brought are named; a cell measured with other inputs, or an edited plan, is refused.
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    first = plan["cells"][0]
    shard = tmp_path / "shard-1"
    shard.mkdir()
    measured = ObservationFile(first["key"], first["series"], first["python"], first["requirements"],
                                first["exclude_newer"], plan=first["plan"], installed={DISTRIBUTION: __version__})
    (shard / f"{first['key']}.json").write_text(json.dumps(measured.to_dict()))
    (tmp_path / "out2").mkdir()
    proc = run_cli("survey", "--merge", str(shard), "--plan-file", str(plan_file), "--data", str(tmp_path / "out2"),
                   "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["merged"] == [first["key"]]
    assert json.loads(proc.stdout)["missing"] == plan["pending"][1:]
    assert proc.stderr.strip() == f"not in any shard's folder, so not merged: {', '.join(plan['pending'][1:])}"
    (shard / f"{first['key']}.json").write_text(json.dumps({**measured.to_dict(), "plan": first["plan"] + " "}))
    proc = run_cli("survey", "--merge", str(shard), "--plan-file", str(plan_file), "--data", str(tmp_path / "out2"))
    assert proc.returncode == 2 and "measured with inputs other than planned" in proc.stderr
    edited = {**plan, "cells": [{**first, "plan": first["plan"] + " "}] + plan["cells"][1:]}
    plan_file.write_text(json.dumps(edited))  # the measured cell's inputs, but not the digest
    proc = run_cli("survey", "--merge", str(shard), "--plan-file", str(plan_file), "--data", str(tmp_path / "out2"))
    assert proc.returncode == 2 and "its digest does not match its cells" in proc.stderr
