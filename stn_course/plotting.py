"""Figures for the lessons (every lesson; sections below are ordered by lesson).

Every function draws with Matplotlib and **returns the Figure** (it never calls ``plt.show``): a notebook shows it
inline, a widget renders it to PNG (:func:`figure_to_png`), a test inspects its artists. Functions that draw on one
panel accept ``ax=`` to draw into an existing Axes.

Images may be given as tensors ``(1, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` (C = 1 or 3), or as NumPy arrays
``(H, W)``/``(H, W, 3)``. Pixel coordinates follow ``imshow``: the centre of pixel ``image[y, x]`` is drawn at
``(x, y)``, its edges at ``± 0.5``, and y points down – the convention of :mod:`stn_course.affine`.
"""
from __future__ import annotations

import io
from typing import Mapping, Sequence, Union

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import affine
from .grids import affine_grid
from .sampling import bilinear_sample, nearest_sample, unnormalize

__all__ = [
    "to_numpy_image",
    "figure_to_png",
    "show_images",
    # lesson 1
    "grid_to_pixels",
    "show_grid",
    "plot_warp",
    "letter_f",
    "plot_shapes",
    "plot_align_corners",
    "forward_warp_nearest",
    "inverse_warp_nearest",
    "plot_forward_vs_inverse",
    # lesson 2
    "plot_interpolation_1d",
    "plot_bilinear_weights",
    "plot_padding_modes",
    "plot_differences",
    # lesson 5
    "plot_distortions",
    "plot_learning_curves",
    "plot_transformer_view",
    "plot_theta_statistics",
]

ImageLike = Union[torch.Tensor, np.ndarray]

# ----------------------------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------------
# Lesson 1 – affine transforms
# ----------------------------------------------------------------------------------------------------------------


def grid_to_pixels(grid: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> np.ndarray:
    """Normalized sampling grid -> input pixel coordinates, the way the sampler reads them.

    ``grid: (1, H_out, W_out, 2)`` or ``(H_out, W_out, 2)`` holding normalized ``(x, y)``; ``size = (H_in, W_in)``
    ``-> (H_out, W_out, 2)`` NumPy array of pixel ``(x, y)`` (pixel centres at integers).
    """
    if not isinstance(grid, torch.Tensor):
        grid = torch.as_tensor(np.asarray(grid, dtype=np.float64))
    if grid.ndim == 4:
        if grid.shape[0] != 1:
            raise ValueError(f"grid: expected one grid (1, H_out, W_out, 2), got shape {tuple(grid.shape)}")
        grid = grid[0]
    if grid.ndim != 3 or grid.shape[-1] != 2:
        raise ValueError(f"grid: expected shape (H_out, W_out, 2) or (1, H_out, W_out, 2), got {tuple(grid.shape)}")
    height, width = int(size[0]), int(size[1])
    grid = grid.detach().cpu().double()
    x = unnormalize(grid[..., 0], width, align_corners)
    y = unnormalize(grid[..., 1], height, align_corners)
    return torch.stack([x, y], dim=-1).numpy()


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


def _batched_theta(theta: torch.Tensor) -> torch.Tensor:
    theta = torch.as_tensor(theta)
    if theta.shape == (2, 3):
        theta = theta.unsqueeze(0)
    if theta.shape == (3, 3):
        theta = theta[:2].unsqueeze(0)
    if theta.shape != (1, 2, 3):
        raise ValueError(f"theta: expected shape (2, 3) or (1, 2, 3), got {tuple(theta.shape)}")
    return theta


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


def plot_align_corners(height: int = 3, width: int = 4) -> Figure:
    """Pixel squares vs the normalized frame ``[-1, 1]²`` for both ``align_corners`` conventions.

    ``align_corners=False`` (PyTorch's default): ±1 are the *outer edges* of the border pixels.
    ``align_corners=True``: ±1 are the *centres* of the border pixels. Each pixel centre is labelled with its
    normalized x coordinate (top row) and y coordinate (left column).
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
        ax.set_title(f"align_corners={align}: {formula}", fontsize=10)
        ax.set_xlim(-1.9, width + 0.3)
        ax.set_ylim(height + 0.4, -1.4)
        ax.set_aspect("equal")
        ax.set_xticks(range(width))
        ax.set_yticks(range(height))
        ax.set_xlabel("pixel x")
        ax.set_ylabel("pixel y")
    fig.tight_layout()
    return fig


def forward_warp_nearest(image: torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """*Forward* mapping (splatting): push every input pixel to ``round(matrix @ (x, y, 1))``.

    ``image: (1, C, H, W)``, ``matrix: (3, 3)`` pixel-space motion ``-> (output (1, C, H, W), hit (H, W) bool)``.
    Output pixels that no input pixel lands on stay 0 and have ``hit == False`` – the holes.
    """
    _, c, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    points = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
    target = torch.round(affine.apply(torch.as_tensor(matrix, dtype=torch.float64), points)).long()
    inside = (target[:, 0] >= 0) & (target[:, 0] < w) & (target[:, 1] >= 0) & (target[:, 1] < h)
    out = torch.zeros_like(image)
    hit = torch.zeros(h, w, dtype=torch.bool)
    src = image.reshape(c, -1)[:, inside]
    tx, ty = target[inside, 0], target[inside, 1]
    out[0][:, ty, tx] = src
    hit[ty, tx] = True
    return out, hit


def inverse_warp_nearest(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """*Inverse* mapping: every output pixel pulls ``image`` at ``round(matrix⁻¹ @ (x, y, 1))`` (0 outside).

    ``image: (1, C, H, W)``, ``matrix: (3, 3)`` pixel-space motion ``-> (1, C, H, W)``. Implemented the way a spatial
    transformer does it: ``theta = pixel_to_theta(invert(matrix))``, ``affine_grid``, nearest sampling.
    """
    _, c, h, w = image.shape
    back = affine.invert(torch.as_tensor(matrix, dtype=torch.float64))
    theta = affine.pixel_to_theta(back, (h, w), align_corners=False).unsqueeze(0)
    grid = affine_grid(theta, (1, c, h, w), align_corners=False)
    return nearest_sample(image.double(), grid, align_corners=False).to(image.dtype)


def plot_forward_vs_inverse(image: torch.Tensor, matrix: torch.Tensor) -> Figure:
    """Input, forward mapping (holes in red) and inverse mapping of the same pixel-space ``matrix``.

    ``image: (1, C, H, W)``, ``matrix: (3, 3)``. Enlarging or rotating makes the forward map leave holes: several
    output pixels receive no input pixel, while the inverse map asks every output pixel where to read.
    """
    forward, hit = forward_warp_nearest(image, matrix)
    inverse = inverse_warp_nearest(image, matrix)
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
    _imshow(axes[2], inverse, "inverse (pull): no holes")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------------------
# Lesson 2 – sampling grids and bilinear interpolation
# ----------------------------------------------------------------------------------------------------------------


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
    ``w00 = (1-x)(1-y)``, ``w10 = x(1-y)``, ``w01 = (1-x)y``, ``w11 = xy`` (corner (i, j) = pixel x0+i, y0+j).
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
        ax.text((x_lo + x_hi) / 2, (y_lo + y_hi) / 2, f"w{i}{j}\n{weight:.3f}", ha="center", va="center",
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
    modes: Sequence[str] = ("zeros", "border", "reflection"),
    out_size: Sequence[int] | None = None,
) -> Figure:
    """The same ``theta`` (e.g. a zoom-out that reads outside the input) sampled with each padding mode.

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
    and a number.
    """
    ref = to_numpy_image(reference)
    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.2), squeeze=False)
    for k, (name, result) in enumerate(results.items()):
        res = to_numpy_image(result)
        if res.shape != ref.shape:
            raise ValueError(f"plot_differences: {name!r} has shape {res.shape}, the reference {ref.shape}")
        diff = np.abs(res - ref)
        if diff.ndim == 3:
            diff = diff.sum(-1)
        _imshow(axes[0, k], res, name)
        im = axes[1, k].imshow(diff, cmap="magma", vmin=0.0, vmax=vmax if vmax is not None else max(diff.max(), 1e-12),
                               interpolation="nearest")
        axes[1, k].set_title(f"|difference|, max {diff.max():.3g}", fontsize=10)
        fig.colorbar(im, ax=axes[1, k], fraction=0.046, pad=0.04)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------------------
# Lesson 5 – training spatial transformers on distorted MNIST
# ----------------------------------------------------------------------------------------------------------------


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
                         paper: Mapping[str, float] | None = None) -> Figure:
    """Training loss and test error (percent, log scale) per epoch for several runs (``name -> history``).

    ``paper`` (``name -> error %``) draws the paper's final errors as dashed horizontal lines for reference.
    """
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, h) in enumerate(histories.items()):
        color = colors[i % len(colors)]
        ax_loss.plot(h["epoch"], h["loss"], "-o", ms=3, color=color, label=name)
        if h.get("test_error"):
            ax_err.plot(h["epoch"], h["test_error"], "-o", ms=3, color=color, label=f"{name} (test)")
            ax_err.plot(h["epoch"], h["train_error"], ":", color=color, alpha=0.7, label=f"{name} (train)")
    for i, (name, value) in enumerate((paper or {}).items()):
        ax_err.axhline(value, ls="--", lw=1, color="0.4")
        ax_err.annotate(f"paper {name}: {value}%", (0.99, value), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=8, color="0.3")
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="training loss")
    ax_err.set(xlabel="epoch", ylabel="error (%)", yscale="log", title="error (test solid, train dotted)")
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


# ----------------------------------------------------------------------------------------------------------------
# Lesson 6 – deformable convolution
# ----------------------------------------------------------------------------------------------------------------

__all__ += [
    "plot_sampling_points",
    "plot_sampling_panels",
    "plot_offset_layout",
    "plot_offset_quiver",
    "plot_spread_vs_size",
]


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
    from .deform import regular_sampling_positions, unpack_offsets

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


# ----------------------------------------------------------------------------------------------------------------
# Lessons 3–4 – the spatial transformer forward (control points, warps) and backward (gradient footprint, descent)
# ----------------------------------------------------------------------------------------------------------------


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


__all__ += ["plot_control_points", "plot_gradient_footprint", "plot_descent"]
