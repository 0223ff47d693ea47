"""Written answers for manual grading (classroom grading: ``stn-course grade … --answers FILE``).

Each lesson's "Questions" are followed by a markdown cell tagged ``answer`` (nbgrader: a manually graded answer,
:mod:`stn_course.nbgrader_cells`) that the learner writes in. The checks cannot grade prose, so the grader exports
what each student wrote, per question, for an instructor to read: CSV (``.csv``, one row per student and question,
every cell made safe for spreadsheets by :func:`~stn_course.grading.reports.spreadsheet_safe`) or Markdown (``.md``,
a section per notebook; the answers in fenced blocks, names and questions escaped, so nothing a student wrote
renders as markup). The answers are read from the notebook's JSON, never executed; an answer cell still holding
``YOUR ANSWER HERE`` (or empty) is reported as unanswered.

Question ids are ``NN.qK`` (lesson ``NN``, question ``K``): from the cell's nbgrader grade id ``answer_NN_qK`` when
it has one, else from the answer cells' order in the notebook.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..nbgrader_cells import ANSWER_STUB, ANSWER_TAG
from .reports import shown, spreadsheet_safe
from .submissions import MAX_NOTEBOOK_BYTES, Submission

__all__ = ["WrittenAnswer", "read_answers", "collect", "to_csv", "to_markdown", "render", "FORMATS"]

_GRADE_ID = re.compile(r"^answer_(\d{2})_q(\d+)$")
_QUESTION = re.compile(r"^\*\*\d+\.\*\*\s*")
CSV_COLUMNS = ("student", "lesson", "question", "answered", "answer", "prompt", "file")
PROMPT_CHARS = 500  # a question's text is the course's; a longer one was edited, and is cut


@dataclass(frozen=True)
class WrittenAnswer:
    """What one student wrote for one question (``text`` empty when unanswered)."""
    student: str
    lesson: str
    question: str  # "01.q2"
    prompt: str  # the question's text, from the markdown cell before the answer cell
    text: str
    path: Path

    @property
    def answered(self) -> bool:
        return bool(self.text)


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _cells(path: Path) -> list[dict]:
    """The notebook's cells (objects only), or [] when the file is no readable notebook (the grading outputs say
    why)."""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return []
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
        return []
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def _is_answer(cell: dict) -> bool:
    metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
    role = metadata.get("nbgrader") if isinstance(metadata.get("nbgrader"), dict) else {}
    grade_id = role.get("grade_id") if isinstance(role.get("grade_id"), str) else ""
    return cell.get("cell_type") == "markdown" and (ANSWER_TAG in tags or bool(_GRADE_ID.match(grade_id)))


def _question_id(cell: dict, lesson: str, order: int) -> str:
    role = cell.get("metadata", {}).get("nbgrader")
    match = _GRADE_ID.match(role.get("grade_id", "")) if isinstance(role, dict) and isinstance(
        role.get("grade_id"), str) else None
    return f"{match[1]}.q{int(match[2])}" if match else f"{lesson}.q{order}"


def read_answers(path: Path, student: str, lesson: str | None) -> list[WrittenAnswer]:
    """The written answers in the notebook at ``path`` (JSON only: nothing in it runs)."""
    cells = _cells(Path(path))
    lesson = lesson or "??"
    found, order, prompt = [], 0, ""
    for cell in cells:
        if _is_answer(cell):
            order += 1
            text = _text(cell).strip()
            found.append(WrittenAnswer(student, lesson, _question_id(cell, lesson, order), prompt,
                                       "" if text == ANSWER_STUB else text, Path(path)))
        elif cell.get("cell_type") == "markdown":
            text = _text(cell).strip()
            prompt = _QUESTION.sub("", text)[:PROMPT_CHARS] if _QUESTION.match(text) else ""
    return found


def collect(submissions: list[Submission]) -> list[WrittenAnswer]:
    """Every submission's written answers, in the submissions' order (a file that is no notebook has none)."""
    return [answer for s in submissions for answer in read_answers(s.path, s.student, s.lesson)]


def to_csv(answers: list[WrittenAnswer]) -> str:
    """One row per student and question (:data:`CSV_COLUMNS`), every text cell spreadsheet-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for a in answers:
        writer.writerow([spreadsheet_safe(v) for v in (a.student, a.lesson, a.question, "yes" if a.answered else "no",
                                                      a.text, a.prompt, a.path.name)])
    return out.getvalue()


def _escaped(text: str) -> str:
    """``text`` as inert Markdown on one line: control characters shown escaped, HTML and markup characters
    escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~])", r"\\\1", html.escape(shown(text), quote=False))


def _fenced(text: str) -> str:
    """``text`` in a fenced block no line of it can close (a fence longer than its longest run of backticks)."""
    lines = ["".join(shown(c) if c != "\t" else c for c in line) for line in text.splitlines()]
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence + "text", *lines, fence])


def to_markdown(answers: list[WrittenAnswer]) -> str:
    """A section per notebook, a subsection per question: its text and the answer in a fenced block."""
    lines = ["# Written answers", ""]
    notebook = None
    for a in answers:
        if (a.student, a.path) != notebook:
            notebook = (a.student, a.path)
            lines += [f"## {_escaped(a.student)}: lesson {_escaped(a.lesson)} ({_escaped(a.path.name)})", ""]
        lines += [f"### {_escaped(a.question)}", ""]
        if a.prompt:
            lines += [_escaped(a.prompt), ""]
        lines += [_fenced(a.text) if a.answered else "*(no answer)*", ""]
    return "\n".join(lines)


FORMATS = {".csv": to_csv, ".md": to_markdown, ".markdown": to_markdown}


def render(answers: list[WrittenAnswer], path: Path) -> str:
    """The export for ``path``, its format chosen by the extension (:data:`FORMATS`)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"--answers {str(path)!r}: expected a .csv or .md file, got {suffix or 'no extension'!r}")
    return FORMATS[suffix](answers)
