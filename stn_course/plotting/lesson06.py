"""Figures of lesson 6 – deformable convolution: sampling points, the offset layout, offset fields.

Every function returns the Figure (see :mod:`stn_course.plotting`)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .common import ImageLike, _imshow, _panels, to_numpy_image

__all__ = ["plot_sampling_points", "plot_sampling_panels", "plot_offset_layout", "plot_offset_quiver", "plot_spread_vs_size"]


def _points_np(points) -> np.ndarray:
    array = points.detach().cpu().double().numpy() if isinstance(points, torch.Tensor) else np.asarray(points, float)
    return array.reshape(-1, 2)


def plot_sampling_points(image: ImageLike, points, ax: Axes | None = None, title: str | None = None,
                         centre: Sequence[float] | None = None, arrows_from=None, sizes=None, taps: int | None = None,
                         vmin: float | None = 0.0, vmax: float | None = 1.0) -> Figure:
    """Draw ``image`` and the pixels a (deformable) convolution reads, as dots at pixel ``(y, x)``.

    ``points: (P, 2)`` rows ``(y, x)`` (the offsets' order). Dots are coloured by tap ``p % taps`` (``taps``
    defaults to ``P``), so the same tap has the same colour in every panel. ``arrows_from: (P, 2)`` draws an arrow
    from each regular position to its sample (the offset); ``sizes: (P,)`` in ``[0, 2]`` scales the dots (DCNv2's
    mask); ``centre`` marks the output location with a red cross.
    """
    fig = ax.figure if ax is not None else plt.figure(figsize=(3.4, 3.4))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    _imshow(ax, image, title, vmin=vmin, vmax=vmax)
    pts = _points_np(points)
    taps = taps or len(pts)
    colors = plt.get_cmap("viridis")(np.linspace(0, 1, max(taps, 2)))[np.arange(len(pts)) % taps]
    area = 28.0 if sizes is None else 28.0 * np.asarray(
        sizes.detach().cpu() if isinstance(sizes, torch.Tensor) else sizes, float).reshape(-1)
    if arrows_from is not None:
        start = _points_np(arrows_from)
        ax.quiver(start[:, 1], start[:, 0], pts[:, 1] - start[:, 1], pts[:, 0] - start[:, 0], angles="xy",
                  scale_units="xy", scale=1, color="orange", width=0.006, alpha=0.8)
        ax.scatter(start[:, 1], start[:, 0], s=10, facecolors="none", edgecolors="orange", linewidths=0.8)
    ax.scatter(pts[:, 1], pts[:, 0], s=area, c=colors, edgecolors="white", linewidths=0.5, zorder=3)
    if centre is not None:
        ax.scatter([centre[1]], [centre[0]], marker="x", s=60, c="red", zorder=4)
    h, w = to_numpy_image(image).shape[:2]
    ax.set_xlim(-0.5 - 0.15 * w, w - 0.5 + 0.15 * w)
    ax.set_ylim(h - 0.5 + 0.15 * h, -0.5 - 0.15 * h)
    ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, ec="0.6", lw=0.8, ls="--"))
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_sampling_panels(images: Sequence[ImageLike], points: Sequence, titles: Sequence[str] | None = None,
                         centres: Sequence | None = None, arrows_from: Sequence | None = None,
                         sizes: Sequence | None = None, taps: int | None = None, ncols: int | None = None,
                         size: float = 3.0) -> Figure:
    """Several :func:`plot_sampling_points` panels side by side (one image and one ``(P, 2)`` point set each)."""
    n = len(images)
    if len(points) != n:
        raise ValueError(f"plot_sampling_panels: got {n} images but {len(points)} point sets")
    fig, axes = _panels(n, ncols, size)
    for i, ax in enumerate(axes):
        plot_sampling_points(images[i], points[i], ax=ax, title=titles[i] if titles else None,
                             centre=centres[i] if centres is not None else None,
                             arrows_from=arrows_from[i] if arrows_from is not None else None,
                             sizes=sizes[i] if sizes is not None else None, taps=taps)
    fig.tight_layout()
    return fig


def plot_offset_layout(kh: int = 3, kw: int = 3) -> Figure:
    """The offset layout question as a picture: taps of a ``kh × kw`` kernel and three ways to lay their offsets
    into the channels of one offset group – torchvision's ``(dy, dx)`` interleaved per tap, and two popular bugs
    (``(dx, dy)`` interleaved, blocked ``[dy_0 … dy_K-1, dx_0 … dx_K-1]``). A red cell is a channel that torchvision
    reads as something else than what the buggy layout put there."""
    k = kh * kw
    colors = plt.get_cmap("viridis")(np.linspace(0, 1, max(k, 2)))
    fig = plt.figure(figsize=(max(9.0, 0.5 * 2 * k + 4.0), 4.2))
    grid = fig.add_gridspec(3, 2, width_ratios=[1.0, max(2.5, 2 * k / 6.0)], wspace=0.08)
    ax_k = fig.add_subplot(grid[:, 0])
    for i in range(kh):
        for j in range(kw):
            tap = i * kw + j
            ax_k.add_patch(Rectangle((j, i), 1, 1, fc=colors[tap], ec="white", lw=2, alpha=0.85))
            ax_k.text(j + 0.5, i + 0.5, f"k={tap}\n({i}, {j})", ha="center", va="center", fontsize=8,
                      color="white" if tap < 0.6 * k else "black")
    ax_k.annotate("", xy=(kw + 0.05, -0.25), xytext=(-0.05, -0.25), arrowprops=dict(arrowstyle="->"))
    ax_k.text(kw / 2, -0.45, "x = column j (dx > 0: right)", ha="center", fontsize=8)
    ax_k.annotate("", xy=(-0.25, kh + 0.05), xytext=(-0.25, -0.05), arrowprops=dict(arrowstyle="->"))
    ax_k.text(-0.45, kh / 2, "y = row i (dy > 0: down)", va="center", ha="right", rotation=90, fontsize=8)
    ax_k.set(xlim=(-0.9, kw + 0.1), ylim=(kh + 0.1, -0.8), aspect="equal")
    ax_k.set_title("taps (i, j), k = i·kw + j", fontsize=9)
    ax_k.axis("off")

    truth = [(t, c) for t in range(k) for c in ("dy", "dx")]  # what torchvision reads in channel 2t, 2t + 1
    layouts = {
        "torchvision: (dy, dx) interleaved per tap": truth,
        "bug: (dx, dy) interleaved": [(t, c) for t in range(k) for c in ("dx", "dy")],
        "bug: blocked [dy_0 … dy_K-1, dx_0 … dx_K-1]": [(t, "dy") for t in range(k)] + [(t, "dx") for t in range(k)],
    }
    for row, (name, cells) in enumerate(layouts.items()):
        ax = fig.add_subplot(grid[row, 1])
        for ch, (tap, comp) in enumerate(cells):
            wrong = (tap, comp) != truth[ch]
            ax.add_patch(Rectangle((ch, 0), 1, 1, fc=colors[tap], ec="red" if wrong else "white",
                                   lw=2.5 if wrong else 1, alpha=0.85))
            ax.text(ch + 0.5, 0.5, f"{comp}\n{tap}", ha="center", va="center", fontsize=7,
                    color="white" if tap < 0.6 * k else "black")
            if row == 0:
                ax.text(ch + 0.5, 1.25, str(ch), ha="center", fontsize=6, color="0.4")
        n_wrong = sum((t, c) != truth[ch] for ch, (t, c) in enumerate(cells))
        ax.set(xlim=(0, 2 * k), ylim=(1.6 if row == 0 else 1.1, -0.1))
        ax.set_title(name + ("" if not n_wrong else f" – {n_wrong} of {2 * k} channels misread"), fontsize=9,
                     loc="left")
        ax.axis("off")
    fig.text(0.99, 0.01, "channel index of one offset group (the next group follows)", ha="right", fontsize=7,
             color="0.4")
    return fig


def plot_offset_quiver(offset: torch.Tensor, kernel_size: Sequence[int] | int, tap: int, image: ImageLike | None = None,
                       stride: int = 1, padding: int = 0, dilation: int = 1, ax: Axes | None = None,
                       title: str | None = None, sample: int = 0) -> Figure:
    """Arrows of one tap's offset ``(dx, dy)`` at every output location, drawn at that tap's regular position.

    ``offset: (N, 2·G·kh·kw, H_out, W_out)``; offset group 0 of batch item ``sample`` is drawn. An STN would draw
    the same smooth field for every tap (one global transform); a deformable layer may draw anything.
    """
    from ..deform import regular_sampling_positions, unpack_offsets

    kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    dy, dx = unpack_offsets(offset.detach().cpu().double(), kernel)
    base = regular_sampling_positions(offset.shape[2], offset.shape[3], kernel, stride, padding, dilation)[tap]
    fig = ax.figure if ax is not None else plt.figure(figsize=(3.6, 3.6))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    if image is not None:
        _imshow(ax, image, None)
    u, v = dx[sample, 0, tap].numpy(), dy[sample, 0, tap].numpy()
    ax.quiver(base[..., 1].numpy(), base[..., 0].numpy(), u, v, angles="xy", scale_units="xy", scale=1,
              color="orange", width=0.005)
    if image is None:
        ax.invert_yaxis()
        ax.set_aspect("equal")
    ax.set_title(title or f"offsets of tap {tap}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_spread_vs_size(size: Sequence[float] | torch.Tensor, spread: Sequence[float] | torch.Tensor,
                        regular: float | None = None, ax: Axes | None = None) -> Figure:
    """Scatter of the spread of a trained layer's sampling points against the size of the digit, with the least
    squares line, the correlation in the title and (``regular``) the spread of a plain convolution's taps."""
    x, y = np.asarray(size, float).reshape(-1), np.asarray(spread, float).reshape(-1)
    fig = ax.figure if ax is not None else plt.figure(figsize=(4.6, 3.4))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    ax.scatter(x, y, s=9, alpha=0.5)
    slope, intercept = np.polyfit(x, y, 1)
    xs = np.linspace(x.min(), x.max(), 2)
    ax.plot(xs, slope * xs + intercept, "r-", lw=1.5, label=f"fit: slope {slope:.2f}")
    if regular is not None:
        ax.axhline(regular, ls="--", color="0.4", lw=1, label="plain convolution")
    r = np.corrcoef(x, y)[0, 1]
    ax.set(xlabel="digit size (relative scale)", ylabel="spread of sampling points (px)",
           title=f"correlation r = {r:+.2f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
