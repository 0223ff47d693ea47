"""Figures of lesson 3 – the spatial transformer forward: thin-plate-spline control points.

Every function returns the Figure (see :mod:`stn_course.plotting`)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..sampling import unnormalize
from .common import ImageLike, _imshow, to_numpy_image

__all__ = ["plot_control_points"]


def _normalized_to_pixels(points, size: Sequence[int], align_corners: bool) -> np.ndarray:
    """``(K, 2)`` normalized ``(x, y)`` -> pixel ``(x, y)`` for an image of ``size = (H, W)``."""
    pts = torch.as_tensor(np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points,
                                     dtype=np.float64)).reshape(-1, 2)
    x = unnormalize(pts[:, 0], int(size[1]), align_corners)
    y = unnormalize(pts[:, 1], int(size[0]), align_corners)
    return torch.stack([x, y], -1).numpy()


def plot_control_points(image: ImageLike, warped: ImageLike, source_points, target_points,
                        align_corners: bool = False, titles: Sequence[str] | None = None) -> Figure:
    """A thin-plate-spline warp with its control points (lesson 3).

    Left: the input with the *source* control points (where the output's control points read), arrows from the
    regular target positions. Right: the output with the *target* control points. Points are normalized ``(K, 2)``.
    """
    src_img, out_img = to_numpy_image(image), to_numpy_image(warped)
    titles = list(titles) if titles is not None else ["input: source control points", "output: target points"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.6))
    _imshow(left, src_img, titles[0])
    _imshow(right, out_img, titles[1])
    src = _normalized_to_pixels(source_points, src_img.shape[:2], align_corners)
    tgt_in = _normalized_to_pixels(target_points, src_img.shape[:2], align_corners)
    tgt_out = _normalized_to_pixels(target_points, out_img.shape[:2], align_corners)
    left.quiver(tgt_in[:, 0], tgt_in[:, 1], src[:, 0] - tgt_in[:, 0], src[:, 1] - tgt_in[:, 1], angles="xy",
                scale_units="xy", scale=1, color="tab:orange", width=0.006)
    left.plot(src[:, 0], src[:, 1], "o", color="tab:red", ms=5)
    right.plot(tgt_out[:, 0], tgt_out[:, 1], "o", color="tab:red", ms=5)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
