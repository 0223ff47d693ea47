"""Checks for lesson 8 – a spatial transformer on colour signs.

Every reference is the package's: :mod:`stn_course.data.signs` (the homography, the rectification) and
:mod:`stn_course.training` (the ST-CNN's start, measured on the model). The two questions (how many point pairs,
which canvas columns the untrained view reads) are functions of their numbers, checked with
:class:`~.questions.AnswerCompare`, which never prints the expected answer."""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.signs import SIGN_CORNERS, homography, rectify, sign_corners
from ..grids import projective_grid
from ..training import colour_input, st_cnn
from .cases import uniform
from .comparison import compare
from .catalog import exercise
from .questions import AnswerCompare
from .registry import Case, register

# ------------------------------------------------------------------------------------------------ 08.homography


def _square(n: int, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(SIGN_CORNERS, dtype=dtype).expand(n, 4, 2).clone()


def _quads(rng: np.random.Generator, n: int, spread: float = 0.25, dtype=torch.float64) -> torch.Tensor:
    """``n`` convex-ish quadrilaterals: a random square's corners, each moved by up to ``spread``."""
    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    corners = sign_corners(n, generator, scale=(0.3, 0.9), angle=180.0, perspective=0.0)
    return (corners + uniform(rng, n, 4, 2, low=-spread, high=spread)).to(dtype)


def _homography_cases(rng: np.random.Generator):
    yield Case("the sign's square to itself, twice as large (no perspective)", (_square(1), 2 * _square(1)))
    yield Case("the sign's square to a shifted square", (_square(1), _square(1) + torch.tensor([0.3, -0.2],
                                                                                               dtype=torch.float64)))
    yield Case("the sign's square to 3 random quadrilaterals (perspective)", (_square(3), _quads(rng, 3)))
    yield Case("2 random quadrilaterals to 2 others", (_quads(rng, 2), _quads(rng, 2)))


def _homography_hidden(rng: np.random.Generator):  # a large batch, strong perspective, float32
    yield Case("40 random quadrilaterals to 40 others, strong perspective",
               (_quads(rng, 40, 0.4), _quads(rng, 40, 0.4)))
    yield Case("float32 corners", (_square(5, torch.float32), _quads(rng, 5, dtype=torch.float32)))


register(exercise("08.homography", reference=homography, cases=_homography_cases, hidden_cases=_homography_hidden,
                  forbidden=("stn_course.data.signs.homography", "stn_course.data.distortions._homography")))

# ------------------------------------------------------------------------------------------------ 08.rectify


def _rectify_cases(rng: np.random.Generator, shapes=((1, 3, 16, 16, 8), (4, 3, 40, 40, 28), (2, 1, 24, 24, 24))):
    for n, c, h, w, out in shapes:
        images = uniform(rng, n, c, h, w, low=0, high=1)
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
        corners = sign_corners(n, generator, scale=(0.3, 0.6), angle=30.0, perspective=0.08)
        yield Case(f"images (N={n}, C={c}, {h}, {w}) of noise, signs slanted and turned up to 30°, out_size={out}",
                   (images, corners, out))


def _rectify_hidden(rng: np.random.Generator):  # more signs, an output larger than the canvas, a non-square canvas
    return _rectify_cases(rng, ((12, 3, 40, 40, 28), (2, 3, 20, 20, 32), (3, 2, 30, 36, 10)))


def _rectify_variant(images: torch.Tensor, corners: torch.Tensor, out_size: int, backwards: bool,
                     align_corners: bool) -> torch.Tensor:
    """A rectification with the homography's direction and the pixel convention chosen: ``backwards=True,
    align_corners=False`` is the reference; the others are the two popular slips (and both at once)."""
    square = torch.tensor(SIGN_CORNERS, dtype=corners.dtype).expand_as(corners)
    h = homography(square, corners) if backwards else homography(corners, square)
    grid = projective_grid(h.to(images.dtype), (images.shape[0], images.shape[1], out_size, out_size), align_corners)
    return F.grid_sample(images, grid, align_corners=align_corners)


_RECTIFY_DIAGNOSES = (
    ((False, False), "your output is what the homography gives when it goes the other way round – the sampler reads "
                     "backwards: for each output pixel, which point must it be handed?"),
    ((True, True), "the homography's direction is right, but the output is sampled in the other pixel convention – "
                   "which convention do the lesson's grids and samplers use, and does yours match it in both calls?"),
    ((False, True), "two things are off: the homography goes the other way round, and the pixel convention is not "
                    "the lesson's."),
)


def _compare_rectify(expected: torch.Tensor, actual, case: Case) -> tuple[bool, float, str]:
    """The reference to 1e-5; a failure that matches a wrong direction or the corner convention says which (never
    a value), so the two slips are told apart."""
    ok, error, message = compare(expected, actual, rtol=1e-5, atol=1e-5)
    if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
        return ok, error, message
    for (backwards, align_corners), diagnosis in _RECTIFY_DIAGNOSES:
        if compare(_rectify_variant(*case.args, backwards, align_corners), actual, rtol=1e-5, atol=1e-5)[0]:
            return False, error, diagnosis
    return ok, error, message


register(exercise("08.rectify", reference=rectify, cases=_rectify_cases, hidden_cases=_rectify_hidden,
                  compare=_compare_rectify, forbidden=("stn_course.data.signs.rectify",)))

# ------------------------------------------------------------------------------------------------ 08.point_pairs


def point_pairs(unknowns: int, up_to_scale: bool) -> int:
    """The answer key of ``08.point_pairs``: how many point correspondences (source point -> image point) pin down
    a transform written with ``unknowns`` numbers – each pair gives two equations, and a family written up to scale
    has one number fewer to pin down: ``ceil((unknowns - up_to_scale) / 2)``."""
    return math.ceil((unknowns - (1 if up_to_scale else 0)) / 2)


def _pairs_cases(rng: np.random.Generator):  # lesson 8's H, lesson 3's affine θ and attention
    for unknowns, up_to_scale, family in ((9, True, "the homography H, 3×3 up to scale"),
                                          (6, False, "the affine θ"), (3, False, "attention (s, tx, ty)")):
        yield Case(f"unknowns={unknowns}, up_to_scale={up_to_scale} ({family})", (unknowns, up_to_scale))


def _pairs_hidden(rng: np.random.Generator):  # a camera matrix, odd and even counts, one up to scale with an even count
    for unknowns, up_to_scale in ((12, True), (1, False), (4, False), (32, False), (8, True), (7, True)):
        yield Case(f"unknowns={unknowns}, up_to_scale={up_to_scale}", (unknowns, up_to_scale))


register(exercise("08.point_pairs", reference=point_pairs, cases=_pairs_cases, hidden_cases=_pairs_hidden,
                  compare=AnswerCompare(atol=0)))

# ------------------------------------------------------------------------------------------------ 08.start_view


@functools.lru_cache(maxsize=16)
def start_view(in_size: int, out_size: int) -> tuple[float, float]:
    """The answer key of ``08.start_view``, measured on lesson 8's untrained ST-CNN (``in_size``² colour canvases,
    an ``out_size``² view): it samples a canvas whose every pixel holds its own column index, so the view's first
    and last columns hold the canvas x coordinates they read (bilinear sampling of a ramp is exact)."""
    model = colour_input(st_cnn(in_size, "projective", out_size=out_size, seed=0, batch_norm=True))
    ramp = torch.arange(in_size, dtype=torch.float64).expand(1, 3, in_size, in_size)
    with torch.no_grad():
        read, _, _ = model.double().transform(ramp)
    return float(read[0, 0, 0, 0]), float(read[0, 0, 0, -1])


def _view_cases(rng: np.random.Generator, sizes=((40, 28), (40, 27), (33, 20))):  # odd differences: half-pixels
    for in_size, out_size in sizes:
        yield Case(f"lesson 8's untrained ST-CNN: in_size={in_size}, out_size={out_size}", (in_size, out_size))


def _view_hidden(rng: np.random.Generator):  # others than the visible ones; a view as large as the canvas
    return _view_cases(rng, ((60, 40), (28, 28), (36, 21), (31, 24)))


register(exercise("08.start_view", reference=start_view, cases=_view_cases, hidden_cases=_view_hidden,
                  compare=AnswerCompare(atol=1e-3)))
