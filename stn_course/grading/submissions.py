"""Finding and reading submitted notebooks (classroom grading; runs in the grader, never executes them).

``stn-course grade`` takes notebooks and folders. A folder whose notebooks sit at its top level holds one
submission per file (files named by student, or the course's own ``NN_slug.ipynb``); a folder of folders holds one
folder per student. A notebook given on its own is its file name's student, or, named like the course's own
``NN_slug.ipynb``, its folder's (``class/ada/01_affine.ipynb`` is ada's). A notebook's lesson comes from the
metadata ``stn-course build``/``assign`` write (``metadata.stn_course.lesson`` and the source's hash), else from a
``NN_`` file-name prefix, else from the lesson numbers in its ``check("NN.…")`` calls.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..notebooks import GRADING_SKIP_TAG, lesson_metadata

__all__ = ["Submission", "discover", "load", "for_assignment", "MAX_NOTEBOOK_BYTES"]

MAX_NOTEBOOK_BYTES = 50 * 2**20
_PREFIX = re.compile(r"^(\d{2})_")
_LESSON = re.compile(r"\d{2}")
_CHECK_CALL = re.compile(r"check\(\s*[\"'](\d{2})\.")


@dataclass
class Submission:
    """One notebook to grade: who, which lesson, the code cells to run (``error`` says why it cannot be run)."""

    path: Path
    student: str
    lesson: str | None = None
    cells: list[tuple[int, str]] = field(default_factory=list)  # (cell index in the notebook, source)
    error: str | None = None
    source_sha256: str | None = None  # the hash of the lesson source the notebook was made from, if recorded
    counted: bool = True  # False for a duplicate or a lesson outside the assignment: reported, never scored


def _student_of(path: Path, folder: Path | None) -> str:
    if folder is not None and path.parent != folder:
        return path.relative_to(folder).parts[0]  # a folder per student
    return path.stem


def _student_of_file(path: Path) -> str:
    """The student of a notebook given on its own: its name, or its folder's where it has the course's own name
    (``class/ada/01_affine.ipynb`` is ada's: regrading one student's notebook keeps their name)."""
    if _PREFIX.match(path.name) and path.parent.name not in ("", ".", ".."):
        return path.parent.name
    return path.stem


def _walk(folder: Path) -> tuple[list[Path], list[Path]]:
    """Regular files under ``folder`` and the symbolic links met on the way (never followed)."""
    files, links = [], []
    for root, dirs, names in os.walk(folder, followlinks=False):
        here = Path(root)
        for name in list(dirs):
            if (here / name).is_symlink():
                links.append(here / name)
                dirs.remove(name)
            elif name.startswith(".") or name == ".ipynb_checkpoints":
                dirs.remove(name)
        for name in names:
            path = here / name
            if name.startswith("."):
                continue
            if path.is_symlink():
                links.append(path)
            elif path.is_file():
                files.append(path)
    return sorted(files), sorted(links)


def discover(paths: list[Path]) -> list[Submission]:
    """The submissions in ``paths`` (files and folders), sorted by student then path. Symbolic links inside a
    folder, and given files that are links or not regular files, are refused (each its own error): a link could
    point at the solutions or at a classmate's notebook."""
    found: list[Submission] = []
    for given in paths:
        given = Path(given)
        if not given.is_dir():
            if given.is_symlink():
                found.append(Submission(given, given.stem, error="a symbolic link, not a notebook file: hand in "
                                                                 "the notebook itself"))
            elif given.exists() and not given.is_file():
                found.append(Submission(given, given.stem, error="not a regular file"))
            else:
                found.append(load(given, _student_of_file(given)))
            continue
        files, links = _walk(given)
        for link in links:
            found.append(Submission(link, _student_of(link, given), error="a symbolic link, not a notebook file: "
                                                                          "hand in the notebook itself"))
        notebooks = [p for p in files if p.suffix == ".ipynb"]
        found += [load(p, _student_of(p, given)) for p in notebooks]
        students = {_student_of(p, given) for p in notebooks}
        for other in files:  # a file that is not a notebook, where its student handed in no notebook at all
            student = _student_of(other, given)
            if other.suffix != ".ipynb" and student not in students:
                found.append(Submission(other, student, error=f"not a notebook (.ipynb): {other.name}"))
        if not files and not links:
            found.append(Submission(given, given.name, error="the folder holds no notebook"))
    return sorted(found, key=lambda s: (s.student, str(s.path)))


def _malformed(nb) -> str | None:
    """What is wrong with ``nb`` as a notebook (the parts the grader reads, by nbformat 4's schema), or None."""
    if not isinstance(nb, dict):
        return "the file is not a JSON object"
    cells = nb.get("cells")
    if not isinstance(cells, list):
        return "no list of cells"
    if not isinstance(nb.get("metadata", {}), dict):
        return "the notebook's metadata is not an object"
    if not isinstance(nb.get("nbformat", 4), int) or isinstance(nb.get("nbformat", 4), bool):
        return "nbformat is not a number"
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            return f"cell {index} is not an object"
        if not isinstance(cell.get("cell_type"), str):
            return f"cell {index} has no cell_type"
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))):
            return f"cell {index}'s source is not text or a list of text"
        metadata = cell.get("metadata", {})
        if not isinstance(metadata, dict):
            return f"cell {index}'s metadata is not an object"
        tags = metadata.get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            return f"cell {index}'s tags are not a list of text"
    return None


def load(path: Path, student: str) -> Submission:
    """Read ``path`` as a notebook (JSON only: nothing in it runs here)."""
    submission = Submission(Path(path), student)
    match = _PREFIX.match(submission.path.name)
    submission.lesson = match.group(1) if match else None  # so that a broken NN_ file still counts as lesson NN
    try:
        size = submission.path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            submission.error = f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"
            return submission
        text = submission.path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        submission.error = "no such file"
        return submission
    except (OSError, UnicodeDecodeError) as exc:
        submission.error = f"cannot read the file ({type(exc).__name__})"
        return submission
    if not text.strip():
        submission.error = "the file is empty"
        return submission
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        submission.error = f"not a notebook: invalid JSON ({exc.msg} at line {exc.lineno})"
        return submission
    except (ValueError, RecursionError, MemoryError) as exc:  # a 5,000-digit number, nesting 100,000 deep
        submission.error = f"not a notebook: JSON this grader does not read ({type(exc).__name__})"
        return submission
    problem = _malformed(nb)
    if problem:
        submission.error = f"not a valid notebook: {problem}"
        return submission
    cells = nb["cells"]
    code = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if GRADING_SKIP_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        code.append((index, source))
    submission.cells = code
    try:
        meta = lesson_metadata(nb)
    except Exception:  # noqa: BLE001 – odd metadata is no lesson metadata
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    lesson = meta.get("lesson") if isinstance(meta.get("lesson"), str) and _LESSON.fullmatch(meta["lesson"]) else None
    lesson = lesson or submission.lesson
    if lesson is None:
        lessons = sorted(set(_CHECK_CALL.findall("\n".join(s for _, s in code))))
        lesson = lessons[0] if len(lessons) == 1 else None
    if lesson is None:
        submission.error = "cannot tell which lesson this is (no stn_course metadata, no NN_ file name)"
    submission.lesson = lesson
    recorded = meta.get("source_sha256")
    submission.source_sha256 = recorded if isinstance(recorded, str) else None
    return submission


def for_assignment(submissions: list[Submission], lessons: list[str], student: str | None = None) -> list[Submission]:
    """One notebook per lesson of the assignment for each student (Gradescope grades one student per run).

    A second notebook of the same lesson is reported and not scored (the one named like the course's own
    ``NN_slug.ipynb`` is kept, else the first by name); a notebook of another lesson is reported and not scored; a
    lesson with no notebook gets an entry with its points and no score. So a student's total never exceeds the
    assignment's maximum."""
    wanted = [str(lesson).zfill(2) for lesson in lessons]
    if student is not None:  # every file is one student's (Gradescope grades one student per run)
        for submission in submissions:
            submission.student = student
    chosen: list[Submission] = []
    by_student: dict[str, list[Submission]] = {}
    for submission in submissions:
        by_student.setdefault(submission.student, []).append(submission)
    for name, mine in sorted(by_student.items()):
        for lesson in wanted:
            candidates = [s for s in mine if s.lesson == lesson]
            candidates.sort(key=lambda s: (not _PREFIX.match(s.path.name), s.error is not None, str(s.path)))
            if not candidates:
                chosen.append(Submission(Path(f"{lesson}_missing.ipynb"), name, lesson,
                                         error=f"no notebook of lesson {lesson} was handed in"))
                continue
            chosen.append(candidates[0])
            for duplicate in candidates[1:]:
                duplicate.error = f"a second notebook of lesson {lesson} ({candidates[0].path.name} is graded)"
                duplicate.counted = False
                chosen.append(duplicate)
        for other in mine:
            if other.lesson not in wanted:
                other.error = (f"lesson {other.lesson} is not part of this assignment ({', '.join(wanted)})"
                               if other.lesson else other.error or "not a notebook of this assignment")
                other.counted = False
                chosen.append(other)
    return chosen
