"""Deformable convolution on the GPU path (lesson 7): a Triton bilinear im2col, then GEMMs.

``deform_conv2d`` has ``torchvision.ops.deform_conv2d``'s contract (v1 and v2, groups, offset groups, NaN and
infinity as ``F.grid_sample`` propagates them). Forward: one Triton program per (sample, channel, block of taps ×
locations) bilinearly reads where each tap of each location reads – the sampling grid is never written – into the
columns ``(N, C_in·kh·kw, H_out·W_out)``, which one batched GEMM per weight group turns into the output. Backward:
GEMMs for the weight and the columns' gradients, then a Triton col2im that scatters the input gradient with atomic
adds and writes the offset and mask gradients per channel (summed over each offset group's channels afterwards).

Half precision: float16/bfloat16 tensors are sampled in float32 (positions, weights, sums) and the columns stored
in the input's dtype, so the GEMMs run in it; the input, offset and mask gradients are summed in float32 buffers
and rounded to their tensors' dtypes once (:mod:`stn_course.gpu.launches`). That is for half tensors given outside
autocast: under autocast :func:`stn_course.deform.deform_conv2d` casts to float32 first, as torchvision does.

Sizes: any batch and channel count (the kernels' plane bases are 64-bit); one (sample, channel)'s input plane and
its ``2·kh·kw·H_out·W_out`` offset rows must stay below 2³¹ elements (32-bit lanes; refused with that limit named).
"""
from __future__ import annotations

import torch

from . import block_size, check_triton
from .launches import COMPUTE, DATA, KernelSpec, check_dtype, check_index_range, compute_dtype, launch

__all__ = ["deform_conv2d", "DeformConv2dFunction", "BLOCK", "KERNELS", "launch_constants"]

BLOCK: int | None = None  # (tap, location) pairs per program; None: gpu.block_size's choice (256 on CUDA)
_kernels = None

_READS = {"inp": DATA, "offset": DATA, "mask": DATA}
#: Each kernel's pointer arguments and what they point to (:mod:`stn_course.gpu.launches`).
KERNELS = {spec.name: spec for spec in (
    KernelSpec("im2col", {**_READS, "cols": DATA}),
    KernelSpec("col2im", {**_READS, "grad_cols": DATA, "grad_inp": COMPUTE, "grad_offset": COMPUTE,
                          "grad_mask": COMPUTE}),
)}


def kernels():
    """The kernels module, imported on first use (so that ``TRITON_INTERPRET`` applies and ``triton`` is optional)."""
    global _kernels
    if _kernels is None:
        from . import _deform_kernels

        _kernels = _deform_kernels
    return _kernels


def launch_constants(device: torch.device | str) -> dict[str, list[dict]]:
    """Every set of compile-time constants each kernel here is launched with on ``device`` (v1 and v2): what
    :func:`_launch` admits and :mod:`stn_course.gpu.aot` compiles."""
    block = block_size(torch.device(device), BLOCK)
    sets = [{"HAS_MASK": has_mask, "BLOCK": block} for has_mask in (False, True)]
    return {name: sets for name in KERNELS}


def _launch(name: str, input: torch.Tensor, kp: int, *args, has_mask: bool) -> None:
    """Kernel ``name`` over (sample, channel, block of ``kp`` tap × location pairs) of ``input``."""
    n, c = input.shape[:2]
    block = block_size(input.device, BLOCK)
    launch(kernels(), KERNELS[name], (n, c, max(1, -(-kp // block))), input.dtype, args,
           {"HAS_MASK": has_mask, "BLOCK": block}, launch_constants)


class DeformConv2dFunction(torch.autograd.Function):
    """``apply(input, offset, weight, mask, stride, padding, dilation, groups, offset_groups)`` (bias added outside:
    autograd handles it)."""

    @staticmethod
    def forward(ctx, input, offset, weight, mask, stride, padding, dilation, groups, offset_groups):
        input, offset, weight = input.contiguous(), offset.contiguous(), weight.contiguous()
        mask = mask.contiguous() if mask is not None else None
        n, c_in, h, w = input.shape
        c_out, _, kh, kw = weight.shape
        h_out, w_out = offset.shape[-2:]
        k, p = kh * kw, h_out * w_out
        cols = torch.empty(n, c_in, k, p, dtype=input.dtype, device=input.device)
        if cols.numel():
            _launch("im2col", input, k * p, input, offset, mask if mask is not None else offset, cols, c_in, h, w,
                    h_out, w_out, kw, *stride, *padding, *dilation, offset_groups, c_in // offset_groups, k,
                    has_mask=mask is not None)
        grouped = cols.view(n, groups, (c_in // groups) * k, p)
        out = torch.matmul(weight.view(1, groups, c_out // groups, (c_in // groups) * k), grouped)
        ctx.save_for_backward(input, offset, weight, mask, cols)
        ctx.settings = (stride, padding, dilation, groups, offset_groups)
        return out.view(n, c_out, h_out, w_out)

    @staticmethod
    def backward(ctx, grad_out):
        input, offset, weight, mask, cols = ctx.saved_tensors
        stride, padding, dilation, groups, offset_groups = ctx.settings
        n, c_in, h, w = input.shape
        c_out, _, kh, kw = weight.shape
        h_out, w_out = offset.shape[-2:]
        k, p = kh * kw, h_out * w_out
        # (under autocast the forward's GEMM may have given a narrower output than the columns: back to theirs)
        grad_out = grad_out.to(cols.dtype).contiguous().view(n, groups, c_out // groups, p)
        grouped = cols.view(n, groups, (c_in // groups) * k, p)
        grad_weight = torch.matmul(grad_out, grouped.transpose(-1, -2)).sum(0).reshape(weight.shape)
        grad_cols = torch.matmul(weight.view(1, groups, c_out // groups, (c_in // groups) * k).transpose(-1, -2),
                                 grad_out).reshape(n, c_in, k, p).contiguous()
        wide = {"dtype": compute_dtype(input.dtype), "device": input.device}  # float32 sums for half inputs
        grad_input = torch.zeros(input.shape, **wide)
        grad_offset_c = torch.zeros(n, c_in, k, 2, p, **wide)
        grad_mask_c = torch.zeros(n, c_in, k, p, **wide) if mask is not None else None
        if grad_cols.numel():
            _launch("col2im", input, k * p, input, offset, mask if mask is not None else offset, grad_cols,
                    grad_input, grad_offset_c, grad_mask_c if grad_mask_c is not None else grad_offset_c, c_in, h, w,
                    h_out, w_out, kw, *stride, *padding, *dilation, offset_groups, c_in // offset_groups, k,
                    has_mask=mask is not None)
        cg = c_in // offset_groups
        grad_input = grad_input.to(input.dtype)
        grad_offset = grad_offset_c.view(n, offset_groups, cg, k, 2, p).sum(2).reshape(offset.shape).to(offset.dtype)
        grad_mask = (grad_mask_c.view(n, offset_groups, cg, k, p).sum(2).reshape(mask.shape).to(mask.dtype)
                     if mask is not None else None)
        return grad_input, grad_offset, grad_weight, grad_mask, None, None, None, None, None


def deform_conv2d(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                  mask: torch.Tensor | None, groups: int, offset_groups: int) -> torch.Tensor:
    """The Triton path of :func:`stn_course.deform.deform_conv2d` (arguments already validated there).
    ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``; float64, float32, float16 or bfloat16 CUDA tensors (CPU ones
    through the interpreter; half precision as the module docstring says)."""
    check_triton(*(t for t in (input, offset, weight, bias, mask) if t is not None))
    check_dtype(input)
    # the kernels' lanes index one (sample, channel) in int32: y0·W + x0 < H·W, and 2·k·P + p < 2·K·P in the offsets
    # and the offset gradient, offs < K·P + BLOCK in the columns (_deform_kernels' module docstring)
    taps_locations = weight.shape[2] * weight.shape[3] * offset.shape[2] * offset.shape[3]
    check_index_range("deform_conv2d", input_plane=input.shape[2] * input.shape[3],
                      offset_rows_of_one_channel=2 * taps_locations + block_size(input.device, BLOCK))
    out = DeformConv2dFunction.apply(input, offset, weight, mask, stride, padding, dilation, groups, offset_groups)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
