"""Bytecode kept between the survey's envs: each distribution's `.pyc` files, compiled once.

Every survey cell builds a fresh env, and the first import of JAX, Optax and Equinox there
compiles their sources to bytecode, which costs more than the import itself
(figures: docs/performance.md). Most cells share most distributions (every
Optax and Equinox cell runs the same JAX), so after a cell the `.pyc` files its workers wrote
are kept per distribution (`keep`) and linked into the next env that installs exactly that
distribution (`seed`), where the first import then costs about what a second one does.
"Exactly": a distribution is keyed by a hash of its
RECORD's lines for its .py files, each with the file's content hash, so the same key means
the same sources. Python still checks every
`.pyc` against its source's mtime and size and compiles again on a mismatch, so a kept file can
cost a compile, never change what runs; tracebacks name the env's own files (Python rewrites a
loaded code object's file name to the source it was found beside).

Standard library only: this runs where envs are built, never inside one.
"""

import csv
import glob
import hashlib
import os
import shutil
import tempfile


def _site_packages(env):
    """The env's site-packages folder, or None (an env with none, or with several)."""
    found = glob.glob(os.path.join(env, "lib", "python*", "site-packages"))
    return found[0] if len(found) == 1 else None


def _distributions(site):
    """(key, the .py files it installed, relative to `site`) for each distribution in `site`
    whose RECORD gives a hash for every .py file; the key is its name and a hash of those
    lines (paths and content hashes: not the whole RECORD, which also hashes scripts whose
    first line names the env's own Python)."""
    for record in sorted(glob.glob(os.path.join(site, "*.dist-info", "RECORD"))):
        with open(record, newline="", encoding="utf-8", errors="replace") as f:
            rows = [row for row in csv.reader(f) if row]
        rows = sorted(row for row in rows if row[0].endswith(".py") and not row[0].startswith(".."))
        if not rows or any(len(row) < 2 or not row[1] for row in rows):
            continue
        name = os.path.basename(os.path.dirname(record))[: -len(".dist-info")]
        digest = hashlib.sha256("\n".join(",".join(row) for row in rows).encode()).hexdigest()[:16]
        yield f"{name}-{digest}", [row[0] for row in rows]


def _compiled(site, source):
    """The `.pyc` files Python wrote for `source` (any interpreter tag or optimisation level)."""
    folder, name = os.path.split(source)
    stem = os.path.splitext(name)[0]
    return glob.glob(os.path.join(site, folder, "__pycache__", glob.escape(stem) + ".*.pyc"))


def _link(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _entry(store, site, key):
    return os.path.join(store, os.path.basename(os.path.dirname(site)), key)  # python3.11/<dist>-<hash>


def keep(env, store):
    """Keep the `.pyc` files of each distribution in `env` that `store` has none for yet;
    the number of distributions kept. Each entry appears whole (written aside, then renamed),
    so two cells keeping the same distribution at once leave one complete entry."""
    site = _site_packages(env)
    if site is None:
        return 0
    kept = 0
    for key, sources in _distributions(site):
        entry = _entry(store, site, key)
        if os.path.exists(entry):
            continue
        compiled = [pyc for source in sources for pyc in _compiled(site, source)]
        if not compiled:
            continue
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        aside = tempfile.mkdtemp(prefix=".keeping-", dir=os.path.dirname(entry))
        for pyc in compiled:
            target = os.path.join(aside, os.path.relpath(pyc, site))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _link(pyc, target)
        try:
            os.rename(aside, entry)
            kept += 1
        except OSError:  # kept meanwhile by another cell
            shutil.rmtree(aside, ignore_errors=True)
    return kept


def seed(env, store):
    """Link into `env` the kept `.pyc` files of every distribution it installed exactly as one
    kept earlier; the number of files linked (none where the env already has one)."""
    site = _site_packages(env)
    if site is None or not os.path.isdir(store):
        return 0
    linked = 0
    for key, _ in _distributions(site):
        entry = _entry(store, site, key)
        for folder, _, names in os.walk(entry):
            for name in names:
                target = os.path.join(site, os.path.relpath(os.path.join(folder, name), entry))
                if not os.path.exists(target):
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    _link(os.path.join(folder, name), target)
                    linked += 1
    return linked
