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

Double backward is not supported: asked for a differentiable backward (``create_graph=True``), the Functions raise a
clear ``RuntimeError`` instead of returning wrong numbers (their backward bodies are also ``@once_differentiable``).
"""
from __future__ import annotations

import functools
import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .grids import _check_theta, base_grid
from .sampling import _check_inputs, _pixel_coordinates, source_coordinates, unnormalize

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


# ----------------------------------------------------------------------------------------------------------------
# The fast path: the same equations, arranged so that each is a few large vectorized operations
# ----------------------------------------------------------------------------------------------------------------
#
# Padding the input with zeros (one pixel before and two after each axis, see _padded) and clamping the coordinates
# into [-1, size] removes every "is this neighbour inside the image?" mask: a neighbour outside reads the zero
# border, and the four corners of a pixel sit at fixed offsets from its top-left one. In matrix form V = S U with
# a sparse S (four weights w_k[p] in row p, at the rows j_k[p] of U). Per output pixel p and corner k:
#   forward   V[p] = sum_k w_k[p] U[j_k[p]]                      (eq. 5: a weighted gather-sum)
#   eq. 6     dL/dU[j] = sum_{(p,k): j_k[p] = j} w_k[p] dL/dV[p]    (S^T dL/dV: a scatter-add)
#   eq. 7     s_k[p] = <dL/dV[p], U[j_k[p]]>, then dL/dx = sum_k s_k dw_k/dx
# Few channels (< 16): one zero-padded plane per channel; the forward's gathered corners are kept for eq. 7 and
# eq. 6 is a 1-D scatter_add_ per channel. Many channels: U channels-last, so each row moves C contiguous numbers;
# the forward is F.embedding_bag's fused weighted gather-sum, eq. 6 the same kernel on S^T (S's entries sorted by
# input row), eq. 7 an SDDMM (dL/dV U^T evaluated only at S's nonzeros).
# On CPU these sizes are memory-bound, and a fresh large tensor costs a page fault per 4 KiB on first touch:
# fewer and smaller temporaries matter as much as fewer operations.


def _padded_axis(coord: torch.Tensor, size: int, padding_mode: str, align_corners: bool,
                 index_dtype: torch.dtype, need_slope: bool):
    """One axis of the fast path, for contiguous normalized coordinates ``coord: (M,)``.

    Returns, all ``(M,)``: the index of the near neighbour in the zero-padded axis (pixel ``i`` sits at ``i + 1``;
    the far neighbour is the next one) as a whole number in the float ``index_dtype`` (float arithmetic is
    vectorized, int64 is not), the fractional offset ``x - floor(x)`` (the far neighbour's weight), and for ``zeros``
    padding (if ``need_slope``) ``∂x/∂g``: the unnormalization's scale, 0 where the coordinate is clamped into
    ``[-1, size]`` (beyond that both neighbours are padding anyway); else ``None`` and backward computes the slope.
    Same arithmetic as :func:`stn_course.sampling.source_coordinates`, so float32 rounds like ``F.grid_sample``; in
    float32 a point within rounding (``size · eps``) of a pixel centre is moved onto it, so the identity is exact
    (a cheaper cousin of ``sampling._snap``).

    Written with float operations only, on 1-D tensors and Python scalars: on CPU, comparisons, ``where`` and
    bool-to-float conversions cost 5-60× a float ``add`` per element, and broadcasting a ``(2, 1)`` tensor over a
    transposed ``(2, M)`` view defeats vectorization.
    """
    slope = None
    if padding_mode == "zeros":
        x = unnormalize(coord, size, align_corners)
        if need_slope:  # scale · [-1 < x < size]: (x + 1)(size - x) > 0 exactly there
            slope = (x + 1).mul_(size - x).sign_().clamp_(min=0)
            slope.mul_((size - 1) / 2 if align_corners else size / 2)
    else:
        x = source_coordinates(coord, size, padding_mode, align_corners)
    if coord.dtype != torch.float64:  # snap: drop x - round(x) where it is within the rounding tolerance
        nearest = torch.round(x)
        x = nearest.add_(F.hardshrink(x - nearest, size * torch.finfo(coord.dtype).eps))
    low = torch.floor(x.clamp_(-1, size))
    frac = x.sub_(low)
    return low.to(index_dtype).add_(1), frac, slope


def _weighted_sum(values: Sequence[torch.Tensor], weights: Sequence[torch.Tensor],
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_k values[k] · weights[k]`` over a few terms (tensors, or the rows of one), accumulated in place: no
    stacked temporary."""
    out = torch.mul(values[0], weights[0], out=out)
    for value, weight in zip(values[1:], weights[1:]):
        out.addcmul_(value, weight)
    return out


_CHANNELS_LAST_MIN_CHANNELS = 16  # from this many channels on, the channels-last gather-sum path wins


def _weighted_gather_sum(table: torch.Tensor, index: torch.Tensor, weights: torch.Tensor,
                         offsets: torch.Tensor | None = None) -> torch.Tensor:
    """``out[b] = Σ_i weights[i] · table[index[i]]`` over the entries ``i`` of bag ``b``: a sparse matrix times a
    dense one, one call to the fused kernel behind ``F.embedding_bag``.

    ``table: (M, C)``; either ``index, weights: (B, K)`` (bag ``b`` is row ``b``) or flat ``(E,)`` with ``offsets:
    (B,)`` where each bag starts (empty bags give 0) ``-> (B, C)``.
    """
    return F.embedding_bag(index, table, offsets, mode="sum", per_sample_weights=weights)


def _transpose_bags(index: torch.Tensor, weights: torch.Tensor, size: int):
    """The transpose of the sparse matrix whose row ``p`` holds ``weights[p, k]`` in column ``index[p, k]``.

    ``index, weights: (P, K)`` ``->`` flat ``(index', weights', offsets)`` for :func:`_weighted_gather_sum`: bag
    ``j < size`` lists every ``(p, k)`` with ``index[p, k] == j`` (a sort by column) as entries ``p``.
    """
    flat = index.reshape(-1)
    order = torch.argsort(flat)
    counts = torch.bincount(flat, minlength=size)
    offsets = torch.cumsum(counts, 0).sub_(counts)
    return torch.div(order, index.shape[1], rounding_mode="floor"), weights.reshape(-1)[order], offsets


def _sampled_dots(index: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``out[p, k] = <a[p], b[index[p, k]]>`` for ``index: (P, K)``, ``a: (P, C)``, ``b: (M, C)`` ``-> (P, K)``:
    the product ``a bᵀ`` evaluated only where the sparse pattern ``index`` has entries (an SDDMM)."""
    p, k = index.shape
    crow = torch.arange(0, p * k + 1, k, device=index.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        pattern = torch.sparse_csr_tensor(crow, index.reshape(-1), a.new_zeros(p * k), (p, b.shape[0]),
                                          check_invariants=False)
        return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values().view(p, k)


def _padded(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A copy of ``t: (N, C, H, W)`` with one pixel of zeros before and two after each spatial axis, flattened:
    ``(N (H+3) (W+3), C)`` channels-last, else one plane per channel ``(C, N (H+3) (W+3))``.

    Coordinates are clamped into ``[-1, size]``, so the near neighbour lies in ``[-1, size]`` and the far one in
    ``[0, size + 1]``: both inside the padded image, and all four corners of a pixel sit at fixed offsets from
    its top-left corner.
    """
    n, c, h, w = t.shape
    # (N, H+3, W+3, C) or (C, N, H+3, W+3), viewed as (…, H+3, W+3, C') so that one slicing serves both layouts
    out = t.new_empty(n, h + 3, w + 3, c) if channels_last else t.new_empty(c, n, h + 3, w + 3)
    spatial = out if channels_last else out.view(c * n, h + 3, w + 3, 1)
    spatial[:, 1:-2, 1:-2] = t.permute(0, 2, 3, 1) if channels_last else t.transpose(0, 1).reshape(c * n, h, w, 1)
    for border in (spatial[:, :1], spatial[:, -2:], spatial[:, 1:-2, :1], spatial[:, 1:-2, -2:]):
        border.zero_()  # only the border: the interior is written once
    return out.view(-1, c) if channels_last else out.view(c, -1)


def _no_double_backward(name: str) -> None:
    """Raise when backward runs with ``create_graph=True``: the hand-written backward is not differentiable."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            f"{name}: double backward is not supported – its backward is derived by hand and is not itself "
            "differentiable (create_graph=True was requested). Use F.grid_sample / F.affine_grid (impl='aten') "
            "for higher-order gradients.")


class BilinearSampleFunction(torch.autograd.Function):
    """Bilinear sampling with a hand-written backward (eqs. 6–7). ``apply(input, grid, padding_mode, align_corners)``

    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``; the numbers of
    ``F.grid_sample(mode="bilinear")`` (points within float32 rounding of a pixel centre are snapped onto it, as in
    :func:`stn_course.sampling.bilinear_sample`, so the identity is exact). The readable gather/scatter form of the
    same backward is :func:`bilinear_sample_backward`; this class runs a faster arrangement of it (see above).
    Once differentiable: double backward raises.
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                align_corners: bool = False) -> torch.Tensor:
        _check_inputs(input, grid, padding_mode)
        n, c, h, w = input.shape
        _, h_out, w_out, _ = grid.shape
        p = h_out * w_out
        ctx.padding_mode, ctx.align_corners, ctx.shape = padding_mode, align_corners, (n, c, h, w, p)
        ctx.readable = input.dtype not in (torch.float32, torch.float64)
        if ctx.readable:  # half precision: the readable gather/scatter form, computed in float32
            out, _ = _sample_forward(input.float(), grid.float(), padding_mode, align_corners)
            ctx.save_for_backward(input, grid)
            return out.view(n, c, h_out, w_out).to(input.dtype)
        hp, wp = h + 3, w + 3  # the padded image (see _padded)
        # flat indices are exact in float32 below 2**24, else computed in float64
        index_dtype = torch.float32 if n * hp * wp < 2 ** 24 else torch.float64
        coords = grid.permute(3, 0, 1, 2).reshape(2, n * p)  # x then y, each contiguous (N P,)
        need_slope = ctx.needs_input_grad[1]
        x0, fx, slope_x = _padded_axis(coords[0], w, padding_mode, align_corners, index_dtype, need_slope)
        y0, fy, slope_y = _padded_axis(coords[1], h, padding_mode, align_corners, index_dtype, need_slope)
        slopes = torch.stack([slope_x, slope_y]) if slope_x is not None else None
        # flat index of each output pixel's top-left corner in the padded batch; the corners y0x0, y0x1, y1x0, y1x1
        # are at these offsets from it
        image_start = torch.arange(0, n * hp * wp, hp * wp, dtype=index_dtype, device=input.device).view(n, 1)
        top_left = torch.add(image_start, y0.view(n, p), alpha=wp).view(-1).add_(x0)
        ctx.offsets = offsets = (0, 1, wp, wp + 1)
        gx, gy = 1 - fx, 1 - fy  # weights of the near neighbours; fx, fy those of the far ones
        corner_weights = ((gy, gx), (gy, fx), (fy, gx), (fy, fx))
        ctx.channels_last = c >= _CHANNELS_LAST_MIN_CHANNELS
        if ctx.channels_last:
            # many channels: V = S U as one weighted gather-sum over the rows of U (C contiguous channels each);
            # row p of S holds the four corners of output pixel p: (N P, 4) indices and weights, point-major
            rows = top_left.long().view(-1, 1) + torch.tensor(offsets, device=input.device)
            weights = torch.stack([wy * wx for wy, wx in corner_weights], 1)
            u = _padded(input, channels_last=True)  # (N (H+3) (W+3), C)
            out = _weighted_gather_sum(u, rows, weights).view(n, h_out, w_out, c).permute(0, 3, 1, 2)
            corners = [u] if ctx.needs_input_grad[1] else []  # what backward needs for s_k
        else:
            # few channels: one padded plane per channel; corner j of every pixel is read through the view of
            # the plane shifted by offsets[j], so one index array serves all four corners
            rows = top_left.int()  # a 1-D index_select is several times faster with int32 indices
            weights = torch.empty(4, n * p, dtype=input.dtype, device=input.device)  # corner-major
            for j, (wy, wx) in enumerate(corner_weights):
                torch.mul(wy, wx, out=weights[j])
            planes = _padded(input, channels_last=False)  # (C, N (H+3) (W+3))
            out = input.new_empty(c, n * p)
            corners = []  # per channel (4, N P), kept for eq. 7 (one big (C, 4, N P) block is slower to allocate)
            for k in range(c):
                values = input.new_empty(4, n * p)
                for j, offset in enumerate(offsets):
                    torch.index_select(planes[k, offset:], 0, rows, out=values[j])
                corners.append(values)
                _weighted_sum(values, weights, out=out[k])
            out = out.view(c, n, h_out, w_out).transpose(0, 1)
            if not ctx.needs_input_grad[1]:
                corners = []
        ctx.save_for_backward(grid, rows, weights, fx, fy, slopes, *corners)
        return out.contiguous()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        _no_double_backward("BilinearSampleFunction")
        return BilinearSampleFunction._backward(ctx, grad_output)

    @staticmethod
    @once_differentiable
    def _backward(ctx, grad_output: torch.Tensor):
        if ctx.readable:
            input, grid = ctx.saved_tensors
            grads = bilinear_sample_backward(grad_output.float().contiguous(), input.float(), grid.float(),
                                             ctx.padding_mode, ctx.align_corners, ctx.needs_input_grad[0],
                                             ctx.needs_input_grad[1])
            return tuple(None if t is None else t.to(input.dtype) for t in grads) + (None, None)
        grid, rows, weights, fx, fy, slopes, *corners = ctx.saved_tensors
        n, c, h, w, p = ctx.shape
        size = n * (h + 3) * (w + 3)
        if ctx.channels_last:
            g = grad_output.permute(0, 2, 3, 1).reshape(n * p, c)  # (N P, C)
        else:
            g = grad_output.transpose(0, 1).reshape(c, n * p)  # (C, N P)
        grad_input = grad_grid = None
        if ctx.needs_input_grad[0]:
            # eq. 6: every output pixel adds its weighted gradient into its four neighbours (collisions add up)
            if ctx.channels_last:  # dL/dU = S^T dL/dV: S's entries grouped by input row, one gather-sum
                grad_u = _weighted_gather_sum(g, *_transpose_bags(rows, weights, size))
                grad_input = grad_u.view(n, h + 3, w + 3, c).permute(0, 3, 1, 2)
            else:  # 1-D scatter-adds into each channel plane, corner j through the plane shifted by offsets[j]
                rows64 = rows.long()  # scatter_add_ wants int64 indices
                grad_u = g.new_zeros(c, size)
                contribution = g.new_empty(n * p)
                for k in range(c):
                    for j, offset in enumerate(ctx.offsets):
                        grad_u[k, offset:].scatter_add_(0, rows64, torch.mul(g[k], weights[j], out=contribution))
                grad_input = grad_u.view(c, n, h + 3, w + 3).transpose(0, 1)
            grad_input = grad_input[:, :, 1:-2, 1:-2].contiguous()
        if ctx.needs_input_grad[1]:
            # eq. 7: s_k = <dL/dV, U[neighbour k]> (0 in the padding) ...
            if ctx.channels_last:  # (dL/dV U^T) evaluated at the nonzeros of S only
                s00, s01, s10, s11 = _sampled_dots(rows, g, corners[0]).unbind(1)
            else:  # summed over the channels
                s00, s01, s10, s11 = _weighted_sum(corners, g)
            # ... times the derivative of the weights (1-fy)(1-fx), (1-fy)fx, fy(1-fx), fy fx ...
            # (1 - fy)(s01 - s00) + fy (s11 - s10) is a linear interpolation of the two row slopes
            grad_xy = torch.empty(2, n * p, dtype=fx.dtype, device=fx.device)
            torch.lerp(s01 - s00, s11 - s10, fy, out=grad_xy[0])  # ∂L/∂x
            torch.lerp(s10 - s00, s11 - s01, fx, out=grad_xy[1])  # ∂L/∂y
            # ... chained through the padding mode and the unnormalization: ∂x/∂g_x, ∂y/∂g_y
            if slopes is None:  # border / reflection: the padding's factor, from the grid (zeros: from forward)
                slopes = torch.stack([source_coordinates_grad(grid[..., axis].reshape(-1), size, ctx.padding_mode,
                                                              ctx.align_corners) for axis, size in ((0, w), (1, h))])
            grad_grid = grad_xy.mul_(slopes.view(2, -1)).view(2, *grid.shape[:3]).permute(1, 2, 3, 0)
        return grad_input, grad_grid, None, None


class AffineGridFunction(torch.autograd.Function):
    """Affine grid with a hand-written backward. ``apply(theta, size, align_corners)``

    ``theta: (N, 2, 3)``, ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``. Since
    ``G[n, p, i] = Σ_j θ[n, i, j] · b[p, j]`` with ``b = (x_t, y_t, 1)``, ``∂L/∂θ[n] = (∂L/∂G[n])ᵀ @ b``.
    """

    @staticmethod
    def forward(ctx, theta: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
        n, _, h, w = _check_theta(theta, size)
        ctx.size, ctx.align_corners = (n, 1, h, w), align_corners
        base = _base_points(h, w, align_corners, theta.dtype, theta.device)  # (H W, 3)
        # one matrix product for the whole batch: (N 2, 3) @ (3, H W)
        grid = (theta.reshape(n * 2, 3) @ base.T).view(n, 2, h, w)
        return grid.permute(0, 2, 3, 1).contiguous()

    @staticmethod
    def backward(ctx, grad_grid: torch.Tensor):
        _no_double_backward("AffineGridFunction")
        return AffineGridFunction._backward(ctx, grad_grid)

    @staticmethod
    @once_differentiable
    def _backward(ctx, grad_grid: torch.Tensor):
        return affine_grid_backward(grad_grid, ctx.size, ctx.align_corners), None, None


@functools.lru_cache(maxsize=64)
def _base_points(h: int, w: int, align_corners: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The base grid ``(H W, 3)`` of homogeneous output pixel centres, cached (never modify it)."""
    return base_grid(h, w, align_corners, dtype, device).reshape(h * w, 3)


def affine_grid_backward(grad_grid: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """``∂L/∂θ`` from ``∂L/∂G``. ``grad_grid: (N, H_out, W_out, 2)`` ``-> (N, 2, 3)``"""
    n, _, h, w = size
    base = _base_points(h, w, align_corners, grad_grid.dtype, grad_grid.device)
    # (N 2, H W) @ (H W, 3): all samples in one matrix product
    return (grad_grid.reshape(n, h * w, 2).transpose(1, 2).reshape(n * 2, h * w) @ base).view(n, 2, 3)


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
