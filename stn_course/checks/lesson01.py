"""Checks for lesson 1 – affine transforms: matrices, composition, inverse mapping, pixel vs normalized coordinates.

Every reference is :mod:`stn_course.affine` (tested against ``F.affine_grid`` and hand-made matrices) or, for the
inverse warp, :func:`stn_course.warps.inverse_warp_nearest`; the three questions (``quarter_turn``,
``corner_source``, ``turn_theta``) compare with :class:`~stn_course.checks.questions.AnswerCompare`, which never prints
the expected answer (``turn_theta`` adds the kind of slip: the sign, the centre, the aspect ratio or the convention).
Where the exercise takes Python floats, a one-line adapter hands them over as float64 tensors. Where the lesson's docstring names the dtype (``rotation_matrix``,
``rotate_about``, ``normalization_matrix``: "float64") the dtype must match too; elsewhere matrices are compared in
float64 values whatever float dtype the learner returns (a float32 answer is fine to 1e-6). Shapes must match exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import affine
from ..grids import affine_grid
from ..sampling import grid_to_pixels
from ..warps import inverse_warp_nearest
from .cases import random_theta, tensor
from .equivalents import AFFINE_GRID, GRID_SAMPLE, PACKAGE_SAMPLERS
from .questions import NOT_THIS_ONE, AnswerCompare
from .catalog import exercise
from .registry import Case, compare, register

MATRIX_TOL = 1e-6
# (H, W) image sizes, edge cases first: 1 pixel, one row, non-square both ways.
SIZES = [(1, 1), (1, 5), (4, 7), (9, 5), (16, 12)]


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


register(exercise("01.rotation_matrix", reference=_rotation_reference, cases=_rotation_cases,
                  hidden_cases=_rotation_hidden, compare=_compare_float64,
                  forbidden=('stn_course.affine.rotation',)))

# ---------------------------------------------------------------------------------------------------------------
# 01.rotate_about
# ---------------------------------------------------------------------------------------------------------------


def _rotate_about_reference(angle: float, cx: float, cy: float) -> torch.Tensor:
    return affine.rotation_about(_f64(angle), _f64(cx), _f64(cy))


def _rotate_about_cases(rng: np.random.Generator):
    yield Case("angle = π/2 about (0, 0) (a plain rotation)", (math.pi / 2, 0.0, 0.0))
    yield Case("angle = π/2 about (3.5, 1.5)", (math.pi / 2, 3.5, 1.5))
    yield Case("angle = 0 about (5, -2) (the identity)", (0.0, 5.0, -2.0))
    yield from _random_rotations_about(rng, 3, reach=10.0)


def _random_rotations_about(rng: np.random.Generator, count: int, reach: float):
    for _ in range(count):
        angle, cx, cy = rng.uniform(-math.pi, math.pi), rng.uniform(-reach, reach), rng.uniform(-reach, reach)
        yield Case(f"angle = {angle:.4f} about ({cx:.3f}, {cy:.3f})", (float(angle), float(cx), float(cy)))


def _rotate_about_hidden(rng: np.random.Generator):  # a half turn and centres far from the origin
    yield Case("angle = -π about (-250, 40)", (-math.pi, -250.0, 40.0))
    yield from _random_rotations_about(rng, 4, reach=1000.0)


register(exercise("01.rotate_about", reference=_rotate_about_reference, cases=_rotate_about_cases,
                  hidden_cases=_rotate_about_hidden, compare=_compare_float64,
                  forbidden=('stn_course.affine.rotation', 'stn_course.affine.rotation_about')))

# ---------------------------------------------------------------------------------------------------------------
# 01.quarter_turn – a checked prediction, asked before 01.rotate_about
# ---------------------------------------------------------------------------------------------------------------


def _quarter_turn_reference(cx: float, cy: float) -> tuple[float, float]:
    """Where the package's quarter turn (+x towards +y) about ``(cx, cy)`` sends the corner pixel ``(0, 0)``."""
    corner = torch.zeros(1, 2, dtype=torch.float64)
    x, y = affine.apply(affine.rotation_about(_f64(math.pi / 2), _f64(cx), _f64(cy)), corner)[0].tolist()
    return x, y


def _quarter_turn_cases(rng: np.random.Generator):
    yield Case("the centre of an 8×4 image, (3.5, 1.5)", (3.5, 1.5))
    yield Case("the centre of a 21×21 image, (10, 10)", (10.0, 10.0))


def _quarter_turn_hidden(rng: np.random.Generator):  # centres of other images, one left of and above the corner
    yield Case("centre (-4, 2.5)", (-4.0, 2.5))
    for _ in range(3):
        cx, cy = float(np.round(rng.uniform(0, 500), 1)), float(np.round(rng.uniform(0, 500), 1))
        yield Case(f"centre ({cx:g}, {cy:g})", (cx, cy))


register(exercise("01.quarter_turn", reference=_quarter_turn_reference, cases=_quarter_turn_cases,
                  hidden_cases=_quarter_turn_hidden, compare=AnswerCompare(atol=1e-9),
                  forbidden=('stn_course.affine.rotation', 'stn_course.affine.rotation_about', 'stn_course.affine.apply')))

# ---------------------------------------------------------------------------------------------------------------
# 01.apply_affine
# ---------------------------------------------------------------------------------------------------------------


def _apply_cases(rng: np.random.Generator):
    yield Case("one point, matrix (3, 3)", (random_motion(rng), tensor(rng, 1, 2, scale=5.0)))
    yield Case("7 points, a pure translation (3, 3)",
               (affine.translation(_f64(2.0), _f64(-3.0)), tensor(rng, 7, 2, scale=5.0)))
    yield Case("5 points, matrix (3, 3)", (random_motion(rng), tensor(rng, 5, 2, scale=5.0)))
    yield Case("batch N=1: matrix (1, 3, 3), points (1, 4, 2)",
               (random_motion(rng).unsqueeze(0), tensor(rng, 1, 4, 2, scale=5.0)))
    yield Case("batch N=3: matrices (3, 3, 3), points (3, 6, 2)",
               (torch.stack([random_motion(rng) for _ in range(3)]), tensor(rng, 3, 6, 2, scale=5.0)))


def _apply_hidden(rng: np.random.Generator):  # many points, a larger batch, float32 points
    yield Case("200 points, matrix (3, 3)", (random_motion(rng), tensor(rng, 200, 2, scale=50.0)))
    yield Case("batch N=5: matrices (5, 3, 3), points (5, 17, 2)",
               (torch.stack([random_motion(rng) for _ in range(5)]), tensor(rng, 5, 17, 2, scale=5.0)))
    yield Case("float32 matrix and points", (random_motion(rng).float(), tensor(rng, 9, 2, dtype=torch.float32)))


register(exercise("01.apply_affine", reference=affine.apply, cases=_apply_cases, hidden_cases=_apply_hidden,
                  compare=_compare_any_float, forbidden=('stn_course.affine.apply',)))

# ---------------------------------------------------------------------------------------------------------------
# 01.normalization_matrix
# ---------------------------------------------------------------------------------------------------------------


def _normalization_reference(size, align_corners: bool) -> torch.Tensor:
    return affine.normalization_matrix(size, align_corners, torch.float64)


def _normalization_cases(rng: np.random.Generator, sizes=SIZES):
    sizes = list(sizes) + [tuple(int(s) for s in rng.integers(2, 40, 2))]
    for size in sizes:
        for align_corners in (False, True):
            yield Case(f"size (H, W) = {size}, align_corners={align_corners}", (size, align_corners))


def _normalization_hidden(rng: np.random.Generator):  # 1-pixel sides both ways, large and 2-pixel sides
    return _normalization_cases(rng, sizes=[(1, 64), (97, 1), (2, 2), (256, 255), (3, 1000)])


register(exercise("01.normalization_matrix", reference=_normalization_reference, cases=_normalization_cases,
                  hidden_cases=_normalization_hidden, compare=_compare_float64,
                  forbidden=('stn_course.affine.normalization_matrix',)))

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
                   hint=("a 1-pixel output side with align_corners=True: N_out has a 0 on its diagonal and no inverse. "
                         "Write the denormalization (normalized -> pixels) directly instead of inverting N_out."
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


register(exercise("01.inverse_warp", reference=inverse_warp_nearest, cases=_inverse_warp_cases,
                  hidden_cases=_inverse_warp_hidden, forbidden=('stn_course.warps.inverse_warp_nearest',
                  'stn_course.sampling.nearest_sample', 'stn_course.sampling.grid_sample', *PACKAGE_SAMPLERS,
                  *GRID_SAMPLE)))

# ---------------------------------------------------------------------------------------------------------------
# 01.corner_source – predict, then run (a question: the answer is never printed)
# ---------------------------------------------------------------------------------------------------------------


def _corner_source_reference(theta: torch.Tensor, size, align_corners: bool) -> tuple[float, float]:
    """Where ``out[0, 0]`` reads, in input pixels: the package's grid, its first point, unnormalized."""
    height, width = size
    grid = affine_grid(theta.double().reshape(1, 2, 3), (1, 1, height, width), align_corners)
    x, y = grid_to_pixels(grid, (height, width), align_corners)[0, 0]
    return float(x), float(y)


def _corner_source_cases(rng: np.random.Generator, sizes=((4, 5), (9, 6), (1, 7)), count=3):
    # every visible case has its own answer, so no constant (x, y) passes two of them
    eye = torch.eye(2, 3, dtype=torch.float64)
    yield Case("the identity theta, size (H, W) = (4, 5), align_corners=True", (eye, (4, 5), True))
    shift = torch.tensor([[1.0, 0.0, 0.4], [0.0, 1.0, -0.5]], dtype=torch.float64)
    yield Case("a pure shift, size (H, W) = (4, 5), align_corners=False", (shift, (4, 5), False))
    zoom = torch.tensor([[0.5, 0.0, 0.2], [0.0, 0.5, -0.1]], dtype=torch.float64)
    yield Case("a zoom by 2 with a shift, size (8, 8), align_corners=False", (zoom, (8, 8), False))
    for k, size in enumerate(sizes[:count]):
        align_corners = bool(k % 2)
        yield Case(f"a random theta, size (H, W) = {size}, align_corners={align_corners}",
                   (random_theta(rng, 1)[0], size, align_corners))


def _corner_source_hidden(rng: np.random.Generator):  # large, tall and wide images, a 1-pixel row
    return _corner_source_cases(rng, sizes=((64, 48), (3, 100), (1, 9), (37, 2)), count=4)


register(exercise("01.corner_source", reference=_corner_source_reference, cases=_corner_source_cases,
                  hidden_cases=_corner_source_hidden, compare=AnswerCompare(atol=1e-6),
                  forbidden=('stn_course.grids.affine_grid', 'stn_course.sampling.grid_to_pixels', *AFFINE_GRID)))

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
