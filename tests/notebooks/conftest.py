"""Shared helpers for the notebook tests: execute a notebook with nbclient and time it.

A lesson's solution and its fresh stub run the same cells (the stub on the package's reference), so the tests run
the two **at once**, each kernel on one thread of the machine's two cores (:data:`KERNEL_ENV`): the same per-cell
times as one kernel alone on one thread, in about half the wall time (:func:`start`, :func:`executed`).
"""
from __future__ import annotations

import datetime
import os
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import nbformat
import pytest
from nbclient import NotebookClient

from stn_course import course

# The course the tests run: this repository, or the folder STN_COURSE_ROOT names (a throw-away course in
# tests/test_course.py); its lessons come from stn_course.course, never from a list here.
ROOT = course.course_root() or Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
LESSONS = ROOT / "lessons"
SOURCES = SOLUTIONS / "src"
DURATIONS: dict[str, float] = {}
LONGEST_CELL: dict[str, tuple[int, float]] = {}  # each run's longest cell: (index, wall seconds)


def budget(path: Path) -> int:
    """The seconds ``path``'s lesson promises for its whole FAST run (``budget_s``); also the hang guard of each cell."""
    return course.get(path.name[:2]).budget_s


def cell_seconds(nb: nbformat.NotebookNode) -> list[tuple[int, float]]:
    """``(index, wall seconds)`` of every code cell that ran, from nbclient's timing metadata (input sent to reply)."""
    times = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (datetime.datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                          for key in ("iopub.execute_input", "shell.execute_reply"))
            times.append((index, (end - start).total_seconds()))
    return times


LONG_CELL_S = 60  # a cell that runs longer than this (half a cell's default budget) must show a progress bar


def shows_progress(cell: nbformat.NotebookNode) -> bool:
    """Whether a code cell's outputs hold a progress bar: tqdm.auto's widget in Jupyter, or its text form."""
    for output in cell.get("outputs", []):
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
            return True
        if re.search(r"\d+%\|", output.get("text", "")):
            return True
    return False


def over_budget(nb: nbformat.NotebookNode, path: Path) -> list[str]:
    """What of an executed ``nb`` broke its lesson's promises: a cell longer than ``cell_budget_s``, the whole run
    (:data:`DURATIONS`) longer than ``budget_s``, or a cell longer than :data:`LONG_CELL_S` without a progress bar.
    The budgets are what the lesson's first cell promises a learner on a 2-core laptop; they are declared with a 2×
    margin over a quiet run of this machine (CI's), so a failure here is a lesson that got slower, not noise."""
    lesson = course.get(path.name[:2])
    timed = cell_seconds(nb)
    problems = [f"cell {index} took {seconds:.0f} s > cell_budget_s {lesson.cell_budget_s} s:\n"
                f"{nb.cells[index].source[:160]}"
                for index, seconds in timed if seconds > lesson.cell_budget_s]
    problems += [f"cell {index} took {seconds:.0f} s and shows no progress bar (tqdm.auto, as training.fit does):\n"
                 f"{nb.cells[index].source[:160]}"
                 for index, seconds in timed if seconds > LONG_CELL_S and not shows_progress(nb.cells[index])]
    total = DURATIONS.get(f"{path.parent.name}/{path.name}", 0.0)
    if total > lesson.budget_s:
        problems.append(f"the whole run took {total:.0f} s > budget_s {lesson.budget_s} s")
    return problems


# Each kernel computes on one thread (torch's intra-op pool, OpenMP, BLAS), so that two kernels share the two cores
# without slowing each other; lessons 3 and 8 pin one thread themselves, for the same numbers on every machine.
KERNEL_ENV = {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def execute(nb: nbformat.NotebookNode, path: Path, timeout: int) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh kernel (:data:`KERNEL_ENV`) with ``path``'s folder as working directory; returns the
    executed notebook. ``timeout`` stops any one cell that runs longer (a hang guard)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute(env={**os.environ, **KERNEL_ENV})
    DURATIONS[f"{path.parent.name}/{path.name}"] = time.perf_counter() - start
    LONGEST_CELL[f"{path.parent.name}/{path.name}"] = max(cell_seconds(nb), key=lambda c: c[1], default=(-1, 0.0))
    return nb


_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notebook")
_RUNS: dict[Path, Future] = {}
_RUNS_LOCK = threading.Lock()


def start(path: Path, prepare: Callable[[nbformat.NotebookNode], None] | None = None) -> Future:
    """Start executing ``path`` in the background (two at a time), once per session; ``prepare`` edits the notebook
    first (the solution's claims cell). Returns the run's future."""
    with _RUNS_LOCK:
        if path not in _RUNS:
            def run() -> nbformat.NotebookNode:
                nb = nbformat.read(path, as_version=4)
                if prepare is not None:
                    prepare(nb)
                return execute(nb, path, timeout=budget(path))

            _RUNS[path] = _POOL.submit(run)
        return _RUNS[path]


def executed(path: Path, prepare: Callable[[nbformat.NotebookNode], None] | None = None,
             alongside: Path | None = None) -> nbformat.NotebookNode:
    """The executed notebook ``path`` (started now unless :func:`start` already did); ``alongside``, a notebook
    another selected test will ask for, starts at the same time, so the two run at once."""
    future = start(path, prepare)
    if alongside is not None:
        start(alongside)
    return future.result()


def selected(request: pytest.FixtureRequest, test_name: str, param_id: str) -> bool:
    """Whether this session runs ``test_name[param_id]`` (``-k`` and ``--deselect`` may leave it out)."""
    return any(item.name == f"{test_name}[{param_id}]" for item in request.session.items)


def pytest_terminal_summary(terminalreporter):
    if DURATIONS:
        terminalreporter.section("notebook run times (this machine)")
        for name, seconds in sorted(DURATIONS.items()):
            lesson = course.get(Path(name).name[:2])
            index, longest = LONGEST_CELL.get(name, (-1, 0.0))
            terminalreporter.write_line(f"{name:45s} {seconds:7.1f} s  (budget {lesson.budget_s} s, "
                                        f"{lesson.budget_s / max(seconds, 1e-9):.1f}× margin); longest cell "
                                        f"{index}: {longest:5.1f} s (cell budget {lesson.cell_budget_s} s, "
                                        f"{lesson.cell_budget_s / max(longest, 1e-9):.1f}× margin)")


@pytest.fixture(autouse=True)
def _notebook_env(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
