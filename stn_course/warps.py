"""Forward versus inverse warping, pixel by pixel (lesson 1).

Moving an image by a pixel-space motion ``M`` can be done two ways. *Forward* mapping pushes every input pixel to
``round(M p)``: some output pixels receive nothing (holes) and some receive two. *Inverse* mapping asks, for every
output pixel, where it comes from – ``M⁻¹ p`` – and reads the input there: no holes, and it is what every spatial
transformer does (``theta = pixel_to_theta(invert(M))``, a grid, a sampler). Nearest-neighbour versions of both,
for lesson 1's comparison.
"""
from __future__ import annotations

import torch

from . import affine
from ._validation import check_float_tensor, check_ndim, check_tensor
from .grids import affine_grid
from .sampling import nearest_sample

__all__ = ["forward_warp_nearest", "inverse_warp_nearest"]


def _check(image: torch.Tensor, matrix: torch.Tensor, batched: bool = False) -> torch.Tensor:
    check_float_tensor(image, "image", 4, "(N, C, H, W)" if batched else "(1, C, H, W)")
    if image.shape[0] != 1 and not batched:
        raise ValueError(f"image: expected one image (1, C, H, W), got shape {tuple(image.shape)}")
    check_tensor(matrix, "matrix")
    check_ndim(matrix, 2, "matrix", "(3, 3)")
    if matrix.shape != (3, 3):
        raise ValueError(f"matrix: expected a (3, 3) pixel-space motion, got shape {tuple(matrix.shape)}")
    return matrix.to(torch.float64)


def forward_warp_nearest(image: torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """*Forward* mapping (splatting): push every input pixel to ``round(matrix @ (x, y, 1))``.

    ``image: (1, C, H, W)``, ``matrix: (3, 3)`` pixel-space motion ``-> (output (1, C, H, W), hit (H, W) bool)``.
    Output pixels that no input pixel lands on stay 0 and have ``hit == False`` – the holes.

    >>> out, hit = forward_warp_nearest(torch.ones(1, 1, 4, 4), affine.scaling(2.0).double())
    >>> int(hit.sum())  # a 2× zoom pushes 4 of the 16 pixels inside: 12 holes
    4
    """
    matrix = _check(image, matrix)
    _, c, h, w = image.shape
    f64 = {"dtype": torch.float64, "device": image.device}
    ys, xs = torch.meshgrid(torch.arange(h, **f64), torch.arange(w, **f64), indexing="ij")
    points = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
    target = torch.round(affine.apply(matrix.to(image.device), points)).long()
    inside = (target[:, 0] >= 0) & (target[:, 0] < w) & (target[:, 1] >= 0) & (target[:, 1] < h)
    out = torch.zeros_like(image)
    hit = torch.zeros(h, w, dtype=torch.bool, device=image.device)
    src = image.reshape(c, -1)[:, inside]
    tx, ty = target[inside, 0], target[inside, 1]
    out[0][:, ty, tx] = src
    hit[ty, tx] = True
    return out, hit


def inverse_warp_nearest(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """*Inverse* mapping: every output pixel pulls ``image`` at ``round(matrix⁻¹ @ (x, y, 1))`` (0 outside).

    ``image: (N, C, H, W)``, ``matrix: (3, 3)`` pixel-space motion (the same for every image) ``-> (N, C, H, W)``.
    Implemented the way a spatial transformer does it: ``theta = pixel_to_theta(invert(matrix))``, ``affine_grid``,
    nearest sampling (in float64).

    >>> inverse_warp_nearest(torch.arange(4.0).view(1, 1, 1, 4), affine.translation(1.0, 0.0).double())
    tensor([[[[0., 0., 1., 2.]]]])
    """
    matrix = _check(image, matrix, batched=True)
    n, c, h, w = image.shape
    back = affine.invert(matrix.to(image.device))
    theta = affine.pixel_to_theta(back, (h, w), align_corners=False).expand(n, 2, 3)
    grid = affine_grid(theta, (n, c, h, w), align_corners=False)
    return nearest_sample(image.double(), grid, align_corners=False).to(image.dtype)
