"""Figures of lesson 5 – training on distorted MNIST: the distortions, learning curves, what the transformer does.

Every function returns the Figure (see :mod:`stn_course.plotting`)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .common import _imshow
from .lesson01 import show_grid

__all__ = ["plot_distortions", "plot_learning_curves", "plot_transformer_view", "plot_theta_statistics"]


def plot_distortions(samples: Mapping[str, torch.Tensor], labels: Sequence[int] | torch.Tensor | None = None,
                     n: int = 8, size: float = 1.3) -> Figure:
    """One row per distortion kind: ``samples[kind]`` is a batch ``(N, 1, S, S)`` of distorted digits.

    The canvas size differs per row (28, 42, 60…); each panel shows the whole canvas with a thin frame so the
    placement inside it is visible. ``labels`` (shared by all rows) become titles.
    """
    kinds = list(samples)
    fig, axes = plt.subplots(len(kinds), n, figsize=(size * n, size * len(kinds) + 0.3), squeeze=False)
    for r, kind in enumerate(kinds):
        batch = samples[kind]
        for c in range(n):
            ax = axes[r, c]
            _imshow(ax, batch[c])
            ax.set_xticks([])
            ax.set_yticks([])
            if labels is not None and r == 0:
                ax.set_title(str(int(labels[c])), fontsize=9)
        s = batch.shape[-1]
        axes[r, 0].set_ylabel(f"{kind}\n{s}×{s}", rotation=0, ha="right", va="center", fontsize=10)
    fig.tight_layout()
    return fig


def plot_learning_curves(histories: Mapping[str, Mapping[str, Sequence[float]]],
                         paper: Mapping[str, float] | None = None, held_out: str = "test") -> Figure:
    """Training loss and test error (percent, log scale) per epoch for several runs (``name -> history``).

    ``paper`` (``name -> error %``) draws the paper's final errors as dashed horizontal lines for reference.
    ``held_out`` names the set behind the history's ``test_error`` (``"validation"`` when :func:`~stn_course.training.fit`
    was given the validation loader, as lesson 5 does).
    """
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, h) in enumerate(histories.items()):
        color = colors[i % len(colors)]
        ax_loss.plot(h["epoch"], h["loss"], "-o", ms=3, color=color, label=name)
        if h.get("test_error"):
            ax_err.plot(h["epoch"], h["test_error"], "-o", ms=3, color=color, label=f"{name} ({held_out})")
            ax_err.plot(h["epoch"], h["train_error"], ":", color=color, alpha=0.7, label=f"{name} (train)")
    for i, (name, value) in enumerate((paper or {}).items()):
        ax_err.axhline(value, ls="--", lw=1, color="0.4")
        ax_err.annotate(f"paper {name}: {value}%", (0.99, value), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=8, color="0.3")
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="training loss")
    ax_err.set(xlabel="epoch", ylabel="error (%)", yscale="log", title=f"error ({held_out} solid, train dotted)")
    ax_loss.legend(fontsize=8)
    ax_err.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_transformer_view(inputs: torch.Tensor, outputs: torch.Tensor, grids: torch.Tensor, n: int = 6,
                          titles: Sequence[str] | None = None, align_corners: bool = False,
                          size: float = 2.0) -> Figure:
    """What a spatial transformer does: input with its sampling grid drawn on (top) and its output (bottom).

    ``inputs: (N, 1, H, W)``, ``outputs: (N, 1, h, w)``, ``grids: (N, h, w, 2)``; the first ``n`` are drawn.
    """
    n = min(n, inputs.shape[0])
    fig, axes = plt.subplots(2, n, figsize=(size * n, 2 * size + 0.2), squeeze=False)
    for i in range(n):
        show_grid(inputs[i], grids[i:i + 1], align_corners=align_corners, ax=axes[0, i], max_lines=8, points=False,
                  title=titles[i] if titles is not None else None)
        _imshow(axes[1, i], outputs[i])
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input + grid")
    axes[1, 0].set_ylabel("transformer output")
    fig.tight_layout()
    return fig


def plot_theta_statistics(true_angle: torch.Tensor, true_scale: torch.Tensor, rotation: torch.Tensor,
                          zoom: torch.Tensor, shift: torch.Tensor | None = None,
                          true_shift: torch.Tensor | None = None) -> Figure:
    """Scatter what the transformer learned against the distortion that was applied, one dot per digit.

    ``true_angle``/``true_scale`` (N,): the distortion's rotation (degrees) and scale; ``rotation``/``zoom`` (N,):
    :func:`stn_course.training.theta_statistics` of the learned theta. A transformer that undoes the distortion
    lies near ``rotation = -true_angle + c`` and ``zoom ∝ 1 / true_scale``. With ``shift`` and ``true_shift`` (N, 2)
    a third panel compares where the transformer looks with where the digit was placed (x coordinates).
    """
    panels = 3 if shift is not None and true_shift is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.6))
    ta, ts = np.asarray(true_angle, dtype=float), np.asarray(true_scale, dtype=float)
    r, z = np.asarray(rotation, dtype=float), np.asarray(zoom, dtype=float)
    axes[0].scatter(ta, r, s=6, alpha=0.6)
    lim = max(np.abs(ta).max(), 1.0)
    axes[0].plot([-lim, lim], [lim + np.median(r + ta), -lim + np.median(r + ta)], "--", color="0.4", lw=1,
                 label="rotation = -angle + c")
    axes[0].set(xlabel="applied rotation (°)", ylabel="transformer's rotation (°)", title="rotation undone?")
    axes[0].legend(fontsize=8)
    axes[1].scatter(ts, z, s=6, alpha=0.6)
    grid = np.linspace(ts.min(), ts.max(), 50)
    c = np.median(z * ts)
    axes[1].plot(grid, c / grid, "--", color="0.4", lw=1, label="zoom = c / scale")
    axes[1].set(xlabel="applied scale", ylabel="transformer's zoom", title="scale undone?")
    axes[1].legend(fontsize=8)
    if panels == 3:
        axes[2].scatter(np.asarray(true_shift)[:, 0], np.asarray(shift)[:, 0], s=6, alpha=0.6)
        axes[2].set(xlabel="digit centre x (normalized)", ylabel="theta's shift x", title="where it looks")
    fig.tight_layout()
    return fig
