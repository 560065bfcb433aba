"""The version matrix, as data: one table used by the noxfile, the report and bisect. No JAX.

Each cell pins (python, jax, jaxlib, optax, equinox) and carries tags:
  default  in the default run (`./go repro`, `nox -t default`)
  ci       its `tests` session is what `./go test` / .ci/run runs
  floor    the oldest supported versions (the first Optax with lbfgs)
  boundary JAX on either side of a change the expectations encode
  latest   unpinned: resolves whatever is newest today (not default: its verdicts drift)
  dev      the nightly check: newest JAX, Optax and Equinox from their main branches (not default)
  crash    installs, then crashes: proves a crashing cell is reported (not default)
  broken   pins that cannot resolve: proves UNRESOLVABLE is reported (not default)
  missing  an interpreter this machine lacks: proves SKIPPED is reported (not default)
  demo     the crash, broken and missing cells together (`nox -t demo`)

Every pinned combination below was installed and run here (see each `note`); none is guessed.
A pinned cell's other packages (numpy, scipy, ml_dtypes, the test tools...) resolve as of its
`exclude_newer` date (uv --exclude-newer), so a cell rebuilt later gets the same environment;
`latest` and `dev` float by design. A pin is a version or a source (repro._versions.parse_pin);
`Cell.with_pins` overrides some (`nox -s "repro(<cell>)" -- --pin optax @ ~/optax`), and
REPRO_CHECKOUTS points the git sources of the dev cell at local checkouts.

On disk a cell's env is ENV_ROOT/<id> and its result RESULTS/cells/<id>.json (repro._cells).
"""

import dataclasses
import os
from typing import Optional

from ._versions import TRACKED, requirement

ENV_ROOT = os.path.join(".nox", "cells")
RESULTS = "results"

TAGS = {
    "default": "in the default run (./go repro, nox -t default)",
    "ci": "its tests session is what ./go test and .ci/run run",
    "floor": "the oldest supported versions",
    "latest": "unpinned: whatever resolves today",
    "dev": "the nightly check: newest JAX, Optax and Equinox from their main branches",
    "boundary": "JAX on either side of a change the expectations encode",
    "crash": "installs, then the scenario processes crash",
    "broken": "pins that cannot be resolved",
    "missing": "needs an interpreter absent on this machine",
    "demo": "the crash, broken and missing cells: each must appear in the report with its reason",
}


# The moment the pinned cells' environments were resolved and measured: each pinned cell gets
# it as its `exclude_newer` (a cell added later gets the day it was measured).
RESOLVED = "2026-11-27T00:00:00Z"
UPSTREAM = {"optax": "git+https://github.com/google-deepmind/optax@main",
            "equinox": "git+https://github.com/patrick-kidger/equinox@main"}


@dataclasses.dataclass(frozen=True)
class Cell:
    id: str
    python: str
    pins: dict  # package -> version or source (repro._versions.parse_pin); empty for `latest`
    tags: tuple = ("default",)
    note: str = ""
    exclude_newer: Optional[str] = RESOLVED  # everything resolves as of this moment (uv --exclude-newer); None: floats

    def requirements(self):
        """The pins as installer requirements, then every tracked package left unpinned (floating)."""
        return [requirement(pkg, spec) for pkg, spec in self.pins.items()] + [p for p in TRACKED if p not in self.pins]

    def with_pins(self, overrides):
        """This cell with some pins replaced (a version or a source each); jaxlib floats when jax
        is overridden without it (jax's own requirement then picks a jaxlib that goes with it)."""
        if not overrides:
            return self
        pins = {**self.pins, **overrides}
        if "jax" in overrides and "jaxlib" not in overrides:
            pins.pop("jaxlib", None)
        return dataclasses.replace(self, pins=pins)

    def to_dict(self):
        return {"id": self.id, "python": self.python, "pins": dict(self.pins), "tags": list(self.tags),
                "note": self.note, "exclude_newer": self.exclude_newer}

    @classmethod
    def from_dict(cls, data):
        """A cell as recorded in a result file (it may no longer be in CELLS)."""
        return cls(data["id"], data.get("python"), dict(data.get("pins") or {}), tuple(data.get("tags") or ()),
                   data.get("note", ""), data.get("exclude_newer"))


def _pins(jax, optax, equinox, jaxlib=None):
    pins = {"jax": jax}
    if jaxlib is not False:
        pins["jaxlib"] = jaxlib or jax
    pins.update(optax=optax, equinox=equinox)
    return pins


CELLS = (
    # One cell per Optax minor release 0.2.3-0.2.8, each with a JAX/Equinox it works with.
    Cell("floor-py311", "3.11", _pins("0.4.30", "0.2.3", "0.11.4"), ("default", "floor", "ci"),
         "first Optax with lbfgs; the oldest supported versions"),
    Cell("optax024-py311", "3.11", _pins("0.4.35", "0.2.4", "0.11.10"), ("default",),
         "JAX 0.4.35, after the no_params message change at 0.4.34 (custom_node_mismatch -> expected_none)"),
    Cell("optax025-py311", "3.11", _pins("0.6.2", "0.2.5", "0.12.2")),
    Cell("optax026-py311", "3.11", _pins("0.6.2", "0.2.6", "0.12.2"), ("default",),
         "optax 0.2.6 installed and run with the JAX/Equinox of the 0.2.5 cell"),
    Cell("optax027-py311", "3.11", _pins("0.7.2", "0.2.7", "0.13.0"), ("default",),
         "Optax 0.2.7, verified with JAX 0.7.2 and Equinox 0.13.0"),
    # JAX on both sides of each no_params message change in repro/_expectations.py
    # (custom_node_mismatch | expected_none at 0.4.33 | 0.4.34; expected_none | pytree_structure_error
    # at 0.10.1 | 0.10.2, whose right side is newest-py311).
    Cell("edge-jax0433-py311", "3.11", _pins("0.4.33", "0.2.3", "0.11.4"), ("default", "boundary"),
         "last JAX with the custom_node_mismatch message"),
    Cell("edge-jax0434-py311", "3.11", _pins("0.4.34", "0.2.3", "0.11.10"), ("default", "boundary"),
         "first JAX with the expected_none message (Equinox 0.11.4 fails to import with it: measured)"),
    Cell("edge-jax0101-py311", "3.11", _pins("0.10.1", "0.2.8", "0.13.8"), ("default", "boundary"),
         "last JAX with the expected_none message"),
    # The newest releases on each Python.
    Cell("newest-py311", "3.11", _pins("0.10.2", "0.2.8", "0.13.8"), ("default", "ci"),
         "newest JAX that supports Python 3.11"),
    Cell("newest-py312", "3.12", _pins("0.12.0.1", "0.2.8", "0.13.8"), ("default",),
         "JAX >= 0.11 needs Python >= 3.12"),
    Cell("newest-py313", "3.13", _pins("0.12.0.1", "0.2.8", "0.13.8"), ("default",)),
    Cell("latest-py312", "3.12", {}, ("latest",), "unpinned: whatever resolves today", None),
    Cell("dev-py312", "3.12", dict(UPSTREAM), ("dev",),
         "nightly: newest JAX release, Optax and Equinox from main (REPRO_CHECKOUTS: local checkouts instead)", None),
    # Cells that exist to prove the report never loses a cell.
    Cell("crash-jax070-eqx0130", "3.11", _pins("0.7.0", "0.2.5", "0.13.0"), ("crash", "demo"),
         "installs, but every scenario process segfaults at exit"),
    Cell("broken-jax0430-eqx0138", "3.11", _pins("0.4.30", "0.2.3", "0.13.8"), ("broken", "demo"),
         "unresolvable: Equinox >= 0.11.11 needs JAX >= 0.4.38"),
    Cell("missing-py314", "3.14", _pins("0.12.0.1", "0.2.8", "0.13.8"), ("missing", "demo"),
         "no Python 3.14 on this machine: reported SKIPPED"),
)

BY_ID = {cell.id: cell for cell in CELLS}


def cells_tagged(tag):
    return [cell for cell in CELLS if tag in cell.tags]
