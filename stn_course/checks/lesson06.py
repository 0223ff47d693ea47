"""Checks for lesson 6 – deformable convolution (v1 and v2) from first principles: a convolution by sampling, the
offsets of one global affine map in torchvision's layout (found by probing, so its check never shows values),
deformable convolution itself, and a question whose answer is checked (where the taps read when the offsets that
make a convolution dilated are packed blocked).

Every reference is the package's :mod:`stn_course.deform` (or ``F.conv2d``); the cases use tuple arguments
``(h, w)`` for kernel size, stride, padding and dilation, non-square everything, batch 1 and > 1, offsets that reach
outside the image and samples exactly on the border.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from ..deform import (
    conv_output_size,
    deform_conv2d,
    offsets_from_affine,
    regular_sampling_positions,
    unpack_offsets,
)
from .cases import tensor, uniform
from .equivalents import CONVOLUTION, DEFORM_CONV
from .catalog import exercise
from .questions import NOT_THIS_ONE, AnswerCompare
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
# 06.conv2d_by_sampling
# ---------------------------------------------------------------------------------------------------------------


def _conv_hidden(rng: np.random.Generator):  # larger, non-square, wider kernels and strides; a one-row input
    return _conv_cases(rng, [(2, 4, 3, 11, 6), (1, 3, 5, 9, 12), (3, 2, 2, 13, 8), (2, 2, 3, 1, 7)],
                       [*HIDDEN_GEOMETRIES, ((3, 3), (1, 2), (1, 2), (1, 2))])


def _conv_cases(rng: np.random.Generator, shapes=((1, 1, 1, 3, 3), (1, 2, 3, 5, 4), (2, 3, 2, 6, 7), (3, 2, 4, 7, 5),
                                                  (2, 1, 3, 8, 9)), geometries=GEOMETRIES):
    for i, ((n, c_in, c_out, h, w), geometry) in enumerate(zip(shapes, geometries)):
        kernel, stride, padding, dilation = geometry
        bias = tensor(rng, c_out) if i % 2 else None
        yield Case(f"input (N={n}, C_in={c_in}, H={h}, W={w}), weight ({c_out}, {c_in}, {kernel[0]}, {kernel[1]}), "
                   f"bias {'None' if bias is None else 'given'}, stride={stride}, padding={padding}, "
                   f"dilation={dilation}",
                   (tensor(rng, n, c_in, h, w), tensor(rng, c_out, c_in, *kernel), bias, stride, padding, dilation))


# where the taps read is the exercise: the package's positions are banned (the sampler is the lesson's tool)
register(exercise("06.conv2d_by_sampling", reference=F.conv2d, cases=_conv_cases, hidden_cases=_conv_hidden,
                  forbidden=(*CONVOLUTION, 'stn_course.deform.deform_conv2d', *DEFORM_CONV,
                             'stn_course.deform.regular_sampling_positions', 'stn_course.deform.sampling_positions',
                             'stn_course.deform.offsets_from_affine')))


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


RIGHT_NUMBERS_WRONG_CHANNELS = ("the right numbers, in the wrong channels (the check does not show which channel "
                                "should hold what: probe the layout again – which channel moves which tap, along "
                                "which axis?)")


@dataclass(frozen=True)
class LayoutCompare(AnswerCompare):
    """Compare offset tensors without giving torchvision's layout away: a wrong one gets "not this one" – or, when at
    every location it holds exactly the expected numbers in other channels, :data:`RIGHT_NUMBERS_WRONG_CHANNELS`.
    ``expected, actual: (N, 2·G·K, H_out, W_out)``"""

    def __call__(self, expected, actual, case):
        ok, error, message = super().__call__(expected, actual, case)
        if ok or message != NOT_THIS_ONE or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
            return ok, error, message
        want, got = expected.detach().sort(dim=1).values, actual.detach().to(expected.dtype).sort(dim=1).values
        if torch.allclose(got, want, rtol=self.rtol, atol=self.atol):
            return False, error, RIGHT_NUMBERS_WRONG_CHANNELS
        return False, error, message


# the layout is the learner's to find by probing (a wrong answer is never shown the values); the regular positions
# are the lesson's tool here (exercise 1 derived them), packing and the answer itself are banned
register(exercise("06.offsets_from_affine", reference=offsets_from_affine, cases=_affine_cases,
                  hidden_cases=_affine_hidden, compare=LayoutCompare(rtol=1e-9, atol=1e-9),
                  forbidden=('stn_course.deform.offsets_from_affine', 'stn_course.deform.pack_offsets')))

# ------------------------------------------------------------------------------------------------ questions
# 06.blocked_dilation (predict, then run): a checked answer, never shown


def _blocked_dilation_reference(kernel_size: int, dilation: int) -> torch.Tensor:
    """The offsets that make a k×k convolution (padding (k−1)/2) read like one with dilation ``d`` (padding
    d (k−1)/2) – the package's :func:`~stn_course.deform.regular_sampling_positions`, dilated minus plain – packed
    blocked, ``[dy_0 … dy_{K-1}, dx_0 … dx_{K-1}]``, and read back the way the layer does
    (:func:`~stn_course.deform.unpack_offsets`): ``-> (k·k, 2)`` float64 (dy, dx) per tap."""
    centre = (kernel_size - 1) // 2
    dilated = regular_sampling_positions(1, 1, kernel_size, 1, dilation * centre, dilation)[:, 0, 0]
    plain = regular_sampling_positions(1, 1, kernel_size, 1, centre, 1)[:, 0, 0]
    meant = (dilated - plain).double()  # (K, 2) as (dy, dx)
    blocked = torch.cat([meant[:, 0], meant[:, 1]]).view(1, -1, 1, 1)
    read_dy, read_dx = unpack_offsets(blocked, (kernel_size, kernel_size))
    return torch.stack([read_dy.flatten(), read_dx.flatten()], dim=1)


# the lesson's setting (3×3, d = 2) and one more, so that the figure's answer copied does not pass check()
def _blocked_dilation_cases(rng: np.random.Generator, setups=((3, 2), (5, 3))):
    for kernel_size, dilation in setups:
        yield Case(f"kernel_size={kernel_size}, dilation={dilation}", (kernel_size, dilation))


def _blocked_dilation_hidden(rng: np.random.Generator):  # larger kernels and dilations, d = 1 (no offsets), 1×1
    return _blocked_dilation_cases(rng, ((7, 2), (3, 4), (5, 1), (1, 5), (9, 3)))


# banned: the tools that would run the experiment instead of predicting it (positions, the layer's reading)
register(exercise("06.blocked_dilation", reference=_blocked_dilation_reference, cases=_blocked_dilation_cases,
                  hidden_cases=_blocked_dilation_hidden, compare=AnswerCompare(atol=1e-12),
                  forbidden=('stn_course.deform.regular_sampling_positions', 'stn_course.deform.sampling_positions',
                             'stn_course.deform.unpack_offsets', 'stn_course.deform.deform_conv2d',
                             'stn_course.deform.DeformConv2d', *DEFORM_CONV)))
