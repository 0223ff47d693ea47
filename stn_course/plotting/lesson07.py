"""Figures of lesson 7 – the GPU path: which output pixels each program computes, where one program reads, and the
bytes each pass moves.

Every function returns the Figure (see :mod:`stn_course.plotting`)."""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..gpu.indexing import num_programs, program_pixels, source_pixels
from ..gpu.traffic import Traffic
from .common import ImageLike, _imshow, to_numpy_image

__all__ = ["program_map", "plot_program_tiles", "plot_program_reads", "plot_traffic"]


def program_map(h_out: int, w_out: int, block: int) -> np.ndarray:
    """``(H_out, W_out)`` int array: the program that computes each output pixel (``offset // BLOCK``)."""
    return (np.arange(h_out * w_out) // block).reshape(h_out, w_out)


def plot_program_tiles(h_out: int, w_out: int, block: int, program: int | None = None,
                       ax: Axes | None = None) -> Figure:
    """The output image cut into programs of ``block`` pixels (row-major), each in its own colour and numbered;
    ``program`` is drawn strong and the others faded."""
    fig, ax = (plt.subplots(figsize=(4, 4 * h_out / max(w_out, 1))) if ax is None else (ax.figure, ax))
    ids = program_map(h_out, w_out, block)
    colours = plt.get_cmap("tab10")(ids % 10)[..., :3]
    if program is not None:
        faded = ids != program
        colours[faded] = 0.75 + 0.25 * colours[faded]
    ax.imshow(colours, interpolation="nearest")
    for pid in range(num_programs(h_out, w_out, block)):
        rows, cols, live = program_pixels(pid, block, h_out, w_out)
        i, j = rows[0].item(), cols[0].item()
        ax.text(j, i, str(pid), ha="center", va="center", fontsize=8, color="black")
    ax.set_title(f"{h_out}×{w_out} output, BLOCK = {block}: {num_programs(h_out, w_out, block)} programs per image",
                 fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_program_reads(image: ImageLike, theta: torch.Tensor, out_size: tuple[int, int], block: int, program: int,
                       ax: Axes | None = None, align_corners: bool = False) -> Figure:
    """``image`` with the points program ``program`` reads (its live lanes' source pixels) and, shaded, the input
    pixels their four neighbours cover – what the program loads, and where its backward adds."""
    array = to_numpy_image(image)
    h, w = array.shape[:2]
    fig, ax = (plt.subplots(figsize=(4, 4 * h / max(w, 1))) if ax is None else (ax.figure, ax))
    _imshow(ax, array)
    rows, cols, live = program_pixels(program, block, *out_size)
    x, y = source_pixels(theta.double(), rows[live], cols[live], (h, w), out_size, align_corners)
    hits = np.zeros((h, w))
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = (torch.floor(x) + dx).long(), (torch.floor(y) + dy).long()
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            np.add.at(hits, (yi[inside].numpy(), xi[inside].numpy()), 1)
    overlay = np.zeros((h, w, 4))
    overlay[..., 0] = 1.0
    overlay[..., 3] = np.where(hits > 0, 0.25 + 0.5 * hits / max(hits.max(), 1), 0.0)
    ax.imshow(overlay, interpolation="nearest")
    ax.plot(x.numpy(), y.numpy(), ".", color="tab:blue", markersize=3)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_title(f"program {program}: {int(live.sum())} points, {int((hits > 0).sum())} input pixels read",
                 fontsize=9)
    return fig


def plot_traffic(traffic: Mapping[str, tuple[Traffic, Traffic]]) -> Figure:
    """Bars of the bytes one pass moves, unfused next to fused, for each labelled size, as a fraction of the unfused
    pass (sizes differ by orders of magnitude); the grid's share hatched. ``traffic``: label -> ``(unfused, fused)``.
    """
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(traffic), 3.2))
    for k, (label, pair) in enumerate(traffic.items()):
        unit = pair[0].total
        for offset, t, colour in ((-0.18, pair[0], "tab:red"), (0.18, pair[1], "tab:green")):
            rest = (t.total - t.grid) / unit
            ax.bar(k + offset, rest, width=0.34, color=colour, alpha=0.8)
            ax.bar(k + offset, t.grid / unit, bottom=rest, width=0.34, color=colour, alpha=0.35, hatch="//")
    ax.set_xticks(range(len(traffic)), list(traffic), fontsize=8)
    ax.set_ylabel("bytes moved (unfused = 1)")
    ax.bar(0, 0, color="tab:red", label="F.affine_grid + F.grid_sample")
    ax.bar(0, 0, color="tab:green", label="fused kernel")
    ax.bar(0, 0, color="white", edgecolor="gray", hatch="//", label="of it: the grid")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
