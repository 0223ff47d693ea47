"""nbgrader cell metadata for the course's notebooks (``stn-course build`` / ``assign``; docs/grading.md, "nbgrader").

nbgrader (https://nbgrader.readthedocs.io) reads a notebook's roles from each cell's ``metadata.nbgrader``
(schema version 3). ``stn-course build`` writes them into ``solutions/*.ipynb`` from what the lesson already is
(CONTRIBUTING, "Writing a lesson"), so instructors who run nbgrader need no "Create Assignment" clicking:

* an exercise cell (it holds ``### BEGIN SOLUTION``) is an **autograded answer** (``solution``), grade id
  ``exercise_NN_name`` when the cell right after it is its ``check("NN.name", …)`` cell (as every lesson's is),
  else ``solution_NN_K`` (the K-th such cell: an answer no test grades);
* that check cell is an **autograder test** (``grade``, ``locked``), grade id ``check_NN_name``, worth the points
  the lesson's header gives the exercise (the default, 1, where it declares none). Under nbgrader ``check()`` is strict (``NBGRADER_EXECUTION``,
  :func:`stn_course.checks.check`): a stub or a wrong answer raises, so the test cell fails and scores 0;
* a markdown cell tagged ``answer`` (after each of the lesson's "Questions") is a **manually graded answer**
  (``grade`` and ``solution``), grade id ``answer_NN_qK`` (K counts the lesson's answer cells, so it is the
  question's number), worth :data:`ANSWER_POINTS`. ``stn-course assign`` replaces its model answer by
  :data:`ANSWER_STUB`, the text nbgrader's ``ClearSolutions.text_stub`` writes.

``stn-course assign`` keeps the metadata and does what ``nbgrader generate_assignment`` adds (:func:`release`: the
cells' locks and checksums), so ``lessons/`` is what nbgrader releases (``tests/test_nbgrader.py`` runs it). Grade ids use
letters, digits and underscores only.
"""
from __future__ import annotations

import hashlib
import re

__all__ = ["ANSWER_TAG", "ANSWER_STUB", "ANSWER_POINTS", "SCHEMA_VERSION", "annotate", "release", "checksum",
           "answer_grade_id", "check_ids"]

SCHEMA_VERSION = 3
ANSWER_TAG = "answer"  # a markdown cell the learner writes a written answer in
ANSWER_STUB = "YOUR ANSWER HERE"  # nbgrader's default ClearSolutions.text_stub
ANSWER_POINTS = 1  # each written answer, graded by hand
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d{2})\.(\w+)["']""")
BEGIN_SOLUTION = "### BEGIN SOLUTION"


def check_ids(source: str) -> list[str]:
    """The check ids (``"01.rotation_matrix"``) that ``check(...)`` calls in ``source`` name."""
    return [f"{lesson}.{name}" for lesson, name in _CHECK_CALL.findall(source)]


def answer_grade_id(lesson: str, index: int) -> str:
    """The grade id of lesson ``lesson``'s ``index``-th (from 1) written answer: ``answer_01_q2``."""
    return f"answer_{lesson}_q{index}"


def _role(cell_type: str, grade: bool, solution: bool, locked: bool, grade_id: str,
          points: float | None = None) -> dict:
    meta = {"cell_type": cell_type, "grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def _points(header: dict, check_id: str, where: str) -> float:
    """The exercise's points: the header's, else :class:`~stn_course.course.Exercise`'s default."""
    from .course import Exercise

    exercises = (header.get("lesson") or {}).get("exercises") or {}
    points = (exercises.get(check_id) or {}).get("points", Exercise.points)
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise ValueError(f"{where}: exercise {check_id!r} has points {points!r}; expected a positive number")
    return points


def annotate(cells: list, lesson: str, header: dict, name: str) -> None:
    """Write ``metadata.nbgrader`` into ``cells`` (a lesson's notebook cells, in order) in place.

    ``lesson`` is the lesson number (``"01"``), ``header`` the lesson's YAML header (its exercises' points), ``name``
    the notebook's name for error messages. Points that are not a positive number are an error naming the cell.
    """
    answers = ungraded = 0
    for index, cell in enumerate(cells):
        where = f"{name}, cell {index}"
        if cell.cell_type == "code" and BEGIN_SOLUTION in cell.source:
            following = cells[index + 1] if index + 1 < len(cells) else None
            ids = check_ids(following.source) if following is not None and following.cell_type == "code" else []
            if len(ids) != 1:
                ungraded += 1
                cell.metadata["nbgrader"] = _role("code", False, True, False, f"solution_{lesson}_{ungraded}")
                continue
            slug = ids[0].replace(".", "_")
            cell.metadata["nbgrader"] = _role("code", False, True, False, f"exercise_{slug}")
            following.metadata["nbgrader"] = _role("code", True, False, True, f"check_{slug}", _points(header, ids[0], where))
        elif cell.cell_type == "markdown" and ANSWER_TAG in cell.metadata.get("tags", []):
            answers += 1
            cell.metadata["nbgrader"] = _role("markdown", True, True, False, answer_grade_id(lesson, answers), ANSWER_POINTS)


def release(cell) -> None:
    """Do to a student notebook's ``cell`` (its solution already replaced by the stub) what ``nbgrader
    generate_assignment`` does with its default settings: lock it (LockCells: answers undeletable, tests also
    uneditable) and store its checksum (ComputeChecksums)."""
    role = cell.metadata.get("nbgrader")
    if not role or not (role.get("grade") or role.get("solution")):
        return
    cell.metadata["deletable"] = False
    if role.get("grade") and not role.get("solution"):
        cell.metadata["editable"] = False
    role["checksum"] = checksum(cell)


def checksum(cell) -> str:
    """The checksum ``nbgrader generate_assignment`` stores for a grade or solution cell (nbgrader.utils'
    ``compute_checksum``: MD5 of the source, type, roles, grade id and points)."""
    meta = cell.metadata["nbgrader"]
    digest = hashlib.md5()
    for part in (cell.source, cell.cell_type, str(bool(meta.get("grade"))), str(bool(meta.get("solution"))),
                 str(bool(meta.get("locked"))), meta["grade_id"]):
        digest.update(part.encode("utf-8"))
    if meta.get("grade"):
        digest.update(str(float(meta["points"])).encode("utf-8"))
    return digest.hexdigest()
