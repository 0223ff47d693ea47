"""Deformable convolution on the GPU path (lesson 7): a Triton bilinear im2col, then GEMMs.

``deform_conv2d`` has ``torchvision.ops.deform_conv2d``'s contract (v1 and v2, groups, offset groups, NaN and
infinity as ``F.grid_sample`` propagates them). Forward: one Triton program per (sample, channel, block of taps ×
locations) bilinearly reads where each tap of each location reads – the sampling grid is never written – into the
columns ``(N, C_in·kh·kw, H_out·W_out)``, which one batched GEMM per weight group turns into the output. Backward:
GEMMs for the weight and the columns' gradients, then a Triton col2im that scatters the input gradient with atomic
adds and writes the offset and mask gradients per channel (summed over each offset group's channels afterwards).
"""
from __future__ import annotations

import torch

from . import block_size, check_triton

__all__ = ["deform_conv2d", "DeformConv2dFunction", "BLOCK"]

BLOCK: int | None = None  # (tap, location) pairs per program; None: gpu.block_size's choice (256 on CUDA)
_kernels = None


def kernels():
    """The kernels module, imported on first use (so that ``TRITON_INTERPRET`` applies and ``triton`` is optional)."""
    global _kernels
    if _kernels is None:
        from . import _deform_kernels

        _kernels = _deform_kernels
    return _kernels


def _launch(name: str, n: int, c: int, kp: int, block: int):
    return getattr(kernels(), name)[(n, c, max(1, -(-kp // block)))]


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
            block = block_size(input.device, BLOCK)
            _launch("im2col", n, c_in, k * p, block)(input, offset, mask if mask is not None else offset, cols, c_in, h, w,
                                              h_out, w_out, kw, *stride, *padding, *dilation, offset_groups,
                                              c_in // offset_groups, k, HAS_MASK=mask is not None, BLOCK=block)
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
        grad_out = grad_out.contiguous().view(n, groups, c_out // groups, p)
        grouped = cols.view(n, groups, (c_in // groups) * k, p)
        grad_weight = torch.matmul(grad_out, grouped.transpose(-1, -2)).sum(0).reshape(weight.shape)
        grad_cols = torch.matmul(weight.view(1, groups, c_out // groups, (c_in // groups) * k).transpose(-1, -2),
                                 grad_out).reshape(n, c_in, k, p).contiguous()
        grad_input = torch.zeros_like(input)
        grad_offset_c = torch.zeros(n, c_in, k, 2, p, dtype=input.dtype, device=input.device)
        grad_mask_c = torch.zeros(n, c_in, k, p, dtype=input.dtype, device=input.device) if mask is not None else None
        if grad_cols.numel():
            block = block_size(input.device, BLOCK)
            _launch("col2im", n, c_in, k * p, block)(input, offset, mask if mask is not None else offset, grad_cols,
                                              grad_input, grad_offset_c,
                                              grad_mask_c if grad_mask_c is not None else grad_offset_c, c_in, h, w,
                                              h_out, w_out, kw, *stride, *padding, *dilation, offset_groups,
                                              c_in // offset_groups, k, HAS_MASK=mask is not None, BLOCK=block)
        cg = c_in // offset_groups
        grad_offset = grad_offset_c.view(n, offset_groups, cg, k, 2, p).sum(2).reshape(offset.shape)
        grad_mask = (grad_mask_c.view(n, offset_groups, cg, k, p).sum(2).reshape(mask.shape)
                     if mask is not None else None)
        return grad_input, grad_offset, grad_weight, grad_mask, None, None, None, None, None


def deform_conv2d(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                  mask: torch.Tensor | None, groups: int, offset_groups: int) -> torch.Tensor:
    """The Triton path of :func:`stn_course.deform.deform_conv2d` (arguments already validated there).
    ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``; float32 or float64 CUDA tensors (CPU ones through the
    interpreter)."""
    check_triton(*(t for t in (input, offset, weight, bias, mask) if t is not None))
    if input.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"input: the Triton kernels take float32 or float64, got {input.dtype}")
    out = DeformConv2dFunction.apply(input, offset, weight, mask, stride, padding, dilation, groups, offset_groups)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
