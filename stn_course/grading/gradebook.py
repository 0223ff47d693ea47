"""The class gradebook: one row per student from every submission's result (classroom grading, ``--csv``, ``--merge``).

It works on *records*, the submissions of the ``--json`` output (:meth:`SubmissionResult.as_json` plus
``modified``, the file's modification time), so that a regrade can merge its results into the class's previous ones
(``--merge``: the JSON is the source of truth) and rebuild every output for the whole class.

A row is a student: the roster's (``--roster``, :mod:`~stn_course.grading.roster`), or, without a roster or for a
submission no roster entry matches, the submission's file or folder name. Each lesson of the assignment
(``--assignment``, else every lesson handed in by the class) is counted once per student: of several notebooks of
one lesson the best (``duplicates="best"``) or the latest by modification time (``"latest"``) counts, the others are
reported. ``max_total`` is the assignment's maximum for every student, whatever their files did.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import registry
from ..checks.registry import ERROR, TIMED_OUT
from . import reports
from .grader import SubmissionResult
from .roster import Roster, Student

__all__ = ["DUPLICATES", "Row", "Gradebook", "GradebookError", "records_of", "build", "to_csv", "class_json",
           "load_previous", "merge", "failed_paths", "loose_ends", "NO_SUBMISSION", "NOT_ON_ROSTER", "GRADED"]

DUPLICATES = ("best", "latest")
GRADED, NO_SUBMISSION, NOT_ON_ROSTER = "graded", "no submission", "not on roster"
_PLACEHOLDER = "no notebook of lesson"  # submissions.for_assignment's entry for a lesson nobody handed in


class GradebookError(ValueError):
    """A previous ``--json`` output that cannot be merged: the message says why."""


@dataclass
class Row:
    """One student's line of the gradebook."""

    submitted_as: list[str]  # the file or folder names that are this student's
    student: Student | None = None  # the roster's entry
    scores: dict[str, float] = field(default_factory=dict)  # exercise id -> score
    lesson_totals: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    max_total: float = 0.0
    status: str = GRADED
    errors: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counted: list[dict] = field(default_factory=list)  # the records that count


@dataclass
class Gradebook:
    rows: list[Row]
    lessons: list[str]
    lesson_max: dict[str, float]
    exercises: list[str]  # column order: by lesson, then id
    unmatched: list[str] = field(default_factory=list)  # submissions no roster entry matches
    missing: list[Student] = field(default_factory=list)  # roster students with no submission
    duplicates: list[dict] = field(default_factory=list)  # {"student", "lesson", "counted", "ignored": [paths]}
    roster: Roster | None = None


def records_of(results: list[SubmissionResult]) -> list[dict]:
    """The JSON records of freshly graded ``results``, with each file's modification time (None for no file)."""
    records = []
    for r in results:
        record = r.as_json()
        try:
            record["modified"] = os.stat(r.path).st_mtime if Path(r.path).is_file() else None
        except OSError:
            record["modified"] = None
        records.append(record)
    return records


def _counts(record: dict) -> bool:
    """Whether a record is a scored notebook of a lesson (not a duplicate or another lesson the grader skipped)."""
    return bool(record.get("lesson")) and not (record.get("error") and not record.get("max_score"))


def _registry_max(lesson: str) -> tuple[float, list[str]]:
    checks = [c for c in registry.all_checks() if c.lesson == lesson]
    return float(sum(c.points for c in checks)), [c.id for c in checks]


def _choose(candidates: list[dict], duplicates: str) -> dict:
    if duplicates == "latest":
        return max(candidates, key=lambda r: (r.get("modified") or float("-inf"), r.get("score", 0.0), r["path"]))
    return max(candidates, key=lambda r: (r.get("score", 0.0), r.get("modified") or float("-inf"), r["path"]))


def _review_text(record: dict) -> str:
    flags = sorted({(f"cell {f['cell']}: " if f.get("cell") is not None else "") + str(f.get("rule"))
                    for f in record.get("review") or []})
    return f"{Path(record['path']).name}: " + ", ".join(flags)


def build(records: list[dict], roster: Roster | None = None, lessons: list[str] | None = None,
          duplicates: str = "best") -> Gradebook:
    """The gradebook of ``records`` (every submission of the class): rows keyed by roster student or name."""
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {', '.join(DUPLICATES)}, not {duplicates!r}")
    lessons = sorted({str(x).zfill(2) for x in lessons} if lessons else
                     {r["lesson"] for r in records if _counts(r)})
    lesson_max, lesson_ids = {}, {}
    for lesson in lessons:
        points, ids = _registry_max(lesson)
        graded = [r for r in records if r.get("lesson") == lesson and _counts(r)]
        lesson_max[lesson] = max([float(r["max_score"]) for r in graded] + [points])
        lesson_ids[lesson] = sorted({e["id"] for r in graded for e in r.get("exercises", [])} | set(ids))
    rows: dict[tuple[str, str], Row] = {}
    unmatched: list[str] = []
    for record in records:
        student = roster.match(record["student"]) if roster is not None else None
        key = ("id", student.student_id) if student else ("name", record["student"])
        row = rows.setdefault(key, Row([], student))
        if record["student"] not in row.submitted_as:
            row.submitted_as.append(record["student"])
        if roster is not None and student is None and record["student"] not in unmatched:
            unmatched.append(record["student"])
        row.counted.append(record)  # sorted out below
    book = Gradebook([], lessons, lesson_max, [i for lesson in lessons for i in lesson_ids[lesson]],
                     sorted(unmatched), roster=roster)
    for key, row in rows.items():
        mine, row.counted = row.counted, []
        for record in mine:
            if not _counts(record) or record["lesson"] not in lessons:
                if record.get("error"):
                    row.errors.append(f"{Path(record['path']).name}: {record['error']}")
                elif record.get("lesson") not in lessons:
                    row.errors.append(f"{Path(record['path']).name}: lesson {record.get('lesson')} is not part "
                                      f"of this assignment")
            if record.get("review"):
                row.review.append(_review_text(record))
        for lesson in lessons:
            candidates = [r for r in mine if _counts(r) and r["lesson"] == lesson]
            real = [r for r in candidates if not str(r.get("error") or "").startswith(_PLACEHOLDER)]
            candidates = real or candidates
            if not candidates:
                row.errors.append(f"no notebook of lesson {lesson}")
                row.lesson_totals[lesson] = 0.0
                continue
            chosen = _choose(candidates, duplicates)
            row.counted.append(chosen)
            if len(candidates) > 1:
                ignored = [r["path"] for r in candidates if r is not chosen]
                book.duplicates.append({"student": row.student.student_id if row.student else key[1],
                                        "lesson": lesson, "counted": chosen["path"], "ignored": ignored})
                row.notes.append(f"{len(candidates)} notebooks of lesson {lesson}: {Path(chosen['path']).name} "
                                 f"counted ({duplicates}), " + ", ".join(Path(p).name for p in ignored) + " not")
            if chosen.get("error"):
                row.errors.append(f"{Path(chosen['path']).name}: {chosen['error']}")
            for e in chosen.get("exercises", []):
                row.scores[e["id"]] = round(float(e["score"]), 4)
            row.lesson_totals[lesson] = round(float(chosen.get("score", 0.0)), 4)
        row.total = round(sum(row.lesson_totals.values()), 4)
        row.max_total = round(sum(lesson_max.values()), 4)
        row.status = NOT_ON_ROSTER if roster is not None and row.student is None else GRADED
    book.rows = list(rows.values())
    if roster is not None:
        present = {row.student.student_id for row in book.rows if row.student}
        book.missing = [s for s in roster.students if s.student_id not in present]
        for student in book.missing:
            book.rows.append(Row([], student, {}, {lesson: 0.0 for lesson in lessons}, 0.0,
                                 round(sum(lesson_max.values()), 4), NO_SUBMISSION))
    book.rows.sort(key=lambda r: (r.student is None, (r.student.student_id if r.student else ""),
                                  ", ".join(r.submitted_as)))
    return book


def _columns(book: Gradebook) -> list[str]:
    return ["student", "student_id", "email", "name", *book.exercises, *(f"{lesson} total" for lesson in book.lessons),
            "total", "max_total", "status", "errors", "review", "notes"]


def to_csv(book: Gradebook) -> str:
    """One row per student: who (the submission names, the roster's id, e-mail and name), a score per exercise, a
    total per lesson, the total and the maximum, the status, errors, review flags and notes (duplicates). Cells are
    escaped for spreadsheets (:func:`reports.spreadsheet_safe`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, _columns(book), restval="", lineterminator="\n")
    writer.writeheader()
    for row in book.rows:
        line = {"student": "; ".join(row.submitted_as),
                "student_id": row.student.student_id if row.student else "",
                "email": row.student.email if row.student else "",
                "name": row.student.name if row.student else "",
                "total": row.total, "max_total": row.max_total, "status": row.status,
                "errors": "; ".join(row.errors), "review": "; ".join(row.review), "notes": "; ".join(row.notes)}
        line.update({i: row.scores.get(i, 0.0) for i in book.exercises})
        line.update({f"{lesson} total": row.lesson_totals.get(lesson, 0.0) for lesson in book.lessons})
        writer.writerow({k: reports.spreadsheet_safe(v) for k, v in line.items()})
    return out.getvalue()


def class_json(records: list[dict], book: Gradebook, sandbox: str, seed_kind: str) -> dict:
    """The ``--json`` output for the whole class (schema in :mod:`~stn_course.grading.reports`): every record, the
    roster (so that a later ``--merge`` without ``--roster`` keeps it) and what the roster did not match."""
    counted = {id(r) for row in book.rows for r in row.counted}
    return {"version": reports.SCHEMA_VERSION, "sandbox": sandbox, "seed": seed_kind,
            "summary": reports.summary(records),
            "roster": None if book.roster is None else {
                **book.roster.as_json(), "unmatched_submissions": book.unmatched,
                "students_without_submission": [s.student_id for s in book.missing]},
            "duplicates": book.duplicates,
            "submissions": [{**r, "counted": id(r) in counted} for r in records]}


def loose_ends(book: Gradebook) -> list[str]:
    """Lines for stdout: the roster's unmatched submissions and students without one, and duplicates."""
    lines = []
    if book.roster is not None:
        lines.append(f"roster ({book.roster.format}, {len(book.roster.students)} students): "
                     f"{len(book.rows) - len(book.missing) - len(book.unmatched)} matched")
        if book.unmatched:
            lines.append(f"  {len(book.unmatched)} submission(s) not on the roster: {', '.join(book.unmatched)}")
        if book.missing:
            lines.append(f"  {len(book.missing)} student(s) with no submission: "
                         + ", ".join(f"{s.student_id} ({s.name or s.email})" for s in book.missing))
    for d in book.duplicates:
        lines.append(f"duplicate: {d['student']} handed in lesson {d['lesson']} {len(d['ignored']) + 1} times; "
                     f"{Path(d['counted']).name} counts, not {', '.join(Path(p).name for p in d['ignored'])}")
    return lines


def load_previous(path: Path) -> dict:
    """The previous ``--json`` output at ``path``, checked enough to merge into (same major schema version)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GradebookError(f"--merge reads the class's previous --json output, and {str(path)!r} does not "
                             "exist (grade the class once without --merge first)") from None
    except (OSError, ValueError) as exc:
        raise GradebookError(f"cannot read the previous results {str(path)!r}: {exc}") from None
    version = str(data.get("version", "")) if isinstance(data, dict) else ""
    if version.split(".")[0] != reports.SCHEMA_VERSION.split(".")[0] or not isinstance(data.get("submissions"), list):
        raise GradebookError(f"{str(path)!r} is not a stn-course grade --json output of schema "
                             f"{reports.SCHEMA_VERSION.split('.')[0]}.x (version {version or 'missing'})")
    return data


def _key(record: dict) -> tuple:
    """A record's identity for merging: its file, or for an entry with no file (a lesson not handed in) the path
    and the student."""
    path = Path(record["path"])
    return ("file", os.path.realpath(path)) if path.is_file() else ("entry", record["path"], record["student"])


def merge(previous: list[dict], fresh: list[dict]) -> list[dict]:
    """``previous`` records with those of the files graded now replaced by ``fresh`` (the others kept as they were).
    A regraded file keeps the student name it had (a file given on its own cannot tell its folder's student)."""
    old = {_key(r): r for r in previous}
    for record in fresh:
        before = old.get(_key(record))
        if before is not None:
            record["student"] = before["student"]
    replaced = {_key(r) for r in fresh}
    kept = [{k: v for k, v in r.items() if k != "counted"} for r in previous if _key(r) not in replaced]
    return sorted(kept + fresh, key=lambda r: (r["student"], r["path"]))


def failed_paths(previous: list[dict]) -> set[str]:
    """The files (real paths) whose previous result was an error or a time-out (``--only-failed`` regrades them)."""
    failed = set()
    for record in previous:
        statuses = {e.get("status") for e in record.get("exercises", [])}
        if record.get("error") or statuses & {ERROR, TIMED_OUT}:
            key = _key(record)
            if key[0] == "file":
                failed.add(key[1])
    return failed
