"""Source pins and commit-level bisect, offline: tiny git repositories made in a temp dir.

The package bisected here is a tiny pure-Python one (hatchling, built by uv from uv's cache:
UV_OFFLINE=1, no network; UV_EXCLUDE_NEWER at the cells' date picks the hatchling that building
this project into the ci cells' envs cached), so what changes between its commits is read with a small runner
instead of the scenarios; everything else is the real path: first-parent commits, an env per
commit built from `git+file://REPO@SHA`, skips for a commit that cannot be built or imported,
the first changed commit named with its PR number, the envs reused on a second run.
"""

import json
import os
import runpy
import subprocess
import sys

import pytest

from repro import _bisect, _git, _versions
from repro._bisect import env_bound
from repro._errors import UsageError
from repro._matrix import RESOLVED
from repro._options import BisectOptions, bisect_options, run_options
from repro._outcome import Outcome

PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "tiny"
version = "{version}"
"""


def _git_in(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout.strip()


def _commit(repo, message, files):
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _git_in(repo, "add", "-A")
    _git_in(repo, "commit", "-q", "-m", message)
    return _git_in(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory):
    """main: v1.0, docs, an unbuildable commit, an unimportable one, a fix, the merge of PR #7
    (whose branch changes the answer), a tidy-up tagged v2.0. Returns (path, {name: sha})."""
    repo = tmp_path_factory.mktemp("tiny")
    _git_in(repo, "init", "-q", "-b", "main")
    shas = {"good": _commit(repo, "First release", {"pyproject.toml": PYPROJECT.format(version="1.0"),
                                                    "tiny/__init__.py": 'ANSWER = "old"\n'})}
    _git_in(repo, "tag", "v1.0")
    shas["docs"] = _commit(repo, "Add a README (#3)", {"README.md": "tiny\n"})
    shas["unbuildable"] = _commit(repo, "Break the build", {"pyproject.toml": "[project\n"})
    shas["unimportable"] = _commit(repo, "Restore the build, break the import",
                                   {"pyproject.toml": PYPROJECT.format(version="1.1.dev0"),
                                    "tiny/__init__.py": 'raise ImportError("half-done refactor")\n'})
    shas["fixed"] = _commit(repo, "Fix the import", {"tiny/__init__.py": 'ANSWER = "old"\n'})
    _git_in(repo, "checkout", "-q", "-b", "change")
    shas["inside"] = _commit(repo, "Change the answer", {"tiny/__init__.py": 'ANSWER = "new"\n'})
    _commit(repo, "Say why", {"NOTES.md": "the answer is new\n"})
    _git_in(repo, "checkout", "-q", "main")
    _git_in(repo, "merge", "-q", "--no-ff", "change", "-m", "Merge pull request #7 from someone/change")
    shas["merge"] = _git_in(repo, "rev-parse", "HEAD")
    shas["bad"] = _commit(repo, "Tidy up", {"README.md": "tiny, tidied\n"})
    _git_in(repo, "tag", "v2.0")
    return repo, shas


def _answer_runner(python):
    """What the tiny package says in `python`'s env, as an outcome signature (or a skip)."""
    proc = subprocess.run([python, "-c", "import tiny; print(tiny.ANSWER)"], capture_output=True, text=True)
    if proc.returncode != 0:
        return [], "cannot import: " + proc.stderr.strip().splitlines()[-1]
    versions = json.loads(subprocess.run([python, "-c", "import json, runpy; print(json.dumps(runpy.run_path("
                                          f"{_versions.__file__!r})['installed_versions'](('tiny',))))"],
                                         capture_output=True, text=True, check=True).stdout)
    return [Outcome("answer", "jit", "error", exc_type=proc.stdout.strip(), family="answer", phase="import",
                    library="tiny", versions=versions)], ""


def _offline_uv(monkeypatch):
    """No network for uv: the tiny package's build backend comes from uv's cache."""
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_EXCLUDE_NEWER", RESOLVED)


def _bisect_tiny(repo, tmp_path, monkeypatch, **kw):
    _offline_uv(monkeypatch)
    options = BisectOptions(scenarios=("no_params",), modes=("jit",), pins={}, package="tiny",
                            good=kw.pop("good", "v1.0"), bad=kw.pop("bad", "v2.0"), source=str(repo), **kw)
    return _bisect.bisect(options, cache_dir=str(tmp_path / "envs"), git_cache=str(tmp_path / "git"),
                          runner=_answer_runner, project=False)


def test_first_parent_history_and_pr_numbers(tiny_repo):
    repo, shas = tiny_repo
    commits = _git.first_parent(str(repo), shas["good"], shas["bad"])
    assert commits == [shas[k] for k in ("good", "docs", "unbuildable", "unimportable", "fixed", "merge", "bad")]
    assert shas["inside"] not in commits  # the merged branch's own commits are not first-parent
    info = _git.commit_info(str(repo), shas["merge"])
    assert (info["sha"], info["pr"], info["subject"]) == (shas["merge"], 7, "Merge pull request #7 from someone/change")
    assert info["date"].endswith("+00:00")
    assert _git.commit_info(str(repo), shas["docs"])["pr"] == 3
    assert _git.commit_info(str(repo), shas["bad"])["pr"] is None
    assert _git.pr_number("Fix zoom dtypes\n\nCOPYBARA_INTEGRATE_REVIEW=https://github.com/o/r/pull/1234 from x") == 1234


def test_commit_bisect_names_the_first_changed_commit_and_skips_what_cannot_be_built(tiny_repo, tmp_path,
                                                                                     monkeypatch):
    repo, shas = tiny_repo
    run = _bisect_tiny(repo, tmp_path, monkeypatch)
    result = run.result
    assert result.status == "found" and run.exit_code() == 0
    assert (result.last_unchanged, result.first_changed) == (shas["fixed"], shas["merge"])
    skipped = {p.version: p.reason for p in result.probes if p.skipped}
    assert skipped[shas["unbuildable"]].startswith("cannot install")
    assert "half-done refactor" in skipped[shas["unimportable"]]
    assert result.environments - len(skipped) <= env_bound(len(result.candidates))
    data = run.to_dict()
    assert data["first_changed"]["sha"] == shas["merge"] and data["first_changed"]["pr"] == 7
    assert data["last_unchanged"]["sha"] == shas["fixed"]
    assert data["source"]["good"] == "v1.0" and len(data["candidates"]) == 7
    installed = {p["version"]: p["installed"] for p in data["probes"] if not p["skipped"]}
    assert installed[shas["merge"]]["sources"]["tiny"]["commit"] == shas["merge"]  # the commit is recorded
    text = run.render()
    assert f"first changed commit: {shas['merge']}" in text and "pull request: #7" in text
    assert "SKIP" in text and "Merge pull request #7" in text

    again = _bisect_tiny(repo, tmp_path, monkeypatch)  # one env per commit, cached; a failed build is tried again
    assert [p.version for p in again.result.probes if not p.reused] == [shas["unbuildable"]]
    assert again.result.first_changed == shas["merge"]


def test_skips_next_to_the_change_are_ambiguous_and_a_bad_end_is_named(tiny_repo, tmp_path, monkeypatch):
    repo, shas = tiny_repo
    run = _bisect_tiny(repo, tmp_path, monkeypatch, good=shas["docs"], bad=shas["fixed"])
    assert run.result.status == "no_change"  # "old" at both ends; the skips in between cost nothing
    run = _bisect_tiny(repo, tmp_path, monkeypatch, good=shas["good"], bad=shas["unimportable"])
    assert run.result.status == "endpoint_skipped" and run.exit_code() == 4


@pytest.mark.parametrize("args, words", [
    (("--source", "/nonexistent/repo", "--good", "v1.0", "--bad", "v2.0"), "no such directory"),
    (("--source", "{tmp}", "--good", "v1.0", "--bad", "v2.0"), "not a git repository"),
    (("--source", "{repo}", "--good", "v0.9", "--bad", "v2.0"), "--good 'v0.9' is not a commit"),
    (("--source", "{repo}", "--good", "v2.0", "--bad", "v1.0"), "not an ancestor"),
    (("--source", "{repo}", "--good", "v1.0", "--bad", "v1.0"), "same commit"),
    (("--source", "{repo}", "--by-date", "2024-01-01..2024-02-01"), "replaces"),
])
def test_bad_source_bisects_are_one_line_and_exit_2(run_cli, tiny_repo, tmp_path, args, words):
    repo, _ = tiny_repo
    args = [a.format(repo=repo, tmp=tmp_path) for a in args]
    proc = run_cli("bisect", "--package", "tiny", "--scenario", "no_params", *args, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# --- source pins and what is recorded of them -----------------------------------------------

def test_pins_name_versions_git_sources_and_local_checkouts(tiny_repo):
    repo, _ = tiny_repo
    parse = _versions.parse_pin
    assert parse("optax==0.2.4") == ("optax", "0.2.4")
    assert parse("optax @ git+https://github.com/google-deepmind/optax@main") == (
        "optax", "git+https://github.com/google-deepmind/optax@main")
    assert parse(f"tiny@{repo}") == parse(f"tiny @ file://{repo}") == ("tiny", str(repo))
    assert _versions.requirement("tiny", str(repo)) == f"tiny @ file://{repo}"
    assert _versions.source_pin(_versions.requirement("tiny", str(repo))) == ("tiny", str(repo))
    assert _versions.requirement("optax", "0.2.4") == "optax==0.2.4"
    assert _versions.git_source("git+ssh://git@host/o/r@v1") == ("ssh://git@host/o/r", "v1")
    for bad in ("optax=0.2.4", "optax @ /nonexistent/checkout", "@x"):
        with pytest.raises(ValueError):
            parse(bad)
    with pytest.raises(UsageError, match="not a directory"):
        run_options(["--pin", "optax @ /nonexistent/checkout"])
    assert bisect_options(["--package", "optax", "--source", str(repo), "--good", "a", "--bad", "b", "--scenario",
                           "no_params", "--pin", f"equinox @ {repo}"]).pins == {"equinox": str(repo)}


def _read_installed(python, name):
    code = f"import json, runpy; print(json.dumps(runpy.run_path({_versions.__file__!r})['installed_versions'](({name!r},))))"
    return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_the_installed_commit_and_uncommitted_changes_are_recorded(tiny_repo, tmp_path, monkeypatch):
    from repro._envs import build_env

    repo, shas = tiny_repo
    _offline_uv(monkeypatch)
    python = sys.executable
    at_commit = build_env(str(tmp_path / "git"), python, [f"tiny @ git+file://{repo}@{shas['merge']}"],
                          project=False)
    assert at_commit.ok, at_commit.reason
    found = _read_installed(at_commit.python, "tiny")
    assert found["tiny"] == "1.1.dev0"
    assert found["sources"]["tiny"] == {"url": f"file://{repo}", "commit": shas["merge"], "dirty": False,
                                        "requested": shas["merge"], "editable": False}
    assert _versions.version_text(found, "tiny") == f"1.1.dev0@{shas['merge'][:8]}"

    checkout = tmp_path / "checkout"
    _git_in(tmp_path, "clone", "-q", str(repo), str(checkout))
    clean = build_env(str(tmp_path / "dir"), python, [f"tiny @ file://{checkout}"], project=False)
    assert clean.ok and _read_installed(clean.python, "tiny")["sources"]["tiny"]["dirty"] is False
    assert build_env(str(tmp_path / "dir"), python, [f"tiny @ file://{checkout}"], project=False).reused

    (checkout / "tiny" / "__init__.py").write_text('ANSWER = "patched"\n')  # a candidate patch
    dirty = build_env(str(tmp_path / "dir"), python, [f"tiny @ file://{checkout}"], project=False)
    assert dirty.ok and not dirty.reused  # the checkout changed: the env is rebuilt
    found = _read_installed(dirty.python, "tiny")
    assert found["sources"]["tiny"]["commit"] == shas["bad"] and found["sources"]["tiny"]["dirty"] is True
    assert _versions.version_text(found, "tiny").endswith("+dirty")
    answer = subprocess.run([dirty.python, "-c", "import tiny; print(tiny.ANSWER)"], capture_output=True, text=True)
    assert answer.stdout.strip() == "patched"


def test_a_source_build_is_judged_by_its_base_release_and_says_so(tmp_path, monkeypatch):
    from repro import _index
    from repro._report import BUILTIN_CONTENTS
    from repro._results import judge, render_table, summarise

    index = tmp_path / "index"
    (index / "optax").mkdir(parents=True)
    files = lambda day: [{"upload_time_iso_8601": f"{day}T00:00:00Z", "yanked": False}]  # noqa: E731
    (index / "optax" / "json").write_text(json.dumps({"releases": {"0.2.4": files("2024-11-12"),
                                                                   "0.2.5": files("2025-06-10")}}))
    monkeypatch.setattr(_index, "INDEX_URL", f"file://{index}")  # an offline package index
    monkeypatch.setattr(_index, "_CACHE", {})
    source = {"url": "file:///src/optax", "commit": "3f0a64bdb7a3b5c03c09424e2ee48888fdd6173e", "dirty": True}
    versions = {"python": "3.11.7", "jax": "0.4.35", "jaxlib": "0.4.35", "optax": "0.2.5.dev0", "equinox": "0.11.10",
                "sources": {"optax": source}}
    works = Outcome("seed_fix", "jit", "converged", iterations=11, final_loss=1e-7, versions=versions,
                    contents=dict(BUILTIN_CONTENTS), reference={"departed_at": None, "compared": 11})
    row = judge(works)
    assert row["base"] == {"optax": "0.2.4"}  # 0.2.5.dev0 is based on the last release before it
    assert row["expected"].startswith("TypeError missing_linesearch_args")  # what optax 0.2.4 did
    assert row["verdict"] == "FIXED-UPSTREAM"  # the source stopped an expected failure
    table = render_table(summarise([row], versions))
    assert "optax 0.2.5.dev0@3f0a64bd+dirty" in table and "FIXED-UPSTREAM vs base" in table
    assert "judged by what their base release did" in table and "optax 0.2.5.dev0@3f0a64bd+dirty -> optax 0.2.4" in table
    assert _index.base_release("optax", "0.2.4") == "0.2.4"  # a release claims itself, no index needed
    release = judge(Outcome("seed_fix", "jit", "error", versions={k: v for k, v in versions.items() if k != "sources"}))
    assert "base" not in release


# --- cells: the dev cell, overrides, reproducible environments -------------------------------

def test_the_dev_cell_floats_and_reads_local_checkouts_from_repro_checkouts(tiny_repo):
    from repro._cells import effective_cell, env_folder
    from repro._matrix import BY_ID, cells_tagged

    repo, _ = tiny_repo
    (dev,) = cells_tagged("dev")
    assert "default" not in dev.tags and dev.exclude_newer is None
    assert dev.requirements() == ["optax @ git+https://github.com/google-deepmind/optax@main",
                                  "equinox @ git+https://github.com/patrick-kidger/equinox@main", "jax", "jaxlib"]
    local = effective_cell(dev, environ={"REPRO_CHECKOUTS": f"optax={repo}"})
    assert local.pins["optax"] == str(repo) and local.pins["equinox"].startswith("git+https://")
    with pytest.raises(UsageError, match="REPRO_CHECKOUTS"):
        effective_cell(dev, environ={"REPRO_CHECKOUTS": "optax"})
    floor = BY_ID["floor-py311"]
    assert effective_cell(floor, environ={"REPRO_CHECKOUTS": f"optax={repo}"}) == floor  # pinned: untouched
    patched = effective_cell(floor, {"optax": str(repo), "jax": "0.4.31"}, environ={})
    assert patched.pins == {"jax": "0.4.31", "optax": str(repo), "equinox": "0.11.4"}  # jaxlib floats with jax
    assert env_folder("floor-py311", {}) == "floor-py311" and env_folder("floor-py311", {"optax": "x"}) != "floor-py311"


def test_pinned_cells_resolve_as_of_their_date_and_record_every_package(tmp_path, monkeypatch):
    from repro import _cells
    from repro._envs import EnvResult
    from repro._matrix import BY_ID, CELLS

    assert all(c.exclude_newer for c in CELLS if c.pins and "dev" not in c.tags)
    built = {}

    def fake_build(path, interpreter, requirements, **kw):
        built.update(kw, requirements=requirements)
        return EnvResult(True, path, sys.executable, 0.1, False, backend="uv")

    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.setattr(_cells, "run_here", lambda *a, **kw: {"results": [], "as_expected": True})
    record = _cells.run_cell(BY_ID["floor-py311"], run_options(["--mode", "jit"]), results=str(tmp_path),
                             log=lambda m: None, build_env=fake_build, find_interpreter=lambda v: sys.executable)
    assert built["exclude_newer"] == BY_ID["floor-py311"].exclude_newer
    assert record.packages["pytest"] and record.packages["packaging"]  # every distribution in the env
    saved = json.loads((tmp_path / "cells" / "floor-py311.json").read_text())
    assert saved["packages"] == record.packages and saved["cell"]["exclude_newer"] == BY_ID["floor-py311"].exclude_newer


def test_the_env_probe_of_reports_reads_versions_with_repros_own_reader():
    from repro._report._probe import finish_probe, start_probe

    env = finish_probe(start_probe())
    mine = runpy.run_path(_versions.__file__)["installed_versions"]()
    assert {k: env.get(k) for k in _versions.PACKAGES} == {k: mine[k] for k in _versions.PACKAGES}
    assert env.get("sources") == mine.get("sources")


def test_the_scheduled_workflow_runs_the_dev_cell_nightly():
    from ruamel.yaml import YAML

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    doc = YAML(typ="safe").load(open(os.path.join(root, ".github", "workflows", "matrix.yml")))
    crons = [entry["cron"] for entry in doc["on"]["schedule"]]
    nightly = [cron for cron in crons if cron.split()[2:] == ["*", "*", "*"]]
    assert len(nightly) == 1 and len(crons) == 2
    tag = next(s["env"]["TAG"] for s in doc["jobs"]["list"]["steps"] if "TAG" in (s.get("env") or {}))
    assert f"github.event.schedule == '{nightly[0]}' && 'dev'" in tag
    proc = subprocess.run([sys.executable, "-m", "nox", "--list", "--json", "-t", "dev"], capture_output=True,
                          text=True, cwd=root, timeout=120)
    assert [s["session"] for s in json.loads(proc.stdout) if s["name"] == "repro"] == ["repro(dev-py312)"]
