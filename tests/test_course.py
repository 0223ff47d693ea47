"""The lesson registry (:mod:`stn_course.course`): one lesson, one place.

Every lesson is found from its source alone, and a new lesson needs nothing but its source (and the modules its header
names): a throw-away lesson 99, built in a temporary course folder, is found by the CLI, ``stn_course.plotting`` /
``widgets``, the dashboards, the notebook tests and – in the sandbox – the grader.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stn_course import course, explore, plotting, widgets
from stn_course.checks import all_checks

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "solutions" / "src"


# -- the course's own lessons ---------------------------------------------------------------------------------------


def test_every_source_is_a_lesson_and_nothing_else_is():
    assert [lesson.slug for lesson in course.lessons()] == [p.stem for p in sorted(SOURCES.glob("[0-9][0-9]_*.py"))]
    assert course.numbers() == sorted(course.numbers()) and len(set(course.numbers())) == len(course.numbers())


def test_the_installed_manifest_is_what_the_sources_declare():
    """An installed package (no solutions/src) reads stn_course/lessons.json: `stn-course build` writes it."""
    assert course.MANIFEST.read_text() == course.manifest_text(SOURCES), "run `stn-course build`"
    from_manifest = [course.Lesson.from_json(item) for item in json.loads(course.MANIFEST.read_text())["lessons"]]
    assert from_manifest == course.lessons()


@pytest.mark.parametrize("lesson", course.lessons(), ids=lambda lesson: lesson.slug)
def test_a_lesson_declares_what_the_package_needs(lesson):
    assert lesson.title and not lesson.title.startswith(lesson.number)
    assert lesson.checks and lesson.figures and lesson.explorers and lesson.dashboard is not None
    registered = {c.id for c in all_checks() if c.lesson == lesson.number}
    assert registered and registered == {e.id for e in lesson.exercises}, "the header's exercises are the checks"
    for exercise in lesson.exercises:  # the check shows what the header says
        check = next(c for c in all_checks() if c.id == exercise.id)
        assert (check.title, check.points, check.hint, check.recipe) == \
            (exercise.title, exercise.points, exercise.hint, exercise.recipe)
    assert lesson.try_this, f"lesson {lesson.number}: its Explore section has no 'Try this' bullets"
    assert lesson.dashboard.try_this == lesson.try_this
    board = explore.dashboards()[lesson.number]
    assert all(f"* {item}" in board.text for item in lesson.try_this)


def test_plotting_and_widgets_export_every_lessons_modules():
    import importlib

    for lesson in course.lessons():
        for package, module_name in ((plotting, lesson.figures), (widgets, lesson.explorers)):
            module = importlib.import_module(module_name)
            assert set(module.__all__) <= set(package.__all__)
            assert all(getattr(package, name) is getattr(module, name) for name in module.__all__)


def test_a_bad_header_is_a_clear_error(tmp_path):
    source = tmp_path / "98_bad.py"
    source.write_text("# ---\n# lesson:\n#   chekcs: stn_course.checks.lesson01\n# ---\n\n# %%\nx = 1\n")
    with pytest.raises(ValueError, match="unknown lesson field.*chekcs"):
        course.read_lesson(source)
    source.write_text("# ---\n# lesson:\n#   budget_s: soon\n# ---\n\n# %%\nx = 1\n")
    with pytest.raises(ValueError, match="budget_s: expected a positive whole number"):
        course.read_lesson(source)
    source.write_text("# ---\n# lesson:\n#   claims:\n#     - {text: about 2×}\n# ---\n\n# %%\nx = 1\n")
    with pytest.raises(ValueError, match="exactly one of holds, benchmark, why"):
        course.read_lesson(source)


def test_an_unknown_lesson_or_exercise_names_the_ones_there_are():
    with pytest.raises(KeyError, match="no lesson '42'; the course has: 01, 02"):
        course.get("42")
    with pytest.raises(KeyError, match="declares no exercise '01.nothing'; it declares: 01.rotation_matrix"):
        course.get("01").exercise("01.nothing")


def test_a_course_root_without_sources_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(course.ROOT_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="expected a course folder with solutions/src"):
        course.lessons()


# -- a throw-away lesson 99 -------------------------------------------------------------------------------------------

TOY_SOURCE = '''\
# ---
# lesson:
#   checks: toy99_checks
#   figures: toy99_figures
#   explorers: toy99_widgets
#   budget_s: 90
#   dashboard:
#     intro: A toy page that doubles a number.
#     code: |
#       widgets.toy_explorer()
#   claims:
#     - text: makes a number about 2× larger
#       holds: double(torch.ones(1)).item() == 2
# ---

# %% [markdown]
# # Lesson 99 – Doubling
#
# Doubling makes a number about 2× larger.

# %%
import torch

from stn_course import widgets
from stn_course.checks import check

# %%
def double(x):
    """``x (...) -> (...)``: twice ``x``."""
    ### BEGIN SOLUTION
    return x + x
    ### END SOLUTION


# %%
double = check("99.double", double)

# %% [markdown]
# ## Explore
#
# The toy explorer shows a number. Try this:
#
# * set it to 3: the explorer says 6.

# %% tags=["skip-when-grading"]
widgets.toy_explorer()
'''

TOY_MODULES = {
    "toy99_checks.py": '''
        import torch

        from stn_course.checks import Case, Check, register


        def _cases(rng):
            for n in (1, 4):
                yield Case(f"{n} numbers", (torch.tensor(rng.normal(size=n)),))


        def _hidden(rng):
            yield Case("a 3×5 matrix", (torch.tensor(rng.normal(size=(3, 5))),))


        def _twice(x):
            return 2 * x


        register(Check(id="99.double", title="double a tensor", reference=_twice, cases=_cases,
                       hidden_cases=_hidden, points=2, hint="What is x plus x?", recipe="return x + x"))
    ''',
    "toy99_figures.py": '''
        __all__ = ["toy_figure"]


        def toy_figure():
            import matplotlib.pyplot as plt

            figure, axes = plt.subplots()
            axes.plot([0, 1], [0, 2])
            return figure
    ''',
    "toy99_widgets.py": '''
        __all__ = ["toy_explorer"]


        def toy_explorer(value: int = 3):
            import ipywidgets

            return ipywidgets.Label(f"twice {value} is {2 * value}")
    ''',
}


def make_toy_course(folder: Path) -> dict[str, str]:
    """A course folder holding only lesson 99 (its source and its three modules); -> the environment to use it."""
    (folder / "solutions" / "src").mkdir(parents=True)
    (folder / "solutions" / "src" / "99_toy.py").write_text(TOY_SOURCE)
    for name, text in TOY_MODULES.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    env = {**os.environ, course.ROOT_ENV: str(folder), "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return env


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def toy_course(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-course")
    env = make_toy_course(folder)
    cli = [sys.executable, "-m", "stn_course.cli"]
    run([*cli, "build"], env, folder)
    run([*cli, "assign"], env, folder)
    return folder, env


def test_a_new_lesson_is_published_and_listed_by_the_cli(toy_course):
    folder, env = toy_course
    assert (folder / "solutions" / "99_toy.ipynb").exists() and (folder / "lessons" / "99_toy.ipynb").exists()
    assert "return x + x" not in (folder / "lessons" / "99_toy.ipynb").read_text()
    cli = [sys.executable, "-m", "stn_course.cli"]
    listed = run([*cli, "lessons"], env, folder).stdout
    assert "99  Doubling" in listed and "1 checks" in listed and "01 " not in listed
    assert "99.double" in run([*cli, "checks", "99"], env, folder).stdout


def test_a_new_lesson_is_found_by_the_package(toy_course):
    folder, env = toy_course
    probe = textwrap.dedent('''
        import json
        from pathlib import Path
        from stn_course import course, explore, plotting, widgets
        from stn_course.checks import all_checks
        pages = explore.write_dashboards(Path("pages"))
        print(json.dumps({
            "lessons": course.numbers(),
            "checks": [c.id for c in all_checks()],
            "figure": type(plotting.toy_figure()).__name__,
            "explorer": widgets.toy_explorer().value,
            "pages": [p.name for p in pages],
            "page": (Path("pages") / "99_explore.ipynb").read_text(),
        }))
    ''')
    found = json.loads(run([sys.executable, "-c", probe], env, folder).stdout.splitlines()[-1])
    assert found["lessons"] == ["99"] and found["checks"] == ["99.double"]
    assert found["figure"] == "Figure" and found["explorer"] == "twice 3 is 6"
    assert found["pages"] == ["99_explore.ipynb"]
    assert "Lesson 99 – Doubling" in found["page"] and "* set it to 3: the explorer says 6" in found["page"]


@pytest.mark.notebook
def test_a_new_lesson_is_run_by_the_notebook_tests(toy_course):
    """The notebook tests collect lesson 99 from the registry and run it: the solution with its claim, the stub."""
    folder, env = toy_course
    done = run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "notebooks"), "-q", "-p", "no:cacheprovider",
                "--rootdir", str(ROOT), "-o", "addopts=-rA"], env, folder)  # -rA: every test's id in the summary
    summary = done.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "failed" not in summary and "error" not in summary, done.stdout[-3000:]
    assert "99_toy" in done.stdout and "01_affine" not in done.stdout


@pytest.mark.grading
def test_a_new_lesson_is_graded_in_the_sandbox(toy_course, tmp_path):
    folder, env = toy_course
    submissions = tmp_path / "submissions"
    for student, notebook in (("ada", folder / "solutions" / "99_toy.ipynb"),
                              ("bob", folder / "lessons" / "99_toy.ipynb")):
        (submissions / student).mkdir(parents=True)
        (submissions / student / "99_toy.ipynb").write_text(notebook.read_text())
    report = tmp_path / "grades.json"
    run([sys.executable, "-m", "stn_course.cli", "grade", str(submissions), "--json", str(report), "--quiet"],
        env, folder)
    results = {r["student"]: r for r in json.loads(report.read_text())["submissions"]}
    assert results["ada"]["lesson"] == "99" and results["ada"]["score"] == results["ada"]["max_score"] == 2
    assert results["ada"]["exercises"][0]["status"] == "passed"
    assert results["bob"]["score"] == 0 and results["bob"]["exercises"][0]["status"] == "missing"


def test_benchmark_records_come_from_the_course_or_from_the_manifest(monkeypatch):
    """Lessons read stored benchmark results (lesson 5's sweep, lesson 8's signs) through benchmark_record: in a
    clone from benchmarks/, in an installed package (no benchmarks folder) from the manifest's copy."""
    stored = {p.stem: json.loads(p.read_text()) for p in sorted((SOURCES.parents[1] / "benchmarks").glob("*.json"))}
    assert {"lr_sweep", "sign_quality"} <= set(stored)
    assert json.loads(course.MANIFEST.read_text())["benchmark_records"] == stored, "run `stn-course build`"
    for name, record in stored.items():
        assert course.benchmark_record(name) == record
    monkeypatch.setattr(course, "course_root", lambda: None)  # an installed package: no course folder
    for name, record in stored.items():
        assert course.benchmark_record(name) == record
    with pytest.raises(KeyError, match="lr_sweep"):
        course.benchmark_record("no_such_benchmark")
