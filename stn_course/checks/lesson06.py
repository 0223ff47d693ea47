"""Checks for lesson 6 – deformable convolution (v1 and v2) from first principles, and two questions whose answers
are checked (where a blocked layout makes the taps read; the offsets that make a convolution dilated).

Every reference is the package's :mod:`stn_course.deform` (or ``F.conv2d``); the cases use tuple arguments
``(h, w)`` for kernel size, stride, padding and dilation, non-square everything, batch 1 and > 1, offsets that reach
outside the image and samples exactly on the border.
"""
from __future__ import annotations

from functools import partial

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
    unpack_offsets,
)
from .cases import tensor, uniform
from .equivalents import CONVOLUTION, DEFORM_CONV, GRID_SAMPLE, PACKAGE_SAMPLERS
from .catalog import exercise
from .questions import AnswerCompare
from .registry import Case, register

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


def _positions_hidden(rng: np.random.Generator):
    return _positions_cases(rng, sizes=[(1, 9), (8, 1), (6, 5)], geometries=HIDDEN_GEOMETRIES)


def _positions_cases(rng: np.random.Generator, sizes=((1, 1), (2, 3), (4, 2), (5, 5), (3, 7)), geometries=GEOMETRIES):
    for (h_out, w_out), geometry in zip(sizes, geometries):
        kernel, stride, padding, dilation = geometry
        yield Case(f"H_out={h_out}, W_out={w_out}, kernel_size={kernel}, stride={stride}, padding={padding}, "
                   f"dilation={dilation}", (h_out, w_out, kernel, stride, padding, dilation))


register(exercise("06.regular_sampling_positions", reference=regular_sampling_positions, cases=_positions_cases,
                  hidden_cases=_positions_hidden, forbidden=('stn_course.deform.regular_sampling_positions',)))


# ---------------------------------------------------------------------------------------------------------------
# 06.bilinear_sample_pixels
# ---------------------------------------------------------------------------------------------------------------


def _bilinear_hidden(rng: np.random.Generator):  # larger, one column, 3-d sample shapes, far outside
    yield from _bilinear_cases(rng, [(2, 2, 9, 1, (4, 3)), (4, 3, 11, 13, (2, 3, 5)), (1, 1, 1, 8, (9,))], reach=9.0)
    yield from _bilinear_gradient_cases(rng, [(3, 2, 7, 9, (4, 5))])


def _bilinear_cases(rng: np.random.Generator, shapes=((1, 1, 1, 1, (5,)), (1, 2, 1, 4, (3, 2)), (2, 3, 4, 6, (7,)),
                                                      (3, 1, 5, 3, (2, 4))), reach=2.5):
    yield from _bilinear_kink_cases(rng, shapes, reach)
    yield from _bilinear_gradient_cases(rng, [(2, 2, 4, 5, (6,)), (1, 3, 6, 3, (3, 4))])


def _bilinear_gradient_cases(rng: np.random.Generator, shapes, reach: float = 1.5):
    """Random points only (none on a pixel centre or the border, where the one-sided derivatives differ and
    torchvision and ATen pick different ones): the gradients w.r.t. the input, x and y must be the reference's."""
    for n, c, h, w, sample_shape in shapes:
        y = uniform(rng, n, *sample_shape, low=-reach, high=h + reach - 1)
        x = uniform(rng, n, *sample_shape, low=-reach, high=w + reach - 1)
        yield Case(f"input (N={n}, C={c}, H={h}, W={w}), x and y of shape {(n, *sample_shape)} at random points: "
                   "the gradients w.r.t. the input, x and y", (tensor(rng, n, c, h, w),), {"x": x, "y": y})


def _bilinear_kink_cases(rng: np.random.Generator, shapes, reach: float):
    for n, c, h, w, sample_shape in shapes:  # (N, C, H, W, sample shape)
        y = uniform(rng, n, *sample_shape, low=-reach, high=h + reach - 1)
        x = uniform(rng, n, *sample_shape, low=-reach, high=w + reach - 1)
        # a few samples exactly on pixel centres and exactly on the -1 / H, W borders
        y.view(n, -1)[:, 0], x.view(n, -1)[:, 0] = -1.0, 0.0
        if y[0].numel() > 2:
            y.view(n, -1)[:, 1], x.view(n, -1)[:, 1] = float(h - 1), float(w)
            y.view(n, -1)[:, 2], x.view(n, -1)[:, 2] = -0.5, float(w) - 0.5
        # x and y by keyword: a sampler written as (input, x, y) – the package's order – or as (input, y, x) reads
        # them right
        # values only: at a pixel centre or on the border any one-sided derivative is a correct gradient
        yield Case(f"input (N={n}, C={c}, H={h}, W={w}), x and y of shape {(n, *sample_shape)}, some outside "
                   f"the image and some exactly on its border", (tensor(rng, n, c, h, w),), {"x": x, "y": y},
                   compare_gradients=False)


register(exercise("06.bilinear_sample_pixels", reference=bilinear_sample_pixels, cases=_bilinear_cases,
                  hidden_cases=_bilinear_hidden, forbidden=('stn_course.deform.bilinear_sample_pixels',
                  'stn_course.sampling.bilinear_sample', 'stn_course.sampling.grid_sample', *PACKAGE_SAMPLERS,
                  *GRID_SAMPLE)))


# ---------------------------------------------------------------------------------------------------------------
# 06.conv2d_by_sampling
# ---------------------------------------------------------------------------------------------------------------


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


register(exercise("06.conv2d_by_sampling", reference=F.conv2d, cases=_conv_cases, hidden_cases=_conv_hidden,
                  forbidden=(*CONVOLUTION, 'stn_course.deform.deform_conv2d', *DEFORM_CONV)))


# ---------------------------------------------------------------------------------------------------------------
# 06.pack_offsets
# ---------------------------------------------------------------------------------------------------------------


def _pack_hidden(rng: np.random.Generator):
    return _pack_cases(rng, [(2, 4, 9, 3, 5), (1, 2, 25, 1, 7)])


def _pack_cases(rng: np.random.Generator, shapes=((1, 1, 1, 1, 1), (1, 1, 9, 2, 3), (2, 2, 6, 3, 1), (3, 3, 4, 2, 2))):
    for n, g, k, h, w in shapes:
        yield Case(f"dy and dx of shape (N={n}, offset_groups={g}, kh·kw={k}, H_out={h}, W_out={w})",
                   (tensor(rng, n, g, k, h, w), tensor(rng, n, g, k, h, w)))


# the layout is the learner's to find by probing: a wrong packing is told "not this one", never which channel
# should hold what (the values would give the layout away)
register(exercise("06.pack_offsets", reference=pack_offsets, cases=_pack_cases, hidden_cases=_pack_hidden,
                  compare=AnswerCompare(atol=0.0),
                  forbidden=('stn_course.deform.pack_offsets', 'stn_course.deform.unpack_offsets')))


# ---------------------------------------------------------------------------------------------------------------
# 06.deform_conv2d
# ---------------------------------------------------------------------------------------------------------------


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


register(exercise("06.deform_conv2d", reference=partial(deform_conv2d, impl='reference'), cases=_deform_cases,
                  hidden_cases=_deform_hidden, forbidden=('stn_course.deform.deform_conv2d',
                  'stn_course.deform.DeformConv2d', *DEFORM_CONV)))


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


register(exercise("06.offsets_from_affine", reference=offsets_from_affine, cases=_affine_cases,
                  hidden_cases=_affine_hidden, forbidden=('stn_course.deform.offsets_from_affine',
                  'stn_course.deform.regular_sampling_positions')))

# ------------------------------------------------------------------------------------------------ questions
# 06.blocked_reads (predict, then run) and 06.dilation_offsets (Questions, 1.): checked answers, never shown


def _blocked_reference(k_taps: int, dy: float, dx: float) -> torch.Tensor:
    """Pack a constant (dy, dx) blocked, ``[dy_0 … dy_{K-1}, dx_0 … dx_{K-1}]``, and read it back the way the layer
    does (the package's :func:`~stn_course.deform.unpack_offsets`): ``-> (K, 2)`` float64 (dy, dx) per tap."""
    column = partial(torch.full, (1, k_taps, 1, 1), dtype=torch.float64)
    read_dy, read_dx = unpack_offsets(torch.cat([column(float(dy)), column(float(dx))], 1), (1, k_taps))
    return torch.stack([read_dy.flatten(), read_dx.flatten()], dim=1)


# the lesson's picture (3×3, 2 px right) and one more, so that the picture's answer copied does not pass check()
def _blocked_cases(rng: np.random.Generator, setups=((9, 0.0, 2.0), (4, 1.0, -0.5))):
    for k_taps, dy, dx in setups:
        yield Case(f"k_taps={k_taps}, dy={dy}, dx={dx}", (k_taps, dy, dx))


def _blocked_hidden(rng: np.random.Generator):  # an even K has no middle tap; one tap is always right
    return _blocked_cases(rng, ((25, 1.0, -3.0), (16, 0.5, 1.5), (1, -2.0, 0.25), (15, float(rng.uniform(-2, 2)), 1.0)))


register(exercise("06.blocked_reads", reference=_blocked_reference, cases=_blocked_cases,
                  hidden_cases=_blocked_hidden, compare=AnswerCompare(atol=1e-12),
                  forbidden=('stn_course.deform.unpack_offsets', 'stn_course.deform.pack_offsets')))


def _dilation_reference(kernel_size: int, dilation: int) -> torch.Tensor:
    """Where the dilated layer's taps read minus where the plain layer's read, at one output location (the
    package's :func:`~stn_course.deform.regular_sampling_positions`): ``-> (k·k, 2)`` float64 (dy, dx)."""
    centre = (kernel_size - 1) // 2
    dilated = regular_sampling_positions(1, 1, kernel_size, 1, dilation * centre, dilation)[:, 0, 0]
    plain = regular_sampling_positions(1, 1, kernel_size, 1, centre, 1)[:, 0, 0]
    return (dilated - plain).double()


def _dilation_cases(rng: np.random.Generator, setups=((3, 2), (5, 3))):  # the question's numbers, and one more
    for kernel_size, dilation in setups:
        yield Case(f"kernel_size={kernel_size}, dilation={dilation}", (kernel_size, dilation))


def _dilation_hidden(rng: np.random.Generator):  # larger kernels and dilations, dilation 1 (no move), a 1×1 kernel
    return _dilation_cases(rng, ((7, 2), (3, 4), (7, 1), (1, 5)))


register(exercise("06.dilation_offsets", reference=_dilation_reference, cases=_dilation_cases,
                  hidden_cases=_dilation_hidden, compare=AnswerCompare(atol=1e-12),
                  forbidden=('stn_course.deform.regular_sampling_positions', 'stn_course.deform.sampling_positions')))
