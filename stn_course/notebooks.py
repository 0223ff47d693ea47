"""Notebook tooling: author in percent-format Python, publish solutions, generate student lessons.

The pipeline, run by ``stn-course build`` and ``stn-course assign``::

    solutions/src/NN_slug.py  --build-->  solutions/NN_slug.ipynb  --assign-->  lessons/NN_slug.ipynb
    (percent format, reviewed           (complete notebook, no            (solution regions replaced
     as code)                             outputs)                           by stubs, no outputs)

Percent format, read by Jupytext: a line ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose
lines are written as ``# text`` (instructors can open the sources as notebooks in JupyterLab: *Open With →
Jupytext Notebook*). Exercise code sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(nbgrader's markers); :func:`make_student_notebook` replaces each region by ``# YOUR CODE HERE`` and
``raise NotImplementedError`` at the marker's indentation. Cell ids are derived from the notebook name and cell
position, so regenerating is byte-for-byte reproducible (a test checks that the committed files are up to date).

Both notebooks carry nbgrader's cell metadata (:mod:`.nbgrader_cells`: exercise cells are solution cells, their
``check`` cells autograded tests, the ``answer``-tagged markdown cells after the lessons' questions manually graded
answers), so ``nbgrader generate_assignment`` on ``solutions/`` releases exactly ``lessons/`` (docs/grading.md,
"nbgrader"). :func:`make_student_notebook` replaces a written answer's model answer by ``YOUR ANSWER HERE``.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nbformat

from . import nbgrader_cells

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
STUB = ["# YOUR CODE HERE", "raise NotImplementedError"]
# A code cell tagged so (``# %% tags=["skip-when-grading"]`` in the source) only demonstrates – a training run, an
# explorer – and the grader does not run it.
GRADING_SKIP_TAG = "skip-when-grading"
KEPT_CELL_METADATA = ("tags", "nbgrader", "deletable", "editable")

_CELL_MARKER = re.compile(r"^# %%(?P<rest>.*)$")
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
# Added to every lesson's "## Explore" section: a reopened notebook shows its explorers as an error, which readers
# took for a bug in the lesson.
EXPLORE_HEADING = re.compile(r"^## Explore\b", re.M)
EXPLORER_TIP = ("> **Reopened the notebook and an explorer says \"Error displaying widget: model not found\"?** "
                "Widgets live in the Python kernel that drew them; a saved notebook keeps only where they were. Run "
                "the explorer's cell again (after the cells above it: *Run → Run All Above Selected Cell*).")


# The first code cell of every lesson (added by `stn-course build`): on Colab, or in any Jupyter without the
# package, it installs the course – this version, from its repository – keeping the PyTorch already there (Colab's
# CUDA build included); where the package is installed it does nothing (the grader runs it too: a no-op there).
INSTALL_CELL_TAG = "install-course"
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def course_release() -> tuple[str, str]:
    """``(version, repository URL)`` of the course, from pyproject.toml (the one place the URL is written); in an
    installed package without pyproject.toml, from the package's metadata."""
    if _PYPROJECT.is_file():
        text = _PYPROJECT.read_text()
        version = re.search(r'^version = "([^"]+)"', text, flags=re.M).group(1)
        repository = re.search(r'^Source = "([^"]+)"', text, flags=re.M).group(1)
        return version, repository
    from importlib import metadata

    meta = metadata.metadata("stn-course")
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL") or [])
    return meta["Version"], urls["Source"]


def install_cell_source(version: str, repository: str) -> str:
    """The source of the install cell for ``version`` of the course at ``repository``."""
    return (
        "# Run this first. Where the course's package is missing (Colab, a Jupyter of your own) it installs\n"
        f"# stn-course {version} from its repository, keeping the PyTorch already installed; elsewhere it does nothing.\n"
        "try:\n"
        "    import stn_course  # noqa: F401\n"
        "except ModuleNotFoundError:\n"
        f'    %pip install --quiet "stn-course @ git+{repository}@v{version}"'
    )


def launch_badges(slug: str, repository: str) -> str:
    """Markdown badges that open the student lesson ``slug`` on Colab and on Binder."""
    owner_repo = repository.removeprefix("https://github.com/").strip("/")
    colab = f"https://colab.research.google.com/github/{owner_repo}/blob/main/lessons/{slug}.ipynb"
    binder = f"https://mybinder.org/v2/gh/{owner_repo}/main?labpath=lessons%2F{slug}.ipynb"
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def _cell_id(name: str, index: int) -> str:
    return hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:8]


def lesson_metadata(nb: dict) -> dict:
    """The course's notebook metadata: ``{"lesson": "02", "slug": "02_bilinear_sampling", "source_sha256": …}``."""
    meta = nb.get("metadata") if isinstance(nb, dict) else None
    course = meta.get("stn_course") if isinstance(meta, dict) else None
    return course if isinstance(course, dict) else {}


def percent_to_notebook(text: str, name: str, course_cells: bool = False) -> nbformat.NotebookNode:
    """Parse percent-format source into a notebook (no outputs, deterministic cell ids).

    The parsing is Jupytext's (``jupytext.reads(text, fmt="py:percent")``), so the sources open as notebooks in
    JupyterLab with Jupytext's extension too; the cells' ids are derived from ``name`` and position and Jupytext's
    own metadata is dropped (cell ``tags`` are kept), so regenerating is byte-for-byte reproducible. The notebook's
    metadata records the lesson (``metadata.stn_course``: number, slug, SHA-256 of the source), which
    ``stn-course assign`` keeps and the grader reads. The ``## Explore`` section gets :data:`EXPLORER_TIP`.
    ``course_cells=True`` (``stn-course build`` of a course's lessons) adds the Colab/Binder badges under the title
    and, before the first code cell, the cell that installs the course where it is missing
    (:func:`install_cell_source`).
    """
    try:
        import jupytext
    except ImportError as error:  # an author's tool: `pip install stn-course` alone does not bring it
        raise ImportError("stn-course build parses the lessons' sources with jupytext, an author's tool: "
                          "pip install 'stn-course[author]' (or the test extra)") from error

    from .course import split_front_matter

    full_text = text
    header, text = split_front_matter(text)  # the lesson's header is for the package (stn_course.course), not a cell
    for line in text.splitlines():
        if _CELL_MARKER.match(line):
            break
        if line.strip() and not line.startswith("#"):
            raise ValueError(f"{name}: code before the first '# %%' cell marker: {line!r}")
    parsed = jupytext.reads(text, fmt="py:percent")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"},
                   "stn_course": {"lesson": name[:2], "slug": name,
                                  "source_sha256": hashlib.sha256(full_text.encode()).hexdigest()}}
    version, repository = course_release() if course_cells else ("", "")
    install = nbformat.v4.new_code_cell(install_cell_source(version, repository)) if course_cells else None
    if install is not None:
        install.metadata = {"tags": [INSTALL_CELL_TAG]}
        install.id = _cell_id(name, -1)
    for index, cell in enumerate(parsed.cells):
        if cell.cell_type == "code" and install is not None:  # before the lesson's first code cell
            nb.cells.append(install)
            install = None
        if cell.cell_type == "markdown":
            tip = EXPLORE_HEADING.search(cell.source) and EXPLORER_TIP not in cell.source
            source = cell.source + ("\n\n" + EXPLORER_TIP if tip else "")
            if index == 0 and course_cells:  # the title cell: open this lesson on Colab or Binder
                title, _, rest = source.partition("\n")
                source = f"{title}\n\n{launch_badges(name, repository)}\n{rest}"
            new = nbformat.v4.new_markdown_cell(source)
        elif cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(cell.source)
        else:
            raise ValueError(f"{name}: cell {index} is a {cell.cell_type} cell; use code or markdown cells")
        new.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}  # nbgrader's: written below
        new.id = _cell_id(name, index)
        nb.cells.append(new)
    nbgrader_cells.annotate(nb.cells, name[:2], header, name)
    nbformat.validate(nb)
    return nb


def _stub_solutions(source: str, where: str) -> str:
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN_SOLUTION:
            if inside:
                raise ValueError(f"{where}: nested {BEGIN_SOLUTION}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in STUB)
        elif stripped == END_SOLUTION:
            if not inside:
                raise ValueError(f"{where}: {END_SOLUTION} without {BEGIN_SOLUTION}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN_SOLUTION} without {END_SOLUTION}")
    return "\n".join(out)


def make_student_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """Copy of a solution notebook with every solution region stubbed out, every written answer replaced by
    ``YOUR ANSWER HERE`` and all outputs stripped; its nbgrader cells get the locks and checksums nbgrader's
    release writes (:func:`.nbgrader_cells.release`)."""
    student = nbformat.from_dict(json.loads(json.dumps(nb)))
    for index, cell in enumerate(student.cells):
        if cell.cell_type == "code":
            cell.source = _stub_solutions(cell.source, f"{name}, cell {index}")
            cell.outputs = []
            cell.execution_count = None
        elif nbgrader_cells.ANSWER_TAG in cell.metadata.get("tags", []):
            cell.source = nbgrader_cells.ANSWER_STUB
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        nbgrader_cells.release(cell)
    return student


def is_stub_cell(cell: nbformat.NotebookNode) -> bool:
    """True for a code cell that holds a generated stub."""
    return cell.cell_type == "code" and "\n".join(STUB) in re.sub(r"\n\s+", "\n", cell.source)


def dumps(nb: nbformat.NotebookNode) -> str:
    """Serialize a notebook the way it is committed (stable key order, trailing newline)."""
    return nbformat.writes(nb) + "\n"


def build_solutions(source_dir: Path, solutions_dir: Path, check: bool = False) -> list[Path]:
    """Convert every ``NN_*.py`` in ``source_dir`` to ``solutions_dir/NN_*.ipynb``.

    With ``check=True`` nothing is written; returns the notebooks that are out of date. Building the package's own
    course (``source_dir`` is the repository's ``solutions/src``) also writes the lesson manifest
    ``stn_course/lessons.json`` (:mod:`stn_course.course`), which an installed package reads.
    """
    stale = _sync(
        {src.with_suffix(".ipynb").name: dumps(percent_to_notebook(src.read_text(), src.stem, course_cells=True))
         for src in sorted(Path(source_dir).glob("[0-9][0-9]_*.py"))},
        Path(solutions_dir), check,
    )
    from . import course

    if Path(source_dir).resolve() == course.MANIFEST.parents[1] / "solutions" / "src":
        text = course.manifest_text(Path(source_dir))
        if not course.MANIFEST.exists() or course.MANIFEST.read_text() != text:
            stale.append(course.MANIFEST)
            if not check:
                course.MANIFEST.write_text(text)
    return stale


def assign(solutions_dir: Path, lessons_dir: Path, check: bool = False) -> list[Path]:
    """Generate the student notebooks in ``lessons_dir`` from the solution notebooks in ``solutions_dir``.

    With ``check=True`` nothing is written; returns the lessons that are out of date.
    """
    expected = {}
    for path in sorted(Path(solutions_dir).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        expected[path.name] = dumps(make_student_notebook(nb, path.name))
    return _sync(expected, Path(lessons_dir), check)


def _sync(expected: dict[str, str], target_dir: Path, check: bool) -> list[Path]:
    stale = []
    for name, text in expected.items():
        target = target_dir / name
        if not target.exists() or target.read_text() != text:
            stale.append(target)
            if not check:
                target_dir.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    if target_dir.exists():
        stale.extend(p for p in sorted(target_dir.glob("[0-9][0-9]_*.ipynb")) if p.name not in expected)
        if not check:
            for p in target_dir.glob("[0-9][0-9]_*.ipynb"):
                if p.name not in expected:
                    p.unlink()
    return stale
