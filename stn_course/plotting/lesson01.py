"""Figures of lesson 1 – affine transforms: grids drawn on images, warps, shapes, align_corners, forward vs inverse mapping.

Every function returns the Figure (see :mod:`stn_course.plotting`)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .. import affine
from ..grids import affine_grid
from ..sampling import bilinear_sample, grid_to_pixels, nearest_sample
from ..warps import forward_warp_nearest, inverse_warp_nearest
from .common import ImageLike, _batched_theta, _imshow, to_numpy_image

__all__ = ["show_grid", "plot_warp", "letter_f", "plot_shapes", "plot_align_corners", "plot_forward_vs_inverse"]


def _line_indices(n: int, max_lines: int) -> list[int]:
    step = max(1, -(-n // max_lines))
    idx = list(range(0, n, step))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return idx


def show_grid(
    image: ImageLike,
    grid: torch.Tensor,
    align_corners: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
    max_lines: int = 12,
    color: str = "tab:orange",
    points: bool = True,
) -> Figure:
    """Draw ``image`` with the sampling grid overlaid where the sampler will read it.

    ``grid: (1, H_out, W_out, 2)`` normalized coordinates (e.g. from ``affine_grid``). Grid rows/columns become
    lines (at most ``max_lines`` of each), the outline of the sampled region is drawn thick, and the first output
    pixel ``out[0, 0]`` is marked with a square so you can tell how the output is oriented.
    """
    array = to_numpy_image(image)
    height, width = array.shape[:2]
    pixels = grid_to_pixels(grid, (height, width), align_corners)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    _imshow(ax, array, title)
    h_out, w_out = pixels.shape[:2]
    for i in _line_indices(h_out, max_lines):
        ax.plot(pixels[i, :, 0], pixels[i, :, 1], color=color, lw=0.8, alpha=0.8)
    for j in _line_indices(w_out, max_lines):
        ax.plot(pixels[:, j, 0], pixels[:, j, 1], color=color, lw=0.8, alpha=0.8)
    outline = np.concatenate([pixels[0, :], pixels[:, -1], pixels[-1, ::-1], pixels[::-1, 0]])
    ax.plot(outline[:, 0], outline[:, 1], color=color, lw=2)
    if points and h_out * w_out <= 400:
        ax.plot(pixels[..., 0].ravel(), pixels[..., 1].ravel(), ".", color=color, ms=3)
    ax.plot(pixels[0, 0, 0], pixels[0, 0, 1], "s", color="tab:red", ms=6, label="out[0, 0]")
    xs, ys = pixels[..., 0], pixels[..., 1]
    margin = 0.05 * max(width, height)
    ax.set_xlim(min(-0.5, xs.min()) - margin, max(width - 0.5, xs.max()) + margin)
    ax.set_ylim(max(height - 0.5, ys.max()) + margin, min(-0.5, ys.min()) - margin)  # y down
    ax.add_patch(Rectangle((-0.5, -0.5), width, height, fill=False, ec="0.4", lw=1, ls="--"))
    return ax.figure


def plot_warp(
    image: torch.Tensor,
    theta: torch.Tensor,
    out_size: Sequence[int] | None = None,
    align_corners: bool = False,
    padding_mode: str = "zeros",
    mode: str = "bilinear",
    titles: Sequence[str] = ("input and sampling grid", "output"),
) -> Figure:
    """Two panels: the input with the sampling grid of ``theta`` overlaid, and the sampled output.

    ``image: (1, C, H, W)``, ``theta: (2, 3)`` or ``(1, 2, 3)`` normalized; ``out_size = (H_out, W_out)`` defaults
    to the input size. Uses the package's ``affine_grid`` and ``bilinear_sample``/``nearest_sample``.
    """
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected shape (1, C, H, W), got {tuple(image.shape)}")
    theta = _batched_theta(theta).to(image.dtype)
    h_out, w_out = tuple(image.shape[-2:]) if out_size is None else tuple(out_size)
    grid = affine_grid(theta, (1, image.shape[1], h_out, w_out), align_corners=align_corners)
    sampler = {"bilinear": bilinear_sample, "nearest": nearest_sample}[mode]
    output = sampler(image, grid, padding_mode=padding_mode, align_corners=align_corners)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
    show_grid(image, grid, align_corners, ax=axes[0], title=titles[0])
    _imshow(axes[1], output, titles[1])
    fig.tight_layout()
    return fig


def letter_f() -> torch.Tensor:
    """Outline of a capital F (a shape with no symmetry, so flips and rotations are unambiguous). ``-> (10, 2)``

    In pixel-like coordinates with y down: the stem runs from (0, 0) down to (0, 5).
    """
    return torch.tensor([[0, 0], [3, 0], [3, 1], [1, 1], [1, 2], [2.5, 2], [2.5, 3], [1, 3], [1, 5], [0, 5]],
                        dtype=torch.float64)


def plot_shapes(
    matrices: Mapping[str, torch.Tensor],
    points: torch.Tensor | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    mark: tuple[float, float] | None = None,
) -> Figure:
    """The outline ``points: (P, 2)`` (default :func:`letter_f`) mapped by each ``(3, 3)`` matrix, on one plot.

    The untransformed shape is drawn in grey; y points down as in an image; the origin is marked with a black
    cross and ``mark`` (e.g. a centre of rotation), if given, with a red one.
    """
    points = letter_f() if points is None else torch.as_tensor(points, dtype=torch.float64)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
    closed = torch.cat([points, points[:1]])
    ax.fill(closed[:, 0], closed[:, 1], color="0.85", ec="0.5", label="original")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, matrix) in enumerate(matrices.items()):
        mapped = affine.apply(torch.as_tensor(matrix, dtype=torch.float64), closed)
        ax.plot(mapped[:, 0], mapped[:, 1], color=colors[k % len(colors)], lw=2, label=name)
        ax.plot(mapped[0, 0], mapped[0, 1], "o", color=colors[k % len(colors)], ms=4)
    ax.plot(0, 0, "k+", ms=12, mew=2)
    if mark is not None:
        ax.plot(mark[0], mark[1], "x", color="tab:red", ms=10, mew=2.5, label=f"({mark[0]:g}, {mark[1]:g})")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.grid(True, lw=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_xlabel("x (right)")
    ax.set_ylabel("y (down)")
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def plot_align_corners(height: int = 3, width: int = 4, formulas: bool = True) -> Figure:
    """Pixel squares vs the normalized frame ``[-1, 1]²`` for both ``align_corners`` conventions.

    ``align_corners=False`` (PyTorch's default): ±1 are the *outer edges* of the border pixels.
    ``align_corners=True``: ±1 are the *centres* of the border pixels. Each pixel centre is labelled with its
    normalized x coordinate (top row) and y coordinate (left column). ``formulas=False`` leaves the formulas out of
    the titles (lesson 1 shows the figure before the learner derives them).
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, align in zip(axes, (False, True)):
        n = affine.normalization_matrix((height, width), align, torch.float64)
        for y in range(height):
            for x in range(width):
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fc=("0.92" if (x + y) % 2 else "0.8"), ec="0.5"))
                ax.plot(x, y, "k.", ms=6)
        # The [-1, 1] frame in pixel coordinates: invert the normalization per axis.
        left, right = (0.0, width - 1.0) if align else (-0.5, width - 0.5)
        top, bottom = (0.0, height - 1.0) if align else (-0.5, height - 0.5)
        ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, ec="tab:red", lw=2.5))
        for x in range(width):
            u = round(float(n[0, 0] * x + n[0, 2]), 9) + 0.0
            ax.text(x, -0.75, f"{u:+.2f}", ha="center", va="bottom", fontsize=8, color="tab:blue")
        for y in range(height):
            v = round(float(n[1, 1] * y + n[1, 2]), 9) + 0.0
            ax.text(-0.7, y, f"{v:+.2f}", ha="right", va="center", fontsize=8, color="tab:blue")
        ax.text(right, bottom + 0.55, "(+1, +1)", color="tab:red", ha="center", va="top", fontsize=9)
        ax.text(left, top - 0.35, "(-1, -1)", color="tab:red", ha="center", va="bottom", fontsize=9)
        formula = r"$u = \frac{2x}{W-1} - 1$" if align else r"$u = \frac{2x + 1}{W} - 1$"
        ax.set_title(f"align_corners={align}: {formula}" if formulas else f"align_corners={align}", fontsize=10)
        ax.set_xlim(-1.9, width + 0.3)
        ax.set_ylim(height + 0.4, -1.4)
        ax.set_aspect("equal")
        ax.set_xticks(range(width))
        ax.set_yticks(range(height))
        ax.set_xlabel("pixel x")
        ax.set_ylabel("pixel y")
    fig.tight_layout()
    return fig


def plot_forward_vs_inverse(image: torch.Tensor, matrix: torch.Tensor, inverse: torch.Tensor | None = None,
                            inverse_title: str = "inverse (pull): no holes") -> Figure:
    """Input, forward mapping (holes in red) and inverse mapping of the same pixel-space ``matrix``.

    ``image: (1, C, H, W)``, ``matrix: (3, 3)``. Enlarging or rotating makes the forward map leave holes: several
    output pixels receive no input pixel, while the inverse map asks every output pixel where to read. Red always
    means *a hole*: an output pixel inside the moved picture that no input pixel landed on (black is the zero
    padding outside it). ``inverse``: the pulled picture to show (default: the package's nearest-neighbour warp).
    """
    forward, hit = forward_warp_nearest(image, matrix)
    inverse = inverse_warp_nearest(image, matrix) if inverse is None else inverse
    rgb = to_numpy_image(forward)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    # Holes = output pixels inside the transformed image that nothing landed on.
    h, w = hit.shape
    covered = inverse_warp_nearest(torch.ones(1, 1, h, w, dtype=torch.float64), matrix)[0, 0] > 0
    holes = (covered & ~hit).numpy()
    rgb = rgb.copy()
    rgb[holes] = (1.0, 0.0, 0.0)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    _imshow(axes[0], image, "input")
    _imshow(axes[1], rgb, f"forward (push): {int(holes.sum())} holes in red")
    _imshow(axes[2], inverse, inverse_title)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
