"""Helpers for the grader's suites: build submissions from the solution notebooks and grade a folder of them."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from stn_course.grading.grader import Grader, SubmissionResult
from stn_course.grading.sandbox import Limits
from stn_course.grading.submissions import discover
from stn_course.notebooks import INSTALL_CELL_TAG

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
LESSONS = ROOT / "lessons"
TEST_SEED = "grader-test-seed"


def solution(lesson: str) -> tuple[str, dict]:
    """``(file name, notebook JSON)`` of lesson ``lesson``'s solution."""
    path = next(SOLUTIONS.glob(f"{lesson}_*.ipynb"))
    return path.name, json.loads(path.read_text())


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def patched(nb: dict, find: str, replace: str) -> dict:
    """A copy of ``nb`` with ``find`` replaced in the one code cell holding it (exactly once)."""
    nb = copy.deepcopy(nb)
    hits = [c for c in _code_cells(nb) if find in "".join(c["source"])]
    assert len(hits) == 1, f"{find!r} is in {len(hits)} code cells"
    source = "".join(hits[0]["source"])
    assert source.count(find) == 1, f"{find!r} occurs {source.count(find)} times in its cell"
    hits[0]["source"] = source.replace(find, replace)
    return nb


def with_cell(nb: dict, source: str, after: int = 1) -> dict:
    """A copy of ``nb`` with a code cell holding ``source`` after its ``after``-th code cell (1: the setup cell; the
    cell that installs the course where it is missing, which `stn-course build` puts first, is not counted)."""
    nb = copy.deepcopy(nb)
    lesson_cells = [c for c in _code_cells(nb) if INSTALL_CELL_TAG not in c.get("metadata", {}).get("tags", [])]
    anchor = lesson_cells[after - 1]
    index = nb["cells"].index(anchor) + 1
    nb["cells"].insert(index, {"cell_type": "code", "execution_count": None, "id": f"injected{index}",
                               "metadata": {}, "outputs": [], "source": source})
    return nb


def write_submission(folder: Path, student: str, name: str, nb: dict | str | bytes) -> Path:
    """Write a notebook (or raw text/bytes) as ``folder/student/name``."""
    path = folder / student / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, dict):
        path.write_text(json.dumps(nb))
    elif isinstance(nb, bytes):
        path.write_bytes(nb)
    else:
        path.write_text(nb)
    return path


def grade(paths: list[Path], jobs: int = 2, timeout: float = 60.0, sandbox: bool = True,
          seed: str = TEST_SEED, by: str = "student", submission_s: float | None = None) -> dict[str, SubmissionResult]:
    """Grade ``paths`` and return the results by student (one submission per student in these suites) or path."""
    grader = Grader(seed, Limits(timeout_s=timeout, submission_s=submission_s), jobs=jobs, sandbox=sandbox,
                    allow_unsandboxed=not sandbox)
    results = grader.grade(discover(paths))
    keyed = {getattr(r, by): r for r in results}
    assert len(keyed) == len(results), f"one submission per {by} expected"
    return keyed


def exercise(result: SubmissionResult, check_id: str):
    return next(e for e in result.exercises if e.id == check_id)
