"""Written answers exported for grading by hand (stn_course/grading/answers.py, `stn-course grade --answers`).
Nothing here runs a notebook: a few seconds."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from stn_course import cli
from stn_course.grading import answers
from stn_course.grading.submissions import discover

ROOT = Path(__file__).resolve().parents[2]
LESSON = "01_affine_transforms.ipynb"


def _class(tmp_path: Path) -> Path:
    """ada wrote both answers (one a formula, one with a fence and HTML in it), bob none; eve's file is no JSON."""
    nb = json.loads((ROOT / "lessons" / LESSON).read_text())
    cells = [c for c in nb["cells"] if "answer" in c["metadata"].get("tags", [])]
    assert len(cells) == 2
    cells[0]["source"] = "=HYPERLINK(\"http://x\")\nsecond line"
    cells[1]["source"] = ["<script>alert(1)</script>\n", "```\n", "# not a heading"]
    for student, notebook in (("ada", nb), ("bob", json.loads((ROOT / "lessons" / LESSON).read_text()))):
        (tmp_path / student).mkdir()
        (tmp_path / student / LESSON).write_text(json.dumps(notebook))
    (tmp_path / "eve").mkdir()
    (tmp_path / "eve" / LESSON).write_text("{not json")
    return tmp_path


def test_answers_are_read_per_student_and_question(tmp_path):
    found = answers.collect(discover([_class(tmp_path)]))
    assert [(a.student, a.question, a.answered) for a in found] == [
        ("ada", "01.q1", True), ("ada", "01.q2", True), ("bob", "01.q1", False), ("bob", "01.q2", False)]
    assert found[0].prompt.startswith("A $4\\times4$ image and the identity $\\theta$: you build the grid")
    assert found[1].text == "<script>alert(1)</script>\n```\n# not a heading"


def test_the_csv_is_safe_for_spreadsheets(tmp_path):
    text = answers.render(answers.collect(discover([_class(tmp_path)])), tmp_path / "a.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4 and rows[0]["answer"] == "'=HYPERLINK(\"http://x\")\\nsecond line"
    assert (rows[2]["answered"], rows[2]["answer"], rows[2]["file"]) == ("no", "", LESSON)


def test_the_markdown_renders_nothing_a_student_wrote(tmp_path):
    text = answers.render(answers.collect(discover([_class(tmp_path)])), tmp_path / "a.md")
    assert "## ada: lesson 01" in text and "*(no answer)*" in text
    assert "````text\n<script>alert(1)</script>\n```\n# not a heading\n````" in text  # a fence it cannot close
    assert "<script>" not in text.replace("````text\n<script>", "")


def test_an_unknown_extension_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["grade", str(tmp_path), "--answers", str(tmp_path / "answers.xlsx")])
    assert exit_info.value.code == 2 and "expected a .csv or .md file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="expected a .csv or .md file"):
        answers.render([], tmp_path / "answers")
