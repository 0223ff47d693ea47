"""Shared benchmark helpers: a fair timer and a writer for the sections of benchmarks/README.md.

Every benchmark measures the things it compares side by side in the same run (interleaved repeats, median) and
prints a table of ratios; ``--write`` stores the table in its own section of ``benchmarks/README.md`` between
``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers, together with the command and the machine.
"""
from __future__ import annotations

import platform
import re
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

README = Path(__file__).with_name("README.md")


def time_many(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2, min_time: float = 0.05) -> dict[str, float]:
    """Median seconds per call of each function, measured interleaved so drift hits all of them alike."""
    calls = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < min_time or n == 0:
            fn()
            n += 1
        calls[name] = n
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(s) for name, s in samples.items()}


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
