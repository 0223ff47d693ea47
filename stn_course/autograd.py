"""The backward pass of the spatial transformer, derived by hand (lesson 4).

Two ``torch.autograd.Function``s whose ``backward`` is written from the derivation, with no autograd inside:

* :class:`BilinearSampleFunction` – the sampler ``V = sample(U, G)`` (``F.grid_sample`` semantics, bilinear, every
  padding mode, both ``align_corners``). It returns ``∂L/∂U`` (Jaderberg et al., eq. 6: every output pixel pushes
  its gradient back to its four neighbours, weighted by the same bilinear weights) and ``∂L/∂G`` (eq. 7: the
  derivative of the bilinear weights with respect to the sample position, chained through the padding mode and the
  unnormalization).
* :class:`AffineGridFunction` – the grid generator ``G = θ · (x_t, y_t, 1)`` (``F.affine_grid`` semantics). Its
  backward is ``∂L/∂θ = Σ_pixels ∂L/∂G ⊗ (x_t, y_t, 1)``.

Chained, they give ``∂L/∂θ``: the gradient that trains the localisation network.

Derivation in one screen, for one output pixel and one channel (pixel coordinates ``x, y`` after padding)::

    V = Σ_{ij} U[i, j] · max(0, 1 - |x - j|) · max(0, 1 - |y - i|)                         (eq. 5)
    ∂V/∂U[i, j] = max(0, 1 - |x - j|) · max(0, 1 - |y - i|)                               (eq. 6)
    ∂V/∂x = Σ_{ij} U[i, j] · max(0, 1 - |y - i|) · {0 if |j - x| >= 1; +1 if j >= x; -1 if j < x}   (eq. 7)
    x = s · g_x + c,  s = (W - 1)/2 (align_corners) or W/2;  ∂x/∂g_x = s · padding factor

The padding factor follows ATen's ``grid_sampler_compute_source_index_set_grad``: ``zeros`` – 1; ``border`` – 1
strictly inside ``(0, W - 1)`` and 0 at or beyond the border (the clamp is flat there); ``reflection`` – ±1, the
sign flipping with every mirror, then the border rule on the reflected coordinate.

Sub-differentiable kinks
------------------------
``max(0, 1 - |x - j|)`` has a kink wherever ``x`` is an integer (a pixel centre): the left and right derivatives
differ (``U[i, j+1] - U[i, j]`` versus ``U[i, j] - U[i, j-1]``). Like ATen we take the *right* derivative there
(the neighbours are ``floor(x)`` and ``floor(x) + 1``). The clamp of ``border``/``reflection`` has kinks at the
border and the mirror lines. At those points any one-sided value is "a" gradient; finite differences straddle the
kink and disagree, so ``gradcheck`` must be run at points away from them – which is where random points sit with
probability 1. A network rarely cares, but the identity transform sits exactly on the kinks (every sample is a
pixel centre), so its gradient is the one-sided one.

Double backward is not supported: the Functions are ``@once_differentiable`` and raise a clear ``RuntimeError`` if
asked to differentiate their backward (e.g. ``create_graph=True`` then ``grad`` again), rather than return wrong
numbers.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.autograd.function import once_differentiable

from .grids import _check_theta, affine_grid, base_grid
from .sampling import PADDING_MODES, _check_inputs, _pixel_coordinates

__all__ = [
    "BilinearSampleFunction",
    "AffineGridFunction",
    "bilinear_sample_analytic",
    "affine_grid_analytic",
    "source_coordinates_grad",
    "bilinear_sample_backward",
    "affine_grid_backward",
]


# ----------------------------------------------------------------------------------------------------------------
# Coordinates and their derivative with respect to the grid
# ----------------------------------------------------------------------------------------------------------------


def _clip_grad(x: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamp to ``[0, size - 1]`` and its derivative (0 at and beyond the border, as in ATen)."""
    inside = (x > 0) & (x < size - 1)
    return x.clamp(0, size - 1), inside.to(x.dtype)


def _reflect_grad(x: torch.Tensor, twice_low: int, twice_high: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror into ``[twice_low / 2, twice_high / 2]`` and the derivative ``±1`` (the sign flips per mirror)."""
    if twice_low == twice_high:
        return torch.zeros_like(x), torch.zeros_like(x)
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    shifted = x - low
    sign = torch.where(shifted < 0, -torch.ones_like(x), torch.ones_like(x))
    distance = shifted.abs()
    extra = torch.fmod(distance, span)
    even = torch.floor(distance / span) % 2 == 0
    return torch.where(even, extra + low, span - extra + low), torch.where(even, sign, -sign)


def source_coordinates_grad(coord: torch.Tensor, size: int, padding_mode: str = "zeros",
                            align_corners: bool = False) -> torch.Tensor:
    """``∂x/∂g``: derivative of :func:`stn_course.sampling.source_coordinates` with respect to the normalized
    coordinate, elementwise. ``coord: (…)`` ``-> (…)``

    The unnormalization contributes ``(size - 1) / 2`` (``align_corners=True``) or ``size / 2``; ``border`` and
    ``reflection`` multiply by their padding factor (see the module docstring).
    """
    scale = (size - 1) / 2 if align_corners else size / 2
    x = ((coord + 1) / 2 * (size - 1)) if align_corners else (((coord + 1) * size - 1) / 2)
    if padding_mode == "zeros":
        return torch.full_like(coord, scale)
    factor = torch.ones_like(coord)
    if padding_mode == "reflection":
        x, factor = _reflect_grad(x, 0, 2 * (size - 1)) if align_corners else _reflect_grad(x, -1, 2 * size - 1)
    _, clip = _clip_grad(x, size)
    return factor * clip * scale


# ----------------------------------------------------------------------------------------------------------------
# The sampler, vectorized for speed: four corner indices and weights, one gather, one scatter
# ----------------------------------------------------------------------------------------------------------------


def _corners(x: torch.Tensor, y: torch.Tensor, height: int, width: int):
    """Flat indices ``(N, 4, P)`` of the four neighbours (clamped into the image), their masks and the fractional
    offsets. Order: (x0, y0), (x1, y0), (x0, y1), (x1, y1) – top-left, top-right, bottom-left, bottom-right."""
    x0f, y0f = torch.floor(x), torch.floor(y)
    fx, fy = x - x0f, y - y0f  # distance to the left / top neighbour
    x0, y0 = x0f.long(), y0f.long()
    x1, y1 = x0 + 1, y0 + 1
    in_x0, in_x1 = (x0 >= 0) & (x0 < width), (x1 >= 0) & (x1 < width)
    in_y0, in_y1 = (y0 >= 0) & (y0 < height), (y1 >= 0) & (y1 < height)
    cx0, cx1 = x0.clamp(0, width - 1), x1.clamp(0, width - 1)
    cy0, cy1 = y0.clamp(0, height - 1) * width, y1.clamp(0, height - 1) * width
    index = torch.stack([cy0 + cx0, cy0 + cx1, cy1 + cx0, cy1 + cx1], 1)
    mask = torch.stack([in_x0 & in_y0, in_x1 & in_y0, in_x0 & in_y1, in_x1 & in_y1], 1).to(x.dtype)
    return index, mask, fx, fy


def _weights(fx: torch.Tensor, fy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Bilinear weights ``(N, 4, P)`` (eq. 5), zero for neighbours outside the image."""
    gx, gy = 1 - fx, 1 - fy
    return torch.stack([gx * gy, fx * gy, gx * fy, fx * fy], 1) * mask


def _gather_corners(input: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``input: (N, C, H, W)``, ``index: (N, 4, P)`` flat pixel indices ``-> (N, C, 4, P)``."""
    n, c, h, w = input.shape
    flat = index.reshape(n, 1, -1).expand(n, c, -1)
    return torch.gather(input.reshape(n, c, h * w), 2, flat).view(n, c, 4, -1)


def _sample_forward(input: torch.Tensor, grid: torch.Tensor, padding_mode: str, align_corners: bool):
    n, c, h, w = input.shape
    x, y = _pixel_coordinates(grid, h, w, padding_mode, align_corners)
    index, mask, fx, fy = _corners(x.reshape(n, -1), y.reshape(n, -1), h, w)
    weights = _weights(fx, fy, mask)
    values = _gather_corners(input, index)  # (N, C, 4, P)
    out = torch.einsum("nckp,nkp->ncp", values, weights) if c > 1 else (values[:, 0] * weights).sum(1, keepdim=True)
    return out, (index, mask, fx, fy, weights)


def bilinear_sample_backward(grad_output: torch.Tensor, input: torch.Tensor, grid: torch.Tensor,
                             padding_mode: str = "zeros", align_corners: bool = False,
                             need_input: bool = True, need_grid: bool = True):
    """The hand-derived backward of bilinear sampling: ``(∂L/∂U, ∂L/∂G)``, either may be ``None``.

    ``grad_output: (N, C, H_out, W_out)``, ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)``
    ``-> ((N, C, H, W), (N, H_out, W_out, 2))``
    """
    n, c, h, w = input.shape
    x, y = _pixel_coordinates(grid, h, w, padding_mode, align_corners)
    index, mask, fx, fy = _corners(x.reshape(n, -1), y.reshape(n, -1), h, w)
    g = grad_output.reshape(n, c, -1)  # (N, C, P)
    grad_input = grad_grid = None
    if need_input:
        # eq. 6: each output pixel sends weight_k * dL/dV to neighbour k; colliding indices add up.
        weights = _weights(fx, fy, mask)  # (N, 4, P)
        contributions = (g.unsqueeze(2) * weights.unsqueeze(1)).reshape(n, c, -1)  # (N, C, 4P)
        grad_input = torch.zeros(n, c, h * w, dtype=input.dtype, device=input.device)
        grad_input.scatter_add_(2, index.reshape(n, 1, -1).expand(n, c, -1), contributions)
        grad_input = grad_input.view(n, c, h, w)
    if need_grid:
        # eq. 7: s_k = Σ_c dL/dV_c · U_c[neighbour k] (neighbours outside the image read 0) ...
        values = _gather_corners(input, index)  # (N, C, 4, P)
        s = torch.einsum("ncp,nckp->nkp", g, values) * mask if c > 1 else g * values[:, 0] * mask
        s00, s10, s01, s11 = s.unbind(1)
        # ... then ∂w_k/∂x: the weights (1-fx)(1-fy), fx(1-fy), (1-fx)fy, fx fy differentiate to ∓(1-fy), ∓fy.
        gx = (s10 - s00) * (1 - fy) + (s11 - s01) * fy
        gy = (s01 - s00) * (1 - fx) + (s11 - s10) * fx
        # chain through the padding mode and the unnormalization: ∂x/∂g_x, ∂y/∂g_y
        dx = source_coordinates_grad(grid[..., 0], w, padding_mode, align_corners).reshape(n, -1)
        dy = source_coordinates_grad(grid[..., 1], h, padding_mode, align_corners).reshape(n, -1)
        grad_grid = torch.stack([gx * dx, gy * dy], -1).view(grid.shape)
    return grad_input, grad_grid


class BilinearSampleFunction(torch.autograd.Function):
    """Bilinear sampling with a hand-written backward (eqs. 6–7). ``apply(input, grid, padding_mode, align_corners)``

    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``. The forward is the same
    computation as :func:`stn_course.sampling.bilinear_sample` (so results agree with ``F.grid_sample``), the
    backward is :func:`bilinear_sample_backward`. Once differentiable: double backward raises.
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                align_corners: bool = False) -> torch.Tensor:
        _check_inputs(input, grid, padding_mode)
        out, _ = _sample_forward(input, grid, padding_mode, align_corners)
        ctx.save_for_backward(input, grid)
        ctx.padding_mode, ctx.align_corners = padding_mode, align_corners
        n, c = input.shape[:2]
        return out.view(n, c, grid.shape[1], grid.shape[2])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        input, grid = ctx.saved_tensors
        need_input, need_grid = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_input, grad_grid = bilinear_sample_backward(grad_output.contiguous(), input, grid, ctx.padding_mode,
                                                         ctx.align_corners, need_input, need_grid)
        return grad_input, grad_grid, None, None


class AffineGridFunction(torch.autograd.Function):
    """Affine grid with a hand-written backward. ``apply(theta, size, align_corners)``

    ``theta: (N, 2, 3)``, ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``. Since
    ``G[n, p, i] = Σ_j θ[n, i, j] · b[p, j]`` with ``b = (x_t, y_t, 1)``, ``∂L/∂θ[n] = (∂L/∂G[n])ᵀ @ b``.
    """

    @staticmethod
    def forward(ctx, theta: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
        ctx.size, ctx.align_corners = tuple(int(s) for s in size), align_corners
        return affine_grid(theta, size, align_corners)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_grid: torch.Tensor):
        return affine_grid_backward(grad_grid, ctx.size, ctx.align_corners), None, None


def affine_grid_backward(grad_grid: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """``∂L/∂θ`` from ``∂L/∂G``. ``grad_grid: (N, H_out, W_out, 2)`` ``-> (N, 2, 3)``"""
    n, _, h, w = size
    base = base_grid(h, w, align_corners, grad_grid.dtype, grad_grid.device).view(1, h * w, 3)
    return grad_grid.reshape(n, h * w, 2).transpose(1, 2) @ base  # (N, 2, H*W) @ (1, H*W, 3)


def bilinear_sample_analytic(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                             align_corners: bool = False) -> torch.Tensor:
    """:class:`BilinearSampleFunction` as a function, with ``F.grid_sample``'s argument order.

    ``(N, C, H, W), (N, H_out, W_out, 2) -> (N, C, H_out, W_out)``
    """
    _check_inputs(input, grid, padding_mode)
    return BilinearSampleFunction.apply(input, grid, padding_mode, align_corners)


def affine_grid_analytic(theta: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """:class:`AffineGridFunction` as a function, with ``F.affine_grid``'s argument order.

    ``theta: (N, 2, 3)``, ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``
    """
    _check_theta(theta, size)
    return AffineGridFunction.apply(theta, size, align_corners)
