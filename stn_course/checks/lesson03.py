"""Checks for lesson 3 – the spatial transformer, forward: an attention window from pixels, a head's start (the
identity, or a centred window), the tilt of a homography that stretches the input by a given ratio across the
output (a numeric answer, compared without revealing it: :mod:`.questions`), a projective grid (the colleague's bugs), and a thin-plate-spline grid built from its
conditions alone (the solve, the kernel's r = 0, the evaluation) – one exercise.

Every function reference is :mod:`stn_course.stn` or :mod:`stn_course.grids` (``03.start_params`` through
:func:`~stn_course.stn.window_params` with the scale the sizes give); the predictions' answer keys are computed here
from the package."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..grids import projective_grid, tps_control_points, tps_grid
from ..stn import TRANSFORMS, box_to_attention, window_params
from .questions import NOT_THIS_ONE, AnswerCompare
from .cases import conventions, tensor
from .equivalents import AFFINE_GRID
from .catalog import exercise
from .comparison import compare
from .registry import Case, register

# (N, H_out, W_out): 1-pixel, non-square, batch 1 and > 1
GRID_SHAPES = [(1, 1, 1), (1, 1, 5), (2, 4, 7), (3, 9, 6), (1, 16, 16)]
HIDDEN_GRID_SHAPES = [(2, 1, 9), (3, 13, 1), (4, 11, 7), (1, 24, 31)]


def _box(rng: np.random.Generator, n: int, height: int, width: int, dtype=torch.float64) -> torch.Tensor:
    """``n`` windows with the image's aspect ratio, ``(x0, x1, y0, y1)`` in pixels, some reaching past the edges."""
    s = torch.from_numpy(rng.uniform(0.1, 1.3, n))
    cx, cy = (torch.from_numpy(rng.uniform(-0.2, 1.2, (2, n))) * torch.tensor([[width], [height]]) - 0.5)
    return torch.stack([cx - s * width / 2, cx + s * width / 2, cy - s * height / 2, cy + s * height / 2], 1).to(dtype)


@dataclass(frozen=True)
class WindowCompare:
    """The values of ``03.attention_window``, and for a window whose height does not match its width, the kind of slip
    when only ``s`` is wrong: read from the top and bottom edges too, when the convention reads it from the left and
    right edges alone (never a value of the answer)."""

    rtol: float = 1e-6
    atol: float = 1e-6

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = compare(expected, actual, self.rtol, self.atol)
        if (ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape
                or actual.dtype != expected.dtype):  # the form first: compare() names it
            return ok, error, message
        actual, expected = actual.detach().to(torch.float64), expected.detach().to(torch.float64)
        tolerance = self.atol + self.rtol * expected.abs()
        if bool(((actual[:, 1:] - expected[:, 1:]).abs() <= tolerance[:, 1:]).all()):
            boxes, height, _ = case.args
            y_scale = ((boxes[:, 3] - boxes[:, 2]) / height).to(torch.float64)
            uses_y = any(bool(((actual[:, 0] - candidate).abs() <= tolerance[:, 0]).all())
                         for candidate in (y_scale, (expected[:, 0] + y_scale) / 2))
            return False, error, ("the centre (t_x, t_y) is right, but s is not" + (
                ": yours depends on the window's top and bottom edges (y0, y1). This window is not the image's shape, "
                "and the convention reads s from its left and right edges alone – on windows of the image's shape "
                "yours gives the right values but the wrong gradient w.r.t. boxes" if uses_y else
                ": how wide is the window in normalized units, and what fraction of that is s?"))
        return ok, error, message


def _odd_window() -> torch.Tensor:
    """A window taller than the image's shape (the convention reads s from x0, x1 alone)."""
    return torch.tensor([[8.0, 40.0, 4.5, 52.5]], dtype=torch.float64)


def _window_cases(rng: np.random.Generator):
    yield Case("a window taller than the image's shape on a 64×64 image: s from its left and right edges (x0, x1)",
               (_odd_window(), 64, 64))
    yield Case("the whole 64×64 image (edges at -1/2 and 63.5): the identity",
               (torch.tensor([[-0.5, 63.5, -0.5, 63.5]], dtype=torch.float64), 64, 64))
    yield Case("the top half's middle of a 64×64 image, pixels x 15.5 to 47.5, y -0.5 to 31.5",
               (torch.tensor([[15.5, 47.5, -0.5, 31.5]], dtype=torch.float64), 64, 64))
    yield Case("a batch of 5 windows on a 28×28 image", (_box(rng, 5, 28, 28), 28, 28))
    yield Case("a batch of 3 windows on a non-square 20×36 image (height 20)", (_box(rng, 3, 20, 36), 20, 36))
    yield Case("float32 boxes keep their dtype", (_box(rng, 2, 16, 16, torch.float32), 16, 16))


def _window_hidden(rng: np.random.Generator):  # a window not of the image's shape, other sizes, 1-pixel windows
    yield Case("a window wider than the image's shape on a 40×30 image: s from x0, x1",
               (torch.tensor([[2.0, 26.0, 10.0, 20.0]], dtype=torch.float64), 40, 30))
    yield Case("a batch of 9 windows on a tall 50×12 image", (_box(rng, 9, 50, 12), 50, 12))
    yield Case("one-pixel windows on a 7×7 image", (torch.tensor([[2.5, 3.5, 0.5, 1.5], [-0.5, 0.5, 5.5, 6.5]],
                                                                dtype=torch.float64), 7, 7))
    yield Case("a float32 batch of 4 on a 96×128 image", (_box(rng, 4, 96, 128, torch.float32), 96, 128))


register(exercise("03.attention_window", reference=box_to_attention, cases=_window_cases, hidden_cases=_window_hidden,
                  compare=WindowCompare(), forbidden=('stn_course.stn.box_to_attention',)))


def start_params(transform: str, in_size: int, out_size: int, tps_grid_size=(4, 4)) -> torch.Tensor:
    """The reference of ``03.start_params``: the float32 parameters that make a fresh head read the centred window of
    ``out_size × out_size`` input pixels of an ``in_size × in_size`` input, one input pixel per output pixel – with
    ``align_corners=False`` that window is ``out_size / in_size`` of the input's normalized extent
    (:func:`~stn_course.stn.window_params`); ``out_size == in_size`` is the identity."""
    return window_params(transform, out_size / in_size, tps_grid_size, dtype=torch.float32)


@dataclass(frozen=True)
class StartCompare:
    """The values of ``03.start_params`` without showing a wrong one (``in / out`` returned would give the scale
    away): a wrong form is named as usual, a wrong value by the test that finds it."""

    rtol: float = 1e-6
    atol: float = 1e-6

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = AnswerCompare(self.rtol, self.atol)(expected, actual, case)
        if ok or message != NOT_THIS_ONE:
            return ok, error, message
        return False, error, ("not the head's neutral start: set your parameters as a fresh SpatialTransformer's "
                              "head.bias and compare its output with the input's central out_size × out_size pixels")


def _start_cases(rng: np.random.Generator):
    for transform in TRANSFORMS:
        yield Case(f"transform={transform!r}, a 28×28 input into a 28×28 output: the identity", (transform, 28, 28),
                   {"tps_grid_size": (4, 4)})
    for transform in ("affine", "attention", "rts", "projective", "tps"):
        yield Case(f"transform={transform!r}, a 48×48 input into a 16×16 output", (transform, 48, 16),
                   {"tps_grid_size": (4, 4)})
    yield Case("transform='tps' with a 3×5 grid of control points, 60×60 into 24×24", ("tps", 60, 24),
               {"tps_grid_size": (3, 5)})


def _start_hidden(rng: np.random.Generator):  # other sizes (one larger than the input), other control-point grids
    for transform, n_in, n_out in (("affine", 64, 24), ("attention", 40, 10), ("rts", 32, 48), ("projective", 50, 20)):
        yield Case(f"transform={transform!r}, {n_in}×{n_in} into {n_out}×{n_out}", (transform, n_in, n_out),
                   {"tps_grid_size": (4, 4)})
    for rows, cols, n_in, n_out in ((2, 2, 30, 30), (5, 3, 64, 16), (6, 6, 20, 8), (2, 7, 36, 12)):
        yield Case(f"transform='tps' with a {rows}×{cols} grid of control points, {n_in}×{n_in} into {n_out}×{n_out}",
                   ("tps", n_in, n_out), {"tps_grid_size": (rows, cols)})


register(exercise("03.start_params", reference=start_params, cases=_start_cases, hidden_cases=_start_hidden,
                  compare=StartCompare(),
                  forbidden=('stn_course.stn.identity_params', 'stn_course.stn.window_params')))


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
