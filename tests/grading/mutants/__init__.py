"""The planted student bugs of the grader's mutation suite, one module per lesson (``lessonNN.MUTANTS``).

Each ``Mutant`` patches the lesson's solution notebook (``find`` -> ``replace``) and must lose points on ``target``
and only there (``tests/grading/test_mutations.py``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    target: str  # the check id it must fail
    kind: str  # value, convention, gradient, nan-gradient, banned, hidden-shortcut, type, memory
    find: str
    replace: str


def all_mutants(lessons: list[str]) -> list[Mutant]:
    """Every lesson's mutants, in lesson order."""
    return [m for lesson in lessons for m in importlib.import_module(f"{__name__}.lesson{lesson}").MUTANTS]
