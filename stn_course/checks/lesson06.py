"""Checks for lesson 6 – deformable convolution (v1 and v2) from first principles.

Every reference is the package's :mod:`stn_course.deform` (or ``F.conv2d``); the cases use tuple arguments
``(h, w)`` for kernel size, stride, padding and dilation, non-square everything, batch 1 and > 1, offsets that reach
outside the image and samples exactly on the border.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..deform import (
    bilinear_sample_pixels,
    conv_output_size,
    deform_conv2d,
    offsets_from_affine,
    pack_offsets,
    regular_sampling_positions,
)
from .cases import tensor, uniform
from .equivalents import CONVOLUTION, DEFORM_CONV, GRID_SAMPLE, PACKAGE_SAMPLERS
from .registry import Case, Check, register

# (kernel, stride, padding, dilation): edge cases first
GEOMETRIES = [
    ((1, 1), (1, 1), (0, 0), (1, 1)),
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 3), (2, 1), (1, 0), (1, 2)),
    ((3, 1), (1, 2), (0, 2), (2, 1)),
    ((3, 2), (2, 2), (2, 1), (2, 3)),
]
# the grader's hidden geometries: larger and wider kernels, larger strides, paddings and dilations
HIDDEN_GEOMETRIES = [
    ((1, 3), (3, 1), (0, 1), (1, 1)),
    ((5, 3), (1, 2), (2, 3), (1, 2)),
    ((3, 3), (2, 3), (3, 0), (3, 1)),
]


def _geometry_kwargs(geometry) -> dict:
    kernel, stride, padding, dilation = geometry
    return {"stride": stride, "padding": padding, "dilation": dilation}


def _out_size(h: int, w: int, geometry) -> tuple[int, int]:
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geometry
    return conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)


# ---------------------------------------------------------------------------------------------------------------
# 06.regular_sampling_positions
# ---------------------------------------------------------------------------------------------------------------


def _positions_reference(h_out, w_out, kernel_size, stride, padding, dilation):
    return regular_sampling_positions(h_out, w_out, kernel_size, stride, padding, dilation)


def _positions_hidden(rng: np.random.Generator):
    return _positions_cases(rng, sizes=[(1, 9), (8, 1), (6, 5)], geometries=HIDDEN_GEOMETRIES)


def _positions_cases(rng: np.random.Generator, sizes=((1, 1), (2, 3), (4, 2), (5, 5), (3, 7)), geometries=GEOMETRIES):
    for (h_out, w_out), geometry in zip(sizes, geometries):
        kernel, stride, padding, dilation = geometry
        yield Case(f"H_out={h_out}, W_out={w_out}, kernel_size={kernel}, stride={stride}, padding={padding}, "
                   f"dilation={dilation}", (h_out, w_out, kernel, stride, padding, dilation))


register(Check(
    id="06.regular_sampling_positions",
    forbidden=("stn_course.deform.regular_sampling_positions",),
    idea="An output location starts at its top-left input position (stride and padding), and each tap adds its "
         "offset in the kernel (dilation).",
    title="where a regular convolution reads",
    reference=_positions_reference,
    cases=_positions_cases,
    hidden_cases=_positions_hidden,
    function="regular_sampling_positions_ex",
    hint="position = (output index · stride − padding) + tap index · dilation, per axis; taps in row-major order "
         "k = i·kw + j; the last axis is (y, x) – the row first; return float64.",
    rtol=0, atol=1e-12, points=1,
))


# ---------------------------------------------------------------------------------------------------------------
# 06.bilinear_sample_pixels
# ---------------------------------------------------------------------------------------------------------------


def _bilinear_hidden(rng: np.random.Generator):  # larger, one column, 3-d sample shapes, far outside
    return _bilinear_cases(rng, [(2, 2, 9, 1, (4, 3)), (4, 3, 11, 13, (2, 3, 5)), (1, 1, 1, 8, (9,))], reach=9.0)


def _bilinear_cases(rng: np.random.Generator, shapes=((1, 1, 1, 1, (5,)), (1, 2, 1, 4, (3, 2)), (2, 3, 4, 6, (7,)),
                                                      (3, 1, 5, 3, (2, 4))), reach=2.5):
    for n, c, h, w, sample_shape in shapes:  # (N, C, H, W, sample shape)
        y = uniform(rng, n, *sample_shape, low=-reach, high=h + reach - 1)
        x = uniform(rng, n, *sample_shape, low=-reach, high=w + reach - 1)
        # a few samples exactly on pixel centres and exactly on the -1 / H, W borders
        y.view(n, -1)[:, 0], x.view(n, -1)[:, 0] = -1.0, 0.0
        if y[0].numel() > 2:
            y.view(n, -1)[:, 1], x.view(n, -1)[:, 1] = float(h - 1), float(w)
            y.view(n, -1)[:, 2], x.view(n, -1)[:, 2] = -0.5, float(w) - 0.5
        yield Case(f"input (N={n}, C={c}, H={h}, W={w}), y and x of shape {(n, *sample_shape)}, some outside "
                   f"the image and some exactly on its border", (tensor(rng, n, c, h, w), y, x))


register(Check(
    id="06.bilinear_sample_pixels",
    forbidden=("stn_course.deform.bilinear_sample_pixels", "stn_course.sampling.bilinear_sample",
               "stn_course.sampling.grid_sample", *PACKAGE_SAMPLERS, *GRID_SAMPLE),
    idea="Lesson 2's sampler, in pixel coordinates: four neighbours, area weights, 0 for a neighbour outside the "
         "image.",
    title="bilinear interpolation at pixel coordinates, zeros outside",
    reference=bilinear_sample_pixels,
    cases=_bilinear_cases,
    hidden_cases=_bilinear_hidden,
    hint="floor (not int(), which truncates towards 0 for negative coordinates) gives the top-left neighbour; every "
         "neighbour outside the image contributes 0 – don't clamp its index onto the border and keep its value.",
    rtol=1e-9, atol=1e-9, points=2,
))


# ---------------------------------------------------------------------------------------------------------------
# 06.conv2d_by_sampling
# ---------------------------------------------------------------------------------------------------------------


def _conv_reference(input, weight, bias, stride, padding, dilation):
    return F.conv2d(input, weight, bias, stride, padding, dilation)


def _conv_hidden(rng: np.random.Generator):  # larger, non-square, wider kernels and strides
    return _conv_cases(rng, [(2, 4, 3, 11, 6), (1, 3, 5, 9, 12), (3, 2, 2, 13, 8)], HIDDEN_GEOMETRIES)


def _conv_cases(rng: np.random.Generator, shapes=((1, 1, 1, 3, 3), (1, 2, 3, 5, 4), (2, 3, 2, 6, 7), (3, 2, 4, 7, 5),
                                                  (2, 1, 3, 8, 9)), geometries=GEOMETRIES):
    for i, ((n, c_in, c_out, h, w), geometry) in enumerate(zip(shapes, geometries)):
        kernel, stride, padding, dilation = geometry
        bias = tensor(rng, c_out) if i % 2 else None
        yield Case(f"input (N={n}, C_in={c_in}, H={h}, W={w}), weight ({c_out}, {c_in}, {kernel[0]}, {kernel[1]}), "
                   f"bias {'None' if bias is None else 'given'}, stride={stride}, padding={padding}, "
                   f"dilation={dilation}",
                   (tensor(rng, n, c_in, h, w), tensor(rng, c_out, c_in, *kernel), bias, stride, padding, dilation))


register(Check(
    id="06.conv2d_by_sampling",
    builds_on=('06.bilinear_sample_pixels', '06.regular_sampling_positions'),
    forbidden=(*CONVOLUTION, "stn_course.deform.deform_conv2d", *DEFORM_CONV),
    idea="A convolution reads the input at fixed positions per tap and sums weight × sample over taps and input "
         "channels.",
    title="a regular convolution as sampling at fixed offsets",
    reference=_conv_reference,
    cases=_conv_cases,
    hidden_cases=_conv_hidden,
    hint="for every tap k = (i, j): sample the input at the regular positions of that tap, then add "
         "einsum('oc,nchw->nohw', weight[:, :, i, j], samples); padding is zeros because samples outside read 0. "
         "Don't flip the kernel (deep-learning 'convolution' is cross-correlation).",
    rtol=1e-9, atol=1e-9, points=2,
))


# ---------------------------------------------------------------------------------------------------------------
# 06.pack_offsets
# ---------------------------------------------------------------------------------------------------------------


def _pack_hidden(rng: np.random.Generator):
    return _pack_cases(rng, [(2, 4, 9, 3, 5), (1, 2, 25, 1, 7)])


def _pack_cases(rng: np.random.Generator, shapes=((1, 1, 1, 1, 1), (1, 1, 9, 2, 3), (2, 2, 6, 3, 1), (3, 3, 4, 2, 2))):
    for n, g, k, h, w in shapes:
        yield Case(f"dy and dx of shape (N={n}, offset_groups={g}, kh·kw={k}, H_out={h}, W_out={w})",
                   (tensor(rng, n, g, k, h, w), tensor(rng, n, g, k, h, w)))


register(Check(
    id="06.pack_offsets",
    forbidden=("stn_course.deform.pack_offsets",),
    idea="torchvision wants one channel per (offset group, tap, axis): which axis comes first, and in what order "
         "are they flattened?",
    title="torchvision's offset layout",
    reference=pack_offsets,
    cases=_pack_cases,
    hidden_cases=_pack_hidden,
    hint="per offset group the channels are [dy_0, dx_0, dy_1, dx_1, …]: interleaved per tap, y first. "
         "Stack (dy, dx) on a new axis right after the tap axis, then flatten groups, taps and that axis.",
    rtol=0, atol=0, points=1,
))


# ---------------------------------------------------------------------------------------------------------------
# 06.deform_conv2d
# ---------------------------------------------------------------------------------------------------------------


def _deform_reference(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    return deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask, impl="reference")


DEFORM_SHAPES = [(1, 1, 1, 3, 3, 1, False), (1, 2, 3, 5, 4, 1, True), (2, 2, 2, 6, 7, 2, False),
                 (3, 4, 2, 7, 5, 2, True), (2, 3, 3, 8, 6, 3, True)]  # (N, C_in, C_out, H, W, offset_groups, mask)


def _deform_hidden(rng: np.random.Generator):  # four offset groups, larger and non-square, a wider kernel
    return _deform_cases(rng, [(2, 4, 4, 9, 7, 4, True), (1, 6, 2, 12, 10, 2, False), (3, 2, 3, 11, 13, 1, True)],
                         HIDDEN_GEOMETRIES)


def _deform_cases(rng: np.random.Generator, shapes=DEFORM_SHAPES, geometries=GEOMETRIES):
    for i, ((n, c_in, c_out, h, w, og, with_mask), geometry) in enumerate(zip(shapes, geometries)):
        kernel = geometry[0]
        h_out, w_out = _out_size(h, w, geometry)
        k = kernel[0] * kernel[1]
        offset = tensor(rng, n, 2 * og * k, h_out, w_out, scale=2.5)  # reaches outside the image
        mask = uniform(rng, n, og * k, h_out, w_out, low=0.0, high=1.0) if with_mask else None
        bias = tensor(rng, c_out) if i % 2 == 0 else None
        yield Case(f"input (N={n}, C_in={c_in}, H={h}, W={w}), weight ({c_out}, {c_in}, {kernel[0]}, {kernel[1]}), "
                   f"offset_groups={og}, mask {'given' if with_mask else 'None'}, bias "
                   f"{'given' if bias is not None else 'None'}, stride={geometry[1]}, padding={geometry[2]}, "
                   f"dilation={geometry[3]}, offsets up to ±7 px",
                   (tensor(rng, n, c_in, h, w), offset, tensor(rng, c_out, c_in, *kernel), bias),
                   {**_geometry_kwargs(geometry), "mask": mask})


register(Check(
    id="06.deform_conv2d",
    builds_on=('06.bilinear_sample_pixels', '06.regular_sampling_positions'),
    forbidden=("stn_course.deform.deform_conv2d", "stn_course.deform.DeformConv2d", *DEFORM_CONV),
    idea="A deformable convolution is the convolution by sampling, with every tap's position moved by its own "
         "learned offset (and, in v2, its sample weighted by a mask).",
    title="deformable convolution v1/v2 (torchvision's contract)",
    reference=_deform_reference,
    cases=_deform_cases,
    hidden_cases=_deform_hidden,
    function="deform_conv2d_ex",
    hint="offset channel 2k of offset group g is dy of tap k and 2k+1 its dx (y first!); input channel c uses offset "
         "group c // (C_in / offset_groups); the mask (N, offset_groups·kh·kw, H_out, W_out) multiplies each sample "
         "before the weighted sum; samples outside the image read 0.",
    rtol=1e-9, atol=1e-9, points=3,
))


# ---------------------------------------------------------------------------------------------------------------
# 06.offsets_from_affine
# ---------------------------------------------------------------------------------------------------------------


def _affine_hidden(rng: np.random.Generator):
    return _affine_cases(rng, [(4, 1, 7), (2, 9, 1), (3, 6, 5)], HIDDEN_GEOMETRIES)


def _affine_cases(rng: np.random.Generator, sizes=((1, 1, 1), (1, 3, 2), (2, 4, 5), (3, 2, 6), (2, 5, 3)),
                  geometries=GEOMETRIES):
    for (n, h_out, w_out), geometry in zip(sizes, geometries):
        kernel, stride, padding, dilation = geometry
        angle = rng.uniform(-np.pi, np.pi, n)
        scale = rng.uniform(0.5, 1.5, n)
        m = np.zeros((n, 3, 3))
        m[:, 0, 0], m[:, 0, 1] = scale * np.cos(angle), -scale * np.sin(angle) * 1.2
        m[:, 1, 0], m[:, 1, 1] = scale * np.sin(angle), scale * np.cos(angle)
        m[:, :2, 2] = rng.uniform(-3, 3, (n, 2))
        m[:, 2, 2] = 1.0
        yield Case(f"{n} pixel-space affine matrices (N, 3, 3) acting on (x, y, 1), H_out={h_out}, W_out={w_out}, "
                   f"kernel_size={kernel}, stride={stride}, padding={padding}, dilation={dilation}",
                   (torch.from_numpy(m), h_out, w_out, kernel, stride, padding, dilation))


register(Check(
    id="06.offsets_from_affine",
    builds_on=('06.pack_offsets', '06.regular_sampling_positions'),
    forbidden=("stn_course.deform.offsets_from_affine", "stn_course.deform.regular_sampling_positions"),
    idea="An offset is where a tap should read minus where the regular convolution reads it.",
    title="one global transform -> one offset per tap and location",
    reference=offsets_from_affine,
    cases=_affine_cases,
    hidden_cases=_affine_hidden,
    function="offsets_from_affine_ex",
    hint="move every regular position p = (x, y) to A·(x, y, 1); the offset is A·p − p. The matrix speaks (x, y) "
         "but torchvision's offsets are (dy, dx): swap when you pack them.",
    rtol=1e-9, atol=1e-9, points=2,
))
