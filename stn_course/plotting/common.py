"""Shared helpers of the lesson figures (every lesson): images to arrays, figures to PNG, panels of images.

The conventions every figure follows (returned Figures, accepted image layouts, pixel coordinates) are in
:mod:`stn_course.plotting`.
"""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import io
from typing import Mapping, Sequence, Union

__all__ = ["to_numpy_image", "figure_to_png", "show_images"]

ImageLike = Union[torch.Tensor, np.ndarray]


def to_numpy_image(image: ImageLike) -> np.ndarray:
    """Convert an image to what ``imshow`` wants: ``(H, W)`` for one channel, ``(H, W, 3)`` for three.

    Accepts ``(1, C, H, W)``, ``(C, H, W)``, ``(H, W)`` tensors/arrays (C = 1 or 3) and ``(H, W, 3)`` arrays.
    """
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().double().numpy()
        if array.ndim == 4:
            if array.shape[0] != 1:
                raise ValueError(f"image: expected a single image (1, C, H, W), got shape {tuple(image.shape)}")
            array = array[0]
        if array.ndim == 3:
            if array.shape[0] not in (1, 3):
                raise ValueError(f"image: expected 1 or 3 channels (C, H, W), got shape {tuple(image.shape)}")
            array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    else:
        array = np.asarray(image, dtype=np.float64)
        if array.ndim == 4 and array.shape[0] == 1:
            array = np.moveaxis(array[0], 0, -1)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(f"image: expected (1, C, H, W), (C, H, W) or (H, W) with C in (1, 3), got {array.shape}")
    return array


def figure_to_png(fig: Figure, dpi: int = 80, close: bool = True) -> bytes:
    """Render ``fig`` to PNG bytes (for ``ipywidgets.Image``) and, by default, close it so it is not shown twice."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        plt.close(fig)
    return buffer.getvalue()


def _imshow(ax: Axes, image: ImageLike, title: str | None = None, cmap: str = "gray",
            vmin: float | None = 0.0, vmax: float | None = 1.0) -> None:
    array = to_numpy_image(image)
    if array.ndim == 3:
        array = np.clip(array, 0.0, 1.0) if vmin == 0.0 and vmax == 1.0 else array
        ax.imshow(array, interpolation="nearest")
    else:
        ax.imshow(array, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=10)


def _panels(n: int, ncols: int | None = None, size: float = 3.0) -> tuple[Figure, list[Axes]]:
    ncols = n if ncols is None else max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def show_images(
    images: Sequence[ImageLike] | Mapping[str, ImageLike],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 3.0,
    cmap: str = "gray",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    ticks: bool = False,
    suptitle: str | None = None,
) -> Figure:
    """Images side by side (a dict gives titles as keys). Each panel keeps its pixel aspect ratio."""
    if isinstance(images, Mapping):
        titles, images = list(images.keys()), list(images.values())
    elif isinstance(images, (torch.Tensor, np.ndarray)):
        images = [images]
    titles = list(titles) if titles is not None else [None] * len(images)
    if len(titles) != len(images):
        raise ValueError(f"show_images: got {len(images)} images but {len(titles)} titles")
    fig, axes = _panels(len(images), ncols, size)
    for ax, image, title in zip(axes, images, titles):
        _imshow(ax, image, title, cmap, vmin, vmax)
        if not ticks:
            ax.set_xticks([])
            ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _batched_theta(theta: torch.Tensor) -> torch.Tensor:
    theta = torch.as_tensor(theta)
    if theta.shape == (2, 3):
        theta = theta.unsqueeze(0)
    if theta.shape == (3, 3):
        theta = theta[:2].unsqueeze(0)
    if theta.shape != (1, 2, 3):
        raise ValueError(f"theta: expected shape (2, 3) or (1, 2, 3), got {tuple(theta.shape)}")
    return theta
