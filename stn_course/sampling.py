"""Bilinear and nearest-neighbour sampling, written from scratch (lesson 2).

:func:`grid_sample` has exactly the signature and semantics of ``torch.nn.functional.grid_sample`` for 2-D inputs
(``mode`` ``"bilinear"`` or ``"nearest"``, every padding mode, both ``align_corners``, NaN and infinity included),
so ours and torch's swap. It is plain vectorized torch – no call to ``grid_sample`` – so every step is visible and
autograd can differentiate through it. :func:`bilinear_sample` and :func:`nearest_sample` are the lesson's
exercises (``(input, grid, padding_mode, align_corners)``, one mode each); :func:`grid_sample` dispatches to them.

1. *unnormalize* the grid from ``[-1, 1]`` to pixel coordinates (the ``align_corners`` convention lives here),
2. apply the *padding mode* to the coordinates (``border`` clamps, ``reflection`` mirrors; ``zeros`` leaves them),
3. find the four neighbours ``(x0, y0) … (x1, y1)`` and their bilinear weights (Jaderberg et al., eq. 5),
4. gather the four neighbours – those outside the image read 0 – and blend them.

This module is the one copy of steps 1–4 that the rest of the package reuses (step 2 is the padding mode's object,
:mod:`stn_course.padding`): :func:`unnormalize` and :func:`source_coordinates` serve torch tensors and NumPy arrays
alike (the ``*_np`` twins for the lessons that start in NumPy), :func:`bilinear_interpolate` serves deformable
convolution's pixel-coordinate sampling, and :func:`bilinear_corners` / :func:`gather_corners` the hand-derived
backward of lesson 4. Step 0, the grid itself, is :mod:`stn_course.grids`.

**Non-finite values behave exactly as in** ``F.grid_sample``: with ``zeros`` padding a NaN or infinite grid point
gives NaN (bilinear) or 0 (nearest); ``border`` and ``reflection`` send it to pixel 0 (``border`` clamps ±inf to
the border first). A neighbour outside the image is *skipped*, not multiplied by 0, so an infinite pixel read only
by points outside the image does not turn them into NaN.

The popular bug this module never ships: rescaling with ``x = 0.5 * ((x + 1) * (W - 2))`` (or ``W - 1`` with a
truncating cast) maps ``+1`` short of the last column, so the identity transform loses the last row and column.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from . import padding
from ._validation import ShapeError, check_bool, check_choice, check_float_tensor, check_pair, check_same, check_tensor
from .grids import affine_grid, check_grid
from .padding import GRID_SAMPLE_MODES, PADDING_MODES, _check_coordinates, reflect_coordinates

__all__ = [
    "PADDING_MODES",
    "GRID_SAMPLE_MODES",
    "MODES",
    "unnormalize",
    "reflect_coordinates",
    "source_coordinates",
    "bilinear_corners",
    "gather_corners",
    "bilinear_interpolate",
    "bilinear_sample",
    "nearest_sample",
    "grid_sample",
    "grid_to_pixels",
    "bilinear_sample_np",
    "nearest_sample_np",
    "lerp_1d",
    "identity_error",
]

MODES = ("bilinear", "nearest")


def _check_axis_size(size: object, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"{name}: expected the number of pixels along the axis as an int, got "
                        f"{type(size).__name__} {size!r}")
    if size < 1:
        raise ValueError(f"{name}: expected a positive number of pixels along the axis, got {size}")
    return int(size)


def unnormalize(coord, size: int, align_corners: bool):
    """Map normalized coordinates in ``[-1, 1]`` to pixel coordinates along an axis of ``size`` pixels.

    ``align_corners=True``:  -1 -> 0 and +1 -> size - 1 (pixel centres).
    ``align_corners=False``: -1 -> -0.5 and +1 -> size - 0.5 (pixel edges).
    Works on torch tensors and NumPy arrays, elementwise (``(…) -> (…)``). Written in the arithmetic order of
    PyTorch's CPU kernel, so float32 results round alike; that kernel computes ``… * (size / 2) - 0.5`` as one fused
    multiply-add (one rounding), which float64 reproduces here.

    >>> unnormalize(torch.tensor([-1.0, 0.0, 1.0]), 4, align_corners=False)
    tensor([-0.5000,  1.5000,  3.5000])
    """
    coord = _check_coordinates(coord)
    size = _check_axis_size(size)
    align_corners = check_bool(align_corners, "align_corners")
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    if coord.dtype in (torch.float64, np.float64):
        return _fused_multiply_sub_half(coord + 1, size / 2)
    if isinstance(coord, torch.Tensor):
        return ((coord + 1).double() * (size / 2) - 0.5).to(coord.dtype)
    return ((coord + 1).astype(np.float64) * (size / 2) - 0.5).astype(coord.dtype)


def _fused_multiply_sub_half(a, s: float):
    """``a · s - 0.5`` rounded once, as a fused multiply-add (float64 tensors or arrays, ``(…) -> (…)``).

    ATen's CPU kernel unnormalizes float64 with an FMA; two roundings land a point within an ulp of a pixel
    centre on the other side of it now and then – and there ``floor`` picks the other neighbours, so the gradient
    is the other one-sided difference. Exact product by Dekker's splitting: ``s = size / 2`` has few bits, so
    ``a · s = p + e`` exactly, and ``p - 0.5`` is exact wherever the result is near an integer (Sterbenz).
    """
    xp = _xp(a)
    p = a * s
    exact = a.detach() if xp is torch else a  # the rounding correction carries no gradient: d/da is s
    with np.errstate(invalid="ignore"):  # inf - inf in the split of an infinite point (it keeps p - 0.5)
        split = exact * 134217729.0  # 2**27 + 1: a = high + low with 26-bit halves
        high = split - (split - exact)
        low = exact - high
        error = (high * s - p.detach() if xp is torch else high * s - p) + low * s  # a · s - p, exactly
        fused = (p - 0.5) + xp.where(xp.isfinite(error), error, xp.zeros_like(error))
    return fused


def _xp(x):
    return torch if isinstance(x, torch.Tensor) else np


def source_coordinates(coord, size: int, padding_mode: str = "zeros", align_corners: bool = False):
    """Normalized grid coordinates along one axis -> pixel coordinates to interpolate at, padding applied.

    Two steps: :func:`unnormalize`, then the padding mode's coordinate map (:mod:`stn_course.padding`): ``zeros``
    leaves them (out-of-range neighbours read 0 later); ``border`` clamps to ``[0, size - 1]``; ``reflection``
    mirrors about the image border – the centres of the end pixels (``[0, size - 1]``) with ``align_corners=True``,
    their outer edges (``[-0.5, size - 0.5]``) otherwise – and then clamps. With ``border`` and ``reflection`` a NaN
    (or a reflected infinity) becomes pixel 0, as in ``F.grid_sample``. Elementwise, on tensors and arrays:
    ``(…) -> (…)``.

    >>> source_coordinates(torch.tensor([-2.0, 0.0, 2.0]), 4, "border")
    tensor([0.0000, 1.5000, 3.0000])
    """
    mode = padding.get(padding_mode)
    return mode.coordinates(unnormalize(coord, size, align_corners), size, align_corners)


def _snap(x: torch.Tensor, coord: torch.Tensor, size: int, padding_mode: str, align_corners: bool) -> torch.Tensor:
    """How far to move points whose grid value is a pixel centre up to float32 rounding exactly onto that centre:
    ``nearest - x`` there, 0 elsewhere (detached, ``x``'s shape).

    A float32 grid cannot hold most pixel centres exactly (``(2 i + 1) / W - 1`` is no binary fraction), so
    ``F.grid_sample`` reproduces an image under the identity only to about ``W * 1e-7``. The distance to the nearest
    centre is measured in float64; points closer than ``size * eps / 2`` (twice a correctly rounded grid's error)
    are snapped, which makes the identity and integer shifts exact. Every other point keeps the float32 arithmetic
    of ``F.grid_sample``, so results match it to rounding. Non-finite points are left as they are.

    The snap moves only the *weights* (:func:`bilinear_corners` adds it to the fractional offset): the neighbours
    stay ``floor(x)`` and ``floor(x) + 1`` of the unsnapped ``x``, as in ATen, so a point a rounding error left of
    a centre keeps ATen's gradient there – the left difference – while its value is the centre's pixel exactly.
    """
    exact = source_coordinates(coord.double(), size, padding_mode, align_corners)
    nearest = torch.round(exact)
    close = (exact - nearest).abs() <= size * torch.finfo(coord.dtype).eps / 2
    return torch.where(close, nearest.to(x.dtype) - x, torch.zeros_like(x)).detach()


def _pixel_coordinates(
    grid: torch.Tensor, height: int, width: int, padding_mode: str, align_corners: bool
):
    """Pixel coordinates ``(x, y)`` to interpolate at, each ``(N, H_out, W_out)``, and for float32 grids the snap
    of each (:func:`_snap`; ``None`` otherwise) – ``(x, y, snap)``, ``snap = (dx, dy)`` for
    :func:`bilinear_corners`.

    Half-precision grids are computed in float32 (as PyTorch does), and not snapped: their rounding error is
    a visible fraction of a pixel.
    """
    snaps = grid.dtype == torch.float32
    if grid.dtype in (torch.float16, torch.bfloat16):
        grid = grid.float()
    x = source_coordinates(grid[..., 0], width, padding_mode, align_corners)
    y = source_coordinates(grid[..., 1], height, padding_mode, align_corners)
    snap = None
    if snaps:
        snap = (_snap(x, grid[..., 0], width, padding_mode, align_corners),
                _snap(y, grid[..., 1], height, padding_mode, align_corners))
    return x, y, snap


def _check_inputs(input: torch.Tensor, grid: torch.Tensor, padding_mode: str) -> None:
    check_float_tensor(input, "input", 4, "(N, C, H, W)")
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ShapeError(f"input: expected an image with H, W >= 1 (non-empty spatial dimensions), got shape "
                         f"{tuple(input.shape)}")
    check_grid(grid, input)
    check_same(input, grid, "input", "grid")
    padding.get(padding_mode)


def _flat_index(xs: torch.Tensor, ys: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer-valued float maps ``xs, ys`` -> flat indices ``y·W + x`` (int64) and where they are inside.

    Outside (and NaN) points get index 0 so every index is valid; the ``inside`` mask says which to skip.
    """
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    zero = torch.zeros((), dtype=xs.dtype, device=xs.device)
    index = torch.where(inside, ys, zero).long() * width + torch.where(inside, xs, zero).long()
    return index, inside


def bilinear_corners(x: torch.Tensor, y: torch.Tensor, height: int, width: int, snap=None):
    """The four neighbours of every point ``(x, y)`` (pixel coordinates, each ``(N, P)``).

    ``-> index (N, 4, P)`` flat pixel indices (0 where outside), ``inside (N, 4, P)`` bool, and the fractional
    offsets ``fx, fy (N, P)`` past the top-left neighbour. Corners named row then column, in the order ``y0x0,
    y0x1, y1x0, y1x1`` – top-left, top-right, bottom-left, bottom-right – as everywhere in the package.
    The neighbours are ``floor(x)`` and ``floor(x) + 1`` – at a pixel centre the one-sided difference to the right,
    as in ATen. ``snap = (dx, dy)`` (:func:`_snap`, shaped like ``x``) moves only the offsets.
    """
    x0, y0 = torch.floor(x), torch.floor(y)
    xs = torch.stack([x0, x0 + 1, x0, x0 + 1], 1)
    ys = torch.stack([y0, y0, y0 + 1, y0 + 1], 1)
    index, inside = _flat_index(xs, ys, height, width)
    fx, fy = x - x0, y - y0
    if snap is not None:
        fx, fy = fx + snap[0], fy + snap[1]
    return index, inside, fx, fy


def bilinear_weights(fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
    """Bilinear weights ``(N, 4, P)`` of the corners ``y0x0, y0x1, y1x0, y1x1`` (eq. 5): the area of the opposite
    rectangle."""
    gx, gy = 1 - fx, 1 - fy
    return torch.stack([gy * gx, gy * fx, fy * gx, fy * fx], 1)


def gather_corners(input: torch.Tensor, index: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
    """Read ``input`` at flat pixel indices. ``input: (N, C, H, W)``, ``index: (N, K, P)`` ``-> (N, C, K, P)``.

    With ``inside`` (``(N, K, P)`` bool), the entries outside the image are *replaced* by 0 (not multiplied by 0:
    an infinite pixel read from outside must not become NaN).
    """
    check_float_tensor(input, "input", 4, "(N, C, H, W)")
    check_tensor(index, "index")
    if index.dtype != torch.int64 or index.ndim != 3 or index.shape[0] != input.shape[0]:
        raise ValueError(f"index: expected an int64 tensor (N, K, P) with N = {input.shape[0]}, got "
                         f"{index.dtype} {tuple(index.shape)}")
    n, c, h, w = input.shape
    flat = index.flatten(1).unsqueeze(1).expand(n, c, -1)
    values = torch.gather(input.reshape(n, c, h * w), 2, flat).view(n, c, *index.shape[1:])
    if inside is None:
        return values
    return torch.where(inside.unsqueeze(1), values, torch.zeros((), dtype=values.dtype, device=values.device))


def bilinear_interpolate(input: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation at pixel coordinates, zero outside the image.

    ``x`` indexes columns and ``y`` rows; each of the four neighbours that lies outside the image contributes 0,
    so a sample fades to 0 over the last pixel beyond the border and is exactly 0 once ``x ≤ −1``, ``x ≥ W``,
    ``y ≤ −1`` or ``y ≥ H`` (torchvision's ``bilinear_interpolate``, and ``F.grid_sample``'s zeros padding).
    ``input: (N, C, H, W)``, ``x, y: (N, *S)`` ``-> (N, C, *S)``
    """
    check_float_tensor(input, "input", 4, "(N, C, H, W)")
    for value, name in ((x, "x"), (y, "y")):
        check_float_tensor(value, name)
        if value.ndim < 1 or value.shape[0] != input.shape[0] or value.shape != x.shape:
            raise ValueError(f"x, y: expected two tensors of one shape (N, *S) with N = {input.shape[0]}, got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
    return _interpolate(input, x, y)


def _interpolate(input: torch.Tensor, x: torch.Tensor, y: torch.Tensor, snap=None) -> torch.Tensor:
    """:func:`bilinear_interpolate` without the checks, with :func:`_snap`'s offsets (``snap = (dx, dy)``)."""
    n, c, h, w = input.shape
    shape = x.shape[1:]
    if snap is not None:
        snap = (snap[0].flatten(1), snap[1].flatten(1))
    index, inside, fx, fy = bilinear_corners(x.flatten(1), y.flatten(1), h, w, snap)
    neighbours = gather_corners(input, index, inside)  # (N, C, 4, P)
    weights = bilinear_weights(fx, fy)
    return (neighbours * weights.unsqueeze(1)).sum(2).view(n, c, *shape)


def bilinear_sample(
    input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros", align_corners: bool = False
) -> torch.Tensor:
    """Bilinear sampling with the semantics of ``F.grid_sample(mode="bilinear")`` (lesson 2's exercise).

    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` with normalized ``(x, y)`` ``-> (N, C, H_out, W_out)``.
    Note the order: there is no ``mode`` argument; :func:`grid_sample` has torch's exact signature.

    >>> bilinear_sample(torch.ones(2, 3, 5, 7), torch.zeros(2, 4, 6, 2)).shape
    torch.Size([2, 3, 4, 6])
    """
    _check_inputs(input, grid, padding_mode)
    n, c, h, w = input.shape
    _, h_out, w_out, _ = grid.shape
    x, y, snap = _pixel_coordinates(grid, h, w, padding_mode, align_corners)
    return _interpolate(input, x, y, snap).view(n, c, h_out, w_out).to(input.dtype)


def nearest_sample(
    input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros", align_corners: bool = False
) -> torch.Tensor:
    """Nearest-neighbour sampling with the semantics of ``F.grid_sample(mode="nearest")``.

    Ties round half to even, like C's ``nearbyint`` used by PyTorch.
    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``

    >>> image = torch.arange(4.0).view(1, 1, 2, 2)  # the centre (0, 0) is pixel (0.5, 0.5): a tie in x and y
    >>> nearest_sample(image, torch.zeros(1, 1, 1, 2)).flatten().tolist()
    [0.0]
    """
    _check_inputs(input, grid, padding_mode)
    n, c, h, w = input.shape
    _, h_out, w_out, _ = grid.shape
    x, y, _ = _pixel_coordinates(grid.detach(), h, w, padding_mode, align_corners)
    index, inside = _flat_index(torch.round(x).flatten(1).unsqueeze(1), torch.round(y).flatten(1).unsqueeze(1), h, w)
    out = gather_corners(input, index, inside).view(n, c, h_out, w_out)
    if grid.requires_grad and torch.is_grad_enabled():
        out = _FlatInGrid.apply(out, grid)
    return out


class _FlatInGrid(torch.autograd.Function):
    """``out`` unchanged, made a function of ``grid`` with derivative 0: nearest-neighbour sampling is piecewise
    constant in the grid, and ``F.grid_sample(mode="nearest")`` gives the grid a zero gradient (also where the
    input needs none: the output still requires grad, as torch's does). ``(out, grid) -> out``"""

    @staticmethod
    def forward(out: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return out.clone()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        grid = inputs[1]
        ctx.grid_shape, ctx.grid_dtype, ctx.grid_device = grid.shape, grid.dtype, grid.device

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        return grad_out, torch.zeros(ctx.grid_shape, dtype=ctx.grid_dtype, device=ctx.grid_device)

    @staticmethod
    def jvp(ctx, out_tangent, grid_tangent):
        return out_tangent


def grid_sample(input: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> torch.Tensor:
    """``torch.nn.functional.grid_sample`` for 2-D inputs, same signature, same numbers, written from scratch.

    ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``; ``mode`` is
    ``"bilinear"`` or ``"nearest"``; ``align_corners=None`` means ``False``, torch's default.

    >>> x, g = torch.rand(2, 3, 5, 7), torch.rand(2, 4, 6, 2) * 2 - 1
    >>> torch.allclose(grid_sample(x, g, "bilinear", "border", True),
    ...                torch.nn.functional.grid_sample(x, g, "bilinear", "border", True), atol=1e-6)
    True
    """
    check_choice(mode, MODES, "mode")
    align_corners = False if align_corners is None else check_bool(align_corners, "align_corners")
    sample = bilinear_sample if mode == "bilinear" else nearest_sample
    return sample(input, grid, padding_mode, align_corners)


def grid_to_pixels(grid: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> np.ndarray:
    """Normalized sampling grid -> input pixel coordinates, the way the sampler reads them.

    ``grid: (1, H_out, W_out, 2)`` or ``(H_out, W_out, 2)`` holding normalized ``(x, y)``; ``size = (H_in, W_in)``
    ``-> (H_out, W_out, 2)`` NumPy array of pixel ``(x, y)`` (pixel centres at integers).
    """
    if not isinstance(grid, torch.Tensor):
        grid = torch.as_tensor(np.asarray(grid, dtype=np.float64))
    if grid.ndim == 4:
        if grid.shape[0] != 1:
            raise ValueError(f"grid: expected one grid (1, H_out, W_out, 2), got shape {tuple(grid.shape)}")
        grid = grid[0]
    if grid.ndim != 3 or grid.shape[-1] != 2:
        raise ValueError(f"grid: expected shape (H_out, W_out, 2) or (1, H_out, W_out, 2), got {tuple(grid.shape)}")
    height, width = check_pair(size, "size")
    grid = grid.detach().cpu().double()
    x = unnormalize(grid[..., 0], width, align_corners)
    y = unnormalize(grid[..., 1], height, align_corners)
    return torch.stack([x, y], dim=-1).numpy()


# ----------------------------------------------------------------------------------------------------------------
# NumPy twins: the same helpers (unnormalize, reflect_coordinates, source_coordinates) on arrays
# ----------------------------------------------------------------------------------------------------------------


def _check_inputs_np(input: np.ndarray, grid: np.ndarray, padding_mode: str) -> None:
    if input.ndim != 4:
        raise ValueError(f"input: expected a 4-D array of shape (N, C, H, W), got shape {input.shape}")
    if grid.ndim != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid: expected shape (N, H_out, W_out, 2), got {grid.shape}")
    if input.shape[0] != grid.shape[0]:
        raise ValueError(f"input and grid must have the same batch size N, got {input.shape[0]} and {grid.shape[0]}")
    if not (np.issubdtype(input.dtype, np.floating) and np.issubdtype(grid.dtype, np.floating)):
        raise TypeError(f"input and grid must be floating point, got {input.dtype} and {grid.dtype}")
    padding.get(padding_mode)


def _pixel_coordinates_np(input: np.ndarray, grid: np.ndarray, padding_mode: str, align_corners: bool):
    """Validate, then the pixel coordinates ``(x, y)`` to interpolate at, each ``(N, H_out, W_out)``."""
    _check_inputs_np(input, grid, padding_mode)
    _, _, h, w = input.shape
    return (source_coordinates(grid[..., 0], w, padding_mode, align_corners),
            source_coordinates(grid[..., 1], h, padding_mode, align_corners))


def _gather_np(input: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``input: (N, C, H, W)``, integer-valued ``xs, ys: (N, H_out, W_out)`` -> ``(N, C, H_out, W_out)``, 0 outside."""
    n, c, h, w = input.shape
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    batch = np.arange(n)[:, None, None]
    rows, cols = np.where(inside, ys, 0).astype(np.int64), np.where(inside, xs, 0).astype(np.int64)
    values = input[batch, :, rows, cols]  # (N, H_out, W_out, C)
    return np.moveaxis(np.where(inside[..., None], values, 0), -1, 1)


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
    with np.errstate(invalid="ignore"):  # inf - inf = NaN is the answer for infinite coordinates, as in torch
        for xs, ys, weight in corners:
            out = out + _gather_np(input, xs, ys) * weight[:, None]
    return np.asarray(out).astype(np.result_type(input, grid))


def nearest_sample_np(
    input: np.ndarray, grid: np.ndarray, padding_mode: str = "zeros", align_corners: bool = False
) -> np.ndarray:
    """NumPy twin of :func:`nearest_sample` (``np.rint`` rounds half to even)."""
    input, grid = np.asarray(input), np.asarray(grid)
    x, y = _pixel_coordinates_np(input, grid, padding_mode, align_corners)
    return _gather_np(input, np.rint(x), np.rint(y)).astype(input.dtype)


def lerp_1d(signal: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``signal: (L,)`` at pixel positions ``x: (P,)``, 0 outside ``0..L-1``. ``-> (P,)``

    Lesson 2's §1 (the tent sum in 1-D) as code, computed with the 2-D sampler on a ``(1, 1, 1, L)`` image (``align_corners=False``,
    zeros padding): a position between two samples mixes them, a neighbour outside the signal reads 0.

    >>> lerp_1d(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.5, -0.5, 1.5]))
    tensor([1.0000, 2.0000, 0.5000, 1.5000])
    """
    check_float_tensor(signal, "signal", 1, "(L,)")
    check_float_tensor(x, "x", 1, "(P,)")
    length = signal.shape[0]
    u = (2 * x + 1) / length - 1  # pixel -> normalized (align_corners=False)
    grid = torch.stack([u, torch.zeros_like(u)], dim=-1).view(1, 1, -1, 2)
    return bilinear_sample(signal.view(1, 1, 1, length), grid, "zeros", align_corners=False).view(-1)


def identity_error(sampler, image: torch.Tensor, align_corners: bool) -> float:
    """Lesson 2's identity test of a sampler: the largest ``|sampler(image, identity grid) - image|``.

    The identity ``theta`` maps every output pixel centre onto itself, so a correct sampler gives the image back (to
    rounding). ``sampler(input, grid, align_corners=...)`` is any ``grid_sample``-like function;
    ``image: (N, C, H, W)`` ``-> float``

    >>> identity_error(bilinear_sample, torch.rand(2, 3, 4, 5, dtype=torch.float64), align_corners=False) < 1e-12
    True
    """
    if not callable(sampler):
        raise TypeError(f"sampler: expected a function like grid_sample, got {type(sampler).__name__}")
    check_float_tensor(image, "image", 4, "(N, C, H, W)")
    n, c, h, w = image.shape
    theta = torch.eye(2, 3, dtype=image.dtype, device=image.device).expand(n, 2, 3)
    grid = affine_grid(theta, (n, c, h, w), align_corners=align_corners)
    out = sampler(image, grid, align_corners=align_corners)
    return float((out - image).abs().max())
