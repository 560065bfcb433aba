"""Observed outcomes, expected outcomes and the verdict between them. No JAX.

An Outcome is what one scenario did in one process; it round-trips through JSON so the
parent process, the matrix aggregation and bisect all read the same record.
"""

import dataclasses
import enum
from typing import Optional


class Verdict(str, enum.Enum):
    REPRODUCED = "REPRODUCED"  # failed, with the expected signature
    WORKAROUND_OK = "WORKAROUND-OK"  # converged, as expected
    FIXED_UPSTREAM = "FIXED-UPSTREAM"  # an expected failure did not happen: it converged
    REGRESSION = "REGRESSION"  # an expected convergence failed
    CHANGED = "CHANGED"  # failed, but not the way expected
    CRASH = "CRASH"  # the process died (signal, or exited without a result)
    TIMEOUT = "TIMEOUT"  # the process outlived its timeout
    UNKNOWN = "UNKNOWN"  # nothing measured for these versions/contents: no expectation

    def __str__(self):
        return self.value

    @property
    def short(self):
        """The form for wide tables (the matrix): _SHORT's abbreviation, else the name itself."""
        return _SHORT.get(self, self.value)

    @property
    def meaning(self):
        """What this verdict says about a run, as one sentence of a report (from _MEANING)."""
        return _MEANING[self]


# Abbreviations for the wide matrix table; a verdict not listed is short enough as it is.
_SHORT = {
    Verdict.REPRODUCED: "REPRO",
    Verdict.WORKAROUND_OK: "WA-OK",
    Verdict.FIXED_UPSTREAM: "FIXED",
    Verdict.REGRESSION: "REGR",
}

# Every verdict's meaning, as a report states it after "**VERDICT**: ".
_MEANING = {
    Verdict.REPRODUCED: "it fails exactly as recorded for these versions.",
    Verdict.WORKAROUND_OK: "it converges, as recorded for these versions.",
    Verdict.FIXED_UPSTREAM: "this used to fail here and now converges: possibly fixed upstream.",
    Verdict.REGRESSION: "this is recorded to converge here, but it did not.",
    Verdict.CHANGED: "it fails, but not in the way recorded for these versions.",
    Verdict.CRASH: "the process died without a Python traceback.",
    Verdict.TIMEOUT: "the script did not finish in time.",
    Verdict.UNKNOWN: "nothing was measured for these versions, so there is no expectation to compare with.",
}

# Verdicts that mean "the installed versions behave as the table says".
AS_EXPECTED = frozenset({Verdict.REPRODUCED, Verdict.WORKAROUND_OK})


@dataclasses.dataclass
class Outcome:
    scenario: str
    mode: str
    status: str  # converged | not_converged | error | crash | timeout
    exc_type: Optional[str] = None
    message: Optional[str] = None
    family: Optional[str] = None
    phase: Optional[str] = None
    library: Optional[str] = None
    traceback: Optional[str] = None
    iterations: Optional[int] = None
    initial_loss: Optional[float] = None
    final_loss: Optional[float] = None
    grad_norm: Optional[float] = None
    seconds: Optional[float] = None
    versions: dict = dataclasses.field(default_factory=dict)
    contents: dict = dataclasses.field(default_factory=dict)
    output: Optional[str] = None  # what a crashed/timed-out process printed
    returncode: Optional[int] = None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def signature(self):
        """What identifies this outcome across runs: no addresses, losses or timings."""
        if self.status in ("converged", "crash", "timeout"):
            return self.status
        if self.status == "not_converged":
            return "not_converged"
        return f"{self.exc_type}:{self.family}@{self.phase}[{self.library}]"

    def observed(self):
        """Short human form for tables."""
        if self.status == "converged":
            return f"converged in {self.iterations} it (loss {self.final_loss:.1e})"
        if self.status == "not_converged":
            return f"not converged after {self.iterations} it (loss {self.final_loss:.3g})"
        if self.status in ("crash", "timeout"):
            return self.status + (f" (rc {self.returncode})" if self.returncode is not None else "")
        return f"{self.exc_type} {self.family} in {self.phase} [{self.library}]"


@dataclasses.dataclass(frozen=True)
class Expected:
    """An expected outcome: convergence, or a failure signature.

    A field left None is not compared (used only where the measurement showed it varies).
    """

    converges: bool
    exc_type: Optional[str] = None
    family: Optional[str] = None
    phase: Optional[str] = None
    library: Optional[str] = None

    def describe(self):
        if self.converges:
            return "converges"
        if self.family == "not_converged":
            return "does not converge (no error raised)"
        if not any((self.exc_type, self.family, self.phase, self.library)):
            return "fails (raises or does not converge)"
        return f"{self.exc_type or 'any error'} {self.family or '(any message)'} in {self.phase or 'any phase'} [{self.library or 'any'}]"

    def matches_failure(self, outcome):
        return all(
            want is None or want == got
            for want, got in (
                (self.exc_type, outcome.exc_type),
                (self.family, outcome.family),
                (self.phase, outcome.phase),
                (self.library, outcome.library),
            )
        )


CONVERGES = Expected(converges=True)


def fails(exc_type, family, phase, library):
    return Expected(False, exc_type, family, phase, library)


# Runs without an exception but does not reach the optimum: a silent failure.
STALLS = Expected(False, family="not_converged")


def classify(expected, outcome):
    """The verdict for `outcome` given `expected` (None when nothing was measured)."""
    if outcome.status == "crash":
        return Verdict.CRASH
    if outcome.status == "timeout":
        return Verdict.TIMEOUT
    if expected is None:
        return Verdict.UNKNOWN
    if expected.converges:
        return Verdict.WORKAROUND_OK if outcome.status == "converged" else Verdict.REGRESSION
    if outcome.status == "converged":
        return Verdict.FIXED_UPSTREAM
    if outcome.status in ("error", "not_converged") and expected.matches_failure(outcome):
        return Verdict.REPRODUCED
    return Verdict.CHANGED
