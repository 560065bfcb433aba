"""Installed versions of the packages the expectations depend on. No JAX import."""

import platform
import sys
from importlib import metadata

PACKAGES = ("jax", "jaxlib", "optax", "equinox", "numpy")


def installed_versions():
    versions = {"python": platform.python_version(), "platform": f"{sys.platform}-{platform.machine()}"}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def header(versions):
    return "  ".join(f"{k} {versions.get(k) or '-'}" for k in ("python", "jax", "jaxlib", "optax", "equinox"))
