"""The class gradebook (roster, one row per student, duplicates, --merge, --only-failed) and the HTML class report.

Most tests build results directly (no sandbox): about 5 s in all, 4 of them the report's plots. One small real run
grades three lesson-01 notebooks with a roster, merges a regrade of one student and checks that a missing path
writes nothing: 44 s on 2 cores (79 s with the machine busy)."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
from html.parser import HTMLParser

import pytest

from stn_course import cli
from stn_course.checks import all_checks
from stn_course.checks.registry import ERROR, FAILED, PASSED, TIMED_OUT
from stn_course.grading import class_report, gradebook, reports
from stn_course.grading.grader import ExerciseResult, SubmissionResult
from stn_course.grading.roster import RosterError, parse_roster

from .helpers import TEST_SEED, patched, solution, write_submission

LESSON01 = [c for c in all_checks() if c.lesson == "01"]
MAX01 = float(sum(c.points for c in LESSON01))
LESSON02 = [c for c in all_checks() if c.lesson == "02"]
MAX02 = float(sum(c.points for c in LESSON02))
FIRST_TWO01 = float(sum(c.points for c in LESSON01[:2]))  # a lesson-01 result whose first two exercises passed

GRADESCOPE_ROSTER = ("First Name,Last Name,SID,Email,Role,Sections\n"
                     "Ada,Lovelace,1001,ada@uni.edu,Student,A\n"
                     "Grace,Hopper,1002,ghopper@uni.edu,Student,A\n"
                     "Tess,Assist,9001,ta@uni.edu,TA,\n")
CLASSROOM_ROSTER = ("identifier,github_username,github_id,name\n"
                    "s-ada,adal,111,Ada Lovelace\n"
                    "s-alan,aturing,222,Alan Turing\n")
PLAIN_ROSTER = ("student_id,email,name,aliases\n"
                "1001,ada@uni.edu,Ada Lovelace,countess;ada_l\n"
                "1002,ghopper@uni.edu,Grace Hopper,\n"
                "1003,jo@uni.edu,Jo Smith,\n"
                "1004,jo.smith@other.edu,Jo Smith,\n")


# ---------------------------------------------------------------------------------------------------------------
# The roster
# ---------------------------------------------------------------------------------------------------------------


def test_the_three_roster_formats_are_told_apart_by_their_header():
    gs = parse_roster(GRADESCOPE_ROSTER)
    assert gs.format == "gradescope" and [s.student_id for s in gs.students] == ["1001", "1002"]  # the TA is not
    assert gs.students[0].name == "Ada Lovelace" and gs.students[0].email == "ada@uni.edu"
    gh = parse_roster(CLASSROOM_ROSTER)
    assert gh.format == "github-classroom" and gh.students[1].github == "aturing"
    plain = parse_roster("\ufeff" + PLAIN_ROSTER)
    assert plain.format == "plain" and plain.students[0].aliases == ("countess", "ada_l")


def test_a_roster_of_no_known_format_names_the_expected_columns():
    with pytest.raises(RosterError, match="student_id, email, name") as info:
        parse_roster("who,mail\nada,ada@uni.edu\n")
    assert "github_username" in str(info.value) and "sid" in str(info.value)
    with pytest.raises(RosterError, match="appears twice"):
        parse_roster("student_id,email,name\n1,a@x,A\n1,b@x,B\n")


@pytest.mark.parametrize("submitted_as, expected", [
    ("1001", "1001"), ("ada@uni.edu", "1001"), ("ada", "1001"), ("ghopper", "1002"),  # id, e-mail, local part
    ("countess", "1001"), ("Lovelace_Ada", "1001"), ("ádá-lovelace", "1001"), ("grace hopper", "1002"),
    ("jo smith", None),  # two students share this name: neither matches
    ("nobody", None),
])
def test_submissions_match_by_id_email_alias_or_normalised_name(submitted_as, expected):
    student = parse_roster(PLAIN_ROSTER).match(submitted_as)
    assert (student.student_id if student else None) == expected


def test_github_classroom_repository_folders_match_by_username():
    roster = parse_roster(CLASSROOM_ROSTER)
    assert roster.match("aturing").student_id == "s-alan"
    assert roster.match("lesson-01-aturing").student_id == "s-alan"
    assert roster.match("lesson-01-someone") is None


# ---------------------------------------------------------------------------------------------------------------
# Synthetic results (no sandbox)
# ---------------------------------------------------------------------------------------------------------------


def _result(student: str, lesson: str = "01", passed: int | None = None, path: str | None = None,
            error: str | None = None, seconds: float = 2.0, review: list | None = None,
            hidden_failed: tuple[int, ...] = ()) -> SubmissionResult:
    """A lesson's result in which the first ``passed`` exercises (all by default) passed; the others failed their
    hidden cases ``hidden_failed``."""
    checks = [c for c in all_checks() if c.lesson == lesson]
    passed = len(checks) if passed is None else passed
    exercises = []
    for number, c in enumerate(checks):
        ok = number < passed and error is None
        exercises.append(ExerciseResult(c.id, c.title, float(c.points) if ok else 0.0, float(c.points),
                                        PASSED if ok else (ERROR if error else FAILED), "feedback", (5, 5),
                                        (8, 8) if ok else (8 - len(hidden_failed), 8),
                                        hidden_failed=() if ok else hidden_failed))
    score = round(sum(e.score for e in exercises), 4)
    return SubmissionResult(path or f"/nonexistent/{student}/{lesson}_x.ipynb", student, lesson, score,
                            float(sum(c.points for c in checks)), exercises, error=error, seconds=seconds,
                            review=review or [])


def _roster_of(n: int) -> str:
    return "student_id,email,name\n" + "".join(f"s{i:02d},student{i:02d}@uni.edu,Student {i:02d}\n"
                                               for i in range(n))


@pytest.fixture()
def big_class():
    """32 students on a roster of 33 (s32 hands in nothing), one file no roster entry matches, s01 with two lessons,
    s02 with a duplicate of lesson 01, s03 a file of unknown lesson, s04 flagged for review."""
    results = [_result(f"student{i:02d}", passed=i % (len(LESSON01) + 1), seconds=1.0 + i,
                       hidden_failed=(1, 3) if i % 2 else (3,)) for i in range(32)]
    results.append(_result("stranger"))
    results.append(_result("student01", lesson="02", passed=2))
    results.append(_result("s02"))  # the same student by id: a duplicate of lesson 01, the better one (full marks)
    results[3] = SubmissionResult("/nonexistent/student03/x.ipynb", "student03", None,
                                  error="cannot tell which lesson this is")
    results[4].review = [{"cell": 3, "line": 1, "rule": "<script>alert(1)</script>", "text": "x"}]
    return results, parse_roster(_roster_of(33))


def test_one_row_per_student_with_lesson_totals_and_the_assignments_maximum(big_class):
    results, roster = big_class
    book = gradebook.build(gradebook.records_of(results), roster)
    rows = list(csv.DictReader(io.StringIO(gradebook.to_csv(book))))
    assert len(rows) == 33 + 1  # the roster's students and the unmatched file
    by_id = {r["student_id"]: r for r in rows}
    assert book.lessons == ["01", "02"] and {"01 total", "02 total", "student", "email", "name"} <= set(rows[0])
    two = by_id["s01"]  # both lessons in one row, each total its own column
    first01, first02 = float(LESSON01[0].points), float(LESSON02[0].points + LESSON02[1].points)
    assert float(two["01 total"]) == first01 and float(two["02 total"]) == first02  # 1 exercise of 01; 2 of 02
    assert float(two["total"]) == first01 + first02 and float(two["max_total"]) == MAX01 + MAX02
    unknown = by_id["s03"]  # an unreadable file still has the assignment's maximum, never 0
    assert float(unknown["total"]) == 0.0 and float(unknown["max_total"]) == MAX01 + MAX02
    assert "cannot tell which lesson" in unknown["errors"] and "no notebook of lesson 01" in unknown["errors"]
    absent = by_id["s32"]
    assert absent["status"] == gradebook.NO_SUBMISSION and float(absent["total"]) == 0.0
    assert float(absent["max_total"]) == MAX01 + MAX02 and absent["email"] == "student32@uni.edu"
    stranger = next(r for r in rows if r["student"] == "stranger")
    assert stranger["status"] == gradebook.NOT_ON_ROSTER and stranger["student_id"] == ""
    assert book.unmatched == ["stranger"] and [s.student_id for s in book.missing] == ["s32"]
    assert by_id["s04"]["review"].startswith("01_x.ipynb: cell 3: ")


def test_a_duplicate_counts_once_the_best_or_the_latest(big_class, tmp_path):
    results, roster = big_class
    records = gradebook.records_of(results)
    best = gradebook.build(records, roster)
    row = next(r for r in best.rows if r.student and r.student.student_id == "s02")
    assert row.total == MAX01 and len(row.counted) == 1 and "2 notebooks of lesson 01" in row.notes[0]
    assert best.duplicates == [{"student": "s02", "lesson": "01", "counted": "/nonexistent/s02/01_x.ipynb",
                                "ignored": ["/nonexistent/student02/01_x.ipynb"]}]
    for record in records:  # the worse notebook is the later one
        record["modified"] = 2000.0 if record["path"] == "/nonexistent/student02/01_x.ipynb" else 1000.0
    latest = gradebook.build(records, roster, duplicates="latest")
    row = next(r for r in latest.rows if r.student and r.student.student_id == "s02")
    assert row.total == FIRST_TWO01 and "counted (latest)" in row.notes[0]  # 2 of lesson 01's exercises
    with pytest.raises(ValueError, match="best, latest"):
        gradebook.build(records, roster, duplicates="first")


def test_without_a_roster_the_rows_are_the_submissions_names_and_spreadsheet_safe():
    results = [_result("=1+2"), _result("bob", passed=3), _result("bob", lesson="02", passed=0)]
    rows = list(csv.DictReader(io.StringIO(gradebook.to_csv(gradebook.build(gradebook.records_of(results))))))
    assert [r["student"] for r in rows] == ["'=1+2", "bob"]
    first_three = float(sum(c.points for c in LESSON01[:3]))
    assert float(rows[1]["total"]) == first_three and float(rows[1]["max_total"]) == MAX01 + MAX02
    assert float(rows[0]["max_total"]) == MAX01 + MAX02 and "no notebook of lesson 02" in rows[0]["errors"]


def test_merge_replaces_only_the_files_graded_now_and_only_failed_picks_errors_and_timeouts(tmp_path):
    files = {name: write_submission(tmp_path, name, "01_affine_transforms.ipynb", "{}") for name in "abc"}
    old = [_result(n, path=str(p), passed=2) for n, p in files.items()]
    old[2].exercises[0].status = TIMED_OUT
    book = gradebook.build(gradebook.records_of(old))
    previous = json.loads(reports.dumps(gradebook.class_json(gradebook.records_of(old), book, "sandboxed", "x")))
    assert previous["version"] == reports.SCHEMA_VERSION == "1.1"
    assert gradebook.failed_paths(previous["submissions"]) == {os.path.realpath(files["c"])}
    # a regrade of b's file, given on its own: discovery names it by its folder; the merge keeps the old name anyway
    regraded = gradebook.records_of([_result("01_affine_transforms", path=str(files["b"]))])
    merged = gradebook.merge(previous["submissions"], regraded)
    assert [(r["student"], r["score"]) for r in merged] == [("a", FIRST_TWO01), ("b", MAX01), ("c", FIRST_TWO01)]


def test_load_previous_refuses_what_it_cannot_merge(tmp_path):
    with pytest.raises(gradebook.GradebookError, match="does not exist"):
        gradebook.load_previous(tmp_path / "none.json")
    (tmp_path / "old.json").write_text(json.dumps({"version": "0.9", "submissions": []}))
    with pytest.raises(gradebook.GradebookError, match="schema 1.x"):
        gradebook.load_previous(tmp_path / "old.json")


def test_hidden_case_numbers_stay_out_of_student_facing_outputs(big_class):
    results, _ = big_class
    assert any(e.hidden_failed for r in results for e in r.exercises)
    for output in (reports.to_gradescope(results, "sandboxed"), reports.to_classroom(results)):
        assert "failed_cases" not in json.dumps(output) and "hidden_failed" not in json.dumps(output)
    assert results[0].exercises[-1].as_json()["hidden_cases"]["failed_cases"] == [3]


# ---------------------------------------------------------------------------------------------------------------
# The HTML class report
# ---------------------------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """The report's sections: their headings, tables' rows (cell texts) and images."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.section = None
        self.cell: list[str] | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.section = self.sections.setdefault(attrs["id"], {"rows": [], "images": [], "text": ""})
        elif tag == "tr" and self.section is not None:
            self.section["rows"].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "img" and self.section is not None:
            self.section["images"].append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.section["rows"][-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        if self.section is not None:
            self.section["text"] += data


def test_the_class_report_is_self_contained_with_plots_counts_and_escaping(big_class):
    results, roster = big_class
    records = gradebook.records_of(results)
    book = gradebook.build(records, roster)
    text = class_report.render(book, records)
    page = _Page()
    page.feed(text)
    without_images = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]*"', "", text)
    assert "<script" not in text and "&lt;script&gt;" in text and "http" not in without_images  # escaped; no CDN
    assert "script" not in page.tags
    images = [src for s in page.sections.values() for src in s["images"]]
    assert len(images) == 4
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    rates = {r[0]: (int(r[1]), int(r[2])) for r in page.sections["pass-rates"]["rows"][1:]}
    first, last = LESSON01[0].id, LESSON01[-1].id
    # 32 counted lesson-01 notebooks (31 students with one, s02's best, the stranger's; s03's unreadable, s32 none)
    # the last exercise passes only with full marks: i % (n + 1) == n (s03's file excepted), s02's best, the stranger
    full = sum(i % (len(LESSON01) + 1) == len(LESSON01) for i in range(32) if i != 3) + 2
    assert rates[first][1] == 32 and rates[last] == (full, 32)
    hidden = page.sections["hidden"]["rows"]
    assert hidden[0] == ["exercise", "hidden case", "students failing"]
    top = {(r[0], int(r[1])): int(r[2]) for r in hidden[1:]}
    counts = [int(r[2]) for r in hidden[1:]]
    assert counts == sorted(counts, reverse=True) and hidden[1][:2] == [last, "3"]
    # the counted notebooks that fail the last exercise (not s03's unreadable file, not s02's, whose best counts) all
    # fail its hidden case 3; the odd students also case 1
    failing = [i for i in range(32) if i not in (2, 3) and i % (len(LESSON01) + 1) != len(LESSON01)]
    assert top[(last, 3)] == len(failing) and top[(last, 1)] == sum(i % 2 for i in failing)
    review = page.sections["review"]["rows"]
    assert len(review) == 2 and review[1][0] == "student04" and "<script>alert(1)</script>" in review[1][2]
    roster_rows = [r for r in page.sections["roster"]["rows"]]
    assert ["stranger"] in roster_rows and ["s32", "student32@uni.edu", "Student 32"] in roster_rows
    assert page.sections["duplicates"]["rows"][1][:2] == ["s02", "01"]
    # 1 … 32 s, but student03's 0 s (for 4 s) and three more of 2 s: 35 times, the 18th is 15 s, 530 s in all
    assert "median 15.0 s, max 32.0 s, total 530 s" in page.sections["time"]["text"]


# ---------------------------------------------------------------------------------------------------------------
# One real run: three lesson-01 notebooks, a roster, a merged regrade, a missing path
# ---------------------------------------------------------------------------------------------------------------


def test_grade_with_a_roster_then_merge_a_regrade_and_a_missing_path_exits_2(tmp_path, capsys):
    name, solved = solution("01")
    buggy = patched(solved, "[[c, -s, 0.0], [s, c, 0.0]", "[[c, s, 0.0], [-s, c, 0.0]")
    folder = tmp_path / "class"
    write_submission(folder, "ada", name, solved)
    bob = write_submission(folder, "bob.b@uni.edu", name, buggy)
    write_submission(folder, "mallory", name, solved)
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,email,name\n1,ada@uni.edu,Ada L\n2,bob.b@uni.edu,Bob B\n3,cy@uni.edu,Cy C\n")
    seed = tmp_path / "seed.txt"
    seed.write_text(TEST_SEED + "\n")
    out = {k: tmp_path / f"out.{k}" for k in ("json", "csv", "html")}
    common = ["--seed-file", str(seed), "--jobs", "1", "--quiet", "--roster", str(roster), "--json", str(out["json"]),
              "--csv", str(out["csv"]), "--report", str(out["html"])]
    assert cli.main(["grade", str(folder), *common]) == 0
    printed = capsys.readouterr().out
    assert "1 submission(s) not on the roster: mallory" in printed and "with no submission: 3 (Cy C)" in printed
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(out["csv"].read_text()))}
    assert float(rows["1"]["total"]) == MAX01 and 0 < float(rows["2"]["total"]) < MAX01
    assert rows["3"]["status"] == gradebook.NO_SUBMISSION and float(rows["3"]["max_total"]) == MAX01
    first = json.loads(out["json"].read_text())
    bob_before = next(s for s in first["submissions"] if s["student"] == "bob.b@uni.edu")
    failed = [e for e in bob_before["exercises"] if e["status"] != PASSED]
    assert failed and all(e["hidden_cases"]["failed_cases"] for e in failed)  # the bug fails hidden cases too
    ada_before = next(s for s in first["submissions"] if s["student"] == "ada")

    bob.write_text(json.dumps(solved))  # bob fixes it; only his notebook is regraded, the rest merged
    assert cli.main(["grade", str(bob), "--merge", *common]) == 0
    merged = json.loads(out["json"].read_text())
    assert [s["student"] for s in merged["submissions"]] == ["ada", "bob.b@uni.edu", "mallory"]
    assert next(s for s in merged["submissions"] if s["student"] == "ada") == ada_before
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(out["csv"].read_text()))}
    assert float(rows["2"]["total"]) == MAX01 and float(rows["1"]["total"]) == MAX01 and len(rows) == 4
    report = out["html"].read_text()
    assert "Cy C" in report and "mallory" in report and report.count("data:image/png;base64,") == 4

    before = {k: p.read_bytes() for k, p in out.items()}
    assert cli.main(["grade", str(tmp_path / "nonexistent.ipynb"), *common]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert {k: p.read_bytes() for k, p in out.items()} == before  # nothing written
