"""The index arithmetic of the fused affine kernel, in PyTorch (lesson 7): which output pixels one program computes
and where each of them reads the input – what :mod:`stn_course.gpu._affine_kernels` does in registers, written
out so that it can be looked at (the kernel explorer) and tested against ``F.affine_grid``.

A program ``pid`` of a kernel launched with ``BLOCK`` lanes takes the flat output offsets
``pid·BLOCK + 0 … BLOCK − 1`` of one image; offset ``o`` is row ``o // W_out`` and column ``o % W_out``, and lanes
past ``H_out·W_out`` are masked off. Output pixel ``(i, j)`` has the normalized coordinates of ``F.affine_grid``'s
base grid, θ maps them into the input, and the unnormalization of lesson 2 turns them into pixel coordinates.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .._validation import check_bool, check_float_tensor, check_int, check_pair
from ..grids import apply_theta, pixel_centres
from ..sampling import unnormalize

__all__ = ["program_pixels", "source_pixels", "num_programs"]


def num_programs(h_out: int, w_out: int, block: int) -> int:
    """Programs per image: ``ceil(H_out·W_out / BLOCK)``."""
    return -(-check_int(h_out, "h_out", 0) * check_int(w_out, "w_out", 0) // check_int(block, "block", 1))


def program_pixels(pid: int, block: int, h_out: int, w_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The output pixels program ``pid`` computes: ``(rows, cols, live)``, each of shape ``(block,)`` – int64 row and
    column of every lane (computed for masked lanes too, as the kernel does) and whether the lane is inside the
    image.

    >>> rows, cols, live = program_pixels(1, 4, 2, 3)
    >>> rows.tolist(), cols.tolist(), live.tolist()
    ([1, 1, 2, 2], [1, 2, 0, 1], [True, True, False, False])
    """
    pid, block = check_int(pid, "pid", 0), check_int(block, "block", 1)
    h_out, w_out = check_int(h_out, "h_out", 1), check_int(w_out, "w_out", 1)
    offsets = pid * block + torch.arange(block)
    return offsets // w_out, offsets % w_out, offsets < h_out * w_out


def source_pixels(theta: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, in_size: Sequence[int],
                  out_size: Sequence[int], align_corners: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Where output pixels ``(rows, cols)`` read the input, in the input's pixel coordinates ``(x, y)`` (before any
    padding mode): ``F.affine_grid(theta)`` at those pixels, unnormalized – without making the grid.

    ``theta (2, 3)`` of one image; ``rows``, ``cols`` integer tensors of one shape; ``in_size = (H, W)``,
    ``out_size = (H_out, W_out)``. Returns two tensors of ``rows``' shape, in ``theta``'s dtype.

    >>> x, y = source_pixels(torch.eye(2, 3), torch.tensor([0, 3]), torch.tensor([0, 3]), (4, 4), (4, 4))
    >>> x.tolist(), y.tolist()
    ([0.0, 3.0], [0.0, 3.0])
    """
    check_float_tensor(theta, "theta", 2, "(2, 3)")
    if theta.shape != (2, 3):
        raise ValueError(f"theta: expected shape (2, 3), got {tuple(theta.shape)}")
    h, w = check_pair(in_size, "in_size")
    h_out, w_out = check_pair(out_size, "out_size")
    align_corners = check_bool(align_corners, "align_corners")
    # the coordinate pipeline of lessons 2 and 3, at these pixels only: base-grid point, θ, unnormalize
    xt = pixel_centres(cols.to(theta.dtype), w_out, align_corners)
    yt = pixel_centres(rows.to(theta.dtype), h_out, align_corners)
    xs, ys = apply_theta(torch.stack([xt, yt, torch.ones_like(xt)], -1), theta).unbind(-1)
    return unnormalize(xs, w, align_corners), unnormalize(ys, h, align_corners)
