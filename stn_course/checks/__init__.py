"""Exercise checks for the notebooks of every lesson: ``check("02.bilinear_sample", bilinear_sample)``.

``check`` runs your function on fresh random inputs (several shapes, edge cases such as 1-pixel images, both
``align_corners`` conventions…) against the package's tested reference, prints a clear verdict – the worst error,
the failing case, what property failed (dtype, shape, an input modified, a gradient missing or wrong at the kinks…:
:mod:`.properties`) and a hint (the check's hint; its step-by-step recipe only on request, ``check(..., recipe=True)``,
or from the third failed try) – and raises
:class:`CheckFailed` when something is off, so a notebook run stops at the first *wrong* exercise. Each call uses a new seed; the message
prints it so you can reproduce a failure with ``check(id, fn, seed=...)``.

An exercise you have not started (its stub still raises ``NotImplementedError``) does not stop the run: ``check``
says "not implemented yet" and returns a stand-in that runs the package's reference, fetched from this registry,
so the cells below – figures, Verify, Explore – still run. The lessons therefore write
``name = check("NN.name", name)``: a passing function is returned unchanged. :func:`status` says which it was.

**Strict mode** (``check(..., strict=True)``, and always while nbgrader grades: it sets ``NBGRADER_EXECUTION``): an
exercise not started raises :class:`CheckFailed` too, so nbgrader's test cell scores 0 instead of passing on the
stand-in. Before raising, a strict check points the notebook's name for the function at the stand-in, so the cells
below – and later exercises that build on this one – run on the reference: a wrong answer costs its own exercise
only (docs/grading.md, "nbgrader").
"""
from __future__ import annotations

import functools
import os
import secrets
import sys
from typing import Any, Callable

from .registry import MISSING, Case, CaseResult, Check, CheckResult, all_checks, compare, get, register, run_check

__all__ = ["check", "status", "strict_mode", "STRICT_ENV", "CheckFailed", "format_result", "hints", "Case", "Check", "register", "get",
           "all_checks", "run_check", "compare"]

_STATUS: dict[str, str] = {}
_FAILURES: dict[str, int] = {}  # failed attempts per check in this session: the hint stage
RECIPE_STAGE = 3  # the failed try from which the recipe is shown unasked
STRICT_ENV = "NBGRADER_EXECUTION"  # nbgrader sets it while autograding ("autograde") and validating ("validate")


class CheckFailed(AssertionError):
    """Raised by :func:`check` when an exercise does not match the reference yet."""

    def _render_traceback_(self) -> list[str]:  # IPython shows just the feedback, not a traceback
        return [str(self)]


def hints(result: CheckResult, stage: int, recipe: bool = False) -> list[str]:
    """The hint lines for a failed ``result`` at ``stage`` (the how-many-th failed try): the check's hint, and its
    recipe from stage :data:`RECIPE_STAGE` on or when ``recipe=True``.

    When the failure shows a broken property (its diagnosis is then the failure's message, :mod:`.properties`),
    the case's own hint is left out – it is about the case, and may be about something else; otherwise a hint about
    the failing case comes first. Before the recipe stage no formula is given, so a learner who has only just
    tried gets something to think about rather than the answer; a question (:mod:`.questions`) does not even
    advertise its recipe then, since its recipe is the answer.
    """
    check, failure = result.check, result.first_failure
    lines = []
    if failure is not None and failure.property:
        lines.append(f"   What failed: {failure.property}.")
    elif failure is not None and failure.case.hint:
        lines.append(f"   Hint for this case: {failure.case.hint}")
    if check.hint:
        lines.append(f"   Hint: {check.hint}")
    if not check.recipe:
        return lines
    if recipe or stage >= RECIPE_STAGE:
        lines.append(f"   Recipe: {check.recipe}")
    elif not _is_question(check):  # a question's recipe is its answer: it is not advertised after one try
        lines.append(f"   (A step-by-step recipe: check({check.id!r}, your_function, recipe=True).)")
    return lines


def _is_question(check: Check) -> bool:
    """Whether ``check`` is an inline question (:mod:`.questions`): its answer is worked out, not built."""
    from .questions import AnswerCompare, Choice

    return isinstance(check.compare, (AnswerCompare, Choice))


def _diagnosis(failure: CaseResult) -> str:
    """The failure's message, with the diagnosis of the property it shows when the message does not say it."""
    from .properties import DIAGNOSES

    diagnosis = DIAGNOSES.get(failure.property, "")
    if not diagnosis or diagnosis in failure.message:
        return failure.message
    return f"{failure.message}\n   Why: {diagnosis}"


def _note(check: Check) -> str:
    """What the worst error measures, when the check says (``Check.error_note``), as ``" – …"``."""
    return f" – {check.error_note}" if getattr(check, "error_note", "") else ""


def format_result(result: CheckResult, stage: int = 1, recipe: bool = False) -> str:
    """Human-readable feedback for one check; ``stage`` and ``recipe`` pick how much of the hint to give
    (see :func:`hints`)."""
    check = result.check
    title = f"[{check.id}] {check.title}".rstrip()
    if result.passed:
        return (f"✅ {title}: passed {len(result.results)} cases "
                f"(worst error {result.worst_error:.2g}{_note(check)}, seed {result.seed}).")
    failure = result.first_failure
    assert failure is not None
    lines = [
        f"❌ {title}: failed on case {len(result.results)}: {failure.case.description}",
        f"   {_diagnosis(failure)}",
        *hints(result, stage, recipe),
        f"   Reproduce with check({check.id!r}, your_function, seed={result.seed}).",
    ]
    return "\n".join(lines)


def _not_implemented(result: CheckResult) -> bool:
    return result.status == MISSING


def _stand_in(spec: Check, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A function that runs the registered reference in place of the learner's unfinished ``fn``."""
    reference = spec.reference

    @functools.wraps(fn)
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        return reference(*args, **kwargs)

    stand_in.__stn_course_stand_in__ = spec.id  # type: ignore[attr-defined]
    return stand_in


def strict_mode(strict: bool | None = None) -> bool:
    """Whether :func:`check` is strict: ``strict`` when given, else whether nbgrader is grading (:data:`STRICT_ENV`)."""
    return bool(os.environ.get(STRICT_ENV)) if strict is None else bool(strict)


def _fall_back(namespace: dict, fn: Callable[..., Any], stand_in: Callable[..., Any]) -> None:
    """Rebind every name of ``namespace`` (the calling notebook's globals) that holds ``fn`` to ``stand_in``."""
    for name, value in list(namespace.items()):
        if value is fn:
            namespace[name] = stand_in


def status(check_id: str) -> str | None:
    """``"passed"``, ``"not implemented"`` or ``None`` (not checked yet in this session) for ``check_id``."""
    return _STATUS.get(check_id)


def check(check_id: str, fn: Callable[..., Any], seed: int | None = None, quiet: bool = False,
          recipe: bool = False, strict: bool | None = None) -> Callable[..., Any]:
    """Check an exercise: run ``fn`` against the reference on the visible cases of ``check_id``.

    Passed: prints the verdict and returns ``fn`` itself. Wrong: raises :class:`CheckFailed` with the feedback, so
    a notebook run stops there; a failure names the property that failed and gives the check's hint, and its
    step-by-step recipe with ``recipe=True`` or from the third failed try of this check. Not started
    (``NotImplementedError``): prints "not implemented yet" and returns a stand-in running the package's reference,
    so the rest of the lesson still runs; write
    ``name = check("NN.name", name)`` to use whichever applies. Strict (``strict=True``, or ``None`` while nbgrader
    grades: :func:`strict_mode`): not started raises :class:`CheckFailed` as well, and a failure first rebinds the
    caller's names for ``fn`` to the stand-in, so that only this exercise is lost.
    """
    spec = get(check_id)
    if spec.hidden:
        raise KeyError(f"{check_id!r} is a hidden check, run only by the grader")
    seed = secrets.randbelow(2**31) if seed is None else seed
    result = run_check(spec, fn, seed)
    if strict_mode(strict) and not result.passed:
        _STATUS.pop(check_id, None)
        _fall_back(sys._getframe(1).f_globals, fn, _stand_in(spec, fn))
        label = f"[{check_id}] {spec.title}".rstrip()
        if _not_implemented(result):
            raise CheckFailed(f"⏳ {label}: not implemented yet – graded strictly, this exercise scores 0 (the "
                              "cells below use the package's reference).")
        _FAILURES[check_id] = _FAILURES.get(check_id, 0) + 1
        raise CheckFailed(format_result(result, stage=_FAILURES[check_id], recipe=recipe))
    if _not_implemented(result):
        _STATUS[check_id] = "not implemented"
        label = f"[{check_id}] {spec.title}".rstrip()  # as format_result names a check
        print(f"⏳ {label}: not implemented yet – the cells below use the package's reference until you write it.")
        return _stand_in(spec, fn)
    if not result.passed:
        _STATUS.pop(check_id, None)
        _FAILURES[check_id] = _FAILURES.get(check_id, 0) + 1
        raise CheckFailed(format_result(result, stage=_FAILURES[check_id], recipe=recipe))  # shown once, by IPython
    message = format_result(result)
    _STATUS[check_id] = "passed"
    if not quiet:
        print(message)
    return fn
