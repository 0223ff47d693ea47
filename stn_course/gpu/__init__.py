"""The GPU path (lesson 7): Triton kernels for the affine spatial transformer and for deformable sampling.

* :mod:`~stn_course.gpu.affine` – :func:`affine_sample`: from ``theta (N, 2, 3)`` and the input straight to the
  output, forward and backward, never materialising the sampling grid; the input gradient with atomics or, with
  ``deterministic=True``, by sorted segments (bit-identical from run to run); ``theta``'s gradient from per-pixel
  partials reduced in the kernel.
* :mod:`~stn_course.gpu.deform` – :func:`deform_conv2d`: the bilinear im2col of deformable convolution (v1 and v2)
  and its backward, then GEMMs; ``stn_course.deform.deform_conv2d(impl="triton")`` runs it.
* :mod:`~stn_course.gpu.traffic` (the bytes a pass moves), :mod:`~stn_course.gpu.indexing` (a program's tile and
  the kernel's index arithmetic, in PyTorch) and :mod:`~stn_course.gpu.measure` (a synchronised, interleaved timer
  and the copy bandwidth): what lesson 7 teaches around the kernels. They need no Triton.
* :mod:`~stn_course.gpu.launches` (each kernel's launch contract: dtypes, pointer arguments, constants – every
  launch checked against it) and :mod:`~stn_course.gpu.aot` (every launched variant compiled ahead of time for
  named GPUs – sm_75, sm_80, sm_90 – with the ptxas in the triton wheel; registers and spills).
* :mod:`~stn_course.gpu.bounds` – :func:`~stn_course.gpu.bounds.checked_memory`: under the interpreter, every load
  and store of a kernel checked against the launch's tensors (lesson 7's check: a store without ``mask=`` fails
  with a message instead of corrupting the process).

The kernels run on CUDA tensors, or – for the tests and lesson 7 on a machine without a GPU – on CPU tensors
through Triton's interpreter (``TRITON_INTERPRET=1`` set before ``triton`` is first imported; slow, so small sizes
only). :func:`check_triton` says why a call cannot run (no ``triton`` package, a CPU tensor without the
interpreter) instead of failing somewhere inside Triton; the ``impl="auto"`` of the modules picks Triton only where
it can run and falls back to the operation's fastest other path otherwise (the rule: :mod:`stn_course.impls`).
"""
from __future__ import annotations

import importlib.util
import os

import torch

__all__ = ["triton_available", "interpreter", "check_triton", "can_run", "auto_uses_triton", "block_size",
           "INSTALL_HINT"]

INSTALL_HINT = "pip install 'stn-course[gpu]' (triton==3.7.1, the release torch 2.13 pairs with)"


def triton_available() -> bool:
    """Whether the ``triton`` package is installed (it is not imported here)."""
    return importlib.util.find_spec("triton") is not None


def interpreter() -> bool:
    """Whether Triton's interpreter is switched on (``TRITON_INTERPRET=1``): kernels then run on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def block_size(device: torch.device, override: int | None = None) -> int:
    """Elements per program: ``override`` when given (a power of two), else 256 on CUDA – enough programs to fill
    the GPU, few enough registers each – and 1024 under the interpreter, whose cost is per program (it runs them one
    after another through NumPy)."""
    if override is not None:
        if override < 1 or override & (override - 1):
            raise ValueError(f"block: expected a power of two, got {override}")
        return override
    return 256 if device.type == "cuda" else 1024


def can_run(*tensors: torch.Tensor) -> bool:
    """True when the Triton kernels can run on these tensors: triton installed, and CUDA tensors (or the
    interpreter with CPU tensors)."""
    try:
        check_triton(*tensors)
    except (RuntimeError, ValueError):
        return False
    return True


def auto_uses_triton(*tensors: torch.Tensor) -> bool:
    """What ``impl="auto"`` decides: the Triton kernels for CUDA tensors of a dtype they take – float64, float32,
    and float16/bfloat16 (what autocast hands them; computed in float32) – when they can run there, the ATen/fast
    path otherwise (the interpreter is never chosen: it checks kernels, it is not a speed)."""
    from .launches import DTYPES

    first = tensors[0]
    return first.is_cuda and first.dtype in DTYPES and can_run(*tensors)


def check_triton(*tensors: torch.Tensor, what: str = "impl='triton'") -> None:
    """Raise a clear error when the Triton kernels cannot run on ``tensors``."""
    if not triton_available():
        raise RuntimeError(f"{what} needs the triton package, which is not installed: {INSTALL_HINT}")
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"{what}: all tensors must be on one device, got {sorted(str(d) for d in devices)}")
    device = next(iter(devices))
    if device.type == "cuda":
        return
    if device.type == "cpu" and interpreter():
        return
    if device.type == "cpu":
        raise RuntimeError(f"{what} runs on CUDA tensors; these are on the CPU (set TRITON_INTERPRET=1 before "
                           "importing triton to run the kernels on the CPU through Triton's interpreter – slowly)")
    raise RuntimeError(f"{what} runs on CUDA tensors, got {device}")
