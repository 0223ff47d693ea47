"""Exercise checks for the notebooks: ``check("02.bilinear_sample", bilinear_sample)``.

``check`` runs your function on fresh random inputs (several shapes, edge cases such as 1-pixel images, both
``align_corners`` conventions…) against the package's tested reference, prints a clear verdict – the worst error,
the failing case and a hint – and raises :class:`CheckFailed` when something is off, so a notebook run stops at the
first wrong exercise. Each call uses a new seed; the message prints it so you can reproduce a failure with
``check(id, fn, seed=...)``.
"""
from __future__ import annotations

import secrets
from typing import Any, Callable

from .registry import Case, Check, CheckResult, all_checks, compare, get, register, run_check

__all__ = ["check", "CheckFailed", "format_result", "Case", "Check", "register", "get", "all_checks", "run_check",
           "compare"]


class CheckFailed(AssertionError):
    """Raised by :func:`check` when an exercise does not match the reference yet."""

    def _render_traceback_(self) -> list[str]:  # IPython shows just the feedback, not a traceback
        return [str(self)]


def format_result(result: CheckResult) -> str:
    """Human-readable feedback for one check."""
    check = result.check
    title = f"[{check.id}] {check.title}".rstrip()
    if result.passed:
        return (f"✅ {title}: passed {len(result.results)} cases "
                f"(worst error {result.worst_error:.2g}, seed {result.seed}).")
    failure = result.first_failure
    assert failure is not None
    lines = [
        f"❌ {title}: failed on case {len(result.results)}: {failure.case.description}",
        f"   {failure.message}",
        f"   Hint: {check.hint}",
        f"   Reproduce with check({check.id!r}, your_function, seed={result.seed}).",
    ]
    return "\n".join(lines)


def check(check_id: str, fn: Callable[..., Any], seed: int | None = None, quiet: bool = False) -> CheckResult:
    """Check an exercise: run ``fn`` against the reference on the visible cases of ``check_id``.

    Prints the verdict and returns the :class:`CheckResult`; raises :class:`CheckFailed` if any case fails.
    """
    spec = get(check_id)
    if spec.hidden:
        raise KeyError(f"{check_id!r} is a hidden check, run only by the grader")
    seed = secrets.randbelow(2**31) if seed is None else seed
    result = run_check(spec, fn, seed)
    message = format_result(result)
    if not result.passed:
        raise CheckFailed(message)
    if not quiet:
        print(message)
    return result
