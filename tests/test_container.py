"""The Dockerfile (Binder, JupyterHub, grading: docs/containers.md) is built from the project's own files.

Where a Docker daemon runs, `.ci/run` builds the image and runs it; these tests hold on every machine: the image
installs with the README's command, ships no solutions, runs unprivileged with the lessons in its home, and the
docs' snippets use the commands as the CLI spells them.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTALL_SH = (ROOT / "docker" / "install.sh").read_text()  # the image's install steps (tests/test_install_routes.py runs them)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^(\w+)\s+(.*)$", text, flags=re.M)]


def test_the_image_installs_with_the_readmes_command_and_the_cpu_build():
    runs = " && ".join(args for op, args in _instructions() if op == "RUN")
    assert "sh /tmp/stn-course/docker/install.sh /tmp/stn-course" in runs  # the steps the install-route test runs
    steps = "\n".join(line for line in INSTALL_SH.splitlines() if not line.lstrip().startswith("#"))
    assert re.search(r'python "\$src/install\.py" --cpu --no-editable --extras explore\n', steps)
    assert "python install.py" in (ROOT / "README.md").read_text()  # the same script as the README's set-up
    assert "bubblewrap" in runs and "jupyterhub==" in steps and "notebook" in steps
    assert "stn-course lessons lessons" in runs  # the lessons in the home folder, by the CLI
    froms = [args for op, args in _instructions() if op == "FROM"]
    assert froms and all(":" in image and not image.endswith(":latest") for image in froms)  # a pinned base


def test_the_image_copies_only_what_installs_the_package_never_solutions_or_tests():
    copied = [args.split()[:-1] for op, args in _instructions() if op in ("COPY", "ADD")]
    sources = {source for group in copied for source in group if not source.startswith("--")}
    assert sources <= {"pyproject.toml", "README.md", "LICENSE", "install.py", "docker/install.sh", "stn_course",
                       "lessons"}, sources
    assert {"stn_course", "lessons", "pyproject.toml"} <= sources
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"solutions", "tests", ".git"} <= set(ignored)
    assert "rm -rf /tmp/stn-course" in DOCKERFILE  # the copy is installed, then deleted


def test_the_image_runs_unprivileged_as_binder_and_jupyterhub_expect():
    ops = _instructions()
    args = dict(a.split("=", 1) for op, a in ops if op == "ARG" and "=" in a)
    assert args["NB_USER"] == "jovyan" and args["NB_UID"] == "1000"
    users = [a for op, a in ops if op == "USER"]
    assert users and users[-1] == "${NB_USER}"
    cmd = [a for op, a in ops if op == "CMD"][-1]
    assert '"jupyter", "lab"' in cmd and "--allow-root" not in cmd and "8888" in cmd


def test_the_pyproject_package_data_ships_what_the_image_copies():
    """The image installs a copy of the package: the lessons it copies into the home folder must be in it."""
    text = (ROOT / "pyproject.toml").read_text()
    assert '"stn_course.lessons_data" = "lessons"' in text


def test_the_jupyterhub_snippet_names_the_image_and_the_lessons_command():
    docs = (ROOT / "docs" / "containers.md").read_text()
    assert "singleuser:" in docs and "image:" in docs and "lifecycleHooks" in docs
    command = re.search(r'command: \["sh", "-c", "(.*)"\]', docs).group(1)
    assert 'stn-course lessons \\"$HOME/lessons\\"' in command
    help_text = subprocess.run([sys.executable, "-m", "stn_course.cli", "lessons", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "DIR" in help_text and "--force" in help_text
    grade = re.search(r"stn-course stn-course grade (.*)", docs).group(1)
    grade_help = subprocess.run([sys.executable, "-m", "stn_course.cli", "grade", "--help"], capture_output=True,
                                text=True, check=True).stdout
    for option in re.findall(r"--[a-z-]+", grade):
        assert option in grade_help, option
