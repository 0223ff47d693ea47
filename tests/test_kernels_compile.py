"""Every Triton kernel the package launches, and lesson 7's solution kernels, compiled ahead of time for real GPUs –
sm_75 (T4), sm_80 (A100), sm_90 (H100) – with the ptxas in the triton wheel, on a machine without a GPU (issue 24,
item 1; stn_course.gpu.aot). Every kernel in every dtype it takes on each target, every variant (padding mode,
convention, input gradient, modulation) on at least one; a compile error or a register spill in a
float32/float16/bfloat16 kernel fails.

The compiles cost minutes of CPU (``-m gpu_compile``): CI runs this module in a background step beside the main
run (``.ci/run``), which deselects it. They run in a subprocess, with ``TRITON_INTERPRET`` unset – this process
has the interpreter on (tests/conftest.py), which replaces ``triton.jit`` – and one ``TRITON_CACHE_DIR`` per run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gpu_compile, pytest.mark.triton]

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (75, 80, 90)


def _run(code_or_module: list[str], tmp: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(tmp / "triton-cache"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *code_or_module], env=env, cwd=ROOT, capture_output=True, text=True,
                          **kwargs)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """CI's spread compiled once: the rows, the variants' keys and groups, the process's output."""
    tmp = tmp_path_factory.mktemp("aot")
    done = _run(["-m", "stn_course.gpu.aot", "--json", str(tmp / "rows.json"), "--jobs", str(os.cpu_count() or 1)],
                tmp, timeout=1500)
    listing = _run(["-c", "import json; from stn_course.gpu import aot\n"
                    "print(json.dumps([[v.key, v.module, v.name, v.dtype] for v in aot.all_variants()]))"], tmp)
    assert listing.returncode == 0, listing.stderr
    rows = json.loads((tmp / "rows.json").read_text()) if (tmp / "rows.json").exists() else []
    return {"done": done, "rows": rows, "variants": json.loads(listing.stdout)}


def test_every_compile_succeeds_without_spills(compiled):
    done = compiled["done"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert all(not row["error"] and row["registers"] > 0 for row in compiled["rows"])
    single = [row for row in compiled["rows"] if row["half_or_single"]]
    assert single and all(row["spill_stores"] == row["spill_loads"] == 0 for row in single)


def test_every_kernel_and_dtype_on_every_target_and_every_variant_somewhere(compiled):
    rows, variants = compiled["rows"], compiled["variants"]
    keys = {key for key, *_ in variants}
    assert {row["key"] for row in rows} == keys
    groups = {(module, name, dtype) for _, module, name, dtype in variants}
    on_target = {(row["module"], row["kernel"], row["dtypes"][0], row["cc"]) for row in rows}
    assert on_target == {(*group, cc) for group in groups for cc in TARGETS}
    # what the issue asks for, counted: the package's six kernels in float64, float32, float16 and bfloat16 (the
    # contributions kernel computes in float32 for half inputs: one compile serves them) and lesson 7's kernels
    names = {(module, name) for module, name, _ in groups}
    assert {("affine", k) for k in ("forward", "backward", "contributions", "segments")} <= names
    assert {("deform", "im2col"), ("deform", "col2im"), ("lesson07", "affine_sample_kernel")} <= names
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        assert ("affine", "backward", dtype) in groups and ("deform", "col2im", dtype) in groups
    assert len([v for v in variants if v[1] == "affine" and v[2] == "backward"]) == 4 * 3 * 2 * 2


def test_a_kernel_that_cannot_compile_and_a_spill_are_caught(tmp_path):
    """The failure paths are real: a kernel with ``raise`` (Triton's compiler rejects it; only the interpreter runs
    it) is a row with the error, and ptxas limited to 32 registers makes the float64 backward spill."""
    code = r"""
import json, torch, triton, triton.language as tl
from stn_course.gpu import aot
from stn_course.gpu.launches import DATA, KernelSpec

@triton.jit
def bad(out, N, BLOCK: tl.constexpr):
    raise ValueError("no")

spec = KernelSpec("bad", {"out": DATA})
variant = aot._merged("test", spec, bad, [torch.float32], [{"BLOCK": 128}])[0]
row = aot.compile_variant(variant, 80)
backward = next(v for v in aot.launched_variants() if v.name == "backward" and v.dtype == "float64")
import triton.compiler, triton.backends.compiler as bc
compiled = triton.compile(triton.compiler.ASTSource(fn=backward.kernel, signature=dict(backward.signature),
                                                    constexprs=dict(backward.constants)),
                          target=bc.GPUTarget("cuda", 80, 32))
print(json.dumps({"error": row.error, "problem": row.problem(True),
                  "free": aot.ptxas_usage(compiled.asm["ptx"], 80),
                  "limited": aot.ptxas_usage(compiled.asm["ptx"], 80, max_registers=32)}))
"""
    (tmp_path / "probe.py").write_text(code)  # (Triton reads a kernel's source from its file)
    done = _run([str(tmp_path / "probe.py")], tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Raise" in result["error"] and "does not compile" in result["problem"]
    assert result["free"]["registers"] > 32
    assert result["limited"]["registers"] <= 32
    assert result["limited"]["spill_stores"] > 0 and result["limited"]["spill_loads"] > 0
