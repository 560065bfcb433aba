"""The packages repro tracks and their installed versions. No JAX import; imports nothing from repro.

TRACKED are the packages the expectations depend on: what a matrix cell pins, what
`repro bisect --by-date` moves and what every header names. PACKAGES adds what a report
also lists.
"""

import platform
import sys
from importlib import metadata

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
