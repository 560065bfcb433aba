"""Observed outcomes, expected outcomes and the verdict between them. No JAX.

An Outcome is what one scenario did in one process; it round-trips through JSON so the
parent process, the matrix aggregation and bisect all read the same record.
"""

import dataclasses
import enum
from typing import Optional


class Verdict(str, enum.Enum):
    REPRODUCED = "REPRODUCED"  # failed, with the expected signature
    WORKAROUND_OK = "WORKAROUND-OK"  # works as expected: matches the reference (and converges, built-in problem)
    FIXED_UPSTREAM = "FIXED-UPSTREAM"  # an expected failure did not happen: it works
    REGRESSION = "REGRESSION"  # expected to work, but it raised (or did not converge, built-in problem)
    CHANGED = "CHANGED"  # failed, but not the way expected
    WRONG_RESULT = "WRONG-RESULT"  # finished, but departed from the flat-vector reference
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
    def glyph(self):
        """One square or symbol per verdict, for the matrix heat map (_GLYPH)."""
        return _GLYPH[self]

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
    Verdict.WRONG_RESULT: "WRONG",
}

# One glyph per verdict for the heat map: squares for the verdicts of a run that finished (blue:
# the bug as measured, green: a workaround that works, yellow/orange/red/purple: departures from
# the table), symbols for a run that did not finish or had nothing to compare with.
_GLYPH = {
    Verdict.REPRODUCED: "🟦",
    Verdict.WORKAROUND_OK: "🟩",
    Verdict.FIXED_UPSTREAM: "🟨",
    Verdict.REGRESSION: "🟥",
    Verdict.CHANGED: "🟧",
    Verdict.WRONG_RESULT: "🟪",
    Verdict.CRASH: "💥",
    Verdict.TIMEOUT: "⌛",
    Verdict.UNKNOWN: "⬜",
}

# Every verdict's meaning, as a report states it after "**VERDICT**: ".
_MEANING = {
    Verdict.REPRODUCED: "it fails exactly as recorded for these versions.",
    Verdict.WORKAROUND_OK: "it works, as recorded for these versions: its iterates match L-BFGS on the flat "
                           "vector (and it converges, on the built-in problem).",
    Verdict.FIXED_UPSTREAM: "this used to fail here and now works (its iterates match L-BFGS on the flat "
                            "vector): possibly fixed upstream.",
    Verdict.REGRESSION: "this is recorded to work here, but it did not.",
    Verdict.CHANGED: "it fails, but not in the way recorded for these versions.",
    Verdict.WRONG_RESULT: "it runs without an error, but its iterates depart from L-BFGS on the flat vector: "
                          "it computes something else.",
    Verdict.CRASH: "the process died without a Python traceback.",
    Verdict.TIMEOUT: "the script did not finish in time.",
    Verdict.UNKNOWN: "nothing was measured for these versions, so there is no expectation to compare with.",
}

# Verdicts that mean "the installed versions behave as the table says".
AS_EXPECTED = frozenset({Verdict.REPRODUCED, Verdict.WORKAROUND_OK})


FINISHED = ("converged", "not_converged", "wrong_result", "crash", "timeout")  # statuses that are their own signature


def signature(status, exc_type=None, family=None, phase=None, library=None):
    """The signature of an outcome or an observation: its status when it finished, crashed or
    timed out; else `type:family@phase[library]` of the exception."""
    if status in FINISHED:
        return status
    return f"{exc_type}:{family}@{phase}[{library}]"


@dataclasses.dataclass
class Outcome:
    scenario: str
    mode: str
    status: str  # converged | not_converged | wrong_result | error | crash | timeout
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
    # A finished run compared with the flat-vector reference (repro._jax._oracle.Agreement):
    # compared, tolerance, departed_at, deviation, drift, margin, reference_steps, reference_error.
    reference: Optional[dict] = None

    def agrees(self):
        """Finished and matched the reference at every iteration compared."""
        ref = self.reference or {}
        return (self.status in ("converged", "not_converged") and bool(ref) and not ref.get("vacuous")
                and ref.get("departed_at") is None and ref.get("reference_error") is None)

    def unjudged(self):
        """Finished, but not judged by the reference: it raised, nothing past the start could be
        compared (`vacuous`: at low precision rounding may decide from the first update), or the
        oracle was off. Nothing says whether the iterates are right."""
        ref = self.reference or {}
        return self.status in ("converged", "not_converged") and (
            not ref or ref.get("reference_error") is not None or bool(ref.get("vacuous")))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def signature(self):
        """What identifies this outcome across runs: no addresses, losses or timings."""
        return signature(self.status, self.exc_type, self.family, self.phase, self.library)

    def observed(self):
        """Short human form for tables."""
        if self.status == "converged":
            return f"converged in {self.iterations} it (loss {self.final_loss:.1e})"
        if self.status == "not_converged":
            same = ", as the reference" if self.agrees() else ""
            return f"not converged after {self.iterations} it (loss {self.final_loss:.3g}{same})"
        if self.status == "wrong_result":
            ref = self.reference or {}
            return f"wrong result: departs from the reference at it {ref.get('departed_at')} (dev {ref.get('deviation') or 0:.2g})"
        if self.status in ("crash", "timeout"):
            return self.status + (f" (rc {self.returncode})" if self.returncode is not None else "")
        return f"{self.exc_type} {self.family} in {self.phase} [{self.library}]"


@dataclasses.dataclass(frozen=True)
class Expected:
    """An expected outcome: the call pattern works, or how it fails.

    `works=True`: it finishes and matches the flat-vector reference; with `optimum_known`
    (the built-in problem) it must also meet the convergence definition, otherwise (any other
    module) convergence is information. `works=False`: `status` says how it fails: "error"
    with a signature (a field left None is not compared: used where the measurements show it
    varies), "wrong_result" (finishes but departs from the reference: silent wrong math),
    "not_converged" (matches the reference but does not converge: the built-in problem only),
    or None: broken, with no signature to hold it to (raises anything, or departs from the
    reference: the category of a structure never measured).
    """

    works: bool
    status: Optional[str] = None  # error | wrong_result | not_converged | None (any failure)
    exc_type: Optional[str] = None
    family: Optional[str] = None
    phase: Optional[str] = None
    library: Optional[str] = None
    optimum_known: bool = True

    def describe(self):
        if self.works:
            return "converges" if self.optimum_known else "matches the reference"
        if self.status == "wrong_result":
            return "wrong result (departs from the reference)"
        if self.status == "not_converged":
            return "matches the reference, does not converge"
        if self.status is None:
            return "fails (raises or departs from the reference)"
        return (f"{self.exc_type or 'any error'} {self.family or '(any message)'} in {self.phase or 'any phase'} "
                f"[{self.library or 'any'}]")

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


CONVERGES = Expected(works=True)  # the built-in problem: matches the reference and converges
AGREES = Expected(works=True, optimum_known=False)  # any other module: matches the reference
BROKEN = Expected(works=False)  # raises anything, or departs from the reference
NOT_CONVERGED = Expected(works=False, status="not_converged")  # the built-in problem: right, too slow


def fails(exc_type, family, phase, library):
    return Expected(False, "error", exc_type, family, phase, library)


# Finishes, but departs from the flat-vector reference: silent wrong math.
WRONG_RESULT = Expected(False, status="wrong_result")


@dataclasses.dataclass(frozen=True)
class AnyOf:
    """Several measured outcomes, one of which happens depending on the module (the module's
    top-level type names itself in JAX 0.4.30's message; integer leaves misaligned by JAX
    0.4.33 and older fail or compute a wrong result depending on their neighbours' shapes):
    an outcome that is as expected for any of them is."""

    options: tuple  # of Expected
    works: bool = False

    def describe(self):
        return " or ".join(option.describe() for option in self.options)


def any_of(*options):
    return AnyOf(tuple(options))


def classify(expected: "Expected | AnyOf | None", outcome: Outcome) -> Verdict:
    """The verdict for `outcome` given `expected` (None when nothing was measured).

    A finished run counts as working only when it matches the flat-vector reference; one that
    reaches the optimum along another path is a wrong result (`_jax._run` marks it so). A
    finished run the reference could not judge (it raised) is judged by convergence on the
    built-in problem, whose optimum is known, and is UNKNOWN anywhere else."""
    if outcome.status == "crash":
        return Verdict.CRASH
    if outcome.status == "timeout":
        return Verdict.TIMEOUT
    if expected is None:
        return Verdict.UNKNOWN
    if isinstance(expected, AnyOf):
        verdicts = [classify(option, outcome) for option in expected.options]
        return next((v for v in verdicts if v in AS_EXPECTED), verdicts[0])
    status = outcome.status
    if status == "wrong_result":
        return Verdict.REPRODUCED if not expected.works and expected.status in ("wrong_result", None) else Verdict.WRONG_RESULT
    finished = status in ("converged", "not_converged")
    if finished and outcome.unjudged():
        if expected.works and expected.optimum_known:
            return Verdict.WORKAROUND_OK if status == "converged" else Verdict.REGRESSION
        return Verdict.UNKNOWN
    if expected.status == "not_converged":
        return {"not_converged": Verdict.REPRODUCED, "converged": Verdict.FIXED_UPSTREAM}.get(status, Verdict.CHANGED)
    if expected.works:
        reached = status == "converged" or not expected.optimum_known
        return Verdict.WORKAROUND_OK if finished and reached else Verdict.REGRESSION
    if finished:
        return Verdict.FIXED_UPSTREAM
    raised_as_expected = expected.status in ("error", None) and expected.matches_failure(outcome)
    return Verdict.REPRODUCED if raised_as_expected else Verdict.CHANGED
