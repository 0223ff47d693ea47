"""Shared helpers for the notebook tests: execute a notebook with nbclient and time it."""
from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
LESSONS = ROOT / "lessons"
SOURCES = SOLUTIONS / "src"

# Hang guards per notebook (seconds for the whole run), from the issue budgets. They are generous limits that stop a
# runaway notebook, not timing assertions; the measured durations are printed at the end of the session.
BUDGET_S = {"01": 120, "02": 120, "03": 180, "04": 180, "05": 300, "06": 240, "07": 240}
DURATIONS: dict[str, float] = {}


def budget(path: Path) -> int:
    return BUDGET_S.get(path.name[:2], 300)


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
