"""Finding and reading submitted notebooks (classroom grading; runs in the grader, never executes them).

``stn-course grade`` takes notebooks and folders. A folder whose notebooks sit at its top level holds one
submission per file (files named by student, or the course's own ``NN_slug.ipynb``); a folder of folders holds one
folder per student. A notebook's lesson comes from the metadata ``stn-course build``/``assign`` write
(``metadata.stn_course.lesson`` and the source's hash), else from a ``NN_`` file-name prefix, else from the lesson
numbers in its ``check("NN.…")`` calls.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..notebooks import GRADING_SKIP_TAG, lesson_metadata

__all__ = ["Submission", "discover", "load", "MAX_NOTEBOOK_BYTES"]

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


def _student_of(path: Path, folder: Path | None) -> str:
    if folder is not None and path.parent != folder:
        return path.relative_to(folder).parts[0]  # a folder per student
    return path.stem


def discover(paths: list[Path]) -> list[Submission]:
    """The submissions in ``paths`` (files and folders), sorted by student then path."""
    found: list[Submission] = []
    for given in paths:
        given = Path(given)
        if not given.is_dir():
            found.append(load(given, given.stem))
            continue
        files = sorted(p for p in given.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts
                       and not any(part.startswith(".") for part in p.relative_to(given).parts))
        notebooks = [p for p in files if p.suffix == ".ipynb"]
        found += [load(p, _student_of(p, given)) for p in notebooks]
        students = {_student_of(p, given) for p in notebooks}
        for other in files:  # a file that is not a notebook, where its student handed in no notebook at all
            student = _student_of(other, given)
            if other.suffix != ".ipynb" and student not in students:
                found.append(Submission(other, student, error=f"not a notebook (.ipynb): {other.name}"))
        if not files:
            found.append(Submission(given, given.name, error="the folder holds no notebook"))
    return sorted(found, key=lambda s: (s.student, str(s.path)))


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
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        submission.error = "not a notebook: no list of cells"
        return submission
    code = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if not isinstance(source, str):
            continue
        tags = (cell.get("metadata") or {}).get("tags") or [] if isinstance(cell.get("metadata"), dict) else []
        if GRADING_SKIP_TAG in tags:
            continue
        code.append((index, source))
    submission.cells = code
    meta = lesson_metadata(nb) if isinstance(nb, dict) else {}
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
