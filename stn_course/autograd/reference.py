"""The hand-derived backward of the spatial transformer, as lesson 4 derives it (the readable version).

Derivation in one screen, for one output pixel and one channel (pixel coordinates ``x, y`` after padding)::

    V = Σ_{ij} U[i, j] · max(0, 1 - |x - j|) · max(0, 1 - |y - i|)                         (eq. 5)
    ∂V/∂U[i, j] = max(0, 1 - |x - j|) · max(0, 1 - |y - i|)                               (eq. 6)
    ∂V/∂x = Σ_{ij} U[i, j] · max(0, 1 - |y - i|) · {0 if |j - x| >= 1; +1 if j >= x; -1 if j < x}   (eq. 7)
    x = s · g_x + c,  s = (W - 1)/2 (align_corners) or W/2;  ∂x/∂g_x = s · padding factor

The padding factor is the mode's slope (:meth:`stn_course.padding.PaddingMode.slope`), following ATen's
``grid_sampler_compute_source_index_set_grad``: ``zeros`` – 1; ``border`` – 1 strictly inside ``(0, W - 1)`` and 0
at or beyond the border (the clamp is flat there); ``reflection`` – ±1, the sign flipping with every mirror, then
the border rule on the reflected coordinate. Corners are named row then column: ``y0x0, y0x1, y1x0, y1x1``.

Every step reuses the forward's own pieces from :mod:`stn_course.sampling` (the coordinates, the four corners, their
weights, the gather), so forward and backward cannot drift apart. :mod:`stn_course.autograd.fast` computes the same
numbers with fewer, larger operations; the tests hold both to these.
"""
from __future__ import annotations

import functools
from typing import Sequence

import torch

from .._validation import check_float_tensor, check_same, check_size, shape_str
from ..grids import base_grid
from .. import padding
from ..sampling import (_check_inputs, _pixel_coordinates, bilinear_corners, bilinear_weights, gather_corners,
                        source_coordinates, unnormalize)

__all__ = ["source_coordinates_grad", "bilinear_sample_backward", "bilinear_sample_jvp", "affine_grid_backward",
           "numerical_gradient"]


def source_coordinates_grad(coord: torch.Tensor, size: int, padding_mode: str = "zeros",
                            align_corners: bool = False) -> torch.Tensor:
    """``∂x/∂g``: derivative of :func:`stn_course.sampling.source_coordinates` with respect to the normalized
    coordinate, elementwise. ``coord: (…)`` ``-> (…)``

    The unnormalization contributes ``(size - 1) / 2`` (``align_corners=True``) or ``size / 2``; the padding mode
    multiplies by its slope (:meth:`stn_course.padding.PaddingMode.slope`, see the module docstring).

    >>> source_coordinates_grad(torch.tensor([-2.0, 0.0, 2.0]), 4, "border")
    tensor([0., 2., 0.])
    """
    source_coordinates(coord[:0], size, padding_mode, align_corners)  # validates every argument
    scale = (size - 1) / 2 if align_corners else size / 2
    mode = padding.get(padding_mode)
    return mode.slope(unnormalize(coord, size, align_corners), size, align_corners) * scale


def bilinear_sample_backward(grad_output: torch.Tensor, input: torch.Tensor, grid: torch.Tensor,
                             padding_mode: str = "zeros", align_corners: bool = False,
                             need_input: bool = True, need_grid: bool = True):
    """The hand-derived backward of bilinear sampling: ``(∂L/∂U, ∂L/∂G)``, either may be ``None``.

    ``grad_output: (N, C, H_out, W_out)``, ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)``
    ``-> ((N, C, H, W), (N, H_out, W_out, 2))``

    >>> u, g = torch.rand(2, 3, 5, 7), torch.rand(2, 4, 6, 2) * 2 - 1
    >>> du, dg = bilinear_sample_backward(torch.ones(2, 3, 4, 6), u, g)
    >>> du.shape, dg.shape
    (torch.Size([2, 3, 5, 7]), torch.Size([2, 4, 6, 2]))
    """
    _check_inputs(input, grid, padding_mode)
    check_float_tensor(grad_output, "grad_output", 4, "(N, C, H_out, W_out)")
    n, c, h, w = input.shape
    expected = (n, c, *grid.shape[1:3])
    if tuple(grad_output.shape) != expected:
        raise ValueError(f"grad_output: expected shape (N, C, H_out, W_out) = {expected}, got "
                         f"{shape_str(grad_output)}")
    check_same(input, grad_output, "input", "grad_output")
    x, y, snap = _pixel_coordinates(grid, h, w, padding_mode, align_corners)
    snap = None if snap is None else (snap[0].flatten(1), snap[1].flatten(1))
    index, inside, fx, fy = bilinear_corners(x.flatten(1), y.flatten(1), h, w, snap)
    g = grad_output.flatten(2)  # (N, C, P)
    grad_input = grad_grid = None
    if need_input:
        # eq. 6: each output pixel sends weight_k * dL/dV to neighbour k; colliding indices add up. Neighbours
        # outside the image are skipped (their weight replaced by 0, so a NaN weight sends nothing there).
        weights = torch.where(inside, bilinear_weights(fx, fy), torch.zeros((), dtype=fx.dtype))  # (N, 4, P)
        contributions = (g.unsqueeze(2) * weights.unsqueeze(1)).flatten(2)  # (N, C, 4P)
        grad_input = torch.zeros(n, c, h * w, dtype=input.dtype, device=input.device)
        grad_input.scatter_add_(2, index.flatten(1).unsqueeze(1).expand(n, c, -1), contributions)
        grad_input = grad_input.view(n, c, h, w)
    if need_grid:
        # eq. 7: s_k = Σ_c dL/dV_c · U_c[neighbour k] (neighbours outside the image read 0) ...
        values = gather_corners(input, index, inside)  # (N, C, 4, P)
        s_y0x0, s_y0x1, s_y1x0, s_y1x1 = torch.einsum("ncp,nckp->nkp", g, values).unbind(1)
        # ... then ∂w_k/∂x: the weights (1-fy)(1-fx), (1-fy)fx, fy(1-fx), fy fx differentiate to ∓(1-fy), ∓fy.
        gx = (s_y0x1 - s_y0x0) * (1 - fy) + (s_y1x1 - s_y1x0) * fy
        gy = (s_y1x0 - s_y0x0) * (1 - fx) + (s_y1x1 - s_y0x1) * fx
        # chain through the padding mode and the unnormalization: ∂x/∂g_x, ∂y/∂g_y
        dx = source_coordinates_grad(grid[..., 0], w, padding_mode, align_corners).flatten(1)
        dy = source_coordinates_grad(grid[..., 1], h, padding_mode, align_corners).flatten(1)
        grad_grid = torch.stack([gx * dx, gy * dy], -1).view(grid.shape)
    return grad_input, grad_grid


def bilinear_sample_jvp(input: torch.Tensor, grid: torch.Tensor, input_tangent: torch.Tensor | None,
                        grid_tangent: torch.Tensor | None, padding_mode: str = "zeros",
                        align_corners: bool = False) -> torch.Tensor:
    """Forward-mode derivative of bilinear sampling: ``dV = Σ_k w_k dU[k] + ∂V/∂x dx + ∂V/∂y dy`` – eq. 6 applied
    to the input's tangent plus eq. 7 (the same one-sided differences as the backward, the same kinks) times the
    grid's tangent. Either tangent may be ``None`` (zero).

    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)``, tangents shaped alike ``-> (N, C, H_out, W_out)``
    """
    _check_inputs(input, grid, padding_mode)
    n, c, h, w = input.shape
    x, y, snap = _pixel_coordinates(grid, h, w, padding_mode, align_corners)
    snap = None if snap is None else (snap[0].flatten(1), snap[1].flatten(1))
    index, inside, fx, fy = bilinear_corners(x.flatten(1), y.flatten(1), h, w, snap)
    tangent = torch.zeros(n, c, fx.shape[1], dtype=fx.dtype, device=input.device)
    if input_tangent is not None:  # eq. 6: the same weights read the tangent image
        weights = torch.where(inside, bilinear_weights(fx, fy), torch.zeros((), dtype=fx.dtype))  # (N, 4, P)
        tangent += (gather_corners(input_tangent.to(fx.dtype), index, inside) * weights.unsqueeze(1)).sum(2)
    if grid_tangent is not None:  # eq. 7 per channel, chained through the padding mode and the unnormalization
        v_y0x0, v_y0x1, v_y1x0, v_y1x1 = gather_corners(input.to(fx.dtype), index, inside).unbind(2)
        dv_dx = (v_y0x1 - v_y0x0) * (1 - fy).unsqueeze(1) + (v_y1x1 - v_y1x0) * fy.unsqueeze(1)
        dv_dy = (v_y1x0 - v_y0x0) * (1 - fx).unsqueeze(1) + (v_y1x1 - v_y0x1) * fx.unsqueeze(1)
        work = grid.to(fx.dtype)
        dx = source_coordinates_grad(work[..., 0], w, padding_mode, align_corners).flatten(1)
        dy = source_coordinates_grad(work[..., 1], h, padding_mode, align_corners).flatten(1)
        d_grid = grid_tangent.to(fx.dtype)
        tangent += dv_dx * (dx * d_grid[..., 0].flatten(1)).unsqueeze(1)
        tangent += dv_dy * (dy * d_grid[..., 1].flatten(1)).unsqueeze(1)
    return tangent.view(n, c, *grid.shape[1:3]).to(input.dtype)


def affine_grid_backward(grad_grid: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """``∂L/∂θ`` from ``∂L/∂G``: ``∂L/∂θ[n] = (∂L/∂G[n])ᵀ @ (x_t, y_t, 1)``.

    ``grad_grid: (N, H_out, W_out, 2)``, ``size = (N, C, H_out, W_out)`` ``-> (N, 2, 3)``

    >>> affine_grid_backward(torch.ones(1, 2, 2, 2), (1, 1, 2, 2))
    tensor([[[0., 0., 4.],
             [0., 0., 4.]]])
    """
    check_float_tensor(grad_grid, "grad_grid", 4, "(N, H_out, W_out, 2)")
    n, _, h, w = check_size(size, 4, "size", allow_zero=True)
    if tuple(grad_grid.shape) != (n, h, w, 2):
        raise ValueError(f"grad_grid: expected shape (N, H_out, W_out, 2) = {(n, h, w, 2)} for size={tuple(size)}, "
                         f"got {shape_str(grad_grid)}")
    base = base_points(h, w, align_corners, grad_grid.dtype, grad_grid.device)
    # (N 2, H W) @ (H W, 3): all samples in one matrix product
    return (grad_grid.reshape(n, h * w, 2).transpose(1, 2).reshape(n * 2, h * w) @ base).view(n, 2, 3)


@functools.lru_cache(maxsize=64)
def base_points(h: int, w: int, align_corners: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The base grid ``(H W, 3)`` of homogeneous output pixel centres, cached (never modify it)."""
    return base_grid(h, w, align_corners, dtype, device).reshape(h * w, 3)


def numerical_gradient(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every entry ``i`` of ``x`` (lesson 4's
    checker of hand-derived gradients).

    ``f`` maps a tensor shaped like ``x`` to a scalar (tensor or number); ``x`` is not modified. The displaced
    points are the rows of ``x ± eps·I``, all made first; ``f`` is called on each. ``-> x.shape``, ``x``'s dtype.

    >>> numerical_gradient(lambda v: (v ** 2).sum(), torch.tensor([1.0, -2.0], dtype=torch.float64)).round(decimals=6)
    tensor([ 2., -4.], dtype=torch.float64)
    """
    if not callable(f):
        raise TypeError(f"f: expected a function of a tensor shaped like x, got {type(f).__name__}")
    check_float_tensor(x, "x")
    flat = x.detach().reshape(-1)
    steps = eps * torch.eye(flat.numel(), dtype=flat.dtype, device=flat.device)
    above = torch.tensor([float(f(point.view_as(x))) for point in flat + steps], dtype=torch.float64)
    below = torch.tensor([float(f(point.view_as(x))) for point in flat - steps], dtype=torch.float64)
    return ((above - below) / (2 * eps)).to(dtype=x.dtype, device=x.device).view_as(x)
