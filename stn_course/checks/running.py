"""Running a check (every lesson): :func:`run_check` builds the cases, runs the reference first on its own copy of
the inputs, runs the learner's function on another copy, and compares the two itself, outside the learner's reach.

Three users share it: ``check(id, fn)`` in the notebooks (visible cases), the classroom grader (visible + hidden
cases, with the learner's function in a sandboxed process: :class:`Attempt` is how :func:`run_check` reaches it)
and the mutation tests (known bugs must fail).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import torch

from .calls import argument, argument_name, call_case, gradients_of, iter_cases
from .comparison import compare, plain
from .model import (BANNED, ERROR, FAILED, MISSING, PASSED, TIMED_OUT, BannedCall, CallTimeout, Case, CaseResult,
                    Check, CheckResult, LearnerError)
from .properties import diagnose, probe
from .shortcuts import find_shortcut

__all__ = ["Attempt", "run_check", "compare_gradients", "unwrap_kernel_error"]


def unwrap_kernel_error(exc: BaseException) -> BaseException:
    """The learner's own exception behind Triton's interpreter wrapper: a kernel run by ``TRITON_INTERPRET=1``
    re-raises whatever its body raised as an ``InterpreterError`` – a stub's ``NotImplementedError`` too (lesson 7).
    """
    cause = exc.__cause__
    if type(exc).__name__ == "InterpreterError" and isinstance(cause, Exception):
        return cause
    return exc


class Attempt:
    """How :func:`run_check` reaches the learner's function: here, a function of this process.

    The grader subclasses it to reach a function in a sandboxed process instead (same three questions, asked
    across a process boundary). ``call`` runs one case and returns what the function returned; ``gradients``
    returns the gradients of a fixed weighting of the outputs w.r.t. the arguments at ``positions`` (or a message
    saying why there are none); ``shortcut`` names a forbidden function the learner's calls, if any.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def shortcut(self, forbidden: tuple[str, ...]) -> str | None:
        return find_shortcut(self.fn, forbidden)

    def call(self, case: Case) -> Any:
        return call_case(self.fn, case)

    def gradients(self, case: Case, positions: tuple[int, ...]) -> list[torch.Tensor | None] | str:
        return gradients_of(self.fn, case, positions)

    def local_function(self) -> Callable[..., Any] | None:
        """The learner's function when it runs in this process (then :attr:`Check.properties` are probed), else
        ``None`` (the grader's function lives in a sandbox)."""
        return self.fn if type(self) is Attempt else None


def compare_gradients(check: Check, attempt: Attempt | Callable[..., Any], case: Case) -> tuple[bool, float, str]:
    """The learner's gradients against the reference's for ``case`` (see :attr:`Check.grad_args`)."""
    attempt = attempt if isinstance(attempt, Attempt) else Attempt(attempt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = gradients_of(check.reference, case, check.grad_args)
    actual = attempt.gradients(case, check.grad_args)
    if isinstance(expected, str):
        raise RuntimeError(f"{check.id}: the reference itself has no gradient ({expected})")
    if isinstance(actual, str):
        return False, float("inf"), actual
    if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
        return False, float("inf"), "the gradients could not be computed"
    worst = 0.0
    for position, e, a in zip(check.grad_args, expected, plain(list(actual))):
        e, name = (torch.zeros_like(argument(case, position)) if e is None else e), argument_name(position)
        if a is None:
            if e.abs().max() > 0:
                return False, float("inf"), f"no gradient reaches {name}: it is not used, or detached"
            continue
        if not isinstance(a, torch.Tensor):
            return False, float("inf"), f"the gradient w.r.t. {name} is not a tensor"
        if bool(torch.isfinite(e).all()) and not bool(torch.isfinite(a).all()):
            return False, float("inf"), (f"the gradient w.r.t. {name} has NaN or inf where the "
                                         "reference's is finite")
        ok, err, msg = compare(e, a, max(check.rtol, 1e-6), max(check.atol, 1e-6))
        worst = max(worst, err)
        if not ok:
            return False, err, f"the gradient w.r.t. {name} is wrong: {msg}"
    return True, worst, ""


def _raised(exc: BaseException) -> str:
    if isinstance(exc, LearnerError):
        message = exc.message.removeprefix(f"{exc.type_name}: ")
        return f"raised {exc.type_name}: {message}"
    if isinstance(exc, SystemExit):
        return f"raised SystemExit({exc.code!r}): a function must return its result, not end the program"
    return f"raised {type(exc).__name__}: {exc}"


def _compare_case(check: Check, expected: Any, actual: Any, case: Case) -> tuple[bool, float, str]:
    try:
        actual = plain(actual)
        if check.compare is not None:
            return check.compare(expected, actual, case)
        return compare(expected, actual, check.rtol, check.atol)
    except Exception as exc:  # noqa: BLE001 – an object that breaks the comparison is a wrong answer, not a crash
        return False, float("inf"), f"the result could not be compared ({type(exc).__name__}: {exc}); return " \
                                    "plain tensors, arrays or numbers"


def _banned_before_running(check: Check, attempt: Attempt, seed: int, planned: int) -> CheckResult | None:
    """The verdict on a function that refers to a forbidden one (read from its code), or ``None``."""
    try:
        shortcut = attempt.shortcut(check.forbidden)
    except BannedCall as exc:
        shortcut = str(exc)
    if shortcut is None:
        return None
    case = Case("reading your function's code before running it")
    return CheckResult(check, seed, [CaseResult(case, False, float("inf"), (
        f"your function uses {shortcut}, which is what this exercise asks you to write – write it with the "
        "lesson's building blocks instead"), BANNED)], planned)


def _with_gradients(check: Check, attempt: Attempt, case: Case, err: float) -> CaseResult:
    """The verdict on a case whose values passed, once its gradients are compared too."""
    try:
        ok, grad_err, msg = compare_gradients(check, attempt, case)
        status = PASSED if ok else FAILED
    except (BannedCall, CallTimeout) as exc:
        ok, grad_err, status = False, float("inf"), BANNED if isinstance(exc, BannedCall) else TIMED_OUT
        msg = (f"this exercise asks you to write it yourself: your function called {exc}"
               if status == BANNED else str(exc))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 – the learner's backward failed
        ok, grad_err, msg, status = False, float("inf"), f"backward {_raised(exc)}", ERROR
    return CaseResult(case, ok, max(err, grad_err), msg, status)


def _with_properties(check: Check, attempt: Attempt, result: CaseResult) -> CaseResult:
    """The verdict on a case whose values (and gradients) passed, once :attr:`Check.properties` are probed (only
    for a function of this process)."""
    fn = attempt.local_function()
    if fn is None:
        return result
    try:
        broken = probe(check.properties, fn, result.case)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 – it ran once already; a probe that fails tells nothing new
        return result
    if broken is None:
        return result
    name, message = broken
    return CaseResult(result.case, False, result.error, message, FAILED, name)


def run_check(check: Check, fn: Callable[..., Any] | Attempt, seed: int = 0, stop_at_first_failure: bool = True,
              hidden: bool = False) -> CheckResult:
    """Run the learner's function on every case of ``check`` (the hidden ones with ``hidden=True``) and compare
    with the reference. ``fn`` is the function itself or an :class:`Attempt` (the grader's reaches another
    process). Never raises for a wrong function: whatever it does becomes a :class:`CaseResult` with a status."""
    attempt = fn if isinstance(fn, Attempt) else Attempt(fn)
    results: list[CaseResult] = []
    cases = list(iter_cases(check, seed, hidden))
    if check.forbidden:
        banned = _banned_before_running(check, attempt, seed, len(cases))
        if banned is not None:
            return banned
    for case in cases:
        with warnings.catch_warnings():  # the edge cases are deliberate: torch's warnings about them are not news
            warnings.simplefilter("ignore", UserWarning)
            expected = call_case(check.reference, case)
        try:
            try:
                actual = attempt.call(case)
            except Exception as exc:
                raise unwrap_kernel_error(exc) from None
        except NotImplementedError:
            results.append(CaseResult(case, False, float("inf"),
                                      "not implemented yet (the stub raises NotImplementedError)", MISSING))
            break
        except BannedCall as exc:
            results.append(CaseResult(case, False, float("inf"), (
                f"this exercise asks you to write it yourself: your function called {exc}"), BANNED))
            break
        except CallTimeout as exc:
            results.append(CaseResult(case, False, float("inf"), str(exc), TIMED_OUT))
            break
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 – the learner's code failed (SystemExit too): feedback, not a crash
            results.append(CaseResult(case, False, float("inf"), _raised(exc), ERROR))
        else:
            ok, err, msg = _compare_case(check, expected, actual, case)
            result = CaseResult(case, ok, err, msg, PASSED if ok else FAILED)
            if ok and check.grad_args and case.compare_gradients:
                result = _with_gradients(check, attempt, case, err)
            if result.passed and check.properties:
                result = _with_properties(check, attempt, result)
            if not result.passed and not result.property:
                result.property = diagnose(case, result.message, result.error)
            results.append(result)
            if result.status in (BANNED, TIMED_OUT):
                break
        if stop_at_first_failure and not results[-1].passed:
            break
    return CheckResult(check, seed, results, len(cases))
