"""``Check.builds_on`` is what the solutions do: an exercise builds on exactly the lesson's other exercises its
solution calls, directly or through the notebook's own functions and classes. The grader gives stand-ins for
those and for nothing else (a sibling it does not build on is the learner's own, under the same bans)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from stn_course.checks import all_checks

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def _definitions(path: Path) -> dict[str, set[str]]:
    """Every top-level function and class of the notebook and the names its body loads."""
    nb = json.loads(path.read_text())
    found: dict[str, set[str]] = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found[node.name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return found


def _reaches(definitions: dict[str, set[str]], start: str, exercises: set[str]) -> set[str]:
    """The notebook's names ``start`` uses, through its helpers but not through other exercises (those are the
    grader's stand-ins, which do not call the learner's code)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        for used in definitions.get(name, ()):
            if used in definitions and used not in seen and used != start:
                seen.add(used)
                if used not in exercises:
                    todo.append(used)
    return seen


LESSONS = sorted({c.lesson for c in all_checks(include_hidden=False)})


@pytest.mark.parametrize("lesson", LESSONS)
def test_builds_on_is_what_the_solution_calls(lesson):
    path = next(SOLUTIONS.glob(f"{lesson}_*.ipynb"))
    definitions = _definitions(path)
    checks = [c for c in all_checks(include_hidden=False) if c.lesson == lesson]
    by_name = {c.function_name: c.id for c in checks}
    for check in checks:
        reached = _reaches(definitions, check.function_name, set(by_name))
        expected = {by_name[name] for name in reached if name in by_name}
        assert set(check.builds_on) == expected, (check.id, sorted(expected))
