"""An instructor's term at class scale, end to end through the CLI an instructor uses.

It generates a class of ``--students`` students (default 32) handing in lessons 1 and 2 the way a real class does –
solutions, the mutation suite's planted bugs, untouched lessons, an endless loop, a crash, a renamed file, a
duplicate hand-in, a student not on the roster, roster students who handed nothing in, folders named by e-mail,
GitHub username or full name – with a roster in Gradescope's export format, and then:

1. grades the class in the sandbox with ``--roster --json --csv --report`` (``--jobs 2``);
2. checks the gradebook: one row per roster student (plus the unmatched), every verdict as planted;
3. regrades one student with ``--merge`` (their fixed notebook) and checks that only their row changed;
4. grades the class again as two runs at once (two halves) and checks that every score equals run 1's.

It prints the timings and, with ``--write``, stores them in ``benchmarks/README.md``.

    python benchmarks/class_term.py [--students 32] [--jobs 2] [--keep DIR] [--write]
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, markdown_table, write_section  # noqa: E402
from tests.grading.helpers import LESSONS, patched, solution, with_cell, write_submission  # noqa: E402
from tests.grading.test_mutations import MUTANTS  # noqa: E402

CLASS_LESSONS = ("01", "02")
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Katherine", "Leslie",
         "Margaret", "Niklaus", "Radia", "Shafi", "Tim", "Yoshua"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Johnson", "Lamport",
        "Hamilton", "Wirth", "Perlman", "Goldwasser", "Berners-Lee", "Bengio"]
LOOP = ("    c, s = math.cos(angle), math.sin(angle)\n", "    while True:  # planted: an endless loop\n        pass\n")


def _stub(lesson: str) -> tuple[str, dict]:
    path = next(LESSONS.glob(f"{lesson}_*.ipynb"))
    return path.name, json.loads(path.read_text())


def build_class(folder: Path, students: int) -> tuple[Path, dict[str, dict[str, str]]]:
    """Write the submissions and a Gradescope roster; -> (roster path, {student_id: {lesson: what was planted}})."""
    roster_rows, planted = [], {}
    mutants = {lesson: [m for m in MUTANTS if m.target[:2] == lesson] for lesson in CLASS_LESSONS}
    for i in range(students):
        first, last = FIRST[i % len(FIRST)], f"{LAST[i % len(LAST)]}{i // len(LAST) or ''}"
        sid, email = f"{20260000 + i}", f"{first.lower()}.{last.lower()}@example.edu"
        roster_rows.append([first, last, sid, email, "Student"])
        if i in (students - 1, students - 2):
            planted[sid] = {}  # on the roster, handed nothing in
            continue
        # the folder name an LMS export would use: the e-mail's local part, the id or the full name
        who = [email.split("@")[0], sid, f"{first} {last}"][i % 3]
        planted[sid] = {}
        for lesson in CLASS_LESSONS:
            name, nb = solution(lesson)
            kind = "solution"
            if i % 4 == 1:
                mutant = mutants[lesson][(i // 4) % len(mutants[lesson])]
                nb, kind = patched(nb, mutant.find, mutant.replace), mutant.target
            elif i % 8 == 2:
                name, nb = _stub(lesson)
                kind = "untouched"
            elif i == 3 and lesson == "01":
                nb, kind = patched(nb, *LOOP), "loop:01.rotation_matrix"
            elif i == 11 and lesson == "02":
                nb, kind = with_cell(nb, "import os\nos._exit(3)\n", after=3), "crash"
            if i == 6 and lesson == "02":
                name = "my_homework_final(2).ipynb"  # renamed: the lesson comes from the notebook's metadata
            write_submission(folder, who, name, nb)
            planted[sid][lesson] = kind
            if i == 7 and lesson == "01":  # handed in twice: a broken early copy and the final one
                early = patched(nb, mutants["01"][0].find, mutants["01"][0].replace)
                write_submission(folder, who, "01_early_copy.ipynb", early)
    write_submission(folder, "stranger", solution("01")[0], solution("01")[1])  # not on the roster
    roster = folder.parent / "roster.csv"
    with roster.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["First Name", "Last Name", "SID", "Email", "Role"])
        writer.writerows(roster_rows)
        writer.writerow(["Terry", "Assistant", "ta1", "ta@example.edu", "TA"])  # staff: not a student
    return roster, planted


def grade(paths: list[Path], out: Path, *extra: str, jobs: int = 2, roster: Path | None = None,
          seed: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    command = [sys.executable, "-m", "stn_course.cli", "grade", *map(str, paths), "--jobs", str(jobs), "--quiet",
               "--json", str(out / "grades.json"), "--csv", str(out / "grades.csv"), "--report",
               str(out / "report.html"), *(["--roster", str(roster)] if roster else []),
               *(["--seed-file", str(seed)] if seed else []), *extra]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"grading failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start, done


def rows_by_id(path: Path) -> dict[str, dict[str, str]]:
    return {row["student_id"] or row["student"]: row for row in csv.DictReader(io.StringIO(path.read_text()))}


def scores_by_path(path: Path) -> dict[str, float]:
    return {Path(s["path"]).name + "@" + Path(s["path"]).parent.name: s["score"]
            for s in json.loads(path.read_text())["submissions"]}


def verify(rows: dict[str, dict[str, str]], planted: dict[str, dict[str, str]]) -> list[str]:
    """What differs from the planted verdicts (empty: all as planted)."""
    wrong = []
    for sid, lessons in planted.items():
        row = rows.get(sid)
        if row is None:
            wrong.append(f"{sid}: no row")
            continue
        if not lessons:
            if row["status"] != "no submission" or float(row["total"]) != 0:
                wrong.append(f"{sid}: handed nothing in, row says {row['status']} {row['total']}")
            continue
        for lesson, kind in lessons.items():
            total = float(row[f"{lesson} total"])
            lost = any(float(row[c]) < _max(c) for c in row if c.startswith(f"{lesson}."))
            if kind in ("solution", "crash") and lost:
                wrong.append(f"{sid}: {kind} of {lesson} lost points")  # a crashing cell costs nothing itself
            elif kind == "untouched" and total != 0:
                wrong.append(f"{sid}: untouched {lesson} scored {total}")
            elif kind.startswith(f"{lesson}.") and float(row[kind]) >= _max(kind):
                wrong.append(f"{sid}: planted bug on {kind} kept its points")
            elif kind.startswith("loop:") and float(row[kind[5:]]) != 0:
                wrong.append(f"{sid}: the looping {kind[5:]} scored {row[kind[5:]]}")
    return wrong


_MAX: dict[str, float] = {}


def _max(check_id: str) -> float:
    if not _MAX:
        from stn_course.checks import registry

        _MAX.update({c.id: float(c.points) for c in registry.all_checks()})
    return _MAX[check_id]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the class, roster and outputs in this folder")
    parser.add_argument("--write", action="store_true", help="store the table in benchmarks/README.md")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="stn-class-"))
    class_dir = work / "class"
    roster, planted = build_class(class_dir, args.students)
    seed = work / "seed.txt"
    if not seed.exists():
        subprocess.run([sys.executable, "-m", "stn_course.cli", "grade", "--new-seed", str(seed)], check=True,
                       capture_output=True)
    notebooks = len(list(class_dir.rglob("*.ipynb")))
    print(f"{args.students} students, {notebooks} notebooks in {class_dir}")

    # 1. the class
    first_s, first = grade([class_dir], work / "run1", jobs=args.jobs, roster=roster, seed=seed)
    rows = rows_by_id(work / "run1" / "grades.csv")
    wrong = verify(rows, planted)
    report = (work / "run1" / "report.html").read_text()
    print(first.stdout.strip().splitlines()[-1] if first.stdout.strip() else "")
    print(f"run 1: {first_s:.0f} s, {len(rows)} rows, report {len(report) // 1024} kB with "
          f"{report.count('<img')} plots; {len(wrong)} verdicts not as planted")

    # 2. a regrade of one student (the first with a planted bug fixes it), merged into run 1's outputs
    merged = work / "merged"
    merged.mkdir(exist_ok=True)
    for name in ("grades.json", "grades.csv"):
        (merged / name).write_bytes((work / "run1" / name).read_bytes())
    sid = next(s for s, lessons in planted.items() if lessons.get("01", "").startswith("01."))
    folder = next(p.parent for p in class_dir.rglob("01_*.ipynb")
                  if rows[sid]["student"] == p.parent.name)
    fixed_name, fixed_nb = solution("01")
    (folder / fixed_name).write_text(json.dumps(fixed_nb))
    regrade_s, _ = grade([folder], merged, "--merge", jobs=1, roster=roster, seed=seed)
    after = rows_by_id(merged / "grades.csv")
    changed = sorted(s for s in rows if rows[s] != after.get(s))
    merge_ok = changed == [sid] and float(after[sid]["01 total"]) > float(rows[sid]["01 total"])
    verdict = "ok" if merge_ok else "WRONG"
    print(f"regrade of {sid} with --merge: {regrade_s:.0f} s; rows changed: {changed} ({verdict})")

    # 3. two runs at once over two halves of the class (each with its own sandbox uids): the same scores as one run
    folders = sorted(p for p in class_dir.iterdir() if p.is_dir())
    halves = [folders[0::2], folders[1::2]]
    start = time.perf_counter()
    runs = []
    for k, half in enumerate(halves):
        out = work / f"together{k}"
        out.mkdir(exist_ok=True)
        runs.append(subprocess.Popen([sys.executable, "-m", "stn_course.cli", "grade", *map(str, half), "--jobs", "1",
                                      "--quiet", "--seed-file", str(seed), "--json", str(out / "grades.json")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    codes = [r.wait(timeout=3600) for r in runs]
    together_s = time.perf_counter() - start
    alone = scores_by_path(merged / "grades.json")
    together = {}
    for k in range(2):
        together.update(scores_by_path(work / f"together{k}" / "grades.json"))
    differ = sorted(key for key in together if together[key] != alone.get(key))
    print(f"two runs at once: {together_s:.0f} s, exit {codes}; scores differing from one run: {differ or 'none'}")

    ok = not wrong and merge_ok and not differ and codes == [0, 0]
    for line in wrong:
        print("  " + line)
    if args.write:
        table = markdown_table(
            ["step", "what", "seconds", "result"],
            [["grade the class", f"{args.students} students, {notebooks} notebooks, --jobs {args.jobs}, roster, "
              "CSV + JSON + HTML report", f"{first_s:.0f}", "every verdict as planted" if not wrong else
              f"{len(wrong)} not as planted"],
             ["regrade one student", "--merge into the class's outputs", f"{regrade_s:.0f}",
              "only that row changed" if merge_ok else "WRONG"],
             ["two runs at once", "two halves, --jobs 1 each", f"{together_s:.0f}",
              "same scores as one run" if not differ else f"{len(differ)} differ"]])
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        write_section("class-term", f"## A term at class scale\n\n`python benchmarks/class_term.py --write` "
                      f"({stamp}, {machine()}):\n\n{table}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
