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
from .comparison import compare
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


def _edge_points(size: int) -> list[float]:
    """Normalized coordinates along a side of ``size`` pixels: the ends u = ±1, ±(1 + 1/size) beyond them (a whole
    pixel beyond the edge pixel's centre with align_corners=False) and the middle."""
    return [-1 - 1 / size, -1.0, 0.0, 1.0, 1 + 1 / size]


LESSON_ROW = (1.0, 3.0, 7.0, 15.0)  # Exercise 2's row: the visible 1×4 edge case reads it, at the predicted points


def _edge_cases(rng: np.random.Generator, sizes, as_numpy: bool = True):
    """Points exactly on the image's outer ends (u, v = ±1) and just beyond, every combination, both conventions:
    where zeros padding reads part of the edge pixel – the edge value is the natural guess, 0 the other one. A 1×4
    image is the lesson's row (its middle grid row holds Exercise 2's predicted points u = -1, +1, 1.25 at v = 0)."""
    for h, w in sizes:
        for align_corners in (False, True):
            vs, us = torch.meshgrid(torch.tensor(_edge_points(h), dtype=torch.float64),
                                    torch.tensor(_edge_points(w), dtype=torch.float64), indexing="ij")
            grid = torch.stack([us, vs], dim=-1)[None]  # (1, 5, 5, 2)
            image = torch.tensor(LESSON_ROW, dtype=torch.float64).view(1, 1, 1, 4) if (h, w) == (1, 4) else \
                tensor(rng, 1, 2, h, w)
            args = (image.numpy(), grid.numpy()) if as_numpy else (image, grid)
            yield Case(f"a {h}×{w} image, align_corners={align_corners}: points exactly on its outer ends (u, v = ±1) "
                       "and beyond them", args, {"align_corners": align_corners}, compare_gradients=False,
                       hint=_EDGE_HINT[align_corners])


_EDGE_HINT = {
    False: "with align_corners=False, u = ±1 is the outer edge of the edge pixel, half a pixel beyond its centre: "
           "which pixel positions are closer than 1 to such a point, inside and outside the image, and what does "
           "each contribute with zeros padding? (Neither 'the edge pixel's value' nor 'outside, so 0' – work out the "
           "weights.)",
    True: "with align_corners=True, u = ±1 is the centre of the edge pixel (weight 1) and 1 + 1/size lies between "
          "that centre and the first pixel outside: which neighbours are within 1 there, and what do they read?",
}


def _edge_slip(expected: np.ndarray, actual: np.ndarray, case: Case) -> str:
    """The first point of an outer-ends case the learner gets wrong, and what they return there in kind: the edge
    pixel's value (border padding: neighbours clipped onto the image), 0 (a point off the centres reads nothing), or
    neither (never the expected value)."""
    image, grid = case.args
    align_corners = case.kwargs["align_corners"]
    border = bilinear_sample_np(image, grid, "border", align_corners)
    wrong = np.argwhere(np.abs(actual - expected) > 1e-9 + 1e-9 * np.abs(expected))
    # Exercise 2's predicted points first: on the middle row v = 0, at u = ±1, then beyond
    n, c, i, j = min((tuple(int(k) for k in index) for index in wrong),
                     key=lambda k: (abs(grid[k[0], k[2], k[3], 1]), abs(abs(grid[k[0], k[2], k[3], 0]) - 1),
                                    -grid[k[0], k[2], k[3], 0]))
    u, v = (float(t) for t in grid[n, i, j])
    got, want = float(actual[n, c, i, j]), float(expected[n, c, i, j])
    if abs(got - border[n, c, i, j]) <= 1e-9 and abs(want - border[n, c, i, j]) > 1e-9:
        kind = ("the value of the image's edge, as if it went on (border padding): the neighbour outside reads 0 "
                "with zeros padding, and its weight is not moved onto the edge pixel")
    elif abs(got) <= 1e-9:
        kind = ("0, as if nothing of the image reached there: which pixel centres are closer than 1 to this point, "
                "and what weight does the edge pixel keep?")
    else:
        kind = "neither the edge value nor 0, and not torch's value either: redo the pixel coordinate and weights there"
    return f"at (u, v) = ({u:g}, {v:g}), align_corners={align_corners}, your sampler returns {kind}"


@dataclass(frozen=True)
class EdgeCompare:
    """The plain comparison; on a failed outer-ends case it names the first wrong point and the kind of slip there
    (module-level class: it pickles)."""

    rtol: float = 1e-9
    atol: float = 1e-9

    def __call__(self, expected, actual, case) -> tuple[bool, float, str]:
        ok, error, message = compare(expected, actual, self.rtol, self.atol)
        if ok or "outer ends" not in case.description or not np.isfinite(error):
            return ok, error, message
        return False, error, f"{message}; {_edge_slip(expected, actual, case)}"


def _bilinear_np_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES, reach=1.6):
    yield from _identity_grid_cases(rng, as_numpy=True)
    yield from _edge_cases(rng, ((1, 4), (3, 1)))
    for n, c, h, w, h_out, w_out in shapes:
        for align_corners in (False, True):
            yield Case(
                f"input array (N={n}, C={c}, H={h}, W={w}), grid ({n}, {h_out}, {w_out}, 2) with points outside "
                f"[-1, 1], align_corners={align_corners}",
                (tensor(rng, n, c, h, w).numpy(), _with_a_point_inside(rng, random_grid(rng, n, h_out, w_out,
                                                                                         reach=reach)).numpy()),
                {"align_corners": align_corners},
            )


def _with_a_point_inside(rng: np.random.Generator, grid: torch.Tensor) -> torch.Tensor:
    """Every image's first point inside the image, so that no case's answer is all zeros (an answer of zeros – a
    stub that returns them – must fail every case, whatever the seed draws for the others)."""
    grid = grid.clone()
    grid[:, 0, 0] = torch.from_numpy(rng.uniform(-0.9, 0.9, (grid.shape[0], 2))).to(grid.dtype)
    return grid


def _bilinear_np_hidden(rng: np.random.Generator):  # larger, non-square, points far outside
    yield from _edge_cases(rng, ((1, 1), (2, 7), (6, 3)))
    for case in _bilinear_np_cases(rng, HIDDEN_SAMPLING_SHAPES, reach=3.0):
        if "identity" not in case.description and "outer ends" not in case.description:
            yield case


register(exercise("02.bilinear_sample_np", reference=bilinear_sample_np_zeros, cases=_bilinear_np_cases,
                  hidden_cases=_bilinear_np_hidden, compare=EdgeCompare(), forbidden=('stn_course.sampling.bilinear_sample_np',
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
    yield from _kink_gradient_cases(rng, ((1, 2, 3, 5),))
    yield from _bilinear_random_cases(rng, SAMPLING_SHAPES)


_KINK_HINT = ("along one axis every point of this grid sits exactly on a point where the padding clamps or mirrors "
              "(the end pixels' centres, the mirror points and their images), the other coordinate strictly between "
              "pixel centres. Values agree there; compare your gradient w.r.t. the grid with F.grid_sample's at such a point, by hand: what does the backward "
              "of each operation of your padding give exactly at its bound or at a distance of 0?")


def _kink_gradient_cases(rng: np.random.Generator, shapes):
    """Gradients evaluated exactly at the kinks of border and reflection padding: one coordinate on a clamp bound or
    a mirror point (u = ±1, ±3 are mirror points in both conventions, for every size; with align_corners=False the end
    centres ±(1 - 1/size) are the clamp's bounds and ±(1 + 1/size) reflect onto them), the other random (never a pixel
    centre). ATen's gradient along the kinked axis is 0 there (the clamp counts as flat on its bounds), so a clamp
    whose backward passes the gradient at its bounds (torch.clamp) or a mirror distance with a NaN derivative at 0
    (sqrt of a square) fails here, and random points never find either."""
    def kinks(size: int, align_corners: bool) -> torch.Tensor:  # the mirror points, and where the clamp's bounds sit
        if align_corners:  # the mirrors are the end pixels' centres, which are the clamp's bounds too
            return torch.tensor([-3.0, -1.0, 1.0, 3.0], dtype=torch.float64)
        inner = 1 - 1 / size  # the end pixels' centres (the clamp's bounds), and their mirror images beyond the edges
        return torch.tensor([-3.0, -1 - 1 / size, -1.0, -inner, inner, 1.0, 1 + 1 / size, 3.0], dtype=torch.float64)

    for n, c, h, w in shapes:
        for padding_mode in ("border", "reflection"):
            for align_corners in (True, False):
                on_x, on_y = kinks(w, align_corners).expand(n, -1), kinks(h, align_corners).expand(n, -1)
                free_y = uniform(rng, n, on_x.shape[1], low=-0.95, high=0.95)  # random: never a pixel centre
                free_x = uniform(rng, n, on_y.shape[1], low=-0.95, high=0.95)
                grid = torch.cat([torch.stack([on_x, free_y], dim=-1),  # x on a kink, y free
                                  torch.stack([free_x, on_y], dim=-1)], dim=1).unsqueeze(1)  # (N, 1, P, 2)
                yield Case(f"input (N={n}, C={c}, H={h}, W={w}), padding_mode={padding_mode!r}, "
                           f"align_corners={align_corners}: gradients exactly on the border and mirror points",
                           (tensor(rng, n, c, h, w), grid), {"padding_mode": padding_mode,
                                                             "align_corners": align_corners},
                           hint=_KINK_HINT, kink=True)


def _bilinear_random_cases(rng: np.random.Generator, shapes, reach: float = 1.6, every_mode: bool = False):
    for i, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        for align_corners in (False, True):
            modes = GRID_SAMPLE_MODES if every_mode else (GRID_SAMPLE_MODES[i % len(GRID_SAMPLE_MODES)],)
            for padding_mode in modes:
                yield Case(
                    f"input (N={n}, C={c}, H={h}, W={w}), grid ({n}, {h_out}, {w_out}, 2) with points outside "
                    f"[-1, 1], padding_mode={padding_mode!r}, align_corners={align_corners}",
                    (tensor(rng, n, c, h, w),
                     _with_a_point_inside(rng, random_grid(rng, n, h_out, w_out, reach=reach))),
                    {"padding_mode": padding_mode, "align_corners": align_corners}, hint=padding.get(padding_mode).hint,
                )


def _bilinear_hidden(rng: np.random.Generator):  # every padding mode on larger, non-square images, far outside
    yield from _kink_gradient_cases(rng, ((2, 1, 7, 2), (1, 3, 1, 9), (1, 1, 6, 1)))  # 1-pixel sides' kinks too
    yield from _bilinear_random_cases(rng, HIDDEN_SAMPLING_SHAPES[:3], reach=3.5, every_mode=True)


register(exercise("02.bilinear_sample", reference=bilinear_sample, cases=_bilinear_cases,
                  hidden_cases=_bilinear_hidden, forbidden=('stn_course.sampling.bilinear_sample',
                  'stn_course.sampling.grid_sample', *PACKAGE_SAMPLERS, *GRID_SAMPLE)))

# ---------------------------------------------------------------------------------------------------------------
# 02.centre_slope – predict, before the sampler: the slope F.grid_sample's backward returns exactly on a pixel centre
# ---------------------------------------------------------------------------------------------------------------


def centre_u(width: int, x: int, align_corners: bool) -> float:
    """The normalized u whose pixel coordinate is exactly ``x`` (lesson 1's line; the cases use only sizes where it
    is a binary fraction, so unnormalizing it gives ``x`` to the last bit)."""
    if align_corners:
        return 0.0 if width == 1 else 2 * x / (width - 1) - 1
    return (2 * x + 1) / width - 1


def _centre_slope_reference(values, x: int, padding_mode: str, align_corners: bool) -> float:
    """d out / d u of the package's sampler (tested against ``F.grid_sample``'s backward) on the row ``values`` at
    the u of pixel ``x``'s centre, float64."""
    row = torch.tensor(values, dtype=torch.float64).view(1, 1, 1, -1)
    u = centre_u(row.shape[-1], x, align_corners)
    grid = torch.tensor([u, 0.0], dtype=torch.float64).view(1, 1, 1, 2).requires_grad_()
    bilinear_sample(row, grid, padding_mode, align_corners).sum().backward()
    return float(grid.grad[0, 0, 0, 0])


def _centre_slope_slips(values, x: int, padding_mode: str, align_corners: bool) -> dict[str, float]:
    """The natural wrong slopes of this case, in normalized units – each named by its kind of slip."""
    width = len(values)
    per_pixel = (width - 1) / 2 if align_corners else width / 2  # d x / d u, Exercise 2's line
    if padding_mode == "zeros":
        read = lambda m: values[m] if 0 <= m < width else 0.0  # noqa: E731 – the padding of the values
    else:  # border and reflection read inside; clamp the index for the slips only
        read = lambda m: values[min(max(m, 0), width - 1)]  # noqa: E731
    forward, backward = read(x + 1) - read(x), read(x) - read(x - 1)
    return {
        "the central difference": per_pixel * (forward + backward) / 2,
        "the difference to the left neighbour": per_pixel * backward,
        "the difference to the right neighbour, per pixel": forward,
        "the central difference, per pixel": (forward + backward) / 2,
        "the difference to the left neighbour, per pixel": backward,
        "0": 0.0,
        "the value read there": float(values[x]),
    }


_SLIP_WORDS = {
    "the central difference": "that is the central difference: the backward does not look at both sides of the "
                              "point – which two neighbours does the forward pick exactly at x, and what is the "
                              "derivative of their weights?",
    "the difference to the left neighbour": "that is the difference to the left neighbour: which two neighbours does "
                                            "floor pick when x is exactly an integer?",
    "the difference to the right neighbour, per pixel": "right neighbours, but per pixel: the grid is in normalized "
                                                        "units – how many pixels does x move when u moves by 1 "
                                                        "(Exercise 2's line, this convention, this size)?",
    "the central difference, per pixel": "the central difference, and per pixel: which neighbours does the forward "
                                         "pick exactly at x, and how many pixels is one unit of u?",
    "the difference to the left neighbour, per pixel": "the left neighbour, and per pixel: which neighbours does "
                                                       "floor pick at an integer, and how many pixels is one unit of u?",
    "0": "the slope is not flat here: is this point on a bound where this padding clamps (zeros padding never "
         "clamps: a neighbour outside reads 0 and its weight still moves)?",
    "the value read there": "that is a value, not a slope – eq. 7 taken literally at an integer: which terms have "
                            "|m - x| < 1 exactly at x = m, and do the forward's two neighbours agree with that?",
}


@dataclass(frozen=True)
class CentreSlopeCompare(AnswerCompare):
    """:class:`AnswerCompare` whose 'not this one' names the kind of slip a wrong slope matches (never the value)."""

    def __call__(self, expected, actual, case) -> tuple[bool, float, str]:
        ok, error, message = super().__call__(expected, actual, case)
        if ok or not message.startswith("not this one"):
            return ok, error, message
        got = float(actual)
        for name, slope in _centre_slope_slips(*case.args).items():
            if abs(slope - float(expected)) > 1e-9 and abs(got - slope) <= 1e-9:
                return False, error, f"{message}; {_SLIP_WORDS[name]}"
        return False, error, message


def _centre_slope_hint(values, x: int, padding_mode: str, align_corners: bool) -> str:
    """What to think about for this case's kind of point, never its slope."""
    width = len(values)
    if width == 1 and align_corners:
        return "a 1-pixel side with align_corners=True: how far does x move when u moves?"
    end = x in (0, width - 1)
    if padding_mode == "zeros":
        return ("an end pixel with zeros padding: which two neighbours does the forward pick, is one of them "
                "outside, and what does it read?") if end else ""
    return (f"an end pixel's centre with padding_mode={padding_mode!r}: is it a bound where the padded coordinate "
            "clamps, and what does the rule above the cell say about the derivative exactly there?") if end else ""


def _centre_slope_case(values, x: int, padding_mode: str, align_corners: bool) -> Case:
    values = [float(v) for v in values]
    return Case(f"the row {[round(v, 3) for v in values]}, the centre of pixel x = {x}, padding_mode={padding_mode!r}, "
                f"align_corners={align_corners}", (values, int(x), padding_mode, bool(align_corners)),
                hint=_centre_slope_hint(values, x, padding_mode, align_corners))


_ROW = (2.0, 7.0, 8.0, 17.0)  # differences 5, 1, 9: no natural slip coincides with another or the answer


def _centre_slope_cases(rng: np.random.Generator):
    for x, padding_mode, align_corners in ((1, "zeros", False), (2, "border", True), (3, "zeros", True),
                                           (0, "zeros", False), (0, "border", False), (3, "reflection", True),
                                           (3, "reflection", False)):
        yield _centre_slope_case(_ROW, x, padding_mode, align_corners)


def _centre_slope_hidden(rng: np.random.Generator):
    """Every padding mode and convention at the first, a middle and the last pixel of random rows, 1- and 2-pixel
    rows included – sizes where the centres are binary fractions (exact pixel coordinates)."""
    for align_corners, widths in ((False, (1, 2, 8)), (True, (1, 2, 5, 9))):
        for width in widths:
            values = np.round(rng.uniform(-2.0, 2.0, width), 3).tolist()
            for x in sorted({0, width // 2, width - 1}):
                for padding_mode in GRID_SAMPLE_MODES:
                    yield _centre_slope_case(values, x, padding_mode, align_corners)


register(exercise("02.centre_slope", reference=_centre_slope_reference, cases=_centre_slope_cases,
                  hidden_cases=_centre_slope_hidden, compare=CentreSlopeCompare(atol=1e-9),
                  forbidden=('stn_course.sampling.bilinear_sample', 'stn_course.sampling.grid_sample',
                             *PACKAGE_SAMPLERS, *GRID_SAMPLE)))


# ---------------------------------------------------------------------------------------------------------------
# 02.blog_identity_error – the bug hunt, predicted (a question: the answer is never printed)
# ---------------------------------------------------------------------------------------------------------------


def numbered_image(height: int, width: int) -> torch.Tensor:
    """The bug hunt's image ``(1, 1, H, W)`` float64: pixel ``(i, j)`` holds ``W i + j + 1``."""
    return torch.arange(1.0, height * width + 1.0, dtype=torch.float64).view(1, 1, height, width)


def _blog_sampler_version(rescale_max: int):
    """The blog sampler with its rescaling: ``rescale_max=1`` the tutorial's ``W - 2``, ``0`` the forks' "fix"."""
    return lambda image, grid, align_corners=True: blog_sampler(image, grid, rescale_max=rescale_max)


def _blog_identity_reference(height: int, width: int, rescale_max: int) -> float:
    """The blog sampler's identity error on the numbered image, measured with the package's identity test."""
    return identity_error(_blog_sampler_version(rescale_max), numbered_image(height, width), align_corners=True)


_BLOG_SLIP_WORDS = {
    "the fix is exact": "the 'fix' rescales every centre onto the right position – but follow the last column "
                        "(x = W - 1) through the rest of the code: floor, the clipping, then the weights computed "
                        "from the clipped neighbours. What is the output there?",
    "like the original": "that is the original version's error: with max_x the positions are right, so the wrong "
                            "pixels (if any) are elsewhere – follow the last column through floor, the clipping and "
                            "the weights",
    "the fix is exact, original": "the original rescales by max_x - 1 = W - 2: which position does output column "
                                  "W - 1 read?",
}


@dataclass(frozen=True)
class BlogErrorCompare(AnswerCompare):
    """:class:`AnswerCompare` that names the natural slip a wrong prediction matches (never the value)."""

    def __call__(self, expected, actual, case) -> tuple[bool, float, str]:
        ok, error, message = super().__call__(expected, actual, case)
        if ok or not message.startswith("not this one"):
            return ok, error, message
        height, width, rescale_max = case.args
        got = float(actual)
        if rescale_max == 0 and abs(got) <= 1e-6:
            return False, error, f"{message}; {_BLOG_SLIP_WORDS['the fix is exact']}"
        if rescale_max == 0 and abs(got - (width + 1)) <= 1e-6:
            return False, error, f"{message}; {_BLOG_SLIP_WORDS['like the original']}"
        if rescale_max == 1 and abs(got) <= 1e-6:
            return False, error, f"{message}; {_BLOG_SLIP_WORDS['the fix is exact, original']}"
        return False, error, message


_BLOG_HINT = {
    1: "the tutorial's rescaling (max_x - 1): where does column j land, and row i – and what does bilinear "
       "interpolation return on an image whose values grow linearly?",
    0: "the forks' 'fix' (max_x): the positions are right – now the neighbours and weights, at the last row and "
       "column, after the clipping",
}


def _blog_identity_case(height: int, width: int, rescale_max: int) -> Case:
    version = "the tutorial's W - 2" if rescale_max else "the 'fixed' W - 1"
    return Case(f"the numbered {height}×{width} image, rescale_max={rescale_max} ({version})",
                (height, width, rescale_max), hint=_BLOG_HINT[rescale_max])


def _blog_identity_cases(rng: np.random.Generator, sizes=((4, 5), (2, 2), (6, 3)), count=2, largest=30):
    for height, width in sizes:
        for rescale_max in (1, 0):
            yield _blog_identity_case(height, width, rescale_max)
    for (height, width), rescale_max in zip(rng.integers(2, largest, (count, 2)).tolist(), (1, 0) * count):
        yield _blog_identity_case(height, width, rescale_max)


def _blog_identity_hidden(rng: np.random.Generator):  # tall, wide and 2-pixel sides
    return _blog_identity_cases(rng, sizes=((2, 9), (17, 2), (40, 64)), count=4, largest=200)


register(exercise("02.blog_identity_error", reference=_blog_identity_reference, cases=_blog_identity_cases,
                  hidden_cases=_blog_identity_hidden, compare=BlogErrorCompare(atol=1e-6),
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
