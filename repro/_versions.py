"""This tool's names and version, the packages it tracks, how a pin names them, and what is
installed. No JAX; imports nothing from repro.

DISTRIBUTION is the name on the package index ("repro" there is another project, which installs
a `repro` import package and a `repro` script too); SCRIPT is the console script, named after
the distribution so that neither project's script hides the other's. The import package stays
`repro` (`python -m repro`); `shadowing_distributions` names any other installed distribution
that ships a `repro` package, so the clash is reported, not silent.

TRACKED are the packages the expectations depend on: what a matrix cell pins, what
`bisect --by-date` moves and what every header names. PACKAGES adds what a report also lists.

A pin is NAME -> spec, where spec is a released version ("0.2.4") or a source: a git URL
with an optional ref ("git+https://github.com/google-deepmind/optax@main") or a local
directory (an absolute path; a checkout with uncommitted changes included). `requirement`
turns a pin into what the installer takes.

What is installed is read here, in the env itself: versions from the distributions'
metadata, and for a package installed from a source, where from and which commit, from
the PEP 610 `direct_url.json` its installer wrote (a directory's commit and uncommitted
changes are read from the checkout with git). The report's environment probe runs this
file as it is (runpy) in interpreters that may not have repro installed, so it stays
standard library only.
"""

import functools
import json
import os
import platform
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from importlib import metadata

__version__ = "0.1.0"  # pyproject.toml reads it from here (hatch's version source)
DISTRIBUTION = "lbfgs-equinox-repro"
SCRIPT = DISTRIBUTION
IMPORT_NAME = "repro"

TRACKED = ("jax", "jaxlib", "optax", "equinox")
PACKAGES = (*TRACKED, "numpy")
_SOURCE_PREFIXES = ("git+", "/")


# --- pins -------------------------------------------------------------------------------------

def is_source(spec):
    """Whether a pin's spec names a source (git URL or local directory), not a released version."""
    return str(spec).startswith(_SOURCE_PREFIXES)


def requirement(name, spec):
    """What the installer takes for a pin: `name==1.2`, `name @ git+URL@REF` or `name @ file:///dir`."""
    if not is_source(spec):
        return f"{name}=={spec}"
    return f"{name} @ " + (f"file://{urllib.request.pathname2url(spec)}" if spec.startswith("/") else spec)


def source_pin(req):
    """(name, spec) of a requirement `requirement` made from a source pin; None for any other."""
    name, at, source = req.partition(" @ ")
    if not at:
        return None
    if source.startswith("file://"):
        return name, urllib.request.url2pathname(urllib.parse.urlparse(source).path)
    return name, source


def parse_pin(text):
    """"NAME==VERSION", "NAME @ git+URL[@REF]" or "NAME @ DIRECTORY" -> (name, spec).

    A directory becomes an absolute path and must exist; ValueError says what is wrong."""
    name, sep, version = text.partition("==")
    if sep and "@" not in name:
        name, version = name.strip().lower(), version.strip()
        if name and version:
            return name, version
    name, sep, source = text.partition("@")
    name, source = name.strip().lower(), source.strip()
    if not sep or not name or not source or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"{text!r}: expected NAME==VERSION, NAME @ git+URL[@REF] or NAME @ DIRECTORY")
    if source.startswith("git+"):
        return name, source
    path = os.path.abspath(os.path.expanduser(urllib.parse.urlparse(source).path
                                              if source.startswith("file:") else source))
    if not os.path.isdir(path):
        raise ValueError(f"{text!r}: {path} is not a directory (a source is git+URL[@REF] or a local checkout)")
    return name, path


def git_source(spec):
    """(url, ref or None) of a `git+URL[@REF]` spec; the ref is what follows the last "@" of the path."""
    url = spec[len("git+"):]
    parts = urllib.parse.urlsplit(url)
    path, at, ref = parts.path.rpartition("@")
    if not at:
        return url, None
    return urllib.parse.urlunsplit(parts._replace(path=path)), ref


def with_checkouts(pins, checkouts):
    """`pins` with each package pinned to a git source replaced by its local checkout, where
    `checkouts` ({name: directory}, from REPRO_CHECKOUTS) has one: the dev cell on this machine."""
    return {name: checkouts.get(name, spec) if str(spec).startswith("git+") else spec
            for name, spec in pins.items()}


def parse_checkouts(text):
    """REPRO_CHECKOUTS ("optax=/path/to/optax,equinox=/path/to/equinox") -> {name: absolute dir}."""
    out = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"REPRO_CHECKOUTS: {item!r}: expected NAME=DIRECTORY")
        out[name.strip().lower()] = parse_pin(f"{name} @ {path.strip()}")[1]
    return out


# --- what is installed --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def checkout_state(path):
    """{"commit": sha or None, "dirty": bool or None} of a directory: its git HEAD and whether
    it has uncommitted changes (None, None where it is not a git checkout or git is missing)."""
    def git(*args):
        try:
            proc = subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=normal") if commit else None
    return {"commit": commit.strip() if commit else None, "dirty": bool(status.strip()) if status is not None else None}


def source_of(name):
    """Where `name` was installed from when not from an index (PEP 610 direct_url.json):
    {"url", "commit", "dirty", "requested", "editable"}; None for an index install."""
    try:
        text = metadata.distribution(name).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    data = json.loads(text)
    url, vcs, directory = data.get("url", ""), data.get("vcs_info"), data.get("dir_info")
    if vcs is not None:
        return {"url": url, "commit": vcs.get("commit_id"), "dirty": False,
                "requested": vcs.get("requested_revision"), "editable": False}
    if directory is not None and url.startswith("file:"):
        state = checkout_state(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        return {"url": url, **state, "requested": None, "editable": bool(directory.get("editable"))}
    return None  # an archive URL: no commit to name


def installed_versions(names=PACKAGES):
    """python, platform and each package's version; `sources` names the commit of every one
    installed from a source (absent when all came from the index)."""
    versions = {"python": platform.python_version(), "platform": f"{sys.platform}-{platform.machine()}"}
    sources = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
            continue
        source = source_of(name)
        if source:
            sources[name] = source
    if sources:
        versions["sources"] = sources
    return versions


def all_packages():
    """Every distribution installed here, {name: version}, sorted: the whole environment."""
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name:
            found[name] = dist.version
    return dict(sorted(found.items()))


def version_text(versions, name):
    """A package's version as tables show it: `0.2.9.dev0@2edbcbe2+dirty` for a source build."""
    version = versions.get(name)
    source = (versions.get("sources") or {}).get(name)
    if not version or not source:
        return version
    commit = (source.get("commit") or "")[:8] or "local"
    return f"{version}@{commit}" + ("+dirty" if source.get("dirty") else "")


def header(versions):
    """One line: python and the tracked packages, e.g. `python 3.11.7  jax 0.10.2  jaxlib 0.10.2 ...`."""
    return "  ".join(f"{k} {(version_text(versions, k) if k in TRACKED else versions.get(k)) or '-'}"
                     for k in ("python", *TRACKED))


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def shadowing_distributions():
    """Installed distributions other than this one that ship a top-level `repro` package: each
    overwrites (or is overwritten by) this one's files, and `python -m repro` may run theirs."""
    providers = metadata.packages_distributions().get(IMPORT_NAME, [])
    return sorted({name for name in providers if _canonical(name) != DISTRIBUTION})


def version_line(versions):
    """`lbfgs-equinox-repro 0.1.0 (python 3.11.7, jax 0.10.2, ..., numpy 2.1.0)`: what --version prints."""
    installed = ", ".join(f"{k} {version_text(versions, k) or 'not installed'}" for k in ("python", *PACKAGES))
    return f"{DISTRIBUTION} {__version__} ({installed})"
