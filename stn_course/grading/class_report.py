"""The HTML class report (classroom grading, ``stn-course grade --report FILE``).

One self-contained page for the instructor (the plots are PNGs embedded as base64, no script, no CDN): per-exercise
pass rates and score histograms, the score distribution of the class, the hidden cases most often failed (an
exercise id and a case number – never a case's inputs), the submissions flagged for review
(:mod:`~stn_course.grading.review`), time per submission, and the roster's loose ends (submissions no roster entry
matches, students with no submission). Every text from a submission or the roster is escaped.
"""
from __future__ import annotations

import base64
import html
import io
from collections import Counter
from pathlib import Path
from statistics import mean, median

from ..checks.registry import PASSED
from .gradebook import Gradebook

__all__ = ["render", "pass_rates", "hardest_hidden_cases", "HARDEST_SHOWN"]

HARDEST_SHOWN = 15  # the hidden cases listed, most failures first


def pass_rates(book: Gradebook) -> dict[str, tuple[int, int]]:
    """Per exercise: (students who passed it, students with a counted notebook of its lesson)."""
    rates = {i: [0, 0] for i in book.exercises}
    for row in book.rows:
        for record in row.counted:
            for e in record.get("exercises", []):
                if e["id"] in rates:
                    rates[e["id"]][1] += 1
                    rates[e["id"]][0] += e.get("status") == PASSED
    return {i: (p, n) for i, (p, n) in rates.items()}


def hardest_hidden_cases(book: Gradebook) -> list[tuple[str, int, int]]:
    """``(exercise id, hidden case number, students who failed it)``, most failed first (counted notebooks only)."""
    failures: Counter[tuple[str, int]] = Counter()
    for row in book.rows:
        for record in row.counted:
            for e in record.get("exercises", []):
                for number in (e.get("hidden_cases") or {}).get("failed_cases", []):
                    failures[(e["id"], int(number))] += 1
    return [(i, n, count) for (i, n), count in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))]


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _img(data: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _figures(book: Gradebook, records: list[dict]) -> dict[str, str]:
    """The report's plots as base64 PNGs: pass rates, per-exercise score histograms, totals, time per submission."""
    from matplotlib.figure import Figure  # no pyplot: no backend or global state is touched

    figures = {}
    rates = pass_rates(book)
    ids = list(rates)
    fig = Figure(figsize=(max(4, 0.6 * len(ids) + 2), 3))
    ax = fig.subplots()
    ax.bar(range(len(ids)), [p / n if n else 0.0 for p, n in rates.values()], color="#4c72b0")
    ax.set_xticks(range(len(ids)), ids, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of students passing")
    figures["pass rates"] = _png(fig)

    columns = 4
    lines = max(1, -(-len(ids) // columns))
    fig = Figure(figsize=(3 * columns, 2.2 * lines))
    axes = fig.subplots(lines, columns, squeeze=False)
    for ax, exercise in zip(axes.flat, ids):
        scores = [row.scores[exercise] for row in book.rows if exercise in row.scores]
        ax.hist(scores, bins=10, color="#55a868")
        ax.set_title(exercise, fontsize=8)
    for ax in list(axes.flat)[len(ids):]:
        ax.axis("off")
    fig.tight_layout()
    figures["score histograms"] = _png(fig)

    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    ax.hist([row.total for row in book.rows], bins=15, color="#8172b2")
    ax.set_xlabel("total score")
    ax.set_ylabel("students")
    figures["totals"] = _png(fig)

    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    ax.hist([float(r.get("timing", {}).get("seconds", 0.0)) for r in records], bins=15, color="#c44e52")
    ax.set_xlabel("seconds per submission")
    ax.set_ylabel("submissions")
    figures["time per submission"] = _png(fig)
    return figures


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(key: str, title: str, content: str) -> str:
    return f'<section id="{key}"><h2>{html.escape(title)}</h2>{content}</section>'


def render(book: Gradebook, records: list[dict], title: str = "stn-course class report") -> str:
    """The report's HTML for a class's gradebook and every record graded (for times and review flags)."""
    figures = _figures(book, records)
    totals = [row.total for row in book.rows]
    maximum = max([row.max_total for row in book.rows] + [0.0])
    rates = pass_rates(book)
    hardest = hardest_hidden_cases(book)
    seconds = [float(r.get("timing", {}).get("seconds", 0.0)) for r in records]
    flagged = [[r["student"], Path(r["path"]).name,
                "; ".join(sorted({(f"cell {f['cell']}: " if f.get("cell") is not None else "") + str(f.get("rule"))
                                  for f in r["review"]}))] for r in records if r.get("review")]
    overview = _table(["students", "submissions", "lessons", "mean", "median", "min", "max", "of"],
                      [[len(book.rows), len(records), ", ".join(book.lessons),
                        *(f"{v:.2f}" for v in ((mean(totals), median(totals), min(totals), max(totals))
                                               if totals else (0, 0, 0, 0))), f"{maximum:.2f}"]])
    parts = [
        _section("overview", "Overview", overview + _img(figures["totals"], "histogram of the students' totals")),
        _section("pass-rates", "Pass rate per exercise",
                 _img(figures["pass rates"], "pass rate per exercise") +
                 _table(["exercise", "passed", "of", "rate"],
                        [[i, p, n, f"{p / n:.0%}" if n else "–"] for i, (p, n) in rates.items()])),
        _section("histograms", "Score histograms per exercise", _img(figures["score histograms"],
                                                                     "score histogram per exercise")),
        _section("hidden", "Hardest hidden cases (by failures; inputs never shown)",
                 _table(["exercise", "hidden case", "students failing"], [list(h) for h in hardest[:HARDEST_SHOWN]])
                 if hardest else "<p>No hidden case failed.</p>"),
        _section("review", "Submissions flagged for review",
                 _table(["student", "file", "flags"], flagged) if flagged else "<p>None.</p>"),
        _section("time", "Time per submission",
                 _img(figures["time per submission"], "histogram of seconds per submission") +
                 (f"<p>median {median(seconds):.1f} s, max {max(seconds):.1f} s, total {sum(seconds):.0f} s</p>"
                  if seconds else "")),
        _section("roster", "Roster",
                 _table(["submission not on the roster"], [[u] for u in book.unmatched]) +
                 _table(["student without a submission", "email", "name"],
                        [[s.student_id, s.email, s.name] for s in book.missing]) if book.roster is not None
                 else "<p>No roster given (--roster).</p>"),
        _section("duplicates", "Duplicate notebooks",
                 _table(["student", "lesson", "counted", "ignored"],
                        [[d["student"], d["lesson"], Path(d["counted"]).name,
                          ", ".join(Path(p).name for p in d["ignored"])] for d in book.duplicates])
                 if book.duplicates else "<p>None.</p>"),
    ]
    style = ("body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}img{max-width:100%}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(parts) +
            "\n</body></html>\n")
