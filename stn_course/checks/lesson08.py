"""Checks for lesson 8 – a spatial transformer on colour signs.

Every reference is the package's: :mod:`stn_course.data.signs` (the homography, the rectification),
:mod:`stn_course.stn` (the transforms' parameter counts) and :mod:`stn_course.training` (the ST-CNN's start)."""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..data.signs import SIGN_CORNERS, homography, rectify, sign_corners
from ..stn import num_params
from ..training import colour_input, st_cnn
from .cases import uniform
from .catalog import exercise
from .questions import AnswerCompare, Choice
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


register(exercise("08.rectify", reference=rectify, cases=_rectify_cases, hidden_cases=_rectify_hidden,
                  forbidden=("stn_course.data.signs.rectify",)))

# ------------------------------------------------------------------------------------------------ 08.point_pairs


def point_pairs(transform: str) -> int:
    """The answer key of ``08.point_pairs``: how many point correspondences (source point -> target point) pin down
    a transform of the family ``transform`` – each gives two equations, so ``ceil(parameters / 2)``."""
    return math.ceil(num_params(transform) / 2)


def _pairs_cases(rng: np.random.Generator):
    for transform in ("projective", "affine", "attention"):
        yield Case(f"transform={transform!r}", (transform,))


def _pairs_hidden(rng: np.random.Generator):
    for transform in ("rts", "rotation", "tps"):
        yield Case(f"transform={transform!r}", (transform,))


register(exercise("08.point_pairs", reference=point_pairs, cases=_pairs_cases, hidden_cases=_pairs_hidden,
                  compare=AnswerCompare(atol=0)))

# ------------------------------------------------------------------------------------------------ 08.start_view

VIEWS = ("whole", "centre", "rectified", "varies")


@functools.lru_cache(maxsize=1)
def start_view() -> str:
    """The answer key of ``08.start_view``, computed on lesson 8's untrained ST-CNN (40×40 colour canvases):
    ``"whole"`` if its transformer shows the whole canvas shrunk, ``"centre"`` if the canvas' central pixels one for
    one, ``"varies"`` if what it shows differs from image to image (``"rectified"`` is never computed here: an
    untrained transformer has not learned where the sign is)."""
    model = colour_input(st_cnn(40, "projective", seed=0, batch_norm=True))
    images = torch.rand(4, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    _, params, _ = model.transform(images)
    if not torch.allclose(params, params[:1].expand_as(params)):
        return "varies"
    out, _, _ = model.transform(images)
    size = out.shape[-1]
    if torch.allclose(out, images[..., (40 - size) // 2:(40 + size) // 2, (40 - size) // 2:(40 + size) // 2],
                      atol=1e-5):
        return "centre"
    return "whole"


def _view_cases(rng: np.random.Generator):
    yield Case("lesson 8's ST-CNN, untrained, on 40×40 colour canvases", ())


register(exercise("08.start_view", reference=start_view, cases=_view_cases, hidden_cases=_view_cases,
                  compare=Choice(*VIEWS)))
