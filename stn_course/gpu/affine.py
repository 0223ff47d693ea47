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
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .. import padding
from .._validation import check_bool, check_float_tensor, check_pair
from ..grids import linspace_from_neg_one
from . import block_size, check_triton

__all__ = ["affine_sample", "FusedAffineSample", "BLOCK", "kernel_constants", "base_axes", "unfused_affine_sample"]

BLOCK: int | None = None  # output pixels per program; None: gpu.block_size's choice (256 on CUDA)

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
    k = kernels()
    keys = torch.empty(n * pixels * 4, dtype=torch.int64, device=input.device)
    weights = torch.empty(n * pixels * 4, dtype=input.dtype, device=input.device)
    block = block_size(input.device, BLOCK)
    xs, ys = base_axes((h_out, w_out), align_corners, input.dtype, input.device)
    k.contributions[_grid(n, pixels, block)](theta, xs, ys, keys, weights, h, w, h_out, w_out,
                                                **kernel_constants(padding_mode, input.device),
                                                ALIGN=align_corners, BLOCK=block)
    sorted_keys, order = torch.sort(keys, stable=True)
    real = sorted_keys < n * h * w
    sorted_keys, order = sorted_keys[real], order[real]
    grad_input = torch.zeros_like(input)
    if sorted_keys.numel() == 0:
        return grad_input
    unique, counts = torch.unique_consecutive(sorted_keys, return_counts=True)
    starts = torch.zeros(len(unique) + 1, dtype=torch.int64, device=input.device)
    starts[1:] = torch.cumsum(counts, 0)
    cblock = 16
    k.segments[(len(unique), -(-c // cblock))](order, starts, sorted_keys, weights, grad_out, grad_input, c,
                                                  h * w, pixels, CBLOCK=cblock)
    return grad_input


class FusedAffineSample(torch.autograd.Function):
    """The fused kernels as an ``autograd.Function``: ``apply(input, theta, out_size, padding_mode,
    align_corners, deterministic)``."""

    @staticmethod
    def forward(ctx, input, theta, out_size, padding_mode, align_corners, deterministic):
        input, theta6 = input.contiguous(), theta.reshape(-1, 6).contiguous().to(input.dtype)
        n, c, h, w = input.shape
        h_out, w_out = out_size
        out = torch.empty(n, c, h_out, w_out, dtype=input.dtype, device=input.device)
        constants = kernel_constants(padding_mode, input.device)
        block = block_size(input.device, BLOCK)
        xs, ys = base_axes((h_out, w_out), align_corners, input.dtype, input.device)
        if out.numel():
            kernels().forward[_grid(n, h_out * w_out, block)](input, theta6, xs, ys, out, c, h, w, h_out, w_out,
                                                               **constants, ALIGN=align_corners, BLOCK=block)
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
        block = block_size(input.device, BLOCK)
        grid = _grid(n, h_out * w_out, block)
        grad_input = torch.zeros_like(input) if need_input and not deterministic else None
        partial = torch.zeros(n, grid[1], 6, dtype=input.dtype, device=input.device)
        if grad_out.numel():
            xs, ys = base_axes((h_out, w_out), align_corners, input.dtype, input.device)
            kernels().backward[grid](input, theta6, xs, ys, grad_out,
                                        grad_input if grad_input is not None else input,
                                        partial, c, h, w, h_out, w_out, grid[1],
                                        **kernel_constants(padding_mode, input.device),
                                        ALIGN=align_corners, BLOCK=block,
                                        NEED_INPUT=need_input and not deterministic)
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
    ``deterministic=True`` computes the input gradient without atomics, bit-identical from run to run.
    """
    check_float_tensor(input, "input", 4, "(N, C, H, W)")
    check_float_tensor(theta, "theta", 3, "(N, 2, 3)")
    if theta.shape[1:] != (2, 3) or theta.shape[0] != input.shape[0]:
        raise ValueError(f"theta: expected shape ({input.shape[0]}, 2, 3) for an input of batch {input.shape[0]}, "
                         f"got {tuple(theta.shape)}")
    if input.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"input: the Triton kernels take float32 or float64, got {input.dtype}")
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
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ValueError(f"input: expected at least one pixel, got shape {tuple(input.shape)}")
    return FusedAffineSample.apply(input, theta, out_size, padding_mode, align_corners, deterministic)


def unfused_affine_sample(input: torch.Tensor, theta: torch.Tensor, out_size: Sequence[int]) -> torch.Tensor:
    """What the fused kernel replaces, in torch's two passes: ``F.affine_grid`` writes the grid, ``F.grid_sample``
    reads it (bilinear, zeros padding, ``align_corners=False``; lesson 7's exercise and its reference).

    ``(N, C, H, W), (N, 2, 3), (H_out, W_out) -> (N, C, H_out, W_out)``

    >>> unfused_affine_sample(torch.rand(2, 3, 4, 5), torch.eye(2, 3).expand(2, 2, 3), (6, 7)).shape
    torch.Size([2, 3, 6, 7])
    """
    grid = F.affine_grid(theta, (input.shape[0], input.shape[1], *out_size), align_corners=False)
    return F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
