"""Shared benchmark helpers: a fair timer and a writer for the sections of benchmarks/README.md.

Every benchmark measures the things it compares side by side in the same run (interleaved repeats, median) and
prints a table of ratios; ``--write`` stores the table in its own section of ``benchmarks/README.md`` between
``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers, together with the command and the machine.
"""
from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Callable

import torch

from stn_course.gpu import measure

README = Path(__file__).with_name("README.md")


def time_many(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2, min_time: float = 0.05,
              device: torch.device | str | None = None) -> dict[str, float]:
    """Median seconds per call of each function, measured interleaved (:func:`stn_course.gpu.measure.time_many`,
    which lesson 7 teaches; on CUDA it synchronises before reading the clock)."""
    return measure.time_many(fns, repeats=repeats, warmup=warmup, min_time=min_time, device=device)


def machine() -> str:
    """One line describing where the numbers were taken."""
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of benchmarks/README.md with ``body``."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"<!-- BEGIN {name} -->\n{body.strip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)
