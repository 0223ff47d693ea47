"""Checks for lesson 3 – the spatial transformer, forward: the parameters of every family that read a box given in
pixels (the head's start among them), the tilt of a homography that stretches the input by a given ratio across the
output (a numeric answer, compared without revealing it: :mod:`.questions`), a projective grid (the colleague's bugs), and a thin-plate-spline grid built from its
conditions alone (the solve, the kernel's r = 0, the evaluation) – one exercise.

Every function reference is :mod:`stn_course.stn` or :mod:`stn_course.grids`; the predictions' answer keys are
computed here from the package."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..grids import projective_grid, tps_control_points, tps_grid
from ..stn import box_to_params, window_to_params
from .questions import NOT_THIS_ONE, AnswerCompare
from .cases import conventions, tensor
from .equivalents import AFFINE_GRID
from .catalog import exercise
from .comparison import compare
from .registry import Case, register

# (N, H_out, W_out): 1-pixel, non-square, batch 1 and > 1
GRID_SHAPES = [(1, 1, 1), (1, 1, 5), (2, 4, 7), (3, 9, 6), (1, 16, 16)]
HIDDEN_GRID_SHAPES = [(2, 1, 9), (3, 13, 1), (4, 11, 7), (1, 24, 31)]


def _box(rng: np.random.Generator, n: int, height: int, width: int, dtype=torch.float64, free: bool = False
         ) -> torch.Tensor:
    """``n`` boxes ``(x0, x1, y0, y1)``: first and last pixel column and row they cover, some reaching past the image's
    edges; of the image's shape, or (``free``) of any shape."""
    s = torch.from_numpy(rng.uniform(0.1, 1.3, (2, n)))
    if not free:
        s[1] = s[0]
    cx, cy = (torch.from_numpy(rng.uniform(-0.2, 1.2, (2, n))) * torch.tensor([[width], [height]]) - 0.5)
    half_x, half_y = (s[0] * width - 1) / 2, (s[1] * height - 1) / 2
    return torch.stack([cx - half_x, cx + half_x, cy - half_y, cy + half_y], 1).to(dtype)


def _window_slips(transform: str, boxes: torch.Tensor, height: int, width: int, tps_grid_size,
                  align_corners: bool = False):
    """The parameters of the popular slips, each with what it gets wrong (never a value): the box's pixels read as
    its edges (one pixel too narrow), the centre's half pixel, with ``align_corners=True`` the edges of ``False``
    carried over (one pixel too wide) or ``False``'s normalization, one scale for a family that has two, the scale of
    attention / rts read from the rows."""
    x0, x1, y0, y1 = boxes.detach().to(torch.float64).unbind(1)
    if align_corners:
        right = ((x1 - x0) / (width - 1), (y1 - y0) / (height - 1))
        centre = ((x0 + x1) / (width - 1) - 1, (y0 + y1) / (height - 1) - 1)
        scale_options = [(right, None), (((x1 - x0 + 1) / (width - 1), (y1 - y0 + 1) / (height - 1)), "true-edges"),
                         (((x1 - x0 + 1) / width, (y1 - y0 + 1) / height), "false-rule"),
                         (((x1 - x0) / width, (y1 - y0) / height), "false-rule")]
        shift_options = [(centre, None), (((x0 + x1 + 1) / width - 1, (y0 + y1 + 1) / height - 1), "false-rule"),
                         (((x0 + x1) / width - 1, (y0 + y1) / height - 1), "false-rule")]
    else:
        scale_options = [(((x1 - x0 + 1) / width, (y1 - y0 + 1) / height), None),
                         (((x1 - x0) / width, (y1 - y0) / height), "edges")]
        shift_options = [(((x0 + x1 + 1) / width - 1, (y0 + y1 + 1) / height - 1), None),
                         (((x0 + x1) / width - 1, (y0 + y1) / height - 1), "half")]
    one_scale = transform in ("attention", "rts")
    for scales, scales_slip in scale_options:
        for shift, shift_slip in shift_options:
            aspects = [((scales[0], scales[1]), None)]
            if one_scale:
                aspects += [((scales[1], scales[1]), "rows"), (((scales[0] + scales[1]) / 2,) * 2, "rows")]
            else:
                aspects += [((scales[0], scales[0]), "one-scale")]
            for (sx, sy), aspect_slip in aspects:
                slips = tuple(dict.fromkeys(slip for slip in (scales_slip, shift_slip, aspect_slip) if slip))
                if slips:
                    yield slips, window_to_params(transform, sx, sy, *shift, tps_grid_size)


_SLIP_MESSAGES = {
    "edges": ("the window is one pixel narrower than the box: x0 and x1 are the first and last pixel it must cover "
              "(centres), not its edges – a one-pixel box (x0 = x1) must still read one pixel"),
    "half": "the window's centre is half a pixel off: where is pixel j's centre in normalized x (align_corners=False)?",
    "true-edges": ("with align_corners=True the window is one pixel too wide: -1 and +1 are the first and last pixel "
                   "centres – of the input and of the output – so the output's first and last pixels read t - s and "
                   "t + s, which must be the box's first and last pixel centres, not its edges"),
    "false-rule": ("you normalized with the align_corners=False rule, but this case has align_corners=True: where is "
                   "pixel j's centre in normalized x under True (lesson 2)?"),
    "one-scale": ("this family has a scale per axis and can read a box of any shape exactly, but yours has the "
                  "image's shape (its y scale copied from x)"),
    "rows": ("your scale depends on the box's rows (y0, y1); this family has one scale, and the convention reads it "
             "from the columns x0, x1 alone – on boxes of the image's shape yours gives the right values but the "
             "wrong gradient w.r.t. boxes"),
}


@dataclass(frozen=True)
class WindowCompare:
    """The values of ``03.attention_window`` without showing one (a scale would give the answer away): a wrong form
    is named as usual, a wrong value by the kind of slip it matches (:func:`_window_slips`), or by the test that
    finds it."""

    rtol: float = 1e-6
    atol: float = 1e-6

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = AnswerCompare(self.rtol, self.atol)(expected, actual, case)
        if ok or message != NOT_THIS_ONE:
            return ok, error, message
        transform, boxes, height, width = case.args
        grid_size = case.kwargs.get("tps_grid_size", (4, 4))
        align_corners = case.kwargs.get("align_corners", False)
        actual64 = actual.detach().to(torch.float64)
        for slips, candidate in _window_slips(transform, boxes, height, width, grid_size, align_corners):
            if torch.allclose(actual64, candidate, rtol=self.rtol, atol=max(self.atol, 1e-5)):
                return False, error, "; and ".join(_SLIP_MESSAGES[slip] for slip in slips)
        return False, error, ("not the window of the box: set your parameters as a fresh SpatialTransformer's "
                              "head.bias and compare its output with the box's pixels (the whole image, a one-pixel "
                              "box, a box of another shape than the image's)")


def _window_case(transform: str, text: str, boxes, height: int, width: int, grid=(4, 4), dtype=torch.float64,
                 align_corners: bool = False):
    boxes = torch.as_tensor(boxes, dtype=dtype)
    return Case(f"transform={transform!r}: {text}, {height}×{width} image, align_corners={align_corners}",
                (transform, boxes, height, width), {"tps_grid_size": grid, "align_corners": align_corners})


def _window_cases(rng: np.random.Generator):
    yield _window_case("attention", "the central 16×16 pixels (16 to 31) of a 48×48 input: one input pixel per "
                       "output pixel of a 16×16 glimpse", [[16.0, 31.0, 16.0, 31.0]], 48, 48)
    yield _window_case("affine", "a box wider than the image's shape: affine reads it exactly",
                       [[2.0, 25.0, 10.0, 19.0]], 30, 40)
    for transform in ("affine", "attention", "rts", "projective", "tps"):
        yield _window_case(transform, "the whole image, pixels x 0 to 31, y 0 to 23: the identity",
                           [[0.0, 31.0, 0.0, 23.0]], 24, 32)
    yield _window_case("attention", "the trap of the fencepost: one-pixel boxes (x0 = x1, y0 = y1) must still read "
                       "their pixel", [[3.0, 3.0, 5.0, 5.0], [0.0, 0.0, 6.0, 6.0]], 7, 7)
    yield _window_case("attention", "the trap of the one scale: a box taller than the image's shape – s from its "
                       "columns x0, x1", [[8.0, 39.0, 5.0, 52.0]], 64, 64)
    yield _window_case("tps", "a box of another shape, a 3×5 grid of control points", _box(rng, 2, 20, 36, free=True),
                       20, 36, grid=(3, 5))
    yield _window_case("projective", "a batch of 3 boxes", _box(rng, 3, 20, 36, free=True), 20, 36)
    yield _window_case("rts", "a float32 batch of 2", _box(rng, 2, 16, 16), 16, 16, dtype=torch.float32)
    yield _window_case("affine", "a box of another shape than the image's", [[2.0, 25.0, 10.0, 19.0]], 30, 40,
                       align_corners=True)
    yield _window_case("projective", "a batch of 3 boxes", _box(rng, 3, 20, 36, free=True), 20, 36,
                       align_corners=True)
    for transform in ("attention", "tps"):  # the same values as with False, not the same gradient
        yield _window_case(transform, "the whole image, pixels x 0 to 31, y 0 to 23: the identity",
                           [[0.0, 31.0, 0.0, 23.0]], 24, 32, align_corners=True)
    yield _window_case("affine", "the trap of the fencepost: a one-pixel box on a non-square image",
                       [[4.0, 4.0, 2.0, 2.0]], 9, 12, align_corners=True)
    yield _window_case("attention", "the trap of the one scale: a box wider than the image's shape on a non-square "
                       "image – s from its columns x0, x1", [[3.0, 20.0, 6.0, 13.0]], 24, 32)


def _window_hidden(rng: np.random.Generator):  # 1-pixel images and boxes, odd margins, tall images, both dtypes
    yield _window_case("affine", "a batch of 9 boxes on a tall image", _box(rng, 9, 50, 12, free=True), 50, 12)
    yield _window_case("affine", "a 1×1 image, its one pixel: the identity", [[0.0, 0.0, 0.0, 0.0]], 1, 1)
    yield _window_case("rts", "the central 10×10 pixels of a 25×25 input (7.5 to 16.5)", [[7.5, 16.5, 7.5, 16.5]], 25, 25)
    yield _window_case("projective", "a one-pixel box", [[4.0, 4.0, 0.0, 0.0]], 9, 11)
    yield _window_case("tps", "one-pixel boxes, a 2×2 grid", [[2.0, 2.0, 1.0, 1.0], [0.0, 0.0, 6.0, 6.0]], 7, 7,
                       grid=(2, 2))
    yield _window_case("attention", "a box wider than the image's shape", [[2.0, 25.0, 10.0, 19.0]], 30, 40)
    yield _window_case("tps", "a float32 batch, a 5×3 grid", _box(rng, 4, 96, 128, torch.float32, free=True), 96,
                       128, grid=(5, 3), dtype=torch.float32)
    yield _window_case("rts", "a box taller than the image's shape", [[1.0, 6.0, 0.0, 19.0]], 20, 20)
    # align_corners=True: one-pixel boxes (no width), 2-pixel images, the central crop, float32, tps 2×2
    yield _window_case("attention", "one-pixel boxes (x0 = x1, y0 = y1)", [[3.0, 3.0, 5.0, 5.0], [0.0, 0.0, 6.0, 6.0]],
                       7, 7, align_corners=True)
    yield _window_case("affine", "a 2×2 image, its right column", [[1.0, 1.0, 0.0, 1.0]], 2, 2, align_corners=True)
    yield _window_case("rts", "the central 16×16 pixels (16 to 31) of a 48×48 input", [[16.0, 31.0, 16.0, 31.0]],
                       48, 48, align_corners=True)
    yield _window_case("tps", "a float32 batch, a 2×2 grid", _box(rng, 3, 9, 14, torch.float32, free=True), 9, 14,
                       grid=(2, 2), dtype=torch.float32, align_corners=True)
    yield _window_case("projective", "a box on a tall image", _box(rng, 2, 50, 12, free=True), 50, 12,
                       align_corners=True)


register(exercise("03.attention_window", reference=box_to_params, cases=_window_cases, hidden_cases=_window_hidden,
                  compare=WindowCompare(),
                  forbidden=('stn_course.stn.box_to_params', 'stn_course.stn.box_to_attention',
                             'stn_course.stn.window_to_params', 'stn_course.stn.window_params',
                             'stn_course.stn.identity_params')))


def _projective_cases(rng: np.random.Generator, shapes=GRID_SHAPES, spread=0.15):
    for i, (n, h, w) in enumerate(shapes):
        for align_corners in conventions():
            H = torch.eye(3, dtype=torch.float64) + tensor(rng, n, 3, 3, scale=spread)
            if i == 0:
                H = torch.eye(3, dtype=torch.float64).expand(n, 3, 3).clone()
            H[:, 2, 2] = 1 + 0.5 * torch.from_numpy(rng.uniform(0, 1, n))
            yield Case(f"H (N={n}, 3, 3) with a perspective row, output {h}×{w}, align_corners={align_corners}",
                       (H, (n, 1, h, w)), {"align_corners": align_corners})


def _projective_hidden(rng: np.random.Generator):  # larger, non-square outputs, a stronger perspective
    return _projective_cases(rng, HIDDEN_GRID_SHAPES, spread=0.3)


def _column_centre(j: int, width: int, align_corners: bool) -> float:
    """The normalized x of output column ``j`` of ``width`` (lesson 2's rule; a single column sits at 0)."""
    if align_corners:
        return 0.0 if width == 1 else -1 + 2 * j / (width - 1)
    return (2 * j + 1) / width - 1


def perspective_stretch(pi31: float, width: int, align_corners: bool) -> float:
    """For a homography with bottom row ``(π₃₁, 0, 1)`` and the identity above it, the input distance between the
    samples of the output's first two columns over that between its last two columns (``width >= 2``). x_s = x / w
    with w = π₃₁ x + 1, so x_s(b) - x_s(a) = (b - a) / (w(a) w(b)) – the numerator moves with x too – and the ratio is
    w(x_{W-2}) w(x_{W-1}) / (w(x_0) w(x_1)) at the columns' centres (tests/test_checks_lesson03.py measures it on
    :func:`~stn_course.grids.projective_grid`). Needs w > 0 at every column: the horizon outside the output."""
    if width < 2:
        raise ValueError(f"perspective_stretch needs width >= 2 (two pairs of columns), got {width}")
    w = [pi31 * _column_centre(j, width, align_corners) + 1 for j in (0, 1, width - 2, width - 1)]
    return w[2] * w[3] / (w[0] * w[1])


def tilt_for_stretch(ratio: float, width: int, align_corners: bool) -> float:
    """The answer key of ``03.perspective_stretch``: the π₃₁ with w > 0 at every column for which
    :func:`perspective_stretch` is ``ratio`` (``ratio > 0``, ``width >= 3``). With the first two centres at -α, -β
    and the last two at β, α, ``ratio = (1 + πα)(1 + πβ) / ((1 - πα)(1 - πβ))`` grows from 0 to ∞ on those tilts:
    the root of ``(r - 1)αβ π² - (r + 1)(α + β) π + (r - 1) = 0`` nearer 0, in a form stable at r = 1 and β = 0."""
    if width < 3:
        raise ValueError(f"tilt_for_stretch needs width >= 3 (with 2 columns every tilt gives 1), got {width}")
    if not ratio > 0:
        raise ValueError(f"tilt_for_stretch needs ratio > 0 (a ratio of two distances), got {ratio}")
    a, b = -_column_centre(0, width, align_corners), -_column_centre(1, width, align_corners)
    root = float(np.sqrt(((ratio + 1) * (a + b)) ** 2 - 4 * (ratio - 1) ** 2 * a * b))
    return 2 * (ratio - 1) / ((ratio + 1) * (a + b) + root)


def _stretch_cases(rng: np.random.Generator):
    yield Case("the first pair 6 times as far apart as the last, 64 columns, align_corners=False", (6.0, 64, False))
    yield Case("the first pair a quarter as far apart as the last, 9 columns, align_corners=True", (0.25, 9, True))
    yield Case("the first pair twice as far apart as the last, 5 columns, align_corners=False", (2.0, 5, False))


def _stretch_hidden(rng: np.random.Generator):  # both directions, both conventions, 3 and 4 columns, no stretch
    for ratio, width, align_corners in ((3.5, 16, True), (0.1, 4, False), (1.0, 12, True), (20.0, 31, False),
                                        (0.6, 3, True), (1.5, 3, False)):
        yield Case(f"ratio {ratio}, {width} columns, align_corners={align_corners}", (ratio, width, align_corners))


register(exercise("03.perspective_stretch", reference=tilt_for_stretch, cases=_stretch_cases,
                  hidden_cases=_stretch_hidden, compare=AnswerCompare(rtol=1e-6, atol=1e-9, direction=True)))


register(exercise("03.projective_grid", reference=projective_grid, cases=_projective_cases,
                  hidden_cases=_projective_hidden, forbidden=('stn_course.grids.projective_grid', *AFFINE_GRID)))


@dataclass(frozen=True)
class TpsGridCompare:
    """The values of ``03.tps_grid``, and when they are not finite, the kind of slip: ``U`` evaluated as
    ``r² log r²`` where ``r = 0`` (never a value of the answer)."""

    rtol: float = 1e-7
    atol: float = 1e-7

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = compare(expected, actual, self.rtol, self.atol)
        if (not ok and isinstance(actual, torch.Tensor) and actual.shape == expected.shape
                and actual.is_floating_point() and not bool(torch.isfinite(actual).all())):
            return False, error, ("your grid is not finite (nan or inf) – and a solve spreads one nan to every "
                                  "coefficient. Where does your spline evaluate U(r) = r² log r² at r = 0, and what "
                                  "is its value there?")
        return ok, error, message


def _tps_grid_cases(rng: np.random.Generator, shapes=GRID_SHAPES[1:], side=4, spread=0.12):
    k = side * side
    for i, (n, h, w) in enumerate(shapes):
        for align_corners in conventions():
            target = tps_control_points(side, side, dtype=torch.float64)
            source = target + (0 if i == 0 else tensor(rng, n, k, 2, scale=spread))
            source = source.expand(n, k, 2).clone()
            yield Case(f"{k} source control points (batch {n}), output {h}×{w}, align_corners={align_corners}",
                       (source, (n, 1, h, w)), {"align_corners": align_corners})


def _on_the_targets(rng: np.random.Generator, n: int, side: int, spread: float, dtype=torch.float64) -> Case:
    """A bend read on a ``side × side`` output with ``align_corners=True``: its pixel centres are the targets p_k,
    so the grid must be the source points q_k themselves."""
    target = tps_control_points(side, side, dtype=torch.float64)
    source = (target + tensor(rng, n, side * side, 2, scale=spread)).to(dtype)
    return Case(f"{side * side} bent control points (batch {n}) read on a {side}×{side} output with "
                f"align_corners=True: its pixel centres are the targets p_k, so the grid must be the q_k",
                (source, (n, 1, side, side)), {"align_corners": True})


def _tps_grid_visible(rng: np.random.Generator):  # 16 control points, and 9: the network need not use 16
    yield _on_the_targets(rng, 2, 4, 0.12)
    yield from _tps_grid_cases(rng)
    yield from _tps_grid_cases(rng, [(2, 5, 3)], side=3)


def _tps_grid_hidden(rng: np.random.Generator):  # 9 and 25 control points, larger non-square outputs, strong bends
    yield _on_the_targets(rng, 3, 5, 0.2)
    yield _on_the_targets(rng, 1, 3, 0.3)
    yield from _tps_grid_cases(rng, HIDDEN_GRID_SHAPES[:2], side=3)
    yield from _tps_grid_cases(rng, HIDDEN_GRID_SHAPES[2:], side=5, spread=0.25)


register(exercise("03.tps_grid", reference=tps_grid, cases=_tps_grid_visible, hidden_cases=_tps_grid_hidden,
                  compare=TpsGridCompare(),
                  forbidden=('stn_course.grids.tps_grid', 'stn_course.grids.tps_kernel',
                             'stn_course.grids.tps_coefficients', 'stn_course.grids.tps_transform')))
