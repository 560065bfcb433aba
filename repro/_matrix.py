"""The version matrix, as data: one table used by the noxfile, the report and bisect. No JAX.

Each cell pins (python, jax, jaxlib, optax, equinox) and carries tags:
  default  in the default `nox` run          ci      run by .ci/run's test job
  floor    the oldest supported versions     latest  resolves whatever is newest today
  crash    known to crash (not in default)   broken  known not to resolve (not in default)
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Cell:
    id: str
    python: str
    pins: dict  # package -> version; empty for `latest`
    tags: tuple = ("default",)
    note: str = ""

    def requirements(self):
        if not self.pins:
            return ["jax", "optax", "equinox"]
        return [f"{pkg}=={ver}" for pkg, ver in self.pins.items()]


def _pins(jax, optax, equinox, jaxlib=None):
    pins = {"jax": jax}
    if jaxlib is not False:
        pins["jaxlib"] = jaxlib or jax
    pins.update(optax=optax, equinox=equinox)
    return pins


CELLS = (
    Cell("floor-py311", "3.11", _pins("0.4.30", "0.2.3", "0.11.4"), ("default", "floor", "ci"),
         "first Optax with lbfgs"),
    Cell("optax024-py311", "3.11", _pins("0.4.35", "0.2.4", "0.11.10")),
    Cell("optax025-py311", "3.11", _pins("0.6.2", "0.2.5", "0.12.2")),
    Cell("optax027-py311", "3.11", _pins("0.7.2", "0.2.7", "0.13.0")),
    Cell("newest-py311", "3.11", _pins("0.10.2", "0.2.8", "0.13.8"), ("default", "ci"),
         "newest JAX that supports Python 3.11"),
    Cell("newest-py312", "3.12", _pins("0.12.0.1", "0.2.8", "0.13.8")),
    Cell("latest-py311", "3.11", {}, ("latest",), "unpinned: whatever resolves today"),
    Cell("crash-jax070-eqx0130", "3.11", _pins("0.7.0", "0.2.5", "0.13.0"), ("crash",),
         "installs, but the process segfaults at exit"),
)

BY_ID = {cell.id: cell for cell in CELLS}


def cells_tagged(tag):
    return [cell for cell in CELLS if tag in cell.tags]
