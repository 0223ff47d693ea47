"""Grading that fits a host's limits (Gradescope: 10 minutes, 768 MB), hidden results that stay hidden, honest
feedback text: the budgets of :mod:`stn_course.grading.budgets`, the memory limits of
:mod:`stn_course.grading.memory`, ``score_exercise``'s two texts and Gradescope's ``results.json``.

Cost: the unit tests take well under a second; the two grading runs (lesson 1, small budgets, ``--jobs 1``) about
20 s on a 2-core machine.
"""
from __future__ import annotations

import math
import os
import re

import pytest

from stn_course.checks.registry import FAILED, PASSED, TIMED_OUT, Case, CaseResult, CheckResult, all_checks
from stn_course.grading import reports
from stn_course.grading.budgets import CELL_FLOOR_S, CellBudget, Deadline
from stn_course.grading.grader import ExerciseResult, Grader, SubmissionResult, score_exercise
from stn_course.grading.memory import limit_address_space, memory_feedback, oom_kills
from stn_course.grading.sandbox import Limits
from stn_course.grading.submissions import discover

from .helpers import TEST_SEED, exercise, patched, solution, with_cell, write_submission

NAME1, LESSON1 = solution("01")
ROTATION = "    c, s = math.cos(angle), math.sin(angle)\n"
ROTATION_CHECK = next(c for c in all_checks() if c.id == "01.rotation_matrix")


# -- budgets ------------------------------------------------------------------------------------------------------

def test_a_cell_gets_its_own_budget_then_what_is_left_of_all_cells_then_the_floor():
    budget = CellBudget(per_cell=12, total=30)
    assert budget.limit() == 12
    budget.spend(12)
    budget.spend(12)
    assert budget.limit() == 6  # 30 - 24
    assert "timed out after 6 s" in budget.timed_out(6) and "used up their 30 s together" in budget.timed_out(6)
    budget.spend(6)
    assert budget.limit() == CELL_FLOOR_S  # a cell that only defines a function still runs
    fresh = CellBudget(per_cell=12, total=30)
    assert fresh.limit(wall_left=60, wall_total=100) == 12 and fresh.timed_out(12) == "timed out after 12 s of CPU time"
    assert fresh.limit(wall_left=49, wall_total=100) == CELL_FLOOR_S  # past half of the wall clock: the floor
    assert "kept for its exercises" in fresh.timed_out(CELL_FLOOR_S)
    with pytest.raises(ValueError, match="must be > 0"):
        CellBudget(0, 10)


def test_the_first_deadline_and_its_reason():
    run, submission = Deadline(100, "the grading run"), Deadline(5, "the submission")
    assert Deadline.first(run, submission) is submission and 4 < submission.left() <= 5
    assert submission.reason == "the submission used up its 5 s" and Deadline(None, "x").left() == math.inf


def test_limits_fit_gradescope_and_a_cell_never_gets_more_than_an_exercise():
    limits = Limits()
    # the heaviest cell of the solution notebooks under the grader: 2.2 s of CPU (lesson 6); 12 s is 5× that
    assert limits.cell_s == 12 and Limits(timeout_s=3).cell_s == 3
    # a notebook whose every cell calls an endless function: at most cells_s + a floor per cell, then one
    # exercise's budget per exercise, all far below Gradescope's 600 s
    assert limits.cells_s + 30 * CELL_FLOOR_S + limits.timeout_s < limits.submission_budget_s <= 300


# -- memory -------------------------------------------------------------------------------------------------------

def test_the_address_space_limit_is_relative_to_what_the_interpreter_maps():
    pid = os.fork()
    if pid == 0:  # a child: limit it, then allocate below and above the budget
        code = 1
        try:
            limit_address_space(256)
            small = bytearray(64 * 2**20)
            try:
                bytearray(512 * 2**20)
            except MemoryError:
                code = 0 if small else 2
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    with pytest.raises(ValueError, match="positive number of MB"):
        limit_address_space(0)


def test_memory_feedback_says_what_happened():
    said = memory_feedback("RuntimeError: DefaultCPUAllocator: can't allocate memory: you tried to allocate 3 GB", 512)
    assert said.startswith("used more than 512 MB of memory") and "can't allocate" in said
    assert memory_feedback("ValueError: no", 512) == "ValueError: no"
    assert oom_kills(None) == 0


# -- feedback: the visible text never speaks of the hidden cases ---------------------------------------------------

def _results(count: int, passed: int, status: str = FAILED) -> CheckResult:
    cases = [CaseResult(Case(f"case {i}"), i < passed, 0.0 if i < passed else math.inf,
                        "" if i < passed else "wrong", PASSED if i < passed else status) for i in range(count)]
    return CheckResult(ROTATION_CHECK, 0, cases, count)


def test_passing_visible_cases_say_nothing_of_the_hidden_ones():
    result = score_exercise(ROTATION_CHECK, _results(4, 4), _results(3, 1), 7, (4, 3))
    assert result.feedback == "passed all 4 visible cases (worst error 0)" and "hidden" not in result.feedback
    assert result.hidden_feedback == "passed 1 of 3 hidden cases" and result.status == FAILED
    assert result.score == pytest.approx(ROTATION_CHECK.points * 5 / 7, abs=1e-4)
    full = score_exercise(ROTATION_CHECK, _results(4, 4), _results(3, 3), 7, (4, 3))
    assert full.feedback.startswith("passed all 4 visible cases") and full.hidden_feedback == "passed all 3 hidden cases"


def test_a_visible_timeout_skips_the_hidden_part_and_says_so_only_there():
    result = score_exercise(ROTATION_CHECK, _results(4, 1, TIMED_OUT), None, 7, (4, 3),
                            hidden_skipped="the visible cases timed out")
    assert result.status == TIMED_OUT and "hidden" not in result.feedback
    assert result.hidden_feedback == "not run: the visible cases timed out (the 3 hidden cases score 0)"
    assert result.score == pytest.approx(ROTATION_CHECK.points * 1 / 7, abs=1e-4)


def test_a_check_with_only_hidden_cases_says_only_what_is_true():
    result = score_exercise(ROTATION_CHECK, None, _results(5, 2), 7, (0, 5))
    assert "0 visible" not in result.feedback and "hidden" not in result.feedback.split(";")[0]
    assert result.feedback.startswith("graded on cases that are not shown to you")
    assert result.hidden_feedback == "passed 2 of 5 hidden cases"


def test_gradescope_keeps_hidden_results_hidden_until_publication():
    exercise_result = ExerciseResult("01.rotation_matrix", "rotation", 0.75, 1.0, FAILED,
                                     "passed all 6 visible cases", (6, 6), (3, 6),
                                     hidden_feedback="passed 3 of 6 hidden cases")
    submission = SubmissionResult("a.ipynb", "ada", "01", score=0.75, max_score=1.0, exercises=[exercise_result])
    results = reports.to_gradescope([submission], "sandboxed")
    assert "score" not in results  # Gradescope sums the tests: no total that holds the hidden part early
    visible, hidden = results["tests"]
    assert (visible["visibility"], visible["score"], visible["max_score"]) == ("visible", 0.5, 0.5)
    assert visible["status"] == "passed" and "hidden" not in visible["output"]
    assert (hidden["visibility"], hidden["score"], hidden["max_score"]) == ("after_published", 0.25, 0.5)
    assert hidden["output"] == "passed 3 of 6 hidden cases"
    json_report = reports.to_json([submission], "sandboxed", "instructor")  # the instructor's output stays complete
    assert json_report["submissions"][0]["exercises"][0]["hidden_cases"]["passed"] == 3


# -- grading runs ---------------------------------------------------------------------------------------------------

def test_a_loop_costs_its_exercise_a_hog_its_cell_and_an_error_is_named_once(tmp_path):
    looping = patched(LESSON1, ROTATION, "    while True:\n        pass\n" + ROTATION)
    hog = with_cell(looping, "hog = bytearray(3 * 2**30)")
    write_submission(tmp_path, "loop", NAME1, hog)
    write_submission(tmp_path, "boom", NAME1, patched(LESSON1, ROTATION, "    raise RuntimeError('boom')\n"))
    limits = Limits(timeout_s=3, cell_timeout_s=1, cells_s=4, memory_mb=512)
    grader = Grader(TEST_SEED, limits, jobs=1)
    results = {r.student: r for r in grader.grade(discover([tmp_path]))}
    loop = results["loop"]
    rotation = exercise(loop, "01.rotation_matrix")
    assert rotation.status == TIMED_OUT and rotation.score == 0 and "hidden" not in rotation.feedback
    assert rotation.hidden_feedback.startswith("not run: the visible cases timed out")
    others = [e for e in loop.exercises if e.id != "01.rotation_matrix"]
    assert others and all(e.score == e.max_score for e in others), [(e.id, e.feedback) for e in others]
    hog_cell = loop.cells[0]
    assert hog_cell["status"] == "error" and hog_cell["error"].startswith("used more than 512 MB"), loop.cells
    assert loop.seconds < 60, loop.seconds  # budgets of seconds: far below the cells' count × 60 s of before
    boom = exercise(results["boom"], "01.rotation_matrix")
    assert "raised RuntimeError: boom" in boom.feedback and "RuntimeError: RuntimeError" not in boom.feedback


def test_the_run_budget_leaves_the_rest_not_run_with_feedback(tmp_path):
    write_submission(tmp_path, "late", NAME1, LESSON1)
    grader = Grader(TEST_SEED, Limits(run_s=0.01), jobs=1)
    (result,) = grader.grade(discover([tmp_path]))
    assert result.score == 0 and {c["status"] for c in result.cells} == {"not run"}
    assert all(re.search(r"the grading run used up its 0\.01 s", e.feedback) for e in result.exercises)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a cgroup needs root (CI runs as root)")
def test_past_the_jobs_cgroup_the_kernel_ends_the_notebook_and_the_feedback_says_why(tmp_path):
    from stn_course.grading.cgroups import memory_cgroup

    probe = memory_cgroup(f"stn-grade-test-{os.getpid()}", 64)
    assert probe is not None or pytest.fail("no cgroup here")
    probe.remove()
    cell = "block = bytearray(1536 * 2**20)\nfor i in range(0, len(block), 4096):\n    block[i] = 1"
    write_submission(tmp_path, "hog", NAME1, with_cell(LESSON1, cell))
    grader = Grader(TEST_SEED, Limits(timeout_s=20, memory_mb=4096, total_memory_mb=1024), jobs=1)
    (result,) = grader.grade(discover([tmp_path]))
    hog_cell = result.cells[0]
    assert hog_cell["error"].startswith("used more than 1024 MB of memory (all of the submission's processes"), \
        result.cells
    assert result.score == result.max_score  # the worker survived and the notebook went on without the cell


@pytest.mark.parametrize("flag", ["--cell-timeout", "--cells-timeout", "--run-timeout"])
def test_a_budget_that_is_not_positive_is_a_usage_error(flag, tmp_path, capsys):
    from stn_course import cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["grade", str(tmp_path), flag, "0", "--allow-unsandboxed"])
    assert stop.value.code == 2 and f"{flag}" in capsys.readouterr().err
