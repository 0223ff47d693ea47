"""Checks for lesson 4 – the backward pass: padding-mode derivatives, ∂L/∂U (eq. 6), ∂L/∂G (eq. 7), ∂L/∂θ, a
complete ``torch.autograd.Function``, and two checked predictions (:mod:`.questions`): the best step of a central
difference, and the sign of ∂L/∂θ₀₂ where the lesson's descent starts.

Random cases are float64 with random points, which lie on none of the sampler's kinks (integer sample positions,
the border, mirror lines) with probability 1. The lesson's text warns that a spatial transformer *starts* on the
kinks (the identity puts every point on a pixel centre, border padding clamps exactly at the edge), so the first
cases sit exactly there (``Case(kink=True)``), on power-of-two sizes where normalized coordinates are exact in
binary, compared with ATen's convention (``F.grid_sample``'s backward; the package's references follow it,
``tests/test_checks_lesson04.py`` asserts it): the derivative of the upper neighbour at an integer, 0 exactly on
the clamp boundary. ``04.numerical_gradient`` must leave its input alone and work on a non-contiguous one (the
lesson's bug hunt: a ``reshape`` that copies); ``04.sampler_function``'s ``backward`` must ask no autograd and be
``@once_differentiable`` (:mod:`.properties`), and its cases put the kinks last, so that a backward that drops the
settings fails on an ordinary point first (as the lesson's colleague's does).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import padding
from ..autograd import (
    bilinear_sample_analytic,
    bilinear_sample_backward,
    numerical_gradient,
    sample_with_gradients,
    source_coordinates_grad,
    theta_gradient,
)
from ..padding import GRID_SAMPLE_MODES
from .cases import HIDDEN_SAMPLING_SHAPES, SAMPLING_SHAPES, random_grid, random_theta, tensor, uniform
from .equivalents import AFFINE_GRID, AUTOGRAD, GRID_SAMPLE
from .catalog import exercise
from .questions import AnswerCompare, Choice
from .properties import HAND_DERIVED_BACKWARD, KEEPS_INPUTS
from ..grids import affine_grid
from .registry import Case, register

# What a hand-derived backward may not use: autograd, and torch's sampler (whose backward autograd would run).
HAND_DERIVED = (*AUTOGRAD, *GRID_SAMPLE, "torch.ops.aten.grid_sampler_2d_backward")
PACKAGE_BACKWARD = ("stn_course.autograd.reference.bilinear_sample_backward", "stn_course.autograd.bilinear_sample_analytic",
                    "stn_course.autograd.BilinearSampleFunction", "stn_course.autograd.sample_with_gradients",
                    "stn_course.autograd.theta_gradient")


def _cube_sum(x):
    return (x ** 3).sum()


def _weighted_sin(x):
    w = torch.linspace(0.5, 2.0, x.numel(), dtype=x.dtype).view_as(x)
    return (w * torch.sin(x)).sum()


def _quadratic_form(x):
    a = torch.arange(1.0, x.numel() + 1, dtype=x.dtype)
    m = torch.outer(a, a.flip(0)) / x.numel()
    v = x.reshape(-1)
    return v @ m @ v


def _numerical_cases(rng: np.random.Generator):
    # First, so that a one-sided difference fails here with its own hint: its O(eps) error (~3·x·eps ≈ 1e-2) is far
    # above what properties.diagnose reads as float32 rounding (< 1e-4), which a default eps = 1e-6 would trigger.
    yield Case("f(x) = Σ x³ with a large eps = 1e-3, x = (1.5, -2, 0.7, 3)",
               (_cube_sum, torch.tensor([1.5, -2.0, 0.7, 3.0], dtype=torch.float64)), {"eps": 1e-3},
               hint="your error shrinks only like eps – the truncation error of a one-sided difference, not "
                    "rounding. Expand f(x + eps) and f(x - eps) in Taylor series: which combination cancels the f'' "
                    "term?")
    yield Case("f(x) = Σ x³ at one number, x of shape (1,)", (_cube_sum, tensor(rng, 1)))
    yield Case("f(x) = Σ x³, x of shape (5,)", (_cube_sum, tensor(rng, 5)))
    yield Case("f(x) = Σ w · sin(x), x of shape (2, 3) (every entry, not just the first row)",
               (_weighted_sin, tensor(rng, 2, 3)))
    yield Case("f(x) = xᵀ M x (entries interact), x of shape (3, 2)", (_quadratic_form, tensor(rng, 3, 2)),
               hint="perturb one entry at a time and put the others back before the next one (or work on a copy).")
    yield Case("f(x) = Σ w · sin(x), x = a transposed (3, 2) tensor, shape (2, 3) and not contiguous",
               (_weighted_sin, tensor(rng, 3, 2).T),
               hint="x does not own a contiguous block of memory here: does each step you take reach what f sees?")


def _numerical_hidden(rng: np.random.Generator):  # 3-d x, another eps, a float32 x
    yield Case("f(x) = Σ w · sin(x), x of shape (2, 2, 3), eps = 1e-4", (_weighted_sin, tensor(rng, 2, 2, 3)),
               {"eps": 1e-4})
    yield Case("f(x) = xᵀ M x, x of shape (12,)", (_quadratic_form, tensor(rng, 12)))
    yield Case("f(x) = Σ x³, float32 x of shape (3,), eps = 1e-2", (_cube_sum, tensor(rng, 3, dtype=torch.float32)),
               {"eps": 1e-2})
    yield Case("f(x) = xᵀ M x, x = a (2, 3, 2) tensor with its axes permuted: shape (2, 2, 3), not contiguous",
               (_quadratic_form, tensor(rng, 2, 3, 2).permute(2, 0, 1)))


register(exercise("04.numerical_gradient", reference=numerical_gradient, cases=_numerical_cases,
                  hidden_cases=_numerical_hidden, properties=(KEEPS_INPUTS,),
                  forbidden=('stn_course.autograd.reference.numerical_gradient', *AUTOGRAD)))


def best_step_exponent(unit_roundoff: float) -> float:
    """The answer key of ``04.best_step``: log10 of the step where the central difference's truncation error
    (~ eps², Taylor) meets its rounding error (~ u / eps), i.e. eps ~ u^(1/3)."""
    return math.log10(unit_roundoff ** (1 / 3))


def _best_step_cases(rng: np.random.Generator):
    yield Case("float64: unit roundoff u = 2^-53", (2.0 ** -53,))
    yield Case("a decimal float with 12 significant digits: unit roundoff u = 5e-12", (5e-12,))


def _best_step_hidden(rng: np.random.Generator):  # the other floats a learner meets
    for name, bits in (("float32", 24), ("float16", 11), ("bfloat16", 8)):
        yield Case(f"{name}: unit roundoff u = 2^-{bits}", (2.0 ** -bits,))


# ±0.5 in the exponent: eps = u^(1/3) and (3u)^(1/3) both pass; u^(1/2) (the one-sided balance) does not
register(exercise("04.best_step", reference=best_step_exponent, cases=_best_step_cases,
                  hidden_cases=_best_step_hidden, compare=AnswerCompare(atol=0.5, direction=True)))


def sign_at_identity(shift: float = 0.25) -> str:
    """The answer key of ``04.sign_at_identity``, computed on the lesson's problem: the sign of ∂L/∂t at t = 0 for
    L(t) = mean((sample(moved, shift t) - photo)²), with ``moved`` the 40×40 grey photo shifted by ``shift`` (the
    lesson's 0.25; one pixel is 0.05) – the package's analytic sampler, whose backward takes the right derivative at
    the kinks, as the learner's does."""
    from ..images import sample_image

    photo = sample_image("grace_hopper", size=(40, 40), gray=True).double()

    def shifted(image, t):
        theta = torch.stack([torch.ones_like(t), 0 * t, t, 0 * t, torch.ones_like(t), 0 * t]).view(1, 2, 3)
        return bilinear_sample_analytic(image, affine_grid(theta, image.shape))

    moved = shifted(photo, torch.tensor(float(shift), dtype=torch.float64))
    t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad((shifted(moved, t) - photo).pow(2).mean(), t)
    return "zero" if slope == 0 else "positive" if slope > 0 else "negative"


def _sign_cases(rng: np.random.Generator):
    yield Case("the shift by 0.25 of the lesson's 40×40 photo, descent started at t = 0", (0.25,))


def _sign_hidden(rng: np.random.Generator):
    """Far shifts of either sign (the blur peak at t = 0 decides) and half-pixel shifts of either sign (the valley
    is closer than the next pixel centre): the answers differ, so no constant passes; a guess passes 1 in 81."""
    yield Case("the lesson's photo shifted the other way, by -0.25", (-0.25,))
    yield Case("the lesson's photo shifted by +0.025 (half a pixel)", (0.025,))
    yield Case("the lesson's photo shifted by -0.025 (half a pixel)", (-0.025,))
    yield Case("the lesson's 0.25", (0.25,))


register(exercise("04.sign_at_identity", reference=sign_at_identity, cases=_sign_cases, hidden_cases=_sign_hidden,
                  compare=Choice("positive", "negative", "zero")))


def exact_kink_coordinates(size: int, align_corners: bool) -> torch.Tensor:
    """Grid values that unnormalize exactly to every integer and half-integer pixel coordinate from -2 to
    ``size + 1`` (pixel centres, the clamp boundaries, the mirror lines), plus ±1; exact in binary for sizes whose
    scale is a power of two (align_corners=True: size - 1; False: size)."""
    x = torch.arange(-4, 2 * size + 3, dtype=torch.float64) / 2
    g = 2 * x / (size - 1) - 1 if align_corners and size > 1 else (2 * x + 1) / size - 1
    return torch.cat([g, torch.tensor([-1.0, 1.0], dtype=torch.float64)])


def _coordinate_kink_cases():
    for mode in GRID_SAMPLE_MODES:
        for size, align_corners in ((5, True), (3, True), (4, False), (8, False)):
            yield Case(f"size={size}, padding_mode={mode!r}, align_corners={align_corners}, coordinates exactly on "
                       "the kinks: every pixel centre, half-pixel, the border and ±1",
                       (exact_kink_coordinates(size, align_corners), size),
                       {"padding_mode": mode, "align_corners": align_corners}, kink=True)


def _coordinate_cases(rng: np.random.Generator, sizes=(1, 2, 5, 16), reach=3.5):
    yield from _coordinate_kink_cases()
    for size in sizes:
        for mode in GRID_SAMPLE_MODES:
            for align_corners in (False, True):
                yield Case(f"size={size}, padding_mode={mode!r}, align_corners={align_corners}, coordinates in "
                           f"[-{reach}, {reach}] (inside, outside, several mirrors)",
                           (uniform(rng, 40, low=-reach, high=reach), size),
                           {"padding_mode": mode, "align_corners": align_corners}, hint=padding.get(mode).slope_hint)


def _coordinate_hidden(rng: np.random.Generator):  # other sizes, points many mirrors away
    return _coordinate_cases(rng, sizes=(3, 64), reach=20.0)


register(exercise("04.source_coordinates_grad", reference=source_coordinates_grad, cases=_coordinate_cases,
                  hidden_cases=_coordinate_hidden,
                  forbidden=('stn_course.autograd.reference.source_coordinates_grad', *AUTOGRAD)))


def identity_kink_grid(n: int, h: int, w: int, align_corners: bool) -> torch.Tensor:
    """The identity grid ``(n, h, w, 2)`` (every point on a pixel centre), with, in the first image, the first
    column moved exactly onto the left edge (-1) and the last onto the right edge (+1), and in the last image the
    last row onto the corner (1, -1): the kinks a spatial transformer starts on."""
    eye = torch.eye(2, 3, dtype=torch.float64).expand(n, 2, 3)
    grid = affine_grid(eye, (n, 1, h, w), align_corners).clone()
    grid[0, :, 0, 0], grid[0, :, -1, 0] = -1.0, 1.0
    grid[-1, -1] = torch.tensor([1.0, -1.0], dtype=torch.float64)
    return grid


# power-of-two sides: the identity grid's points are exact pixel centres for both align_corners
KINK_SHAPES = ((2, 3, 4, 8), (1, 2, 8, 4))


def _sampler_kink_cases(rng: np.random.Generator):
    for n, c, h, w in KINK_SHAPES[:1]:
        for mode in GRID_SAMPLE_MODES:
            for align_corners in (False, True):
                yield Case(f"the identity grid ({n}, {h}, {w}, 2) with points exactly on the border, input "
                           f"({n}, {c}, {h}, {w}), padding_mode={mode!r}, align_corners={align_corners}",
                           (tensor(rng, n, c, h, w), tensor(rng, n, c, h, w), identity_kink_grid(n, h, w, align_corners)),
                           {"padding_mode": mode, "align_corners": align_corners}, kink=True)


def _sampler_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES, reach=1.6):
    yield from _sampler_kink_cases(rng)
    for i, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        for align_corners in (False, True):
            mode = GRID_SAMPLE_MODES[(i + align_corners) % len(GRID_SAMPLE_MODES)]
            yield Case(
                f"grad_output ({n}, {c}, {h_out}, {w_out}), input ({n}, {c}, {h}, {w}), grid with points outside "
                f"[-1, 1], padding_mode={mode!r}, align_corners={align_corners}",
                (tensor(rng, n, c, h_out, w_out), tensor(rng, n, c, h, w), random_grid(rng, n, h_out, w_out, reach=reach)),
                {"padding_mode": mode, "align_corners": align_corners},
            )


def _sampler_hidden(rng: np.random.Generator):  # larger, non-square, 1-pixel sides, points far outside
    return _sampler_cases(rng, HIDDEN_SAMPLING_SHAPES, reach=3.0)


def grad_input_reference(grad_output, input, grid, padding_mode="zeros", align_corners=False):
    """∂L/∂U (eq. 6). ``-> (N, C, H, W)``"""
    return bilinear_sample_backward(grad_output, input, grid, padding_mode, align_corners, need_grid=False)[0]


def grad_grid_reference(grad_output, input, grid, padding_mode="zeros", align_corners=False):
    """∂L/∂G (eq. 7 chained through padding and unnormalize). ``-> (N, H_out, W_out, 2)``"""
    return bilinear_sample_backward(grad_output, input, grid, padding_mode, align_corners, need_input=False)[1]


register(exercise("04.grad_input", reference=grad_input_reference, cases=_sampler_cases,
                  hidden_cases=_sampler_hidden, forbidden=(*PACKAGE_BACKWARD, *HAND_DERIVED)))

register(exercise("04.grad_grid", reference=grad_grid_reference, cases=_sampler_cases, hidden_cases=_sampler_hidden,
                  forbidden=(*PACKAGE_BACKWARD, *HAND_DERIVED)))


def _function_cases(rng: np.random.Generator):
    """``_sampler_cases`` with the kinks last: a Function whose backward gets the settings wrong fails on an
    ordinary point first, and is not told about kinks it handles as well as its halves do."""
    cases = list(_sampler_cases(rng))
    return [c for c in cases if not c.kink] + [c for c in cases if c.kink]


def _function_hidden(rng: np.random.Generator):
    cases = list(_sampler_hidden(rng))
    return [c for c in cases if not c.kink] + [c for c in cases if c.kink]


register(exercise("04.sampler_function", reference=sample_with_gradients, cases=_function_cases,
                  hidden_cases=_function_hidden, properties=(HAND_DERIVED_BACKWARD,),
                  forbidden=(*PACKAGE_BACKWARD, *GRID_SAMPLE)))


def _chain_kink_cases(rng: np.random.Generator):
    for n, c, h, w in KINK_SHAPES:
        for mode in GRID_SAMPLE_MODES:
            for align_corners in (False, True):
                yield Case(f"theta = the identity (a spatial transformer's start: every point on a pixel centre), "
                           f"input ({n}, {c}, {h}, {w}), padding_mode={mode!r}, align_corners={align_corners}",
                           (tensor(rng, n, c, h, w), tensor(rng, n, c, h, w),
                            torch.eye(2, 3, dtype=torch.float64).repeat(n, 1, 1)),
                           {"padding_mode": mode, "align_corners": align_corners}, kink=True)


def _chain_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES[1:]):
    yield from _chain_kink_cases(rng)
    for n, h_out, w_out in ((1, 1, 1), (3, 7, 2)):  # a 1-pixel and a non-square output: the base grid's conventions
        for align_corners in (False, True):
            yield Case(f"input ({n}, 2, 5, 6), theta ({n}, 2, 3), output {h_out}×{w_out}, align_corners={align_corners}",
                       (tensor(rng, n, 2, h_out, w_out), tensor(rng, n, 2, 5, 6), random_theta(rng, n)),
                       {"align_corners": align_corners})
    for i, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        for align_corners in (False, True):
            mode = GRID_SAMPLE_MODES[i % len(GRID_SAMPLE_MODES)]
            yield Case(f"input ({n}, {c}, {h}, {w}), theta ({n}, 2, 3), output {h_out}×{w_out}, padding_mode={mode!r}, "
                       f"align_corners={align_corners}",
                       (tensor(rng, n, c, h_out, w_out), tensor(rng, n, c, h, w), random_theta(rng, n)),
                       {"padding_mode": mode, "align_corners": align_corners})


def _chain_hidden(rng: np.random.Generator):  # larger and non-square, batch 4
    return _chain_cases(rng, HIDDEN_SAMPLING_SHAPES)


register(exercise("04.theta_gradient", reference=theta_gradient, cases=_chain_cases, hidden_cases=_chain_hidden,
                  forbidden=(*PACKAGE_BACKWARD, 'stn_course.autograd.reference.affine_grid_backward',
                  'stn_course.autograd.AffineGridFunction', *HAND_DERIVED)))
