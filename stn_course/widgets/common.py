"""Shared machinery of the explorers (every lesson): the layout, redraw-on-change, PNG rendering.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import math
from typing import Callable

import ipywidgets as widgets
import numpy as np
import torch

from .. import plotting

__all__ = ["render_png", "warp_picture"]


def render_png(fig, dpi: int = 72) -> bytes:
    """PNG bytes of a Matplotlib figure (closed afterwards, so it is not shown a second time)."""
    return plotting.figure_to_png(fig, dpi=dpi, close=True)


def warp_picture(image: torch.Tensor, theta: torch.Tensor, out_size: tuple[int, int], align_corners: bool,
                 padding_mode: str, mode: str, titles: tuple[str, str], max_margin: float = 2.0) -> tuple[bytes, dict]:
    """The explorers' fast picture of an affine warp: the input with the sampling grid over it, and the output.

    ``image: (1, C, H, W)``, ``theta: (2, 3)``. Samples with the package's sampler (lesson 2's semantics) and draws
    with :class:`~stn_course.widgets.raster.Canvas` in a few milliseconds. Where the grid leaves the image (zooming
    out, translating), the input panel grows by a grey margin – up to ``max_margin`` times the image's size on each
    side – so the whole grid shows, and the image's extent is outlined in dark grey. ``-> (png, state)`` with
    ``grid``, ``output``, ``margin`` (image pixels added on each side) and the panels' ``layout``.
    """
    from ..grids import affine_grid
    from ..sampling import bilinear_sample, grid_to_pixels, nearest_sample
    from .raster import Canvas, to_rgb

    image = image.double()
    h, w = image.shape[-2:]
    grid = affine_grid(theta.to(image.dtype).unsqueeze(0), (1, image.shape[1], *out_size), align_corners=align_corners)
    sampler = {"bilinear": bilinear_sample, "nearest": nearest_sample}[mode]
    output = sampler(image, grid, padding_mode=padding_mode, align_corners=align_corners)
    pixels = grid_to_pixels(grid, (h, w), align_corners)
    margin = _grid_margin(pixels, h, w, max_margin)
    rgb = to_rgb(image)
    if margin:
        framed = np.full((h + 2 * margin, w + 2 * margin, 3), MARGIN_GREY, dtype=np.uint8)
        framed[margin - 1:margin + h + 1, margin - 1:margin + w + 1] = OUTLINE_GREY  # the image's extent
        framed[margin:margin + h, margin:margin + w] = rgb
        rgb, pixels = framed, pixels + margin
    canvas = Canvas()
    canvas.add(titles[0], rgb, grid=pixels).add(titles[1], output)
    png = canvas.png()
    return png, {"grid": grid, "output": output, "margin": margin, "layout": dict(canvas.boxes)}


MARGIN_GREY = 200  # the input panel around the image, where the grid reads the padding
OUTLINE_GREY = 70  # a one-pixel frame just outside the image: its extent


def _grid_margin(pixels: np.ndarray, h: int, w: int, max_margin: float) -> int:
    """Whole image pixels to add on every side so that the grid points ``(H_out, W_out, 2)`` (pixel x, y) lie in the
    panel; at most ``max_margin`` times the image's longer side, and 0 when the grid stays inside the image."""
    finite = pixels[np.isfinite(pixels).all(-1)]
    if finite.size == 0:
        return 0
    beyond = max(-finite[:, 0].min() - 0.5, finite[:, 0].max() - (w - 0.5),
                 -finite[:, 1].min() - 0.5, finite[:, 1].max() - (h - 0.5))
    if beyond <= 0:
        return 0
    return int(min(math.ceil(beyond) + 1, math.ceil(max_margin * max(h, w))))


def _matrix_html(name: str, matrix: torch.Tensor) -> str:
    rows = "".join("<tr>" + "".join(f"<td style='padding:0 6px;text-align:right'>{v:+.3f}</td>" for v in row)
                   + "</tr>" for row in matrix.tolist())
    return f"<div style='display:inline-block;margin-right:18px'><b>{name}</b><table>{rows}</table></div>"


def _explorer(css: str, controls: dict[str, widgets.Widget], draw: Callable[[dict], tuple[bytes, str, dict]],
              columns: int = 3) -> widgets.VBox:
    """Lay out ``controls``, an Image and an HTML caption; redraw on every change."""
    image = widgets.Image(format="png")
    image.add_class(f"{css}-figure")
    caption = widgets.HTML()
    caption.add_class(f"{css}-matrices")
    for name, control in controls.items():
        control.add_class(f"stn-control-{name.replace('_', '-')}")
    names = list(controls)
    rows = [widgets.HBox([controls[n] for n in names[i:i + columns]]) for i in range(0, len(names), columns)]
    box = widgets.VBox(rows + [image, caption])
    box.add_class("stn-explorer")
    box.add_class(css)
    box.controls = controls
    box.state = {}
    box.figure = image
    box.caption = caption

    def update(_change=None) -> None:
        values = {name: control.value for name, control in controls.items()}
        png, html, state = draw(values)
        renders = box.state.get("renders", 0) + 1
        box.state.clear()
        box.state.update(state, renders=renders)
        image.value = png
        caption.value = html

    for control in controls.values():
        control.observe(update, names="value")
    box.update = update
    update()
    return box
