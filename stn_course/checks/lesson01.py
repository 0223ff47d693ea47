"""Checks for lesson 1 – affine transforms: matrices, composition, inverse mapping, pixel vs normalized coordinates.

Every reference is :mod:`stn_course.affine` (tested against ``F.affine_grid`` and hand-made matrices) or, for the
inverse warp, :func:`stn_course.warps.inverse_warp_nearest`. The lesson's exercises are capabilities whose formulas
the learner derives: ``rotation_matrix`` (asked as "clockwise on screen", so the y-up habit ``R(-a)`` gets its own
diagnosis, as do degrees), ``rotate_about`` (the motion turning an ``(H, W)`` image about its centre – the centre
included, where the half-pixel slip ``(W/2, H/2)`` and the reversed order get their own diagnosis), ``inverse_warp``
(applying the matrix included, so the package's ``affine.apply`` is banned there; forward mapping, truncation,
"add a half and truncate" – wrong just beyond the left and top borders – and clamping are diagnosed) and
``pixel_to_theta`` (the normalization of
both conventions included, 1-pixel sides first). The prediction ``turn_theta`` compares with
:class:`~stn_course.checks.questions.AnswerCompare`, which never prints the expected answer, and adds the kind of
slip: the sign, the centre, the aspect ratio or the convention. Where the exercise takes Python floats, a one-line
adapter hands them over as float64 tensors. Where the lesson's docstring names the dtype (``rotation_matrix``,
``rotate_about``: "float64") the dtype must match too; elsewhere matrices are compared in float64 values whatever
float dtype the learner returns (a float32 answer is fine to 1e-6). Shapes must match exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .. import affine
from ..warps import inverse_warp_nearest
from .cases import tensor
from .equivalents import GRID_SAMPLE, PACKAGE_SAMPLERS
from .questions import NOT_THIS_ONE, AnswerCompare
from .catalog import exercise
from .registry import Case, compare, register

MATRIX_TOL = 1e-6


def _compare_any_float(expected, actual, case: Case) -> tuple[bool, float, str]:
    """Like the default comparison, but a floating tensor of another dtype is cast before comparing values."""
    if isinstance(expected, torch.Tensor) and isinstance(actual, torch.Tensor) and actual.is_floating_point():
        actual = actual.to(expected.dtype)
    return compare(expected, actual, MATRIX_TOL, MATRIX_TOL)


def _compare_float64(expected, actual, case: Case) -> tuple[bool, float, str]:
    """The default comparison at :data:`MATRIX_TOL`: the dtype the docstring states (float64) included."""
    return compare(expected, actual, MATRIX_TOL, MATRIX_TOL)


def _f64(value: float) -> torch.Tensor:
    return torch.tensor(float(value), dtype=torch.float64)


def random_motion(rng: np.random.Generator, size: tuple[int, int] = (8, 8)) -> torch.Tensor:
    """A random pixel-space affine motion ``(3, 3)`` (float64): rotation, anisotropic scale, shear, translation."""
    h, w = size
    cx, cy = (w - 1) / 2, (h - 1) / 2
    return affine.compose(
        affine.translation(_f64(cx + rng.uniform(-0.3, 0.3) * w), _f64(cy + rng.uniform(-0.3, 0.3) * h)),
        affine.rotation(_f64(rng.uniform(-math.pi, math.pi))),
        affine.shear(_f64(rng.uniform(-0.4, 0.4))),
        affine.scaling(_f64(rng.uniform(0.6, 1.6)), _f64(rng.uniform(0.6, 1.6))),
        affine.translation(_f64(-cx), _f64(-cy)),
    )


# ---------------------------------------------------------------------------------------------------------------
# 01.rotation_matrix
# ---------------------------------------------------------------------------------------------------------------


def _rotation_reference(angle: float) -> torch.Tensor:
    return affine.rotation(_f64(angle))


def _rotation_cases(rng: np.random.Generator, fixed=(0.0, math.pi / 2, -math.pi / 3, math.pi), spread=2 * math.pi):
    for angle in fixed:
        yield Case(f"angle = {angle:.4f} rad", (angle,))
    for angle in rng.uniform(-spread, spread, 3):
        yield Case(f"random angle = {angle:.4f} rad", (float(angle),))


def _rotation_hidden(rng: np.random.Generator):  # beyond one turn, tiny, negative quarter turns
    return _rotation_cases(rng, fixed=(3 * math.pi / 2, -math.pi / 2, 1e-9, 7.0), spread=20.0)


def _rotation_diagnosis(actual: torch.Tensor, case: Case) -> str:
    """The kind of slip a wrong rotation shows – the y-up habit (turning the other way on screen) or degrees – in
    words, never a number of the expected matrix."""
    (angle,) = case.args
    slips = {
        "your matrix turns the picture counter-clockwise on screen: draw the axes as the screen shows them, y "
        "pointing down, and follow (1, 0) through a small clockwise turn": affine.rotation(_f64(-angle)),
        "your matrix reads the angle in degrees: the argument is in radians": affine.rotation(_f64(math.degrees(angle))),
    }
    found = [words for words, wrong in slips.items() if torch.allclose(actual, wrong, rtol=0, atol=MATRIX_TOL)]
    return "; ".join(found)


@dataclass(frozen=True)
class DiagnosedCompare:
    """:func:`compare` at :data:`MATRIX_TOL` (dtype included) for a ``(3, 3)`` matrix, with the kind of slip that
    ``diagnose(actual_float64, case)`` finds added to the message (never a value of the expected matrix)."""

    diagnose: Callable[[torch.Tensor, Case], str]

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = _compare_float64(expected, actual, case)
        if ok or not isinstance(actual, torch.Tensor) or actual.shape != (3, 3) or not actual.is_floating_point():
            return ok, error, message
        diagnosis = self.diagnose(actual.detach().to(torch.float64), case)
        return False, error, f"{message}; {diagnosis}" if diagnosis else message


register(exercise("01.rotation_matrix", reference=_rotation_reference, cases=_rotation_cases,
                  hidden_cases=_rotation_hidden, compare=DiagnosedCompare(_rotation_diagnosis),
                  forbidden=('stn_course.affine.rotation',)))

# ---------------------------------------------------------------------------------------------------------------
# 01.rotate_about – the motion that turns an image about its centre (the centre is the learner's to find)
# ---------------------------------------------------------------------------------------------------------------


def _rotate_about_reference(angle: float, size) -> torch.Tensor:
    """The package's rotation about the image centre ``((W - 1)/2, (H - 1)/2)``, midway between the end pixels."""
    height, width = size
    return affine.rotation_about(_f64(angle), _f64((width - 1) / 2), _f64((height - 1) / 2))


def _rotate_about_case(angle: float, size: tuple[int, int], what: str = "") -> Case:
    return Case(f"angle = {angle:.4f} rad, size (H, W) = {size}{what}", (float(angle), size))


def _rotate_about_diagnosis(actual: torch.Tensor, case: Case) -> str:
    """The kind of slip a wrong matrix shows – a centre half a pixel off, or the moves in the wrong order – in
    words, never a number of the expected matrix."""
    angle, (height, width) = case.args
    turn = affine.rotation(_f64(angle))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    slips = {
        "the centre is half a pixel off: test a corner pixel – a turn about the image's centre sends it onto another "
        "pixel. Where do an H×W image's pixels sit (§1), and which point lies midway between the end ones?":
            affine.rotation_about(_f64(angle), _f64(width / 2), _f64(height / 2)),
        "this matrix turns about the point -c, not c: which of your moves acts first on a point?":
            affine.compose(affine.translation(_f64(-cx), _f64(-cy)), turn, affine.translation(_f64(cx), _f64(cy))),
    }
    found = [words for words, wrong in slips.items() if torch.allclose(actual, wrong, rtol=0, atol=MATRIX_TOL)]
    return "; ".join(found)


def _rotate_about_cases(rng: np.random.Generator, sizes=((4, 4), (3, 5), (1, 1), (1, 6), (9, 4)), count=2):
    yield _rotate_about_case(math.pi / 2, sizes[0], " (a quarter turn: where does pixel (0, 0) go?)")
    yield _rotate_about_case(math.pi, sizes[1], " (a half turn)")
    yield _rotate_about_case(0.0, sizes[4], " (the identity)")
    for size in sizes[2:4]:
        yield _rotate_about_case(rng.uniform(-math.pi, math.pi), size)
    for _ in range(count):
        size = tuple(int(n) for n in rng.integers(2, 40, 2))
        yield _rotate_about_case(rng.uniform(-math.pi, math.pi), size)


def _rotate_about_hidden(rng: np.random.Generator):  # large, very wide, 1-pixel and 2-pixel sides, negative turns
    yield _rotate_about_case(-math.pi / 2, (28, 28))
    yield from _rotate_about_cases(rng, sizes=((2, 2), (480, 640), (1, 1000), (37, 1), (2, 3)), count=3)


register(exercise("01.rotate_about", reference=_rotate_about_reference, cases=_rotate_about_cases,
                  hidden_cases=_rotate_about_hidden, compare=DiagnosedCompare(_rotate_about_diagnosis),
                  forbidden=('stn_course.affine.rotation', 'stn_course.affine.rotation_about')))

# ---------------------------------------------------------------------------------------------------------------
# 01.pixel_to_theta
# ---------------------------------------------------------------------------------------------------------------


# A 1-pixel *output* side with align_corners=True: N_out is singular (scale 0), so inverting it fails; the
# denormalization x = (u + 1)(W - 1)/2 sends the only centre, u = 0, back to pixel 0 (lesson 1's text).
PIXEL_TO_THETA_SHAPES = [((1, 1), (1, 1), False), ((1, 5), (3, 3), True), ((1, 5), (3, 3), False),
                         ((4, 7), (4, 7), False), ((4, 7), (4, 7), True), ((9, 5), (6, 10), True),
                         ((16, 12), (1, 1), False), ((6, 9), (1, 4), True), ((5, 5), (1, 1), True)]


def _pixel_to_theta_cases(rng: np.random.Generator, shapes=PIXEL_TO_THETA_SHAPES, batches=(1, 3)):
    for in_size, out_size, align_corners in shapes:
        one_pixel = align_corners and 1 in out_size
        yield Case(f"matrix (3, 3), in_size {in_size}, out_size {out_size}, align_corners={align_corners}",
                   (random_motion(rng, in_size), in_size, out_size, align_corners),
                   hint=("a 1-pixel output side with align_corners=True: its only pixel is pixel 0 whatever u the grid "
                         "asks about – does your normalized -> pixel step say so, and does it exist there?"
                         if one_pixel else ""))
    yield Case("the identity matrix, in_size = out_size = (5, 8), align_corners=False",
               (torch.eye(3, dtype=torch.float64), (5, 8), (5, 8), False))
    for n in batches:
        yield Case(f"batch of {n} matrices ({n}, 3, 3), in_size (6, 9), out_size (7, 4), align_corners=True",
                   (torch.stack([random_motion(rng, (6, 9)) for _ in range(n)]), (6, 9), (7, 4), True))


def _pixel_to_theta_hidden(rng: np.random.Generator):  # 1-pixel input sides, tall and wide, a larger batch
    shapes = [((1, 9), (1, 9), True), ((7, 1), (2, 5), True), ((33, 17), (1, 20), True), ((40, 60), (24, 24), False),
              ((1, 1), (5, 3), True)]
    return _pixel_to_theta_cases(rng, shapes, batches=(6,))


register(exercise("01.pixel_to_theta", reference=affine.pixel_to_theta, cases=_pixel_to_theta_cases,
                  hidden_cases=_pixel_to_theta_hidden, compare=_compare_any_float,
                  forbidden=('stn_course.affine.pixel_to_theta',)))

# ---------------------------------------------------------------------------------------------------------------
# 01.inverse_warp
# ---------------------------------------------------------------------------------------------------------------


def _inverse_warp_cases(rng: np.random.Generator, shapes=((1, 1, 1, 5), (1, 3, 9, 5), (2, 2, 6, 11), (3, 1, 12, 12))):
    yield Case("1-pixel image (1, 1, 1, 1), the identity", (tensor(rng, 1, 1, 1, 1), torch.eye(3, dtype=torch.float64)))
    yield Case("image (1, 1, 4, 7), integer translation (2, -1)",
               (tensor(rng, 1, 1, 4, 7), affine.translation(_f64(2.0), _f64(-1.0))))
    for n, c, h, w in shapes:
        yield Case(f"image ({n}, {c}, {h}, {w}), random motion (rotation, scale, shear, translation)",
                   (tensor(rng, n, c, h, w), random_motion(rng, (h, w))))


def _inverse_warp_hidden(rng: np.random.Generator):  # one column, one row, larger and non-square, batch 4
    return _inverse_warp_cases(rng, shapes=((2, 3, 9, 1), (1, 1, 1, 17), (4, 2, 10, 13), (1, 1, 31, 23)))


def _slipped_warp(image: torch.Tensor, back: torch.Tensor, to_index, zeros_outside: bool = True) -> torch.Tensor:
    """A nearest-pixel pull through ``back`` (output pixel -> source, ``(3, 3)``) with the learner's possible slips
    switched in: ``to_index`` turns source coordinates into indices, ``zeros_outside=False`` clamps instead."""
    n, c, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    sources = torch.stack([xs, ys, torch.ones_like(xs)], -1) @ back.T
    sx, sy = to_index(sources[..., 0]).long(), to_index(sources[..., 1]).long()
    values = image[..., sy.clamp(0, h - 1), sx.clamp(0, w - 1)]
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    return values * inside.to(image.dtype) if zeros_outside else values


# The slips of an inverse warp, each in words that point at a kink to test, never at a value.
_INVERSE_WARP_SLIPS = {
    "the content moves the opposite way to the motion: does a shift right by 2 pixels move your picture right?":
        lambda image, back: _slipped_warp(image, torch.linalg.inv(back), torch.round),
    "many pixels read a neighbour of their nearest source pixel: which index does your code give a source at "
    "x = 2.7?": lambda image, back: _slipped_warp(image, back, lambda t: t),
    "only pixels whose source lies less than a pixel beyond the left or top border differ: which pixel is nearest "
    "to a source at x = -0.6, and which index does your code give it?":
        lambda image, back: _slipped_warp(image, back, lambda t: t + 0.5),
    "pixels whose nearest source pixel lies outside the image must read 0":
        lambda image, back: _slipped_warp(image, back, torch.round, zeros_outside=False),
}


def _inverse_warp_diagnosis(actual: torch.Tensor, case: Case) -> str:
    image, motion = case.args
    back = torch.linalg.inv(motion.to(torch.float64))
    found = [words for words, slip in _INVERSE_WARP_SLIPS.items()
             if torch.allclose(actual, slip(image, back).to(actual.dtype), rtol=0, atol=1e-12)]
    return "; ".join(found)


@dataclass(frozen=True)
class InverseWarpCompare:
    """The default comparison (exactly: every output pixel reads one input pixel), with the kind of slip added."""

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = compare(expected, actual, 1e-12, 1e-12)
        if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape or actual.dtype != expected.dtype:
            return ok, error, message
        diagnosis = _inverse_warp_diagnosis(actual.detach(), case)
        return False, error, f"{message}; {diagnosis}" if diagnosis else message


register(exercise("01.inverse_warp", reference=inverse_warp_nearest, cases=_inverse_warp_cases,
                  hidden_cases=_inverse_warp_hidden, compare=InverseWarpCompare(), forbidden=('stn_course.warps.inverse_warp_nearest',
                  'stn_course.affine.apply',
                  'stn_course.sampling.nearest_sample', 'stn_course.sampling.grid_sample', *PACKAGE_SAMPLERS,
                  *GRID_SAMPLE)))

# ---------------------------------------------------------------------------------------------------------------
# 01.turn_theta – predict, then run: theta of a quarter turn on a non-square image (a question)
# ---------------------------------------------------------------------------------------------------------------


def _turn_theta_reference(height: int, width: int, align_corners: bool) -> torch.Tensor:
    """``theta`` ``(2, 3)`` float64 showing the content turned by +90° about the image centre: the package's
    :func:`~stn_course.affine.pixel_to_theta` of the inverse of :func:`~stn_course.affine.rotation_about`."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    motion = affine.rotation_about(_f64(math.pi / 2), _f64(cx), _f64(cy))
    return affine.pixel_to_theta(affine.invert(motion), (height, width), align_corners=align_corners)


def _quarter_turn_theta(lengths: tuple[float, float], sign: float = 1.0) -> torch.Tensor:
    """``[[0, sign·H'/W', 0], [-sign·W'/H', 0, 0]]`` for the pixel lengths ``(H', W')`` that span [-1, 1]."""
    hp, wp = lengths
    return torch.tensor([[0.0, sign * hp / wp, 0.0], [-sign * wp / hp, 0.0, 0.0]], dtype=torch.float64)


def _near(a: torch.Tensor, b: torch.Tensor, atol: float) -> bool:
    return bool((a - b).abs().max() <= atol)


def _turn_theta_diagnosis(actual: torch.Tensor, case: Case, atol: float) -> str:
    """What kind of slip a wrong quarter-turn theta shows – the sign, the centre, the aspect ratio or the
    convention – without a number of the expected answer."""
    height, width, align_corners = case.args
    theta = actual.detach().to(torch.float64).reshape(2, 3)
    lengths = (height - 1, width - 1) if align_corners else (height, width)
    other = (height, width) if align_corners else (height - 1, width - 1)
    found = []
    if theta[:, 2].abs().max() > atol:
        found.append("look at the last column: where does the image centre sit in normalized coordinates, and "
                     "where does a turn about it send it?")
    linear = theta[:, :2]
    for sign in (1.0, -1.0):  # the sizes wrong, whichever way it turns
        if height != width and _near(linear, _quarter_turn_theta(other, sign)[:, :2], atol):
            found.append("the ratios belong to the other align_corners convention: how many pixel lengths span "
                         "[-1, 1] in this one?")
        if height != width and _near(linear, _quarter_turn_theta((1.0, 1.0), sign)[:, :2], atol):
            found.append("the off-diagonal entries ignore the shape of the image: x and y are normalized by "
                         "different lengths (lesson 1, §5)")
        if height != width and _near(linear, _quarter_turn_theta(lengths[::-1], sign)[:, :2], atol):
            found.append("the aspect ratio is upside down: follow one normalized output point into pixels, turn it, "
                         "and normalize it along the other axis")
    if linear[0, 1] < -atol and linear[1, 0] > atol:
        found.append("your theta turns the content the other way: theta sends each output pixel to the point it "
                     "reads, the inverse of the motion you see")
    if linear[0, 0].abs() > atol or linear[1, 1].abs() > atol:
        found.append("a quarter turn leaves nothing on the diagonal")
    return "; ".join(found)


@dataclass(frozen=True)
class TurnThetaCompare:
    """:class:`AnswerCompare` for ``01.turn_theta``, with the kind of slip added to "not this one" (never a value)."""

    atol: float = 1e-9

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = AnswerCompare(atol=self.atol)(expected, actual, case)
        if ok or message != NOT_THIS_ONE or not isinstance(actual, torch.Tensor) or actual.numel() != 6:
            return ok, error, message
        diagnosis = _turn_theta_diagnosis(actual, case, self.atol)
        return False, error, f"{NOT_THIS_ONE}; {diagnosis}" if diagnosis else message


def _turn_theta_cases(rng: np.random.Generator, sizes=((64, 55), (4, 8)), count=1):
    for height, width in sizes:
        for align_corners in (False, True):
            yield Case(f"a {height}×{width} image (H×W), align_corners={align_corners}",
                       (height, width, align_corners))
    for _ in range(count):
        height, width = (int(n) for n in rng.integers(2, 300, 2))
        align_corners = bool(rng.integers(2))
        yield Case(f"a {height}×{width} image (H×W), align_corners={align_corners}", (height, width, align_corners))


def _turn_theta_hidden(rng: np.random.Generator):  # a square, 2-pixel sides, tall and very wide images
    return _turn_theta_cases(rng, sizes=((9, 9), (2, 5), (100, 3), (7, 1000)), count=2)


register(exercise("01.turn_theta", reference=_turn_theta_reference, cases=_turn_theta_cases,
                  hidden_cases=_turn_theta_hidden, compare=TurnThetaCompare(),
                  forbidden=('stn_course.affine.pixel_to_theta', 'stn_course.affine.rotation_about')))
