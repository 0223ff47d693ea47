"""Inline questions whose answers are checked (every lesson): a prediction, a number, a choice or a short expression
the learner works out before the lesson shows it.

A question is an exercise like any other – a small function the learner writes, checked with
``name = check("NN.name", name)`` and graded by the grader – so stubs, stand-ins, hidden cases, mutation tests and
reports need nothing new. Two things differ from a function exercise, and this module provides them:

* :class:`AnswerCompare` never prints the expected answer: a wrong prediction gets "not this one" and the check's
  hint (what to think about), not the value to copy. A number that is off is said to be too high or too low only
  when ``direction=True``.
* :class:`Choice` answers (``"a"``, ``"b"`` …, or words such as ``"positive"``) are compared as stripped, case-blind
  strings, and an answer that is not one of the choices says which ones there are.

Where the question has numbers in it ("how many bytes does the fused kernel save at C = 3?"), write the question as a
function of those numbers (``fused_saving(C, H, W, element_size)``): the visible case asks the lesson's numbers and
the grader's hidden cases ask others, so a copied constant does not score.

>>> compare = AnswerCompare(atol=0.5)
>>> compare(12, 12.2, None)
(True, 0.1999999999999993, '')
>>> compare(12, 20, None)[2]
'not this one (the check does not show the answer: look again at the hint)'
>>> Choice("positive", "negative", "zero")("negative", " Negative ", None)
(True, 0.0, '')
>>> Choice("a", "b")("a", "c", None)[2]
"'c' is not one of the choices: 'a', 'b'"
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .comparison import compare

__all__ = ["AnswerCompare", "Choice", "NOT_THIS_ONE"]

# compare()'s messages about the form of an answer, which give nothing of its value away
_FORM_MESSAGES = ("expected shape", "expected dtype", "expected a torch.Tensor", "expected a numpy array",
                  "expected a sequence of", "expected a number", "expected a Python")
NOT_THIS_ONE = "not this one (the check does not show the answer: look again at the hint)"


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a plain number or a one-element tensor/array; ``None`` otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.number)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 or isinstance(value, np.ndarray) and value.size == 1:
        return float(value.item())
    return None


@dataclass(frozen=True)
class AnswerCompare:
    """Compare a question's answer with the reference's without revealing it (module-level class: it pickles).

    Numbers (one or a tuple of them, or a tensor) are compared within ``atol + rtol·|expected|``; anything else
    must be equal. ``direction=True`` adds "too high" / "too low" for a single number.
    """

    rtol: float = 0.0
    atol: float = 0.0
    direction: bool = False

    def __call__(self, expected: Any, actual: Any, case: Any) -> tuple[bool, float, str]:
        want, got = _number(expected), _number(actual)
        if want is not None:
            if got is None:
                shown = f"{type(actual).__name__} {actual!r}"[:80]
                return False, float("inf"), f"expected a number, got {shown}"
            if math.isnan(got):
                return False, float("inf"), "the answer is NaN"
            error = abs(got - want)
            if error <= self.atol + self.rtol * abs(want):
                return True, error, ""
            if self.direction:
                return False, error, f"{NOT_THIS_ONE}; yours is too {'high' if got > want else 'low'}"
            return False, error, NOT_THIS_ONE
        ok, error, message = compare(expected, actual, self.rtol, self.atol)
        if ok or message.startswith(_FORM_MESSAGES):
            return ok, error, message  # a wrong form (type, shape, dtype, length) may be said; a wrong value not
        return False, error, NOT_THIS_ONE


@dataclass(frozen=True, init=False)
class Choice:
    """Compare a multiple-choice answer: one of ``choices`` (strings), compared stripped and case-blind."""

    choices: tuple[str, ...]

    def __init__(self, *choices: str) -> None:
        object.__setattr__(self, "choices", tuple(choices))

    @staticmethod
    def _normal(value: Any) -> str | None:
        return value.strip().lower() if isinstance(value, str) else None

    def __call__(self, expected: Any, actual: Any, case: Any) -> tuple[bool, float, str]:
        answer = self._normal(actual)
        allowed = [self._normal(c) for c in self.choices]
        listed = ", ".join(repr(c) for c in self.choices)
        if answer is None:
            return False, float("inf"), f"expected one of the choices as a string ({listed}), got {type(actual).__name__}"
        if answer not in allowed:
            return False, float("inf"), f"{actual!r} is not one of the choices: {listed}"
        ok = answer == self._normal(expected)
        return ok, 0.0 if ok else 1.0, "" if ok else NOT_THIS_ONE
