"""Checks for lesson 2 – sampling grids and bilinear interpolation.

References are the package's tested :mod:`stn_course.grids` and :mod:`stn_course.sampling` (themselves tested
against ``F.affine_grid``/``F.grid_sample``). The NumPy sampler includes the learner's own pixel conversion (the
package's ``unnormalize``). The bug hunt has two: the prediction ``02.blog_identity_error`` (measured with the
package's ``identity_error`` on :mod:`stn_course.bug_hunt`'s blog sampler, compared with
:class:`~stn_course.checks.questions.AnswerCompare`, which never prints the expected answer) and the counterexample
``02.truncation_counterexample`` (:class:`BreaksTruncatingSampler`: any point where the colleague's truncating sampler
is wrong passes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import padding
from ..affine import normalization_matrix
from ..bug_hunt import blog_sampler, truncating_sampler
from ..grids import affine_grid
from ..padding import GRID_SAMPLE_MODES
from ..sampling import bilinear_sample, bilinear_sample_np, identity_error
from .cases import HIDDEN_SAMPLING_SHAPES, SAMPLING_SHAPES, random_grid, random_theta, tensor, uniform
from .equivalents import AFFINE_GRID, GRID_SAMPLE, PACKAGE_SAMPLERS
from .catalog import exercise
from .questions import AnswerCompare
from .registry import Case, register

# ---------------------------------------------------------------------------------------------------------------
# 02.affine_grid
# ---------------------------------------------------------------------------------------------------------------


def _affine_grid_hint(height: int, width: int, align_corners: bool) -> str:
    """What to test by hand when this case fails: its kinks, in kind (never the expected centres)."""
    longer = (f"with align_corners={align_corners}, do the first and last centres of a longer side sit on the points "
              "u = ±1 marks in this convention (pixel centres or outer edges?) – and is x the width's coordinate?")
    single = ("where must the one centre of a 1-pixel side lie so that the normalized frame stays centred on the "
              "image – and what does your construction give for a single step in this convention?")
    if min(height, width) > 1:
        return longer
    return single if max(height, width) == 1 else f"{longer} Also: {single}"


def _affine_grid_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES):
    for n, c, h, w, _, _ in shapes:
        for align_corners in (False, True):
            yield Case(f"theta ({n}, 2, 3), size (N={n}, C={c}, H={h}, W={w}), align_corners={align_corners}",
                       (random_theta(rng, n), (n, c, h, w)), {"align_corners": align_corners},
                       hint=_affine_grid_hint(h, w, align_corners))


def _affine_grid_hidden(rng: np.random.Generator):  # 1-pixel sides in larger images, batch 4
    return _affine_grid_cases(rng, HIDDEN_SAMPLING_SHAPES)


register(exercise("02.affine_grid", reference=affine_grid, cases=_affine_grid_cases,
                  hidden_cases=_affine_grid_hidden, forbidden=('stn_course.grids.affine_grid',
                  'stn_course.grids.affine_grid_np', 'stn_course.grids.base_grid', *AFFINE_GRID)))

# ---------------------------------------------------------------------------------------------------------------
# 02.bilinear_sample_np
# ---------------------------------------------------------------------------------------------------------------


def bilinear_sample_np_zeros(input: np.ndarray, grid: np.ndarray, align_corners: bool = False) -> np.ndarray:
    """The NumPy exercise's signature (no padding mode): :func:`bilinear_sample_np` with zeros padding."""
    return bilinear_sample_np(input, grid, "zeros", align_corners)


def _identity_grid_cases(rng: np.random.Generator, as_numpy: bool, **kwargs):
    """The identity grid on a 5×7 image in both conventions: every point exactly on a pixel centre, the first and
    last ones on the border (a neighbour test with < instead of <=, or weights that vanish there, lose them)."""
    for align_corners in (True, False):
        image = tensor(rng, 2, 3, 5, 7)
        grid = affine_grid(torch.eye(2, 3, dtype=torch.float64).expand(2, 2, 3), (2, 3, 5, 7), align_corners)
        args = (image.numpy(), grid.numpy()) if as_numpy else (image, grid)
        yield Case(f"the identity grid on a 5×7 image, align_corners={align_corners} (points exactly on the border "
                   "pixel centres)", args, {**kwargs, "align_corners": align_corners}, compare_gradients=False,
                   hint="a point exactly on a pixel centre reads that pixel with weight 1 – also on the first and "
                        "last row and column: which neighbours and weights does your code give it there?")


def _bilinear_np_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES, reach=1.6):
    yield from _identity_grid_cases(rng, as_numpy=True)
    for n, c, h, w, h_out, w_out in shapes:
        for align_corners in (False, True):
            yield Case(
                f"input array (N={n}, C={c}, H={h}, W={w}), grid ({n}, {h_out}, {w_out}, 2) with points outside "
                f"[-1, 1], align_corners={align_corners}",
                (tensor(rng, n, c, h, w).numpy(), random_grid(rng, n, h_out, w_out, reach=reach).numpy()),
                {"align_corners": align_corners},
            )


def _bilinear_np_hidden(rng: np.random.Generator):  # larger, non-square, points far outside
    for case in _bilinear_np_cases(rng, HIDDEN_SAMPLING_SHAPES, reach=3.0):
        if "identity" not in case.description:
            yield case


register(exercise("02.bilinear_sample_np", reference=bilinear_sample_np_zeros, cases=_bilinear_np_cases,
                  hidden_cases=_bilinear_np_hidden, forbidden=('stn_course.sampling.bilinear_sample_np',
                  'stn_course.sampling.unnormalize', 'stn_course.sampling.lerp_1d', 'numpy.interp',
                  'numpy._core.multiarray.interp', 'numpy._core.multiarray.interp_complex', 'scipy.interpolate.interp1d',
                  'scipy.interpolate.make_interp_spline',
                  'stn_course.sampling.bilinear_sample', 'stn_course.sampling.grid_sample', *PACKAGE_SAMPLERS,
                  *GRID_SAMPLE)))

# ---------------------------------------------------------------------------------------------------------------
# 02.bilinear_sample
# ---------------------------------------------------------------------------------------------------------------



def _bilinear_cases(rng: np.random.Generator):
    yield from _identity_grid_cases(rng, as_numpy=False, padding_mode="zeros")
    # reflection on a 1-pixel side: with align_corners=True the mirror interval [0, 0] has length 0
    for align_corners in (True, False):
        yield Case(f"a 1×6 image, padding_mode='reflection', align_corners={align_corners}, points far outside",
                   (tensor(rng, 1, 2, 1, 6), random_grid(rng, 1, 3, 4, reach=3.0)),
                   {"padding_mode": "reflection", "align_corners": align_corners},
                   hint=padding.get("reflection").hint + " Here the image has a 1-pixel side: how long is the "
                        "interval between its mirrors in this convention, and does your reflection divide by it?")
    yield from _bilinear_random_cases(rng, SAMPLING_SHAPES)


def _bilinear_random_cases(rng: np.random.Generator, shapes, reach: float = 1.6, every_mode: bool = False):
    for i, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        for align_corners in (False, True):
            modes = GRID_SAMPLE_MODES if every_mode else (GRID_SAMPLE_MODES[i % len(GRID_SAMPLE_MODES)],)
            for padding_mode in modes:
                yield Case(
                    f"input (N={n}, C={c}, H={h}, W={w}), grid ({n}, {h_out}, {w_out}, 2) with points outside "
                    f"[-1, 1], padding_mode={padding_mode!r}, align_corners={align_corners}",
                    (tensor(rng, n, c, h, w), random_grid(rng, n, h_out, w_out, reach=reach)),
                    {"padding_mode": padding_mode, "align_corners": align_corners}, hint=padding.get(padding_mode).hint,
                )


def _bilinear_hidden(rng: np.random.Generator):  # every padding mode on larger, non-square images, far outside
    return _bilinear_random_cases(rng, HIDDEN_SAMPLING_SHAPES[:3], reach=3.5, every_mode=True)


register(exercise("02.bilinear_sample", reference=bilinear_sample, cases=_bilinear_cases,
                  hidden_cases=_bilinear_hidden, forbidden=('stn_course.sampling.bilinear_sample',
                  'stn_course.sampling.grid_sample', *PACKAGE_SAMPLERS, *GRID_SAMPLE)))

# ---------------------------------------------------------------------------------------------------------------
# 02.blog_identity_error – the bug hunt, predicted (a question: the answer is never printed)
# ---------------------------------------------------------------------------------------------------------------


def numbered_image(height: int, width: int) -> torch.Tensor:
    """The bug hunt's image ``(1, 1, H, W)`` float64: pixel ``(i, j)`` holds ``W i + j + 1``."""
    return torch.arange(1.0, height * width + 1.0, dtype=torch.float64).view(1, 1, height, width)


def _blog_identity_reference(height: int, width: int) -> float:
    """The blog sampler's identity error on the numbered image, measured with the package's identity test."""
    return identity_error(blog_sampler, numbered_image(height, width), align_corners=True)


def _blog_identity_cases(rng: np.random.Generator, sizes=((4, 5), (2, 2), (6, 3)), count=2, largest=30):
    for height, width in sizes:
        yield Case(f"the numbered {height}×{width} image", (height, width))
    for height, width in rng.integers(2, largest, (count, 2)).tolist():
        yield Case(f"the numbered {height}×{width} image", (height, width))


def _blog_identity_hidden(rng: np.random.Generator):  # tall, wide and 2-pixel sides
    return _blog_identity_cases(rng, sizes=((2, 9), (17, 2), (40, 64)), count=3, largest=200)


register(exercise("02.blog_identity_error", reference=_blog_identity_reference, cases=_blog_identity_cases,
                  hidden_cases=_blog_identity_hidden, compare=AnswerCompare(atol=1e-6),
                  forbidden=('stn_course.bug_hunt.blog_sampler', 'stn_course.sampling.identity_error',
                             *PACKAGE_SAMPLERS, *GRID_SAMPLE)))

# ---------------------------------------------------------------------------------------------------------------
# 02.truncation_counterexample – the bug hunt without a pointer: a point where the colleague's sampler is wrong
# ---------------------------------------------------------------------------------------------------------------


def _as_point(answer) -> tuple[float, float] | str:
    """The learner's ``(u, v)`` as two finite floats, or what is wrong with its form (never the expected point)."""
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return f"expected a pair (u, v) of numbers, got {type(answer).__name__}"
    try:
        point = tuple(float(value) for value in answer)
    except (TypeError, ValueError):
        return "expected a pair (u, v) of numbers"
    if not all(np.isfinite(point)):
        return ("your point is not finite (NaN or infinity): for which sizes does your pixels -> normalized formula "
                "divide by zero, and where does every coordinate of such a side land?")
    return point


@dataclass(frozen=True)
class BreaksTruncatingSampler:
    """Passes when the answer ``(u, v)`` is a point where :func:`~stn_course.bug_hunt.truncating_sampler` and the
    package's :func:`~stn_course.sampling.bilinear_sample` (zeros padding) disagree by more than ``tolerance`` on the
    numbered image of the case's size (module-level class: it pickles). The expected point is never shown: many
    points are right."""

    tolerance: float = 1e-6

    def __call__(self, expected, actual, case) -> tuple[bool, float, str]:
        point = _as_point(actual)
        if isinstance(point, str):
            return False, float("inf"), point
        height, width, align_corners = case.args
        image = numbered_image(height, width)
        grid = torch.tensor(point, dtype=torch.float64).view(1, 1, 1, 2)
        gap = (truncating_sampler(image, grid, align_corners=align_corners)
               - bilinear_sample(image, grid, "zeros", align_corners)).abs().max().item()
        if gap > self.tolerance:
            return True, 0.0, ""
        return False, float("inf"), (f"the colleague's sampler reads (u, v) = ({point[0]:.6g}, {point[1]:.6g}) "
                                     "correctly: for which pixel coordinates does its cast differ from floor, and does "
                                     "that difference change the weights of pixels inside the image there?")


def _counterexample_reference(height: int, width: int, align_corners: bool) -> tuple[float, float]:
    """A point 1.5 pixels left of the first column on row 0 (above the first row where a 1-pixel width with
    ``align_corners=True`` pins x): the cast takes pixel 0 and gives it weight -1/2, floor reads only zeros there.
    Normalized with the package's matrix."""
    n = normalization_matrix((height, width), align_corners, torch.float64)
    pixel = torch.tensor([0.0, -1.5, 1.0], dtype=torch.float64) if width == 1 and align_corners else \
        torch.tensor([-1.5, 0.0, 1.0], dtype=torch.float64)
    u, v = (n @ pixel)[:2].tolist()
    return u, v


_ONE_PIXEL_HINT = ("a 1-pixel side: with align_corners=True every coordinate along it lands on pixel 0; with False, "
                   "the second neighbour the cast picks is outside the image anyway – look further out")


def _counterexample_cases(rng: np.random.Generator, sizes=((4, 6, False), (4, 6, True), (1, 8, True), (5, 1, True),
                                                          (1, 1, False)), count=2, largest=30):
    for height, width, align_corners in sizes:
        one_pixel = height == 1 or width == 1
        yield Case(f"the numbered {height}×{width} image, align_corners={align_corners}",
                   (height, width, align_corners), hint=_ONE_PIXEL_HINT if one_pixel else "")
    for (height, width), align_corners in zip(rng.integers(2, largest, (count, 2)).tolist(), (False, True)):
        yield Case(f"the numbered {height}×{width} image, align_corners={align_corners}", (height, width, align_corners))


def _counterexample_hidden(rng: np.random.Generator):  # 1-pixel sides the other way round, 2 pixels, large images
    return _counterexample_cases(rng, sizes=((3, 1, False), (1, 5, True), (1, 1, False), (2, 2, True), (40, 64, True),
                                             (1, 200, False)), count=2, largest=300)


register(exercise("02.truncation_counterexample", reference=_counterexample_reference, cases=_counterexample_cases,
                  hidden_cases=_counterexample_hidden, compare=BreaksTruncatingSampler(),
                  forbidden=('stn_course.bug_hunt.truncating_sampler',)))
