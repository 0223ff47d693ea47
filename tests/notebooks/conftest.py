"""Shared helpers for the notebook tests: execute a notebook with nbclient and time it."""
from __future__ import annotations

import os
import time
from pathlib import Path

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


def budget(path: Path) -> int:
    """Hang guard for running ``path`` (seconds for the whole notebook): its lesson's ``budget_s``. A generous
    limit that stops a runaway notebook, not a timing assertion; the measured durations are printed at the end."""
    return course.get(path.name[:2]).budget_s


def execute(nb: nbformat.NotebookNode, path: Path, timeout: int) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh kernel with ``path``'s folder as working directory; returns the executed notebook."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    DURATIONS[f"{path.parent.name}/{path.name}"] = time.perf_counter() - start
    return nb


def pytest_terminal_summary(terminalreporter):
    if DURATIONS:
        terminalreporter.section("notebook run times (this machine)")
        for name, seconds in sorted(DURATIONS.items()):
            terminalreporter.write_line(f"{name:45s} {seconds:7.1f} s")


@pytest.fixture(autouse=True)
def _notebook_env(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
