"""A fused affine spatial transformer in Triton (lesson 7): ``theta`` and the input in, the sampled output out.

``affine_sample(input, theta, size)`` equals ``F.grid_sample(input, F.affine_grid(theta, size))`` (bilinear, every
padding mode, both ``align_corners``) but never writes the grid: each program takes ``BLOCK`` output pixels of one
image, computes their sampling points from ``theta`` in registers and reads the four neighbours of each point for
every channel. For 1–3 channels the grid (two floats per output pixel) is as large as the image, so not writing
and re-reading it removes a large share of the memory traffic (lesson 7 counts the bytes). The base grid's two
axes (``W_out + H_out`` numbers, :func:`base_axes`) are read rather than recomputed, and the coordinates are
rounded as ATen rounds them: the gradients equal ``F.grid_sample``'s even on the kinks – the identity θ puts every
point on a pixel centre, where the last bit decides which one-sided difference is the gradient.

Backward, per program: the gradient of the input is scattered into the four neighbours with atomic adds – or, with
``deterministic=True``, each input pixel sums its contributions in a fixed order (sorted segments: no atomics,
bit-identical from run to run); ``theta``'s gradient is the per-pixel products reduced in the kernel to one partial
per program, then summed. ``(N, C, H, W), (N, 2, 3) -> (N, C, H_out, W_out)``.

Half precision: float16 and bfloat16 inputs are read as stored and computed in float32 – θ, the base grid, the
coordinates, the bilinear weights and sums, θ's gradient (float32 partials, returned in θ's dtype: float32 for a
float32 θ) and the scattered input gradient (a float32 buffer, rounded to the input's dtype once at the end). Every
output is therefore the float32 result on the same half-precision numbers, rounded once: against
``F.grid_sample`` in float32 on those numbers it is within half a unit in the last place of the output's dtype
(relative 2⁻¹¹ for float16, 2⁻⁸ for bfloat16; the tests allow 1e-3 and 8e-3 relative). ``F.grid_sample`` itself
in half precision (what autocast runs for half inputs) computes the coordinates in half too, so it differs from
both by its own rounding (``tests/gpu/test_half_precision.py`` bounds it). Under autocast, mixed dtypes promote to
the wider, as ``F.grid_sample`` does (a float16 input with a float32 θ gives a float32 output).

Sizes: any batch and channel count (the kernels' plane bases are 64-bit); one input plane ``H·W`` and one output
plane ``H_out·W_out`` (plus a block of lanes) must stay below 2³¹ elements (32-bit lanes; refused, limit named).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .. import padding
from .._validation import check_bool, check_float_tensor, check_pair
from ..grids import linspace_from_neg_one
from . import block_size, check_triton
from .launches import (COMPUTE, DATA, DTYPES, INDEX, KernelSpec, check_dtype, check_index_range, compute_dtype,
                       launch)

__all__ = ["affine_sample", "FusedAffineSample", "BLOCK", "kernel_constants", "base_axes", "unfused_affine_sample",
           "KERNELS", "launch_constants", "SEGMENT_CHANNELS"]

BLOCK: int | None = None  # output pixels per program; None: gpu.block_size's choice (256 on CUDA)
SEGMENT_CHANNELS = 16  # channels per program of the deterministic input gradient (segments' CBLOCK)

_POINTS = {"theta": COMPUTE, "xs": COMPUTE, "ys": COMPUTE}
#: Each kernel's pointer arguments and what they point to (:mod:`stn_course.gpu.launches`).
KERNELS = {spec.name: spec for spec in (
    KernelSpec("forward", {"inp": DATA, **_POINTS, "out": DATA}),
    KernelSpec("backward", {"inp": DATA, **_POINTS, "grad_out": DATA, "grad_inp": COMPUTE, "partial": COMPUTE}),
    KernelSpec("contributions", {**_POINTS, "keys": INDEX, "weights": COMPUTE}),
    KernelSpec("segments", {"order": INDEX, "starts": INDEX, "keys_sorted": INDEX, "weights": COMPUTE,
                            "grad_out": DATA, "grad_inp": DATA}),
)}

_kernels = None


def kernels():
    """The kernels module, imported on first use (so that ``TRITON_INTERPRET`` applies and ``triton`` is optional)."""
    global _kernels
    if _kernels is None:
        from . import _affine_kernels

        _kernels = _affine_kernels
    return _kernels


def kernel_constants(padding_mode: str | padding.PaddingMode, device: torch.device | None = None) -> dict:
    """The compile-time constants that give a kernel its padding mode: ``FOLD``, the mode's kernel code compiled,
    and ``CLAMP`` (see :mod:`stn_course.padding`); and ``EMULATE_FMA``: whether the kernel runs on CPU tensors
    (Triton's interpreter, where NumPy rounds every operation: the fused multiply-add is emulated)."""
    mode = padding.get(padding_mode)
    emulate = device is None or torch.device(device).type == "cpu"
    return {"FOLD": kernels().compiled(mode.kernel_fold), "CLAMP": mode.clamps, "EMULATE_FMA": emulate}


def launch_constants(device: torch.device | str) -> dict[str, list[dict]]:
    """Every set of compile-time constants each kernel here is launched with on ``device`` (every padding mode,
    both conventions, with and without the input gradient): what :func:`_launch` admits and
    :mod:`stn_course.gpu.aot` compiles."""
    device = torch.device(device)
    block = block_size(device, BLOCK)
    sets: dict[str, list[dict]] = {"forward": [], "backward": [], "contributions": [],
                                   "segments": [{"CBLOCK": SEGMENT_CHANNELS}]}
    for mode in padding.PADDING_MODES:
        for align in (False, True):
            base = {**kernel_constants(mode, device), "ALIGN": align, "BLOCK": block}
            sets["forward"].append(base)
            sets["contributions"].append(base)
            sets["backward"] += [{**base, "BLOCK": backward_block(device), "NEED_INPUT": need}
                                 for need in (False, True)]
    return sets


def backward_block(device: torch.device) -> int:
    """Output pixels per program of the backward kernel: half of :func:`stn_course.gpu.block_size`'s 256 on CUDA
    – one pixel per thread of 4 warps – since at 256 its float32 reflection variants spill 4 bytes of registers on
    sm_80 (80 registers) and its float16 one on sm_75 (ptxas; ``tests/test_kernels_compile.py``); the same as the
    forward's elsewhere, or where :data:`BLOCK` is set."""
    block = block_size(device, BLOCK)
    return block // 2 if device.type == "cuda" and BLOCK is None else block


def _launch(name: str, grid, dtype: torch.dtype, *args, **constants) -> None:
    launch(kernels(), KERNELS[name], grid, dtype, args, constants, launch_constants)


def base_axes(out_size: Sequence[int], align_corners: bool, dtype: torch.dtype, device: torch.device):
    """The base grid's two axes ``xs (W_out,)``, ``ys (H_out,)`` – ``F.affine_grid``'s own numbers
    (:func:`stn_course.grids.linspace_from_neg_one`), which the kernels load rather than recompute: a closed form
    rounds differently, and at the identity a last-bit difference moves a point across a pixel centre – to the
    other one-sided gradient (the kinks; ``tests/test_kinks.py``)."""
    h_out, w_out = out_size
    return (linspace_from_neg_one(w_out, align_corners, dtype, device),
            linspace_from_neg_one(h_out, align_corners, dtype, device))


def _grid(n: int, pixels: int, block: int) -> tuple[int, int]:
    return (n, max(1, -(-pixels // block)))


def _deterministic_input_grad(input, theta, grad_out, padding_mode, align_corners) -> torch.Tensor:
    n, c, h, w = input.shape
    h_out, w_out = grad_out.shape[-2:]
    pixels = h_out * w_out
    compute = compute_dtype(input.dtype)
    keys = torch.empty(n * pixels * 4, dtype=torch.int64, device=input.device)
    weights = torch.empty(n * pixels * 4, dtype=compute, device=input.device)
    block = block_size(input.device, BLOCK)
    xs, ys = base_axes((h_out, w_out), align_corners, compute, input.device)
    _launch("contributions", _grid(n, pixels, block), input.dtype, theta, xs, ys, keys, weights, h, w, h_out, w_out,
            **kernel_constants(padding_mode, input.device), ALIGN=align_corners, BLOCK=block)
    sorted_keys, order = torch.sort(keys, stable=True)
    real = sorted_keys < n * h * w
    sorted_keys, order = sorted_keys[real], order[real]
    grad_input = torch.zeros_like(input)
    if sorted_keys.numel() == 0:
        return grad_input
    unique, counts = torch.unique_consecutive(sorted_keys, return_counts=True)
    starts = torch.zeros(len(unique) + 1, dtype=torch.int64, device=input.device)
    starts[1:] = torch.cumsum(counts, 0)
    _launch("segments", (len(unique), -(-c // SEGMENT_CHANNELS)), input.dtype, order, starts, sorted_keys, weights,
            grad_out, grad_input, c, h * w, pixels, CBLOCK=SEGMENT_CHANNELS)
    return grad_input


class FusedAffineSample(torch.autograd.Function):
    """The fused kernels as an ``autograd.Function``: ``apply(input, theta, out_size, padding_mode,
    align_corners, deterministic)``."""

    @staticmethod
    def forward(ctx, input, theta, out_size, padding_mode, align_corners, deterministic):
        compute = compute_dtype(input.dtype)
        input, theta6 = input.contiguous(), theta.reshape(-1, 6).contiguous().to(compute)
        n, c, h, w = input.shape
        h_out, w_out = out_size
        out = torch.empty(n, c, h_out, w_out, dtype=input.dtype, device=input.device)
        block = block_size(input.device, BLOCK)
        xs, ys = base_axes((h_out, w_out), align_corners, compute, input.device)
        if out.numel():
            _launch("forward", _grid(n, h_out * w_out, block), input.dtype, input, theta6, xs, ys, out, c, h, w,
                    h_out, w_out, **kernel_constants(padding_mode, input.device), ALIGN=align_corners, BLOCK=block)
        ctx.save_for_backward(input, theta6)
        ctx.settings = (padding_mode, align_corners, deterministic, theta.dtype)
        return out

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError(
            "forward-mode AD (jvp) is not implemented for the fused Triton kernels (impl='triton'): use "
            "impl='fast' (stn_course.autograd, hand-derived jvp) or impl='aten' for forward-mode gradients")

    @staticmethod
    def backward(ctx, grad_out):
        input, theta6 = ctx.saved_tensors
        padding_mode, align_corners, deterministic, theta_dtype = ctx.settings
        n, c, h, w = input.shape
        h_out, w_out = grad_out.shape[-2:]
        grad_out = grad_out.contiguous()
        need_input = ctx.needs_input_grad[0]
        block = backward_block(input.device)
        grid = _grid(n, h_out * w_out, block)
        compute = compute_dtype(input.dtype)
        scatter = need_input and not deterministic
        grad_input = torch.zeros(input.shape, dtype=compute, device=input.device) if scatter else None
        partial = torch.zeros(n, grid[1], 6, dtype=compute, device=input.device)
        if grad_out.numel():
            xs, ys = base_axes((h_out, w_out), align_corners, compute, input.device)
            _launch("backward", grid, input.dtype, input, theta6, xs, ys, grad_out,
                    grad_input if scatter else partial,  # (not written without NEED_INPUT)
                    partial, c, h, w, h_out, w_out, grid[1], **kernel_constants(padding_mode, input.device),
                    ALIGN=align_corners, BLOCK=block, NEED_INPUT=scatter)
        if scatter:
            grad_input = grad_input.to(input.dtype)  # float32 sums of a half input, rounded once
        if need_input and deterministic:
            grad_input = _deterministic_input_grad(input, theta6, grad_out, padding_mode, align_corners)
        grad_theta = partial.sum(1).view(n, 2, 3).to(theta_dtype)
        return grad_input, grad_theta, None, None, None, None


def affine_sample(input: torch.Tensor, theta: torch.Tensor, size: Sequence[int] | None = None,
                  padding_mode: str = "zeros", align_corners: bool = False,
                  deterministic: bool = False) -> torch.Tensor:
    """``F.grid_sample(input, F.affine_grid(theta, size), "bilinear", padding_mode, align_corners)`` in one fused
    Triton kernel (and its backward). ``size``: ``(N, C, H_out, W_out)`` or ``(H_out, W_out)``; default the input's.

    ``(N, C, H, W), (N, 2, 3) -> (N, C, H_out, W_out)``; CUDA tensors (CPU ones through Triton's interpreter).
    ``deterministic=True`` computes the input gradient without atomics, bit-identical from run to run. The input
    is float64, float32, float16 or bfloat16 (half precision computed in float32: the module docstring); the output
    has the input's dtype – under autocast, the wider of the input's and θ's, as ``F.grid_sample``'s.
    """
    check_float_tensor(input, "input", 4, "(N, C, H, W)")
    check_float_tensor(theta, "theta", 3, "(N, 2, 3)")
    if theta.shape[1:] != (2, 3) or theta.shape[0] != input.shape[0]:
        raise ValueError(f"theta: expected shape ({input.shape[0]}, 2, 3) for an input of batch {input.shape[0]}, "
                         f"got {tuple(theta.shape)}")
    check_dtype(input)
    padding.get(padding_mode)
    align_corners = check_bool(align_corners, "align_corners")
    deterministic = check_bool(deterministic, "deterministic")
    if size is None:
        out_size = tuple(input.shape[-2:])
    elif len(size) == 4:
        if tuple(size[:2]) != tuple(input.shape[:2]):
            raise ValueError(f"size: expected (N, C, H_out, W_out) with N, C = {tuple(input.shape[:2])} of the "
                             f"input, got {tuple(size)}")
        out_size = check_pair(tuple(size)[2:], "size[2:]")
    else:
        out_size = check_pair(size, "size")
    check_triton(input, theta)
    input = _autocast_promote(input, theta)
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ValueError(f"input: expected at least one pixel, got shape {tuple(input.shape)}")
    # the kernels' lanes index one plane in int32 (offs < programs·BLOCK; y0·W + x0 < H·W): the module docstring of
    # _affine_kernels. Masked-off lanes may compute wrapped offsets for their clamped neighbours: never accessed.
    check_index_range("affine_sample", input_plane=input.shape[2] * input.shape[3],
                      output_plane_plus_one_block=out_size[0] * out_size[1] + block_size(input.device, BLOCK))
    return FusedAffineSample.apply(input, theta, out_size, padding_mode, align_corners, deterministic)


def _autocast_promote(input: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Under autocast, ``input`` in the wider of its and θ's dtype – autocast promotes ``F.grid_sample``'s
    arguments so – and as it is otherwise (θ is then computed in the input's precision)."""
    if not torch.is_autocast_enabled(input.device.type):
        return input
    wider = torch.promote_types(input.dtype, theta.dtype)
    return input.to(wider) if wider in DTYPES else input


def unfused_affine_sample(input: torch.Tensor, theta: torch.Tensor, out_size: Sequence[int],
                          align_corners: bool = False) -> torch.Tensor:
    """What the fused kernel replaces, in torch's two passes: ``F.affine_grid`` writes the grid, ``F.grid_sample``
    reads it (bilinear, zeros padding, ``align_corners`` – default ``False``; lesson 7's exercises and their
    reference).

    ``(N, C, H, W), (N, 2, 3), (H_out, W_out) -> (N, C, H_out, W_out)``

    >>> unfused_affine_sample(torch.rand(2, 3, 4, 5), torch.eye(2, 3).expand(2, 2, 3), (6, 7)).shape
    torch.Size([2, 3, 6, 7])
    """
    grid = F.affine_grid(theta, (input.shape[0], input.shape[1], *out_size), align_corners=align_corners)
    return F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
