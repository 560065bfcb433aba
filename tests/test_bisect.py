"""`repro bisect` / `repro diff`: the search against a fake oracle, bad input, one real bisect."""

import json
import math

import pytest

from repro._bisect import Probe, env_bound, search, sweep

VERSIONS = [f"1.{i}" for i in range(10)]


class FakeOracle:
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
    oracle = FakeOracle(change_at)
    result = search(VERSIONS, oracle)
    assert result.status == "found"
    assert result.first_changed == VERSIONS[change_at]
    assert result.last_unchanged == VERSIONS[change_at - 1]
    assert len(oracle.calls) == len(set(oracle.calls)) == result.environments
    assert result.environments <= math.ceil(math.log2(len(VERSIONS))) + 2
    assert result.exit_code() == 0


def test_first_and_last_candidate_changed():
    assert search(VERSIONS, FakeOracle(1)).first_changed == "1.1"  # right after the good end
    result = search(VERSIONS, FakeOracle(9))  # only the bad end
    assert (result.last_unchanged, result.first_changed) == ("1.8", "1.9")


def test_all_same_is_no_change_after_probing_only_the_ends():
    oracle = FakeOracle(change_at=100)
    result = search(VERSIONS, oracle)
    assert result.status == "no_change" and result.exit_code() == 1
    assert oracle.calls == ["1.0", "1.9"]


def test_a_skip_is_stepped_around():
    oracle = FakeOracle(change_at=6, skips={"1.4"})  # 1.4 is the first middle: its neighbour is probed
    result = search(VERSIONS, oracle)
    assert result.status == "found" and result.exit_code() == 0
    assert (result.last_unchanged, result.first_changed) == ("1.5", "1.6")
    assert [p.version for p in result.probes if p.skipped] == ["1.4"]
    assert result.environments <= math.ceil(math.log2(len(VERSIONS))) + 2 + 1  # + one per skip


def test_skips_next_to_the_change_make_it_ambiguous_and_name_the_remaining_versions():
    oracle = FakeOracle(change_at=5, skips={"1.3", "1.4"})
    result = search(VERSIONS, oracle)
    assert result.status == "ambiguous" and result.exit_code() == 3
    assert result.last_unchanged == "1.2"
    assert result.remaining == ["1.3", "1.4", "1.5"]


def test_a_skipped_end_cannot_be_bisected():
    for skips in ({"1.0"}, {"1.9"}):
        result = search(VERSIONS, FakeOracle(5, skips=skips))
        assert result.status == "endpoint_skipped" and result.exit_code() == 4


def test_signatures_not_pass_fail_are_compared():
    # Every version fails, but with three different signatures: the first change is found.
    sigs = {v: ("ValueError:custom_node_mismatch" if i < 3 else "ValueError:expected_none" if i < 7
                else "ValueError:pytree_structure_error") for i, v in enumerate(VERSIONS)}
    result = search(VERSIONS, FakeOracle(0, signatures=sigs))
    assert result.status == "found"
    assert (result.last_unchanged, result.first_changed) in {("1.2", "1.3"), ("1.6", "1.7")}


def test_sweep_lists_every_change_and_passes_over_skips():
    sigs = {v: ("a" if i < 3 else "b" if i < 7 else "c") for i, v in enumerate(VERSIONS)}
    result = sweep(VERSIONS, FakeOracle(0, skips={"1.3"}, signatures=sigs))
    assert result.changes == [("1.2", "1.4"), ("1.6", "1.7")]
    assert result.environments == len(VERSIONS)


def test_env_bound():
    assert [env_bound(n) for n in (2, 3, 5, 12, 16)] == [3, 4, 5, 6, 6]


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


@pytest.mark.parametrize("jax, family", [
    ("0.4.31", "custom_node_mismatch"), ("0.4.33", "custom_node_mismatch"),  # bisect G1 / sweep S1
    ("0.4.34", "expected_none"), ("0.8.0", "expected_none"), ("0.10.1", "expected_none"),  # G1, S2, G2
    ("0.10.2", "pytree_structure_error"),  # G2
    ("0.4.32", None),  # yanked, never probed: UNKNOWN
])
def test_expectations_table_has_the_bisected_no_params_boundaries(jax, family):
    from repro._expectations import expected_for

    mlp = {"problem": "mlp", "non_array_leaves": True, "int_arrays": False, "bool_arrays": False}
    expected = expected_for("no_params", "jit", {"jax": jax, "optax": "0.2.8", "equinox": "0.13.8"}, mlp)
    assert (expected.family if expected else None) == family
