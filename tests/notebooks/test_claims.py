"""The lessons' prose says only what backs it: every measurement-looking number in a markdown cell has an entry in
``claims.py`` (checked here, without running anything), and the entries are true – the notebook ones when the
solution runs (``test_notebooks.py``), the benchmark ones against ``benchmarks/README.md`` (here)."""
from __future__ import annotations

import re

import jupytext
import pytest

from .claims import ENTRIES, Benchmark, Claim
from .conftest import ROOT, SOURCES

# a number after ≈ / about / ~, or before × / % (not a size like 28×28)
MEASUREMENT = re.compile(r"(?:≈|~|\babout)\s*-?\d[\d.,]*|\d[\d.,]*\s*(?:×|%)(?![\d×])")


def _prose(source: str) -> str:
    """A markdown cell without LaTeX, code spans and benchmark-written tables."""
    source = re.sub(r"<!-- BEGIN (\w+) -->.*?<!-- END \1 -->", "", source, flags=re.S)
    source = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", source, flags=re.S)
    return re.sub(r"`[^`]*`", "", source)


def _markdown(lesson_source) -> list[str]:
    nb = jupytext.reads(lesson_source.read_text(), fmt="py:percent")
    return [" ".join(_prose(c.source).split()) for c in nb.cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("source", sorted(SOURCES.glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_every_number_in_the_prose_is_backed(source):
    lesson = source.name[:2]
    entries = [e for e in ENTRIES if e.lesson == lesson]
    unbacked = []
    for text in _markdown(source):
        for match in MEASUREMENT.finditer(text):
            if not any(match.group(0) in e.text and e.text in text for e in entries):
                unbacked.append(text[max(0, match.start() - 60):match.end() + 30])
    assert not unbacked, "numbers the prose states without an entry in tests/notebooks/claims.py:\n" + \
        "\n".join(unbacked)


def test_every_entry_is_still_in_its_lesson():
    texts = {source.name[:2]: " ".join(_markdown(source)) for source in SOURCES.glob("[0-9][0-9]_*.py")}
    missing = [(e.lesson, e.text) for e in ENTRIES if e.text not in texts[e.lesson]]
    assert not missing, f"entries whose sentence is gone (remove or update them): {missing}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if isinstance(e, Benchmark)], ids=lambda e: e.text[:40])
def test_claims_quoting_the_benchmarks_hold(entry):
    assert entry.check((ROOT / "benchmarks" / "README.md").read_text()), entry.text


def claims_cell(lesson: str) -> str:
    """The code cell the notebook test appends to lesson ``lesson``'s solution: every Claim asserted."""
    lines = [f"assert {e.expr}, {('claim not backed: ' + e.text)!r}" for e in ENTRIES
             if isinstance(e, Claim) and e.lesson == lesson]
    return "\n".join(lines) or "pass"
