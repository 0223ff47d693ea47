"""Figures of lesson 4 – the backward pass: the gradient's footprint on the input, gradient descent on θ.

Every function returns the Figure (see :mod:`stn_course.plotting`)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..sampling import grid_to_pixels
from .common import ImageLike, _imshow, to_numpy_image

__all__ = ["plot_gradient_footprint", "plot_descent"]


def plot_gradient_footprint(image: ImageLike, grad_input: torch.Tensor, grid: torch.Tensor,
                            align_corners: bool = False, title: str | None = None) -> Figure:
    """Which input pixels receive gradient (lesson 4): ``|∂L/∂U|`` summed over channels, next to the input with
    the sampling points drawn on it. Only the four neighbours of each sampling point can receive anything.

    ``grad_input: (1, C, H, W)`` (or ``(C, H, W)``), ``grid: (1, H_out, W_out, 2)``.
    """
    g = grad_input.detach().cpu().double()
    g = g.reshape(-1, *g.shape[-2:]).abs().sum(0).numpy()
    array = to_numpy_image(image)
    pixels = grid_to_pixels(grid, array.shape[:2], align_corners)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.4, 3.6))
    _imshow(left, array, "input and the sampling points")
    left.plot(pixels[..., 0].ravel(), pixels[..., 1].ravel(), ".", color="tab:orange", ms=2)
    im = right.imshow(g, cmap="magma", interpolation="nearest")
    right.set_title(title or "|∂L/∂U|: pixels that receive gradient", fontsize=10)
    fig.colorbar(im, ax=right, fraction=0.046, pad=0.04)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_descent(values: Sequence[float], losses: Sequence[float], path: Sequence[float],
                 path_losses: Sequence[float], xlabel: str = "θ", truth: float | None = None,
                 ax: Axes | None = None) -> Figure:
    """A one-parameter loss curve with the iterates of gradient descent on it (lesson 4)."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.2, 3.4))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    ax.plot(values, losses, color="0.3", lw=1.5, label="loss")
    ax.plot(path, path_losses, "o-", color="tab:orange", ms=4, lw=1, label="gradient descent")
    ax.plot(path[0], path_losses[0], "s", color="tab:red", ms=7, label="start")
    if truth is not None:
        ax.axvline(truth, ls="--", color="tab:green", lw=1, label="true value")
    ax.set(xlabel=xlabel, ylabel="loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
