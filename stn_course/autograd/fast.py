"""The fast path of the hand-derived sampler backward (lesson 4, "making it fast"): the same equations as
:mod:`stn_course.autograd.reference`, arranged so that each is a few large vectorized operations.

Used by :class:`stn_course.autograd.BilinearSampleFunction` for float32 and float64 (``impl="fast"``); the tests
hold it to the readable version, to ``F.grid_sample`` and to ``gradcheck``, NaN and empty batches included.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
import torch.nn.functional as F

from .. import padding
from ..sampling import source_coordinates
from .reference import source_coordinates_grad

# Padding the input with zeros (two pixels before and after each axis, see _padded) and clamping the coordinates
# into [-2, size] removes every "is this neighbour inside the image?" mask: a neighbour outside reads the zero
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

    Returns, all ``(M,)``: the index of the near neighbour in the zero-padded axis (pixel ``i`` sits at ``i + 2``;
    the far neighbour is the next one) as a whole number in the float ``index_dtype`` (float arithmetic is
    vectorized, int64 is not), the fractional offset ``x - floor(x)`` (the far neighbour's weight), and for a mode
    that does not clamp (``zeros``: it keeps the coordinate) (if ``need_slope``) ``∂x/∂g``: the unnormalization's
    scale, 0 outside ``(-1, size)`` (beyond that both neighbours are padding anyway); else ``None`` and backward
    computes the slope. Coordinates are clamped into
    ``[-2, size]``, so a point far outside reads two padding pixels, never a real one with weight 0 (an infinite
    pixel times 0 would be NaN, which ``F.grid_sample`` does not give there).
    Same arithmetic as :func:`stn_course.sampling.source_coordinates`, so float32 rounds like ``F.grid_sample``; in
    float32 the offset of a point within rounding (``size · eps``) of a pixel centre is moved onto it, so the
    identity is exact (a cheaper cousin of ``sampling._snap``) – but the neighbours stay those of the unsnapped
    point, ATen's, so the gradient at a kink is ATen's one-sided one.

    Written with float operations only, on 1-D tensors and Python scalars: on CPU, comparisons, ``where`` and
    bool-to-float conversions cost 5-60× a float ``add`` per element, and broadcasting a ``(2, 1)`` tensor over a
    transposed ``(2, M)`` view defeats vectorization.
    """
    slope = None
    keeps = not padding.get(padding_mode).clamps  # zeros: the coordinate stays, neighbours outside read 0
    x = source_coordinates(coord, size, padding_mode, align_corners)
    if keeps and need_slope:  # scale · [-1 <= x <= size]: each sign(·) + 1 clamped to 1 is [· >= 0]
        slope = (x + 1).sign_().add_(1).clamp_(max=1).mul_((size - x).sign_().add_(1).clamp_(max=1))
        slope.mul_((size - 1) / 2 if align_corners else size / 2)
    if keeps:  # like F.grid_sample: a NaN or infinite point gives NaN weights (x · 0 is NaN there)
        not_finite = x * 0
    x = x.clamp_(-2, size)
    low = torch.floor(x)  # the neighbours of the unsnapped point, as in ATen (a kink's side is ATen's)
    if coord.dtype != torch.float64:  # snap the offset: drop x - round(x) where it is within rounding
        nearest = torch.round(x)
        x = nearest.add_(F.hardshrink(x - nearest, size * torch.finfo(coord.dtype).eps))
    frac = x.sub_(low)
    if keeps:
        frac.add_(not_finite)
        low = torch.nan_to_num_(low, nan=-2.0)  # a NaN point reads the padding (with its NaN weight)
    return low.to(index_dtype).add_(2), frac, slope


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
    """A copy of ``t: (N, C, H, W)`` with two pixels of zeros before and after each spatial axis, flattened:
    ``(N (H+4) (W+4), C)`` channels-last, else one plane per channel ``(C, N (H+4) (W+4))``.

    Coordinates are clamped into ``[-2, size]``, so the near neighbour lies in ``[-2, size]`` and the far one in
    ``[-1, size + 1]``: both inside the padded image, and all four corners of a pixel sit at fixed offsets from
    its top-left corner.
    """
    n, c, h, w = t.shape
    # (N, H+4, W+4, C) or (C, N, H+4, W+4), viewed as (…, H+4, W+4, C') so that one slicing serves both layouts
    out = t.new_empty(n, h + 4, w + 4, c) if channels_last else t.new_empty(c, n, h + 4, w + 4)
    spatial = out if channels_last else out.view(c * n, h + 4, w + 4, 1)
    spatial[:, 2:-2, 2:-2] = t.permute(0, 2, 3, 1) if channels_last else t.transpose(0, 1).reshape(c * n, h, w, 1)
    for border in (spatial[:, :2], spatial[:, -2:], spatial[:, 2:-2, :2], spatial[:, 2:-2, -2:]):
        border.zero_()  # only the border: the interior is written once
    return out.view(n * (h + 4) * (w + 4), c) if channels_last else out.view(c, n * (h + 4) * (w + 4))


def forward(ctx, input: torch.Tensor, grid: torch.Tensor, padding_mode: str, align_corners: bool) -> torch.Tensor:
    """The fast forward, saving what :func:`backward` needs on ``ctx`` (float32 / float64, inputs validated).

    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``
    """
    n, c, h, w = input.shape
    _, h_out, w_out, _ = grid.shape
    p = h_out * w_out
    hp, wp = h + 4, w + 4  # the padded image (see _padded)
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
        u = _padded(input, channels_last=True)  # (N (H+4) (W+4), C)
        out = _weighted_gather_sum(u, rows, weights).view(n, h_out, w_out, c).permute(0, 3, 1, 2)
        corners = [u] if ctx.needs_input_grad[1] else []  # what backward needs for s_k
    else:
        # few channels: one padded plane per channel; corner j of every pixel is read through the view of
        # the plane shifted by offsets[j], so one index array serves all four corners
        rows = top_left.int()  # a 1-D index_select is several times faster with int32 indices
        weights = torch.empty(4, n * p, dtype=input.dtype, device=input.device)  # corner-major
        for j, (wy, wx) in enumerate(corner_weights):
            torch.mul(wy, wx, out=weights[j])
        planes = _padded(input, channels_last=False)  # (C, N (H+4) (W+4))
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



def backward(ctx, grad_output: torch.Tensor):
    """``(∂L/∂U, ∂L/∂G)`` from what :func:`forward` saved (either ``None`` when not needed)."""
    grid, rows, weights, fx, fy, slopes, *corners = ctx.saved_tensors
    n, c, h, w, p = ctx.shape
    size = n * (h + 4) * (w + 4)
    if ctx.channels_last:
        g = grad_output.permute(0, 2, 3, 1).reshape(n * p, c)  # (N P, C)
    else:
        g = grad_output.transpose(0, 1).reshape(c, n * p)  # (C, N P)
    grad_input = grad_grid = None
    if ctx.needs_input_grad[0]:
        # eq. 6: every output pixel adds its weighted gradient into its four neighbours (collisions add up)
        if ctx.channels_last:  # dL/dU = S^T dL/dV: S's entries grouped by input row, one gather-sum
            grad_u = _weighted_gather_sum(g, *_transpose_bags(rows, weights, size))
            grad_input = grad_u.view(n, h + 4, w + 4, c).permute(0, 3, 1, 2)
        else:  # 1-D scatter-adds into each channel plane, corner j through the plane shifted by offsets[j]
            rows64 = rows.long()  # scatter_add_ wants int64 indices
            grad_u = g.new_zeros(c, size)
            contribution = g.new_empty(n * p)
            for k in range(c):
                for j, offset in enumerate(ctx.offsets):
                    grad_u[k, offset:].scatter_add_(0, rows64, torch.mul(g[k], weights[j], out=contribution))
            grad_input = grad_u.view(c, n, h + 4, w + 4).transpose(0, 1)
        grad_input = grad_input[:, :, 2:-2, 2:-2].contiguous()
    if ctx.needs_input_grad[1]:
        # eq. 7: s_k = <dL/dV, U[neighbour k]> (0 in the padding) ...
        if ctx.channels_last:  # (dL/dV U^T) evaluated at the nonzeros of S only
            s_y0x0, s_y0x1, s_y1x0, s_y1x1 = _sampled_dots(rows, g, corners[0]).unbind(1)
        else:  # summed over the channels
            s_y0x0, s_y0x1, s_y1x0, s_y1x1 = _weighted_sum(corners, g)
        # ... times the derivative of the weights (1-fy)(1-fx), (1-fy)fx, fy(1-fx), fy fx ...
        # (1 - fy)(s_y0x1 - s_y0x0) + fy (s_y1x1 - s_y1x0) is a linear interpolation of the two row slopes
        grad_xy = torch.empty(2, n * p, dtype=fx.dtype, device=fx.device)
        torch.lerp(s_y0x1 - s_y0x0, s_y1x1 - s_y1x0, fy, out=grad_xy[0])  # ∂L/∂x
        torch.lerp(s_y1x0 - s_y0x0, s_y1x1 - s_y0x1, fx, out=grad_xy[1])  # ∂L/∂y
        # ... chained through the padding mode and the unnormalization: ∂x/∂g_x, ∂y/∂g_y
        if slopes is None:  # border / reflection: the padding's factor, from the grid (zeros: from forward)
            slopes = torch.stack([source_coordinates_grad(grid[..., axis].reshape(-1), size, ctx.padding_mode,
                                                          ctx.align_corners) for axis, size in ((0, w), (1, h))])
        grad_grid = grad_xy.mul_(slopes.view(grad_xy.shape)).view(2, *grid.shape[:3]).permute(1, 2, 3, 0)
    return grad_input, grad_grid


