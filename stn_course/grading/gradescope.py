"""Gradescope's autograder zip: ``stn-course gradescope-zip OUT.zip --seed-file F`` (classroom grading).

Gradescope builds an image from a zip holding ``setup.sh`` (run once, installs the course) and ``run_autograder``
(run per submission, writes ``results.json``); both live in ``docs/grading/gradescope/``. This module writes that
zip from the course's repository with, at its root::

    setup.sh, run_autograder      the two scripts (executable)
    seed.txt                      the instructor's secret (refused when missing or weak)
    assignment.txt                the assignment's lessons, e.g. ``01,02`` (with --assignment)
    checks/                       the instructor's own check modules (with --checks-dir)
    stn-course/                   only what installs and runs the grader: pyproject.toml, install.py, README.md,
                                  LICENSE (if present) and the ``stn_course`` package with its data

No ``.git``, ``solutions/``, ``lessons/``, ``tests/``, caches or build metadata: the grader reads the lessons from
the package's manifest (``stn_course/lessons.json``), never from ``solutions/``. Entries are sorted and carry a fixed
timestamp and fixed modes, so two builds of the same files are byte-identical.
"""
from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import course
from .seeds import weakness

__all__ = ["ZipRefused", "Entry", "course_repository", "zip_entries", "write_zip", "parse_assignment",
           "SCRIPTS", "COURSE_FILES"]

SCRIPTS = ("setup.sh", "run_autograder")  # in docs/grading/gradescope/ of the repository
COURSE_FILES = ("pyproject.toml", "install.py", "README.md")  # what `pip install` of the course needs
OPTIONAL_COURSE_FILES = ("LICENSE",)
PACKAGE = "stn_course"
SKIPPED_NAMES = {"__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".DS_Store"}
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".so", "~")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: builds do not depend on file times


class ZipRefused(ValueError):
    """Bad input to ``gradescope-zip``: the message says what was expected (the CLI exits 2 with it)."""


@dataclass(frozen=True)
class Entry:
    """One file of the zip: its name in the archive, its bytes and its Unix mode."""

    name: str
    data: bytes
    mode: int = 0o644


def course_repository(start: Path | None = None) -> Path:
    """The course's repository (a clone) this package runs from: the folder above ``stn_course/``.

    The zip is built from a clone, not from an installed wheel: it needs ``pyproject.toml``, ``install.py`` and the
    Gradescope scripts in ``docs/grading/gradescope/``."""
    root = Path(start) if start is not None else Path(__file__).resolve().parents[2]
    wanted = [root / name for name in COURSE_FILES] + [root / "docs" / "grading" / "gradescope" / s for s in SCRIPTS]
    missing = [str(path.relative_to(root)) for path in wanted if not path.is_file()]
    if missing or not (root / PACKAGE).is_dir():
        raise ZipRefused(f"gradescope-zip builds from the course's repository (a clone, installed with "
                         f"`pip install -e .`); {root} lacks {', '.join(missing) or PACKAGE + '/'}")
    return root


def parse_assignment(text: str) -> list[str]:
    """The lessons of ``--assignment`` ("01,02" or "1,2") as the course numbers them; unknown ones are refused."""
    known = course.numbers()
    lessons = [item.strip().zfill(2) for item in text.split(",") if item.strip()]
    if not lessons:
        raise ZipRefused(f"--assignment {text!r}: expected lesson numbers separated by commas, e.g. 01,02")
    unknown = [lesson for lesson in lessons if lesson not in known]
    if unknown:
        raise ZipRefused(f"--assignment {text!r}: no lesson {', '.join(unknown)}; the course's lessons are "
                         f"{', '.join(known)}")
    if len(set(lessons)) != len(lessons):
        raise ZipRefused(f"--assignment {text!r}: a lesson is named twice")
    return lessons


def read_seed(path: Path) -> str:
    """The secret in ``path``: refused when missing, empty or guessable (the zip is for real grading)."""
    try:
        secret = Path(path).read_text().strip()
    except OSError as exc:
        raise ZipRefused(f"--seed-file {str(path)!r}: cannot read it ({exc.strerror}); make one with "
                         "stn-course grade --new-seed FILE") from None
    why = weakness(secret)
    if why:
        raise ZipRefused(f"--seed-file {str(path)!r} is too weak for grading: {why}")
    return secret


def _skipped(path: Path) -> bool:
    return path.name in SKIPPED_NAMES or path.name.endswith(SKIPPED_SUFFIXES) or path.is_symlink()


def _tree(folder: Path, prefix: str) -> list[Entry]:
    """Every regular file under ``folder`` (caches, symlinks and build outputs left out), named under ``prefix``."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not _skipped(here / d))
        for name in sorted(filenames):
            path = here / name
            if not _skipped(path) and path.is_file():
                entries.append(Entry(f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes()))
    return entries


def zip_entries(seed_file: Path, assignment: str | None = None, checks_dir: Path | None = None,
                root: Path | None = None) -> list[Entry]:
    """The zip's files, sorted by name (see the module docstring); raises :class:`ZipRefused` on bad input."""
    root = course_repository(root)
    secret = read_seed(Path(seed_file))
    scripts = root / "docs" / "grading" / "gradescope"
    entries = [Entry(name, (scripts / name).read_bytes(), 0o755) for name in SCRIPTS]
    entries.append(Entry("seed.txt", (secret + "\n").encode(), 0o600))
    if assignment is not None:
        entries.append(Entry("assignment.txt", (",".join(parse_assignment(assignment)) + "\n").encode()))
    if checks_dir is not None:
        checks = Path(checks_dir)
        if not checks.is_dir() or not any(checks.glob("*.py")):
            raise ZipRefused(f"--checks-dir {str(checks_dir)!r}: expected a folder of check modules (*.py)")
        entries += _tree(checks, "checks")
    for name in COURSE_FILES + OPTIONAL_COURSE_FILES:
        if (root / name).is_file():
            entries.append(Entry(f"stn-course/{name}", (root / name).read_bytes()))
    entries += _tree(root / PACKAGE, f"stn-course/{PACKAGE}")
    return sorted(entries, key=lambda entry: entry.name)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def write_zip(out: Path, seed_file: Path, assignment: str | None = None, checks_dir: Path | None = None,
              root: Path | None = None) -> list[Entry]:
    """Write the autograder zip to ``out`` (atomically) and return its entries.

    ``out`` must lie outside the course folder: the zip holds the secret, and a course folder is a repository that
    gets committed and shared."""
    out = Path(out)
    repository = course_repository(root)
    if _inside(out, repository):
        raise ZipRefused(f"{out}: the zip holds your secret; write it outside the course folder {repository}")
    if out.suffix != ".zip":
        raise ZipRefused(f"{out}: expected a file name ending in .zip")
    if not out.parent.is_dir():
        raise ZipRefused(f"{out}: the folder {out.parent} does not exist")
    entries = zip_entries(seed_file, assignment, checks_dir, repository)
    fd, temporary = tempfile.mkstemp(prefix=".gradescope-", suffix=".zip", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
            for entry in entries:
                info = zipfile.ZipInfo(entry.name, date_time=ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix: the modes below apply when unzipped
                info.external_attr = (stat.S_IFREG | entry.mode) << 16
                archive.writestr(info, entry.data, compresslevel=9)
        os.chmod(temporary, 0o600)  # it holds the secret
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return entries
