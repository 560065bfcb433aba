"""Where this tool keeps things, wherever it is installed. Standard library only; no JAX.

The package runs from one of two places: a source checkout (the folder above it holds this
project's pyproject.toml: `checkout()` names it), or an installed copy (a wheel installed by
uv tool, pipx or pip into some environment, `checkout()` None). Nothing may assume the first.

The cache, where bisect, diff and survey build what they reuse (`cache_dir()`):
  1. `--cache-dir DIR` on those commands (it sets REPRO_CACHE_DIR for that run),
  2. else the REPRO_CACHE_DIR environment variable,
  3. else, from a checkout, the checkout's git-ignored `.repro-cache/` (where it always was, so
     envs built before stay reusable and each checkout keeps its own),
  4. else the user's cache folder: $XDG_CACHE_HOME/lbfgs-equinox-repro when XDG_CACHE_HOME is
     set, else ~/.cache/lbfgs-equinox-repro (~/Library/Caches/lbfgs-equinox-repro on macOS,
     %LOCALAPPDATA%/lbfgs-equinox-repro/Cache on Windows).
Inside it (`cache_path(kind)`): CACHE_KINDS.

The package's own files are read-only data where it is installed: `inside_package(path)` tells
the commands that write (the survey) to refuse such a folder.
"""

import functools
import os
import re
import sys

from ._errors import UsageError
from ._settings import setting

CACHE_ENV = "REPRO_CACHE_DIR"
APP = "lbfgs-equinox-repro"  # the distribution's name (repro._versions.DISTRIBUTION)
PACKAGE = os.path.dirname(os.path.abspath(__file__))
CACHE_KINDS = {
    "envs": "bisect's and diff's environments, one per version set",
    "survey": "the survey's per-cell environments (removed after each cell unless --keep-envs)",
    "git": "clones of the git URLs given to bisect --source",
    "wheels": "this harness re-packed as a wheel for the environments (installed copies only)",
}
_NAME_LINE = re.compile(r'^name\s*=\s*"' + re.escape(APP) + '"', re.M)


@functools.lru_cache(maxsize=None)
def checkout():
    """The source checkout this package runs from (the folder holding this project's
    pyproject.toml, just above the package), or None for an installed copy."""
    root = os.path.dirname(PACKAGE)
    try:
        with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    return root if _NAME_LINE.search(text) else None


def user_cache_dir(environ=None, platform=None):
    """The platform's per-user cache folder for this tool (rule 4 above)."""
    environ, platform = os.environ if environ is None else environ, platform or sys.platform
    xdg = environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative value is invalid and ignored
        return os.path.join(xdg, APP)
    if platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Caches", APP)
    if platform.startswith("win"):
        local = environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
        return os.path.join(local, APP, "Cache")
    return os.path.join(os.path.expanduser("~"), ".cache", APP)


def cache_dir(environ=None):
    """The cache folder of this run, absolute (see the rules above); not created here."""
    environ = os.environ if environ is None else environ
    chosen = setting(CACHE_ENV, environ)
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    root = checkout()
    return os.path.join(root, ".repro-cache") if root else user_cache_dir(environ)


def cache_path(kind):
    """One of CACHE_KINDS inside this run's cache folder."""
    if kind not in CACHE_KINDS:
        raise ValueError(f"unknown cache kind {kind!r}")
    return os.path.join(cache_dir(), kind)


def use_cache_dir(path):
    """`--cache-dir PATH`: this run's cache (REPRO_CACHE_DIR, so child processes agree), made
    and checked like any cache folder (`writable_dir`)."""
    os.environ[CACHE_ENV] = os.path.abspath(os.path.expanduser(path))
    return writable_dir(os.environ[CACHE_ENV], "--cache-dir")


def writable_dir(path, label):
    """`path` made if missing; UsageError (one line, `label` first) when it cannot be made or
    written, e.g. a file in the way or a read-only folder."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{label} {path}: cannot create it ({error.strerror or error})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{label} {path}: not writable")
    return path


def inside_package(path):
    """Whether `path` is this package's own folder or inside it, in an installed copy (a
    checkout's package folder is the maintainers' to write)."""
    if checkout():
        return False
    real, package = os.path.realpath(path), os.path.realpath(PACKAGE)
    return real == package or real.startswith(package + os.sep)
