"""This tool's names and version, the packages it tracks and their installed versions. No JAX
import; imports nothing from repro.

DISTRIBUTION is the name on the package index ("repro" there is another project, which installs
a `repro` import package and a `repro` script too); SCRIPT is the console script, named after
the distribution so that neither project's script hides the other's. The import package stays
`repro` (`python -m repro`); `shadowing_distributions` names any other installed distribution
that ships a `repro` package, so the clash is reported, not silent.

TRACKED are the packages the expectations depend on: what a matrix cell pins, what
`bisect --by-date` moves and what every header names. PACKAGES adds what a report also lists.
"""

import platform
import re
import sys
from importlib import metadata

__version__ = "0.1.0"  # pyproject.toml reads it from here (hatch's version source)
DISTRIBUTION = "lbfgs-equinox-repro"
SCRIPT = DISTRIBUTION
IMPORT_NAME = "repro"

TRACKED = ("jax", "jaxlib", "optax", "equinox")
PACKAGES = (*TRACKED, "numpy")


def installed_versions():
    versions = {"python": platform.python_version(), "platform": f"{sys.platform}-{platform.machine()}"}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def header(versions):
    """One line: python and the tracked packages, e.g. `python 3.11.7  jax 0.10.2  jaxlib 0.10.2 ...`."""
    return "  ".join(f"{k} {versions.get(k) or '-'}" for k in ("python", *TRACKED))


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def shadowing_distributions():
    """Installed distributions other than this one that ship a top-level `repro` package: each
    overwrites (or is overwritten by) this one's files, and `python -m repro` may run theirs."""
    providers = metadata.packages_distributions().get(IMPORT_NAME, [])
    return sorted({name for name in providers if _canonical(name) != DISTRIBUTION})


def version_line(versions):
    """`lbfgs-equinox-repro 0.1.0 (python 3.11.7, jax 0.10.2, ..., numpy 2.1.0)`: what --version prints."""
    installed = ", ".join(f"{k} {versions.get(k) or 'not installed'}" for k in ("python", *PACKAGES))
    return f"{DISTRIBUTION} {__version__} ({installed})"
