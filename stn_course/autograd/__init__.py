"""The backward pass of the spatial transformer, derived by hand (lesson 4).

Two ``torch.autograd.Function``s whose ``backward`` is written from the derivation, with no autograd inside:

* :class:`BilinearSampleFunction` – the sampler ``V = sample(U, G)`` (``F.grid_sample`` semantics, bilinear, every
  padding mode, both ``align_corners``, NaN and infinity included). It returns ``∂L/∂U`` (Jaderberg et al., eq. 6:
  every output pixel pushes its gradient back to its four neighbours, weighted by the same bilinear weights) and
  ``∂L/∂G`` (eq. 7: the derivative of the bilinear weights with respect to the sample position, chained through the
  padding mode and the unnormalization).
* :class:`AffineGridFunction` – the grid generator ``G = θ · (x_t, y_t, 1)`` (``F.affine_grid`` semantics). Its
  backward is ``∂L/∂θ = Σ_pixels ∂L/∂G ⊗ (x_t, y_t, 1)``.

Chained, they give ``∂L/∂θ``: the gradient that trains the localisation network.

Two files, one contract (``impl=``, the package's vocabulary: :data:`stn_course.impls.AUTOGRAD`):

* :mod:`stn_course.autograd.reference` – ``impl="reference"``: the derivation, step by step, as lesson 4 writes it
  (the module docstring has it in one screen), reusing the forward's own pieces from :mod:`stn_course.sampling`;
* :mod:`stn_course.autograd.fast` – ``impl="fast"`` (the default): the same equations as a few large vectorized
  operations (padded planes, fixed corner offsets, fused gather-sums). Half precision always runs the reference.

Sub-differentiable kinks
------------------------
``max(0, 1 - |x - j|)`` has a kink wherever ``x`` is an integer (a pixel centre): the left and right derivatives
differ (``U[i, j+1] - U[i, j]`` versus ``U[i, j] - U[i, j-1]``). Like ATen we take the *right* derivative there
(the neighbours are ``floor(x)`` and ``floor(x) + 1``). The clamp of ``border``/``reflection`` has kinks at the
border and the mirror lines. At those points any one-sided value is "a" gradient; finite differences straddle the
kink and disagree, so ``gradcheck`` must be run at points away from them – which is where random points sit with
probability 1. A network rarely cares, but the identity transform sits on the kinks (every sample is a pixel
centre up to rounding), so its gradient is a one-sided one – and *which* side is decided by the last bit of the
coordinate. Every path here rounds as ATen's CPU kernel does (:func:`stn_course.sampling.unnormalize`, the float32
snap moving only the weights, never the neighbours), so at the identity, too, the gradients are ATen's
(``tests/test_kinks.py``).

Double backward is not supported: asked for a differentiable backward (``create_graph=True``), the Functions raise a
clear ``RuntimeError`` instead of returning wrong numbers (their backward bodies are also ``@once_differentiable``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.autograd.function import once_differentiable

from .._validation import check_bool, check_float_tensor
from ..grids import _check_theta, warn_unit_size
from ..impls import AUTOGRAD
from ..sampling import _check_inputs, bilinear_sample
from . import fast, reference
from .reference import (affine_grid_backward, base_points, bilinear_sample_backward, bilinear_sample_jvp,
                        numerical_gradient, source_coordinates_grad)

__all__ = [
    "BilinearSampleFunction",
    "AffineGridFunction",
    "bilinear_sample_analytic",
    "affine_grid_analytic",
    "source_coordinates_grad",
    "bilinear_sample_backward",
    "affine_grid_backward",
    "numerical_gradient",
    "sample_with_gradients",
    "theta_gradient",
]


def _no_double_backward(name: str) -> None:
    """Raise when backward runs with ``create_graph=True``: the hand-written backward is not differentiable."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            f"{name}: double backward is not supported – its backward is derived by hand and is not itself "
            "differentiable (create_graph=True was requested). Use F.grid_sample / F.affine_grid (impl='aten') "
            "for higher-order gradients.")


def _hand_derived(derivative):
    """A Function's ``backward`` from its hand-derived ``derivative(ctx, *grads)``: once differentiable, and a
    clear error (:func:`_no_double_backward`) instead of wrong numbers where a differentiable one is asked for."""
    once = once_differentiable(derivative)
    name = derivative.__qualname__.split(".")[0]  # the Function's name, for the message

    def backward(ctx, *grads):
        _no_double_backward(name)
        return once(ctx, *grads)

    return staticmethod(backward)


class BilinearSampleFunction(torch.autograd.Function):
    """Bilinear sampling with a hand-written backward (eqs. 6–7).
    ``apply(input, grid, padding_mode, align_corners, impl="fast")``

    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``; the numbers of
    ``F.grid_sample(mode="bilinear")`` (points within float32 rounding of a pixel centre are snapped onto it, as in
    :func:`stn_course.sampling.bilinear_sample`, so the identity is exact). ``impl="reference"`` runs the readable
    forward and :func:`bilinear_sample_backward`; ``"fast"`` the arrangement of :mod:`stn_course.autograd.fast`.
    Once differentiable: double backward raises.
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                align_corners: bool = False, impl: str = AUTOGRAD.default) -> torch.Tensor:
        _check_inputs(input, grid, padding_mode)
        AUTOGRAD.check(impl)
        align_corners = check_bool(align_corners, "align_corners")
        n, c, h, w = input.shape
        _, h_out, w_out, _ = grid.shape
        ctx.padding_mode, ctx.align_corners, ctx.shape = padding_mode, align_corners, (n, c, h, w, h_out * w_out)
        # the readable forward for impl="reference", half precision (computed in float32, as PyTorch does) and
        # empty tensors (nothing to be fast at)
        ctx.readable = (impl == "reference" or input.dtype not in (torch.float32, torch.float64)
                        or input.numel() == 0 or grid.numel() == 0)
        ctx.save_for_forward(input, grid)  # for jvp (forward-mode AD; released after the forward)
        if ctx.readable:
            ctx.save_for_backward(input, grid)
            return bilinear_sample(input, grid, padding_mode, align_corners)
        return fast.forward(ctx, input, grid, padding_mode, align_corners)

    @staticmethod
    def jvp(ctx, input_tangent, grid_tangent, *_):
        """Forward-mode AD: :func:`stn_course.autograd.reference.bilinear_sample_jvp` (eqs. 6–7 on the tangents)."""
        input, grid = ctx.saved_tensors  # what save_for_forward kept
        return bilinear_sample_jvp(input, grid, input_tangent, grid_tangent, ctx.padding_mode, ctx.align_corners)

    @_hand_derived
    def backward(ctx, grad_output: torch.Tensor):
        if ctx.readable:
            input, grid = ctx.saved_tensors
            work = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
            grads = bilinear_sample_backward(grad_output.to(work).contiguous(), input.to(work), grid.to(work),
                                             ctx.padding_mode, ctx.align_corners, ctx.needs_input_grad[0],
                                             ctx.needs_input_grad[1])
            return tuple(None if t is None else t.to(input.dtype) for t in grads) + (None, None, None)
        return fast.backward(ctx, grad_output) + (None, None, None)


class AffineGridFunction(torch.autograd.Function):
    """Affine grid with a hand-written backward. ``apply(theta, size, align_corners)``

    ``theta: (N, 2, 3)``, ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``. Since
    ``G[n, p, i] = Σ_j θ[n, i, j] · b[p, j]`` with ``b = (x_t, y_t, 1)``, ``∂L/∂θ[n] = (∂L/∂G[n])ᵀ @ b``.
    """

    @staticmethod
    def forward(ctx, theta: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
        n, _, h, w = _check_theta(theta, size)
        align_corners = check_bool(align_corners, "align_corners")
        ctx.size, ctx.align_corners = (n, 1, h, w), align_corners
        base = base_points(h, w, align_corners, theta.dtype, theta.device)  # (H W, 3)
        # one matrix product for the whole batch: (N 2, 3) @ (3, H W)
        grid = (theta.reshape(n * 2, 3) @ base.T).view(n, 2, h, w)
        return grid.permute(0, 2, 3, 1).contiguous()

    @_hand_derived
    def backward(ctx, grad_grid: torch.Tensor):
        return affine_grid_backward(grad_grid.contiguous(), ctx.size, ctx.align_corners), None, None

    @staticmethod
    def jvp(ctx, theta_tangent: torch.Tensor, *_):
        """Forward-mode AD: the grid is linear in θ, so its tangent is the grid of θ's tangent."""
        n, _, h, w = ctx.size
        base = base_points(h, w, ctx.align_corners, theta_tangent.dtype, theta_tangent.device)
        return (theta_tangent.reshape(n * 2, 3) @ base.T).view(n, 2, h, w).permute(0, 2, 3, 1).contiguous()


def bilinear_sample_analytic(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                             align_corners: bool = False, impl: str = AUTOGRAD.default) -> torch.Tensor:
    """:class:`BilinearSampleFunction` as a function, with ``F.grid_sample``'s argument order (bilinear only).

    ``(N, C, H, W), (N, H_out, W_out, 2) -> (N, C, H_out, W_out)``

    >>> u = torch.rand(2, 3, 5, 7, requires_grad=True)
    >>> bilinear_sample_analytic(u, torch.zeros(2, 4, 6, 2)).sum().backward()
    >>> u.grad.shape
    torch.Size([2, 3, 5, 7])
    """
    _check_inputs(input, grid, padding_mode)
    AUTOGRAD.check(impl)
    return BilinearSampleFunction.apply(input, grid, padding_mode, align_corners, impl)


def affine_grid_analytic(theta: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """:class:`AffineGridFunction` as a function, with ``F.affine_grid``'s argument order.

    ``theta: (N, 2, 3)``, ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``

    >>> affine_grid_analytic(torch.eye(2, 3).expand(5, 2, 3), (5, 1, 4, 6)).shape
    torch.Size([5, 4, 6, 2])
    """
    _, _, h, w = _check_theta(theta, size)
    warn_unit_size(h, w, check_bool(align_corners, "align_corners"))  # F.affine_grid's size-1 warning
    return AffineGridFunction.apply(theta, size, align_corners)


def sample_with_gradients(grad_output: torch.Tensor, input: torch.Tensor, grid: torch.Tensor,
                          padding_mode: str = "zeros", align_corners: bool = False):
    """One forward and one backward through :class:`BilinearSampleFunction` (lesson 4's ``autograd.Function``
    exercise): the sample and the gradients of ``L = <grad_output, sample>``.

    ``(N, C, H_out, W_out), (N, C, H, W), (N, H_out, W_out, 2) -> (output, ∂L/∂input, ∂L/∂grid)``

    >>> out, d_input, d_grid = sample_with_gradients(torch.ones(1, 1, 2, 2), torch.rand(1, 1, 3, 3),
    ...                                              torch.zeros(1, 2, 2, 2))
    >>> out.shape, d_input.shape, d_grid.shape
    (torch.Size([1, 1, 2, 2]), torch.Size([1, 1, 3, 3]), torch.Size([1, 2, 2, 2]))
    """
    check_float_tensor(grad_output, "grad_output", 4, "(N, C, H_out, W_out)")
    x, g = input.clone().requires_grad_(), grid.clone().requires_grad_()
    out = BilinearSampleFunction.apply(x, g, padding_mode, align_corners)
    grad_input, grad_grid = torch.autograd.grad(out, (x, g), grad_output)
    return out.detach(), grad_input, grad_grid


def theta_gradient(grad_output: torch.Tensor, input: torch.Tensor, theta: torch.Tensor, padding_mode: str = "zeros",
                   align_corners: bool = False) -> torch.Tensor:
    """``∂L/∂θ`` of ``L = <grad_output, sample(input, affine_grid(θ))>`` through both hand-written backwards
    (lesson 4's chain rule end to end); the output has ``grad_output``'s size.

    ``(N, C, H_out, W_out), (N, C, H, W), (N, 2, 3) -> (N, 2, 3)``

    >>> theta_gradient(torch.ones(2, 1, 3, 3), torch.rand(2, 1, 5, 5), torch.eye(2, 3).expand(2, 2, 3)).shape
    torch.Size([2, 2, 3])
    """
    check_float_tensor(grad_output, "grad_output", 4, "(N, C, H_out, W_out)")
    t = theta.clone().requires_grad_()
    grid = AffineGridFunction.apply(t, tuple(grad_output.shape), align_corners)
    out = BilinearSampleFunction.apply(input, grid, padding_mode, align_corners)
    return torch.autograd.grad(out, t, grad_output)[0]
