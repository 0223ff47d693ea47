"""What the GPU path's kernels are launched with, declared once (lesson 7): the dtypes they take, each kernel's
pointer arguments and the dtype each points to, and a launcher that checks every launch against the declaration.

:mod:`stn_course.gpu.affine` and :mod:`stn_course.gpu.deform` launch their kernels through :func:`launch` with a
:class:`KernelSpec` and the list of constant sets the module can launch on the device
(``launch_constants(device)`` there); :mod:`stn_course.gpu.aot` compiles the same declarations ahead of time for
real GPUs. A launch whose tensors or constants stray from the declaration is an error – in the tests, which run
every launch under Triton's interpreter – so the compiled list cannot drift from what runs.

Half precision: float16 and bfloat16 inputs are read in their own dtype and computed in float32
(:func:`compute_dtype`: coordinates, weights, sums, the θ partials and the scattered input gradient); float32 and
float64 compute in their own dtype. Needs no Triton.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch

__all__ = ["DTYPES", "HALF", "DATA", "COMPUTE", "INDEX", "KernelSpec", "compute_dtype", "check_dtype", "launch",
           "triton_type", "LANE_INDEX_LIMIT", "check_index_range", "GRID_LIMITS", "check_grid"]

#: The dtypes the Triton kernels take, widest first.
DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
#: The half-precision ones: read as stored, computed in float32.
HALF = (torch.float16, torch.bfloat16)

# What a pointer argument points to, as a function of the input's dtype:
DATA = "data"  # the input's dtype (images, outputs, upstream gradients)
COMPUTE = "compute"  # compute_dtype(input): θ, the base grid, weights, partial sums, float32 accumulators
INDEX = "index"  # int64 (sort keys and orders, segment starts)

_TRITON_TYPES = {torch.float64: "fp64", torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16",
                 torch.int64: "i64", torch.int32: "i32"}


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a kernel computes in for inputs of ``dtype``: float32 for float16/bfloat16, else ``dtype``."""
    return torch.float32 if dtype in HALF else dtype


def triton_type(dtype: torch.dtype) -> str:
    """Triton's name of ``dtype`` in a signature: ``torch.bfloat16 -> "bf16"``."""
    return _TRITON_TYPES[dtype]


def check_dtype(t: torch.Tensor, name: str = "input") -> None:
    """``TypeError`` naming the dtypes the Triton kernels take unless ``t`` has one of them."""
    if t.dtype not in DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in DTYPES)
        raise TypeError(f"{name}: the Triton kernels take {names}, got {t.dtype}")


#: The largest per-lane offset the kernels compute in int32: 2³¹ − 1. Offsets across the batch are 64-bit (a
#: per-program base: the kernels modules' docstrings); the offsets *within* one plane stay 32-bit, so that every
#: address of the gathers is a 32-bit lane offset plus a pointer – and one plane must fit that.
LANE_INDEX_LIMIT = 2**31 - 1


def check_index_range(kernel: str, **extents: int) -> None:
    """``ValueError`` unless every per-lane extent of a launch of ``kernel`` – ``name=elements``, e.g.
    ``input_plane=H·W`` – stays within :data:`LANE_INDEX_LIMIT` (the lanes of one plane are indexed in int32)."""
    for name, elements in extents.items():
        if elements > LANE_INDEX_LIMIT:
            raise ValueError(
                f"{kernel}: {name.replace('_', ' ')} spans {elements:,} elements; the Triton kernels index within "
                f"one (sample, channel) plane with 32-bit integers, at most 2**31 - 1 = {LANE_INDEX_LIMIT:,} "
                f"(any batch size and channel count is fine: split the image, or use another impl=)")


#: CUDA's caps on a launch grid's x, y and z dimensions (programs along each axis): 2³¹ − 1 and 65,535 twice
#: (CUDA C++ Programming Guide, "Compute capabilities", the same for every architecture since sm_30). Triton's
#: interpreter runs the programs in loops and has no such cap.
GRID_LIMITS = (2**31 - 1, 65535, 65535)


def check_grid(kernel: str, grid: Sequence[int], device: torch.device) -> None:
    """``ValueError`` naming ``kernel``, the axis, its size and the cap if a launch of ``grid`` on a CUDA ``device``
    exceeds :data:`GRID_LIMITS` – where CUDA itself answers only "invalid argument". Other devices (the
    interpreter's CPU tensors) are not checked."""
    if device.type != "cuda":
        return
    for axis, (size, limit) in enumerate(zip(grid, GRID_LIMITS)):
        if size > limit:
            raise ValueError(
                f"{kernel}: launch grid {tuple(grid)} has {size:,} programs along axis {axis} ({'xyz'[axis]}); "
                f"CUDA allows at most {limit:,} there (the output is too large for one launch of this kernel: "
                "split the batch or the image, or use another impl=)")


@dataclass(frozen=True)
class KernelSpec:
    """One kernel's launch contract: its name in the kernels module and what each pointer argument points to
    (:data:`DATA`, :data:`COMPUTE` or :data:`INDEX`); every other argument is a 32-bit integer, or a compile-time
    constant where the launch passes it by keyword."""

    name: str
    pointers: Mapping[str, str]

    def pointer_dtype(self, argument: str, dtype: torch.dtype) -> torch.dtype:
        """The dtype ``argument`` points to for inputs of ``dtype``."""
        role = self.pointers[argument]
        return {DATA: dtype, COMPUTE: compute_dtype(dtype), INDEX: torch.int64}[role]

    def signature(self, kernel: Any, dtype: torch.dtype, constants: Mapping[str, Any]) -> dict[str, str]:
        """Triton's signature of ``kernel`` launched for inputs of ``dtype``: ``{"inp": "*bf16", "C": "i32",
        "BLOCK": "constexpr", ...}`` (every argument, in order)."""
        return {name: "constexpr" if name in constants
                else "*" + triton_type(self.pointer_dtype(name, dtype)) if name in self.pointers else "i32"
                for name in argument_names(kernel)}


def argument_names(kernel: Any) -> list[str]:
    """A ``@triton.jit`` kernel's argument names (compiled or interpreted)."""
    return list(inspect.signature(kernel.fn).parameters)


def launch(kernels: Any, spec: KernelSpec, grid: Sequence[int], dtype: torch.dtype, args: Sequence[Any],
           constants: dict[str, Any], allowed: Callable[[torch.device], Mapping[str, list[dict]]]) -> None:
    """``kernels.<spec.name>[grid](*args, **constants)`` for inputs of ``dtype``, after checking the launch against
    its declaration: every pointer argument a tensor of the declared dtype, and the constants one of the sets
    ``allowed(device)[spec.name]`` – what :mod:`stn_course.gpu.aot` compiles. A mismatch is a bug in the launch
    code: ``AssertionError``. A grid past CUDA's caps on a CUDA device: ``ValueError`` (:func:`check_grid`)."""
    kernel = getattr(kernels, spec.name)
    names = [name for name in argument_names(kernel) if name not in constants]
    bound = dict(zip(names, args, strict=True))
    for name in spec.pointers:
        want = spec.pointer_dtype(name, dtype)
        if bound[name].dtype != want:
            raise AssertionError(f"{spec.name}: argument {name} is {bound[name].dtype}, declared {want} for "
                                 f"{dtype} inputs (stn_course.gpu.launches)")
    device = bound[next(iter(spec.pointers))].device
    if constants not in allowed(device)[spec.name]:
        raise AssertionError(f"{spec.name}: constants {constants} are not among the declared launches on "
                             f"{device} (launch_constants)")
    check_grid(f"{getattr(kernels, '__name__', 'kernels').rsplit('.', 1)[-1]}.{spec.name}", grid, device)
    kernel[tuple(grid)](*args, **constants)
