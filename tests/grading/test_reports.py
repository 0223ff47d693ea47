"""The grader's outputs (JSON schema, Gradescope, CSV, GitHub Classroom), determinism, hidden-case secrecy and the
instructor's own checks."""
from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stn_course import cli
from stn_course.checks import all_checks
from stn_course.checks.registry import STATUSES, iter_cases
from stn_course.grading import reports
from stn_course.grading.grader import derive_seed

from .helpers import SOLUTIONS, TEST_SEED, exercise, grade, patched, solution, write_submission

MAX01 = float(sum(c.points for c in all_checks() if c.lesson == "01"))  # lesson 1's full marks
MAX02 = float(sum(c.points for c in all_checks() if c.lesson == "02"))
ROTATION = float(next(c.points for c in all_checks() if c.id == "01.rotation_matrix"))

NAME1, LESSON1 = solution("01")
LEAKY = (  # a submission whose functions put their inputs into every error message (and keep them for later)
    "    import builtins\n"
    "    seen = builtins.__dict__.setdefault('_seen_inputs', [])\n"
    "    seen.append(repr(angle))\n"
    "    raise ValueError('inputs so far: ' + ' '.join(seen))\n")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    write_submission(folder, "ada", NAME1, LESSON1)
    write_submission(folder, "bob", NAME1, patched(LESSON1, "[[c, -s, 0.0], [s, c, 0.0]", "[[c, s, 0.0], [-s, c, 0.0]"))
    write_submission(folder, "leaky", NAME1, patched(LESSON1, "    c, s = math.cos(angle), math.sin(angle)\n", LEAKY))
    write_submission(folder, "zoe", "02_bilinear_sampling.ipynb", "{ not json")
    seed_file = folder.parent / f"{folder.name}-seed.txt"
    seed_file.write_text(TEST_SEED + "\n")
    return folder, seed_file


@pytest.fixture(scope="module")
def outputs(batch, tmp_path_factory):
    folder, seed_file = batch
    out = tmp_path_factory.mktemp("outputs")
    code = cli.main(["grade", str(folder), "--seed-file", str(seed_file), "--jobs", "2", "--quiet",
                     "--json", str(out / "r.json"), "--gradescope", str(out / "gs.json"), "--csv", str(out / "g.csv")])
    assert code == 0
    return {"json": json.loads((out / "r.json").read_text()), "gradescope": json.loads((out / "gs.json").read_text()),
            "csv": (out / "g.csv").read_text(), "texts": {p.name: p.read_text() for p in out.iterdir()}}


def test_json_follows_the_documented_schema(outputs):
    report = outputs["json"]
    assert report["version"] == reports.SCHEMA_VERSION and report["seed"] == "instructor"
    assert report["sandbox"].startswith("sandboxed")
    assert report["summary"]["submissions"] == 4 and report["summary"]["graded"] == 3
    ids = {c.id for c in all_checks() if c.lesson == "01"}
    for sub in report["submissions"]:
        assert {"path", "student", "lesson", "score", "max_score", "exercises", "cells", "error", "timing"} <= set(sub)
        for e in sub["exercises"]:
            assert {"id", "score", "max_score", "status", "feedback"} <= set(e) and e["status"] in STATUSES
    ada = next(s for s in report["submissions"] if s["student"] == "ada")
    assert {e["id"] for e in ada["exercises"]} == ids and ada["score"] == ada["max_score"] == MAX01
    zoe = next(s for s in report["submissions"] if s["student"] == "zoe")
    assert zoe["lesson"] == "02" and zoe["score"] == 0 and zoe["max_score"] == MAX02 and "invalid JSON" in zoe["error"]


def test_gradescope_results(outputs):
    gs = outputs["gradescope"]
    assert set(gs) >= {"execution_time", "tests"} and "score" not in gs  # the tests' sum: nothing hidden early
    for test in gs["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["status"] in ("passed", "failed") and 0 <= test["score"] <= test["max_score"] + 1e-9
        assert test["visibility"] in ("visible", "after_published")
    hidden = [t for t in gs["tests"] if t["visibility"] == "after_published"]
    assert hidden and all(t["name"].endswith("hidden cases") for t in hidden)
    for test in gs["tests"]:  # what students read before publication says nothing of the hidden cases
        if test["visibility"] == "visible":
            assert "hidden" not in test["output"], test


def test_csv_gradebook_has_a_row_per_student_and_a_column_per_exercise(outputs):
    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    assert [r["student"] for r in rows] == ["ada", "bob", "leaky", "zoe"]
    assert {"01.rotation_matrix", "02.bilinear_sample", "total", "max_total"} <= set(rows[0])
    ada, bob = rows[0], rows[1]
    # bob's flipped sine still passes the angles 0 and π: partial credit, by the share of cases passed
    assert float(ada["total"]) == MAX01 and 0 < float(bob["01.rotation_matrix"]) < 0.5
    assert float(bob["total"]) == MAX01 - ROTATION + float(bob["01.rotation_matrix"])
    assert "invalid JSON" in rows[3]["errors"]


def _hidden_numbers(check_id: str, seed: str) -> list[str]:
    """Distinctive numbers from ``check_id``'s hidden cases for ``seed``, as a leak would print them."""
    numbers = []
    for case in iter_cases(next(c for c in all_checks() if c.id == check_id), derive_seed(seed, check_id, "hidden"),
                           hidden=True):
        for value in case.args:
            if isinstance(value, float):
                numbers.append(repr(value)[:8])
            elif isinstance(value, (torch.Tensor, np.ndarray)):
                numbers += [f"{float(v):.4f}" for v in np.asarray(value, dtype=np.float64).reshape(-1)[:3]]
    return [n for n in numbers if len(n.strip("-0.")) >= 3]


def test_no_hidden_input_reaches_any_output(outputs):
    """The leaky submission raises with every input it has seen; its hidden inputs (and the seed) appear nowhere:
    hidden failures are counted only in the hidden part's text, and every visible case runs before any hidden one."""
    numbers = _hidden_numbers("01.rotation_matrix", TEST_SEED)
    assert len(numbers) >= 5
    leaky = next(e for s in outputs["json"]["submissions"] if s["student"] == "leaky"
                 for e in s["exercises"] if e["id"] == "01.rotation_matrix")
    assert "inputs so far" in leaky["feedback"] and "hidden" not in leaky["feedback"]
    assert re.fullmatch(r"passed \d+ of \d+ hidden cases.*", leaky["hidden_cases"]["feedback"])
    for name, text in outputs["texts"].items():
        assert TEST_SEED not in text, name
        for number in numbers:
            assert number not in text, f"hidden input {number} leaked into {name}"
    lessons_text = "".join(p.read_text() for p in (SOLUTIONS.parent / "lessons").glob("*.ipynb"))
    assert not [n for n in numbers if n in lessons_text]


def _class_of(batch, tmp_path, students) -> Path:
    """A folder of student folders holding only ``students`` of the batch."""
    folder = tmp_path / "class"
    for student in students:
        shutil.copytree(batch[0] / student, folder / student)
    return folder


def test_determinism_whatever_the_order_and_the_jobs(batch):
    folder, _ = batch
    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    one = grade(paths, jobs=1, by="path")
    two = grade(list(reversed(paths)), jobs=2, by="path")
    assert one.keys() == two.keys()
    for student in one:
        a, b = one[student], two[student]
        assert (a.score, a.error) == (b.score, b.error)
        assert [(e.id, e.score, e.status, e.feedback) for e in a.exercises] == \
               [(e.id, e.score, e.status, e.feedback) for e in b.exercises]


def test_the_seed_changes_the_hidden_cases_not_the_verdicts(batch, tmp_path):
    other = grade([_class_of(batch, tmp_path, ["ada", "bob"])], seed="another secret")
    assert other["ada"].score == MAX01 and exercise(other["bob"], "01.rotation_matrix").score < 0.5
    assert derive_seed("a", "01.rotation_matrix", "hidden") != derive_seed("b", "01.rotation_matrix", "hidden")


def test_classroom_contract(batch, tmp_path, monkeypatch):
    folder, seed_file = batch
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert cli.main(["grade", str(folder / "ada"), "--seed-file", str(seed_file), "--classroom", "--quiet"]) == 0
    assert cli.main(["grade", str(folder / "bob"), "--seed-file", str(seed_file), "--classroom", "--quiet"]) == 1
    lines = output.read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("result=") for line in lines)
    full = json.loads(base64.b64decode(lines[0].removeprefix("result=")))
    partial = json.loads(base64.b64decode(lines[1].removeprefix("result=")))
    assert full["version"] == 1 and full["status"] == "pass" and full["max_score"] == MAX01
    bob_rotation = next(t["score"] for t in partial["tests"] if t["name"] == "01.rotation_matrix")
    assert partial["status"] == "fail" and sum(t["score"] for t in partial["tests"]) == MAX01 - ROTATION + bob_rotation
    assert {t["status"] for t in partial["tests"]} == {"pass", "fail"}


def test_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["grade", str(tmp_path), "--seed-file", str(tmp_path / "missing.txt")])
    assert info.value.code == 2 and "cannot read the seed file" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(SystemExit):
        cli.main(["grade", str(tmp_path), "--seed-file", str(tmp_path / "empty.txt")])
    assert "is empty" in capsys.readouterr().err


INSTRUCTOR_CHECK = '''
import math
import numpy as np
import torch
from stn_course.checks import Case, Check, register
from stn_course.checks.lesson01 import _rotation_reference


def _cases(rng):
    for angle in (0.25, -2.5, 100.0):
        yield Case(f"angle {angle}", (angle,))


register(Check(id="01.rotation_matrix_instructor", function="rotation_matrix", hidden=True, points=2,
               title="the instructor's own rotation cases", reference=_rotation_reference, cases=_cases,
               hint="see lesson 1", forbidden=("stn_course.affine.rotation",)))
'''


def test_instructor_checks_from_a_folder(batch, tmp_path, capsys):
    folder, seed_file = batch
    checks_dir = tmp_path / "instructor"
    checks_dir.mkdir()
    (checks_dir / "extra.py").write_text(INSTRUCTOR_CHECK)
    out = tmp_path / "r.json"
    from stn_course.checks import registry

    try:
        code = cli.main(["grade", str(_class_of(batch, tmp_path, ["ada", "bob"])), "--seed-file", str(seed_file),
                         "--checks-dir", str(checks_dir), "--json", str(out), "--quiet"])
    finally:
        registry._REGISTRY.pop("01.rotation_matrix_instructor", None)
    assert code == 0 and "01.rotation_matrix_instructor" in capsys.readouterr().out
    report = {s["student"]: s for s in json.loads(out.read_text())["submissions"]}
    extra = {s: next(e for e in report[s]["exercises"] if e["id"] == "01.rotation_matrix_instructor") for s in report}
    assert extra["ada"]["score"] == 2 and extra["ada"]["visible_cases"]["total"] == 0
    assert extra["bob"]["score"] == 0 and "0 visible" not in extra["bob"]["feedback"]  # only what is true
    assert extra["bob"]["feedback"] == extra["ada"]["feedback"] == (
        "graded on cases that are not shown to you; the result is shown when grades are published")
    assert extra["bob"]["hidden_cases"]["feedback"].startswith("passed 0 of ")
    assert extra["ada"]["hidden_cases"]["feedback"] == f"passed all {extra['ada']['hidden_cases']['total']} hidden cases"
    assert report["ada"]["max_score"] == MAX01 + 2  # and the instructor's check (2 points)
    assert not re.search(r"angle (0\.25|-2\.5|100\.0)", out.read_text())


def test_the_gradescope_scripts_grade_a_submission(tmp_path, batch):
    """docs/grading/gradescope/run_autograder, run as Gradescope would (AUTOGRADER_ROOT in place of /autograder)."""
    import os
    import subprocess

    folder, seed_file = batch
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "source" / "seed.txt").write_text(seed_file.read_text())
    shutil.copytree(folder / "bob", root / "submission")
    script = SOLUTIONS.parent / "docs" / "grading" / "gradescope" / "run_autograder"
    run = subprocess.run(["bash", str(script)], env={**os.environ, "AUTOGRADER_ROOT": str(root)},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    total = sum(t["score"] for t in results["tests"])  # no top-level score: Gradescope sums the tests
    assert "score" not in results and MAX01 - ROTATION <= total < MAX01 and results["tests"]
    setup = (script.parent / "setup.sh").read_text()
    assert "bubblewrap" in setup and 'install.py" --cpu' in setup
    assert subprocess.run(["bash", "-n", str(script.parent / "setup.sh")]).returncode == 0


def test_the_classroom_workflow_calls_the_grader_and_the_reporter():
    import yaml

    workflow = yaml.safe_load((SOLUTIONS.parent / "docs" / "grading" / "classroom" / "classroom.yml").read_text())
    steps = workflow["jobs"]["autograding"]["steps"]
    grade_step = next(s for s in steps if s.get("id") == "stn")
    assert "stn-course grade" in grade_step["run"] and "--classroom" in grade_step["run"]
    reporter = next(s for s in steps if "grading-reporter" in s.get("uses", ""))
    assert reporter["with"]["runners"] == "stn" and "steps.stn.outputs.result" in reporter["env"]["STN_RESULTS"]
