"""Checks for lesson 4 – the backward pass: a numerical-gradient checker (a bug hunt), the sampler's whole backward
(∂L/∂U, eq. 6, and ∂L/∂G, eq. 7 chained through the padding mode and the unnormalization, in one exercise),
the whole transformer as one ``torch.autograd.Function`` (∂L/∂U and ∂L/∂θ, by hand), and a checked prediction (:mod:`.questions`): the sign of
∂L/∂θ₀₂ where the lesson's descent starts.

Random cases are float64 with random points, which lie on none of the sampler's kinks (integer sample positions,
the border, mirror lines) with probability 1. The lesson's text warns that a spatial transformer *starts* on the
kinks (the identity puts every point on a pixel centre, border padding clamps exactly at the edge), so cases
sit exactly there (``Case(kink=True)``), on power-of-two sizes where normalized coordinates are exact in
binary, compared with ATen's convention (``F.grid_sample``'s backward; the package's references follow it,
``tests/test_checks_lesson04.py`` asserts it): the derivative of the upper neighbour at an integer, 0 exactly on
the clamp boundary. The sampler's cases run the ordinary points first and the kinks last, so that a bug
everywhere (a scale, a scatter that assigns) is not diagnosed as a kink, and one only at the kinks is. ``04.numerical_gradient`` must leave its
input alone and work on a non-contiguous one (the lesson's bug hunt: a ``reshape`` that copies); ``04.stn_function`` (the whole transformer, θ → grid → sample, as one
``autograd.Function``) must ask no autograd in its ``backward`` and be ``@once_differentiable`` (:mod:`.properties`; a
differentiable-again backward is told what goes wrong, a second derivative nobody derived, not the fix); its cases
put the kinks last, so that a backward that drops the settings fails on an ordinary point first, and include 1-pixel
outputs, whose base grid sits at 0 (a hand-built ``linspace(-1, 1, 1)`` is -1).
``04.referee_blind_spot`` asks, as a function of the width, the convention and the referee's step, for the distance
from g = 0 to the nearest point where central differences and the backward disagree (kink - eps: within eps of a
kink the two evaluations straddle it and mix its slopes), None where there is none (a 1-pixel width with
``align_corners=True``); :class:`BlindSpotCompare` names the kind of slip (the middle, the kink itself, eps in
pixels) and the experiment is banned inside the answer. ``04.best_step`` is the eps sweep's prediction, checked
as a function of the quotient's order (hidden: higher orders).
``04.sign_at_identity`` shows shifts of both signs and a sub-pixel one, so no constant passes the visible cases.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .. import padding
from ..autograd import (
    bilinear_sample_analytic,
    bilinear_sample_backward,
    numerical_gradient,
    sample_with_gradients,
    theta_gradient,
)
from ..padding import GRID_SAMPLE_MODES
from .cases import HIDDEN_SAMPLING_SHAPES, SAMPLING_SHAPES, random_grid, random_theta, tensor, uniform
from .equivalents import AUTOGRAD, GRID_SAMPLE
from .catalog import exercise
from .questions import NOT_THIS_ONE, AnswerCompare, Choice
from .properties import (AUTOGRAD_IN_BACKWARD, DIAGNOSES, HAND_DERIVED_BACKWARD, KEEPS_INPUTS, NOT_ONCE_DIFFERENTIABLE,
                         Property)
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


def best_step_exponents(order: int) -> tuple[float, float]:
    """The answer key of ``04.best_step``: a difference quotient with truncation error ~ eps**order and rounding
    error ~ u/eps is best at eps ≈ u**(1/(order + 1)), with error ≈ u**(order/(order + 1)). ``-> (a, b)``"""
    return 1 / (order + 1), order / (order + 1)


_STEP_SLIPS = {  # what a slip gives, by kind (never shown)
    "truncation against u": lambda p: (1 / p, 1.0),
    "error is the step": lambda p: (1 / (p + 1), 1 / (p + 1)),
    "error is u over eps squared": lambda p: (1 / (p + 1), (p - 1) / (p + 1)),
}
_STEP_WORDS = {
    "truncation against u": "the rounding error of the quotient is not u: the difference is divided by eps",
    "error is the step": "at the best step the error is not the step itself: which of the two terms is it, and how "
                         "big?",
    "error is u over eps squared": "how does the rounding of two values of f reach the quotient – divided by eps "
                                   "once?",
}


@dataclass(frozen=True)
class BestStepCompare(AnswerCompare):
    """:class:`AnswerCompare` whose 'not this one' names the kind of slip an answer matches (never the value)."""

    def __call__(self, expected, actual, case) -> tuple[bool, float, str]:
        ok, error, message = super().__call__(expected, actual, case)
        if ok or not message.startswith(NOT_THIS_ONE):
            return ok, error, message
        try:
            got = tuple(float(v) for v in actual)
        except (TypeError, ValueError):
            return False, error, message
        (order,) = case.args
        for name, slip in _STEP_SLIPS.items():
            want = slip(order)
            if want != tuple(expected) and len(got) == 2 and all(abs(g - w) <= 1e-9 for g, w in zip(got, want)):
                return False, error, f"{message}; {_STEP_WORDS[name]}"
        return False, error, message


def _step_cases(rng: np.random.Generator):
    yield Case("the central difference: truncation error ~ eps² (order 2)", (2,))
    yield Case("the one-sided difference: truncation error ~ eps (order 1)", (1,))


def _step_hidden(rng: np.random.Generator):
    for order in (4, 3, 6):
        yield Case(f"a stencil with truncation error ~ eps^{order} (order {order})", (order,))


register(exercise("04.best_step", reference=best_step_exponents, cases=_step_cases, hidden_cases=_step_hidden,
                  compare=BestStepCompare(atol=1e-9),
                  forbidden=("stn_course.autograd.reference.numerical_gradient", *AUTOGRAD)))


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
    """The lesson's shift, the other way, and half a pixel: a far shift of either sign (the blur peak at t = 0
    decides) and a sub-pixel one to the left (the valley sits inside the blur peak). Only shifts outside
    1–4 pixels to the left, where the photo's texture decides (the lesson prints the signs there)."""
    yield Case("the shift by 0.25 of the lesson's 40×40 photo, descent started at t = 0", (0.25,))
    yield Case("the lesson's photo shifted the other way, by -0.25", (-0.25,))
    yield Case("the lesson's photo shifted by +0.025 (half a pixel)", (0.025,))


def _sign_hidden(rng: np.random.Generator):
    """More shifts of both kinds and both signs: no constant passes; a guess passes 1 in 3⁵."""
    yield Case("the lesson's photo shifted by -0.0125 (a quarter pixel)", (-0.0125,))
    yield Case("the lesson's photo shifted by +0.0375 (three quarters of a pixel)", (0.0375,))
    yield Case("the lesson's photo shifted by +0.5 (ten pixels)", (0.5,))
    yield Case("the lesson's photo shifted by -0.5 (ten pixels)", (-0.5,))
    yield Case("the lesson's photo shifted by +0.0125 (a quarter pixel)", (0.0125,))


register(exercise("04.sign_at_identity", reference=sign_at_identity, cases=_sign_cases, hidden_cases=_sign_hidden,
                  compare=Choice("positive", "negative", "zero")))


# ---------------------------------------------------------------------------------------------------------------
# 04.referee_blind_spot – a counterexample built by the learner: where central differences and the backward disagree
# ---------------------------------------------------------------------------------------------------------------


def blind_spot_image(width: int) -> torch.Tensor:
    """The check's 1-pixel-high image ``(1, 1, 1, width)``: ``sqrt(m + 2)``, strictly concave, so its slope changes
    at every pixel centre, and at the ends too (zeros padding reads 0 beyond them)."""
    return torch.sqrt(torch.arange(width, dtype=torch.float64) + 2).view(1, 1, 1, width)


def referee_and_backward(g: float, width: int, align_corners: bool, eps: float = 1e-6) -> tuple[float, float]:
    """``∂V/∂g_x`` at the grid point ``(g, 0)`` on :func:`blind_spot_image`, zeros padding: the central difference
    (the package's :func:`~stn_course.autograd.numerical_gradient` with step ``eps``) and the sampler's hand-derived
    backward (:func:`~stn_course.autograd.bilinear_sample_backward`, the right derivative at a kink)."""
    image = blind_spot_image(width)
    point = torch.tensor([g], dtype=torch.float64)

    def sample(x):
        grid = torch.stack([x, torch.zeros_like(x)], -1).view(1, 1, 1, 2)
        return bilinear_sample_analytic(image, grid, "zeros", align_corners).sum()

    numeric = numerical_gradient(sample, point, eps).item()
    grid = torch.tensor([[[[g, 0.0]]]], dtype=torch.float64)
    analytic = bilinear_sample_backward(torch.ones(1, 1, 1, 1, dtype=torch.float64), image, grid, "zeros",
                                        align_corners)[1][0, 0, 0, 0].item()
    return numeric, analytic


def nearest_kink(width: int, align_corners: bool) -> float | None:
    """|g| of the pixel centre nearest the middle g = 0 (0 for an odd width: the middle pixel), by lesson 2's
    unnormalization inverted; None for a 1-pixel width with ``align_corners=True`` (every g reads pixel 0)."""
    if width == 1 and align_corners:
        return None
    if width % 2 == 1:
        return 0.0
    return 1 / (width - 1) if align_corners else 1 / width  # pixel centre W/2, half a pixel right of the middle


def _blind_spot_reference(width: int, align_corners: bool, eps: float = 1e-6) -> float | None:
    """The distance from g = 0 to the nearest point where the central difference (step ``eps`` in g) and the
    backward disagree: a kink at g_k makes them disagree on the open interval (g_k - eps, g_k + eps), where the two
    evaluations straddle it and mix the left and right slopes, and nowhere else (eps is below half the spacing of the
    kinks); None where nothing moves."""
    kink = nearest_kink(width, align_corners)
    return None if kink is None else max(0.0, kink - eps)


def _blind_spot_slips(width: int, align_corners: bool, eps: float) -> dict[str, float]:
    """The distances the natural slips give, by kind (never shown)."""
    kink = nearest_kink(width, align_corners)
    scale = (width - 1) / 2 if align_corners else width / 2
    return {"middle": 0.0, "kink": kink, "pixels": kink - eps / scale, "beyond": kink + eps}


_BLIND_SPOT_WORDS = {
    "middle": "is the middle of the image a pixel centre for this width and convention?",
    "kink": "that is where the nearest kink itself sits – but is the backward still right a little before it, where "
            "the referee's two evaluations reach across it?",
    "pixels": "the referee steps the normalized g by eps, not the pixel coordinate",
    "beyond": "which side of the kink does the straddling start from, as g moves towards it?",
}


@dataclass(frozen=True)
class BlindSpotCompare(AnswerCompare):
    """:class:`AnswerCompare` (to ``atol``) for the distance, None only where nothing moves, and a 'not this one'
    that names the kind of slip a wrong distance matches (module-level class: it pickles). Never shows the value."""

    atol: float = 1e-10

    def __call__(self, expected, actual, case) -> tuple[bool, float, str]:
        width, align_corners, eps = case.args
        if expected is None:
            if actual is None:
                return True, 0.0, ""
            return False, float("inf"), ("for this width and convention your referee and the backward agree "
                                         "everywhere: how does the pixel coordinate the sampler reads move with g?")
        if actual is None:
            return False, float("inf"), "there are points where they disagree for this width and convention"
        ok, error, message = super().__call__(expected, actual, case)
        if ok or not message.startswith(NOT_THIS_ONE):
            return ok, error, message
        got = float(actual)
        for name, slip in _blind_spot_slips(width, align_corners, eps).items():
            if abs(slip - float(expected)) > 1e-9 and abs(got - slip) <= 1e-9:
                return False, error, f"{message}; {_BLIND_SPOT_WORDS[name]}"
        return False, error, (f"{message}; where are the kinks for this width and convention, and how near must g "
                              "be to one for the central difference to differ from the one-sided slope?")


def _blind_spot_case(width: int, align_corners: bool, eps: float) -> Case:
    return Case(f"an image 1 pixel high and {width} wide, align_corners={align_corners}, eps={eps:g}",
                (width, align_corners, eps),
                hint=("a 1-pixel width: how far does the pixel coordinate move when g moves?" if width == 1 else ""))


def _blind_spot_cases(rng: np.random.Generator, sizes=((6, False, 1e-6), (6, True, 1e-3), (5, False, 1e-3),
                                                        (1, False, 1e-6), (1, True, 1e-6)), largest=30):
    for width, align_corners, eps in sizes:
        yield _blind_spot_case(width, align_corners, eps)
    for align_corners in (True, False):  # even widths (odd ones answer 0), eps below half the kinks' spacing
        width = 2 * int(rng.integers(1, largest // 2))
        yield _blind_spot_case(width, align_corners, float(10.0 ** -rng.uniform(3.5, 7)))


def _blind_spot_hidden(rng: np.random.Generator):  # even and odd, 2 pixels, 1 pixel both ways, large, other eps
    return _blind_spot_cases(rng, sizes=((2, True, 1e-2), (2, False, 1e-6), (1, True, 1e-3), (1, False, 1e-2),
                                         (64, False, 1e-4), (40, True, 1e-6), (7, True, 1e-6), (300, False, 1e-3)),
                             largest=500)


# The answer is reasoned out, not measured: the experiment (the forward sampler, whose finite differences are the
# referee, and the package's backward and referee) is banned inside it.
register(exercise("04.referee_blind_spot", reference=_blind_spot_reference, cases=_blind_spot_cases,
                  hidden_cases=_blind_spot_hidden, compare=BlindSpotCompare(),
                  forbidden=("stn_course.sampling.bilinear_sample", "stn_course.autograd.bilinear_sample_analytic",
                             "stn_course.autograd.reference.numerical_gradient", *PACKAGE_BACKWARD,
                             "stn_course.checks.lesson04.referee_and_backward", *GRID_SAMPLE)))


def exact_kink_coordinates(size: int, align_corners: bool) -> torch.Tensor:
    """Grid values that unnormalize exactly to every integer and half-integer pixel coordinate from -2 to
    ``size + 1`` (pixel centres, the clamp boundaries, the mirror lines), plus ±1; exact in binary for sizes whose
    scale is a power of two (align_corners=True: size - 1; False: size)."""
    x = torch.arange(-4, 2 * size + 3, dtype=torch.float64) / 2
    g = 2 * x / (size - 1) - 1 if align_corners and size > 1 else (2 * x + 1) / size - 1
    return torch.cat([g, torch.tensor([-1.0, 1.0], dtype=torch.float64)])


def padding_kink_grid(size: int, align_corners: bool, axis: int) -> torch.Tensor:
    """A grid ``(1, 1, K, 2)`` whose coordinate ``axis`` (0: x, 1: y) reads exactly every integer and half-integer
    pixel coordinate from -2 to ``size + 1`` (:func:`exact_kink_coordinates`) and whose other coordinate sits at 0.3,
    on no kink: the padding modes' kinks one axis at a time."""
    along = exact_kink_coordinates(size, align_corners)
    grid = torch.full((1, 1, along.numel(), 2), 0.3, dtype=torch.float64)
    grid[0, 0, :, axis] = along
    return grid


def _padding_kink_cases(rng: np.random.Generator):
    """The clamp borders and mirror lines of every padding mode, exactly, along x (a 5- or 4-pixel-wide input) and
    along y (a 3- or 8-pixel-high one): scale powers of two, so the coordinates are exact in binary."""
    for mode in GRID_SAMPLE_MODES:
        for (size, other), align_corners in (((5, 3), True), ((4, 8), False)):
            for axis, name in ((0, "x"), (1, "y")):
                h, w = (other, size) if axis == 0 else (size, other)
                grid = padding_kink_grid(size, align_corners, axis)
                yield Case(f"input (1, 2, {h}, {w}), one row of points whose {name} sits exactly on every pixel "
                           f"centre, half-pixel and border from -2 to {size + 1} pixels and ±1, "
                           f"padding_mode={mode!r}, align_corners={align_corners}",
                           (tensor(rng, 1, 2, 1, grid.shape[2]), tensor(rng, 1, 2, h, w), grid),
                           {"padding_mode": mode, "align_corners": align_corners}, kink=True,
                           hint=padding.get(mode).slope_hint)


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
    yield from _padding_kink_cases(rng)
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


def sampler_backward_reference(grad_output, input, grid, padding_mode="zeros", align_corners=False):
    """``(∂L/∂U, ∂L/∂G)``: eq. 6, and eq. 7 chained through the padding mode and the unnormalization.
    ``-> ((N, C, H, W), (N, H_out, W_out, 2))``"""
    return bilinear_sample_backward(grad_output, input, grid, padding_mode, align_corners)


def _kinks_last(cases):
    """Ordinary points first, then the kinks: a bug everywhere (a scale, an assignment, x and y swapped) fails on an
    ordinary point and is not diagnosed as a kink; a bug only at the kinks fails on a kink case, and is."""
    cases = list(cases)
    return [c for c in cases if not c.kink] + [c for c in cases if c.kink]


def _backward_cases(rng: np.random.Generator):
    return _kinks_last(_sampler_cases(rng))


def _backward_hidden(rng: np.random.Generator):
    return _kinks_last(_sampler_hidden(rng))


register(exercise("04.sampler_backward", reference=sampler_backward_reference, cases=_backward_cases,
                  hidden_cases=_backward_hidden,
                  forbidden=(*PACKAGE_BACKWARD, "stn_course.autograd.reference.source_coordinates_grad",
                             "stn_course.autograd.source_coordinates_grad", *HAND_DERIVED)))


# What a Function whose gradients PyTorch would differentiate again is told: what goes wrong, in kind – not the fix.
SECOND_DERIVATIVE = "a second derivative taken through your backward"
SECOND_DERIVATIVE_DIAGNOSIS = (
    "your gradients come back as a graph PyTorch can differentiate again: asked for a second derivative "
    "(create_graph=True), it would differentiate the operations of your hand-written backward (floor, gathers, "
    "masks) and return numbers nobody derived or tested, with no error.")


_JUST_PROBED: dict[tuple[int, int], str | None] = {}


def _autograd_in_backward(fn, case) -> str | None:
    """Probed first: runs :data:`.properties.HAND_DERIVED_BACKWARD` and leaves its diagnosis for the next one."""
    message = HAND_DERIVED_BACKWARD.test(fn, case)
    _JUST_PROBED.clear()
    _JUST_PROBED[id(fn), id(case)] = message
    return message if message == DIAGNOSES[AUTOGRAD_IN_BACKWARD] else None


def _differentiable_again(fn, case) -> str | None:
    """Probed right after :func:`_autograd_in_backward` on the same case: takes its diagnosis (or runs it again)."""
    key = (id(fn), id(case))
    message = _JUST_PROBED.pop(key) if key in _JUST_PROBED else HAND_DERIVED_BACKWARD.test(fn, case)
    return SECOND_DERIVATIVE_DIAGNOSIS if message == DIAGNOSES[NOT_ONCE_DIFFERENTIABLE] else None


FUNCTION_PROPERTIES = (Property(AUTOGRAD_IN_BACKWARD, _autograd_in_backward),
                       Property(SECOND_DERIVATIVE, _differentiable_again))

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
    # a 1-pixel output, a 1-pixel-high one and a non-square one: the base grid's conventions (a 1-pixel side sits
    # at 0 in both – torch.linspace(-1, 1, 1) is -1)
    for n, h_out, w_out in ((1, 1, 1), (2, 1, 5), (3, 7, 2)):
        for align_corners in (False, True):
            yield Case(f"input ({n}, 2, 5, 6), theta ({n}, 2, 3), output {h_out}×{w_out}, align_corners={align_corners}",
                       (tensor(rng, n, 2, h_out, w_out), tensor(rng, n, 2, 5, 6), random_theta(rng, n)),
                       {"align_corners": align_corners},
                       hint=("a 1-pixel side of the output: where does lesson 2's grid put its one point, in either "
                             "convention – and where does your base grid put it?") if min(h_out, w_out) == 1 else "")
    for i, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        for align_corners in (False, True):
            mode = GRID_SAMPLE_MODES[i % len(GRID_SAMPLE_MODES)]
            yield Case(f"input ({n}, {c}, {h}, {w}), theta ({n}, 2, 3), output {h_out}×{w_out}, padding_mode={mode!r}, "
                       f"align_corners={align_corners}",
                       (tensor(rng, n, c, h_out, w_out), tensor(rng, n, c, h, w), random_theta(rng, n)),
                       {"padding_mode": mode, "align_corners": align_corners})


def _chain_hidden(rng: np.random.Generator):  # larger and non-square, batch 4
    return _chain_cases(rng, HIDDEN_SAMPLING_SHAPES)


def theta_gradient_reference(grad_output, input, theta, padding_mode="zeros", align_corners=False):
    """The package's :func:`~stn_course.autograd.theta_gradient`, without ``F.affine_grid``'s size-1 warning (the
    check's own 1-pixel cases would print it). ``-> (N, 2, 3)``"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return theta_gradient(grad_output, input, theta, padding_mode, align_corners)


def transformer_with_gradients(grad_output, input, theta, padding_mode="zeros", align_corners=False):
    """One forward and one backward of the whole transformer, θ → grid → sample, through the package's hand-derived
    Functions (:func:`~stn_course.autograd.sample_with_gradients` on lesson 2's grid of θ, and
    :func:`~stn_course.autograd.theta_gradient`), for an output of ``grad_output``'s size.
    ``-> (output, ∂L/∂input (N, C, H, W), ∂L/∂θ (N, 2, 3))``"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        grid = affine_grid(theta, tuple(grad_output.shape), align_corners)
    out, grad_input, _ = sample_with_gradients(grad_output, input, grid, padding_mode, align_corners)
    return out, grad_input, theta_gradient_reference(grad_output, input, theta, padding_mode, align_corners)


def _transformer_cases(rng: np.random.Generator):
    return _kinks_last(_chain_cases(rng))


def _transformer_hidden(rng: np.random.Generator):
    return _kinks_last(_chain_hidden(rng))


# The learner's Function runs lesson 2's forward (any grid generator, grids.affine_grid included) and derives the
# whole backward: no package backward, no grid_sample, no autograd inside backward (FUNCTION_PROPERTIES probes it,
# and a differentiable-again backward). Ordinary points first: a backward that drops its settings fails there, not
# on a kink; the identity θ (every point on a pixel centre) and the 1-pixel outputs' base-grid convention are checked.
register(exercise("04.stn_function", reference=transformer_with_gradients, cases=_transformer_cases,
                  hidden_cases=_transformer_hidden, properties=FUNCTION_PROPERTIES,
                  forbidden=(*PACKAGE_BACKWARD, "stn_course.autograd.reference.affine_grid_backward",
                             "stn_course.autograd.AffineGridFunction", "stn_course.autograd.affine_grid_analytic",
                             *GRID_SAMPLE)))
