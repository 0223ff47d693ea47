"""Every solution notebook runs top to bottom with all its checks passing; every lesson runs up to its first stub;
the committed notebooks equal a fresh regeneration and the lessons contain no solution code."""
from __future__ import annotations

import importlib.util
import re

import nbformat
import pytest

from stn_course import course, notebooks
from stn_course.checks import all_checks

from .conftest import LESSONS, SOLUTIONS, SOURCES, executed, over_budget, selected
from .test_claims import claims_cell

SOLUTION_NOTEBOOKS = [SOLUTIONS / f"{lesson.slug}.ipynb" for lesson in course.lessons()]
LESSON_NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in SOLUTION_NOTEBOOKS]


def runs(notebooks: list) -> list:
    """``notebooks`` as parameters of a test that executes them: a lesson whose header ``requires`` a module (lesson
    7: ``triton``) is skipped with "needs <module>" where that module is not installed (macOS, Windows)."""
    params = []
    for path in notebooks:
        requires = course.get(path.name[:2]).requires
        marks = [pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"needs {module}")
                 for module in requires] + [pytest.mark.triton] * ("triton" in requires)
        params.append(pytest.param(path, marks=marks, id=path.stem))
    return params


def test_there_are_notebooks():
    assert SOLUTION_NOTEBOOKS, "no solution notebooks found"
    assert [p.name for p in SOLUTION_NOTEBOOKS] == [p.name for p in LESSON_NOTEBOOKS]
    assert [p.stem for p in SOLUTION_NOTEBOOKS] == [p.stem for p in sorted(SOURCES.glob("[0-9][0-9]_*.py"))]


def test_solutions_match_their_sources():
    assert notebooks.build_solutions(SOURCES, SOLUTIONS, check=True) == [], "run `stn-course build`"


def test_lessons_match_a_fresh_regeneration():
    assert notebooks.assign(SOLUTIONS, LESSONS, check=True) == [], "run `stn-course assign`"


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=IDS)
def test_committed_without_outputs(path):
    for nb_path in (path, LESSONS / path.name):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{nb_path.name} has outputs"


def _solution_regions(source: str) -> list[str]:
    return re.findall(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", source, flags=re.S)


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=IDS)
def test_lessons_contain_no_solution_code(path):
    solution = nbformat.read(path, as_version=4)
    lesson_text = (LESSONS / path.name).read_text()
    lesson = nbformat.read(LESSONS / path.name, as_version=4)
    regions = [r for cell in solution.cells if cell.cell_type == "code" for r in _solution_regions(cell.source)]
    assert regions, f"{path.name} has no exercises"
    assert "BEGIN SOLUTION" not in lesson_text and "END SOLUTION" not in lesson_text
    lesson_code = "\n".join(c.source for c in lesson.cells if c.cell_type == "code")
    for region in regions:
        for line in region.splitlines():
            line = line.strip()
            # every substantial solution line must be gone (short lines like `return out` may recur elsewhere)
            if len(line) > 25 and not line.startswith("#"):
                assert line not in lesson_code, f"solution line leaked into lessons/{path.name}: {line!r}"
    assert sum(notebooks.is_stub_cell(c) for c in lesson.cells) == len(
        [c for c in solution.cells if c.cell_type == "code" and _solution_regions(c.source)])


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=IDS)
def test_every_exercise_is_checked(path):
    """Each exercise cell is followed by a code cell that calls check() on a function the exercise defines, with a
    registered id of this lesson; and every registered visible check of the lesson is used."""
    nb = nbformat.read(path, as_version=4)
    known = {c.id for c in all_checks(include_hidden=False)}
    lesson = path.name[:2]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    used = set()
    for i, source in enumerate(code):
        if "### BEGIN SOLUTION" not in source:
            continue
        defined = set(re.findall(r"^(?:def|class)\s+(\w+)", source, re.M))
        assert defined, f"exercise cell {i} of {path.name} defines no function:\n{source[:200]}"
        assert i + 1 < len(code), f"the last code cell of {path.name} is an exercise with no check after it"
        calls = re.findall(r"check\(\s*[\"']([0-9]{2}\.[\w.]+)[\"']\s*,\s*(\w+)", code[i + 1])
        assert calls, f"the cell after exercise {sorted(defined)} in {path.name} calls no check():\n{code[i + 1][:200]}"
        for check_id, fn in calls:
            assert re.search(rf"^{fn} = check\(", code[i + 1], re.M), (
                f"write `{fn} = check({check_id!r}, {fn})`: the lesson then runs on with the reference until it is done")
            assert check_id in known and check_id.startswith(lesson + "."), f"{check_id}: not a check of lesson {lesson}"
            assert fn in defined, f"check({check_id!r}, {fn}) follows an exercise that defines {sorted(defined)}"
            used.add(check_id)
    registered = {i for i in known if i.startswith(lesson + ".")}
    all_calls = set(re.findall(r"check\(\s*[\"']([0-9]{2}\.[\w.]+)[\"']", "\n".join(code)))
    assert registered == all_calls, f"registered but unused in {path.name}: {registered - all_calls}"
    assert used, f"{path.name} has no checked exercise"


@pytest.mark.notebook
@pytest.mark.parametrize("path", runs(SOLUTION_NOTEBOOKS))
def test_solution_runs_top_to_bottom(path, request):
    """Every check passes, and – a last cell added here – every number the prose claims holds (claims.py). The
    fresh lesson's run (the next test) starts at the same time when it is selected."""
    def add_claims(nb: nbformat.NotebookNode) -> None:
        nb.cells.append(nbformat.v4.new_code_cell(claims_cell(path.name[:2])))

    stub = LESSONS / path.name
    nb = executed(path, add_claims,
                  alongside=stub if selected(request, "test_fresh_lesson_runs_all_with_every_exercise_reported",
                                             path.stem) else None)
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "✅" in outputs and "❌" not in outputs
    assert not over_budget(nb, path), "\n".join(over_budget(nb, path))


@pytest.mark.notebook
@pytest.mark.parametrize("path", runs(LESSON_NOTEBOOKS))
def test_fresh_lesson_runs_all_with_every_exercise_reported(path):
    """"Run All" on an untouched lesson: every exercise says "not implemented yet", the run goes on to the end
    (figures, Verify, Explore on the package's reference), and nothing fails."""
    nb = executed(path)
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    lesson = path.name[:2]
    ids = {c.id for c in all_checks(include_hidden=False) if c.id.startswith(lesson + ".")}
    reported = set(re.findall(r"⏳ \[([0-9]{2}\.[\w.]+)\][^\n]*not implemented yet", outputs))
    assert reported == ids, f"not reported as unimplemented: {ids - reported}"
    assert "❌" not in outputs and "✅" not in outputs
    unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is None]
    assert not unrun, f"cells {unrun} did not run"
    assert not over_budget(nb, path), "\n".join(over_budget(nb, path))
