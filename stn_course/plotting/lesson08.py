"""Figures of lesson 8 – a spatial transformer on colour signs: the classes, the distorted signs, and the signs
rectified (by the true homography and by a trained ST-CNN) beside the inputs.

Every function returns the Figure (see :mod:`stn_course.plotting`)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from ..data.signs import CLASSES
from .common import _imshow

__all__ = ["class_name", "plot_sign_classes", "plot_rectified"]


def class_name(label: int) -> str:
    """``"red circle, hbar"`` for a class of :data:`stn_course.data.signs.CLASSES`."""
    shape, colour, symbol = CLASSES[int(label)]
    return f"{colour} {shape}, {symbol}"


def plot_sign_classes(clean: torch.Tensor, examples: torch.Tensor, size: float = 1.25) -> Figure:
    """Two rows, one column per class: ``clean (K, 3, S, S)`` (class ``k`` upright, no clutter) and
    ``examples (K, 3, S, S)`` (class ``k`` distorted and cluttered, as the models see it)."""
    k = clean.shape[0]
    fig, axes = plt.subplots(2, k, figsize=(size * k, 2 * size + 0.6), squeeze=False)
    for c in range(k):
        _imshow(axes[0, c], clean[c])
        _imshow(axes[1, c], examples[c])
        axes[0, c].set_title(f"{c}: " + class_name(c).replace(", ", "\n"), fontsize=7)
        for ax in axes[:, c]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("the class", fontsize=9)
    axes[1, 0].set_ylabel("as seen", fontsize=9)
    fig.tight_layout()
    return fig


def plot_rectified(rows: Mapping[str, torch.Tensor], titles: Sequence[str] | None = None,
                   size: float = 1.3) -> Figure:
    """One row per entry of ``rows`` (``name -> (N, 3, s, s)``; sizes may differ between rows), one column per
    image – e.g. the inputs, the signs rectified by their true corners, and what the ST-CNN's transformer shows.
    ``titles``: one per column, above the first row (labels, predictions)."""
    names = list(rows)
    n = rows[names[0]].shape[0]
    fig, axes = plt.subplots(len(names), n, figsize=(size * n, size * len(names) + 0.4), squeeze=False)
    for r, name in enumerate(names):
        for c in range(n):
            _imshow(axes[r, c], rows[name][c])
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if titles is not None:
        for c, title in enumerate(titles):
            axes[0, c].set_title(title, fontsize=7)
    fig.tight_layout()
    return fig
