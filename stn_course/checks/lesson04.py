"""Checks for lesson 4 – the backward pass: padding-mode derivatives, ∂L/∂U (eq. 6), ∂L/∂G (eq. 7), ∂L/∂θ, and
a complete ``torch.autograd.Function``.

Cases are float64 with random points, which lie on none of the sampler's kinks (integer sample positions, the
border, mirror lines) with probability 1 – there every one-sided derivative would be a fair answer.
"""
from __future__ import annotations

import numpy as np
import torch

from ..autograd import (
    AffineGridFunction,
    BilinearSampleFunction,
    affine_grid_backward,
    bilinear_sample_backward,
    source_coordinates_grad,
)
from ..sampling import PADDING_MODES
from .cases import HIDDEN_SAMPLING_SHAPES, SAMPLING_SHAPES, random_grid, random_theta, tensor, uniform
from .equivalents import AFFINE_GRID, AUTOGRAD, GRID_SAMPLE
from .registry import Case, Check, register

# What a hand-derived backward may not use: autograd, and torch's sampler (whose backward autograd would run).
HAND_DERIVED = (*AUTOGRAD, *GRID_SAMPLE, "torch.ops.aten.grid_sampler_2d_backward")
PACKAGE_BACKWARD = ("stn_course.autograd.reference.bilinear_sample_backward", "stn_course.autograd.bilinear_sample_analytic",
                    "stn_course.autograd.BilinearSampleFunction")


def numerical_gradient_reference(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every entry ``i`` of ``x``.

    ``f`` maps a tensor shaped like ``x`` to a scalar (tensor or number); ``x`` is not modified. ``-> x.shape``
    """
    flat = x.detach().clone().reshape(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = eps
        grad[i] = (float(f((flat + step).view_as(x))) - float(f((flat - step).view_as(x)))) / (2 * eps)
    return grad.view_as(x)


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
    yield Case("f(x) = Σ x³ at one number, x of shape (1,)", (_cube_sum, tensor(rng, 1)))
    yield Case("f(x) = Σ x³, x of shape (5,)", (_cube_sum, tensor(rng, 5)))
    yield Case("f(x) = Σ x³ with eps = 1e-3, x of shape (4,): one-sided differences are off by ~3·x·eps here",
               (_cube_sum, tensor(rng, 4, scale=2.0)), {"eps": 1e-3},
               hint="(f(x + eps) - f(x)) / eps has an error proportional to eps; the central difference "
                    "(f(x + eps) - f(x - eps)) / (2 eps) to eps².")
    yield Case("f(x) = Σ w · sin(x), x of shape (2, 3) (every entry, not just the first row)",
               (_weighted_sin, tensor(rng, 2, 3)))
    yield Case("f(x) = xᵀ M x (entries interact), x of shape (3, 2)", (_quadratic_form, tensor(rng, 3, 2)),
               hint="perturb one entry at a time and put the others back before the next one (or work on a copy).")


def _numerical_hidden(rng: np.random.Generator):  # 3-d x, another eps, a float32 x
    yield Case("f(x) = Σ w · sin(x), x of shape (2, 2, 3), eps = 1e-4", (_weighted_sin, tensor(rng, 2, 2, 3)),
               {"eps": 1e-4})
    yield Case("f(x) = xᵀ M x, x of shape (12,)", (_quadratic_form, tensor(rng, 12)))
    yield Case("f(x) = Σ x³, float32 x of shape (3,), eps = 1e-2", (_cube_sum, tensor(rng, 3, dtype=torch.float32)),
               {"eps": 1e-2})


register(Check(
    id="04.numerical_gradient",
    forbidden=AUTOGRAD,
    idea="A derivative is the slope of f when one input moves a little and all others stay put: move each entry "
         "of x by ±eps in turn.",
    title="a numerical-gradient checker (central differences)",
    reference=numerical_gradient_reference,
    cases=_numerical_cases,
    hidden_cases=_numerical_hidden,
    hint="for every index i of x.reshape(-1): x⁺ = x with eps added to entry i, x⁻ with eps subtracted (on "
         "copies), grad[i] = (f(x⁺) - f(x⁻)) / (2 eps); return it shaped like x, in x's dtype.",
    rtol=1e-6, atol=1e-7, points=1,
))


GRADIENT_HINTS = {
    "zeros": "zeros padding does not move the coordinate: only unnormalize's scale remains.",
    "border": "border clamps: the derivative is 1 where the coordinate is strictly inside [0, size - 1] and 0 "
              "where the clamp holds it.",
    "reflection": "reflection is a mirror: every reflection flips the sign of the derivative, so count the mirrors "
                  "a point crossed (and a clamp after it is flat).",
}


def _coordinate_cases(rng: np.random.Generator, sizes=(1, 2, 5, 16), reach=3.5):
    for size in sizes:
        for mode in PADDING_MODES:
            for align_corners in (False, True):
                yield Case(f"size={size}, padding_mode={mode!r}, align_corners={align_corners}, coordinates in "
                           f"[-{reach}, {reach}] (inside, outside, several mirrors)",
                           (uniform(rng, 40, low=-reach, high=reach), size),
                           {"padding_mode": mode, "align_corners": align_corners}, hint=GRADIENT_HINTS[mode])


def _coordinate_hidden(rng: np.random.Generator):  # other sizes, points many mirrors away
    return _coordinate_cases(rng, sizes=(3, 64), reach=20.0)


register(Check(
    id="04.source_coordinates_grad",
    forbidden=("stn_course.autograd.reference.source_coordinates_grad", *AUTOGRAD),
    idea="Chain the derivatives of the two steps that map a grid value to a pixel coordinate: unnormalize (a "
         "scale) and the padding mode (flat, identity or mirrored).",
    title="∂x/∂g through unnormalize and the padding mode",
    reference=source_coordinates_grad,
    cases=_coordinate_cases,
    hidden_cases=_coordinate_hidden,
    hint="unnormalize contributes (size - 1)/2 (align_corners=True) or size/2; border multiplies by 1 strictly "
         "inside (0, size - 1) and 0 elsewhere; reflection multiplies by ±1 – the sign flips with every mirror (and "
         "is -1 left of the low mirror line) – and then by the border rule on the reflected coordinate. size 1 with "
         "reflection is constant (0).",
    rtol=1e-12, atol=1e-12,
))


def _sampler_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES, reach=1.6):
    for i, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        for align_corners in (False, True):
            mode = PADDING_MODES[(i + align_corners) % len(PADDING_MODES)]
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


register(Check(
    id="04.grad_input",
    forbidden=(*PACKAGE_BACKWARD, *HAND_DERIVED),
    idea="Every output pixel took a weighted share of four input pixels; in the backward pass it gives the "
         "gradient back in the same shares.",
    title="∂L/∂U: scatter the gradient back to the four neighbours (eq. 6)",
    reference=grad_input_reference,
    cases=_sampler_cases,
    hidden_cases=_sampler_hidden,
    hint="each output pixel adds weight_k · dL/dV into each of its four neighbours k, with the same bilinear weights "
         "as the forward pass (after the padding mode); neighbours outside the image get nothing; several output "
         "pixels can hit the same input pixel, so *add* (index_add_/scatter_add_), never assign.",
    rtol=1e-9, atol=1e-9,
))

register(Check(
    id="04.grad_grid",
    builds_on=('04.source_coordinates_grad',),
    forbidden=(*PACKAGE_BACKWARD, *HAND_DERIVED),
    idea="Differentiate the bilinear weights with respect to x and y (each weight is a product of two linear "
         "factors), then chain to the grid.",
    title="∂L/∂G: the derivative of the weights, chained to the grid (eq. 7)",
    reference=grad_grid_reference,
    cases=_sampler_cases,
    hidden_cases=_sampler_hidden,
    hint="∂V/∂x = Σ over neighbours of U · (±1 in x) · (y-weight): (1-fy)(U[y0,x1] - U[y0,x0]) + fy(U[y1,x1] - "
         "U[y1,x0]), with 0 for neighbours outside the image; sum over channels times dL/dV; then multiply by "
         "∂x/∂g_x (04.source_coordinates_grad) – and remember x goes in grid[..., 0].",
    rtol=1e-9, atol=1e-9,
))


def _theta_cases(rng: np.random.Generator, shapes=((1, 1, 1), (1, 3, 5), (2, 4, 4), (3, 7, 2))):
    for n, h, w in shapes:
        for align_corners in (False, True):
            yield Case(f"grad_grid ({n}, {h}, {w}, 2), size ({n}, 1, {h}, {w}), align_corners={align_corners}",
                       (tensor(rng, n, h, w, 2), (n, 1, h, w)), {"align_corners": align_corners})


def _theta_hidden(rng: np.random.Generator):  # a single row, a single column, larger
    return _theta_cases(rng, shapes=((4, 1, 13), (2, 9, 1), (1, 17, 11)))


register(Check(
    id="04.affine_grid_backward",
    builds_on=('04.grad_grid',),
    forbidden=("stn_course.autograd.reference.affine_grid_backward", "stn_course.autograd.AffineGridFunction",
               *AFFINE_GRID, *AUTOGRAD),
    idea="G is linear in θ: each grid point is θ times a fixed (x_t, y_t, 1). What is the derivative of a matrix-"
         "vector product with respect to the matrix?",
    title="∂L/∂θ from ∂L/∂G",
    reference=affine_grid_backward,
    cases=_theta_cases,
    hidden_cases=_theta_hidden,
    hint="G[n, p] = θ[n] @ (x_t, y_t, 1), so ∂L/∂θ[n] = Σ_p ∂L/∂G[n, p] ⊗ (x_t, y_t, 1) – one batched matrix "
         "product of the transposed gradient (N, 2, H*W) with the base grid (H*W, 3).",
    rtol=1e-9, atol=1e-9,
))


def sampler_function_reference(grad_output, input, grid, padding_mode="zeros", align_corners=False):
    """Forward and backward through an ``autograd.Function``: ``-> (output, ∂L/∂input, ∂L/∂grid)``."""
    x, g = input.clone().requires_grad_(), grid.clone().requires_grad_()
    out = BilinearSampleFunction.apply(x, g, padding_mode, align_corners)
    grad_input, grad_grid = torch.autograd.grad(out, (x, g), grad_output)
    return out.detach(), grad_input, grad_grid


register(Check(
    id="04.sampler_function",
    builds_on=('04.grad_input', '04.grad_grid'),
    forbidden=(*PACKAGE_BACKWARD, *GRID_SAMPLE),
    idea="An autograd.Function keeps what backward needs from forward, and backward returns one gradient per "
         "forward argument.",
    title="a bilinear-sampler autograd.Function with your backward",
    reference=sampler_function_reference,
    cases=_sampler_cases,
    hidden_cases=_sampler_hidden,
    function="sampler_with_grads",
    hint="forward: save input and grid with ctx.save_for_backward and the settings on ctx, return the sample; "
         "backward: return (grad_input, grad_grid, None, None) – one entry per forward argument.",
    rtol=1e-9, atol=1e-9,
))


def _chain_cases(rng: np.random.Generator, shapes=SAMPLING_SHAPES[1:]):
    for i, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        for align_corners in (False, True):
            mode = PADDING_MODES[i % len(PADDING_MODES)]
            yield Case(f"input ({n}, {c}, {h}, {w}), theta ({n}, 2, 3), output {h_out}×{w_out}, padding_mode={mode!r}, "
                       f"align_corners={align_corners}",
                       (tensor(rng, n, c, h_out, w_out), tensor(rng, n, c, h, w), random_theta(rng, n)),
                       {"padding_mode": mode, "align_corners": align_corners})


def _chain_hidden(rng: np.random.Generator):  # larger and non-square, batch 4
    return _chain_cases(rng, HIDDEN_SAMPLING_SHAPES)


def theta_gradient_reference(grad_output, input, theta, padding_mode="zeros", align_corners=False):
    """∂L/∂θ of ``L = <grad_output, sample(input, affine_grid(theta))>``. ``-> (N, 2, 3)``"""
    t = theta.clone().requires_grad_()
    grid = AffineGridFunction.apply(t, tuple(grad_output.shape), align_corners)
    out = BilinearSampleFunction.apply(input, grid, padding_mode, align_corners)
    return torch.autograd.grad(out, t, grad_output)[0]


register(Check(
    id="04.theta_gradient",
    builds_on=('04.affine_grid_backward', '04.grad_grid'),
    forbidden=(*PACKAGE_BACKWARD, "stn_course.autograd.reference.affine_grid_backward",
               "stn_course.autograd.AffineGridFunction", *HAND_DERIVED),
    idea="Chain the two backward passes you have: from the output to the grid, from the grid to θ.",
    title="the chain rule end to end: ∂L/∂θ",
    reference=theta_gradient_reference,
    cases=_chain_cases,
    hidden_cases=_chain_hidden,
    hint="build the grid from theta for an output of grad_output's shape, compute ∂L/∂G with your sampler backward, "
         "then ∂L/∂θ with your grid backward.",
    rtol=1e-9, atol=1e-9,
))
