"""Lesson 7 on a GPU as on a laptop (issue #24, item 2): the kernel exercises' device, their stubs, and the compile
path for a real GPU – tested here without one.

* :func:`stn_course.checks.kernels.kernel_device` with a faked CUDA (``torch.cuda.is_available`` and the
  interpreter flag patched; the tensors' ``.to`` faked): the check cases go to CUDA exactly when the kernels would be
  compiled for it;
* the fresh lesson's kernel cells (``lessons/07_gpu_path.ipynb``) turn the stubs into
  :class:`~stn_course.checks.kernels.KernelStub` – no ``raise`` reaches Triton's compiler – and ``check()`` says
  "not implemented yet";
* ahead of time, for sm_80 (A100), in a process without ``TRITON_INTERPRET``: the stub cells run, and the solution's
  kernels compile with the ptxas bundled in the triton wheel (``../shared/notes/triton-aot.md``).
"""
from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from stn_course.checks import MISSING, get, run_check
from stn_course.checks.kernels import KernelStub, is_stub, jit_exercise, kernel_device, on_kernel_device

ROOT = Path(__file__).resolve().parents[1]
KERNEL_CHECKS = ("07.fused_affine_sample", "07.affine_input_gradient")
KERNEL_CELLS = ("def affine_sample_kernel", "def backward_kernel")  # each cell also holds its launcher


def kernel_cells(notebook: str) -> list[str]:
    """The sources of lesson 7's kernel cells in ``notebook`` (``lessons/…`` or ``solutions/…``), in order."""
    cells = json.loads((ROOT / notebook / "07_gpu_path.ipynb").read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return [next(s for s in sources if marker in s) for marker in KERNEL_CELLS]


def run_cells(sources: list[str]) -> dict:
    """Run cells as a notebook would (their source in ``linecache``, where ``inspect.getsource`` – and Triton –
    read it), in a namespace with what the lesson's setup cell imports."""
    import triton
    import triton.language as tl

    from stn_course import gpu

    namespace = {"__name__": "__main__", "torch": torch, "gpu": gpu, "triton": triton, "tl": tl,
                 "jit_exercise": jit_exercise}
    for k, source in enumerate(sources):
        filename = f"<lesson 7 cell {k}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 – the course's own notebook
    return namespace


# -- the device ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cuda, interpret, expected", [(True, None, "cuda"), (True, "1", "cpu"), (False, None, "cpu"),
                                                       (False, "1", "cpu"), (True, "0", "cuda")])
def test_the_kernel_device_is_cuda_exactly_when_kernels_compile_for_a_gpu(monkeypatch, cuda, interpret, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    if interpret is None:
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    else:
        monkeypatch.setenv("TRITON_INTERPRET", interpret)
    assert kernel_device() == torch.device(expected)


@pytest.mark.parametrize("check_id", KERNEL_CHECKS)
@pytest.mark.parametrize("hidden", [False, True])
def test_with_a_gpu_every_kernel_case_moves_its_tensors_to_cuda(monkeypatch, check_id, hidden):
    """A faked GPU: ``is_available`` true, the interpreter off, ``Tensor.to`` recording where each tensor is sent
    (and staying on the CPU). Every tensor argument of every case goes to ``cuda``; the other arguments stay."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    sent: list[tuple[int, torch.device]] = []
    real_to = torch.Tensor.to

    def fake_to(self, *args, **kwargs):
        if args and isinstance(args[0], (torch.device, str)):  # a move: recorded, not made (no GPU here)
            sent.append((id(self), torch.device(args[0])))
            return self
        return real_to(self, *args, **kwargs)  # a dtype conversion while the case is built

    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    check = get(check_id)
    cases = list((check.hidden_cases if hidden else check.cases)(np.random.default_rng(0)))
    monkeypatch.undo()  # fake_to off again: what pytest does next must not go through it
    tensors = [a for case in cases for a in case.args if isinstance(a, torch.Tensor)]
    per_case = {"07.fused_affine_sample": 2, "07.affine_input_gradient": 3}[check_id]  # grad_output, input, θ
    assert len(tensors) == per_case * len(cases) and {id(t) for t in tensors} <= {i for i, _ in sent}
    assert {device for _, device in sent} == {torch.device("cuda")}
    assert all(isinstance(case.args[-1], (tuple, bool)) for case in cases)  # sizes, flags: left alone


def test_on_the_interpreter_the_cases_stay_on_the_cpu(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    for check_id in KERNEL_CHECKS:
        for case in get(check_id).cases(np.random.default_rng(0)):
            assert all(a.device.type == "cpu" for a in case.args if isinstance(a, torch.Tensor))
    moved = on_kernel_device(get(KERNEL_CHECKS[0]).cases(np.random.default_rng(0)).__next__())
    assert moved.within is not None  # the case keeps its memory guard


# -- the stub -----------------------------------------------------------------------------------------------------


def test_a_stub_is_recognised_from_its_body_only():
    def stub(x, BLOCK):
        """docstring"""
        # YOUR CODE HERE
        raise NotImplementedError

    def stub_with_call(x):
        raise NotImplementedError()

    def written(x):
        if x:
            raise NotImplementedError
        return x

    def other_error(x):
        raise ValueError

    assert is_stub(stub) and is_stub(stub_with_call)
    assert not is_stub(written) and not is_stub(other_error)
    assert isinstance(jit_exercise(stub), KernelStub)
    with pytest.raises(NotImplementedError, match="not written yet"):
        jit_exercise(stub)[(1,)](torch.zeros(1), BLOCK=4)


@pytest.mark.triton
def test_the_fresh_lesson_s_kernel_stubs_report_not_implemented_before_any_launch():
    namespace = run_cells(kernel_cells("lessons"))
    launchers = {"07.fused_affine_sample": namespace["fused_affine_sample"],
                 "07.affine_input_gradient": namespace["affine_input_gradient"]}
    for name in ("affine_sample_kernel", "backward_kernel"):
        assert isinstance(namespace[name], KernelStub)
    for check_id, launcher in launchers.items():
        result = run_check(get(check_id), launcher, 0)
        assert [r.status for r in result.results] == [MISSING], check_id
        assert "not implemented yet" in result.results[0].message


@pytest.mark.triton
def test_the_solution_s_kernel_cells_pass_their_checks_on_the_kernel_device():
    namespace = run_cells(kernel_cells("solutions"))
    assert not isinstance(namespace["affine_sample_kernel"], KernelStub)
    assert run_check(get("07.fused_affine_sample"), namespace["fused_affine_sample"], 0).passed
    assert run_check(get("07.affine_input_gradient"), namespace["affine_input_gradient"], 0).passed


# -- the compile path, ahead of time for an A100 (sm_80), in a process without the interpreter --------------------

AOT_SCRIPT = textwrap.dedent("""
    import json, os, sys
    assert "TRITON_INTERPRET" not in os.environ
    sys.path.insert(0, {tests!r})
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from stn_course.checks.kernels import KernelStub
    from test_gpu_lesson7 import kernel_cells, run_cells

    stubs = run_cells(kernel_cells("lessons"))
    assert isinstance(stubs["affine_sample_kernel"], KernelStub), "the stub reached triton.jit"
    assert isinstance(stubs["backward_kernel"], KernelStub), "the stub reached triton.jit"
    solution = run_cells(kernel_cells("solutions"))
    pointers = dict(fp32="*fp32", fp64="*fp64")
    report = {{}}
    for name, first, constants in (("affine_sample_kernel", ("inp", "theta", "out"), {{"BLOCK": 256}}),
                                   ("backward_kernel", ("grad_out", "inp", "theta", "grad_in", "partial"),
                                    {{"ALIGN": True, "BLOCK": 256}})):
        for dtype in ("fp32", "fp64"):
            signature = {{a: pointers[dtype] for a in first}}
            signature.update({{a: "i32" for a in ("C", "H", "W", "H_out", "W_out")}})
            signature.update({{a: "constexpr" for a in constants}})
            compiled = triton.compile(ASTSource(fn=solution[name], signature=signature, constexprs=constants),
                                      target=GPUTarget("cuda", 80, 32))
            report[name + "/" + dtype] = [len(compiled.asm["ptx"]), len(compiled.asm["cubin"])]
    print(json.dumps(report))
""")


@pytest.mark.triton
def test_the_fresh_lesson_runs_and_the_solution_kernels_compile_for_sm_80(tmp_path):
    """~20 s here (four compiles). The student's stubs never reach the compiler; the solution's kernels – the
    forward and the atomic backward, float32 and float64 – compile to PTX and a cubin for an A100."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(PYTHONPATH=str(ROOT), TRITON_CACHE_DIR=str(tmp_path / "triton-cache"))
    done = subprocess.run([sys.executable, "-c", AOT_SCRIPT.format(tests=str(ROOT / "tests"))], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == {f"{k}/{d}" for k in ("affine_sample_kernel", "backward_kernel") for d in ("fp32", "fp64")}
    assert all(ptx > 1000 and cubin > 1000 for ptx, cubin in report.values())


def test_the_lesson_s_import_of_jit_exercise_is_not_flagged_for_review_and_other_checks_imports_are():
    from stn_course.grading.review import review

    allowed = "from stn_course.checks.kernels import jit_exercise  # @triton.jit for an exercise"
    assert review([(2, allowed)]) == []
    for reaching in ("from stn_course.checks.kernels import jit_exercise, kernel_device",
                     "from stn_course.checks.kernels import KernelStub", "import stn_course.checks.kernels",
                     "from stn_course.checks.registry import get"):
        assert [f.rule for f in review([(2, reaching)])] == ["grader and checks modules"], reaching
