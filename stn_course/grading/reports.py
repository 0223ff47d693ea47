"""The grader's outputs: a table, JSON, Gradescope's ``results.json``, GitHub Classroom's result (classroom
grading; the CSV gradebook and the class report are :mod:`~stn_course.grading.gradebook`'s and
:mod:`~stn_course.grading.class_report`'s).

JSON schema (``SCHEMA_VERSION``, documented in ``docs/grading.md``)::

    {"version": "1.1", "sandbox": str, "seed": "instructor" | "default",
     "summary": {"submissions", "graded", "mean_score", "median_score", "min_score", "max_score",
                 "mean_max_score", "seconds_per_submission"},
     "roster": null | {"format", "source", "students": [{"student_id", "email", "name", "github", "aliases"}],
                       "unmatched_submissions": [str], "students_without_submission": [str]},
     "duplicates": [{"student", "lesson", "counted": path, "ignored": [path]}],
     "submissions": [{"path", "student", "lesson", "score", "max_score", "error", "sandbox", "modified", "counted",
                      "lesson_source_sha256", "cells": [{"index", "status", "error"}],
                      "exercises": [{"id", "title", "score", "max_score", "status", "feedback",
                                     "visible_cases": {"passed", "total"},
                                     "hidden_cases": {"passed", "total", "failed_cases": [int], "feedback"}}],
                      "timing": {"seconds", "execution_seconds", "restarts"}}]}

1.1 added ``roster``, ``duplicates``, the summary's median/min/max, a submission's ``modified`` (file mtime) and
``counted`` (whether the gradebook counts it), and ``hidden_cases.failed_cases`` (the numbers of the hidden cases
that failed, for the instructor's class report; never in Gradescope's or Classroom's output). The CSV gradebook
and ``--merge`` are :mod:`~stn_course.grading.gradebook`'s.

Exercise ids are the check ids (``"02.bilinear_sample"``); statuses are ``passed``, ``failed``, ``error``,
``timed out``, ``missing`` and ``banned call``. Feedback never holds a hidden case's inputs or results.
"""
from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from statistics import mean, median

from ..checks.registry import BANNED, ERROR, FAILED, MISSING, PASSED, TIMED_OUT
from .grader import SubmissionResult

__all__ = ["SCHEMA_VERSION", "to_json", "to_gradescope", "to_classroom", "table", "write_text", "dumps",
           "shown", "spreadsheet_safe"]

SCHEMA_VERSION = "1.1"
_SYMBOL = {PASSED: "✓", FAILED: "✗", ERROR: "E", TIMED_OUT: "T", MISSING: "·", BANNED: "B"}  # a status each
# the outputs' own vocabularies (not the registry's statuses): a Gradescope test and a Classroom test
GRADESCOPE_PASSED, GRADESCOPE_FAILED = "passed", "failed"
CLASSROOM_PASS, CLASSROOM_FAIL, CLASSROOM_ERROR = "pass", "fail", "error"


def _finite(value):
    """``value`` with every float made finite (NaN and infinities become 0.0), recursively: strict JSON parsers
    reject NaN, and no number in an output may come from the student's process unchecked."""
    if isinstance(value, float):
        return value if math.isfinite(value) else 0.0
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(report: dict) -> str:
    """Strict JSON (no NaN or Infinity) for a report."""
    return json.dumps(_finite(report), indent=2, allow_nan=False, ensure_ascii=False)


def shown(text: str) -> str:
    """``text`` for a terminal: control characters (newlines, ANSI escapes) shown escaped, never obeyed."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def spreadsheet_safe(value):
    """A CSV cell that a spreadsheet will not run as a formula: text starting with ``= + - @`` (or a tab or carriage
    return) gets a leading apostrophe; control characters are escaped. Numbers pass as they are."""
    if not isinstance(value, str):
        return value
    value = shown(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def summary(results: list[SubmissionResult] | list[dict]) -> dict:
    """Counts and score statistics of ``results`` (results, or their JSON records): mean, median, min and max."""
    records = [r if isinstance(r, dict) else r.as_json() for r in results]
    scores = [float(r["score"]) for r in records]
    return {
        "submissions": len(records),
        "graded": sum(r.get("error") is None for r in records),
        "mean_score": round(mean(scores), 4) if scores else 0.0,
        "median_score": round(median(scores), 4) if scores else 0.0,
        "min_score": round(min(scores), 4) if scores else 0.0,
        "max_score": round(max(scores), 4) if scores else 0.0,
        "mean_max_score": round(mean(float(r["max_score"]) for r in records), 4) if records else 0.0,
        "seconds_per_submission": (round(mean(float(r["timing"]["seconds"]) for r in records), 3) if records
                                   else 0.0),
    }


def to_json(results: list[SubmissionResult], sandbox: str, seed_kind: str) -> dict:
    return {"version": SCHEMA_VERSION, "sandbox": sandbox, "seed": seed_kind, "summary": summary(results),
            "submissions": [r.as_json() for r in results]}


def to_gradescope(results: list[SubmissionResult], sandbox: str) -> dict:
    """Gradescope's ``results.json``: one test per exercise's visible part (its score and text about the visible
    cases only) and one per hidden part, ``after_published``; the sandbox in the output. No top-level ``score``:
    Gradescope's specification makes it optional when every test has one and then sums the tests, so the total
    never holds the hidden part's points before the tests that hold them are published. (Gradescope grades one
    submission per run: a folder with several notebooks gets all their exercises.)"""
    tests = []
    for r in results:
        prefix = f"{r.student} – " if len(results) > 1 else ""
        if r.error is not None:
            tests.append({"name": f"{prefix}{Path(r.path).name}", "score": 0.0, "max_score": r.max_score,
                          "status": GRADESCOPE_FAILED, "output": f"This notebook could not be graded: {r.error}",
                          "visibility": "visible"})
            continue
        for e in r.exercises:
            v_total, h_total = e.visible[1], e.hidden[1]
            total = max(v_total + h_total, 1)
            share = e.max_score / total
            v_score = 0.0 if e.status == BANNED else round(share * e.visible[0], 4)
            h_score = round(e.score - v_score, 4)
            v_max, h_max = round(share * v_total, 4), round(e.max_score - share * v_total, 4)
            tests.append({"name": f"{prefix}{e.id}: {e.title}", "number": e.id, "score": v_score,
                          "max_score": v_max,
                          "status": (GRADESCOPE_PASSED if e.visible[0] == v_total and e.status != BANNED
                                     else GRADESCOPE_FAILED),
                          "output": e.feedback, "visibility": "visible"})
            if h_total:
                ok = e.hidden[0] == h_total and e.status != BANNED
                tests.append({"name": f"{prefix}{e.id}: hidden cases", "number": f"{e.id}.hidden", "score": h_score,
                              "max_score": h_max, "status": GRADESCOPE_PASSED if ok else GRADESCOPE_FAILED,
                              "output": e.hidden_feedback or (f"passed all {h_total} hidden cases" if ok
                                                              else f"passed {e.hidden[0]} of {h_total} hidden cases"),
                              "visibility": "after_published"})
    return {"execution_time": round(sum(r.seconds for r in results), 3),
            "output": f"Graded by stn-course ({sandbox}).", "stdout_visibility": "hidden", "tests": tests}


def to_classroom(results: list[SubmissionResult]) -> dict:
    """The result GitHub Classroom's grading reporter reads (``education/autograding-grading-reporter``): version
    1, a status, the maximum score and one test per exercise with its score."""
    tests = []
    for r in results:
        for e in r.exercises:
            tests.append({"name": e.id, "status": CLASSROOM_PASS if e.status == PASSED else
                          (CLASSROOM_ERROR if e.status in (ERROR, TIMED_OUT) else CLASSROOM_FAIL),
                          "message": e.feedback, "score": e.score, "max_score": e.max_score})
        if r.error is not None and not r.exercises:
            tests.append({"name": Path(r.path).name, "status": CLASSROOM_ERROR, "message": r.error, "score": 0.0})
    max_score = round(sum(r.max_score for r in results), 4)
    full = all(r.error is None and r.score >= r.max_score for r in results) and bool(results)
    return {"version": 1, "status": CLASSROOM_PASS if full else CLASSROOM_FAIL, "max_score": max_score, "tests": tests}


def publish_classroom(result: dict) -> str:
    """Base64 of the classroom result; appended as ``result=…`` to ``$GITHUB_OUTPUT`` when that is set."""
    encoded = base64.b64encode(json.dumps(result).encode()).decode()
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"result={encoded}\n")
    return encoded


def table(results: list[SubmissionResult], sandbox: str, seed_kind: str) -> str:
    """The summary printed on stdout: a line per submission, then counts, the mean and seconds per submission."""
    lines = []
    width = max([len(shown(r.student)) for r in results] + [7])
    for r in results:
        marks = "".join(_SYMBOL.get(e.status, "?") for e in r.exercises)
        tail = f"  {shown(r.error)}" if r.error else ""
        review = f"  [review: {len(r.review)}]" if r.review else ""
        lines.append(f"{shown(r.student):{width}s}  {r.lesson or '??'}  {r.score:6.2f} / {r.max_score:5.2f}  {marks}"
                     f"  {r.seconds:5.1f} s{tail}{review}")
    s = summary(results)
    lines += ["",
              f"{s['submissions']} submission(s), {s['graded']} graded; mean score {s['mean_score']:.2f} of "
              f"{s['mean_max_score']:.2f} (median {s['median_score']:.2f}, min {s['min_score']:.2f}, max "
              f"{s['max_score']:.2f}); {s['seconds_per_submission']:.2f} s per submission",
              f"({sandbox})",
              "exercise marks: ✓ passed  ✗ failed  E error  T timed out  · missing  B banned call"]
    if seed_kind == "default":
        lines.append("warning: no --seed-file, so the hidden cases use the course's public default seed; students "
                     "could compute them. Pass --seed-file with a secret for real grading.")
    return "\n".join(lines)


def write_text(path: Path, text: str) -> None:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
