"""Deformable convolution, v1 (Dai et al. 2017) and v2 (Zhu et al. 2018), from first principles (lesson 6).

A regular convolution reads its input at fixed places around each output pixel ``p0``: the taps
``p_k = (i·dilation_h, j·dilation_w)`` of a ``kh × kw`` kernel. A deformable convolution adds a learned offset
``Δp_k(p0)`` – one per tap *and* per output location – and reads the input there with bilinear interpolation;
DCNv2 also multiplies each sample by a learned modulation ``Δm_k(p0)``:

    out[n, o, p0] = bias[o] + Σ_c Σ_k weight[o, c, k] · Δm_k(p0) · x[n, c](p0·stride − padding + p_k + Δp_k(p0))

:func:`deform_conv2d` has exactly the contract of ``torchvision.ops.deform_conv2d``:

* ``input (N, C_in, H, W)``, ``weight (C_out, C_in / groups, kh, kw)`` – ``groups`` is read from the weight shape;
* ``offset (N, 2·offset_groups·kh·kw, H_out, W_out)`` – ``offset_groups`` is read from the offset shape. Per offset
  group, the channels are **interleaved per tap, (dy, dx) first y**: ``[dy_0, dx_0, dy_1, dx_1, …]`` with taps in
  row-major order ``k = i·kw + j``. Input channel ``c`` uses offset group ``c // (C_in / offset_groups)``;
* ``mask (N, offset_groups·kh·kw, H_out, W_out)`` (optional, DCNv2);
* bilinear sampling in *pixel* coordinates (row ``y``, column ``x``) with zeros outside: a sample at ``y`` in
  ``(-1, H)`` interpolates its in-range corners with 0 for the others; beyond that it is 0 – exactly torchvision's
  ``bilinear_interpolate``.

Implementations behind ``impl=`` (the package's vocabulary, :data:`stn_course.impls.DEFORM_CONV2D`) that the
tests prove equal:

* ``"reference"`` – the learner's version: for every tap, bilinearly sample the whole input at the shifted
  positions (:func:`bilinear_sample_pixels`), then add the tap's weighted sum over channels. Autograd does the rest.
* ``"fast"`` – *bilinear im2col*: every tap of every output location is sampled at once by one call of ATen's
  vectorized ``grid_sample`` (the positions are converted to normalized coordinates), which yields the classic
  im2col matrix ``(N, C_in·kh·kw, H_out·W_out)``; one batched GEMM with the weight finishes the job. Its backward is
  ATen's: ``grid_sample``'s fused backward (grad w.r.t. input by scatter-add, w.r.t. the positions from the corner
  differences) and GEMMs for the weight. On CPU this is several times faster than torchvision's scalar loops
  (``benchmarks/bench_deform.py``).
* ``"triton"`` – lesson 7's Triton im2col and col2im (:mod:`stn_course.gpu.deform`), on CUDA.
* ``"auto"`` (the default) – ``"triton"`` on CUDA inputs when Triton is installed, ``"fast"`` everywhere else (the
  package's one rule: torch has no deformable convolution, so the fastest path off the GPU is ours).

:class:`DeformConv2d` wraps it as a layer with its own offset (and mask) predictor, a convolution initialised to
zero so that a fresh layer *is* a plain convolution (offsets 0, mask ``2·sigmoid(0) = 1``). The lesson's experiment
built from it – a small classifier and the trace of where its layers read – is :mod:`stn_course.deform_net`.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    ShapeError,
    check_bool,
    check_float_tensor,
    check_int,
    check_ndim,
    check_pair,
    check_same,
    shape_str,
)
from .grids import apply_theta
from .impls import DEFORM_CONV2D
from .sampling import bilinear_interpolate

__all__ = [
    "deform_conv2d",
    "DeformConv2d",
    "bilinear_sample_pixels",
    "conv_output_size",
    "regular_sampling_positions",
    "sampling_positions",
    "pack_offsets",
    "unpack_offsets",
    "offsets_from_affine",
]

IntPair = Union[int, Sequence[int]]


def _pair(value: IntPair, name: str, minimum: int = 1) -> tuple[int, int]:
    return check_pair(value, name, "(h, w)", minimum)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis: ``(size + 2·padding − dilation·(kernel − 1) − 1) // stride + 1``.

    >>> conv_output_size(28, 3, stride=2, padding=1)
    14
    """
    size, kernel = check_int(size, "size", 0), check_int(kernel, "kernel", 1)
    stride, padding, dilation = check_int(stride, "stride", 1), check_int(padding, "padding", 0), \
        check_int(dilation, "dilation", 1)
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


# ----------------------------------------------------------------------------------------------------------------
# Building blocks (the lesson's exercises)
# ----------------------------------------------------------------------------------------------------------------


def regular_sampling_positions(
    h_out: int, w_out: int, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
    dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
) -> torch.Tensor:
    """Where a regular convolution reads: the input pixel that tap ``k`` of output pixel ``p0`` lands on, for every
    tap and output pixel, counted from the unpadded input (lesson 6's exercise 1 derives it).

    Taps are in row-major order ``k = i·kw + j``; the last axis holds pixel coordinates, ``[..., 0]`` the row ``y``
    and ``[..., 1]`` the column ``x``. ``-> (kh·kw, H_out, W_out, 2)``

    >>> regular_sampling_positions(2, 2, 3, padding=1)[:, 0, 0].tolist()[:3]
    [[-1.0, -1.0], [-1.0, 0.0], [-1.0, 1.0]]
    """
    h_out, w_out = check_int(h_out, "h_out", 0), check_int(w_out, "w_out", 0)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (_pair(kernel_size, "kernel_size"), _pair(stride, "stride"),
                                              _pair(padding, "padding", 0), _pair(dilation, "dilation"))
    rows = torch.arange(h_out, dtype=dtype, device=device) * sh - ph  # (H_out,)
    cols = torch.arange(w_out, dtype=dtype, device=device) * sw - pw  # (W_out,)
    tap_y = torch.arange(kh, dtype=dtype, device=device).repeat_interleave(kw) * dh  # (K,)  i·dh
    tap_x = torch.arange(kw, dtype=dtype, device=device).repeat(kh) * dw  # (K,)  j·dw
    y = (tap_y[:, None, None] + rows[None, :, None]).expand(kh * kw, h_out, w_out)
    x = (tap_x[:, None, None] + cols[None, None, :]).expand(kh * kw, h_out, w_out)
    return torch.stack([y, x], dim=-1)


def bilinear_sample_pixels(input: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation at pixel coordinates, zero outside the image (torchvision's ``bilinear_interpolate``).

    ``x`` indexes columns and ``y`` rows – the package's one order, that of ``grid_sample``'s last dim and of
    :func:`stn_course.sampling.bilinear_interpolate` (earlier versions took ``(input, y, x)``: pass
    ``x=…, y=…`` by keyword and the call reads right in both). Each of the four neighbours
    ``(x0, y0) … (x0 + 1, y0 + 1)`` that lies outside the image contributes 0, so a sample fades to 0 over the last
    pixel beyond the border and is exactly 0 once ``x ≤ −1``, ``x ≥ W``, ``y ≤ −1`` or ``y ≥ H``.
    ``input: (N, C, H, W)``, ``x, y: (N, *S)`` ``-> (N, C, *S)``

    >>> image = torch.arange(6.0).view(1, 1, 2, 3)  # rows [0, 1, 2] and [3, 4, 5]
    >>> bilinear_sample_pixels(image, x=torch.tensor([[2.0]]), y=torch.tensor([[0.5]]))
    tensor([[[3.5000]]])
    """
    return bilinear_interpolate(input, x, y)


def pack_offsets(dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Displacements per tap -> torchvision's offset tensor, (dy, dx) interleaved per tap within each offset group.

    ``dy, dx: (N, offset_groups, kh·kw, H_out, W_out)`` ``-> (N, 2·offset_groups·kh·kw, H_out, W_out)``

    >>> pack_offsets(torch.zeros(2, 1, 9, 4, 4), torch.ones(2, 1, 9, 4, 4))[0, :4, 0, 0].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    check_float_tensor(dy, "dy")
    check_float_tensor(dx, "dx")
    check_same(dy, dx, "dy", "dx")
    if dy.shape != dx.shape or dy.ndim != 5:
        raise ShapeError(f"dy, dx: expected two tensors of shape (N, offset_groups, kh*kw, H_out, W_out), got "
                         f"{shape_str(dy)} and {shape_str(dx)}")
    return torch.stack([dy, dx], dim=3).flatten(1, 3)


def unpack_offsets(offset: torch.Tensor, kernel_size: IntPair) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_offsets`. ``(N, 2·G·kh·kw, H_out, W_out) -> dy, dx: (N, G, kh·kw, H_out, W_out)``"""
    kh, kw = _pair(kernel_size, "kernel_size")
    check_float_tensor(offset, "offset", 4, "(N, 2*offset_groups*kh*kw, H_out, W_out)")
    n, ch, h_out, w_out = offset.shape
    if ch == 0 or ch % (2 * kh * kw):
        raise ShapeError(f"offset: expected shape (N, 2*offset_groups*kh*kw, H_out, W_out) with 2*kh*kw = "
                         f"{2 * kh * kw} dividing dim 1, got {shape_str(offset)}")
    pairs = offset.reshape(n, ch // (2 * kh * kw), kh * kw, 2, h_out, w_out)
    return pairs[:, :, :, 0], pairs[:, :, :, 1]


def sampling_positions(
    offset: torch.Tensor, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1
) -> torch.Tensor:
    """Where a deformable convolution reads: regular positions plus offsets, as pixel ``(y, x)``.

    ``offset: (N, 2·G·kh·kw, H_out, W_out)`` ``-> (N, G, kh·kw, H_out, W_out, 2)``
    """
    dy, dx = unpack_offsets(offset, kernel_size)
    base = regular_sampling_positions(offset.shape[2], offset.shape[3], kernel_size, stride, padding, dilation,
                                      dtype=offset.dtype, device=offset.device)
    return base + torch.stack([dy, dx], dim=-1)


def offsets_from_affine(
    matrix: torch.Tensor, h_out: int, w_out: int, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0,
    dilation: IntPair = 1,
) -> torch.Tensor:
    """The offsets that make a deformable convolution read where one global affine map sends the regular taps.

    ``matrix`` maps pixel ``(x, y, 1)`` (course convention: x first, like ``affine.apply``) to the pixel to read;
    every tap position ``p`` is moved to ``A p`` and the offset is ``A p − p``, returned in torchvision's layout
    (**dy first**). An STN warps the whole image with one ``A``; a deformable convolution may choose a different
    displacement for every tap and location – this function is the special case where they coincide.
    ``matrix: (N, 3, 3) or (N, 2, 3)`` ``-> (N, 2·kh·kw, H_out, W_out)``
    """
    check_float_tensor(matrix, "matrix")
    if matrix.ndim != 3 or matrix.shape[-2:] not in ((3, 3), (2, 3)):
        raise ShapeError(f"matrix: expected shape (N, 3, 3) or (N, 2, 3), got {shape_str(matrix)}")
    base = regular_sampling_positions(h_out, w_out, kernel_size, stride, padding, dilation, matrix.dtype,
                                      matrix.device)  # (K, H_out, W_out, 2) as (y, x)
    y, x = base[..., 0], base[..., 1]
    # the grid generator's step (lesson 3), in pixels: every tap's homogeneous (x, y, 1) times the matrix
    points = torch.stack([x, y, torch.ones_like(x)], -1).reshape(1, -1, 3)
    mapped = apply_theta(points, matrix).view(matrix.shape[0], *x.shape, matrix.shape[-2])  # (N, K, H_out, W_out, R)
    xs, ys = mapped[..., 0], mapped[..., 1]
    if matrix.shape[-2] == 3:  # projective: divide by the homogeneous coordinate
        xs, ys = xs / mapped[..., 2], ys / mapped[..., 2]
    return pack_offsets((ys - y).unsqueeze(1), (xs - x).unsqueeze(1))


# ----------------------------------------------------------------------------------------------------------------
# deform_conv2d
# ----------------------------------------------------------------------------------------------------------------


def _check_arguments(input, offset, weight, bias, stride, padding, dilation, mask):
    """Validate everything and return ``(groups, offset_groups, (kh, kw), (H_out, W_out), stride, padding, dilation)``."""
    for value, name in ((input, "input"), (offset, "offset"), (weight, "weight")):
        check_float_tensor(value, name)
    check_ndim(input, 4, "input", "(N, C_in, H, W)")
    n, c_in, h, w = input.shape
    check_ndim(weight, 4, "weight", "(C_out, C_in / groups, kh, kw)")
    c_out, c_per_group, kh, kw = weight.shape
    if c_per_group == 0 or c_in % c_per_group or c_out % (c_in // c_per_group) or kh == 0 or kw == 0:
        raise ShapeError(f"weight: expected shape (C_out, C_in / groups, kh, kw) with C_in = {c_in} divisible by "
                         f"dim 1 and C_out divisible by groups, got {shape_str(weight)}")
    groups = c_in // c_per_group
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding", minimum=0)
    dilation = _pair(dilation, "dilation")
    h_out = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    w_out = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    if h_out < 1 or w_out < 1:
        raise ShapeError(f"input of shape {shape_str(input)} is too small for a {kh}x{kw} kernel with padding "
                         f"{padding} and dilation {dilation} (output would be {h_out}x{w_out})")
    k = kh * kw
    check_ndim(offset, 4, "offset", "(N, 2*offset_groups*kh*kw, H_out, W_out)")
    offset_groups = offset.shape[1] // (2 * k)
    if (offset_groups == 0 or offset.shape[1] % (2 * k) or c_in % offset_groups
            or tuple(offset.shape) != (n, 2 * offset_groups * k, h_out, w_out)):
        raise ShapeError(  # torchvision's wording too ("the shape of the offset"), whose tests match it
            f"offset: expected shape (N, 2*offset_groups*kh*kw, H_out, W_out) = ({n}, {2 * k}*offset_groups, "
            f"{h_out}, {w_out}) with offset_groups dividing C_in = {c_in}, got {shape_str(offset)} (the shape of "
            f"the offset does not fit the input, the {kh}x{kw} kernel, stride, padding and dilation)")
    if mask is not None:
        check_float_tensor(mask, "mask")
        expected = (n, offset_groups * k, h_out, w_out)
        if tuple(mask.shape) != expected:
            which = "mask.shape[1] is not valid" if mask.ndim > 1 and mask.shape[1] != expected[1] else "mask's shape"
            raise ShapeError(f"mask: expected shape (N, offset_groups*kh*kw, H_out, W_out) = {expected}, "
                             f"got {shape_str(mask)} ({which}: the offset has {offset_groups} group(s) of "
                             f"{kh}x{kw} taps)")
    if bias is not None:
        check_float_tensor(bias, "bias")
        if tuple(bias.shape) != (c_out,):
            raise ShapeError(f"bias: expected shape (C_out,) = ({c_out},), got {shape_str(bias)}")
    # Shapes first, then dtypes and devices: torchvision's order (its tests pass a float64 offset of the wrong
    # shape to a float32 layer and expect the shape error).
    for other, name in ((offset, "offset"), (weight, "weight"), (mask, "mask"), (bias, "bias")):
        if other is not None:
            check_same(input, other, "input", name)
    return groups, offset_groups, (kh, kw), (h_out, w_out), stride, padding, dilation


def _deform_conv2d_reference(input, offset, weight, bias, stride, padding, dilation, mask, groups, offset_groups,
                             kernel, out_size):
    """Readable version: for each tap, sample all channels at the shifted positions, then add its weighted sum."""
    n, c_in, h, w = input.shape
    c_out, kh, kw = weight.shape[0], *kernel
    cg, c_per_group, o_per_group = c_in // offset_groups, c_in // groups, c_out // groups
    base = regular_sampling_positions(*out_size, kernel, stride, padding, dilation, input.dtype, input.device)
    dy, dx = unpack_offsets(offset, kernel)  # (N, G, K, H_out, W_out) each
    images = input.reshape(n * offset_groups, cg, h, w)  # one "image" per offset group
    out = [0] * groups
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            y = (base[k, :, :, 0] + dy[:, :, k]).reshape(n * offset_groups, *out_size)
            x = (base[k, :, :, 1] + dx[:, :, k]).reshape(n * offset_groups, *out_size)
            sampled = bilinear_sample_pixels(images, x=x, y=y)  # (N·G, C_in / G, H_out, W_out)
            if mask is not None:
                sampled = sampled * mask.reshape(n * offset_groups, kh * kw, *out_size)[:, k:k + 1]
            sampled = sampled.reshape(n, c_in, *out_size)
            for g in range(groups):  # weighted sum over the input channels of each weight group
                tap_weight = weight[g * o_per_group:(g + 1) * o_per_group, :, i, j]  # (C_out / groups, C_in / groups)
                chunk = sampled[:, g * c_per_group:(g + 1) * c_per_group]
                out[g] = out[g] + torch.einsum("oc,nchw->nohw", tap_weight, chunk)
    result = torch.cat(out, dim=1)
    if bias is not None:
        result = result + bias.view(1, -1, 1, 1)
    return result


def _deform_conv2d_fast(input, offset, weight, bias, stride, padding, dilation, mask, groups, offset_groups, kernel,
                        out_size):
    """Bilinear im2col with one ``grid_sample`` call for every tap and location, then one batched GEMM."""
    n, c_in, h, w = input.shape
    c_out, (kh, kw), (h_out, w_out) = weight.shape[0], kernel, out_size
    k, p = kh * kw, h_out * w_out
    cg = c_in // offset_groups
    # Where every tap of every location reads, base + offset in pixels (rounded exactly like torchvision's kernel),
    # then grid_sample's normalized (x, y): with align_corners=False, u = (2x + 1) / W − 1, an affine map that
    # grid_sample undoes with few rounding errors. Its zeros padding reads out-of-range corners as 0, which is
    # torchvision's bilinear_interpolate. (Few, in-place ops: each op is a parallel region that costs on a busy CPU.)
    base = regular_sampling_positions(h_out, w_out, kernel, stride, padding, dilation, input.dtype, input.device)
    size = torch.tensor([w, h], dtype=input.dtype, device=input.device)
    pairs = offset.reshape(n * offset_groups, k, 2, h_out, w_out).permute(0, 1, 3, 4, 2)  # (..., 2) = (dy, dx)
    grid = (pairs + base).flip(-1)  # absolute (x, y) pixel positions, (N·G, K, H_out, W_out, 2)
    grid = grid.mul_(2).add_(1).div_(size).sub_(1).reshape(n * offset_groups, k * h_out, w_out, 2)
    cols = F.grid_sample(input.reshape(n * offset_groups, cg, h, w), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)  # (N·G, C_in / G, K·H_out, W_out)
    cols = cols.view(n, offset_groups, cg, k, p)
    if mask is not None:
        cols = cols * mask.reshape(n, offset_groups, 1, k, p)
    # im2col matrix per sample and weight group: rows (c, k) with c the input channel, k the tap – weight's order.
    cols = cols.reshape(n, groups, (c_in // groups) * k, p)
    out = torch.matmul(weight.reshape(1, groups, c_out // groups, (c_in // groups) * k), cols)
    out = out.reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: torch.Tensor | None = None,
    impl: str = DEFORM_CONV2D.default,
) -> torch.Tensor:
    """Deformable convolution v1/v2 with the semantics of ``torchvision.ops.deform_conv2d``.

    ``input: (N, C_in, H, W)``, ``offset: (N, 2·offset_groups·kh·kw, H_out, W_out)`` ((dy, dx) interleaved per
    tap), ``weight: (C_out, C_in / groups, kh, kw)``, ``bias: (C_out,)``,
    ``mask: (N, offset_groups·kh·kw, H_out, W_out)`` ``-> (N, C_out, H_out, W_out)``

    ``impl="fast"`` (bilinear im2col + GEMM), ``"reference"`` (per-tap sampling + weighted sum), ``"triton"``
    (lesson 7's Triton im2col and col2im, :mod:`stn_course.gpu.deform`: CUDA, or the interpreter) or ``"auto"``
    (the default: ``"triton"`` on a CUDA input when Triton is installed, else ``"fast"``); all are
    differentiable w.r.t. every tensor argument, accept empty batches (``N = 0``, e.g. no proposals) and propagate
    NaN and infinity as ``F.grid_sample`` does. Under autocast it computes in float32 and returns the input's dtype,
    as torchvision's does; outside autocast every tensor must have the input's dtype. TorchScript is not supported
    (the argument checks are plain Python); ``torch.compile`` is the supported way to compile a model that contains
    it.

    >>> x, w = torch.rand(2, 4, 9, 9), torch.rand(8, 4, 3, 3)
    >>> deform_conv2d(x, torch.zeros(2, 18, 9, 9), w, padding=1).shape
    torch.Size([2, 8, 9, 9])
    """
    DEFORM_CONV2D.check(impl)
    if (isinstance(input, torch.Tensor) and torch.amp.is_autocast_available(input.device.type)
            and torch.is_autocast_enabled(input.device.type)):  # (meta tensors have no autocast)
        return _autocast_deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask, impl)
    groups, offset_groups, kernel, out_size, stride, padding, dilation = _check_arguments(
        input, offset, weight, bias, stride, padding, dilation, mask)
    impl = DEFORM_CONV2D.resolve(impl, *[t for t in (input, offset, weight, bias, mask) if t is not None])
    if impl == "triton":
        from .gpu.deform import deform_conv2d as triton_deform_conv2d

        return triton_deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask, groups,
                                    offset_groups)
    fn = _deform_conv2d_fast if impl == "fast" else _deform_conv2d_reference
    return fn(input, offset, weight, bias, stride, padding, dilation, mask, groups, offset_groups, kernel, out_size)


def _autocast_deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask, impl) -> torch.Tensor:
    """:func:`deform_conv2d` under autocast, with torchvision's policy for ``torchvision::deform_conv2d``
    (``csrc/ops/autocast/deform_conv2d_kernel.cpp``): autocast off inside, every float16/bfloat16/float32 tensor
    argument on the autocast device cast to float32 (float64 and other devices' tensors as they are, so a genuine
    mismatch keeps its error), and the output returned in the input's dtype. So a ``DeformConv2d`` with float32
    weights takes the float16/bfloat16 features and offsets that autocast's convolutions give it – the sampling
    positions and sums in float32, as torchvision computes them. ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``."""
    device_type = input.device.type

    def float32(t: torch.Tensor | None) -> torch.Tensor | None:
        eligible = (isinstance(t, torch.Tensor) and t.device.type == device_type and t.is_floating_point()
                    and t.dtype != torch.float64)
        return t.float() if eligible else t

    with torch.autocast(device_type, enabled=False):
        out = deform_conv2d(float32(input), float32(offset), float32(weight), float32(bias), stride, padding,
                            dilation, float32(mask), impl)
    return out.to(input.dtype)


# ----------------------------------------------------------------------------------------------------------------
# Module
# ----------------------------------------------------------------------------------------------------------------


class DeformConv2d(nn.Module):
    """A deformable convolution layer that predicts its own offsets (v1) and modulation mask (v2, ``modulated=True``).

    The offset/mask predictor is a regular convolution with the layer's kernel size, stride, padding and dilation
    whose weights and bias start at **zero**. So a fresh layer reads at offset 0 with mask ``2·sigmoid(0) = 1`` and
    equals ``F.conv2d(input, self.weight, self.bias, ...)`` exactly; training moves the offsets away from the grid.
    We use ``mask = 2·sigmoid(logits)`` (range ``(0, 2)``) rather than DCNv2's plain ``sigmoid`` (which starts at 0.5
    and halves every response of a fresh layer) so that modulation starts neutral.

    ``forward(input)`` predicts offset and mask from ``input``; ``forward(input, offset, mask)`` uses given ones like
    ``torchvision.ops.DeformConv2d``. ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``

    The constructor takes torchvision's arguments in torchvision's order (``in_channels, out_channels,
    kernel_size, stride, padding, dilation, groups, bias``), then ours: ``offset_groups``, ``modulated``, ``impl``.
    TorchScript is not supported; ``torch.compile`` is.

    >>> DeformConv2d(4, 8, 3, padding=1)(torch.rand(2, 4, 9, 9)).shape
    torch.Size([2, 8, 9, 9])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True,
                 offset_groups: int = 1, modulated: bool = False, impl: str = DEFORM_CONV2D.default) -> None:
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", 1)
        out_channels = check_int(out_channels, "out_channels", 1)
        groups, offset_groups = check_int(groups, "groups", 1), check_int(offset_groups, "offset_groups", 1)
        bias, modulated = check_bool(bias, "bias"), check_bool(modulated, "modulated")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if in_channels % offset_groups:
            raise ValueError(f"in_channels ({in_channels}) must be divisible by offset_groups ({offset_groups})")
        DEFORM_CONV2D.check(impl)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.padding = _pair(stride, "stride"), _pair(padding, "padding", minimum=0)
        self.dilation = _pair(dilation, "dilation")
        self.groups, self.offset_groups, self.modulated, self.impl = groups, offset_groups, modulated, impl
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        per_tap = 3 if modulated else 2
        self.offset_conv = nn.Conv2d(in_channels, per_tap * offset_groups * kh * kw, self.kernel_size,
                                     self.stride, self.padding, self.dilation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight and bias like ``nn.Conv2d``; the offset/mask predictor at zero (a fresh layer is a plain conv)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.weight.shape[2] * self.weight.shape[3]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)

    def offsets_and_mask(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Predicted ``offset (N, 2·G·kh·kw, H_out, W_out)`` and ``mask (N, G·kh·kw, H_out, W_out)`` (None for v1)."""
        raw = self.offset_conv(input)
        n_offset = 2 * self.offset_groups * self.kernel_size[0] * self.kernel_size[1]
        offset = raw[:, :n_offset]
        mask = 2 * torch.sigmoid(raw[:, n_offset:]) if self.modulated else None
        return offset, mask

    def forward(self, input: torch.Tensor, offset: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        if offset is None:
            offset, predicted_mask = self.offsets_and_mask(input)
            mask = predicted_mask if mask is None else mask
        elif self.modulated and mask is None:
            raise ValueError("this DeformConv2d is modulated (v2): with a given offset, pass its mask too "
                             "(forward(input, offset, mask)), or call forward(input) to predict both")
        return deform_conv2d(input, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask,
                             impl=self.impl)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"offset_groups={self.offset_groups}, bias={self.bias is not None}, modulated={self.modulated}")

