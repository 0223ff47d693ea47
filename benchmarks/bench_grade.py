"""How fast does `stn-course grade` grade a class? 100 submissions of lessons 1–4 – solutions and the mutation
suite's planted bugs, mixed – graded with ``--jobs 2`` in the sandbox.

It reports the seconds per submission and splits them: the time inside the learner's cells and functions (executing
the notebook, as the child timed it) and the rest – the grader's own overhead (starting each submission's process,
case generation, the references, comparing, the protocol). Starting the workers (each imports torch once) is
reported apart: it is paid once per run, not per submission. It also checks the verdicts: every solution full
marks, every mutant below full marks on its exercise.

    python benchmarks/bench_grade.py [--submissions 100] [--jobs 2] [--write]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, markdown_table, write_section  # noqa: E402
from stn_course import course  # noqa: E402
from stn_course.grading.grader import Grader  # noqa: E402
from stn_course.grading.sandbox import Limits  # noqa: E402
from stn_course.grading.submissions import discover  # noqa: E402
from tests.grading.helpers import patched, solution, write_submission  # noqa: E402
from tests.grading.test_mutations import MUTANTS  # noqa: E402

LESSONS = tuple(course.numbers()[:4])  # the workload the published numbers use: a class handing in lessons 1–4


def build(folder: Path, count: int) -> dict[str, str | None]:
    """``count`` submissions in ``folder`` (a folder per student): every other one a mutant. -> student: target"""
    mutants = [m for m in MUTANTS if m.target[:2] in LESSONS]
    expected: dict[str, str | None] = {}
    for i in range(count):
        lesson = LESSONS[i % len(LESSONS)]
        name, nb = solution(lesson)
        student = f"student{i:03d}"
        if i % 2:
            candidates = [m for m in mutants if m.target[:2] == lesson]
            mutant = candidates[(i // 2) % len(candidates)]
            nb = patched(nb, mutant.find, mutant.replace)
            expected[student] = mutant.target
        else:
            expected[student] = None
        write_submission(folder, student, name, nb)
    return expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="store the table in benchmarks/README.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        expected = build(Path(tmp), args.submissions)
        grader = Grader("benchmark-seed", Limits(timeout_s=60), jobs=args.jobs)
        start = time.perf_counter()
        results = grader.grade(discover([Path(tmp)]))
        wall = time.perf_counter() - start
    wrong = []
    for r in results:
        target = expected[r.student]
        if target is None and r.score != r.max_score:
            wrong.append(f"{r.student}: solution scored {r.score}/{r.max_score}")
        if target is not None and next(e for e in r.exercises if e.id == target).score >= 1e-9 + \
                next(e for e in r.exercises if e.id == target).max_score:
            wrong.append(f"{r.student}: mutant kept its points on {target}")
    rows = []
    for lesson in (*LESSONS, "all"):
        chosen = [r for r in results if lesson == "all" or r.lesson == lesson]
        seconds = [r.seconds for r in chosen]
        execution = [r.execution_seconds for r in chosen]
        overhead = [r.seconds - r.execution_seconds for r in chosen]
        rows.append([lesson, len(chosen), f"{statistics.mean(seconds):.2f}", f"{statistics.mean(execution):.2f}",
                     f"**{statistics.mean(overhead):.2f}**", f"{max(overhead):.2f}"])
    mean_overhead = statistics.mean(r.seconds - r.execution_seconds for r in results)
    table = markdown_table(["lesson", "submissions", "s per submission", "executing the notebook s",
                            "grader overhead s (mean)", "overhead s (max)"], rows)
    body = f"""## Grading a class: `stn-course grade` (lessons 1–4)

Command: `python benchmarks/bench_grade.py --submissions {args.submissions} --jobs {args.jobs} --write`
Machine: {machine()}; {grader.sandbox_text}; run at {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.

{args.submissions} submissions (a folder per student), every other one a planted bug of the mutation suite
(`tests/grading/test_mutations.py`), graded with `--jobs {args.jobs}`. *Executing the notebook* is the time spent
inside the learner's cells and functions, as the sandboxed child timed it; the *grader overhead* is everything else
of a submission's wall time (its process, the cases, the references, the comparisons, the protocol). Long
experiments are tagged `skip-when-grading` and not run.

{table}

Wall time for all {args.submissions}: {wall:.1f} s, i.e. **{wall / args.submissions:.2f} s per submission** with
{args.jobs} jobs; starting the {args.jobs} workers (each imports torch once): {grader.startup_seconds:.1f} s.
Mean grader overhead {mean_overhead:.2f} s per submission (target ≤ 1 s): {"met" if mean_overhead <= 1 else "NOT met"}.
Verdicts: {"all solutions full marks, every mutant lost points on its exercise" if not wrong else "; ".join(wrong)}.
"""
    print(body)
    if args.write:
        write_section("grade", body)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
