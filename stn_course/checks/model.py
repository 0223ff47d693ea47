"""What a check *is*, as data (every lesson): :class:`Case`, :class:`Check`, the verdicts :class:`CaseResult` and
:class:`CheckResult`, and the one vocabulary of statuses and exceptions that the notebooks' ``check()``, the
grader and its reports share.

Nothing here runs anything: :mod:`.running` runs a check, :mod:`.catalog` keeps the registered ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

__all__ = ["PASSED", "FAILED", "ERROR", "TIMED_OUT", "MISSING", "BANNED", "STATUSES", "BannedCall", "CallTimeout",
           "LearnerError", "Case", "Check", "CaseResult", "CheckResult"]

# What happened to one case (and, for the grader, to a whole exercise): one vocabulary everywhere.
PASSED, FAILED, ERROR, TIMED_OUT, MISSING, BANNED = "passed", "failed", "error", "timed out", "missing", "banned call"
STATUSES = (PASSED, FAILED, ERROR, TIMED_OUT, MISSING, BANNED)


class BannedCall(Exception):
    """The learner's function called what the exercise asks them to write (the package's version or torch's)."""


class CallTimeout(Exception):
    """The learner's function ran past its time limit (raised by the grader's :class:`~.running.Attempt`)."""


class LearnerError(Exception):
    """An exception the learner's code raised in another process, by type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message = type_name, message


@dataclass
class Case:
    """One call of the exercise: ``fn(*args, **kwargs)``, described in words for feedback.

    ``compare_gradients=False`` marks a case whose points sit on kinks (pixel centres, the border), where any
    one-sided derivative is a correct gradient: its values are compared, its gradients are not.
    ``hint`` is a hint about *this* case (a reflection case gets a reflection hint), shown before the check's own
    unless a failed property (:mod:`.properties`) explains the failure better.
    ``kink=True`` marks a case whose points sit exactly on the kinks on purpose (identity grids, integer pixel
    coordinates, points on the border), compared with ATen's convention there: a failure on it is diagnosed as
    "gradient at the kinks".
    ``within`` (a module-level function returning a context manager, so that a case still pickles) is entered
    around every call of a function on this case: lesson 7's kernel cases run in
    :func:`stn_course.gpu.bounds.checked_memory`, so that a store without ``mask=`` fails clearly instead of
    corrupting the process.
    """

    description: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    compare_gradients: bool = True
    hint: str = ""
    kink: bool = False
    within: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Check:
    """An exercise check, as data.

    ``cases(rng)`` yields :class:`Case` objects from a seeded ``numpy.random.Generator`` (edge cases first).
    ``compare(expected, actual, case)`` returns ``(ok, worst_error, message)``; the default compares tensors, arrays,
    numbers and tuples of them with ``rtol``/``atol``. ``hidden`` checks run only in the grader.
    Feedback comes in stages: ``hint`` (shown from the first failure: what to think about, no formula) and
    ``recipe`` (shown from the next failure: step by step); a failing case's own :attr:`Case.hint` comes first.
    ``grad_args`` (positions of tensor arguments, or names of keyword ones) makes the check compare gradients too,
    wherever the lesson states a gradient requirement: the learner's result must stay connected to those inputs,
    and the gradients of a fixed random weighting of its outputs must match the reference's, finite where the
    reference's are
    (:func:`~.running.compare_gradients`). ``forbidden`` names the functions that *are* the exercise (the package's
    own version, or torch's): a learner's function that calls one fails before any case runs
    (:func:`~stn_course.checks.shortcuts.find_shortcut`); the grader also bans them while the learner's function
    runs. ``function`` is the name the lesson's exercise defines (default: the id after the lesson number).
    ``hidden_cases(rng)`` yields the cases only the grader runs (larger and non-square sizes, float64, batch > 1,
    points far outside, 1-pixel sides…), from the instructor's secret seed. ``builds_on`` lists the check ids of the
    lesson's exercises this one calls by their lesson names (as the solution does): while the grader calls this
    exercise, those names are the registry's references (so a mistake there costs one exercise), and no other.
    ``properties`` (:class:`~.properties.Property`) are probed on every case whose values passed, by running the
    learner's function once more in this process (``KEEPS_INPUTS``, ``HAND_DERIVED_BACKWARD`` …).
    ``error_note`` says what the reported worst error measures when ``compare`` returns something other than an
    absolute difference (printed after the number; empty: nothing is added).
    """

    id: str
    reference: Callable[..., Any]
    cases: Callable[[np.random.Generator], Iterable[Case]]
    hint: str = ""
    recipe: str = ""
    forbidden: tuple[str, ...] = ()
    points: float = 1.0
    rtol: float = 1e-5
    atol: float = 1e-5
    hidden: bool = False
    title: str = ""
    compare: Callable[[Any, Any, Case], tuple[bool, float, str]] | None = None
    grad_args: tuple[int | str, ...] = ()
    function: str = ""
    hidden_cases: Callable[[np.random.Generator], Iterable[Case]] | None = None
    builds_on: tuple[str, ...] = ()
    properties: tuple[Any, ...] = ()
    error_note: str = ""

    @property
    def function_name(self) -> str:
        """The name of the learner's function in the lesson: ``function`` or the id's part after ``NN.``."""
        return self.function or self.id.split(".", 1)[1]

    @property
    def lesson(self) -> str:
        """The lesson number, ``"02"`` for ``"02.bilinear_sample"``."""
        return self.id.split(".", 1)[0]


@dataclass
class CaseResult:
    """The verdict on one case: ``status`` is one of :data:`STATUSES`; ``error`` the worst absolute error;
    ``property`` the property that failed (:mod:`.properties`: ``"dtype"``, ``"input modified"`` …) or ``""``."""

    case: Case
    passed: bool
    error: float
    message: str
    status: str = ""
    property: str = ""

    def __post_init__(self) -> None:
        self.status = self.status or (PASSED if self.passed else FAILED)


@dataclass
class CheckResult:
    """The verdicts on the cases of one run of a check (``planned``: how many cases there were – a run stops
    early on a banned call or a timeout)."""

    check: Check
    seed: int
    results: list[CaseResult]
    planned: int = 0

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def worst_error(self) -> float:
        return max((r.error for r in self.results), default=0.0)

    @property
    def first_failure(self) -> CaseResult | None:
        return next((r for r in self.results if not r.passed), None)

    @property
    def status(self) -> str:
        """``"passed"``, or the status of the first failing case (``"missing"`` for a stub, ``"banned call"``…)."""
        failure = self.first_failure
        return PASSED if failure is None and self.results else (failure.status if failure else MISSING)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return f"<CheckResult {self.check.id}: {verdict} {len(self.results)} cases, seed {self.seed}>"
