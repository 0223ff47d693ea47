"""The ``stn-course`` command line (every lesson: instructors publish with it, learners list the checks).

    stn-course build  [SRC_DIR] [SOLUTIONS_DIR] [--check]    percent sources -> solution notebooks
    stn-course assign [SOLUTIONS_DIR] [LESSONS_DIR] [--check]  solution notebooks -> student lessons
    stn-course checks [LESSON]                                list the exercise checks (id, points, title)

Defaults follow the repository layout (``solutions/src``, ``solutions``, ``lessons``), relative to the current
folder: run it from the course folder (the clone) or pass the folders. ``--check`` writes nothing and exits 1 if
anything is out of date – what CI and the tests use.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import notebooks

DESCRIPTION = """\
stn-course: Spatial Transformer Networks and deformable convolution from first principles.

Instructors write each lesson once, as percent-format Python in solutions/src/NN_slug.py, and publish it:
  stn-course build    solutions/src/*.py -> solutions/*.ipynb (complete notebooks, no outputs)
  stn-course assign   solutions/*.ipynb  -> lessons/*.ipynb   (solution regions replaced by stubs)
Learners open lessons/ in JupyterLab; `stn-course checks` lists the exercise checks that check() runs."""

EPILOG = """\
The folders default to the course's layout relative to the current folder; run from the course folder (the
clone of the repository) or pass them. Examples:
  stn-course build --check          exit 1 if a solution notebook differs from its source (CI does this)
  stn-course assign                 regenerate every student lesson
  stn-course checks 02              the checks of lesson 2"""


def _report(stale: list[Path], check: bool, what: str) -> int:
    if check:
        if stale:
            print(f"out of date ({what}): " + ", ".join(str(p) for p in stale))
            return 1
        print(f"{what}: up to date")
        return 0
    print(f"{what}: wrote {len(stale)} file(s)" + (": " + ", ".join(p.name for p in stale) if stale else ""))
    return 0


def _require_folder(parser: argparse.ArgumentParser, path: str, what: str, default: str, pattern: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        hint = (f"run stn-course from the course folder (the one holding {default}/), or pass the folder"
                if path == default else "pass an existing folder")
        parser.error(f"{what} folder {str(folder.resolve())!r} does not exist: {hint}")
    if not any(folder.glob(pattern)):
        parser.error(f"{what} folder {str(folder.resolve())!r} holds no {pattern} files")
    return folder


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="stn-course", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def publishing_command(name: str, help: str, description: str, source: tuple[str, str, str, str],
                           target: tuple[str, str, str, str], what: str) -> None:
        """A command that turns the files of one folder into those of another: ``name [SOURCE] [TARGET] [--check]``."""
        command = sub.add_parser(name, formatter_class=formatter, help=help, description=description)
        for dest, default, metavar, text in (source, target):
            command.add_argument(dest, nargs="?", default=default, metavar=metavar,
                                 help=f"{text} (default: %(default)s)")
        command.add_argument("--check", action="store_true", help=f"write nothing; exit 1 if {what} is out of date")

    publishing_command(
        "build", "solutions/src/*.py (percent format) -> solutions/*.ipynb",
        "Convert every percent-format lesson source NN_slug.py into a complete notebook (no outputs, "
        "deterministic cell ids), written only where it changed.",
        ("source", "solutions/src", "SRC_DIR", "folder of NN_slug.py lesson sources"),
        ("solutions", "solutions", "SOLUTIONS_DIR", "where the solution notebooks go"), "a notebook")
    publishing_command(
        "assign", "solutions/*.ipynb -> lessons/*.ipynb (student versions)",
        "Generate the student lessons: every region between '### BEGIN SOLUTION' and '### END SOLUTION' becomes "
        "'# YOUR CODE HERE' / 'raise NotImplementedError'.",
        ("solutions", "solutions", "SOLUTIONS_DIR", "folder of solution notebooks"),
        ("lessons", "lessons", "LESSONS_DIR", "where the student notebooks go"), "a lesson")

    checks = sub.add_parser("checks", help="list the exercise checks (id, points, title)",
                            description="List the exercise checks that check(id, fn) runs in the notebooks.")
    checks.add_argument("lesson", nargs="?", metavar="LESSON", help="only this lesson, e.g. 02 (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "build":
        source = _require_folder(parser, args.source, "source", "solutions/src", "[0-9][0-9]_*.py")
        return _report(notebooks.build_solutions(source, Path(args.solutions), args.check), args.check,
                       "solutions")
    if args.command == "assign":
        solutions = _require_folder(parser, args.solutions, "solutions", "solutions", "[0-9][0-9]_*.ipynb")
        return _report(notebooks.assign(solutions, Path(args.lessons), args.check), args.check, "lessons")
    if args.command == "checks":
        from .checks import all_checks

        selected = [c for c in all_checks(include_hidden=False)
                    if args.lesson is None or c.id.startswith(f"{args.lesson}.")]
        if not selected:
            lessons = sorted({c.id[:2] for c in all_checks(include_hidden=False)})
            parser.error(f"no checks for lesson {args.lesson!r}; lessons with checks: {', '.join(lessons)}")
        for c in selected:
            print(f"{c.id:40s} {c.points:4.1f}  {c.title}")
        return 0
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
