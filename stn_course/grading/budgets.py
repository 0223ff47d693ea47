"""The time budgets of a grading run, so that a run fits a host's limit (Gradescope: 10 minutes) and one loop costs
its exercise, not the run (classroom grading).

Four budgets nest, each with feedback that says which one ran out:

- a **cell** may use ``Limits.cell_timeout_s`` CPU seconds (never more than an exercise's ``timeout_s``);
- **all cells** of a notebook together ``Limits.cells_s`` CPU seconds: after that each further cell still runs –
  it may define a function an exercise needs – with :data:`CELL_FLOOR_S` only, and so does every cell once the
  submission's wall-clock time left is less than :data:`EXERCISES_SHARE` of it (a loaded machine turns CPU seconds
  into more wall-clock seconds; the exercises keep their time);
- an **exercise** (all its calls, visible and hidden) ``Limits.timeout_s`` CPU seconds; an exercise whose visible
  part timed out does not run its hidden part (those cases score 0);
- a **submission** ``Limits.submission_budget_s`` wall seconds, and the whole **run** ``Limits.run_s`` wall seconds
  (Gradescope grades one student's notebooks in one run): what is left after either is "not run".
"""
from __future__ import annotations

import math
import time

__all__ = ["CELL_FLOOR_S", "EXERCISES_SHARE", "CellBudget", "Deadline"]

CELL_FLOOR_S = 2.0  # CPU seconds a cell still gets once the notebook's cells have used up their total
EXERCISES_SHARE = 0.5  # of a submission's wall-clock time, kept for its exercises: cells past it get the floor


class CellBudget:
    """The CPU seconds of a notebook's cells: ``per_cell`` each, ``total`` together, then :data:`CELL_FLOOR_S`."""

    def __init__(self, per_cell: float, total: float) -> None:
        if not (per_cell > 0 and total > 0):
            raise ValueError(f"cell budgets must be > 0 seconds, got per_cell={per_cell!r}, total={total!r}")
        self.per_cell, self.total, self.used = float(per_cell), float(total), 0.0
        self.why_short = ""  # why the last limit was below per_cell

    def limit(self, wall_left: float = math.inf, wall_total: float = math.inf) -> float:
        """The CPU seconds the next cell may use, given the submission's wall-clock seconds left of its total."""
        limit = min(self.per_cell, max(self.total - self.used, CELL_FLOOR_S))
        self.why_short = (f"the notebook's cells had used up their {self.total:g} s together"
                          if limit < self.per_cell else "")
        if wall_left < wall_total * EXERCISES_SHARE and limit > CELL_FLOOR_S:
            limit, self.why_short = CELL_FLOOR_S, "the submission's remaining time is kept for its exercises"
        return limit

    def spend(self, seconds: float) -> None:
        self.used += max(float(seconds), 0.0)

    def timed_out(self, limit: float) -> str:
        """Feedback for a cell that ran past ``limit`` (the value :meth:`limit` gave it last)."""
        text = f"timed out after {limit:g} s of CPU time"
        return f"{text} ({self.why_short})" if self.why_short and limit < self.per_cell else text


class Deadline:
    """A wall-clock deadline (``time.monotonic``) and what to call it in feedback."""

    def __init__(self, seconds: float | None, what: str, start: float | None = None) -> None:
        self.seconds, self.what = seconds, what
        begin = time.monotonic() if start is None else start
        self.at = begin + float(seconds) if seconds else float("inf")

    def left(self) -> float:
        return self.at - time.monotonic()

    @property
    def reason(self) -> str:
        return f"{self.what} used up its {self.seconds:g} s"

    @staticmethod
    def first(*deadlines: "Deadline") -> "Deadline":
        """The deadline that comes first."""
        return min(deadlines, key=lambda d: d.at)
