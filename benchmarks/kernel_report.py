"""Registers, spills and shared memory of every Triton kernel variant, compiled for T4, A100 and H100 (issue 24).

    python benchmarks/kernel_report.py            # compile every variant for sm_75, sm_80, sm_90 and print the table
    python benchmarks/kernel_report.py --write    # ... and store it in benchmarks/README.md (section "kernels")

Ahead of time, without a GPU: ``python -m stn_course.gpu.aot --all`` (``triton.compile`` for each target, the
triton wheel's ptxas ``-v`` for the figures) in a subprocess with ``TRITON_INTERPRET`` unset. Every variant the
package launches (stn_course.gpu.aot.launched_variants) and lesson 7's solution kernels, on every target – the
test (tests/test_kernels_compile.py) compiles a spread of them; this compiles all. Exit status 1 when a compile
fails or a float32/float16/bfloat16 kernel spills.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {75: "T4", 80: "A100", 90: "H100"}  # stn_course.gpu.aot.TARGETS (not imported: this process stays light)


def compile_everything(jobs: int) -> tuple[list[dict], int, str]:
    """Every variant on every target: the rows, the exit status, the compiler's summary (compiles, wall, CPU)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        env.setdefault("TRITON_CACHE_DIR", str(Path(folder) / "triton-cache"))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        out = Path(folder) / "rows.json"
        done = subprocess.run([sys.executable, "-m", "stn_course.gpu.aot", "--all", "--jobs", str(jobs), "--json",
                               str(out)], env=env, cwd=ROOT, capture_output=True, text=True)
        sys.stderr.write(done.stderr)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)"
        print(summary)
        rows = json.loads(out.read_text()) if out.exists() else []
    return rows, done.returncode, summary


def _cell(row: dict) -> str:
    if row["error"]:
        return "**does not compile**"
    spill = row["spill_stores"] + row["spill_loads"]
    text = f"{row['registers']} · {spill} · {row['shared']}"
    return f"**{text}**" if spill else text


def table(rows: list[dict]) -> str:
    """One line per variant: its kernel, dtypes, constants, and per target registers · spill bytes · shared bytes."""
    by_key: dict[str, dict] = {}
    for row in rows:
        entry = by_key.setdefault(row["key"], {"row": row, "cells": {}})
        entry["cells"][row["cc"]] = _cell(row)
    lines = []
    for entry in by_key.values():
        row = entry["row"]
        lines.append([f"{row['module']}.{row['kernel']}", ", ".join(row["dtypes"]), row["constants"].replace(
            "EMULATE_FMA=False, ", "").replace(", BLOCK=256", "").replace("BLOCK=256", "") or "–",
            *(entry["cells"].get(cc, "") for cc in TARGETS)])
    header = ["kernel", "input dtypes", "constants", *(f"sm_{cc} ({name})" for cc, name in TARGETS.items())]
    return markdown_table(header, lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="store the table in benchmarks/README.md")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    rows, status, summary = compile_everything(args.jobs)
    text = table(rows)
    print(text)
    spills = [r for r in rows if r["spill_stores"] + r["spill_loads"] > 0]
    if args.write and rows:
        import triton

        date = datetime.date.today().isoformat()
        body = (
            "## Triton kernels compiled for real GPUs: registers, spills, shared memory "
            "(`benchmarks/kernel_report.py`)\n\n"
            f"Compiled {date} ahead of time on a machine without a GPU (triton {triton.__version__}, the ptxas in its "
            f"wheel; {summary}, {args.jobs} at a time on {os.cpu_count()} shared cores): every kernel variant the "
            "package launches on CUDA (`stn_course.gpu.aot.launched_variants`; BLOCK 256 – the backward 128 – and "
            "hardware FMA) and lesson 7's "
            "solution kernels. Each cell: **registers · spill bytes (stores + loads) · shared memory bytes**, from "
            "`ptxas -v` and Triton's metadata. float16/bfloat16 inputs compute in float32 (the θ, grid and gradient "
            "buffers are float32: one compile serves all three where the kernel never touches the input). "
            f"{len(spills)} compile(s) spill" + (" (float64 only: reported, not failed)" if spills and all(
                'float64' in r['dtypes'] for r in spills) else "") + ". A spill in a float32/half kernel, or a "
            "compile error, fails `tests/test_kernels_compile.py` (CI, background step).\n\n"
            + text + "\n\nReproduce: `python benchmarks/kernel_report.py --write`")
        write_section("kernels", body)
    return status


if __name__ == "__main__":
    sys.exit(main())
