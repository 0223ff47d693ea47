"""stn_course.notebooks and the `stn-course` command: percent -> notebook, solutions -> lessons."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from stn_course import cli, notebooks

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the test extra installs tomli there
    import tomli as tomllib

SOURCES = Path(__file__).resolve().parents[1] / "solutions" / "src"
SOURCES_LIST = sorted(SOURCES.glob("[0-9][0-9]_*.py"))

SOURCE = '''# %% [markdown]
# # A lesson
#
# Some $\\LaTeX$: $x_s = \\theta x_t$.

# %%
import math

# %%
def area(w, h):
    """Area of a rectangle."""
    ### BEGIN SOLUTION
    result = w * h
    return result
    ### END SOLUTION

# %%
value = 1
if value:
    ### BEGIN SOLUTION
    value = math.sqrt(16)
    ### END SOLUTION
'''


def test_percent_source_becomes_cells():
    nb = notebooks.percent_to_notebook(SOURCE, "demo")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "code"]
    assert nb.cells[0].source.startswith("# A lesson\n\nSome $\\LaTeX$")
    assert nb.cells[1].source == "import math"
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
    nbformat.validate(nb)


def test_cell_ids_are_deterministic():
    a = notebooks.dumps(notebooks.percent_to_notebook(SOURCE, "demo"))
    b = notebooks.dumps(notebooks.percent_to_notebook(SOURCE, "demo"))
    assert a == b


def test_student_version_stubs_solutions_at_their_indentation():
    student = notebooks.make_student_notebook(notebooks.percent_to_notebook(SOURCE, "demo"))
    area_cell, if_cell = student.cells[2].source, student.cells[3].source
    assert "w * h" not in area_cell and "sqrt" not in if_cell
    assert '    """Area of a rectangle."""\n    # YOUR CODE HERE\n    raise NotImplementedError' in area_cell
    assert "if value:\n    # YOUR CODE HERE\n    raise NotImplementedError" in if_cell
    assert notebooks.is_stub_cell(student.cells[2]) and not notebooks.is_stub_cell(student.cells[1])
    ns: dict = {}
    exec(area_cell, ns)
    with pytest.raises(NotImplementedError):
        ns["area"](2, 3)


def test_student_version_strips_outputs():
    nb = notebooks.percent_to_notebook(SOURCE, "demo")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nb.cells[1].execution_count = 3
    student = notebooks.make_student_notebook(nb)
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert nb.cells[1].outputs, "the solution notebook itself is not modified"


@pytest.mark.parametrize("bad", ["### BEGIN SOLUTION\nx = 1\n", "x = 1\n### END SOLUTION\n",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"])
def test_unbalanced_markers_are_errors(bad):
    nb = notebooks.percent_to_notebook("# %%\n" + bad, "bad")
    with pytest.raises(ValueError, match="SOLUTION"):
        notebooks.make_student_notebook(nb, "bad")


def test_code_before_first_marker_is_an_error():
    with pytest.raises(ValueError, match="before the first"):
        notebooks.percent_to_notebook("x = 1\n# %%\ny = 2\n", "bad")


def test_cli_build_and_assign_round_trip(tmp_path, capsys):
    src, sol, les = tmp_path / "src", tmp_path / "solutions", tmp_path / "lessons"
    src.mkdir()
    (src / "01_demo.py").write_text(SOURCE)
    assert cli.main(["build", str(src), str(sol)]) == 0
    assert cli.main(["assign", str(sol), str(les)]) == 0
    assert (sol / "01_demo.ipynb").exists() and (les / "01_demo.ipynb").exists()
    assert cli.main(["build", str(src), str(sol), "--check"]) == 0
    assert cli.main(["assign", str(sol), str(les), "--check"]) == 0
    assert "w * h" not in (les / "01_demo.ipynb").read_text()

    # A hand edit to a lesson, or a changed source, is detected by --check and undone by a rebuild.
    (les / "01_demo.ipynb").write_text((les / "01_demo.ipynb").read_text().replace("YOUR CODE HERE", "x"))
    assert cli.main(["assign", str(sol), str(les), "--check"]) == 1
    (src / "01_demo.py").write_text(SOURCE.replace("w * h", "h * w"))
    assert cli.main(["build", str(src), str(sol), "--check"]) == 1
    assert cli.main(["build", str(src), str(sol)]) == 0 and cli.main(["assign", str(sol), str(les)]) == 0
    assert cli.main(["assign", str(sol), str(les), "--check"]) == 0

    # A lesson whose solution was removed is reported and deleted.
    (les / "02_orphan.ipynb").write_text("{}")
    assert cli.main(["assign", str(sol), str(les), "--check"]) == 1
    cli.main(["assign", str(sol), str(les)])
    assert not (les / "02_orphan.ipynb").exists()


def test_cli_lists_checks(capsys):
    assert cli.main(["checks", "02"]) == 0
    assert "02.bilinear_sample" in capsys.readouterr().out


def test_cli_rejects_missing_folders(tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["assign", str(tmp_path / "nope"), str(tmp_path / "out")])


def test_cli_outside_the_course_folder_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for command in (["build"], ["assign"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(command)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "does not exist" in err and "run stn-course from the course folder" in err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        cli.main(["build", str(tmp_path / "empty")])
    assert "holds no [0-9][0-9]_*.py files" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["checks", "42"])
    assert "no checks for lesson '42'" in capsys.readouterr().err


def test_cli_help_explains_every_command_and_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    assert "``" not in top and "Spatial Transformer Networks" in top
    for command in ("build", "assign", "checks"):
        assert command in top
    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    build = capsys.readouterr().out
    assert "default: solutions/src" in build and "default: solutions)" in build and "--check" in build
    with pytest.raises(SystemExit):
        cli.main(["assign", "--help"])
    assert "default: lessons" in capsys.readouterr().out


def test_sources_are_read_by_jupytext_and_rebuild_byte_for_byte(tmp_path):
    import jupytext

    for path in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        text = path.read_text()
        ours = notebooks.percent_to_notebook(text, path.stem)
        theirs = jupytext.reads(text, fmt="py:percent")
        # Jupytext shows the lesson's YAML header (stn_course.course) as a raw cell; the notebooks leave it out
        header, theirs.cells = theirs.cells[0], theirs.cells[1:]
        assert header.cell_type == "raw" and header.source.startswith("---\nlesson:")
        # ... and the build adds the explorer tip to the "## Explore" section (notebooks.EXPLORER_TIP)
        assert [(c.cell_type, c.source.replace("\n\n" + notebooks.EXPLORER_TIP, "")) for c in ours.cells] == [
            (c.cell_type, c.source) for c in theirs.cells]
        again = notebooks.percent_to_notebook(text, path.stem)
        assert notebooks.dumps(ours) == notebooks.dumps(again)  # deterministic ids, no Jupytext metadata
        # Jupytext's own metadata is dropped; the tags (skip-when-grading) are kept, as Jupytext read them; nbgrader's
        # roles are the package's own (tests below)
        assert [{k: v for k, v in c.metadata.items() if k != "nbgrader"} for c in ours.cells] == [
            {"tags": c.metadata["tags"]} if "tags" in c.metadata else {} for c in theirs.cells]
        assert ours.metadata["stn_course"]["lesson"] == path.name[:2]


def test_build_records_the_lesson_and_assign_keeps_it_and_the_tags():
    """The grader identifies a notebook by the metadata build writes and assign keeps; tags survive both."""
    import hashlib

    source = '# %%\nx = 1\n\n# %% tags=["skip-when-grading"]\ntrain()\n'
    nb = notebooks.percent_to_notebook(source, "07_demo")
    assert nb.metadata["stn_course"] == {"lesson": "07", "slug": "07_demo",
                                         "source_sha256": hashlib.sha256(source.encode()).hexdigest()}
    assert nb.cells[1].metadata == {"tags": [notebooks.GRADING_SKIP_TAG]}
    student = notebooks.make_student_notebook(nb)
    assert student.metadata["stn_course"] == nb.metadata["stn_course"]
    assert [c.metadata for c in student.cells] == [{}, {"tags": [notebooks.GRADING_SKIP_TAG]}]
    assert notebooks.lesson_metadata(student)["lesson"] == "07"


NBGRADER_SOURCE = '''# ---
# lesson:
#   exercises:
#     05.area: {title: area, points: 2}
# ---

# %%
def area(w, h):
    ### BEGIN SOLUTION
    return w * h
    ### END SOLUTION

# %%
area = check("05.area", area)

# %%
def helper():
    ### BEGIN SOLUTION
    return 1
    ### END SOLUTION

# %% [markdown]
# **1.** Why?

# %% [markdown] tags=["answer"]
# Because.
'''


def test_build_writes_nbgrader_roles_from_the_lesson():
    """Exercise cells are solution cells, their check cells tests worth the header's points, answer cells manual."""
    nb = notebooks.percent_to_notebook(NBGRADER_SOURCE, "05_demo")
    roles = [c.metadata.get("nbgrader") for c in nb.cells]
    assert [(r["grade_id"], r["grade"], r["solution"], r["locked"], r.get("points")) if r else None
            for r in roles] == [("exercise_05_area", False, True, False, None), ("check_05_area", True, False, True, 2),
                                ("solution_05_1", False, True, False, None), None, ("answer_05_q1", True, True, False, 1)]
    assert nb.cells[4].source == "Because."  # the model answer, in the solutions


def test_assign_stubs_written_answers_and_locks_like_nbgrader():
    student = notebooks.make_student_notebook(notebooks.percent_to_notebook(NBGRADER_SOURCE, "05_demo"))
    test, answer = student.cells[1], student.cells[4]
    assert answer.source == "YOUR ANSWER HERE" and answer.metadata["deletable"] is False
    assert "editable" not in answer.metadata  # the learner writes in it
    assert test.metadata["editable"] is False and test.metadata["deletable"] is False
    assert len(test.metadata["nbgrader"]["checksum"]) == 32 and student.cells[3].metadata == {}


def test_an_exercise_gets_the_default_points_and_bad_points_are_an_error():
    undeclared = notebooks.percent_to_notebook(NBGRADER_SOURCE.replace("05.area:", "05.other:"), "05_demo")
    assert undeclared.cells[1].metadata["nbgrader"]["points"] == 1.0
    with pytest.raises(ValueError, match="exercise '05.area' has points -2; expected a positive number"):
        notebooks.percent_to_notebook(NBGRADER_SOURCE.replace("points: 2", "points: -2"), "05_demo")


def _timed_cell(seconds: float, outputs: list | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("train()", outputs=outputs or [])
    cell.metadata["execution"] = {"iopub.execute_input": "2026-12-07T10:00:00.000000Z",
                                  "shell.execute_reply": f"2026-12-07T10:{int(seconds) // 60:02d}:"
                                                         f"{seconds % 60:09.6f}Z"}
    return cell


def test_the_notebook_tests_hold_each_cell_to_its_budget(monkeypatch):
    """tests/notebooks' budget assertion: a cell over its lesson's cell_budget_s breaks it; a cell over LONG_CELL_S
    without a progress bar breaks the progress rule, with tqdm's text bar it does not; the total is budget_s."""
    from stn_course import course
    from tests.notebooks import conftest as nb_tests

    lesson = course.get("03")
    path, key = Path(f"solutions/{lesson.slug}.ipynb"), f"solutions/{lesson.slug}.ipynb"
    bar = nbformat.v4.new_output("stream", name="stderr", text="glimpse: 40%|████      | 2/5 [00:20<00:30]")
    long_s = min(lesson.cell_budget_s, nb_tests.LONG_CELL_S + 5.0)  # long enough to need a bar, within budget
    nb = nbformat.v4.new_notebook(cells=[_timed_cell(1.5), _timed_cell(long_s, [bar])])
    monkeypatch.setitem(nb_tests.DURATIONS, key, lesson.budget_s - 1.0)
    assert nb_tests.cell_seconds(nb) == [(0, 1.5), (1, long_s)]
    assert nb_tests.over_budget(nb, path) == []
    slow = lesson.cell_budget_s + 15
    nb.cells.append(_timed_cell(slow))
    problems = nb_tests.over_budget(nb, path)
    assert len(problems) == 2 and f"cell 2 took {slow} s > cell_budget_s {lesson.cell_budget_s} s" in problems[0]
    assert f"cell 2 took {slow} s and shows no progress bar" in problems[1]
    monkeypatch.setitem(nb_tests.DURATIONS, key, lesson.budget_s + 100.0)
    assert nb_tests.over_budget(nb, path)[-1] == f"the whole run took {lesson.budget_s + 100} s > budget_s {lesson.budget_s} s"


def test_every_explore_section_says_how_to_bring_a_reopened_explorer_back():
    """Readers took "Error displaying widget: model not found" in a reopened lesson for a bug: the Explore section
    of every generated notebook says to re-run the cell."""
    nb = notebooks.percent_to_notebook("# %% [markdown]\n# ## Explore\n#\n# * try this\n\n# %%\nx = 1\n", "99_toy")
    assert nb.cells[0].source.endswith(notebooks.EXPLORER_TIP) and "model not found" in notebooks.EXPLORER_TIP
    assert nb.cells[0].source.startswith("## Explore\n\n* try this")
    for path in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        nb = notebooks.percent_to_notebook(path.read_text(), path.stem)
        explore = [c.source for c in nb.cells if c.cell_type == "markdown" and notebooks.EXPLORE_HEADING.search(c.source)]
        assert explore and all(notebooks.EXPLORER_TIP in source for source in explore), path.name


def _course_release_from_pyproject() -> tuple[str, str]:
    """pyproject.toml's version and Source URL, read as TOML (the build's own reader is notebooks.course_release)."""
    project = tomllib.loads((SOURCES.parents[1] / "pyproject.toml").read_text())["project"]
    release = (project["version"], project["urls"]["Source"])
    assert notebooks.course_release() == release
    return release


@pytest.mark.parametrize("folder", ["solutions", "lessons"])
def test_every_lesson_opens_anywhere_badges_and_an_install_cell_first(folder):
    """Colab and Binder badges under the title; before the first code cell, the cell that installs this version of
    the course from its repository where the package is missing (pyproject.toml's version and Source URL)."""
    version, repository = _course_release_from_pyproject()
    notebooks_found = sorted((SOURCES.parents[1] / folder).glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks_found) == len(SOURCES_LIST)
    for path in notebooks_found:
        nb = nbformat.read(path, as_version=4)
        title = nb.cells[0].source
        owner_repo = repository.removeprefix("https://github.com/")
        assert f"colab.research.google.com/github/{owner_repo}/blob/main/lessons/{path.name})" in title, path.name
        assert f"mybinder.org/v2/gh/{owner_repo}/main?labpath=lessons%2F{path.name})" in title, path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[0].metadata.get("tags") == [notebooks.INSTALL_CELL_TAG], path.name
        assert sum(notebooks.INSTALL_CELL_TAG in c.metadata.get("tags", []) for c in code) == 1
        assert f'"stn-course @ git+{repository}@v{version}"' in code[0].source
        assert "torch" not in code[0].source.replace("PyTorch", "")  # never (re)installs torch


def test_the_install_cell_installs_only_where_the_package_is_missing(monkeypatch):
    """Run as IPython runs it: a no-op where stn_course imports (the notebook tests, the grader, nbgrader); one
    `%pip install` of the pinned course where it does not (a fresh Colab runtime)."""
    import builtins

    from IPython.core.inputtransformer2 import TransformerManager

    from stn_course.grading.review import review

    source = TransformerManager().transform_cell(notebooks.install_cell_source("9.9.9", "https://example.org/c"))
    calls = []

    class Shell:
        def run_line_magic(self, name, line):
            calls.append((name, line))

    exec(compile(source, "install-cell", "exec"), {"get_ipython": Shell})
    assert calls == []
    real_import = builtins.__import__

    def no_course(name, *args, **kwargs):
        if name.split(".")[0] == "stn_course":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_course)
    exec(compile(source, "install-cell", "exec"), {"get_ipython": Shell})
    monkeypatch.undo()
    assert calls == [("pip", 'install --quiet "stn-course @ git+https://example.org/c@v9.9.9"')]
    # the grader's review list (code that reaches for its machinery) has nothing to say about the course's own cell
    assert review([(1, notebooks.install_cell_source("9.9.9", "https://example.org/c"))]) == []


def test_readme_opens_every_lesson_on_colab_and_binder():
    readme = (SOURCES.parents[1] / "README.md").read_text()
    _, repository = _course_release_from_pyproject()
    for path in SOURCES_LIST:
        assert notebooks.launch_badges(path.stem, repository) in readme, path.stem
