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
from .comparison import compare
from .equivalents import AUTOGRAD, CONVOLUTION, DEFORM_CONV, GRID_SAMPLE, PACKAGE_SAMPLERS
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
    yield from _deform_kink_cases(rng, [(1, 6, 2, 5, 8, 3, True)], [((2, 3), (2, 1), (2, 0), (2, 1))])  # padded rows: −2, 0, 2 …
    yield from _deform_cases(rng, [(2, 4, 4, 9, 7, 4, True), (1, 6, 2, 12, 10, 2, False), (3, 2, 3, 11, 13, 1, True)],
                             HIDDEN_GEOMETRIES)


def _deform_kink_cases(rng: np.random.Generator, shapes=((2, 4, 3, 6, 7, 2, True),),
                       geometries=(((3, 3), (1, 1), (0, 0), (1, 1)),)):
    """A fresh layer's offsets (0) and whole-pixel ones: every sample exactly on a pixel centre – the kinks of the
    bilinear weights – some of them outside the image (rows and columns −3, −2, H, H + 1; never −1, where
    torchvision's kernel takes the other one-sided derivative), the gradients compared with torch's convention."""
    for n, c_in, c_out, h, w, og, with_mask in shapes:
        for geometry in geometries:
            kernel = geometry[0]
            h_out, w_out = _out_size(h, w, geometry)
            k = kernel[0] * kernel[1]
            regular = regular_sampling_positions(h_out, w_out, *geometry).double()  # (K, H_out, W_out, 2)
            if bool((regular == -1).any()):
                raise ValueError("a kink case must not put a zero offset on row or column -1")
            targets = []
            for axis, size in ((0, h), (1, w)):
                allowed = torch.tensor([-3, -2, *range(size), size, size + 1], dtype=torch.float64)
                pick = allowed[torch.from_numpy(rng.integers(0, len(allowed), (n, og, k, h_out, w_out)))]
                keep = torch.from_numpy(rng.random((n, og, k, h_out, w_out)) < 0.4)  # a fresh layer's zero offsets
                targets.append(torch.where(keep, regular[..., axis], pick) - regular[..., axis])
            offset = torch.stack(targets, dim=3).flatten(1, 3)  # (N, G·K·2, H_out, W_out), (dy, dx) per tap
            mask = uniform(rng, n, og * k, h_out, w_out, low=0.0, high=1.0) if with_mask else None
            yield Case(f"input (N={n}, C_in={c_in}, H={h}, W={w}), weight ({c_out}, {c_in}, {kernel[0]}, {kernel[1]}), "
                       f"offset_groups={og}, mask {'given' if with_mask else 'None'}, stride={geometry[1]}, "
                       f"padding={geometry[2]}, dilation={geometry[3]}, offsets of whole pixels, 40 % of them 0 (a "
                       "fresh layer): every sample on a pixel centre, some outside the image",
                       (tensor(rng, n, c_in, h, w), offset, tensor(rng, c_out, c_in, *kernel), None),
                       {**_geometry_kwargs(geometry), "mask": mask}, kink=True,
                       hint="Every sample of this case sits exactly on a pixel centre – where a fresh layer's zero "
                            "offsets put them. The values match; the gradient w.r.t. the offsets must be torch's "
                            "(lesson 4: the derivative towards the upper neighbour, floor(y) + 1), finite, and 0 "
                            "outside the image. Does anything in your function have no derivative at an offset of "
                            "exactly 0 (abs, sqrt, division by the offset)? And sample in pixel coordinates "
                            "(bilinear_sample_pixels): through F.grid_sample's normalized coordinates a whole pixel can "
                            "come back a hair below the integer, where the derivative is the one from below.")


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
    if shapes is DEFORM_SHAPES:
        yield from _deform_kink_cases(rng)


_reference_deform_conv2d = partial(deform_conv2d, impl="reference")


def _groups_strided(input, offset, weight, bias=None, mask=None, **geometry):
    """The reference, fed so that it computes what a layer does whose offset group g moves the input channels
    c ≡ g (mod G) – every G-th channel – instead of a contiguous block (the same permutation of input channels and
    weight columns)."""
    groups, c_in = offset.shape[1] // (2 * weight.shape[-2] * weight.shape[-1]), input.shape[1]
    order = [c for g in range(groups) for c in range(c_in) if c % groups == g]
    return _reference_deform_conv2d(input[:, order], offset, weight[:, order], bias, mask=mask, **geometry)


def _mask_tap_major(input, offset, weight, bias=None, mask=None, **geometry):
    """The reference with the mask's channels read tap-major, k·G + g, instead of group-major."""
    k, groups = weight.shape[-2] * weight.shape[-1], mask.shape[1] // (weight.shape[-2] * weight.shape[-1])
    n, _, h_out, w_out = mask.shape
    swapped = mask.reshape(n, k, groups, h_out, w_out).transpose(1, 2).reshape(mask.shape)
    return _reference_deform_conv2d(input, offset, weight, bias, mask=swapped, **geometry)


def _offsets_permuted(layout: str):
    def fed(input, offset, weight, bias=None, mask=None, **geometry):
        n, _, h_out, w_out = offset.shape
        k = weight.shape[-2] * weight.shape[-1]
        per_group = offset.reshape(n, -1, 2 * k, h_out, w_out)
        if layout == "dx first":
            read = per_group.reshape(n, -1, k, 2, h_out, w_out).flip(3)
        else:  # blocked: the layer's (dy, dx) of tap k are the learner's channels k and K + k
            read = per_group.reshape(n, -1, 2, k, h_out, w_out).transpose(2, 3)
        return _reference_deform_conv2d(input, read.reshape(offset.shape), weight, bias, mask=mask, **geometry)
    return fed


DEFORM_SLIPS = (
    ("groups", _groups_strided,
     "with several offset groups, each group's offsets move the wrong input channels: which input channels share "
     "one group's offsets? Probe the package's layer (a 1×1 kernel, weights that pick one input channel, one "
     "group's offsets moved by a whole pixel)"),
    ("mask", _mask_tap_major,
     "the mask weights the wrong samples: which mask channel belongs to which tap of which offset group? Probe the "
     "package's layer (a mask of ones with one channel set to 0)"),
    ("offsets", _offsets_permuted("dx first"),
     "your offsets move the taps along the other axis: exercise 2's layout, (dy, dx) or (dx, dy)?"),
    ("offsets", _offsets_permuted("blocked"),
     "your offsets are read blocked – exercise 2's layout, interleaved or blocked?"),
    ("mask", lambda *args, mask=None, **kwargs: _reference_deform_conv2d(*args, **kwargs),
     "your result is the layer's without the mask: DCNv2's modulation multiplies every sample"),
)


@dataclass(frozen=True)
class DeformCompare:
    """The default comparison, then, for a wrong result, the kind of slip: the reference fed a permuted input,
    mask or offsets (:data:`DEFORM_SLIPS`) reproduces it – a layout slip is named, never the values."""

    rtol: float = 1e-9
    atol: float = 1e-9

    def __call__(self, expected, actual, case):
        ok, error, message = compare(expected, actual, self.rtol, self.atol)
        if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
            return ok, error, message
        input, offset, weight, bias = case.args
        geometry = {key: case.kwargs[key] for key in ("stride", "padding", "dilation")}
        mask = case.kwargs.get("mask")
        groups = offset.shape[1] // (2 * weight.shape[-2] * weight.shape[-1])
        for needs, fed, diagnosis in DEFORM_SLIPS:
            if (needs == "groups" and groups == 1) or (needs == "mask" and mask is None):
                continue
            with torch.no_grad():
                slipped = fed(input, offset, weight, bias, mask=mask, **geometry)
            if compare(slipped, actual.detach().to(slipped.dtype), self.rtol, self.atol)[0]:
                return False, error, diagnosis
        return ok, error, message


# the channels a group's offsets move and the mask's order are the learner's to find by probing the package's layer
# (outside the function); calling it, or torchvision's, inside is banned
register(exercise("06.deform_conv2d", reference=_reference_deform_conv2d, cases=_deform_cases,
                  hidden_cases=_deform_hidden, compare=DeformCompare(rtol=1e-9, atol=1e-9),
                  forbidden=('stn_course.deform.deform_conv2d', 'stn_course.deform.DeformConv2d', *DEFORM_CONV)))


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


def _blocked_dilation_meant(kernel_size: int, dilation: int) -> torch.Tensor:
    """The offsets that make a k×k convolution (padding (k−1)/2) read like one with dilation ``d`` (padding
    d (k−1)/2) – the package's :func:`~stn_course.deform.regular_sampling_positions`, dilated minus plain:
    ``-> (k·k, 2)`` float64 (dy, dx) per tap."""
    centre = (kernel_size - 1) // 2
    dilated = regular_sampling_positions(1, 1, kernel_size, 1, dilation * centre, dilation)[:, 0, 0]
    plain = regular_sampling_positions(1, 1, kernel_size, 1, centre, 1)[:, 0, 0]
    return (dilated - plain).double()


def _read_blocked(meant: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """``meant (K, 2)`` packed blocked, ``[dy_0 … dy_{K-1}, dx_0 … dx_{K-1}]``, read back the way the layer does
    (:func:`~stn_course.deform.unpack_offsets`) ``-> (K, 2)``."""
    blocked = torch.cat([meant[:, 0], meant[:, 1]]).view(1, -1, 1, 1)
    read_dy, read_dx = unpack_offsets(blocked, (kernel_size, kernel_size))
    return torch.stack([read_dy.flatten(), read_dx.flatten()], dim=1)


def _blocked_dilation_reference(kernel_size: int, dilation: int) -> tuple[torch.Tensor, list[int]]:
    """What each tap applies when the dilation's offsets are packed blocked, and the taps that still read where they
    should: ``-> ((k·k, 2) float64 (dy, dx) per tap, [tap indices, increasing])``."""
    meant = _blocked_dilation_meant(kernel_size, dilation)
    applied = _read_blocked(meant, kernel_size)
    return applied, (applied == meant).all(1).nonzero().flatten().tolist()


def _taps(value) -> list[int] | None:
    """A learner's list of taps (list, tuple, set, 1-D tensor or array of whole numbers) as a sorted list; ``None``
    when it is not one."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.ndim > 1:
            return None
        value = value.tolist()
    if not isinstance(value, (list, tuple, set)):
        return None
    out = []
    for v in value:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)) or float(v) != int(v):
            return None
        out.append(int(v))
    return sorted(out)


BLOCKED_FORM = ("expected a pair (displacements, taps): a (k·k, 2) float64 tensor of the (dy, dx) each tap applies, "
                "and a list of the indices (row-major, from 0) of the taps that still read where they should")


@dataclass(frozen=True)
class BlockedDilationCompare(AnswerCompare):
    """Compare ``(applied (K, 2), taps)`` without showing either: a wrong part gets "not this one", with the kind of
    slip named when it is a typical one (the offsets meant as if the layout were right, d (i − c), dx first; taps
    counted from 1, taps that stay put, taps right in one coordinate only)."""

    def __call__(self, expected, actual, case):
        want_applied, want_taps = expected
        if not isinstance(actual, (tuple, list)) or len(actual) != 2:
            return False, float("inf"), BLOCKED_FORM
        ok, error, message = super().__call__(want_applied, actual[0], case)
        if not ok:
            if message != NOT_THIS_ONE:
                return False, error, f"the displacements: {message}"
            got = actual[0].detach().double()
            k, d = case.args
            meant = _blocked_dilation_meant(k, d)
            slips = [
                (meant, "the displacements the colleague meant, as if the layout were right: what does the layer "
                        "make of a blocked tensor? Hand its channels out two by two"),
                (_read_blocked(meant * d / (d - 1), k) if d > 1 else None,
                 "the offsets meant come out d·(i − c): where does tap (i, j) of the PLAIN layer already read?"),
                (_read_blocked(meant.flip(1), k), "a tap's two channels read as (dx, dy): which comes first, "
                                                  "the row or the column?"),
                (meant.flip(1), "each tap's pair swapped: (dy, dx) rows, please"),
            ]
            for slip, diagnosis in slips:
                if slip is not None and torch.allclose(got, slip, rtol=0, atol=1e-9):
                    return False, error, f"the displacements: {NOT_THIS_ONE}; {diagnosis}"
            return False, error, f"the displacements: {NOT_THIS_ONE}"
        taps = _taps(actual[1])
        if taps is None:
            return False, float("inf"), f"the taps: {BLOCKED_FORM}"
        if taps == want_taps:
            return True, 0.0, ""
        applied = want_applied
        meant = _blocked_dilation_meant(*case.args)
        slips = [
            ([t + 1 for t in want_taps], "taps count from 0, row-major: tap k = i·k + j"),
            ((applied == meant).any(1).nonzero().flatten().tolist(),
             "a tap reads the right place only when BOTH its dy and its dx are the ones meant"),
            ((applied == 0).all(1).nonzero().flatten().tolist(),
             "a tap reads right when it applies the displacement meant for it – not when it stays put"),
        ]
        for slip, diagnosis in slips:
            if taps == slip:
                return False, 1.0, f"the displacements are right; the taps: {NOT_THIS_ONE}; {diagnosis}"
        return False, 1.0, (f"the displacements are right; the taps: {NOT_THIS_ONE}; compare every tap's two numbers "
                            "with the two meant for it – all of them, in both halves of the blocked tensor")


# the lesson's setting (3×3, d = 2) and one more, so that the figure's answer copied does not pass check()
def _blocked_dilation_cases(rng: np.random.Generator, setups=((3, 2), (5, 3))):
    for kernel_size, dilation in setups:
        yield Case(f"kernel_size={kernel_size}, dilation={dilation}", (kernel_size, dilation))


def _blocked_dilation_hidden(rng: np.random.Generator):  # larger kernels and dilations, d = 1 (no offsets), 1×1
    return _blocked_dilation_cases(rng, ((7, 2), (3, 4), (5, 1), (1, 5), (9, 3)))


# banned: the tools that would run the experiment instead of predicting it (positions, the layer's reading)
register(exercise("06.blocked_dilation", reference=_blocked_dilation_reference, cases=_blocked_dilation_cases,
                  hidden_cases=_blocked_dilation_hidden, compare=BlockedDilationCompare(atol=1e-12),
                  forbidden=('stn_course.deform.regular_sampling_positions', 'stn_course.deform.sampling_positions',
                             'stn_course.deform.unpack_offsets', 'stn_course.deform.deform_conv2d',
                             'stn_course.deform.DeformConv2d', *DEFORM_CONV)))

# ------------------------------------------------------------------------------------------------ questions
# 06.fresh_offset_gradient (predict, before the layer that would compute it): a checked answer, never shown


def _fresh_gradient_reference(image: torch.Tensor) -> torch.Tensor:
    """What autograd gives a fresh 1×1 deformable layer (weight 1, stride 1, no padding, one offset group, offsets
    exactly 0: every sample on its own pixel centre) – the package's layer (``impl="reference"``, pixel coordinates,
    torchvision's convention), differentiated: the gradient of ``out.sum()`` w.r.t. the offset.
    ``image: (H, W)`` ``-> (2, H, W)``: ``[0]`` w.r.t. the dy channel, ``[1]`` w.r.t. the dx channel."""
    h, w = image.shape
    offset = torch.zeros(1, 2, h, w, dtype=image.dtype, requires_grad=True)
    with torch.enable_grad():
        out = deform_conv2d(image.detach()[None, None], offset, torch.ones(1, 1, 1, 1, dtype=image.dtype),
                            impl="reference")
        (grad,) = torch.autograd.grad(out.sum(), offset)
    return grad[0]


def _fresh_gradient_cases(rng: np.random.Generator, sizes=((3, 4, torch.float64), (5, 6, torch.float64))):
    for h, w, dtype in sizes:
        yield Case(f"image (H={h}, W={w}), {str(dtype).replace('torch.', '')}", (tensor(rng, h, w, dtype=dtype),),
                   kink=True)


def _fresh_gradient_hidden(rng: np.random.Generator):  # 1-pixel sides (every pixel on the border), float32
    return _fresh_gradient_cases(rng, ((1, 1, torch.float64), (1, 5, torch.float64), (4, 1, torch.float64),
                                       (7, 6, torch.float32), (2, 9, torch.float32)))


def _shifted(v: torch.Tensor, step: int, dim: int) -> torch.Tensor:
    """``v`` read one pixel further along ``dim`` (``step`` = +1: the next row/column; −1: the previous one), 0 where
    that reads outside the image."""
    out = torch.zeros_like(v)
    n = v.shape[dim]
    if n > 1:
        if step > 0:
            out.narrow(dim, 0, n - 1).copy_(v.narrow(dim, 1, n - 1))
        else:
            out.narrow(dim, 1, n - 1).copy_(v.narrow(dim, 0, n - 1))
    return out


def _inside(v: torch.Tensor) -> torch.Tensor:
    """Where the next row (for ``[0]``) and the next column (for ``[1]``) still lie inside the image: ``(2, H, W)``."""
    h, w = v.shape
    rows = (torch.arange(h) < h - 1)[:, None].expand(h, w)
    cols = (torch.arange(w) < w - 1)[None, :].expand(h, w)
    return torch.stack([rows, cols])


def _fresh_gradient_slips(v: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """The natural wrong answers for an image ``v (H, W)`` -> ``[(diagnosis, (2, H, W))]``, the first match named."""
    forward = torch.stack([_shifted(v, 1, 0) - v, _shifted(v, 1, 1) - v])
    backward = torch.stack([v - _shifted(v, -1, 0), v - _shifted(v, -1, 1)])
    central = torch.stack([(_shifted(v, 1, 0) - _shifted(v, -1, 0)) / 2, (_shifted(v, 1, 1) - _shifted(v, -1, 1)) / 2])
    kink = ("at a whole pixel autograd does not average two sides; what is floor(y) when y is an integer, which two "
            "rows get the weights 1 and 0, and which weight's derivative is not 0?")
    gradient = (torch.stack(torch.gradient(v, dim=(0, 1))) if min(v.shape) > 1 else central)  # numpy's habit
    return [
        ("0 everywhere: the kink does not make the gradient 0 (or undefined) – " + kink, torch.zeros_like(forward)),
        ("a central difference – " + kink, central),
        ("a central difference (torch.gradient's) – " + kink, gradient),
        ("the slope from the row above (column to the left) – the derivative from below; " + kink, backward),
        ("the right magnitude with the wrong sign: as dy grows, the sample moves towards which row?", -forward),
        ("your [0] and [1] are swapped: [0] is the gradient w.r.t. dy, the row offset", forward.flip(0)),
    ]


@dataclass(frozen=True)
class FreshGradientCompare(AnswerCompare):
    """:class:`AnswerCompare` (the answer is never shown), with the kind of slip named: a central or backward
    difference, 0, the sign, dy/dx swapped – or right everywhere but where the neighbour lies outside the image."""

    def __call__(self, expected, actual, case):
        ok, error, message = super().__call__(expected, actual, case)
        if ok or message != NOT_THIS_ONE or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
            return ok, error, message
        got = actual.detach().to(torch.float64)
        want = expected.detach().to(torch.float64)
        close = lambda a, b: torch.allclose(a, b, rtol=max(self.rtol, 1e-6), atol=max(self.atol, 1e-6))  # noqa: E731
        inside = _inside(case.args[0])
        for diagnosis, slip in _fresh_gradient_slips(case.args[0].to(torch.float64)) if inside.any() else ():
            if close(got, slip):
                return False, error, f"{message}; {diagnosis}"
        if close(got[inside], want[inside]):  # a 1×1 image has no inside: every pixel is on the last row and column
            return False, error, (f"{message}; right wherever the next row/column lies inside the image, wrong on the "
                                  "last row or column: there the neighbour the derivative reaches for is outside – "
                                  "what does the sampler read there, and does it leave the formula?")
        return False, error, message


# banned: everything that would run the experiment instead of predicting it (the samplers, the layers, autograd)
register(exercise("06.fresh_offset_gradient", reference=_fresh_gradient_reference, cases=_fresh_gradient_cases,
                  hidden_cases=_fresh_gradient_hidden, compare=FreshGradientCompare(rtol=1e-6, atol=1e-6),
                  forbidden=('stn_course.deform.bilinear_sample_pixels', 'stn_course.deform.deform_conv2d',
                             'stn_course.deform.DeformConv2d', *PACKAGE_SAMPLERS, *GRID_SAMPLE, *DEFORM_CONV,
                             *AUTOGRAD)))
