"""Samplers with the bugs of popular spatial-transformer code (lesson 2's bug hunt).

Lesson 2 shows :func:`blog_sampler` and measures it with the identity test (:func:`stn_course.sampling.
identity_error`); its check ``02.truncation_counterexample`` asks for a point where :func:`truncating_sampler`, which
passes that test, is wrong. Every function here takes ``grid_sample``'s arguments,
``(N, C, H, W), (N, H_out, W_out, 2) -> (N, C, H_out, W_out)``, and is wrong on purpose.
"""
from __future__ import annotations

import torch

from .sampling import _flat_index, bilinear_sample, gather_corners, unnormalize

__all__ = ["blog_sampler", "swapped_xy_sampler", "clamping_sampler", "truncating_sampler"]


def blog_sampler(img: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros", align_corners: bool = False,
                 rescale_max: int = 1) -> torch.Tensor:
    """The bilinear sampler of a popular TensorFlow STN tutorial, ported line for line (``B, H, W, C`` there,
    ``N, C, H, W`` here) with its bugs; it ignores ``padding_mode`` and ``align_corners``.

    ``x = 0.5 * ((x + 1) * (max_x - rescale_max))``: ``rescale_max=1`` is the original code (``W - 2``), ``0`` the
    "fix" found in its forks (``W - 1``); either way the neighbour indices are clipped to the image *before* the
    weights are computed from them.

    >>> image = torch.arange(1.0, 7.0).view(1, 1, 2, 3)
    >>> blog_sampler(image, torch.tensor([[[[1.0, 1.0]]]]))  # the bottom-right corner reads pixel (0, 1)
    tensor([[[[2.]]]])
    """
    H, W = img.shape[-2:]
    max_y, max_x = H - 1, W - 1
    # rescale x and y to [0, W-1/H-1]
    x = 0.5 * ((grid[..., 0] + 1.0) * (max_x - rescale_max))
    y = 0.5 * ((grid[..., 1] + 1.0) * (max_y - rescale_max))
    # grab 4 nearest corner points for each (x_i, y_i)
    x0, y0 = torch.floor(x).long(), torch.floor(y).long()
    x1, y1 = x0 + 1, y0 + 1
    # clip to range [0, H-1/W-1] to not violate img boundaries
    x0, x1, y0, y1 = x0.clamp(0, max_x), x1.clamp(0, max_x), y0.clamp(0, max_y), y1.clamp(0, max_y)
    b = torch.arange(img.shape[0], device=img.device).view(-1, 1, 1)
    Ia, Ib = img[b, :, y0, x0], img[b, :, y1, x0]  # (N, H_out, W_out, C)
    Ic, Id = img[b, :, y0, x1], img[b, :, y1, x1]
    # recast as float for delta calculation
    x0, x1, y0, y1 = x0.to(x.dtype), x1.to(x.dtype), y0.to(x.dtype), y1.to(x.dtype)
    wa, wb = ((x1 - x) * (y1 - y))[..., None], ((x1 - x) * (y - y0))[..., None]
    wc, wd = ((x - x0) * (y1 - y))[..., None], ((x - x0) * (y - y0))[..., None]
    return (wa * Ia + wb * Ib + wc * Ic + wd * Id).permute(0, 3, 1, 2)


def swapped_xy_sampler(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                       align_corners: bool = False) -> torch.Tensor:
    """A sampler that reads ``(y, x)`` from the grid as if it were ``(x, y)``."""
    return bilinear_sample(input, grid.flip(-1), padding_mode, align_corners)


def clamping_sampler(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                     align_corners: bool = False) -> torch.Tensor:
    """A sampler that clamps out-of-range neighbours onto the border instead of reading zeros."""
    return bilinear_sample(input, grid, "border", align_corners)


def truncating_sampler(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                       align_corners: bool = False) -> torch.Tensor:
    """A colleague's zeros-padding sampler (it ignores ``padding_mode``): right but for one cast, ``x.long()``.

    A cast truncates towards zero, so left of (or above) the image it picks the neighbours ``x0 = 0, 1`` where
    floor gives ``-1, 0`` (or ``-2, -1``), and ``1 - |x - x0|`` is then a *negative* weight. The identity grid and
    any grid inside ``[-1, 1]`` with ``align_corners=True`` never read a negative coordinate, so both pass.

    >>> image = torch.tensor([[[[1.0, 2.0]]]])
    >>> truncating_sampler(image, torch.tensor([[[[-1.0, 0.0]]]]), align_corners=False)  # x = -0.5: 0.5 expected
    tensor([[[[-0.5000]]]])
    """
    n, c, h, w = input.shape
    x = unnormalize(grid[..., 0], w, align_corners).reshape(n, 1, -1)
    y = unnormalize(grid[..., 1], h, align_corners).reshape(n, 1, -1)
    x0, y0 = x.long().to(x.dtype), y.long().to(y.dtype)  # the top-left neighbour
    xs = torch.cat([x0, x0 + 1, x0, x0 + 1], 1)  # (N, 4, P), corners y0x0, y0x1, y1x0, y1x1
    ys = torch.cat([y0, y0, y0 + 1, y0 + 1], 1)
    index, inside = _flat_index(xs, ys, h, w)
    weights = (1 - (x - xs).abs()) * (1 - (y - ys).abs())
    return (gather_corners(input, index, inside) * weights[:, None]).sum(2).view(n, c, *grid.shape[1:3])
