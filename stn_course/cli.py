"""The ``stn-course`` command line (every lesson: instructors publish with it, learners list the checks).

    stn-course build  [SRC_DIR] [SOLUTIONS_DIR] [--check]    percent sources -> solution notebooks
    stn-course assign [SOLUTIONS_DIR] [LESSONS_DIR] [--check]  solution notebooks -> student lessons
    stn-course lessons [DIR] [--force]                        list the lessons; with DIR, copy the student notebooks there
    stn-course checks [LESSON]                                list the exercise checks (id, points, title)
    stn-course grade SUBMISSION... [--json F] [--gradescope F] [--csv F] [--report F] [--classroom] [--jobs N]
                     [--roster F] [--merge | --only-failed] [--duplicates best|latest]
                     [--timeout S] [--memory MB] [--seed-file F] [--checks-dir DIR] [--allow-unsandboxed]
                                                              grade submitted notebooks in a sandbox
    stn-course explore [LESSON] [--port P] [--ip IP]          the explorers as a code-free Voilà dashboard
    stn-course gradescope-zip OUT.zip --seed-file F [--assignment 01,02] [--checks-dir DIR]
                                                              Gradescope's autograder zip (docs/grading.md)

Defaults follow the repository layout (``solutions/src``, ``solutions``, ``lessons``), relative to the current
folder: run it from the course folder (the clone) or pass the folders. ``--check`` writes nothing and exits 1 if
anything is out of date – what CI and the tests use. ``STN_COURSE_ROOT=DIR`` makes every command use the course
in ``DIR`` (its ``solutions/src``), e.g. an instructor's own lessons.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from . import course  # the standard library only: --help and `lessons` import neither torch nor nbformat

DESCRIPTION = """\
stn-course: Spatial Transformer Networks and deformable convolution from first principles.

Instructors write each lesson once, as percent-format Python in solutions/src/NN_slug.py, and publish it:
  stn-course build    solutions/src/*.py -> solutions/*.ipynb (complete notebooks, no outputs)
  stn-course assign   solutions/*.ipynb  -> lessons/*.ipynb   (solution regions replaced by stubs)
Learners open lessons/ in JupyterLab; `stn-course checks` lists the exercise checks that check() runs.
Instructors grade what comes back with `stn-course grade` (see docs/grading.md); `stn-course explore` serves the
explorers as code-free dashboards for a classroom."""

EPILOG = """\
The folders default to the course's layout relative to the current folder; run from the course folder (the
clone of the repository) or pass them. Examples:
  stn-course build --check          exit 1 if a solution notebook differs from its source (CI does this)
  stn-course assign                 regenerate every student lesson
  stn-course checks 02              the checks of lesson 2
  stn-course grade submissions/ --seed-file secret.txt --csv grades.csv --jobs 2"""


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


#: The grader's numeric limits: flag, type, default, metavar and help (the default is appended where there is one).
GRADE_LIMITS = (
    ("--jobs", int, 1, "N", "grade N submissions at once"),
    ("--timeout", float, 20.0, "S", "CPU seconds for each exercise's calls (visible and hidden together)"),
    ("--cell-timeout", float, 12.0, "S", "CPU seconds for each cell (at most --timeout)"),
    ("--cells-timeout", float, 60.0, "S",
     "CPU seconds for all of a notebook's cells together; after that each cell gets 2 s"),
    ("--submission-timeout", float, None, "S", "wall-clock seconds for a whole submission (default: 10 × --timeout)"),
    ("--run-timeout", float, None, "S",
     "wall-clock seconds for the whole run, all submissions (Gradescope: 480 of its 600); the rest is 'not run'"),
    ("--memory", int, 4096, "MB",
     "memory each of a submission's processes may map beyond the interpreter's own after its imports"),
    ("--total-memory", int, 8192, "MB",
     "memory of all of a submission's processes and its /tmp together, where a cgroup can be made"),
)

#: The grader's secret seed, assignment and own checks: flag, metavar and help.
GRADE_INPUTS = (
    ("--seed-file", "F", "a file holding the instructor's secret seed for the cases (keep it out of the course); "
                         "without it the course's public default seed is used and a warning printed"),
    ("--new-seed", "F", "write a strong random secret to F (mode 600) and exit; then grade with --seed-file F"),
    ("--assignment", "LESSONS", "the lessons of the assignment, e.g. 01,02: one notebook per lesson per student is "
                                "graded, duplicates and other lessons are reported and not scored (Gradescope)"),
    ("--single-student", "NAME", "every notebook given is this one student's (Gradescope: one student per run); each "
                                 "lesson is graded once, a second notebook of a lesson is reported and not scored"),
    ("--checks-dir", "DIR", "a folder of the instructor's own check modules (*.py registering hidden checks)"),
)


#: The gradebook's inputs and outputs: flag, metavar and help (stn_course/grading/gradebook.py, class_report.py).
GRADE_GRADEBOOK = (
    ("--roster", "F", "a roster CSV (Gradescope's or GitHub Classroom's export, or student_id,email,name[,aliases]): "
                      "rows by student id, unmatched submissions and students without one listed"),
    ("--report", "F", "write the HTML class report: pass rates, score histograms, hardest hidden cases, review "
                      "flags, time per submission"),
)


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

    lessons = sub.add_parser("lessons", help="list the course's lessons, or copy them to a folder: lessons DIR",
                             description="List the lessons the package discovers: the sources in solutions/src (or "
                                         "the folder named by STN_COURSE_ROOT), each declaring its checks, figures, "
                                         "explorers and dashboard in its header. With DIR, copy the student "
                                         "notebooks there (from the clone's lessons/, or the copies the installed "
                                         "package ships), then open them: jupyter lab DIR")
    lessons.add_argument("directory", nargs="?", metavar="DIR", help="copy the student lessons into this folder")
    lessons.add_argument("--force", action="store_true", help="replace lessons already in DIR (your work there!)")
    checks = sub.add_parser("checks", help="list the exercise checks (id, points, title)",
                            description="List the exercise checks that check(id, fn) runs in the notebooks.")
    checks.add_argument("lesson", nargs="?", metavar="LESSON", help="only this lesson, e.g. 02 (default: all)")
    _add_grade_parser(sub, formatter)
    _add_gradescope_zip_parser(sub, formatter)
    _add_explore_parser(sub, formatter)
    return parser


def _add_explore_parser(sub, formatter) -> None:
    """``stn-course explore``; its help lists the lessons' dashboards (:func:`stn_course.explore.dashboards`)."""
    from . import explore as dashboards  # course and PyYAML only (no nbformat, no torch): --help stays light

    try:
        numbers = sorted(dashboards.dashboards())
        which = f"one of {', '.join(numbers)} (default: all {len(numbers)})"
    except Exception as error:  # a half-edited lesson header must not stop `stn-course build` from parsing its args
        which = f"(the lessons' headers could not be read: {error})"
    explore = sub.add_parser("explore", formatter_class=formatter,
                             help="the lessons' explorers as a code-free dashboard (Voilà)",
                             description="Serve the explorers with Voilà: pages that show the widgets and no code, "
                                         "for a classroom – one page per lesson. Ctrl+C stops the server and its "
                                         "kernels. Needs the explore extra (pip install 'stn-course[explore]').")
    explore.add_argument("lesson", nargs="?", metavar="LESSON", help=f"only this lesson, {which}")
    explore.add_argument("--port", type=int, default=None, help="the port (default: a free one)")
    explore.add_argument("--ip", default="127.0.0.1",
                         help="the address to listen on (default: %(default)s, this machine only)")
    explore.add_argument("--token", default="", help="require ?token=… in the address (default: none)")


GRADE_DESCRIPTION = """\
Grade submitted notebooks. A SUBMISSION is a notebook or a folder: of notebooks (one submission per file, named
by student) or of folders (one per student). The lesson comes from the notebook's metadata (written by build and
assign), else from its NN_ file name.

Each submission runs in its own child process, sandboxed with bubblewrap (no network, a private size-limited
/tmp, nothing of the file system but the interpreter and the installed course, an unprivileged uid), with limits
on CPU time per cell and per exercise, wall-clock time per submission, memory, files and processes. The child
only computes: the grader generates the cases from the seed, sends the inputs, compares the results with its own
references, and adds hidden cases that students never see. A cell that fails or times out costs nothing by
itself; an exercise that fails, times out or calls what it should implement loses its points. Code that reaches
for the grader's machinery is listed for review in the JSON and CSV outputs (docs/grading.md, threat model)."""

GRADE_EPILOG = """\
Exit status: 0 when grading finished (whatever the scores); with --classroom, 1 unless every submission has full
marks (GitHub Classroom's contract); 2 for a usage error (a missing seed file, no sandbox without
--allow-unsandboxed, a SUBMISSION that does not exist, an unreadable --roster, --merge without its --json file):
then nothing is graded or written; 3 when grading stopped part-way (e.g. every sandbox uid taken by other runs):
every requested output is still written. See docs/grading.md for Gradescope and GitHub Classroom."""


def _add_grade_parser(sub, formatter) -> None:
    grade = sub.add_parser("grade", formatter_class=formatter, help="grade submitted notebooks in a sandbox",
                           description=GRADE_DESCRIPTION, epilog=GRADE_EPILOG)
    grade.add_argument("submissions", nargs="*", metavar="SUBMISSION", help="notebooks or folders of them")
    grade.add_argument("--json", metavar="F", help="write the results as JSON (schema: docs/grading.md)")
    grade.add_argument("--gradescope", metavar="F", help="write Gradescope's results.json")
    grade.add_argument("--csv", metavar="F", help="write a gradebook: a row per student, a column per exercise")
    for flag, metavar, text in GRADE_GRADEBOOK:
        grade.add_argument(flag, metavar=metavar, help=text)
    grade.add_argument("--duplicates", choices=("best", "latest"), default="best",
                       help="which of a student's notebooks of one lesson counts: the best score or the latest "
                            "file (mtime); the others are reported (default: %(default)s)")
    grade.add_argument("--merge", action="store_true",
                       help="regrade: read the class's previous --json output, replace only the submissions graded "
                            "now and rewrite --json/--csv/--report for the whole class")
    grade.add_argument("--only-failed", action="store_true",
                       help="regrade only the submissions whose previous result (--json) was an error or timed out "
                            "(implies --merge; without SUBMISSION, those of the previous results)")
    grade.add_argument("--classroom", action="store_true",
                       help="GitHub Classroom: write the grading reporter's result to $GITHUB_OUTPUT and exit 1 "
                            "unless every submission has full marks")
    for flag, kind, default, metavar, text in GRADE_LIMITS:
        grade.add_argument(flag, type=kind, default=default, metavar=metavar,
                           help=text if default is None else f"{text} (default: %(default)s)")
    for flag, metavar, text in GRADE_INPUTS:
        grade.add_argument(flag, metavar=metavar, help=text)
    grade.add_argument("--allow-unsandboxed", action="store_true",
                       help="grade even where bubblewrap cannot run (e.g. Gradescope): plain processes with rlimits, "
                            "as an unprivileged uid when run as root; reported as such (default: refuse)")
    grade.add_argument("--require-sandbox", action="store_true", help=argparse.SUPPRESS)  # the default now
    grade.add_argument("--no-sandbox", action="store_true",
                       help="switch bubblewrap off (needs --allow-unsandboxed; for debugging; reported as such)")
    grade.add_argument("--quiet", action="store_true", help="print only the summary")
    grade.add_argument("--answers", metavar="F", help="export the written answers (the lessons' questions) per "
                                                      "student for grading by hand: F.csv or F.md")


def _gradebook_inputs(args) -> tuple | int:
    """``(roster, previous results)`` for a grading run, checked before anything is graded or written: a missing
    SUBMISSION, an unreadable roster or (for --merge/--only-failed) previous --json is an error, exit 2."""
    from .grading.gradebook import GradebookError, failed_paths, load_previous
    from .grading.roster import Roster, RosterError, load_roster

    def refuse(message: str) -> int:
        print(f"stn-course grade: {message} (nothing was graded or written)", file=sys.stderr)
        return 2

    missing = [p for p in args.submissions if not os.path.lexists(p)]
    if missing:
        return refuse("no such file or folder: " + ", ".join(repr(p) for p in missing))
    previous = None
    if args.merge or args.only_failed:
        if not args.json:
            return refuse("--merge and --only-failed read and rewrite the class's results: give --json F")
        try:
            previous = load_previous(Path(args.json))
        except GradebookError as exc:
            return refuse(str(exc))
    try:
        roster = (load_roster(Path(args.roster)) if args.roster else
                  Roster.from_json(previous["roster"]) if previous and previous.get("roster") else None)
    except RosterError as exc:
        return refuse(f"--roster: {exc}")
    if args.only_failed and not args.submissions:
        args.submissions = sorted(failed_paths(previous["submissions"]))
    return roster, previous


def grade_command(args, parser: argparse.ArgumentParser) -> int:
    import json

    from .grading import class_report, gradebook, reports
    from .grading.grader import DEFAULT_SEED, Grader, load_checks_dir
    from .grading.sandbox import Limits, SandboxUnavailable
    from .grading.submissions import discover

    from .grading.seeds import new_seed, weakness

    if args.new_seed:
        try:
            new_seed(Path(args.new_seed))
        except FileExistsError:
            parser.error(f"--new-seed: {args.new_seed!r} exists; remove it first (or keep using it)")
        except OSError as exc:
            parser.error(f"--new-seed: cannot write {args.new_seed!r}: {exc.strerror}")
        print(f"wrote a new secret to {args.new_seed} (mode 600); grade with --seed-file {args.new_seed}")
        return 0
    if not args.submissions and not args.only_failed:
        parser.error("give at least one SUBMISSION (a notebook or a folder)")
    if args.answers and Path(args.answers).suffix.lower() not in (".csv", ".md", ".markdown"):
        parser.error(f"--answers {args.answers!r}: expected a .csv or .md file")
    prepared = _gradebook_inputs(args)
    if isinstance(prepared, int):
        return prepared
    roster, previous = prepared
    if args.jobs < 1 or args.timeout <= 0 or args.memory < 64 or (args.submission_timeout or 1) <= 0:
        parser.error("--jobs must be >= 1, --timeout and --submission-timeout > 0 and --memory >= 64")
    if args.cell_timeout <= 0 or args.cells_timeout <= 0 or (args.run_timeout is not None and args.run_timeout <= 0):
        parser.error("--cell-timeout, --cells-timeout and --run-timeout must be > 0 seconds")
    if args.require_sandbox and (args.no_sandbox or args.allow_unsandboxed):
        parser.error("--require-sandbox contradicts --no-sandbox and --allow-unsandboxed")
    if args.no_sandbox and not args.allow_unsandboxed:
        parser.error("--no-sandbox runs the students' code without the sandbox: add --allow-unsandboxed to say so")
    seed, seed_kind = DEFAULT_SEED, "default"
    if args.seed_file:
        try:
            seed = Path(args.seed_file).read_text().strip()
        except OSError as exc:
            parser.error(f"cannot read the seed file {args.seed_file!r}: {exc.strerror}")
        if not seed:
            parser.error(f"the seed file {args.seed_file!r} is empty")
        seed_kind = "instructor"
        why = weakness(seed)
        if why:
            print(f"warning: the seed in {args.seed_file} is weak: {why}", file=sys.stderr)
    if args.checks_dir:
        if not Path(args.checks_dir).is_dir():
            parser.error(f"--checks-dir {args.checks_dir!r} is not a folder")
        added = load_checks_dir(Path(args.checks_dir))
        print(f"instructor checks from {args.checks_dir}: {', '.join(added) or 'none'}")
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory, submission_s=args.submission_timeout,
                    total_memory_mb=args.total_memory, cell_timeout_s=args.cell_timeout,
                    cells_s=args.cells_timeout, run_s=args.run_timeout)
    try:
        grader = Grader(seed, limits, jobs=args.jobs, sandbox=not args.no_sandbox,
                        allow_unsandboxed=args.allow_unsandboxed)
    except SandboxUnavailable as exc:
        print(f"stn-course grade: {exc}", file=sys.stderr)
        return 2
    submissions = discover([Path(p) for p in args.submissions])
    if args.assignment:
        from .grading.submissions import for_assignment

        submissions = for_assignment(submissions, [x.strip() for x in args.assignment.split(",") if x.strip()],
                                     args.single_student)
    elif args.single_student:  # one student: each lesson once, whatever else was handed in
        from .grading.submissions import for_assignment

        lessons = sorted({s.lesson for s in submissions if s.lesson})
        submissions = for_assignment(submissions, lessons, args.single_student) if lessons else submissions
        for submission in submissions:
            submission.student = args.single_student
    if args.only_failed:
        from .grading.gradebook import failed_paths

        failed = failed_paths(previous["submissions"])
        submissions = [s for s in submissions if os.path.realpath(s.path) in failed]
        print(f"--only-failed: regrading {len(submissions)} submission(s) whose previous result was an error or "
              "timed out")
        if not submissions:
            return 0

    if args.answers:  # read from the notebooks' JSON, never run: written before grading starts
        from .grading import answers

        reports.write_text(Path(args.answers), answers.render(answers.collect(submissions), Path(args.answers)))

    def progress(result) -> None:
        if not args.quiet:
            print(f"graded {reports.shown(result.student)} ({reports.shown(Path(result.path).name)}): "
                  f"{result.score:.2f} / {result.max_score:.2f}", flush=True)

    failure = None
    try:
        results = grader.grade(submissions, progress)
    except Exception as exc:  # noqa: BLE001 – still write every requested file
        failure, results = exc, []
    records = gradebook.records_of(results)
    if previous is not None:  # --merge: the class's previous results, these submissions' replaced
        records = gradebook.merge(previous["submissions"], records)
    lessons = [x.strip() for x in args.assignment.split(",") if x.strip()] if args.assignment else None
    book = gradebook.build(records, roster, lessons, args.duplicates)
    outputs = {
        args.json: lambda: reports.dumps(gradebook.class_json(records, book, grader.sandbox_text, seed_kind)),
        args.gradescope: lambda: reports.dumps(reports.to_gradescope(results, grader.sandbox_text)),
        args.csv: lambda: gradebook.to_csv(book),
        args.report: lambda: class_report.render(book, records),
    }
    for path, render in outputs.items():
        if path:
            reports.write_text(Path(path), render() + ("" if path == args.csv else "\n"))
    classroom = reports.to_classroom(results)
    if args.classroom:
        reports.publish_classroom(classroom)
    print(reports.table(results, grader.sandbox_text, seed_kind))
    for line in gradebook.loose_ends(book):
        print(reports.shown(line))
    if failure is not None:
        print(f"stn-course grade: grading stopped: {type(failure).__name__}: {failure}", file=sys.stderr)
        return 3
    if args.classroom and classroom["status"] != "pass":
        return 1
    return 0


def _add_gradescope_zip_parser(sub, formatter) -> None:
    """``stn-course gradescope-zip OUT.zip --seed-file F [--assignment 01,02] [--checks-dir DIR]``."""
    command = sub.add_parser("gradescope-zip", formatter_class=formatter,
                             help="build Gradescope's autograder zip (setup.sh, run_autograder, the grader)",
                             description="Write the zip to upload as a Gradescope autograder: the two scripts of "
                                         "docs/grading/gradescope/, your seed, the assignment's lessons, your own "
                                         "checks and only the part of the course that grades (no .git, solutions, "
                                         "lessons or tests). Run it from the course's clone. See docs/grading.md.",
                             epilog="Exit status: 0 when written; 2 for bad input (a missing or weak seed, an "
                                    "output inside the course folder, an unknown lesson).")
    command.add_argument("out", metavar="OUT.zip", help="where to write the zip (outside the course folder)")
    command.add_argument("--seed-file", required=True, metavar="F",
                         help="your secret (stn-course grade --new-seed F); a weak one is refused")
    command.add_argument("--assignment", metavar="LESSONS",
                         help="the assignment's lessons, e.g. 01,02: one notebook per lesson is graded (default: "
                              "each lesson a student hands in, once)")
    command.add_argument("--checks-dir", metavar="DIR", help="a folder of your own check modules (*.py)")


def gradescope_zip_command(args, parser: argparse.ArgumentParser) -> int:
    """Write the autograder zip; bad input is a usage error (exit 2) naming what was expected."""
    from .grading.gradescope import ZipRefused, write_zip

    try:
        entries = write_zip(Path(args.out), Path(args.seed_file), args.assignment,
                            Path(args.checks_dir) if args.checks_dir else None)
    except ZipRefused as exc:
        parser.error(f"gradescope-zip: {exc}")
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out}: {len(entries)} files, {size / 1e6:.1f} MB; upload it as the autograder of a "
          "Gradescope programming assignment (docs/grading.md, section 7)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("build", "assign"):
        from . import notebooks
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
    if args.command == "lessons" and args.directory is not None:
        try:
            written = course.copy_lessons(Path(args.directory), overwrite=args.force)
        except (FileExistsError, FileNotFoundError) as error:
            print(f"stn-course lessons: {error}", file=sys.stderr)
            return 1
        print(f"copied {len(written)} lessons to {Path(args.directory).resolve()}: "
              + ", ".join(path.name for path in written))
        print(f"open them with: jupyter lab {args.directory}")
        return 0
    if args.command == "lessons":  # the listing loads the check modules (and so torch): it counts what registers
        from .checks import all_checks

        counts = Counter(c.lesson for c in all_checks(include_hidden=False))
        root = course.course_root()
        print(f"course: {root if root is not None else 'the installed package (stn_course/lessons.json)'}")
        for lesson in course.lessons():
            board = "dashboard" if lesson.dashboard is not None else "no dashboard"
            print(f"{lesson.number}  {lesson.title:52s} {counts[lesson.number]:2d} checks  {board}")
        return 0
    if args.command == "grade":
        return grade_command(args, parser)
    if args.command == "gradescope-zip":
        return gradescope_zip_command(args, parser)
    if args.command == "explore":
        from . import explore

        boards = explore.dashboards()
        if args.lesson is not None and args.lesson not in boards:
            parser.error(f"no explorer for lesson {args.lesson!r}; lessons: {', '.join(sorted(boards))}")
        return explore.serve([args.lesson] if args.lesson else None, args.port, args.ip, args.token)
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
