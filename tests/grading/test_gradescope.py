"""Gradescope as shipped: ``stn-course gradescope-zip`` builds the autograder zip, and its ``run_autograder`` grades
a solved, a blank, a looping and a memory-hungry submission from the unzipped copy – the course's stripped package,
no ``solutions/`` – each into a valid ``results.json`` with feedback; a crash or the outer time limit still gives
the student one (docs/grading.md, section 7).

The scripts run as Gradescope runs them (``AUTOGRADER_ROOT`` instead of ``/autograder``), with this interpreter in
place of the image's venv: ``stn-course`` on PATH runs this Python with the unzipped ``stn-course/`` first on its
path, so the grader and its workers import the zip's copy. ``setup.sh`` runs without apt-get, as a dry run.
Budgets are shortened through ``STN_GRADE_EXTRA_ARGS`` (the script documents it). Cost, measured 2026-12-07 on a
2-core machine shared with other jobs (load 3-10), Python 3.10: about 95 s wall for the file, 78 s of it the four
gradings (each starts a grader and a worker); about 50 CPU-seconds in all."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from stn_course.grading.gradescope import SCRIPTS, ZipRefused, write_zip
from stn_course.grading.seeds import new_seed

from .helpers import LESSONS, ROOT, patched, solution, with_cell

LESSON = "01"
LOOPING = "01.inverse_warp"  # the exercise the looping submission spins in
VISIBILITIES = {"visible", "hidden", "after_due_date", "after_published"}
GRADESCOPE_LIMIT_S = 600  # Gradescope's default per-submission limit
# shorter budgets for the test: CPU seconds per exercise and per cell, wall seconds for the run (an exercise's
# wall-clock backstop is 2 x 5 + 5 s: room for a loaded CI machine)
FAST_ARGS = "--timeout 5 --cell-timeout 2 --run-timeout 120"
# as on Gradescope's containers, where bubblewrap's namespaces are not allowed: plain processes, rlimits, a uid
UNSANDBOXED = FAST_ARGS + " --no-sandbox"
HOG = "hog = []\nwhile True:\n    hog.append(torch.ones(50_000_000))  # 200 MB a turn\n"  # the memory-hungry cell


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stn_course.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.fixture(scope="module")
def workdir():
    """A world-readable folder outside the course (the graded children run as an unprivileged uid when root)."""
    folder = Path(tempfile.mkdtemp(prefix="stn-gradescope-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def seed_file(workdir) -> Path:
    path = workdir / "seed.txt"
    new_seed(path)
    return path


@pytest.fixture(scope="module")
def autograder_zip(workdir, seed_file) -> Path:
    out = workdir / "autograder.zip"
    write_zip(out, seed_file, LESSON)  # what `stn-course gradescope-zip` writes (its exit 2: a test below)
    return out


@pytest.fixture(scope="module")
def source(workdir, autograder_zip) -> Path:
    """The zip unzipped as Gradescope does (into /autograder/source), with its files' modes."""
    folder = workdir / "source"
    with zipfile.ZipFile(autograder_zip) as archive:
        for info in archive.infolist():
            archive.extract(info, folder)
            os.chmod(folder / info.filename, (info.external_attr >> 16) & 0o777)
    folder.chmod(0o755)
    for parent in (folder / "stn-course").rglob("*"):
        if parent.is_dir():
            parent.chmod(0o755)
    return folder


def _shim(root: Path, source: Path, body: str | None = None) -> Path:
    """A bin folder whose ``stn-course`` runs this interpreter on the zip's copy of the course (or runs ``body``)."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    script = bin_dir / "stn-course"
    body = body or f'PYTHONPATH="{source / "stn-course"}" exec "{sys.executable}" -m stn_course.cli "$@"'
    script.write_text(f"#!/bin/bash\n{body}\n")
    script.chmod(0o755)
    return bin_dir


def run_autograder(workdir: Path, source: Path, name: str, notebook: dict | None, grader: str | None = None,
                   **env: str) -> tuple[dict, float, subprocess.CompletedProcess]:
    """Run ``run_autograder`` on one submission in a fresh ``AUTOGRADER_ROOT`` (``grader``: a bash stand-in for
    ``stn-course``); ``(results.json, wall seconds, the process)``."""
    root = workdir / name
    (root / "submission").mkdir(parents=True)
    root.chmod(0o755)
    (root / "source").symlink_to(source)
    if notebook is not None:
        (root / "submission" / f"{LESSON}_affine_transforms.ipynb").write_text(json.dumps(notebook))
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update({"AUTOGRADER_ROOT": str(root), "PATH": f"{_shim(root, source, grader)}:{os.environ['PATH']}",
                        "STN_GRADE_EXTRA_ARGS": FAST_ARGS, **env})
    start = time.monotonic()
    done = subprocess.run(["bash", str(source / "run_autograder")], capture_output=True, text=True,
                          env=environment, timeout=GRADESCOPE_LIMIT_S)
    wall = time.monotonic() - start
    results = json.loads((root / "results" / "results.json").read_text())
    print(f"{name}: run_autograder took {wall:.1f} s")
    return results, wall, done


def assert_gradescope_shape(results: dict) -> float:
    """Check ``results`` against Gradescope's results.json specification; return the score Gradescope shows."""
    assert isinstance(results, dict)
    assert isinstance(results["execution_time"], (int, float)) and results["execution_time"] >= 0
    assert isinstance(results["output"], str) and results["output"].strip()
    assert isinstance(results["tests"], list)
    for test in results["tests"]:
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"] + 1e-9, test
        assert test["status"] in ("passed", "failed"), test
        assert isinstance(test["output"], str) and test["output"].strip(), test  # feedback in every test
        assert test["visibility"] in VISIBILITIES, test
    if "score" in results:
        assert isinstance(results["score"], (int, float))
        return float(results["score"])
    return sum(test["score"] for test in results["tests"])


def _by_exercise(results: dict) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for test in results["tests"]:
        grouped.setdefault(test["name"].split(":")[0], []).append(test)
    return grouped


# -- the zip -----------------------------------------------------------------------------------------------------


def test_zip_holds_the_scripts_the_secret_and_only_the_grading_part_of_the_course(autograder_zip, seed_file):
    with zipfile.ZipFile(autograder_zip) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        names = list(infos)
        assert names == sorted(names)
        assert archive.read("seed.txt").decode().strip() == seed_file.read_text().strip()
        assert archive.read("assignment.txt").decode() == f"{LESSON}\n"
        for script in SCRIPTS:
            assert archive.read(script) == (ROOT / "docs" / "grading" / "gradescope" / script).read_bytes()
            assert (infos[script].external_attr >> 16) & 0o777 == 0o755
    assert (infos["seed.txt"].external_attr >> 16) & 0o777 == 0o600
    assert {n for n in names if "/" not in n} == {*SCRIPTS, "seed.txt", "assignment.txt"}
    course = {n.split("/", 1)[1] for n in names if n.startswith("stn-course/")}
    assert {"pyproject.toml", "install.py", "README.md", "stn_course/lessons.json", "stn_course/grading/grader.py",
            "stn_course/data/mnist_5000.npz"} <= course
    tops = {n.split("/")[0] for n in course}
    assert tops <= {"pyproject.toml", "install.py", "README.md", "LICENSE", "stn_course"}, tops
    for name in names:
        assert not any(part in ("__pycache__", ".git", "solutions", "lessons", "tests", "benchmarks")
                       or part.endswith((".pyc", ".egg-info")) for part in name.split("/")), name
        assert infos[name].date_time == (1980, 1, 1, 0, 0, 0)


def test_zip_is_reproducible(workdir, seed_file, autograder_zip):
    again = workdir / "again.zip"
    write_zip(again, seed_file, "1")  # "1" is lesson 01
    assert again.read_bytes() == autograder_zip.read_bytes()


@pytest.mark.parametrize("problem, out, seed, assignment, says", [
    ("missing seed", "{workdir}/x.zip", "/nonexistent/seed.txt", None, "cannot read"),
    ("weak seed", "{workdir}/x.zip", "{weak}", None, "too weak"),
    ("unknown lesson", "{workdir}/x.zip", "{seed}", "01,42", "no lesson 42"),
    ("no lesson", "{workdir}/x.zip", "{seed}", " , ", "expected lesson numbers"),
    ("inside the course", str(ROOT / "autograder.zip"), "{seed}", None, "outside the course"),
    ("not a zip name", "{workdir}/x.tar", "{seed}", None, "ending in .zip"),
])
def test_zip_refuses_bad_input(workdir, seed_file, problem, out, seed, assignment, says):
    weak = workdir / "weak.txt"
    weak.write_text("spring2026\n")
    out = Path(out.format(workdir=workdir))
    with pytest.raises(ZipRefused, match=says):
        write_zip(out, Path(seed.format(weak=weak, seed=seed_file)), assignment)
    assert not out.exists()


def test_zip_command_exits_2_naming_the_problem(workdir):
    weak = workdir / "weak-cli.txt"
    weak.write_text("spring2026\n")
    done = _cli("gradescope-zip", str(workdir / "refused.zip"), "--seed-file", str(weak))
    assert done.returncode == 2 and "too weak" in done.stderr, done.stderr
    assert not (workdir / "refused.zip").exists()


def test_setup_script_parses_and_its_dry_run_plans_the_cpu_install(workdir, source):
    for script in SCRIPTS:
        subprocess.run(["bash", "-n", str(source / script)], check=True)
    root = workdir / "setup"
    root.mkdir()
    (root / "source").symlink_to(source)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "STN_SETUP_SKIP_APT": "1", "STN_SETUP_DRY_RUN": "1",
           "STN_SETUP_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(source / "setup.sh")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (root / "venv" / "bin" / "activate").is_file()
    plan = [line for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert "torch==2.13.0" in plan[0] and "download.pytorch.org/whl/cpu" in plan[0]
    assert f"{source / 'stn-course'}[gpu]" in plan[1] or f"{(source / 'stn-course').resolve()}[gpu]" in plan[1]


# -- run_autograder on four submissions -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(workdir, source) -> dict[str, tuple[dict, float, subprocess.CompletedProcess]]:
    """The four submissions through ``run_autograder``, once for the tests below: kind -> (results.json, wall s,
    the process). The looping and the memory-hungry one run unsandboxed, as on Gradescope's containers."""
    _, solved = solution(LESSON)
    blank = json.loads(next(LESSONS.glob(f"{LESSON}_*.ipynb")).read_text())
    looping = patched(solved, "def inverse_warp(image: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:",
                      "def inverse_warp(image: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:\n"
                      "    while True:\n        pass")
    hungry = with_cell(solved, HOG)
    return {kind: run_autograder(workdir, source, kind, nb, STN_GRADE_EXTRA_ARGS=args)
            for kind, nb, args in [("solved", solved, FAST_ARGS), ("blank", blank, FAST_ARGS),
                                   ("looping", looping, UNSANDBOXED), ("hungry", hungry, UNSANDBOXED)]}


def test_run_autograder_gives_every_submission_a_valid_result_with_feedback(graded):
    assert "not sandboxed" in graded["hungry"][0]["output"] and "bubblewrap" in graded["solved"][0]["output"]
    scores = {}
    for kind, (results, wall, done) in graded.items():
        assert done.returncode == 0, done.stderr
        assert wall < GRADESCOPE_LIMIT_S and results["execution_time"] < GRADESCOPE_LIMIT_S
        scores[kind] = assert_gradescope_shape(results)
        assert results["tests"], f"{kind}: no tests in {results}"
    maximum = sum(t["max_score"] for t in graded["solved"][0]["tests"])
    assert maximum > 0 and scores["solved"] == pytest.approx(maximum)
    assert scores["blank"] == 0
    assert all("not implemented" in t["output"].lower() for t in graded["blank"][0]["tests"]
               if t["visibility"] == "visible")
    assert scores["hungry"] == pytest.approx(maximum)  # the hog cell is stopped; the exercises still grade


def test_a_loop_costs_its_exercise_and_nothing_else(graded):
    looping = _by_exercise(graded["looping"][0])
    assert LOOPING in looping
    for exercise, tests in looping.items():
        lost = sum(t["max_score"] - t["score"] for t in tests)
        if exercise == LOOPING:
            assert lost == pytest.approx(sum(t["max_score"] for t in tests)) and lost > 0
            assert any("time" in t["output"].lower() for t in tests), tests
        else:
            assert lost == pytest.approx(0), (exercise, tests)


def test_the_memory_hungry_cell_is_reported_as_using_too_much_memory(graded, workdir):
    hog = next(i for i, cell in enumerate(with_cell(solution(LESSON)[1], HOG)["cells"])
               if cell.get("id", "").startswith("injected"))
    report = json.loads((workdir / "hungry" / "results" / "grading.json").read_text())["submissions"][0]
    stopped = [cell for cell in report["cells"] if cell["index"] == hog]
    assert stopped and stopped[0]["status"] == "error", report["cells"]
    assert "memory" in stopped[0]["error"].lower(), stopped


@pytest.mark.parametrize("trouble, grader, env, says", [
    ("killed by the outer time limit", None, {"STN_GRADE_WALL_S": "1"}, "time limit"),
    ("a usage error", None, {"STN_GRADE_EXTRA_ARGS": "--jobs 0"}, "failed (exit status 2)"),
    # a grader that dies half-way through writing results.json (a truncated file, then a segmentation fault)
    ("a crash", 'for a in "$@"; do [ "$prev" = --gradescope ] && printf \'{"tests": [\' > "$a"; prev="$a"; done; '
                "kill -SEGV $$", {}, "failed (exit status 139)"),
])
def test_run_autograder_still_writes_feedback_when_grading_fails(workdir, source, trouble, grader, env, says):
    _, solved = solution(LESSON)
    results, wall, done = run_autograder(workdir, source, trouble.replace(" ", "-"), solved, grader, **env)
    assert done.returncode == 0, done.stderr
    assert assert_gradescope_shape(results) == 0
    assert says in results["output"] and "contact your instructor" in results["output"], results
    assert wall < 30
