"""Shared machinery of the explorers (every lesson): the layout, redraw-on-change, PNG rendering.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets
import torch

from .. import plotting

__all__ = ["render_png", "warp_picture"]


def render_png(fig, dpi: int = 72) -> bytes:
    """PNG bytes of a Matplotlib figure (closed afterwards, so it is not shown a second time)."""
    return plotting.figure_to_png(fig, dpi=dpi, close=True)


def warp_picture(image: torch.Tensor, theta: torch.Tensor, out_size: tuple[int, int], align_corners: bool,
                 padding_mode: str, mode: str, titles: tuple[str, str]) -> tuple[bytes, dict]:
    """The explorers' fast picture of an affine warp: the input with the sampling grid over it, and the output.

    ``image: (1, C, H, W)``, ``theta: (2, 3)``. Samples with the package's sampler (lesson 2's semantics) and draws
    with :class:`~stn_course.widgets.raster.Canvas` in a few milliseconds. ``-> (png, state)`` with ``grid``,
    ``output`` and the panels' ``layout``.
    """
    from ..grids import affine_grid
    from ..sampling import bilinear_sample, grid_to_pixels, nearest_sample
    from .raster import Canvas

    image = image.double()
    h, w = image.shape[-2:]
    grid = affine_grid(theta.to(image.dtype).unsqueeze(0), (1, image.shape[1], *out_size), align_corners=align_corners)
    sampler = {"bilinear": bilinear_sample, "nearest": nearest_sample}[mode]
    output = sampler(image, grid, padding_mode=padding_mode, align_corners=align_corners)
    canvas = Canvas()
    canvas.add(titles[0], image, grid=grid_to_pixels(grid, (h, w), align_corners)).add(titles[1], output)
    png = canvas.png()
    return png, {"grid": grid, "output": output, "layout": dict(canvas.boxes)}


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
