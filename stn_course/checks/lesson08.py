"""Checks for lesson 8 – a spatial transformer on colour signs.

Every reference is the package's: :mod:`stn_course.data.signs` (the homography, the rectification) – but for the
checked prediction ``08.pins_down``, whose answer key is here: exact pairs pin a homography down when some four of
their points have no three on a line (its cases: points on one line, all on one line but one, repeated points, and
configurations full of lines of three that still pin it down). A homography is defined up to scale, so
``08.homography`` compares up to a common factor (sign included); its cases sit at the kinks of the direct linear
transform – more pairs than four whose first four have three points on a line, and maps with ``H[2, 2] = 0`` (a
picture's centre on the horizon), where "fix ``h₉ = 1``" has no solution. ``08.rectify``'s failures say which slip
they match (the homography's direction, the pixel convention, the margin's inset, the padding outside the canvas),
never a value; its cases include signs that reach past the canvas (zeros there) and float32 images."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.signs import SIGN_CORNERS, homography, rectify, sign_corners
from ..grids import projective_grid
from .cases import uniform
from .comparison import compare
from .catalog import exercise
from .registry import Case, register

# ------------------------------------------------------------------------------------------------ 08.homography

#: Maps from a picture of a road to the road's plane with the horizon through the picture's centre – ``H[2, 2] = 0``,
#: the centre goes to infinity – each with 4 picture points below the horizon. Exact in binary (quarters), so the
#: 8×8 system of "``h₉ = 1``" is exactly singular: ``torch.linalg.solve`` refuses it, least squares misses.
_HORIZON = (
    ([[1.0, 0.25, -0.5], [0.0, 1.0, 0.0], [1.0, -0.25, 0.0]], [[0.25, -1.0], [0.75, -1.0], [1.0, 0.0], [0.25, 0.0]]),
    ([[0.75, 0.0, 0.25], [0.0, 1.0, -0.5], [-1.0, 0.25, 0.0]], [[-0.5, 0.0], [-0.75, 1.0], [-0.25, 0.0], [0.0, 1.0]]),
    ([[1.5, 0.0, 0.0], [-0.25, 0.75, -0.5], [0.25, -1.0, 0.0]],
     [[0.0, -1.0], [1.0, -0.75], [1.0, -0.25], [0.0, -0.25]]),
    ([[0.75, 0.0, 0.5], [0.25, 1.0, 0.25], [-0.5, -0.5, 0.0]], [[0.0, -0.5], [0.0, -1.0], [-1.0, 0.0], [-1.0, 0.5]]),
    ([[1.0, -0.25, -0.5], [0.25, 1.0, 0.0], [0.25, -1.0, 0.0]], [[1.0, -0.75], [1.0, 0.0], [0.0, -1.0], [0.0, -0.25]]),
    ([[1.5, -0.25, 0.5], [-0.25, 0.75, 0.0], [-0.5, -0.25, 0.0]],
     [[0.0, -1.0], [-1.0, 0.0], [-0.75, 0.5], [-0.75, -0.5]]),
    ([[0.75, 0.0, 0.25], [-0.25, 1.5, 0.0], [0.5, 1.0, 0.0]], [[1.0, 0.0], [1.0, 0.5], [0.0, 0.5], [0.0, 0.25]]),
)
#: Six points whose first four have three on a line (the top row): together they pin a homography down.
_FIRST_FOUR_ON_A_LINE = ((-0.6, -0.5), (0.0, -0.5), (0.6, -0.5), (0.1, 0.6), (-0.5, 0.4), (0.5, 0.2))


def _square(n: int, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(SIGN_CORNERS, dtype=dtype).expand(n, 4, 2).clone()


def _quads(rng: np.random.Generator, n: int, spread: float = 0.25, dtype=torch.float64) -> torch.Tensor:
    """``n`` convex-ish quadrilaterals: a random square's corners, each moved by up to ``spread``."""
    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    corners = sign_corners(n, generator, scale=(0.3, 0.9), angle=180.0, perspective=0.0)
    return (corners + uniform(rng, n, 4, 2, low=-spread, high=spread)).to(dtype)


# ------------------------------------------------------------------------------------------------ 08.pins_down


def pins_down(src: torch.Tensor) -> torch.Tensor:
    """The answer key of ``08.pins_down``: whether exact pairs at the points ``src (N, P, 2)`` pin an invertible
    homography down (up to scale) – true exactly when some four of the points have no three on a line (points on
    one line fix only the line's image and the 1-D map along it, 2 + 3 numbers, so all points but one on a line fix
    5 + 2 < 8).
    ``-> (N,)`` bool"""
    points = torch.cat([src.double(), torch.ones_like(src[..., :1]).double()], -1)
    general = torch.zeros(src.shape[0], dtype=torch.bool)
    for four in combinations(range(src.shape[1]), 4):
        dets = torch.stack([torch.linalg.det(points[:, list(three)]) for three in combinations(four, 3)], -1)
        general |= (dets.abs() > 1e-9).all(-1)
    return general


def _configurations(points, n: int = 1, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(points, dtype=dtype).expand(n, -1, 2).clone()


#: Configurations in binary-exact coordinates (their collinear triples are exactly collinear), each with its kink.
_ON_ONE_LINE = ((-0.75, -0.75), (-0.25, -0.25), (0.25, 0.25), (0.5, 0.5), (0.75, 0.75))
_LINE_PLUS_ONE = ((-0.75, -0.5), (-0.25, -0.5), (0.25, -0.5), (0.75, -0.5), (0.0, 0.5))
_GRID = tuple((x, y) for y in (-0.5, 0.0, 0.5) for x in (-0.5, 0.0, 0.5))
_SQUARE_WITH_CENTRE = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0), (0.0, 0.0))
_LINE_PLUS_TWO = ((-0.5, 0.0), (0.0, 0.0), (0.5, 0.0), (0.25, 0.75), (-0.25, -0.5))
_REPEATED = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (1.0, 1.0))  # four pairs, but only three distinct points
_CROSS = ((-0.5, 0.0), (0.0, 0.0), (0.5, 0.0), (0.0, -0.5), (0.0, 0.5))  # two lines of three, through one point
_LINE_HINT = ("a homography sends a line to a line, and along it acts as a 1-D homography (a 2×2 matrix up to "
              "scale): how many numbers do the image line and that map have together – so how many of H's 8 can "
              "points on one line pin down, however many they are?")
_SOME_FOUR_HINT = ("points on a line cost equations, but must every point be off every line of the others? Take these "
                   "points four at a time: would one choice of four pin H down on its own?")


def _pins_down_cases(rng: np.random.Generator):
    yield Case("the sign's 4 corners, and 2 random quadrilaterals", (torch.cat([_square(1), _quads(rng, 2)]),))
    yield Case("6 points whose first four have three on a line", (_configurations(_FIRST_FOUR_ON_A_LINE),),
               hint=_SOME_FOUR_HINT)
    yield Case("5 points on one line", (_configurations(_ON_ONE_LINE),), hint=_LINE_HINT)
    yield Case("5 points, all but one (4) on one line", (_configurations(_LINE_PLUS_ONE),), hint=_LINE_HINT)
    yield Case("a 3×3 grid of 9 points (8 lines with three points on them)", (_configurations(_GRID),),
               hint=_SOME_FOUR_HINT)


def _pins_down_hidden(rng: np.random.Generator):  # the other kinks, a batch that mixes the answers, float32
    yield Case("the square's corners and its centre", (_configurations(_SQUARE_WITH_CENTRE),))
    yield Case("5 points, 3 on a line and 2 off it", (_configurations(_LINE_PLUS_TWO),))
    yield Case("4 pairs at only 3 distinct points", (_configurations(_REPEATED),), hint=_LINE_HINT)
    yield Case("5 points on two lines through one of them", (_configurations(_CROSS),), hint=_SOME_FOUR_HINT)
    yield Case("3 points", (_quads(rng, 2)[:, :3],))
    mixed = torch.cat([_configurations(_LINE_PLUS_ONE), _configurations(_LINE_PLUS_TWO),
                       _configurations(_ON_ONE_LINE), _quads(rng, 1)[:, [0, 1, 2, 3, 0]]])
    yield Case("4 configurations of 5 points in float32, one a quadrilateral with a corner repeated", (mixed.float(),))


#: What the pass line's count covers: the visible cases, named (after a pass: it gives nothing away before one).
_PINS_DOWN_NOTE = ("the number of wrong answers; the visible cases: the sign's 4 corners and 2 quadrilaterals, 6 points "
                   "whose first four have three on a line, 5 points on one line, 5 points all but one on one line, "
                   "a 3×3 grid")


def _compare_pins_down(expected: torch.Tensor, actual, case: Case) -> tuple[bool, float, str]:
    """Exactly the reference's booleans; a wrong one says which way the learner erred (never which item)."""
    ok, error, message = compare(expected, actual)
    if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape or actual.dtype != expected.dtype:
        return ok, error, message
    if bool((actual & ~expected).any()):
        return False, error, ("you say pairs at these points pin H down, but two different invertible homographies "
                              "agree at all of them: are the equations of the pairs independent?")
    return False, error, ("you say pairs at these points leave H free, but only one homography (up to scale) agrees "
                          "with an invertible one at all of them: which four of the points would do on their own?")


register(exercise("08.pins_down", reference=pins_down, cases=_pins_down_cases, hidden_cases=_pins_down_hidden,
                  compare=_compare_pins_down, error_note=_PINS_DOWN_NOTE,  # the solver refuses pairs that do not pin H down: no asking it
                  forbidden=("stn_course.data.signs.homography", "stn_course.data.distortions._homography")))

# ------------------------------------------------------------------------------------------------ 08.homography (cont.)


def _mapped(h: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Where homographies ``h (N, 3, 3)`` send ``points (N, P, 2)``, after the division. ``-> (N, P, 2)``"""
    uvw = torch.cat([points, torch.ones_like(points[..., :1])], -1) @ h.transpose(1, 2)
    return uvw[..., :2] / uvw[..., 2:]


def _random_homographies(rng: np.random.Generator, n: int, perspective: float = 0.3) -> torch.Tensor:
    """``n`` homographies near the identity with a perspective row, ``(N, 3, 3)`` float64."""
    h = torch.eye(3, dtype=torch.float64) + uniform(rng, n, 3, 3, low=-0.3, high=0.3)
    h[:, 2, :2] = uniform(rng, n, 2, low=-perspective, high=perspective)
    h[:, 2, 2] = 1.0
    return h


def _pairs(h: torch.Tensor, points) -> tuple[torch.Tensor, torch.Tensor]:
    """``(src, dst)``: the same ``points`` for every map of ``h (N, 3, 3)`` and where each map sends them."""
    src = torch.tensor(points, dtype=torch.float64).expand(h.shape[0], -1, 2).clone()
    return src, _mapped(h, src)


def _horizon(which: slice) -> tuple[torch.Tensor, torch.Tensor]:
    h = torch.tensor([m for m, _ in _HORIZON[which]], dtype=torch.float64)
    src = torch.tensor([p for _, p in _HORIZON[which]], dtype=torch.float64)
    return src, _mapped(h, src)


_HORIZON_HINT = ("where does this map send the picture's centre (0, 0)? What does that make one entry of H – and "
                 "what does your way of fixing H's scale assume about that entry?")
_ALL_PAIRS_HINT = ("four pairs pin H down only when no three of their points are on a line: here it takes all six "
                   "together – does your system use every pair?")


#: Noisy pairs are compared by their transfer error, not entry by entry (see :func:`_compare_homographies`).
_NOISY = "noisy pairs in pixels"
#: How much worse than the reference's transfer error a fit of noisy pairs may be, on the median map of a case.
NOISY_RATIO = 1.25
#: Points on both sides of a horizon, symmetric about the picture's centre: their centroid (0, 0) goes to infinity,
#: so "fix h₉ = 1" fails in normalized coordinates too (the centroid is the origin there).
_BOTH_SIDES = ((0.5, 0.25), (-0.5, -0.25), (0.25, -0.75), (-0.25, 0.75))
_CENTROID_HINT = ("where does this map send the centroid of the src points? If you normalise the points, which point "
                  "is the origin of the coordinates you solve in – and what does your way of fixing H's scale assume "
                  "about it?")
_NOISY_HINT = ("with noise, the smallest singular vector minimises |A h| – an algebraic error, not a distance in "
               "pixels – and A's columns here hold numbers of size 1, hundreds and hundreds of thousands. Move every "
               "point of a pair set by the same shift and fit again: should the map change? Does yours?")


def _photo_pairs(rng: np.random.Generator, n: int, p: int, sigma: float,
                 dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` signs 40 to 60 px wide somewhere in a 640×480 photograph, ``p`` points on each (``src``, pixels), and
    where a second, slanted view of the sign puts them, with Gaussian noise of ``sigma`` px (``dst``)."""
    side = rng.uniform(40, 60, (n, 1, 1))
    where = rng.uniform([60, 60], [520, 360], (n, 1, 2))
    src = torch.from_numpy(where + side * rng.uniform(0, 1, (n, p, 2)))
    corners = torch.from_numpy(where + side * np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))
    moved = corners + torch.from_numpy(rng.uniform(-0.2, 0.2, (n, 4, 2)) * side + rng.uniform(-60, 60, (n, 1, 2)))
    dst = _mapped(homography(corners, moved), src) + torch.from_numpy(rng.normal(0.0, sigma, (n, p, 2)))
    return src.to(dtype), dst.to(dtype)


def _transfer(h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The transfer error of ``h (N, 3, 3)`` on the pairs: the RMS distance between ``H src`` and ``dst``, in the
    pairs' units, per map. ``-> (N,)`` float64"""
    return (_mapped(h.double(), src.double()) - dst.double()).norm(dim=-1).pow(2).mean(1).sqrt()


def _homography_cases(rng: np.random.Generator):
    yield Case("the sign's square to itself, twice as large (no perspective)", (_square(1), 2 * _square(1)))
    yield Case("the sign's square to 3 random quadrilaterals (perspective)", (_square(3), _quads(rng, 3)))
    yield Case("6 pairs of one homography (2 maps), the first four with three points on a line",
               _pairs(_random_homographies(rng, 2), _FIRST_FOUR_ON_A_LINE), hint=_ALL_PAIRS_HINT)
    yield Case("3 pictures of a road to the road's plane, the horizon through each picture's centre",
               _horizon(slice(0, 3)), hint=_HORIZON_HINT)
    yield Case(f"{_NOISY}: 16 signs in two 640×480 photographs, 10 points each, located to about 2 px",
               _photo_pairs(rng, 16, 10, 2.0), hint=_NOISY_HINT)


def _homography_hidden(rng: np.random.Generator):  # a large batch, strong perspective, float32, more kinks
    yield Case("40 random quadrilaterals to 40 others, strong perspective",
               (_quads(rng, 40, 0.4), _quads(rng, 40, 0.4)))
    yield Case("float32 corners", (_square(5, torch.float32), _quads(rng, 5, dtype=torch.float32)))
    quarter_turn = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    yield Case("a quarter turn of the square (H[0, 0] = H[1, 1] = 0)", (_square(1), _mapped(quarter_turn, _square(1))))
    grid = tuple((x, y) for y in (-0.8, 0.0, 0.8) for x in (-0.8, 0.0, 0.8))
    yield Case("9 pairs on a 3×3 grid (many triples on lines), 3 maps", _pairs(_random_homographies(rng, 3), grid),
               hint=_ALL_PAIRS_HINT)
    yield Case("4 more road pictures with the horizon through the centre", _horizon(slice(3, 7)), hint=_HORIZON_HINT)
    both = torch.tensor([m for m, _ in _HORIZON[:3]], dtype=torch.float64)
    yield Case("3 maps with a horizon through the centroid of the 4 points (points on both sides of it)",
               _pairs(both, _BOTH_SIDES), hint=_CENTROID_HINT)
    yield Case(f"{_NOISY}: 10 signs in two 640×480 photographs, 12 points each, located to about 2 px",
               _photo_pairs(rng, 10, 12, 2.0), hint=_NOISY_HINT)
    yield Case(f"{_NOISY}, float32: 16 signs in two 640×480 photographs, 8 points each, located to about 1 px",
               _photo_pairs(rng, 16, 8, 1.0, torch.float32), hint=_NOISY_HINT)


def _unit(h: torch.Tensor) -> torch.Tensor:
    """Homographies scaled to unit Frobenius norm, in float64. ``(N, 3, 3) -> (N, 3, 3)``"""
    h = h.double()
    return h / h.flatten(1).norm(dim=1)[:, None, None]


#: What the pass line's "worst error" is here: on the noisy cases (the largest by far) the ratio of transfer errors.
_ERROR_NOTE = (f"on the noisy pairs, your transfer error ÷ the package's on the median map (1 = as good; at most "
               f"{NOISY_RATIO} passes); on the exact pairs, the largest entry difference of H up to scale")


def _compare_homographies(expected: torch.Tensor, actual, case: Case) -> tuple[bool, float, str]:
    """Equal up to a common factor per map (sign included) to 1e-6, after unit norm; a result that is not finite,
    zero or the inverse map says so (never a value)."""
    ok, error, message = compare(expected, actual, rtol=1e-6, atol=1e-6)
    if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape or actual.dtype != expected.dtype:
        return ok, error, message
    if not bool(actual.isfinite().all()):
        return False, float("inf"), ("your H has entries that are not finite on this case: a division by zero, or a "
                                     "linear system that has no solution the way it was set up?")
    if bool((actual.flatten(1).norm(dim=1) == 0).any()):
        return False, float("inf"), ("one of your H is zero: H = 0 satisfies every multiplied-out equation, but it "
                                     "is no map – fix the scale some other way")
    if _NOISY in case.description:  # no H is exact: compare the fits by their transfer error
        ratio = (_transfer(actual, *case.args) / _transfer(expected, *case.args)).median().item()
        if ratio <= NOISY_RATIO:
            return True, ratio, ""
        return False, ratio, ("your fit is far worse than it could be on pairs far from the origin: on most of these "
                              f"maps its transfer error (the RMS distance in pixels from H src to dst) is more than "
                              f"{NOISY_RATIO} × what a fixed sequence of tensor operations reaches. What does the "
                              "smallest singular vector minimise, and does your answer depend on where the "
                              "photograph's origin is?")
    want, got = _unit(expected), _unit(actual)
    got = got * torch.sign((got * want).flatten(1).sum(1))[:, None, None]
    ok, error, _ = compare(want, got, rtol=0.0, atol=1e-6)
    if ok:
        return True, error, ""
    inverse, singular = torch.linalg.inv_ex(got)
    inverse = _unit(inverse) * torch.sign((_unit(inverse) * want).flatten(1).sum(1))[:, None, None]
    if not bool(singular.any()) and compare(want, inverse, rtol=0.0, atol=1e-6)[0]:
        return False, error, "your H maps dst to src: the other way round"
    return False, error, ("your H does not send every src point to its dst point (compared up to a common factor, "
                          "sign included)")


register(exercise("08.homography", reference=homography, cases=_homography_cases, hidden_cases=_homography_hidden,
                  compare=_compare_homographies, error_note=_ERROR_NOTE,
                  forbidden=("stn_course.data.signs.homography", "stn_course.data.distortions._homography")))

# ------------------------------------------------------------------------------------------------ 08.rectify


def _rectify_cases(rng: np.random.Generator, shapes=((1, 3, 16, 16, 8, 0, 1.0), (4, 3, 40, 40, 28, 0, 1.0),
                                                     (2, 1, 24, 24, 24, 3, 1.0), (2, 3, 40, 40, 28, 2, 1.0),
                                                     (3, 3, 20, 20, 16, 2, 1.6))):
    """Noise images and slanted, turned signs; ``reach > 1`` enlarges the signs about the canvas's centre so that
    corners leave the canvas (the output must read zeros there) – those cases come in float32, the others in
    float64."""
    for n, c, h, w, out, margin, reach in shapes:
        dtype = torch.float32 if reach > 1 else torch.float64  # the sign past the canvas also comes in float32
        images = uniform(rng, n, c, h, w, low=0, high=1, dtype=dtype)
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
        corners = reach * sign_corners(n, generator, scale=(0.3, 0.6), angle=30.0, perspective=0.08)
        where = "its corners outside the canvas, " if reach > 1 else ""
        yield Case(f"{dtype} images (N={n}, C={c}, {h}, {w}) of noise, signs slanted and turned up to 30°, {where}"
                   f"out_size={out}, margin={margin}", (images, corners.to(dtype), out, margin))


def _rectify_hidden(rng: np.random.Generator):  # more signs, an output larger than the canvas, non-square, 1 pixel
    return _rectify_cases(rng, ((12, 3, 40, 40, 28, 4, 1.0), (2, 3, 20, 20, 32, 5, 1.0), (3, 2, 30, 36, 10, 1, 1.0),
                                (2, 3, 16, 16, 1, 0, 1.0), (1, 3, 16, 16, 3, 1, 1.0), (4, 3, 40, 40, 28, 3, 1.8)))


#: The inset of the sign's square (its half-side in the output's normalized coordinates) as a function of
#: ``(out_size, margin)``: the reference (edges on pixel edges, ``align_corners=False``) and the popular slips.
_INSETS = {
    "edges": lambda out, m: 1 - 2 * m / out,
    "centres": lambda out, m: 1 - (2 * m + 1) / out,  # the corners on the centres of the first pixels inside
    "corners": lambda out, m: 1 - 2 * m / (out - 1) if out > 1 else 1.0,  # the align_corners=True unit
    "half": lambda out, m: 1 - m / out,  # a pixel taken as 1/out of the normalized width 2
}


def _rectify_variant(images: torch.Tensor, corners: torch.Tensor, out_size: int, margin: int, backwards: bool,
                     align_corners: bool, inset: str, padding: str = "zeros") -> torch.Tensor:
    """A rectification with the homography's direction, the pixel convention, the inset and the padding chosen:
    ``backwards=True, align_corners=False, inset="edges", padding="zeros"`` is the reference; the others are the
    popular slips."""
    square = _INSETS[inset](out_size, margin) * torch.tensor(SIGN_CORNERS, dtype=corners.dtype).expand_as(corners)
    h = homography(square, corners) if backwards else homography(corners, square)
    grid = projective_grid(h.to(images.dtype), (images.shape[0], images.shape[1], out_size, out_size), align_corners)
    return F.grid_sample(images, grid, padding_mode=padding, align_corners=align_corners)


_INSET_CORNERS = ("the direction and the convention are right, but the sign's square is inset by the wrong amount: "
                  "how wide is one output pixel in normalized coordinates when align_corners=False?")
_CONVENTION = ("the homography's direction is right, but the output is sampled in the other pixel convention – which "
               "convention do the lesson's grids and samplers use, and does yours match it in both calls?")
_RECTIFY_DIAGNOSES = (
    ((False, False, "edges"), "your output is what the homography gives when it goes the other way round – the "
                              "sampler reads backwards: for each output pixel, which point must it be handed?"),
    ((True, True, "edges"), _CONVENTION),
    ((True, True, "corners"), _CONVENTION),  # the corners on the align_corners=True pixel centres, inset in its unit
    ((True, False, "centres"), "the direction and the convention are right, but the sign's square is inset by the "
                               "wrong amount: its edges lie on pixel edges, not on pixel centres – where is the "
                               "outer edge of the first pixel inside, in normalized coordinates?"),
    ((True, False, "corners"), _INSET_CORNERS),
    ((True, True, "centres"), "the homography's direction is right, but two things are off: the pixel convention is "
                              "not the lesson's, and the sign's square is inset to pixel centres, not pixel edges"),
    ((True, False, "half"), "the direction and the convention are right, but the sign's square is inset by the wrong "
                            "amount: how wide is one output pixel in normalized coordinates?"),
    ((False, True, "edges"), "two things are off: the homography goes the other way round, and the pixel convention "
                             "is not the lesson's."),
    ((True, False, "edges", "border"), "inside the canvas your output is right, but where it reaches past the "
                                       "canvas's edge it does not show what the exercise asks for there"),
)


def _compare_rectify(expected: torch.Tensor, actual, case: Case) -> tuple[bool, float, str]:
    """The reference to 1e-5; a failure that matches a wrong direction, the corner convention, a wrong inset or the
    wrong padding says which (never a value), so the slips are told apart."""
    ok, error, message = compare(expected, actual, rtol=1e-5, atol=1e-5)
    if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
        return ok, error, message
    for variant, diagnosis in _RECTIFY_DIAGNOSES:
        if compare(_rectify_variant(*case.args, *variant), actual, rtol=1e-5, atol=1e-5)[0]:
            return False, error, diagnosis
    return ok, error, message


register(exercise("08.rectify", reference=rectify, cases=_rectify_cases, hidden_cases=_rectify_hidden,
                  compare=_compare_rectify, forbidden=("stn_course.data.signs.rectify",)))
