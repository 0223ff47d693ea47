"""What instructors rely on beyond the bans: one submission never stops or changes another, scores do not depend
on the machine's load, outputs carry nothing unbounded or unescaped, the secret is strong and never leaves the
grader, and grading without bubblewrap is refused unless allowed – and then still not root, not able to read the
seed or touch the results, and leaves nothing running."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stn_course.checks import all_checks
from stn_course.grading import sandbox
from stn_course.grading.grader import Grader, derive_seed
from stn_course.grading.sandbox import Limits, SandboxUnavailable
from stn_course.grading.seeds import weakness
from stn_course.grading.submissions import discover

from .helpers import TEST_SEED, exercise, grade, patched, solution, with_cell, write_submission

NAME1, LESSON1 = solution("01")
ROTATION = "    c, s = math.cos(angle), math.sin(angle)\n"


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stn_course.cli", "grade", *args], capture_output=True, text=True,
                          timeout=timeout)


# -- malformed notebooks: each its own error; the run finishes and writes everything ---------------------------------

def _malformed(tmp: Path) -> dict[str, str]:
    nb = json.loads(json.dumps(LESSON1))
    bad_source = json.loads(json.dumps(nb))
    bad_source["cells"][3]["source"] = ["x = 1\n", 5]
    bad_tags = json.loads(json.dumps(nb))
    bad_tags["cells"][3]["metadata"] = {"tags": 5}
    bad_metadata = json.loads(json.dumps(nb))
    bad_metadata["metadata"] = []
    return {"source-int": json.dumps(bad_source), "tags-int": json.dumps(bad_tags),
            "metadata-list": json.dumps(bad_metadata), "deep": "[" * 200_000 + "]" * 200_000,
            "huge-number": '{"cells": [], "nbformat": ' + "9" * 5000 + "}",
            "cells-of-numbers": json.dumps({"cells": [1, 2, 3]})}


def test_malformed_notebooks_are_their_own_errors_and_every_output_is_written(tmp_path):
    folder = tmp_path / "class"
    for name, text in _malformed(tmp_path).items():
        write_submission(folder, name, NAME1, text)
    write_submission(folder, "=1+2", NAME1, LESSON1)  # a name a spreadsheet would run as a formula
    write_submission(folder, "evil\x1b[31mred", NAME1, "{ not json")
    out = {k: tmp_path / f"out.{k}" for k in ("json", "gradescope", "csv")}
    run = _cli(str(folder), "--seed-file", str(_seed_file(tmp_path)), "--json", str(out["json"]), "--gradescope",
               str(out["gradescope"]), "--csv", str(out["csv"]), "--jobs", "2")
    assert run.returncode == 0, run.stderr
    report = json.loads(out["json"].read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    by_student = {s["student"]: s for s in report["submissions"]}
    for name in _malformed(tmp_path):
        assert by_student[name]["error"] and by_student[name]["score"] == 0, name
    assert by_student["=1+2"]["score"] == by_student["=1+2"]["max_score"] > 0
    rows = out["csv"].read_text().splitlines()
    assert any(row.startswith("'=1+2,") for row in rows) and not any(row.startswith("=") for row in rows)
    assert "\x1b" not in run.stdout and "\\x1b[31mred" in run.stdout
    assert "\x1b" not in out["csv"].read_text()
    json.loads(out["gradescope"].read_text(), parse_constant=lambda c: pytest.fail(c))


def _seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed.txt"
    if not path.exists():
        path.write_text("4f1c0e5e8d7b6a59c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918aabbccdd\n")
        path.chmod(0o600)
    return path


# -- limits per submission, in CPU time ------------------------------------------------------------------------------

def test_a_submission_has_a_total_budget(tmp_path):
    nb = LESSON1
    for _ in range(30):
        nb = with_cell(nb, "import time\ntime.sleep(1.5)")
    write_submission(tmp_path, "sleepy", NAME1, nb)
    start = time.monotonic()
    (result,) = grade([tmp_path], jobs=1, timeout=1.0).values()
    assert time.monotonic() - start < 60
    assert any(c["status"] == "not run" and "used up its 10 s" in c["error"] for c in result.cells), result.cells


BUSY = ("deadline = time.process_time() + 0.08\nwhile time.process_time() < deadline:\n    pass\n")


def test_scores_do_not_depend_on_the_machine_load(tmp_path):
    """A function that needs about 1.2 s of CPU for an exercise's cases, at a 2.5 s limit: full marks alone and
    beside two busy processes (wall-clock limits gave 8.8 or 10 for the same submission)."""
    nb = patched(LESSON1, ROTATION, "    import time\n" + "".join(f"    {line}\n" for line in BUSY.splitlines())
                 + ROTATION)
    write_submission(tmp_path, "busy", NAME1, nb)
    (alone,) = grade([tmp_path], jobs=1, timeout=2.5).values()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        (loaded,) = grade([tmp_path], jobs=1, timeout=2.5).values()
    finally:
        for hog in hogs:
            hog.kill()
    assert alone.score == loaded.score == alone.max_score, [(e.id, e.feedback) for e in loaded.exercises
                                                            if e.score < e.max_score]


def test_timings_in_outputs_come_from_the_graders_clock(tmp_path):
    cell = ("import time\nnan = float('nan')\ntime.perf_counter = time.process_time = time.monotonic = "
            "time.time = lambda: nan")
    write_submission(tmp_path, "nan-clock", NAME1, with_cell(LESSON1, cell))
    (result,) = grade([tmp_path], jobs=1).values()
    text = json.dumps(result.as_json(), allow_nan=False)  # raises on NaN or infinity
    assert result.score == result.max_score and "NaN" not in text


@pytest.mark.skipif(os.geteuid() != 0, reason="making a cgroup needs root (CI runs as root)")
def test_one_memory_budget_for_all_of_a_submissions_processes_and_its_tmp(tmp_path):
    from stn_course.grading.cgroups import memory_cgroup

    assert memory_cgroup(f"stn-grade-test-{os.getpid()}", 64) is not None or pytest.fail("no cgroup here")
    cell = ("import os, time\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
            "        block = bytearray(700 * 2**20)\n        for i in range(0, len(block), 4096):\n"
            "            block[i] = 1\n        time.sleep(5)\n        os._exit(0)\n    kids.append(pid)\n"
            "codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in kids]\n"
            "try:\n    open('/tmp/big', 'wb').write(b'x' * (900 * 2**20))\n    tmp = 'wrote'\n"
            "except OSError as exc:\n    tmp = type(exc).__name__\n"
            "raise RuntimeError(f'MEMORY {sorted(codes)} {tmp}')")
    write_submission(tmp_path, "hog", NAME1, with_cell(LESSON1, cell))
    grader = Grader(TEST_SEED, Limits(timeout_s=30, total_memory_mb=2048), jobs=1)
    assert "one memory budget per job (cgroup)" in grader.sandbox_text
    (result,) = grader.grade(discover([tmp_path]))
    report = next((c["error"] for c in result.cells if "MEMORY" in c["error"]), str(result.cells))
    assert "-9" in report, report  # the kernel ended some of the four 700 MB processes: 2 GB in all
    assert "OSError" in report or "-9" in report.split("]")[0]  # /tmp is 512 MB
    assert result.score == result.max_score


# -- the secret --------------------------------------------------------------------------------------------------

def test_new_seed_is_strong_and_private_and_weak_seeds_are_warned(tmp_path):
    path = tmp_path / "secret.txt"
    run = _cli("--new-seed", str(path))
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and weakness(path.read_text().strip()) is None
    assert _cli("--new-seed", str(path)).returncode == 2  # never overwritten
    weak = tmp_path / "weak.txt"
    weak.write_text("spring2026")
    (tmp_path / "empty").mkdir()  # a class with nothing handed in yet (a missing path is a usage error, exit 2)
    run = _cli(str(tmp_path / "empty"), "--seed-file", str(weak))
    assert "weak" in run.stderr and "--new-seed" in run.stderr


def test_visible_seeds_are_keyed_hashes_of_the_secret():
    assert derive_seed("a", "01.rotation_matrix", "visible") != derive_seed("b", "01.rotation_matrix", "visible")
    assert derive_seed("a", "01.rotation_matrix", "visible") != derive_seed("a", "01.rotation_matrix", "hidden")
    import hashlib
    import hmac

    digest = hmac.new(b"a", b"01.rotation_matrix\x00visible", hashlib.sha256).digest()
    assert derive_seed("a", "01.rotation_matrix", "visible") == int.from_bytes(digest[:4], "little") % 2**31


# -- without bubblewrap ----------------------------------------------------------------------------------------------

@pytest.fixture
def no_bubblewrap(tmp_path, monkeypatch):
    """A bwrap on PATH that cannot build a sandbox (as in a container that forbids namespaces)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    sandbox.bubblewrap.cache_clear()
    yield fake
    sandbox.bubblewrap.cache_clear()


def test_grading_without_the_sandbox_is_refused_unless_allowed(no_bubblewrap, tmp_path):
    with pytest.raises(SandboxUnavailable, match="--allow-unsandboxed"):
        Grader(TEST_SEED)
    write_submission(tmp_path, "alice", NAME1, LESSON1)
    run = _cli(str(tmp_path / "alice"))
    assert run.returncode == 2 and "--allow-unsandboxed" in run.stderr


PROBE = """
import os, subprocess
seen = {"uid": os.getuid(), "euid": os.geteuid()}
for name, path in (("seed", %(seed)r), ("results", %(results)r + "/results.json")):
    try:
        open(path, "a").close()
        seen[name] = "opened"
    except OSError as exc:
        seen[name] = type(exc).__name__
try:
    seen["cmdline"] = "seed" in open("/proc/%(grader)d/cmdline").read()
except OSError as exc:
    seen["cmdline"] = type(exc).__name__
if os.fork() == 0:  # a detached process that would rewrite a file after grading ends
    os.setsid()
    if os.fork() == 0:
        import time
        time.sleep(4)
        open(%(survivor)r, "w").write("still here")
    os._exit(0)
raise RuntimeError("PROBE " + repr(seen))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to an unprivileged uid needs the grader to run as root")
def test_unsandboxed_code_is_not_root_cannot_read_the_seed_or_touch_results_and_is_killed(no_bubblewrap, tmp_path):
    results = tmp_path / "results"
    results.mkdir(mode=0o700)
    seed = _seed_file(tmp_path)
    survivor = Path("/tmp") / f"stn-survivor-{os.getpid()}"
    cell = PROBE % {"seed": str(seed), "results": str(results), "grader": os.getpid(), "survivor": str(survivor)}
    write_submission(tmp_path / "class", "mallory", NAME1, with_cell(LESSON1, cell))
    grader = Grader(seed.read_text().strip(), Limits(timeout_s=20), jobs=1, allow_unsandboxed=True)
    assert grader.sandbox_text.startswith("not sandboxed")
    (result,) = grader.grade(discover([tmp_path / "class"]))
    probe = next(c["error"] for c in result.cells if "PROBE" in c["error"])
    seen = eval(probe.split("PROBE ", 1)[1])  # noqa: S307 – our own probe's repr of a dict of str and int
    assert seen["uid"] != 0 and seen["euid"] != 0
    assert seen["seed"] == "PermissionError" and seen["results"] == "PermissionError"
    assert seen["cmdline"] is False or seen["cmdline"] == "PermissionError"
    assert result.score == result.max_score  # the probe cell cost nothing
    time.sleep(5)
    assert not survivor.exists(), "a process the submission detached outlived its grading"


# -- Gradescope: one notebook per lesson of the assignment, never more than its maximum ------------------------------

def test_gradescope_grades_one_notebook_per_lesson_of_the_assignment(tmp_path):
    name2, lesson2 = solution("02")
    folder = tmp_path / "submission"
    write_submission(folder, ".", NAME1, LESSON1)
    write_submission(folder, ".", "copy_of_lesson_1.ipynb", LESSON1)
    write_submission(folder, ".", name2, lesson2)
    out = tmp_path / "results.json"
    run = _cli(str(folder), "--assignment", "01", "--single-student", "alice", "--gradescope", str(out),
               "--seed-file", str(_seed_file(tmp_path)))
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    maximum = sum(t["max_score"] for t in results["tests"])
    total = sum(t["score"] for t in results["tests"])  # no top-level score: Gradescope sums the tests
    lesson1 = sum(c.points for c in all_checks() if c.lesson == "01")
    assert "score" not in results and total == pytest.approx(lesson1) and maximum == pytest.approx(lesson1)  # once
    outputs = " ".join(t["output"] for t in results["tests"])
    assert "a second notebook of lesson 01" in outputs and "lesson 02 is not part of this assignment" in outputs


def test_one_student_never_scores_a_lesson_twice(tmp_path):
    folder = tmp_path / "submission"
    write_submission(folder, ".", NAME1, LESSON1)
    write_submission(folder, ".", "again.ipynb", LESSON1)
    out = tmp_path / "results.json"
    run = _cli(str(folder), "--single-student", "bob", "--gradescope", str(out), "--seed-file",
               str(_seed_file(tmp_path)))
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(sum(c.points for c in all_checks() if c.lesson == "01"))
    assert "a second notebook of lesson 01" in json.dumps(results)
