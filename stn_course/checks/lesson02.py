"""Checks for lesson 2 – sampling grids and bilinear interpolation.

References are the package's tested :mod:`stn_course.grids` and :mod:`stn_course.sampling` (themselves tested
against ``F.affine_grid``/``F.grid_sample``). The two questions – the bug hunt's prediction ``02.blog_identity_error``
(measured with the package's ``identity_error`` on :mod:`stn_course.bug_hunt`'s blog sampler) and
``02.zeros_fade_band`` – compare with :class:`~stn_course.checks.questions.AnswerCompare`, which never prints the
expected answer.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import padding
from ..affine import normalization_matrix
from ..bug_hunt import blog_sampler
from ..grids import affine_grid
from ..padding import GRID_SAMPLE_MODES
from ..sampling import (bilinear_sample, bilinear_sample_np, identity_error, lerp_1d,
                        unnormalize)
from .cases import HIDDEN_SAMPLING_SHAPES, SAMPLING_SHAPES, random_grid, random_theta, tensor, uniform
from .equivalents import AFFINE_GRID, GRID_SAMPLE, PACKAGE_SAMPLERS
from .catalog import exercise
from .questions import AnswerCompare
from .registry import Case, register

# ---------------------------------------------------------------------------------------------------------------
# 02.lerp_1d
# ---------------------------------------------------------------------------------------------------------------


def _lerp_cases(rng: np.random.Generator):
    yield Case("a 1-sample signal (L=1) read at -1, -0.5, 0, 0.25, 0.5, 1",
               (tensor(rng, 1), torch.tensor([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0], dtype=torch.float64)),
               hint="with one sample, at most one neighbour of x is inside the signal: does your code still read "
                    "only samples 0 … L-1, and give the one sample's tent on both sides?")
    yield Case("L=2, the samples themselves and the ends (x = 0, 1, -1, 2)",
               (tensor(rng, 2), torch.tensor([0.0, 1.0, -1.0, 2.0], dtype=torch.float64)),
               hint="at an integer x the tent sum is that sample, exactly: which two neighbours does your code pick "
                    "there, and do their weights still add up to 1?")
    for length in (5, 13):
        yield Case(f"L={length}, 20 random x in [-2, L + 1] (left and right of the signal too)",
                   (tensor(rng, length), uniform(rng, 20, low=-2.0, high=length + 1.0)))
    yield Case("L=7, x just left of 0 (-0.3): the neighbours are -1 (outside, 0) and 0",
               (tensor(rng, 7), torch.tensor([-0.3, -0.7, 6.3], dtype=torch.float64)),
               hint="at x = -0.3 the left neighbour is floor(-0.3) = -1, outside the signal: int(-0.3) = 0 is wrong.")


def _lerp_hidden(rng: np.random.Generator):  # a long signal, every integer position, points far away
    yield Case("L=64, 300 random x in [-5, 70]", (tensor(rng, 64), uniform(rng, 300, low=-5.0, high=70.0)))
    yield Case("L=9, x = -1, 0, 1, …, 9 (every sample and both ends)",
               (tensor(rng, 9), torch.arange(-1.0, 10.0, dtype=torch.float64)))
    yield Case("L=3, x far outside (±1000)", (tensor(rng, 3), torch.tensor([-1000.0, 1000.0, 1.5], dtype=torch.float64)))


register(exercise("02.lerp_1d", reference=lerp_1d, cases=_lerp_cases, hidden_cases=_lerp_hidden,
                  forbidden=('stn_course.sampling.lerp_1d', 'stn_course.sampling.bilinear_sample',
                  'stn_course.sampling.bilinear_interpolate', 'stn_course.sampling.grid_sample', 'numpy.interp',
                  'numpy._core.multiarray.interp', 'numpy._core.multiarray.interp_complex',
                  'scipy.interpolate.interp1d', 'scipy.interpolate.make_interp_spline', *GRID_SAMPLE)))

# ---------------------------------------------------------------------------------------------------------------
# 02.unnormalize
# ---------------------------------------------------------------------------------------------------------------


def _unnormalize_cases(rng: np.random.Generator, end_sizes=(1, 2, 7), random_sizes=(5, 16), shape=(3, 4),
                       reach=1.5):
    ends = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    for size in end_sizes:
        for align_corners in (False, True):
            yield Case(f"coord = [-1, 0, 1], size={size}, align_corners={align_corners}", (ends, size, align_corners))
    for size in random_sizes:
        for align_corners in (False, True):
            yield Case(f"coord {shape} random in [-{reach}, {reach}], size={size}, align_corners={align_corners}",
                       (uniform(rng, *shape, low=-reach, high=reach), size, align_corners))


def _unnormalize_hidden(rng: np.random.Generator):  # 3-d coordinates, large sizes, points far outside
    return _unnormalize_cases(rng, end_sizes=(3, 1000), random_sizes=(1, 63), shape=(2, 3, 5), reach=4.0)


register(exercise("02.unnormalize", reference=unnormalize, cases=_unnormalize_cases,
                  hidden_cases=_unnormalize_hidden, forbidden=('stn_course.sampling.unnormalize',)))

# ---------------------------------------------------------------------------------------------------------------
# 02.affine_grid
# ---------------------------------------------------------------------------------------------------------------


def _affine_grid_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES):
    for n, c, h, w, _, _ in shapes:
        for align_corners in (False, True):
            yield Case(f"theta ({n}, 2, 3), size (N={n}, C={c}, H={h}, W={w}), align_corners={align_corners}",
                       (random_theta(rng, n), (n, c, h, w)), {"align_corners": align_corners})


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


def _bilinear_np_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES, reach=1.6):
    for n, c, h, w, h_out, w_out in shapes:
        for align_corners in (False, True):
            yield Case(
                f"input array (N={n}, C={c}, H={h}, W={w}), grid ({n}, {h_out}, {w_out}, 2) with points outside "
                f"[-1, 1], align_corners={align_corners}",
                (tensor(rng, n, c, h, w).numpy(), random_grid(rng, n, h_out, w_out, reach=reach).numpy()),
                {"align_corners": align_corners},
            )


def _bilinear_np_hidden(rng: np.random.Generator):  # larger, non-square, points far outside
    return _bilinear_np_cases(rng, HIDDEN_SAMPLING_SHAPES, reach=3.0)


register(exercise("02.bilinear_sample_np", reference=bilinear_sample_np_zeros, cases=_bilinear_np_cases,
                  hidden_cases=_bilinear_np_hidden, forbidden=('stn_course.sampling.bilinear_sample_np',
                  'stn_course.sampling.bilinear_sample', 'stn_course.sampling.grid_sample', *PACKAGE_SAMPLERS,
                  *GRID_SAMPLE)))

# ---------------------------------------------------------------------------------------------------------------
# 02.bilinear_sample
# ---------------------------------------------------------------------------------------------------------------



def _bilinear_cases(rng: np.random.Generator):
    # the identity grid puts points exactly on the first and last pixel centres (align_corners=True): a neighbour
    # test with > instead of >= (or < W - 1 instead of <= W - 1) loses the border rows and columns
    for align_corners in (True, False):
        image = tensor(rng, 2, 3, 5, 7)
        eye = torch.eye(2, 3, dtype=torch.float64).expand(2, 2, 3)
        yield Case(f"the identity grid on a 5×7 image, align_corners={align_corners} (points exactly on the border "
                   "pixel centres)", (image, affine_grid(eye, (2, 3, 5, 7), align_corners)),
                   {"padding_mode": "zeros", "align_corners": align_corners}, compare_gradients=False,
                   hint="a point exactly on the first or last pixel centre has its own pixel as a neighbour: the test "
                        "for 'inside' is 0 <= x <= W - 1 (and the same for y), with <=, not <.")
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
# 02.zeros_fade_band – a checked question
# ---------------------------------------------------------------------------------------------------------------


def _fade_band_reference(width: int, align_corners: bool) -> tuple[float, float]:
    """Pixels 0 (the first centre) and -1 (one pixel beyond), normalized with the package's matrix."""
    n = normalization_matrix((1, width), align_corners, torch.float64)
    return float(n[0, 0] * 0.0 + n[0, 2]), float(n[0, 0] * -1.0 + n[0, 2])


def _fade_band_cases(rng: np.random.Generator, widths=(48, 2, 5), count=2, largest=100):
    for width in list(widths) + rng.integers(3, largest, count).tolist():
        for align_corners in (False, True):
            yield Case(f"width {width}, align_corners={align_corners}", (width, align_corners))


def _fade_band_hidden(rng: np.random.Generator):  # wide inputs, 3 pixels
    return _fade_band_cases(rng, widths=(3, 1000), count=2, largest=5000)


register(exercise("02.zeros_fade_band", reference=_fade_band_reference, cases=_fade_band_cases,
                  hidden_cases=_fade_band_hidden, compare=AnswerCompare(atol=1e-9),
                  forbidden=('stn_course.affine.normalization_matrix',)))
