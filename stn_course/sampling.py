"""Bilinear and nearest-neighbour sampling, written from scratch (lesson 2).

``bilinear_sample(input, grid, padding_mode, align_corners)`` has the semantics of
``torch.nn.functional.grid_sample(input, grid, mode="bilinear", ...)`` for 2-D inputs, but is plain vectorized
torch – no call to ``grid_sample`` – so every step is visible and autograd can differentiate through it:

1. *unnormalize* the grid from ``[-1, 1]`` to pixel coordinates (the ``align_corners`` convention lives here),
2. apply the *padding mode* to the coordinates (``border`` clamps, ``reflection`` mirrors; ``zeros`` leaves them),
3. find the four neighbours ``(x0, y0) … (x1, y1)`` and their bilinear weights (Jaderberg et al., eq. 5),
4. gather the four neighbours – those outside the image count as 0 – and blend them.

The NumPy twins (``*_np``) compute the same numbers for the lessons that start in NumPy.

The popular bug this module never ships: rescaling with ``x = 0.5 * ((x + 1) * (W - 2))`` (or ``W - 1`` with a
truncating cast) maps ``+1`` short of the last column, so the identity transform loses the last row and column.
"""
from __future__ import annotations

import numpy as np
import torch

from ._validation import check_choice, check_ndim, check_same, check_tensor, check_float
from .grids import check_grid

__all__ = [
    "PADDING_MODES",
    "unnormalize",
    "source_coordinates",
    "bilinear_sample",
    "nearest_sample",
    "bilinear_sample_np",
    "nearest_sample_np",
]

PADDING_MODES = ("zeros", "border", "reflection")


def unnormalize(coord: torch.Tensor, size: int, align_corners: bool) -> torch.Tensor:
    """Map normalized coordinates in [-1, 1] to pixel coordinates along an axis of ``size`` pixels.

    ``align_corners=True``:  -1 -> 0 and +1 -> size - 1 (pixel centres).
    ``align_corners=False``: -1 -> -0.5 and +1 -> size - 0.5 (pixel edges).
    Written in the arithmetic order of PyTorch's CPU kernel, so float32 results round alike; that kernel computes
    ``… * (size / 2) - 0.5`` as one fused multiply-add (one rounding), which float64 reproduces here.
    """
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    if coord.dtype == torch.float64:
        return (coord + 1) * (size / 2) - 0.5
    return ((coord + 1).double() * (size / 2) - 0.5).to(coord.dtype)


def _reflect(x: torch.Tensor, low: float, span: float) -> torch.Tensor:
    """Mirror ``x`` about ``low`` and ``low + span`` as many times as needed to land in ``[low, low + span]``.

    Unfolding: reflections repeat with period ``2 span``, so take the distance from ``low`` modulo ``2 span``;
    a remainder past ``span`` has been mirrored once more: ``min(extra, 2 span - extra)``.
    """
    if span <= 0:
        return torch.zeros_like(x)
    twice_span = 2 * span
    distance = (x - low).abs()
    extra = distance - torch.trunc(distance / twice_span) * twice_span
    return torch.minimum(extra, twice_span - extra) + low


def source_coordinates(
    coord: torch.Tensor, size: int, padding_mode: str = "zeros", align_corners: bool = False
) -> torch.Tensor:
    """Normalized grid coordinates along one axis -> pixel coordinates to interpolate at, padding applied.

    ``zeros`` leaves them (out-of-range neighbours read 0 later); ``border`` clamps to ``[0, size - 1]``;
    ``reflection`` mirrors about the image border – the centres of the end pixels (``[0, size - 1]``) with
    ``align_corners=True``, their outer edges (``[-0.5, size - 0.5]``) otherwise – and then clamps.
    """
    x = unnormalize(coord, size, align_corners)
    if padding_mode == "border":
        x = x.clamp(0, size - 1)
    elif padding_mode == "reflection":
        x = _reflect(x, 0.0, size - 1) if align_corners else _reflect(x, -0.5, size)
        x = x.clamp(0, size - 1)
    return x


def _snap(x: torch.Tensor, coord: torch.Tensor, size: int, padding_mode: str, align_corners: bool) -> torch.Tensor:
    """Move points whose grid value is a pixel centre up to float32 rounding exactly onto that centre.

    A float32 grid cannot hold most pixel centres exactly (``(2 i + 1) / W - 1`` is no binary fraction), so
    ``F.grid_sample`` reproduces an image under the identity only to about ``W * 1e-7``. The distance to the nearest
    centre is measured in float64; points closer than ``size * eps / 2`` (twice a correctly rounded grid's error)
    are snapped, which makes the identity and integer shifts exact. Every other point keeps the float32 arithmetic
    of ``F.grid_sample``, so results match it to rounding. Gradients pass straight through.
    """
    exact = source_coordinates(coord.double(), size, padding_mode, align_corners)
    nearest = torch.round(exact)
    close = (exact - nearest).abs() <= size * torch.finfo(coord.dtype).eps / 2
    return x + torch.where(close, nearest.to(x.dtype) - x, torch.zeros_like(x)).detach()


def _pixel_coordinates(
    grid: torch.Tensor, height: int, width: int, padding_mode: str, align_corners: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``(x, y)`` to interpolate at, each ``(N, H_out, W_out)``; float32 grids are snapped.

    Half-precision grids are computed in float32 (as PyTorch does), and not snapped: their rounding error is
    a visible fraction of a pixel.
    """
    if grid.dtype in (torch.float16, torch.bfloat16):
        grid = grid.float()
        return (source_coordinates(grid[..., 0], width, padding_mode, align_corners),
                source_coordinates(grid[..., 1], height, padding_mode, align_corners))
    x = source_coordinates(grid[..., 0], width, padding_mode, align_corners)
    y = source_coordinates(grid[..., 1], height, padding_mode, align_corners)
    if grid.dtype == torch.float32:
        x = _snap(x, grid[..., 0], width, padding_mode, align_corners)
        y = _snap(y, grid[..., 1], height, padding_mode, align_corners)
    return x, y


def _check_inputs(input: torch.Tensor, grid: torch.Tensor, padding_mode: str) -> None:
    check_tensor(input, "input")
    check_float(input, "input")
    check_ndim(input, 4, "input", "(N, C, H, W)")
    check_grid(grid, input)
    check_same(input, grid, "input", "grid")
    check_choice(padding_mode, PADDING_MODES, "padding_mode")


def _gather(input: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Read ``input[n, :, ys, xs]`` for integer maps ``xs, ys: (N, K, P)``, with 0 outside the image.

    ``input: (N, C, H, W)`` -> ``(N, C, K, P)``
    """
    n, c, h, w = input.shape
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    flat_index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(n, 1, -1).expand(n, c, -1)
    values = torch.gather(input.reshape(n, c, h * w), 2, flat_index).view(n, c, *xs.shape[1:])
    return values * inside.unsqueeze(1).to(input.dtype)


def bilinear_sample(
    input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros", align_corners: bool = False
) -> torch.Tensor:
    """Bilinear sampling with the semantics of ``F.grid_sample(mode="bilinear")``.

    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` with normalized ``(x, y)`` ``-> (N, C, H_out, W_out)``
    """
    _check_inputs(input, grid, padding_mode)
    n, c, h, w = input.shape
    _, h_out, w_out, _ = grid.shape
    x, y = _pixel_coordinates(grid, h, w, padding_mode, align_corners)
    x, y = x.reshape(n, 1, -1), y.reshape(n, 1, -1)

    x0, y0 = torch.floor(x), torch.floor(y)
    # Bilinear weights (eq. 5): each neighbour is weighted by the area of the opposite rectangle,
    # from the distances to the west/east (x) and north/south (y) neighbours.
    west, north = x - x0, y - y0
    east, south = 1 - west, 1 - north
    weights = torch.cat([south * east, south * west, north * east, north * west], 1)
    xs = torch.cat([x0, x0 + 1, x0, x0 + 1], 1).long()
    ys = torch.cat([y0, y0, y0 + 1, y0 + 1], 1).long()

    neighbours = _gather(input, xs, ys)  # (N, C, 4, P)
    out = (neighbours * weights.unsqueeze(1)).sum(2)
    return out.view(n, c, h_out, w_out).to(input.dtype)


def nearest_sample(
    input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros", align_corners: bool = False
) -> torch.Tensor:
    """Nearest-neighbour sampling with the semantics of ``F.grid_sample(mode="nearest")``.

    Ties round half to even, like C's ``nearbyint`` used by PyTorch.
    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``
    """
    _check_inputs(input, grid, padding_mode)
    n, c, h, w = input.shape
    _, h_out, w_out, _ = grid.shape
    x, y = _pixel_coordinates(grid, h, w, padding_mode, align_corners)
    xs = torch.round(x).long().reshape(n, 1, -1)
    ys = torch.round(y).long().reshape(n, 1, -1)
    return _gather(input, xs, ys).view(n, c, h_out, w_out)


# ----------------------------------------------------------------------------------------------------------------
# NumPy twins
# ----------------------------------------------------------------------------------------------------------------


def _source_coordinates_np(coord: np.ndarray, size: int, padding_mode: str, align_corners: bool) -> np.ndarray:
    x = (coord + 1) * ((size - 1) / 2) if align_corners else (coord + 1) * (size / 2) - 0.5
    if padding_mode == "border":
        x = np.clip(x, 0, size - 1)
    elif padding_mode == "reflection":
        low, span = (0.0, size - 1) if align_corners else (-0.5, size)
        if span <= 0:
            x = np.zeros_like(x)
        else:
            distance = np.abs(x - low)
            extra = distance - np.trunc(distance / (2 * span)) * (2 * span)
            x = np.minimum(extra, 2 * span - extra) + low
        x = np.clip(x, 0, size - 1)
    return x


def _check_inputs_np(input: np.ndarray, grid: np.ndarray, padding_mode: str) -> None:
    if input.ndim != 4:
        raise ValueError(f"input: expected a 4-D array of shape (N, C, H, W), got shape {input.shape}")
    if grid.ndim != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid: expected shape (N, H_out, W_out, 2), got {grid.shape}")
    if input.shape[0] != grid.shape[0]:
        raise ValueError(f"input and grid must have the same batch size N, got {input.shape[0]} and {grid.shape[0]}")
    if not (np.issubdtype(input.dtype, np.floating) and np.issubdtype(grid.dtype, np.floating)):
        raise TypeError(f"input and grid must be floating point, got {input.dtype} and {grid.dtype}")
    check_choice(padding_mode, PADDING_MODES, "padding_mode")


def _pixel_coordinates_np(input: np.ndarray, grid: np.ndarray, padding_mode: str, align_corners: bool):
    """Validate, then the pixel coordinates ``(x, y)`` to interpolate at, each ``(N, H_out, W_out)``."""
    _check_inputs_np(input, grid, padding_mode)
    _, _, h, w = input.shape
    return (_source_coordinates_np(grid[..., 0], w, padding_mode, align_corners),
            _source_coordinates_np(grid[..., 1], h, padding_mode, align_corners))


def _gather_np(input: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``input: (N, C, H, W)``, integer ``xs, ys: (N, H_out, W_out)`` -> ``(N, C, H_out, W_out)``, 0 outside."""
    n, c, h, w = input.shape
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    batch = np.arange(n)[:, None, None]
    values = input[batch, :, np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]  # (N, H_out, W_out, C)
    return np.moveaxis(values * inside[..., None], -1, 1)


def bilinear_sample_np(
    input: np.ndarray, grid: np.ndarray, padding_mode: str = "zeros", align_corners: bool = False
) -> np.ndarray:
    """NumPy twin of :func:`bilinear_sample`. ``(N, C, H, W), (N, H_out, W_out, 2) -> (N, C, H_out, W_out)``"""
    input, grid = np.asarray(input), np.asarray(grid)
    x, y = _pixel_coordinates_np(input, grid, padding_mode, align_corners)
    x0, y0 = np.floor(x), np.floor(y)
    x1, y1 = x0 + 1, y0 + 1
    corners = [(x0, y0, (x1 - x) * (y1 - y)), (x1, y0, (x - x0) * (y1 - y)),
               (x0, y1, (x1 - x) * (y - y0)), (x1, y1, (x - x0) * (y - y0))]
    out = 0
    for xs, ys, weight in corners:
        out = out + _gather_np(input, xs.astype(np.int64), ys.astype(np.int64)) * weight[:, None]
    return out.astype(np.result_type(input, grid))


def nearest_sample_np(
    input: np.ndarray, grid: np.ndarray, padding_mode: str = "zeros", align_corners: bool = False
) -> np.ndarray:
    """NumPy twin of :func:`nearest_sample` (``np.rint`` rounds half to even)."""
    input, grid = np.asarray(input), np.asarray(grid)
    x, y = _pixel_coordinates_np(input, grid, padding_mode, align_corners)
    return _gather_np(input, np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)).astype(input.dtype)
