"""Figures of lesson 2 – sampling grids and bilinear interpolation: 1-D interpolation, bilinear weights, padding modes.

Every function returns the Figure (see :mod:`stn_course.plotting`)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..grids import affine_grid
from ..padding import PADDING_MODES
from ..sampling import bilinear_sample
from .common import ImageLike, _batched_theta, _imshow, to_numpy_image

__all__ = ["plot_interpolation_1d", "plot_bilinear_weights", "plot_padding_modes", "plot_differences"]


def plot_interpolation_1d(signal: Sequence[float] | torch.Tensor, ax: Axes | None = None,
                          samples: int = 400) -> Figure:
    """A 1-D signal at integer positions, read between them by nearest and by linear interpolation (zeros outside).

    Linear interpolation at ``x`` is ``(1 - t) f[x0] + t f[x0 + 1]`` with ``x0 = floor(x)`` and ``t = x - x0``.
    """
    f = torch.as_tensor(signal, dtype=torch.float64).reshape(-1)
    n = f.numel()
    x = torch.linspace(-1.0, n, samples, dtype=torch.float64)
    padded = torch.cat([torch.zeros(1, dtype=f.dtype), f, torch.zeros(2, dtype=f.dtype)])  # index i+1 <-> f[i]
    x0 = torch.floor(x)
    t = x - x0
    i0 = (x0 + 1).long().clamp(0, n + 2)
    linear = (1 - t) * padded[i0] + t * padded[(i0 + 1).clamp(0, n + 2)]
    nearest = padded[(torch.round(x) + 1).long().clamp(0, n + 2)]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(x, nearest, color="tab:gray", lw=1.5, label="nearest")
    ax.plot(x, linear, color="tab:blue", lw=2, label="linear")
    ax.stem(np.arange(n), f.numpy(), linefmt="k-", markerfmt="ko", basefmt=" ", label="samples f[i]")
    ax.axvspan(-1.0, -0.5, color="0.9")
    ax.axvspan(n - 0.5, float(n), color="0.9")
    ax.set_xlabel("x (pixels)")
    ax.legend(fontsize=8)
    ax.set_title("reading between samples: nearest vs linear (zeros outside)", fontsize=10)
    return ax.figure


def plot_bilinear_weights(x: float = 0.3, y: float = 0.65, ax: Axes | None = None) -> Figure:
    """Bilinear weights as areas: the point ``(x, y)`` in the unit cell splits it into four rectangles.

    Each corner's weight is the area of the rectangle *opposite* it (Jaderberg et al., eq. 5):
    ``w[y0,x0] = (1-x)(1-y)``, ``w[y0,x1] = x(1-y)``, ``w[y1,x0] = (1-x)y``, ``w[y1,x1] = xy`` – labelled row
    first, like the pixels ``I[y, x]`` they weight.
    """
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ValueError(f"plot_bilinear_weights: expected 0 <= x, y <= 1 inside the cell, got ({x}, {y})")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
    corners = {(0, 0): "tab:blue", (1, 0): "tab:orange", (0, 1): "tab:green", (1, 1): "tab:purple"}
    for (i, j), color in corners.items():
        # The rectangle opposite corner (i, j) spans from the point to the corner (1-i, 1-j).
        x_lo, x_hi = sorted((x, 1 - i))
        y_lo, y_hi = sorted((y, 1 - j))
        weight = (x_hi - x_lo) * (y_hi - y_lo)
        ax.add_patch(Rectangle((x_lo, y_lo), x_hi - x_lo, y_hi - y_lo, fc=color, alpha=0.35, ec=color))
        ax.text((x_lo + x_hi) / 2, (y_lo + y_hi) / 2, f"w[y{j},x{i}]\n{weight:.3f}", ha="center", va="center",
                fontsize=9)
        ax.plot(i, j, "o", color=color, ms=14)
        ax.text(i + (0.07 if i else -0.07), j + (0.09 if j else -0.09), f"I[y{j}, x{i}]", ha="center",
                va="center", fontsize=9, color=color)
    ax.plot(x, y, "k*", ms=14)
    ax.text(x + 0.03, y - 0.04, f"({x:.2f}, {y:.2f})", fontsize=9)
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylim(1.3, -0.3)  # y down, as in an image
    ax.set_aspect("equal")
    ax.set_xticks([0, 1], ["x0", "x1"])
    ax.set_yticks([0, 1], ["y0", "y1"])
    ax.set_title("bilinear weight = area of the opposite rectangle", fontsize=10)
    return ax.figure


def plot_padding_modes(
    image: torch.Tensor,
    theta: torch.Tensor,
    align_corners: bool = False,
    modes: Sequence[str] = PADDING_MODES,
    out_size: Sequence[int] | None = None,
) -> Figure:
    """The same ``theta`` (e.g. a zoom-out that reads outside the input) sampled with each padding mode (by default
    every mode of :mod:`stn_course.padding`).

    ``image: (1, C, H, W)``, ``theta: (2, 3)`` or ``(1, 2, 3)``. The dashed square marks where the input sits.
    """
    theta = _batched_theta(theta).to(image.dtype)
    h_out, w_out = tuple(image.shape[-2:]) if out_size is None else tuple(out_size)
    grid = affine_grid(theta, (1, image.shape[1], h_out, w_out), align_corners=align_corners)
    fig, axes = plt.subplots(1, len(modes), figsize=(3.2 * len(modes), 3.4))
    axes = np.atleast_1d(axes)
    for ax, mode in zip(axes, modes):
        out = bilinear_sample(image, grid, padding_mode=mode, align_corners=align_corners)
        _imshow(ax, out, f"padding_mode={mode!r}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"align_corners={align_corners}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_differences(reference: ImageLike, results: Mapping[str, ImageLike], vmax: float | None = None) -> Figure:
    """Each result (top row) and its absolute difference to ``reference`` (bottom row, summed over channels).

    The title of each difference panel prints the worst error, so a lost row or column shows as a bright line
    and a number; what the colours measure is the colourbar's label, under the bar, clear of the titles.
    """
    ref = to_numpy_image(reference)
    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(3.4 * n, 6.6), squeeze=False, layout="constrained")
    for k, (name, result) in enumerate(results.items()):
        res = to_numpy_image(result)
        if res.shape != ref.shape:
            raise ValueError(f"plot_differences: {name!r} has shape {res.shape}, the reference {ref.shape}")
        diff = np.abs(res - ref)
        summed = diff.ndim == 3
        if summed:
            diff = diff.sum(-1)
        _imshow(axes[0, k], res, name)
        im = axes[1, k].imshow(diff, cmap="magma", vmin=0.0, vmax=vmax if vmax is not None else max(diff.max(), 1e-12),
                               interpolation="nearest")
        axes[1, k].set_title(f"|difference|: max {diff.max():.3g}", fontsize=10)
        bar = fig.colorbar(im, ax=axes[1, k], location="bottom", shrink=0.9, pad=0.02)
        bar.set_label("|difference|, summed over channels" if summed else "|difference|", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig
