"""Real nbgrader on lesson 1 (docs/grading.md, "nbgrader"): the release is lessons/, a solution scores full marks,
an untouched lesson 0, and a planted bug costs its own exercise only.

One course folder serves every assertion (module fixture): ``nbgrader generate_assignment`` once and one
``nbgrader autograde`` of three students, 40-115 s on a 2-core CPU (its tests are marked ``notebook``: they execute
the lesson). Strict ``check()`` itself is tested first, in milliseconds.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbgrader.api import Gradebook

from stn_course import notebooks
from stn_course.checks import STRICT_ENV, CheckFailed, all_checks, check

ROOT = Path(__file__).resolve().parents[1]
LESSON = "01_affine_transforms.ipynb"
ASSIGNMENT = "l01"
CORRECT = "[[c, -s, 0.0], [s, c, 0.0]"
BUG = "[[c, s, 0.0], [-s, c, 0.0]"  # turns the other way: 01.rotation_matrix fails, nothing else may


def rotation_matrix(angle):  # a learner's stub
    raise NotImplementedError


def test_a_strict_check_raises_on_a_stub_and_hands_later_cells_the_reference(monkeypatch):
    stub = rotation_matrix
    assert check("01.rotation_matrix", stub, quiet=True) is not stub  # a learner's kernel: the stand-in, no error
    monkeypatch.setenv(STRICT_ENV, "autograde")  # what nbgrader sets while it grades
    with pytest.raises(CheckFailed, match="not implemented yet"):
        check("01.rotation_matrix", rotation_matrix)
    assert rotation_matrix is not stub and float(rotation_matrix(0.0)[0, 0]) == 1.0  # this module's name, rebound
    globals()["rotation_matrix"] = stub


def test_a_strict_check_raises_on_a_wrong_answer_and_passes_a_right_one():
    import torch

    def turned_the_other_way(angle):
        return torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64) if angle == 0 else \
            torch.eye(3, dtype=torch.float64) * 2
    with pytest.raises(CheckFailed, match="failed on case"):
        check("01.rotation_matrix", turned_the_other_way, strict=True)
    import math

    def right(angle):
        c, s = math.cos(angle), math.sin(angle)
        return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert check("01.rotation_matrix", right, strict=True, quiet=True) is right


def _nbgrader(course: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _submit(course: Path, student: str, nb: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / LESSON)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("nbgrader-course")
    shutil.copy(ROOT / "docs" / "grading" / "nbgrader_config.py", course)
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / LESSON, course / "source" / ASSIGNMENT)
    _nbgrader(course, "generate_assignment", ASSIGNMENT, "--create")
    solution = nbformat.read(ROOT / "solutions" / LESSON, as_version=4)
    buggy = nbformat.read(ROOT / "solutions" / LESSON, as_version=4)
    [cell] = [c for c in buggy.cells if CORRECT in c.source]
    cell.source = cell.source.replace(CORRECT, BUG)
    _submit(course, "solved", solution)
    _submit(course, "untouched", nbformat.read(course / "release" / ASSIGNMENT / LESSON, as_version=4))
    _submit(course, "buggy", buggy)
    _nbgrader(course, "autograde", ASSIGNMENT, "--create")
    return course


def _scores(course: Path, student: str) -> dict[str, float | None]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submitted = gradebook.find_submission_notebook(Path(LESSON).stem, ASSIGNMENT, student)
        return {grade.name: grade.auto_score for grade in submitted.grades}


def _tests() -> dict[str, float]:
    nb = nbformat.read(ROOT / "lessons" / LESSON, as_version=4)
    return {c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}


@pytest.mark.notebook
def test_the_release_is_the_lesson_byte_for_byte(course):
    released = (course / "release" / ASSIGNMENT / LESSON).read_text()
    assert released == (ROOT / "lessons" / LESSON).read_text()
    assert released == notebooks.dumps(nbformat.reads(released, as_version=4))


@pytest.mark.notebook
def test_a_solution_scores_full_marks_and_its_written_answers_await_a_human(course):
    scores, tests = _scores(course, "solved"), _tests()
    lesson1 = [c for c in all_checks(include_hidden=False) if c.lesson == "01"]
    assert len(tests) == len(lesson1) and sum(tests.values()) == sum(c.points for c in lesson1)
    assert {k: scores[k] for k in tests} == tests
    assert {k: v for k, v in scores.items() if k.startswith("answer_")} == {
        "answer_01_q1": None, "answer_01_q2": None}  # manual grading


@pytest.mark.notebook
def test_an_untouched_lesson_scores_zero(course):
    assert set(_scores(course, "untouched").values()) == {0.0}


@pytest.mark.notebook
def test_a_planted_bug_costs_its_exercise_only(course):
    """rotate_about builds on rotation_matrix: the strict check hands it the reference, so it still passes."""
    scores, tests = _scores(course, "buggy"), _tests()
    assert {k: scores[k] for k in tests} == {**tests, "check_01_rotation_matrix": 0.0}


@pytest.mark.notebook
def test_cells_tagged_skip_when_grading_are_not_run(course):
    nb = nbformat.read(course / "autograded" / "solved" / ASSIGNMENT / LESSON, as_version=4)
    skipped = [c for c in nb.cells if notebooks.GRADING_SKIP_TAG in c.metadata.get("tags", [])]
    ran = [c for c in nb.cells if c.cell_type == "code" and c not in skipped]
    assert skipped and all(c.execution_count is None and not c.outputs for c in skipped)
    assert all(c.execution_count is not None for c in ran)
