"""The ``stn-course`` command.

    stn-course build  [SRC_DIR] [SOLUTIONS_DIR] [--check]   percent sources -> solution notebooks
    stn-course assign [SOLUTIONS_DIR] [LESSONS_DIR] [--check] solution notebooks -> student lessons
    stn-course checks [LESSON]                               list the exercise checks (id, points, title)

Defaults follow the repository layout (``solutions/src``, ``solutions``, ``lessons``). ``--check`` writes nothing
and exits 1 if anything is out of date – what CI and the tests use.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import notebooks


def _report(stale: list[Path], check: bool, what: str) -> int:
    if check:
        if stale:
            print(f"out of date ({what}): " + ", ".join(str(p) for p in stale))
            return 1
        print(f"{what}: up to date")
        return 0
    print(f"{what}: wrote {len(stale)} file(s)" + (": " + ", ".join(p.name for p in stale) if stale else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stn-course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="convert solutions/src/*.py (percent format) to solutions/*.ipynb")
    build.add_argument("source", nargs="?", default="solutions/src")
    build.add_argument("solutions", nargs="?", default="solutions")
    build.add_argument("--check", action="store_true", help="write nothing; exit 1 if out of date")

    assign = sub.add_parser("assign", help="generate student lessons from the solution notebooks")
    assign.add_argument("solutions", nargs="?", default="solutions")
    assign.add_argument("lessons", nargs="?", default="lessons")
    assign.add_argument("--check", action="store_true", help="write nothing; exit 1 if out of date")

    checks = sub.add_parser("checks", help="list the registered exercise checks")
    checks.add_argument("lesson", nargs="?", help="lesson number, e.g. 02")

    args = parser.parse_args(argv)
    if args.command == "build":
        if not Path(args.source).is_dir():
            parser.error(f"source folder {args.source!r} does not exist")
        return _report(notebooks.build_solutions(Path(args.source), Path(args.solutions), args.check), args.check,
                       "solutions")
    if args.command == "assign":
        if not Path(args.solutions).is_dir():
            parser.error(f"solutions folder {args.solutions!r} does not exist")
        return _report(notebooks.assign(Path(args.solutions), Path(args.lessons), args.check), args.check, "lessons")
    if args.command == "checks":
        from .checks import all_checks

        for c in all_checks(include_hidden=False):
            if args.lesson is None or c.id.startswith(f"{args.lesson}."):
                print(f"{c.id:40s} {c.points:4.1f}  {c.title}")
        return 0
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
