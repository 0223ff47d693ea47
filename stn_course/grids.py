"""Sampling grids: where each output pixel reads from the input (lessons 2–3).

A *sampling grid* has shape ``(N, H_out, W_out, 2)`` and holds, for every output pixel, the normalized input
coordinate ``(x, y)`` in ``[-1, 1]`` to read – the layout of ``torch.nn.functional.affine_grid`` (x first!).

:func:`affine_grid` reproduces ``F.affine_grid`` (2-D) number for number; :func:`affine_grid_np` is its NumPy twin
for the lessons that start in NumPy. :func:`base_grid` is the regular grid of output pixel centres that every
grid generator (affine, projective, thin-plate spline) transforms.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ._validation import check_batch, check_float, check_ndim, check_size, check_tensor

__all__ = ["linspace_from_neg_one", "base_grid", "affine_grid", "affine_grid_np", "base_grid_np"]


def linspace_from_neg_one(steps: int, align_corners: bool, dtype=None, device=None) -> torch.Tensor:
    """Normalized coordinates of ``steps`` pixel centres along one axis. ``-> (steps,)``

    ``align_corners=True``: ``-1 … 1`` (centres of the end pixels at ±1).
    ``align_corners=False``: the same points scaled by ``(steps - 1) / steps`` (pixel *edges* at ±1).
    A single pixel sits at 0 in both conventions.
    """
    if steps <= 1:
        return torch.zeros(steps, dtype=dtype, device=device)
    coords = torch.linspace(-1, 1, steps, dtype=dtype, device=device)
    if not align_corners:
        coords = coords * (steps - 1) / steps
    return coords


def base_grid(height: int, width: int, align_corners: bool = False, dtype=None, device=None) -> torch.Tensor:
    """Homogeneous coordinates ``(x, y, 1)`` of every output pixel centre. ``-> (H, W, 3)``"""
    xs = linspace_from_neg_one(width, align_corners, dtype, device)
    ys = linspace_from_neg_one(height, align_corners, dtype, device)
    grid = torch.ones(height, width, 3, dtype=dtype, device=device)
    grid[..., 0] = xs  # broadcast along rows
    grid[..., 1] = ys[:, None]  # broadcast along columns
    return grid


def _check_theta(theta: torch.Tensor, size: Sequence[int]) -> tuple[int, int, int, int]:
    check_tensor(theta, "theta")
    check_float(theta, "theta")
    check_ndim(theta, 3, "theta", "(N, 2, 3)")
    if theta.shape[1:] != (2, 3):
        raise ValueError(f"theta: expected shape (N, 2, 3) for 2-D affine matrices, got {tuple(theta.shape)}")
    n, c, h, w = check_size(size, 4, "size")
    if theta.shape[0] != n:
        raise ValueError(f"theta has batch size {theta.shape[0]} but size={tuple(size)} asks for N={n}")
    return n, c, h, w


def affine_grid(theta: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """Sampling grid of an affine map, like ``F.affine_grid`` (2-D).

    ``theta: (N, 2, 3)``, ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``

    Each output pixel centre ``p = (x_t, y_t, 1)`` (normalized) is sent to ``theta @ p = (x_s, y_s)``, the input
    location it will read (Jaderberg et al., eq. 1).
    """
    n, _, h, w = _check_theta(theta, size)
    grid = base_grid(h, w, align_corners, theta.dtype, theta.device)
    # (N, H*W, 3) @ (N, 3, 2): every pixel's homogeneous coordinate times theta^T.
    return (grid.view(1, h * w, 3).expand(n, h * w, 3) @ theta.transpose(1, 2)).view(n, h, w, 2)


def base_grid_np(height: int, width: int, align_corners: bool = False, dtype=np.float64) -> np.ndarray:
    """NumPy twin of :func:`base_grid`. ``-> (H, W, 3)``"""

    def axis(steps: int) -> np.ndarray:
        if steps <= 1:
            return np.zeros(steps, dtype=dtype)
        coords = np.linspace(-1, 1, steps, dtype=dtype)
        return coords * (steps - 1) / steps if not align_corners else coords

    grid = np.ones((height, width, 3), dtype=dtype)
    grid[..., 0] = axis(width)
    grid[..., 1] = axis(height)[:, None]
    return grid


def affine_grid_np(theta: np.ndarray, size: Sequence[int], align_corners: bool = False) -> np.ndarray:
    """NumPy twin of :func:`affine_grid`. ``theta: (N, 2, 3)``, ``size = (N, C, H, W)`` ``-> (N, H, W, 2)``"""
    theta = np.asarray(theta)
    if theta.ndim != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta: expected shape (N, 2, 3), got {theta.shape}")
    if not np.issubdtype(theta.dtype, np.floating):
        raise TypeError(f"theta: expected a floating-point array, got dtype {theta.dtype}")
    n, _, h, w = check_size(size, 4, "size")
    if theta.shape[0] != n:
        raise ValueError(f"theta has batch size {theta.shape[0]} but size={tuple(size)} asks for N={n}")
    grid = base_grid_np(h, w, align_corners, theta.dtype).reshape(1, h * w, 3)
    return (grid @ theta.transpose(0, 2, 1)).reshape(n, h, w, 2)


def check_grid(grid: torch.Tensor, input: torch.Tensor | None = None) -> None:
    """Validate a sampling grid ``(N, H_out, W_out, 2)`` (and its batch against ``input`` if given)."""
    check_tensor(grid, "grid")
    check_float(grid, "grid")
    check_ndim(grid, 4, "grid", "(N, H_out, W_out, 2)")
    if grid.shape[-1] != 2:
        raise ValueError(f"grid: expected shape (N, H_out, W_out, 2) holding (x, y), got {tuple(grid.shape)}")
    if input is not None:
        check_batch(input, grid, "input", "grid")
