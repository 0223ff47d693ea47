"""Time limits inside the sandboxed child, in CPU time (classroom grading).

A cell or a graded call may use ``seconds`` of CPU time (``ITIMER_PROF``: every thread of the process, user and
system), so the same submission gets the same verdict on a quiet machine and on a loaded one. Sleeping or waiting
costs no CPU time: the grader keeps a wall-clock backstop (:func:`wall_backstop`) and kills a copy that passes it.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

__all__ = ["TimeLimit", "cpu_limit", "wall_backstop"]


class TimeLimit(BaseException):
    """The CPU-time limit of a cell or a call passed (raised in the child by SIGPROF)."""


def wall_backstop(cpu_seconds: float) -> float:
    """The wall-clock seconds the grader waits for ``cpu_seconds`` of CPU work before it kills the copy: twice the
    limit plus 5 s, so that a loaded machine (two busy processes per core) never decides a score, while code that
    only sleeps or waits is stopped soon after."""
    return 2.0 * float(cpu_seconds) + 5.0


@contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TimeLimit` in the code inside once this process has used ``seconds`` more CPU time."""

    def expire(signum, frame):
        raise TimeLimit(f"timed out after {seconds:g} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, max(float(seconds), 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
