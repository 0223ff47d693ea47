"""The lessons' prose says only what backs it.

Each lesson's header lists its claims (``claims:`` in ``solutions/src/NN_slug.py``, read by
:mod:`stn_course.course`). The lint here finds each measurement-looking number in a lesson's markdown – after "≈",
"about" or "~", or before "×" or "%" – and requires a claim whose ``text`` holds it; each claim is backed by one of:

* ``holds`` – an expression evaluated in the namespace of the executed solution notebook (``test_notebooks.py``
  appends it as a last cell) that must be true;
* ``benchmark`` – an expression over ``readme``, the text of ``benchmarks/README.md``, that must be true (here);
* ``why`` – the number is not a measurement but a choice made in the code or a quoted fact, said with why.

A new number in the prose without a claim fails the lint; a claim the run stops backing fails the notebook test.
Tables written by a benchmark script (between ``<!-- BEGIN name -->`` and ``<!-- END name -->``) are tested against
the benchmark's own output in ``tests/test_benchmarks.py`` and skipped here.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

from stn_course import course

# a number after ≈ / about / ~, or before × / % (not a size like 28×28)
MEASUREMENT = re.compile(r"(?:≈|~|\babout)\s*-?\d[\d.,]*|\d[\d.,]*\s*(?:×|%)(?![\d×])")
BENCHMARKS_README = Path(__file__).resolve().parents[2] / "benchmarks" / "README.md"
LESSONS = course.lessons()


def train_quality_ratio(readme: str, kind: str) -> float:
    """The ST-CNN / CNN error ratio of distortion ``kind`` in the README's ``train_quality`` table."""
    section = readme.split("<!-- BEGIN train_quality -->")[1].split("<!-- END train_quality -->")[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| {kind} |"))
    return float(re.search(r"\*\*([\d.]+)\*\*", row).group(1))


def _prose(source: str) -> str:
    """A markdown cell without LaTeX, code spans and benchmark-written tables."""
    source = re.sub(r"<!-- BEGIN (\w+) -->.*?<!-- END \1 -->", "", source, flags=re.S)
    source = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", source, flags=re.S)
    return re.sub(r"`[^`]*`", "", source)


def _markdown(lesson: course.Lesson) -> list[str]:
    nb = jupytext.reads(course.split_front_matter(lesson.source.read_text())[1], fmt="py:percent")
    return [" ".join(_prose(c.source).split()) for c in nb.cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_number_in_the_prose_is_backed(lesson):
    unbacked = []
    for text in _markdown(lesson):
        for match in MEASUREMENT.finditer(text):
            if not any(match.group(0) in claim.text and claim.text in text for claim in lesson.claims):
                unbacked.append(text[max(0, match.start() - 60):match.end() + 30])
    assert not unbacked, f"numbers the prose states without a claim in {lesson.source.name}'s header:\n" + \
        "\n".join(unbacked)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_claim_is_still_in_its_lesson(lesson):
    text = " ".join(_markdown(lesson))
    missing = [claim.text for claim in lesson.claims if claim.text not in text]
    assert not missing, f"claims whose sentence is gone from {lesson.slug} (remove or update them): {missing}"


BENCHMARK_CLAIMS = [(lesson.number, claim) for lesson in LESSONS for claim in lesson.claims if claim.benchmark]


@pytest.mark.parametrize("claim", [c for _, c in BENCHMARK_CLAIMS], ids=lambda claim: claim.text[:40])
def test_claims_quoting_the_benchmarks_hold(claim):
    namespace = {"readme": BENCHMARKS_README.read_text(), "train_quality_ratio": train_quality_ratio}
    assert eval(claim.benchmark, namespace), claim.text  # noqa: S307 - the course's own header, not input


def claims_cell(number: str) -> str:
    """The code cell the notebook test appends to lesson ``number``'s solution: every ``holds`` claim asserted."""
    lines = [f"assert {claim.holds}, {('claim not backed: ' + claim.text)!r}" for claim in course.get(number).claims
             if claim.holds]
    return "\n".join(lines) or "pass"
