"""Sampling grids: where each output pixel reads from the input (lessons 2–3).

A *sampling grid* has shape ``(N, H_out, W_out, 2)`` and holds, for every output pixel, the normalized input
coordinate ``(x, y)`` in ``[-1, 1]`` to read – the layout of ``torch.nn.functional.affine_grid`` (x first!).

:func:`affine_grid` reproduces ``F.affine_grid`` (2-D) number for number; :func:`affine_grid_np` is its NumPy twin
for the lessons that start in NumPy. :func:`base_grid` is the regular grid of output pixel centres that every
grid generator (affine, projective, thin-plate spline) transforms.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from ._validation import (
    ShapeError,
    UnsupportedSizeError,
    check_batch,
    check_bool,
    check_float_tensor,
    check_int,
    check_same,
    check_size,
)

__all__ = [
    "linspace_from_neg_one",
    "pixel_centres",
    "base_grid",
    "apply_theta",
    "affine_grid",
    "affine_grid_np",
    "base_grid_np",
    "projective_grid",
    "tps_control_points",
    "tps_kernel",
    "tps_coefficients",
    "tps_transform",
    "tps_grid",
    "HORIZON_W",
    "UNIT_SIZE_WARNING",
    "warn_unit_size",
]

#: What :func:`projective_grid` divides by where a homography's ``w`` is exactly 0 (see there).
HORIZON_W = 1e-30


def linspace_from_neg_one(steps: int, align_corners: bool, dtype=None, device=None):
    """Normalized coordinates of ``steps`` pixel centres along one axis. ``-> (steps,)``

    ``align_corners=True``: ``-1 … 1`` (centres of the end pixels at ±1).
    ``align_corners=False``: the same points scaled by ``(steps - 1) / steps`` (pixel *edges* at ±1).
    A single pixel sits at 0 in both conventions. ``dtype`` a NumPy dtype gives the NumPy twin (an array).

    >>> linspace_from_neg_one(4, align_corners=False)
    tensor([-0.7500, -0.2500,  0.2500,  0.7500])
    """
    steps = check_int(steps, "steps", minimum=0)
    align_corners = check_bool(align_corners, "align_corners")
    xp = np if dtype is not None and not isinstance(dtype, torch.dtype) else torch
    kwargs = {"dtype": dtype} if xp is np else {"dtype": dtype, "device": device}
    if steps <= 1:
        return xp.zeros(steps, **kwargs)
    coords = xp.linspace(-1, 1, steps, **kwargs)
    if not align_corners:
        coords = coords * (steps - 1) / steps
    return coords


def pixel_centres(index: torch.Tensor, steps: int, align_corners: bool) -> torch.Tensor:
    """Normalized coordinates of the pixel centres ``index`` (a float tensor of pixel indices, any shape) along an
    axis of ``steps`` pixels: :func:`linspace_from_neg_one` at those indices, in closed form – what a kernel computes
    per pixel (lesson 7), equal to torch's ``linspace`` arithmetic up to rounding. ``(…) -> (…)``

    ``align_corners=True``: ``2 i / (steps - 1) - 1`` (0 for a single pixel); ``False``: ``(2 i + 1) / steps - 1``.

    >>> pixel_centres(torch.arange(4.0), 4, align_corners=False)
    tensor([-0.7500, -0.2500,  0.2500,  0.7500])
    """
    check_float_tensor(index, "index")
    steps = check_int(steps, "steps", minimum=1)
    if not check_bool(align_corners, "align_corners"):
        return (2 * index + 1) / steps - 1
    return 2 * index / (steps - 1) - 1 if steps > 1 else torch.zeros_like(index)


def apply_theta(points: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Homogeneous points ``(…, P, 3)`` mapped by matrices ``theta (…, R, 3)`` (each point times ``thetaᵀ``):
    ``-> (…, P, R)``. With ``R = 2`` the input locations ``(x_s, y_s)`` an affine ``theta`` reads (Jaderberg et
    al., eq. 1); with a ``3 × 3`` homography ``(u, v, w)`` before the perspective divide.

    >>> apply_theta(torch.tensor([[0.5, -0.5, 1.0]]), torch.tensor([[2.0, 0, 0], [0, 1, 0.25]]))
    tensor([[ 1.0000, -0.2500]])
    """
    check_float_tensor(points, "points")
    check_float_tensor(theta, "theta")
    if points.ndim < 2 or points.shape[-1] != 3 or theta.ndim < 2 or theta.shape[-1] != 3:
        raise ShapeError(f"points, theta: expected homogeneous points (…, P, 3) and matrices (…, R, 3), got "
                         f"{tuple(points.shape)} and {tuple(theta.shape)}")
    return points @ theta.transpose(-1, -2)


def base_grid(height: int, width: int, align_corners: bool = False, dtype=None, device=None) -> torch.Tensor:
    """Homogeneous coordinates ``(x, y, 1)`` of every output pixel centre. ``-> (H, W, 3)``"""
    height, width = check_int(height, "height", minimum=0), check_int(width, "width", minimum=0)
    xs = linspace_from_neg_one(width, align_corners, dtype, device)
    ys = linspace_from_neg_one(height, align_corners, dtype, device)
    grid = torch.ones(height, width, 3, dtype=dtype, device=device)
    grid[..., 0] = xs  # broadcast along rows
    grid[..., 1] = ys[:, None]  # broadcast along columns
    return grid


def _check_matrices(matrices: torch.Tensor, name: str, rows: int, what: str,
                    size: Sequence[int]) -> tuple[int, int, int, int]:
    """Validate a batch of ``(N, rows, 3)`` matrices against ``size = (N, C, H, W)``; returns the size."""
    layout = f"(N, {rows}, 3)"
    check_float_tensor(matrices, name)
    if hasattr(size, "__len__") and not isinstance(size, (str, bytes)) and len(size) != 4:  # type: ignore[arg-type]
        # F.affine_grid's type for sizes it lacks (checked first, as there); 5-D ones are 3-D grids, not ours
        raise UnsupportedSizeError(f"size: expected (N, C, H, W) for a 2-D grid, got {tuple(size)!r} (only 2-D "
                                   f"grids are implemented: F.affine_grid's 5-D sizes, volumetric grids, are not)")
    check_float_tensor(matrices, name, 3, layout)
    if matrices.shape[1:] != (rows, 3):
        raise ShapeError(f"{name}: expected shape {layout} for {what}, got {tuple(matrices.shape)}")
    n, c, h, w = check_size(size, 4, "size", allow_zero=True)
    if matrices.shape[0] != n:
        raise ShapeError(f"{name} has batch size {matrices.shape[0]} but size={tuple(size)} asks for N={n}")
    return n, c, h, w


def _check_theta(theta: torch.Tensor, size: Sequence[int]) -> tuple[int, int, int, int]:
    return _check_matrices(theta, "theta", 2, "2-D affine matrices", size)


#: ``F.affine_grid``'s warning for a size-1 side with ``align_corners=True``, word for word.
UNIT_SIZE_WARNING = ("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                     "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                     "of affine_grid for details.")


def warn_unit_size(height: int, width: int, align_corners: bool) -> None:
    """Warn as ``F.affine_grid`` does when ``align_corners=True`` meets a side of one pixel: the span ``-1 … 1`` of
    that side collapses onto its one pixel centre at 0 (a ``UserWarning``, :data:`UNIT_SIZE_WARNING`)."""
    height, width = check_int(height, "height", minimum=0), check_int(width, "width", minimum=0)
    if check_bool(align_corners, "align_corners") and min(height, width) == 1:
        warnings.warn(UNIT_SIZE_WARNING, UserWarning, stacklevel=3)


def affine_grid(theta: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """Sampling grid of an affine map, like ``F.affine_grid`` (2-D).

    ``theta: (N, 2, 3)``, ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``

    Each output pixel centre ``p = (x_t, y_t, 1)`` (normalized) is sent to ``theta @ p = (x_s, y_s)``, the input
    location it will read (Jaderberg et al., eq. 1). Unlike ``F.affine_grid``, empty batches and outputs
    (``N``, ``H_out`` or ``W_out`` = 0) give an empty grid, as ``F.grid_sample`` accepts one. Like it, a side of
    one pixel with ``align_corners=True`` warns (:func:`warn_unit_size`).

    >>> affine_grid(torch.eye(2, 3).expand(5, 2, 3), (5, 3, 4, 6)).shape
    torch.Size([5, 4, 6, 2])
    """
    n, _, h, w = _check_theta(theta, size)
    align_corners = check_bool(align_corners, "align_corners")
    warn_unit_size(h, w, align_corners)
    grid = base_grid(h, w, align_corners, theta.dtype, theta.device)
    # (N, H*W, 3) @ (N, 3, 2): every pixel's homogeneous coordinate times theta^T.
    return apply_theta(grid.view(1, h * w, 3).expand(n, h * w, 3), theta).view(n, h, w, 2)


def base_grid_np(height: int, width: int, align_corners: bool = False, dtype=np.float64) -> np.ndarray:
    """NumPy twin of :func:`base_grid`. ``-> (H, W, 3)``"""
    height, width = check_int(height, "height", minimum=0), check_int(width, "width", minimum=0)
    grid = np.ones((height, width, 3), dtype=dtype)
    grid[..., 0] = linspace_from_neg_one(width, align_corners, np.dtype(dtype))
    grid[..., 1] = linspace_from_neg_one(height, align_corners, np.dtype(dtype))[:, None]
    return grid


def affine_grid_np(theta: np.ndarray, size: Sequence[int], align_corners: bool = False) -> np.ndarray:
    """NumPy twin of :func:`affine_grid`. ``theta: (N, 2, 3)``, ``size = (N, C, H, W)`` ``-> (N, H, W, 2)``"""
    theta = np.asarray(theta)
    if theta.ndim != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta: expected shape (N, 2, 3), got {theta.shape}")
    if not np.issubdtype(theta.dtype, np.floating):
        raise TypeError(f"theta: expected a floating-point array, got dtype {theta.dtype}")
    n, _, h, w = check_size(size, 4, "size", allow_zero=True)
    if theta.shape[0] != n:
        raise ValueError(f"theta has batch size {theta.shape[0]} but size={tuple(size)} asks for N={n}")
    grid = base_grid_np(h, w, align_corners, theta.dtype).reshape(1, h * w, 3)
    return (grid @ theta.transpose(0, 2, 1)).reshape(n, h, w, 2)


def check_grid(grid: torch.Tensor, input: torch.Tensor | None = None) -> None:
    """Validate a sampling grid ``(N, H_out, W_out, 2)`` (and its batch against ``input`` if given)."""
    check_float_tensor(grid, "grid", 4, "(N, H_out, W_out, 2)")
    if grid.shape[-1] != 2:
        raise ShapeError(f"grid: expected shape (N, H_out, W_out, 2) holding (x, y), got {tuple(grid.shape)}")
    if input is not None:
        check_batch(input, grid, "input", "grid")


# ----------------------------------------------------------------------------------------------------------------
# Lesson 3: projective and thin-plate-spline grids
# ----------------------------------------------------------------------------------------------------------------


def projective_grid(H: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """Sampling grid of a projective map (homography) with the perspective divide.

    ``H: (N, 3, 3)`` acting on normalized *output* coordinates ``(x_t, y_t, 1)``; ``size = (N, C, H_out, W_out)``
    ``-> (N, H_out, W_out, 2)``. Each output pixel reads the input at ``(u / w, v / w)`` where
    ``(u, v, w) = H @ (x_t, y_t, 1)``. With ``H[:, 2] = (0, 0, 1)`` this is exactly :func:`affine_grid`.

    The overall scale of ``H`` does not matter (``H`` and ``2 H`` give the same grid), which is why a spatial
    transformer regresses 8 numbers and fixes ``H[2, 2] = 1``.

    **The horizon.** Where ``w`` is exactly 0 the point has no image (``u / 0`` is infinite, or NaN for
    ``0 / 0``), and an infinite grid point makes ``F.grid_sample`` output NaN. Such points are divided by
    :data:`HORIZON_W` (``1e-30``) instead: they land finitely far outside the image in the direction of ``(u, v)``
    (the limit ``w -> 0+``), so they *read padding* – 0 with ``zeros``, the border pixel in that direction with
    ``border`` – and stay finite through every sampler and its gradient.

    >>> H = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [1, 0, 0]]])  # w = x: the column x = 0 is the horizon
    >>> bool(projective_grid(H, (1, 1, 3, 3), align_corners=True).isfinite().all())
    True
    """
    n, _, h, w = _check_matrices(H, "H", 3, "2-D homographies", size)
    grid = base_grid(h, w, align_corners, H.dtype, H.device)
    uvw = apply_theta(grid.view(1, h * w, 3).expand(n, h * w, 3), H)  # (N, H*W, 3)
    depth = uvw[..., 2:]
    depth = torch.where(depth == 0, torch.full_like(depth, HORIZON_W), depth)
    return (uvw[..., :2] / depth).view(n, h, w, 2)


def tps_control_points(rows: int = 4, cols: int | None = None, dtype=None, device=None) -> torch.Tensor:
    """A regular ``rows × cols`` grid of control points spanning ``[-1, 1]²``, x first, row-major. ``-> (K, 2)``

    ``tps_control_points(4, 4)`` gives the 16 control points of Jaderberg et al.'s thin-plate-spline transformer.
    """
    cols = rows if cols is None else cols
    rows, cols = check_int(rows, "rows"), check_int(cols, "cols")
    if rows < 2 or cols < 2:
        raise ValueError(f"tps_control_points: expected rows, cols >= 2 (an affine part needs 3 points not on a "
                         f"line), got rows={rows}, cols={cols}")
    ys = torch.linspace(-1, 1, int(rows), dtype=dtype, device=device)
    xs = torch.linspace(-1, 1, int(cols), dtype=dtype, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1)


def tps_kernel(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """The thin-plate radial basis ``U(r) = r² log r²`` between every point and every centre.

    ``points: (…, P, 2)``, ``centres: (…, K, 2)`` ``-> (…, P, K)``; ``U(0) = 0`` (its limit), and its gradient
    there is 0, not NaN (the inner ``where`` keeps ``log`` away from 0).

    >>> tps_kernel(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    tensor([[0., 0.]])
    """
    for value, name in ((points, "points"), (centres, "centres")):
        check_float_tensor(value, name)
        if value.ndim < 2 or value.shape[-1] != 2:
            raise ValueError(f"{name}: expected shape (…, P, 2) holding (x, y), got {tuple(value.shape)}")
    check_same(points, centres, "points", "centres")
    r2 = (points.unsqueeze(-2) - centres.unsqueeze(-3)).pow(2).sum(-1)
    return torch.where(r2 > 0, r2 * torch.log(torch.where(r2 > 0, r2, torch.ones_like(r2))), torch.zeros_like(r2))


def _check_points(points: torch.Tensor, name: str, batched: bool) -> None:
    layout = "(N, K, 2)" if batched else "(K, 2)"
    check_float_tensor(points, name, 3 if batched else 2, layout)
    if points.shape[-1] != 2:
        raise ValueError(f"{name}: expected shape {layout} holding (x, y), got {tuple(points.shape)}")


def _tps_system(target_points: torch.Tensor) -> torch.Tensor:
    """The ``(K + 3, K + 3)`` matrix ``L = [[U, P], [Pᵀ, 0]]`` of Bookstein's thin-plate-spline solve."""
    k = target_points.shape[0]
    ones = torch.ones(k, 1, dtype=target_points.dtype, device=target_points.device)
    p = torch.cat([ones, target_points], dim=1)  # (K, 3): rows (1, x, y)
    top = torch.cat([tps_kernel(target_points, target_points), p], dim=1)
    bottom = torch.cat([p.T, torch.zeros(3, 3, dtype=p.dtype, device=p.device)], dim=1)
    return torch.cat([top, bottom], dim=0)


def tps_coefficients(source_points: torch.Tensor, target_points: torch.Tensor) -> torch.Tensor:
    """Solve for the thin-plate spline that sends each target control point onto its source control point.

    ``source_points: (N, K, 2)`` (where the control points read in the *input*), ``target_points: (K, 2)``
    (where they sit in the *output*, e.g. :func:`tps_control_points`) ``-> (N, K + 3, 2)``: per coordinate, the
    ``K`` radial weights ``w`` followed by the affine part ``(a_1, a_x, a_y)`` of

    ``T(p) = a_1 + a_x x + a_y y + Σ_k w_k U(|p - p_k|)``, with ``T(p_k) = q_k`` and ``Σ w_k = Σ w_k x_k =
    Σ w_k y_k = 0`` (Bookstein 1989). The linear system ``L [w; a] = [q; 0]`` is solved in float64 (it is badly
    conditioned in float32) and the result is cast back; gradients flow to ``source_points``.
    """
    _check_points(source_points, "source_points", batched=True)
    _check_points(target_points, "target_points", batched=False)
    if source_points.shape[1] != target_points.shape[0]:
        raise ValueError(f"source_points has {source_points.shape[1]} control points but target_points has "
                         f"{target_points.shape[0]}; they must pair up one to one")
    if target_points.shape[0] < 3:
        raise ValueError(f"target_points: a thin-plate spline needs at least 3 control points, got "
                         f"{target_points.shape[0]}")
    n, k, _ = source_points.shape
    L_inv = torch.linalg.inv(_tps_system(target_points.to(source_points.device, torch.float64)))  # (K+3, K+3)
    rhs = torch.cat([source_points.to(torch.float64),
                     torch.zeros(n, 3, 2, dtype=torch.float64, device=source_points.device)], dim=1)
    return (L_inv @ rhs).to(source_points.dtype)


def tps_transform(points: torch.Tensor, coefficients: torch.Tensor, target_points: torch.Tensor) -> torch.Tensor:
    """Evaluate a thin-plate spline at ``points: (N, P, 2)`` (or ``(P, 2)``, shared). ``-> (N, P, 2)``

    ``coefficients: (N, K + 3, 2)`` from :func:`tps_coefficients`; ``target_points: (K, 2)``.
    """
    check_float_tensor(points, "points")
    if points.ndim not in (2, 3) or points.shape[-1] != 2:
        raise ValueError(f"points: expected shape (N, P, 2) or (P, 2) holding (x, y), got {tuple(points.shape)}")
    check_float_tensor(coefficients, "coefficients", 3, "(N, K + 3, 2)")
    _check_points(target_points, "target_points", batched=False)
    if coefficients.shape[1:] != (target_points.shape[0] + 3, 2):
        raise ValueError(f"coefficients: expected shape (N, K + 3, 2) = (N, {target_points.shape[0] + 3}, 2) for "
                         f"K = {target_points.shape[0]} target points, got {tuple(coefficients.shape)}")
    if points.ndim == 3 and points.shape[0] != coefficients.shape[0]:
        raise ValueError(f"points has batch size {points.shape[0]} but coefficients has {coefficients.shape[0]}")
    points = points.to(coefficients.dtype)
    ones = torch.ones(*points.shape[:-1], 1, dtype=points.dtype, device=points.device)
    features = torch.cat([tps_kernel(points, target_points.to(points)), ones, points], dim=-1)  # (…, P, K+3)
    if features.ndim == 2:
        features = features.unsqueeze(0).expand(coefficients.shape[0], -1, -1)
    return features @ coefficients


def tps_grid(control_points: torch.Tensor, size: Sequence[int], align_corners: bool = False,
             target_points: torch.Tensor | None = None) -> torch.Tensor:
    """Sampling grid of a thin-plate-spline warp (Jaderberg et al., Sec. 3.4 / appendix).

    ``control_points: (N, K, 2)`` – the *source* control points (normalized input coordinates) that the regular
    *target* control points are sent to; ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``.
    ``target_points: (K, 2)`` defaults to the regular ``√K × √K`` grid :func:`tps_control_points` (``K`` must then
    be a square, 16 by default in a spatial transformer). When ``control_points == target_points`` the grid is
    the regular grid (identity warp); in general the output pixel at a target control point reads the input at
    its source control point.
    """
    _check_points(control_points, "control_points", batched=True)
    n, _, h, w = check_size(size, 4, "size", allow_zero=True)
    if control_points.shape[0] != n:
        raise ValueError(f"control_points has batch size {control_points.shape[0]} but size={tuple(size)} asks "
                         f"for N={n}")
    k = control_points.shape[1]
    if target_points is None:
        side = int(round(k ** 0.5))
        if side * side != k or side < 2:
            raise ValueError(f"control_points: with no target_points, K must be a square number >= 4 "
                             f"(a regular grid such as 4×4 = 16), got K={k}")
        target_points = tps_control_points(side, side, dtype=torch.float64, device=control_points.device)
    coefficients = tps_coefficients(control_points, target_points)
    pixels = base_grid(h, w, align_corners, control_points.dtype, control_points.device)[..., :2].reshape(-1, 2)
    features = torch.cat([tps_kernel(pixels.double(), target_points.to(pixels.device, torch.float64)),
                          torch.ones(h * w, 1, dtype=torch.float64, device=pixels.device), pixels.double()], dim=-1)
    # (H*W, K+3) @ (N, K+3, 2), in float64 for accuracy; cast back to the dtype of the control points.
    grid = features.to(coefficients.dtype) @ coefficients if coefficients.dtype == torch.float64 else \
        (features @ coefficients.double()).to(control_points.dtype)
    return grid.view(n, h, w, 2)
