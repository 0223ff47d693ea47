"""The grader's mutation suite: planted student bugs across lessons 1–7 – wrong values, wrong conventions, missing
and NaN gradients, banned calls, shortcuts that hide from the code scan – each loses points on the exercise it
breaks and only there; the solutions score 100 %, the untouched lessons 0 with "not implemented".

All submissions are graded in one sandboxed batch (``--jobs 2``), like a classroom's folder.
"""
from __future__ import annotations

import pytest

from stn_course import course
from stn_course.checks import all_checks

from .helpers import LESSONS, SOLUTIONS, exercise, grade, patched, solution, write_submission
from .mutants import all_mutants


MUTANTS = all_mutants(course.numbers())


def _selected(request) -> tuple[set[str], set[str]]:
    """The mutants and lessons this session's selected tests of this module need (``-k 03`` grades lesson 3 only)."""
    mutants, lessons = set(), set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module:  # (doctest items have no module)
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "mutant" in params:
            mutants.add(params["mutant"].name)
        if "lesson" in params:
            lessons.add(params["lesson"])
    return mutants, lessons


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    """All selected submissions graded in one sandboxed batch, like a classroom's folder."""
    mutants, lessons = _selected(request)
    folder = tmp_path_factory.mktemp("mutants")
    for mutant in MUTANTS:
        if mutant.name in mutants:
            name, nb = solution(mutant.target[:2])
            write_submission(folder, f"mutant-{mutant.name}", name, patched(nb, mutant.find, mutant.replace))
    for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):
        if path.stem[:2] in lessons:
            write_submission(folder, f"solution-{path.stem[:2]}", path.name, path.read_text())
    for path in sorted(LESSONS.glob("[0-9][0-9]_*.ipynb")):
        if path.stem[:2] in lessons:
            write_submission(folder, f"lesson-{path.stem[:2]}", path.name, path.read_text())
    return grade([folder], jobs=2)


def test_the_suite_is_broad():
    assert len(MUTANTS) >= 30
    assert {m.target[:2] for m in MUTANTS} == set(course.numbers()), "every lesson needs planted bugs here"
    # (no "nan-gradient" kind since lesson 3's U(r) merged into tps_grid, whose gradient never reaches log: see #23's note)
    assert {"value", "convention", "gradient", "banned", "hidden-shortcut"} <= {m.kind for m in MUTANTS}
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: f"{m.target[:2]}-{m.name}")
def test_a_planted_bug_loses_points_on_its_exercise_and_only_there(graded, mutant):
    result = graded[f"mutant-{mutant.name}"]
    assert result.error is None  # (a Verify cell that asserts on the planted bug may fail: it costs nothing)
    broken = exercise(result, mutant.target)
    assert broken.score < broken.max_score, f"{mutant.name} kept full marks on {mutant.target}: {broken.feedback}"
    others = {e.id: (e.status, e.feedback) for e in result.exercises if e.id != mutant.target and e.score < e.max_score}
    assert not others, f"{mutant.name} also lost points on {others}"
    if mutant.kind in ("banned", "hidden-shortcut"):
        assert broken.status == "banned call" and broken.score == 0
        assert "write it yourself" in broken.feedback or "asks you to write" in broken.feedback
    if mutant.kind in ("gradient", "nan-gradient"):
        assert "gradient" in broken.feedback
    if mutant.kind == "memory":  # a clear message, not a dead process
        assert "every load and store needs mask=" in broken.feedback


@pytest.mark.parametrize("lesson", course.numbers(), ids=lambda n: f"{n}-solution")
def test_the_solutions_score_full_marks(graded, lesson):
    result = graded[f"solution-{lesson}"]
    assert result.error is None and result.cells == []
    assert result.score == result.max_score == sum(c.points for c in all_checks() if c.lesson == lesson)
    assert all(e.status == "passed" and e.hidden[1] >= 1 for e in result.exercises)


@pytest.mark.parametrize("lesson", course.numbers(), ids=lambda n: f"{n}-untouched")
def test_untouched_lessons_score_zero_with_not_implemented(graded, lesson):
    result = graded[f"lesson-{lesson}"]
    assert result.error is None and result.score == 0 and result.max_score > 0
    for e in result.exercises:
        assert e.status == "missing" and "not implemented" in e.feedback, (e.id, e.feedback)
