"""Checks for lesson 2 – sampling grids and bilinear interpolation.

References are the package's tested :mod:`stn_course.grids` and :mod:`stn_course.sampling` (themselves tested
against ``F.affine_grid``/``F.grid_sample``). The bug-hunt check ``02.identity_error`` hands the learner's function
a few samplers – correct ones and buggy ones from popular STN code – and compares the measured error.
"""
from __future__ import annotations

import numpy as np
import torch

from ..grids import affine_grid
from ..sampling import PADDING_MODES, bilinear_sample, bilinear_sample_np, nearest_sample, unnormalize
from .cases import HIDDEN_SAMPLING_SHAPES, SAMPLING_SHAPES, random_grid, random_theta, tensor, uniform
from .equivalents import AFFINE_GRID, GRID_SAMPLE, PACKAGE_SAMPLERS
from .registry import Case, Check, register

# ---------------------------------------------------------------------------------------------------------------
# 02.lerp_1d
# ---------------------------------------------------------------------------------------------------------------


def lerp_1d_reference(signal: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``signal: (L,)`` at pixel positions ``x: (P,)``, zeros outside. ``-> (P,)``

    Computed with the package's 2-D sampler on a ``(1, 1, 1, L)`` image (``align_corners=False``, zeros padding).
    """
    length = signal.shape[0]
    u = (2 * x + 1) / length - 1  # pixel -> normalized (align_corners=False)
    grid = torch.stack([u, torch.zeros_like(u)], dim=-1).view(1, 1, -1, 2)
    return bilinear_sample(signal.view(1, 1, 1, length), grid, "zeros", align_corners=False).view(-1)


def _lerp_cases(rng: np.random.Generator):
    yield Case("a 1-sample signal (L=1) read at -1, -0.5, 0, 0.25, 0.5, 1",
               (tensor(rng, 1), torch.tensor([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0], dtype=torch.float64)))
    yield Case("L=2, the samples themselves and the ends (x = 0, 1, -1, 2)",
               (tensor(rng, 2), torch.tensor([0.0, 1.0, -1.0, 2.0], dtype=torch.float64)))
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


register(Check(
    id="02.lerp_1d",
    forbidden=("stn_course.sampling.bilinear_sample", "stn_course.sampling.bilinear_interpolate",
               "stn_course.sampling.grid_sample", "numpy.interp", "numpy._core.multiarray.interp",
               "numpy._core.multiarray.interp_complex", "scipy.interpolate.interp1d",
               "scipy.interpolate.make_interp_spline", *GRID_SAMPLE),
    idea="A point between two samples mixes them in proportion to how close it is; mind negative x and neighbours "
         "outside the signal.",
    title="1-D linear interpolation with zeros outside",
    reference=lerp_1d_reference,
    cases=_lerp_cases,
    hidden_cases=_lerp_hidden,
    hint="x0 = floor(x) (not int(x): that truncates towards 0 and is wrong for negative x), x1 = x0 + 1, "
         "t = x - x0, result (1 - t) f[x0] + t f[x1], where a neighbour outside 0..L-1 reads 0 (don't clamp it).",
    rtol=1e-9, atol=1e-9, points=1,
))

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


register(Check(
    id="02.unnormalize",
    forbidden=("stn_course.sampling.unnormalize",),
    idea="Write where -1 and +1 must land in pixels for each align_corners, then the line through those two "
         "points.",
    title="normalized [-1, 1] -> pixel coordinates (both align_corners)",
    reference=unnormalize,
    cases=_unnormalize_cases,
    hidden_cases=_unnormalize_hidden,
    hint="align_corners=True: -1 -> 0 and +1 -> size - 1, so x = (u + 1) / 2 * (size - 1). align_corners=False: "
         "-1 -> -0.5 and +1 -> size - 0.5 (the outer pixel edges), so x = ((u + 1) * size - 1) / 2. "
         "Check both ends on paper.",
    rtol=1e-9, atol=1e-9, points=1,
))

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


register(Check(
    id="02.affine_grid",
    forbidden=("stn_course.grids.affine_grid", "stn_course.grids.affine_grid_np", "stn_course.grids.base_grid",
               *AFFINE_GRID),
    idea="The grid is theta applied to the base grid of the output: one (x, y, 1) per output pixel, where x runs "
         "along the width.",
    title="affine sampling grid from scratch (F.affine_grid semantics)",
    reference=affine_grid,
    cases=_affine_grid_cases,
    hidden_cases=_affine_grid_hidden,
    hint="x_t runs along the width (W points), y_t along the height; with align_corners=False scale the linspace "
         "by (n - 1) / n, and a 1-pixel side sits at 0. Stack (x_t, y_t, 1), multiply by theta^T and return "
         "(N, H, W, 2) with x first.",
    rtol=1e-9, atol=1e-9, points=2,
))

# ---------------------------------------------------------------------------------------------------------------
# 02.bilinear_sample_np
# ---------------------------------------------------------------------------------------------------------------


def bilinear_sample_np_zeros(input: np.ndarray, grid: np.ndarray, align_corners: bool = False) -> np.ndarray:
    """Reference for the NumPy exercise: :func:`bilinear_sample_np` with zeros padding."""
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


register(Check(
    id="02.bilinear_sample_np",
    builds_on=('02.unnormalize',),
    forbidden=("stn_course.sampling.bilinear_sample_np", "stn_course.sampling.bilinear_sample",
               "stn_course.sampling.grid_sample", *PACKAGE_SAMPLERS, *GRID_SAMPLE),
    idea="Every output point reads its four neighbouring pixels and weights each by the area of the opposite "
         "rectangle; a neighbour outside reads 0.",
    title="bilinear sampler in NumPy (zeros padding)",
    reference=bilinear_sample_np_zeros,
    cases=_bilinear_np_cases,
    hidden_cases=_bilinear_np_hidden,
    hint="unnormalize x with W and y with H, x0 = np.floor(x) (not astype(int), which truncates towards 0), "
         "weights are areas of opposite rectangles, and a neighbour outside the image reads 0 – mask it, don't clip "
         "it onto the border. Index input[n, :, y, x] (rows are y).",
    rtol=1e-9, atol=1e-9, points=2,
))

# ---------------------------------------------------------------------------------------------------------------
# 02.bilinear_sample
# ---------------------------------------------------------------------------------------------------------------


PADDING_HINTS = {  # what goes wrong most often in each padding mode (a hint for the failing case)
    "zeros": "zeros padding: a neighbour outside the image reads 0 but keeps its weight – don't clamp its index "
             "onto the border (that repeats the edge, which is 'border').",
    "border": "border padding clamps the *coordinate* into [0, size - 1] before the neighbours are chosen, so "
              "nothing is read outside; clamping the neighbour indices instead gives different weights.",
    "reflection": "reflection mirrors the *coordinate* about the image's edges (pixel edges with align_corners=False, "
                  "pixel centres with True), repeatedly for points far outside, then clamps it like border.",
}


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
            modes = PADDING_MODES if every_mode else (PADDING_MODES[i % len(PADDING_MODES)],)
            for padding_mode in modes:
                yield Case(
                    f"input (N={n}, C={c}, H={h}, W={w}), grid ({n}, {h_out}, {w_out}, 2) with points outside "
                    f"[-1, 1], padding_mode={padding_mode!r}, align_corners={align_corners}",
                    (tensor(rng, n, c, h, w), random_grid(rng, n, h_out, w_out, reach=reach)),
                    {"padding_mode": padding_mode, "align_corners": align_corners}, hint=PADDING_HINTS[padding_mode],
                )


def _bilinear_hidden(rng: np.random.Generator):  # every padding mode on larger, non-square images, far outside
    return _bilinear_random_cases(rng, HIDDEN_SAMPLING_SHAPES[:3], reach=3.5, every_mode=True)


register(Check(
    id="02.bilinear_sample",
    builds_on=('02.unnormalize',),
    forbidden=("stn_course.sampling.bilinear_sample", "stn_course.sampling.grid_sample", *PACKAGE_SAMPLERS,
               *GRID_SAMPLE),
    idea="Same recipe as the NumPy sampler, in torch: the padding mode acts on the coordinates, before you pick "
         "the neighbours.",
    title="vectorized bilinear sampler (grid_sample semantics)",
    reference=bilinear_sample,
    cases=_bilinear_cases,
    hidden_cases=_bilinear_hidden,
    hint="unnormalize with the right align_corners formula, apply the padding mode to the *coordinates*, "
         "and give neighbours outside the image the value 0 (zeros mode) – don't clamp them onto the border.",
    rtol=1e-9, atol=1e-9, points=3,
    grad_args=(0, 1),
))

# ---------------------------------------------------------------------------------------------------------------
# 02.identity_error – the bug hunt
# ---------------------------------------------------------------------------------------------------------------


def blog_bilinear_sample(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                         align_corners: bool = False) -> torch.Tensor:
    """The sampler of a popular TensorFlow STN tutorial, ported to torch with its bugs (ignores the options).

    ``x = 0.5 * ((x + 1) * (W - 2))`` (``max_x - 1`` with ``max_x = W - 1``), neighbour indices clipped to the
    image *before* the weights are computed from them. ``(N, C, H, W), (N, H_out, W_out, 2) -> (N, C, H_out, W_out)``
    """
    n, c, h, w = input.shape
    x = 0.5 * ((grid[..., 0] + 1.0) * (w - 2))
    y = 0.5 * ((grid[..., 1] + 1.0) * (h - 2))
    x0, y0 = torch.floor(x).long(), torch.floor(y).long()
    x0, x1 = x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1)
    y0, y1 = y0.clamp(0, h - 1), (y0 + 1).clamp(0, h - 1)
    batch = torch.arange(n, device=input.device).view(n, 1, 1)

    def pixel(yy, xx):  # (N, H_out, W_out) indices -> (N, C, H_out, W_out)
        return input[batch, :, yy, xx].permute(0, 3, 1, 2)

    x0f, x1f, y0f, y1f = x0.to(x.dtype), x1.to(x.dtype), y0.to(x.dtype), y1.to(x.dtype)
    wa, wb = ((x1f - x) * (y1f - y)).unsqueeze(1), ((x1f - x) * (y - y0f)).unsqueeze(1)
    wc, wd = ((x - x0f) * (y1f - y)).unsqueeze(1), ((x - x0f) * (y - y0f)).unsqueeze(1)
    return wa * pixel(y0, x0) + wb * pixel(y1, x0) + wc * pixel(y0, x1) + wd * pixel(y1, x1)


def _swapped_xy_sample(input, grid, padding_mode="zeros", align_corners=False):
    """A sampler that reads (y, x) from the grid as if it were (x, y)."""
    return bilinear_sample(input, grid.flip(-1), padding_mode, align_corners)


def _clamping_sample(input, grid, padding_mode="zeros", align_corners=False):
    """A sampler that clamps out-of-range neighbours onto the border instead of reading zeros."""
    return bilinear_sample(input, grid, "border", align_corners)


def identity_error_reference(sampler, image: torch.Tensor, align_corners: bool) -> float:
    """Largest ``|sampler(image, identity grid) - image|``. ``image: (N, C, H, W)`` ``-> float``"""
    n, c, h, w = image.shape
    theta = torch.eye(2, 3, dtype=image.dtype, device=image.device).expand(n, 2, 3)
    grid = affine_grid(theta, (n, c, h, w), align_corners=align_corners)
    out = sampler(image, grid, align_corners=align_corners)
    return float((out - image).abs().max())


SAMPLERS = {
    "the package's bilinear_sample (correct)": bilinear_sample,
    "the package's nearest_sample (correct)": nearest_sample,
    "the blog sampler (W - 2 rescaling, clipped neighbours)": blog_bilinear_sample,
    "a sampler that swaps x and y": _swapped_xy_sample,
    "a sampler that clamps instead of reading zeros": _clamping_sample,
}


def _identity_cases(rng: np.random.Generator, shapes=((1, 1, 1, 1), (1, 1, 4, 7), (2, 3, 6, 5), (1, 2, 9, 9))):
    k = 0
    for name, sampler in SAMPLERS.items():
        for align_corners in (False, True):
            n, c, h, w = shapes[k % len(shapes)]
            k += 1
            yield Case(f"{name}, image ({n}, {c}, {h}, {w}), align_corners={align_corners}",
                       (sampler, tensor(rng, n, c, h, w), align_corners))


def _identity_hidden(rng: np.random.Generator):  # a single row, a single column, larger images
    return _identity_cases(rng, shapes=((2, 1, 1, 6), (1, 3, 8, 1), (3, 2, 13, 17)))


register(Check(
    id="02.identity_error",
    builds_on=('02.affine_grid',),
    idea="The identity theta maps every output pixel onto itself: sample with it and measure how far the result is"
         " from the image.",
    title="the identity test: how far is sampler(image, identity grid) from the image?",
    reference=identity_error_reference,
    cases=_identity_cases,
    hidden_cases=_identity_hidden,
    hint="build the identity theta (N, 2, 3) – [[1, 0, 0], [0, 1, 0]] for every image – make its grid with the "
         "same align_corners, call sampler(image, grid, align_corners=align_corners) and return the largest "
         "absolute difference as a Python float.",
    rtol=1e-6, atol=1e-9, points=1,
))
