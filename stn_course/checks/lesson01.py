"""Checks for lesson 1 – affine transforms: matrices, composition, inverse mapping, pixel vs normalized coordinates.

Every reference is :mod:`stn_course.affine` (tested against ``F.affine_grid`` and hand-made matrices) or, for the
inverse warp, :func:`stn_course.warps.inverse_warp_nearest`. The lesson's exercises are capabilities whose formulas
the learner derives: ``rotation_matrix`` (its sense read off a figure of the package's rotation – clockwise on
screen – so the y-up habit ``R(-a)`` gets its own diagnosis, as do degrees), ``rotate_about`` (the motion turning an
``(H, W)`` image about its centre – the centre included, where the half-pixel slip ``(W/2, H/2)``, the centre's axes
swapped and the reversed order get their own diagnosis), ``inverse_warp`` (applying the matrix included, so the
package's ``affine.apply`` is banned there; forward mapping, truncation, "add a half and truncate" – wrong just beyond
the left and top borders – and clamping are diagnosed) and ``pixel_to_theta`` (the normalization of
both conventions included, 1-pixel sides first; compared by where ``F.affine_grid`` + ``F.grid_sample`` read with the
theta, in input pixels, so the part of theta the sampler ignores – a 1-pixel input side's row with
``align_corners=True`` – may be anything finite; a non-finite theta and the other convention are diagnosed). The prediction ``turn_theta`` compares with
:class:`~stn_course.checks.questions.AnswerCompare`, which never prints the expected answer, and adds the kind of
slip: the sign, the centre, the aspect ratio or the convention; so does the prediction ``chain_thetas`` (the one
theta of two warps in a row), whose diagnosis names the order of the motions (the natural first answer), the motion
instead of the theta, and a translation lost or merely added. ``rotate_about`` also tells, for a turn by a multiple
of 90°, where the learner's own matrix sends the corner pixel when that is no pixel of the image. Where the exercise takes Python floats, a one-line
adapter hands them over as float64 tensors. Where the lesson's docstring names the dtype (``rotation_matrix``,
``rotate_about``: "float64") the dtype must match too; elsewhere matrices are compared in float64 values whatever
float dtype the learner returns (a float32 answer is fine to 1e-6). Shapes must match exactly.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import affine
from ..sampling import unnormalize
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
        "your matrix turns the picture counter-clockwise on screen – the other way from the package's +20° in the "
        "figure of §1: draw the axes as the screen shows them, y pointing down, and follow (1, 0) through a small "
        "turn the way the F turned": affine.rotation(_f64(-angle)),
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
    if height != width:  # size is (H, W): x runs along the width
        slips["the centre's x and y are swapped: size is (H, W), and x runs along a row – the width"] = \
            affine.rotation_about(_f64(angle), _f64(cy), _f64(cx))
    found = [words for words, wrong in slips.items() if torch.allclose(actual, wrong, rtol=0, atol=MATRIX_TOL)]
    corner = _corner_off_the_pixels(actual, angle, height, width)
    return "; ".join(found + ([corner] if corner else []))


def _corner_off_the_pixels(actual: torch.Tensor, angle: float, height: int, width: int) -> str:
    """For a turn by a multiple of 90°: where the learner's matrix sends the corner pixel (0, 0), when that is not a
    pixel of the image – the learner's own number, which a turn about the centre can never give (nothing of the
    expected matrix)."""
    quarters = angle / (math.pi / 2)
    if abs(quarters - round(quarters)) > 1e-9:
        return ""
    x, y = (actual[:2, 2]).tolist()  # where (0, 0) goes: the last column
    on_a_pixel = (abs(x - round(x)) < 1e-6 and abs(y - round(y)) < 1e-6
                  and 0 <= round(x) < width and 0 <= round(y) < height)
    if on_a_pixel:
        return ""
    return (f"your matrix sends the corner pixel (0, 0) to ({x:.4g}, {y:.4g}), which is not a pixel of this "
            f"{height}×{width} image – but a turn by a multiple of 90° about the image's centre sends every pixel "
            "onto a pixel")


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

ONE_PIXEL_INPUT_HINT = ("a 1-pixel input side with align_corners=True: which pixel does F.grid_sample read along that "
                        "side when the grid asks for u = -1, 0 or 0.7 (§5)? Then, which row of theta would read it?")
ONE_PIXEL_OUTPUT_HINT = ("a 1-pixel output side with align_corners=True: its only pixel is pixel 0 whatever u the grid "
                         "asks about – does your normalized -> pixel step say so, and does it exist there?")


def _pixel_to_theta_cases(rng: np.random.Generator, shapes=PIXEL_TO_THETA_SHAPES, batches=(1, 3)):
    for in_size, out_size, align_corners in shapes:
        hints = [ONE_PIXEL_OUTPUT_HINT] if align_corners and 1 in out_size else []
        hints += [ONE_PIXEL_INPUT_HINT] if align_corners and 1 in in_size else []
        yield Case(f"matrix (3, 3), in_size {in_size}, out_size {out_size}, align_corners={align_corners}",
                   (random_motion(rng, in_size), in_size, out_size, align_corners), hint="; ".join(hints))
    yield Case("the identity matrix, in_size = out_size = (5, 8), align_corners=False",
               (torch.eye(3, dtype=torch.float64), (5, 8), (5, 8), False))
    for n in batches:
        yield Case(f"batch of {n} matrices ({n}, 3, 3), in_size (6, 9), out_size (7, 4), align_corners=True",
                   (torch.stack([random_motion(rng, (6, 9)) for _ in range(n)]), (6, 9), (7, 4), True))


def _pixel_to_theta_hidden(rng: np.random.Generator):  # 1-pixel input sides, tall and wide, a larger batch
    shapes = [((1, 9), (1, 9), True), ((7, 1), (2, 5), True), ((33, 17), (1, 20), True), ((40, 60), (24, 24), False),
              ((1, 1), (5, 3), True), ((1, 6), (3, 1), False)]
    return _pixel_to_theta_cases(rng, shapes, batches=(6,))


def theta_reads(theta: torch.Tensor, in_size, out_size, align_corners: bool) -> torch.Tensor:
    """Where ``F.affine_grid`` + ``F.grid_sample`` read with ``theta`` ``(…, 2, 3)``, in input pixels (x, y), at the
    output pixel centres: ``(…, H_out, W_out, 2)``, float64. torch makes the grid; the package's
    :func:`~stn_course.sampling.unnormalize` (grid_sample's own first step) takes it to input pixels – along a
    1-pixel input side with ``align_corners=True`` that is pixel 0 whatever ``u``. (torch's UserWarning about
    unit-size grids with ``align_corners=True`` is expected for a 1-pixel output side and silenced here.)"""
    batch = theta.detach().to(torch.float64).reshape(-1, 2, 3)
    (h_in, w_in), (h_out, w_out) = in_size, out_size
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unit-size grids.*")
        grid = F.affine_grid(batch, [batch.shape[0], 1, h_out, w_out], align_corners=align_corners)
    reads = torch.stack([unnormalize(grid[..., 0], w_in, align_corners),
                         unnormalize(grid[..., 1], h_in, align_corners)], -1)
    return reads.reshape(*theta.shape[:-2], h_out, w_out, 2)


@dataclass(frozen=True)
class PixelToThetaCompare:
    """Compares what matters about a theta: where ``F.affine_grid`` + ``F.grid_sample`` read with it, in input
    pixels, at every output pixel centre (:func:`theta_reads`). Where the sampler reads the same whatever a part of
    theta says – a 1-pixel input side with ``align_corners=True`` (pixel 0 for every u), a 1-pixel output side (its
    only centre is u = 0) – any finite value passes; elsewhere theta is pinned. Shape must match exactly; any float
    dtype is fine (tolerance 1e-6 of the input's longer side, in pixels). The kind of slip is added: a non-finite
    theta, the other convention's theta. Never a value of the expected theta or of its reads."""

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        if not isinstance(actual, torch.Tensor) or not actual.is_floating_point() or actual.shape != expected.shape:
            return _compare_any_float(expected, actual, case)
        _, in_size, out_size, align_corners = case.args
        if not bool(torch.isfinite(actual).all()):
            return False, float("inf"), (
                "your theta has inf or nan entries: which size makes one of your lines divide by zero – and what "
                "does F.grid_sample read along such a side, whatever u (§5)?")
        tol = MATRIX_TOL * max(1, *in_size)
        want = theta_reads(expected, in_size, out_size, align_corners)
        got = theta_reads(actual, in_size, out_size, align_corners)
        error = (got - want).abs().amax(-1)  # (…, H_out, W_out): how far each output pixel's read is off
        worst = float(error.max())
        if worst <= tol:
            return True, worst, ""
        where = [int(i) for i in torch.nonzero(error > tol)[0]]
        *batch, y, x = where
        gx, gy = got[(*batch, y, x)].tolist()
        message = (f"{int((error > tol).sum())} of {error.numel()} output pixels read the input elsewhere than "
                   f"`matrix` names, the worst by about {worst:.1g} input pixels (the first: output pixel (x, y) = "
                   f"({x}, {y}){f' of matrix {batch[0]}' if batch else ''}, where your theta reads input pixel "
                   f"({gx:.4g}, {gy:.4g}))")
        other = affine.pixel_to_theta(case.args[0].to(torch.float64), in_size, out_size,
                                      align_corners=not align_corners)
        if bool(((got - theta_reads(other, in_size, out_size, align_corners)).abs() <= tol).all()):
            message += ("; this theta is right for the other align_corners convention: which two points pin the "
                        f"line of align_corners={align_corners} (§5)?")
        return False, worst, message


register(exercise("01.pixel_to_theta", reference=affine.pixel_to_theta, cases=_pixel_to_theta_cases,
                  hidden_cases=_pixel_to_theta_hidden, compare=PixelToThetaCompare(),
                  forbidden=('stn_course.affine.pixel_to_theta',)))

# ---------------------------------------------------------------------------------------------------------------
# 01.inverse_warp
# ---------------------------------------------------------------------------------------------------------------


def _inverse_warp_cases(rng: np.random.Generator, shapes=((1, 1, 1, 5), (1, 3, 9, 5), (2, 2, 6, 11), (3, 1, 12, 12)),
                        shift=(0.7, 0.4)):
    yield Case("1-pixel image (1, 1, 1, 1), the identity", (tensor(rng, 1, 1, 1, 1), torch.eye(3, dtype=torch.float64)))
    yield Case("image (1, 1, 4, 7), integer translation (2, -1)",
               (tensor(rng, 1, 1, 4, 7), affine.translation(_f64(2.0), _f64(-1.0))))
    # A shift by less than a pixel (never by half of one: no source halfway between two pixels). The first column
    # or row then reads a source between -1 and -0.5 – nearest pixel -1, outside – where (x + 0.5).long() reads 0,
    # and the rest differ from truncation: each slip fails here with its own diagnosis.
    yield Case(f"image (1, 1, 5, 6), a shift by less than a pixel, {shift}",
               (tensor(rng, 1, 1, 5, 6), affine.translation(_f64(shift[0]), _f64(shift[1]))))
    for n, c, h, w in shapes:
        yield Case(f"image ({n}, {c}, {h}, {w}), random motion (rotation, scale, shear, translation)",
                   (tensor(rng, n, c, h, w), random_motion(rng, (h, w))))


def _inverse_warp_hidden(rng: np.random.Generator):  # one column, one row, larger and non-square, batch 4
    return _inverse_warp_cases(rng, shapes=((2, 3, 9, 1), (1, 1, 1, 17), (4, 2, 10, 13), (1, 1, 31, 23)),
                               shift=(0.2, 0.9))


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
    "to a source at x = -0.6 – one inside the image or one outside – and which index does your code give it?":
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


# ---------------------------------------------------------------------------------------------------------------
# 01.chain_thetas – predict, then run: the one theta of two warps in a row (a question)
# ---------------------------------------------------------------------------------------------------------------


def _chain_thetas_reference(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The ``theta`` ``(…, 2, 3)`` of warping by ``first`` and then warping that result by ``second``: each theta
    pulls (output point -> the point it reads), so the second's output point ``q`` reads the original at
    ``first(second(q))`` – the package's homogeneous product ``first @ second``, the reverse of the motions' order."""
    return affine.from_homogeneous(affine.compose(affine.to_homogeneous(first), affine.to_homogeneous(second)))


def _theta(rows, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype)


def _random_theta(rng: np.random.Generator, batch: tuple[int, ...] = (), dtype=torch.float64) -> torch.Tensor:
    """Random thetas ``(*batch, 2, 3)``: a turn, an anisotropic scale, a shear and a shift in normalized
    coordinates (two of them commute only by accident)."""
    thetas = [affine.from_homogeneous(affine.compose(
        affine.translation(_f64(rng.uniform(-0.5, 0.5)), _f64(rng.uniform(-0.5, 0.5))),
        affine.rotation(_f64(rng.uniform(-math.pi, math.pi))), affine.shear(_f64(rng.uniform(-0.4, 0.4))),
        affine.scaling(_f64(rng.uniform(0.6, 1.6)), _f64(rng.uniform(0.6, 1.6)))))
        for _ in range(int(np.prod(batch)) if batch else 1)]
    return torch.stack(thetas).reshape(*batch, 2, 3).to(dtype)


def _chain_case(what: str, first: torch.Tensor, second: torch.Tensor) -> Case:
    dtype = str(first.dtype).replace("torch.", "")
    return Case(f"{what}: first and second {tuple(first.shape)} {dtype}", (first, second))


def _chain_thetas_cases(rng: np.random.Generator):
    # First a pair on which every slip the diagnosis knows gives its own wrong theta (neither linear part is the
    # identity), then the lesson's hand test: a zoom (reads the middle half: the content grows twice as large), then
    # a shift (reads a quarter of the width to the right).
    yield _chain_case("first a zoom with a shift, then a quarter turn with a shift",
                      _theta([[0.5, 0.0, 0.5], [0.0, 0.5, 0.0]]), _theta([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.25]]))
    yield _chain_case("first a zoom, then a shift", _theta([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]),
                      _theta([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]))
    yield _chain_case("two random thetas", _random_theta(rng), _random_theta(rng))
    yield _chain_case("a batch of 3 pairs", _random_theta(rng, (3,), torch.float32),
                      _random_theta(rng, (3,), torch.float32))


def _chain_thetas_hidden(rng: np.random.Generator):  # the identity on either side, both dtypes, larger batches
    identity = _theta([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    yield _chain_case("the identity first", identity, _random_theta(rng))
    yield _chain_case("the identity second", _random_theta(rng), identity)
    yield _chain_case("first a shift, then a zoom", _theta([[1.0, 0.0, -0.3], [0.0, 1.0, 0.6]]),
                      _theta([[2.0, 0.0, 0.0], [0.0, 0.25, 0.0]]))
    for _ in range(2):
        yield _chain_case("two random thetas", _random_theta(rng, (), torch.float32), _random_theta(rng, (), torch.float32))
    yield _chain_case("a batch of 1 pair", _random_theta(rng, (1,)), _random_theta(rng, (1,)))
    yield _chain_case("a batch of 6 pairs", _random_theta(rng, (6,)), _random_theta(rng, (6,)))
    yield _chain_case("a batch of 4 pairs", _random_theta(rng, (4,), torch.float32), _random_theta(rng, (4,), torch.float32))


def _chain_thetas_diagnosis(actual: torch.Tensor, case: Case, atol: float) -> str:
    """The kind of slip a wrong chained theta shows – the order of the motions, the motion instead of the theta,
    a translation lost or merely added – in words, never a number of the expected theta."""
    first, second = (t.to(torch.float64) for t in case.args)
    one, two = affine.to_homogeneous(first), affine.to_homogeneous(second)
    got = actual.detach().to(torch.float64)
    order = ("the two warps are composed in the order of the motions you see (§3: the rightmost acts first) – but "
             "each theta answers \"where does this output point read?\": follow one output point of the second warp "
             "back to the original image, and see which theta it meets first")
    motion = ("this is the motion the two warps show, not the theta that shows it: theta sends each output point to "
              "the point it reads (§4)")
    slips = {
        order: affine.from_homogeneous(two @ one),
        motion: affine.from_homogeneous(torch.linalg.inv(one @ two)),
        f"{motion}; and the two are composed in the order of the motions you see":
            affine.from_homogeneous(torch.linalg.inv(two @ one)),
        "the linear part is right but a translation is lost: a (2, 3) theta is a (3, 3) matrix without its last "
        "row (0, 0, 1) – put it back before you multiply (§2)":
            torch.cat([first[..., :2] @ second[..., :2], first[..., :2] @ second[..., 2:]], -1),
        "the translations were simply added: one warp's shift is itself turned and scaled by the other's linear "
        "part – multiply in homogeneous form (§2)":
            torch.cat([first[..., :2] @ second[..., :2], first[..., 2:] + second[..., 2:]], -1),
    }
    found = [words for words, wrong in slips.items()
             if wrong.shape == got.shape and bool((got - wrong).abs().max() <= atol)]
    return found[0] if found else ""  # the first that fits: the swapped order can also look like added shifts


@dataclass(frozen=True)
class ChainThetasCompare:
    """:class:`AnswerCompare` for ``01.chain_thetas`` (dtype included: the inputs' dtype), with the kind of slip
    added to "not this one" (never a value)."""

    atol: float = 1e-5

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = AnswerCompare(rtol=self.atol, atol=self.atol)(expected, actual, case)
        if ok or message != NOT_THIS_ONE or not isinstance(actual, torch.Tensor) or not actual.is_floating_point():
            return ok, error, message
        diagnosis = _chain_thetas_diagnosis(actual, case, 10 * self.atol)
        return False, error, f"{NOT_THIS_ONE}; {diagnosis}" if diagnosis else message


register(exercise("01.chain_thetas", reference=_chain_thetas_reference, cases=_chain_thetas_cases,
                  hidden_cases=_chain_thetas_hidden, compare=ChainThetasCompare(),
                  forbidden=('stn_course.affine.to_homogeneous', 'stn_course.affine.from_homogeneous')))
