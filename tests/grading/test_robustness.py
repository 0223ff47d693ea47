"""The grader's robustness suite: submissions that loop, sleep, raise, exit, kill their process, bomb memory, flood
output, reach for the network or the file system, or cheat in every way the issue lists. The grader never crashes,
grades everything else in the notebook, writes every output, and one bad submission never changes another's score.

One sandboxed batch (``--jobs 2``, a short time limit) holds them all, beside two clean solutions.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from .helpers import SOLUTIONS, exercise, grade, patched, solution, with_cell, write_submission

TIMEOUT = 8.0
NAME1, LESSON1 = solution("01")
NAME2, LESSON2 = solution("02")
ROTATION = "    c, s = math.cos(angle), math.sin(angle)\n"  # the first line of 01.rotation_matrix's solution


def _in_rotation(code: str) -> dict:
    """Lesson 1 with ``code`` at the start of ``rotation_matrix`` (the exercise's function)."""
    return patched(LESSON1, ROTATION, "".join(f"    {line}\n" for line in code.splitlines()) + ROTATION)


CELLS = {  # a cell added after the setup cell of lesson 1's solution
    "loop": "while True:\n    pass",
    "stubborn_loop": "import time\nwhile True:\n    try:\n        time.sleep(100)\n    except BaseException:\n        pass",
    "raises": "raise RuntimeError('boom')",
    "memory_bomb": "hog = bytearray(60 * 2**30)",
    "torch_memory_bomb": "hog = torch.empty(10**11)",
    "floods_output": "for i in range(200_000):\n    print('x' * 100)",
    "network": "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)",
    "local_network": "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=3)",
    "writes_outside": f"open({str(SOLUTIONS / 'written-by-a-submission.txt')!r}, 'w')",
    "sys_exit": "import sys\nsys.exit(3)",
    "os_exit": "import os\nos._exit(3)",
    "forks": "import os\nfor _ in range(5):\n    if os.fork() == 0:\n        import time\n        time.sleep(600)",
    "fork_bomb": "import os\nwhile True:\n    os.fork()",
    "cheat_replaces_the_reference": (
        "from stn_course.checks import get\n"
        "object.__setattr__(get('01.rotation_matrix'), 'reference', lambda angle: torch.zeros(3, 3))"),
}

FUNCTIONS = {  # code at the start of lesson 1's rotation_matrix
    "sleeps": "import time\ntime.sleep(1000)",
    "raises_system_exit": "raise SystemExit(0)",
    "exits_the_process": "import os\nos._exit(0)",
    "cheat_reads_the_callers_frame": (
        "import sys\nframe = sys._getframe(1)\nwhile frame is not None:\n"
        "    if 'expected' in frame.f_locals:\n        return frame.f_locals['expected']\n    frame = frame.f_back\n"
        "return torch.zeros(3, 3, dtype=torch.float64)"),
    "cheat_rigged_tensor": (
        "class Rigged(torch.Tensor):\n"
        "    def numpy(self):\n        raise RuntimeError('no')\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __sub__(self, other):\n        return torch.zeros_like(torch.Tensor(self))\n"
        "return torch.zeros(3, 3, dtype=torch.float64).as_subclass(Rigged)"),
    "cheat_always_equal": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "    shape, dtype = (3, 3), torch.float64\nreturn Anything()"),
    "cheat_patches_compare": (
        "import stn_course.checks.registry as r, numpy\n"
        "r.compare = lambda *a, **k: (True, 0.0, '')\n"
        "numpy.abs = lambda x, *a, **k: x * 0\nreturn torch.zeros(3, 3, dtype=torch.float64)"),
    "cheat_delegates_to_package": "import stn_course.affine as a\nreturn a.rotation(torch.tensor(float(angle), dtype=torch.float64))",
    "huge_result": "return torch.zeros(2**27, dtype=torch.float64)",
}

LESSON2_CHEATS = {  # lesson 2's bilinear_sample_np / affine_grid
    "cheat_rigged_ndarray": patched(LESSON2, "    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)\n", (
        "    class Rigged(np.ndarray):\n"
        "        def __array_ufunc__(self, *args, **kwargs):\n            return np.zeros(())\n"
        "        def __sub__(self, other):\n            return np.zeros(self.shape)\n"
        "    return np.zeros((n, c) + x.shape[1:]).view(Rigged)\n")),
    "careless_matrix_subclass": patched(LESSON2, "    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)\n",
                                        "    return np.matrix(np.zeros((2, 2)))\n"),
    "cheat_delegates_to_torch": patched(LESSON2, "    n, _, h, w = size\n",
                                        "    return F.affine_grid(theta, size, align_corners=align_corners)\n"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("robustness")
    write_submission(folder, "clean", NAME1, LESSON1)
    write_submission(folder, "clean2", NAME2, LESSON2)
    for name, source in CELLS.items():
        write_submission(folder, f"cell-{name}", NAME1, with_cell(LESSON1, source))
    for name, code in FUNCTIONS.items():
        write_submission(folder, f"fn-{name}", NAME1, _in_rotation(code))
    for name, nb in LESSON2_CHEATS.items():
        write_submission(folder, f"l2-{name}", NAME2, nb)
    syntax = patched(LESSON1, "def rotation_matrix(angle: float) -> torch.Tensor:", "def rotation_matrix(angle: float) -> torch.Tensor")
    write_submission(folder, "syntax_error", NAME1, syntax)
    missing = patched(LESSON1, "def pixel_to_theta(", "def pixel_to_theta_renamed(")
    write_submission(folder, "missing_function", NAME1, missing)
    write_submission(folder, "not_a_notebook", "essay.txt", "my answers are in my head")
    write_submission(folder, "empty_file", NAME1, "")
    write_submission(folder, "invalid_json", NAME1, "{ this is not json")
    write_submission(folder, "binary_file", NAME1, bytes(range(256)) * 10)
    write_submission(folder, "json_but_no_cells", NAME1, json.dumps({"hello": "world"}))
    # (the sleeping function is called by several cells, each stopped by the wall-clock backstop: a whole
    # submission's budget large enough for them; tests/grading/test_trust.py tests the budget itself)
    return folder, grade([folder], jobs=2, timeout=TIMEOUT, submission_s=600)


@pytest.fixture(scope="module")
def results(batch):
    return batch[1]


def _full(result) -> bool:
    return result.error is None and result.score == result.max_score > 0


def test_the_clean_submissions_keep_full_marks_in_bad_company(results):
    assert _full(results["clean"]) and _full(results["clean2"])


def test_a_bad_submission_does_not_change_another_score(batch, tmp_path):
    (alone,) = grade([batch[0] / "clean"], jobs=1, timeout=TIMEOUT).values()
    together = batch[1]["clean"]
    assert [(e.id, e.score, e.status, e.feedback) for e in alone.exercises] == \
           [(e.id, e.score, e.status, e.feedback) for e in together.exercises]


@pytest.mark.parametrize("name", ["loop", "stubborn_loop"])
def test_an_endless_cell_times_out_and_the_exercises_are_still_graded(results, name):
    result = results[f"cell-{name}"]
    assert _full(result)
    assert [c["status"] for c in result.cells] == ["timed out"]
    assert "timed out after" in result.cells[0]["error"]


@pytest.mark.parametrize("name", ["raises", "sys_exit", "memory_bomb", "torch_memory_bomb", "network",
                                  "local_network", "writes_outside", "cheat_replaces_the_reference"])
def test_a_failing_cell_is_recorded_and_costs_nothing(results, name):
    result = results[f"cell-{name}"]
    if name == "cheat_replaces_the_reference":  # it runs fine in the child; the grader's reference is its own
        assert _full(result) and result.cells == []
        return
    assert _full(result), (result.cells, [(e.id, e.feedback) for e in result.exercises if e.score < e.max_score])
    assert [c["status"] for c in result.cells] == ["error"]
    error = result.cells[0]["error"]
    expected = {"raises": "RuntimeError: boom", "sys_exit": "SystemExit", "memory_bomb": "MemoryError",
                "torch_memory_bomb": "RuntimeError", "network": "OSError", "local_network": "ConnectionRefusedError",
                "writes_outside": "Error"}[name]
    assert expected in error, error


def test_output_floods_are_swallowed(results):
    assert _full(results["cell-floods_output"]) and results["cell-floods_output"].cells == []


@pytest.mark.parametrize("name", ["os_exit", "forks", "fork_bomb"])
def test_a_cell_that_kills_or_forks_its_process_costs_only_itself(results, name):
    result = results[f"cell-{name}"]
    assert _full(result), (result.cells, [(e.id, e.status, e.feedback) for e in result.exercises])
    if name == "os_exit":  # the copy that ran the cell died; the notebook goes on from before the cell
        assert result.restarts == 0 and [c["status"] for c in result.cells] == ["error"]
        assert "the cell ended its process (exit code 3)" in result.cells[0]["error"]


def test_a_sleeping_function_times_out_on_its_own_exercise(results):
    result = results["fn-sleeps"]
    broken = exercise(result, "01.rotation_matrix")
    assert broken.status == "timed out" and broken.score == 0 and f"timed out after {TIMEOUT:g} s" in broken.feedback
    assert all(e.score == e.max_score for e in result.exercises if e.id != "01.rotation_matrix")


@pytest.mark.parametrize("name", ["raises_system_exit", "exits_the_process"])
def test_a_function_that_exits_is_an_error_of_its_exercise(results, name):
    result = results[f"fn-{name}"]
    broken = exercise(result, "01.rotation_matrix")
    assert broken.status == "error" and broken.score == 0
    assert ("SystemExit" if name == "raises_system_exit" else "ended the notebook's process") in broken.feedback
    assert all(e.score == e.max_score for e in result.exercises if e.id != "01.rotation_matrix")


@pytest.mark.parametrize("name", ["cheat_reads_the_callers_frame", "cheat_rigged_tensor", "cheat_always_equal",
                                  "cheat_patches_compare", "huge_result"])
def test_cheats_get_no_points(results, name):
    result = results[f"fn-{name}"]
    broken = exercise(result, "01.rotation_matrix")
    assert broken.score == 0 and broken.status in ("failed", "error", "timed out"), (broken.status, broken.feedback)
    assert all(e.score == e.max_score for e in result.exercises if e.id != "01.rotation_matrix")


def test_the_rigged_objects_are_refused_as_data(results):
    assert "cannot be graded" in exercise(results["fn-cheat_always_equal"], "01.rotation_matrix").feedback
    assert "larger than" in exercise(results["fn-huge_result"], "01.rotation_matrix").feedback


def test_delegating_to_the_package_is_a_banned_call(results):
    broken = exercise(results["fn-cheat_delegates_to_package"], "01.rotation_matrix")
    assert broken.status == "banned call" and "stn_course.affine.rotation" in broken.feedback


@pytest.mark.parametrize("name, check_id", [("cheat_rigged_ndarray", "02.bilinear_sample_np"),
                                            ("careless_matrix_subclass", "02.bilinear_sample_np"),
                                            ("cheat_delegates_to_torch", "02.affine_grid")])
def test_lesson_2_cheats(results, name, check_id):
    result = results[f"l2-{name}"]
    broken = exercise(result, check_id)
    assert broken.score == 0
    if name == "cheat_delegates_to_torch":
        assert broken.status == "banned call" and "torch.nn.functional.affine_grid" in broken.feedback
    assert all(e.score == e.max_score for e in result.exercises if e.id != check_id)


def test_a_syntax_error_makes_its_exercise_missing_and_nothing_else(results):
    result = results["syntax_error"]
    assert "SyntaxError" in result.cells[0]["error"]  # (and the cells that use rotation_matrix: NameError)
    assert all("NameError: name 'rotation_matrix' is not defined" in c["error"] for c in result.cells[1:])
    assert exercise(result, "01.rotation_matrix").status == "missing"
    assert all(e.score == e.max_score for e in result.exercises if e.id != "01.rotation_matrix")


def test_a_missing_function_is_named(results):
    broken = exercise(results["missing_function"], "01.pixel_to_theta")
    assert broken.status == "missing" and "defines no `pixel_to_theta`" in broken.feedback


@pytest.mark.parametrize("name, words", [("not_a_notebook", "not a notebook"), ("empty_file", "empty"),
                                         ("invalid_json", "invalid JSON"), ("binary_file", "cannot read"),
                                         ("json_but_no_cells", "no list of cells")])
def test_files_that_are_not_notebooks_are_reported_not_crashed_on(results, name, words):
    result = results[name]
    assert result.error is not None and words in result.error and result.score == 0


def test_the_cli_writes_every_output_and_exits_normally(batch, tmp_path):
    folder = tmp_path / "class"  # a folder of student folders, as collected
    for student in ("invalid_json", "not_a_notebook", "clean"):
        shutil.copytree(batch[0] / student, folder / student)
    bad = [folder]  # (a path that does not exist is a usage error: test_gradebook.py)
    out = {k: tmp_path / f"out.{k}" for k in ("json", "gradescope", "csv")}
    run = subprocess.run([sys.executable, "-m", "stn_course.cli", "grade", *map(str, bad), "--timeout", "30",
                          "--json", str(out["json"]), "--gradescope", str(out["gradescope"]), "--csv", str(out["csv"]),
                          "--quiet"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(out["json"].read_text())
    by_student = {s["student"]: s for s in report["submissions"]}
    assert by_student["clean"]["score"] == by_student["clean"]["max_score"] > 0
    assert "invalid JSON" in by_student["invalid_json"]["error"]
    assert "not a notebook" in by_student["not_a_notebook"]["error"]
    assert json.loads(out["gradescope"].read_text())["tests"]
    assert out["csv"].read_text().startswith("student,")
    assert "3 submission(s), 1 graded" in run.stdout
