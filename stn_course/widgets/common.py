"""Shared machinery of the explorers (every lesson): the layout, redraw-on-change, PNG rendering.

The layout (:func:`_explorer`) is made to be projected in a lecture: the controls and the numbers to watch (the
caption) in one column, the picture beside it – or below it, on a screen too narrow for both – shown at its natural
size (never stretched: a magnified PNG is blurry) and shrunk, never cropped, on a narrower screen. Every control is
``CONTROL_WIDTH`` wide, so a 72-step slider has a few pixels per step, and every description label is as wide as the
explorer's longest one, measured in the front end's font (DejaVu Sans at 13 px), so none is cut with an ellipsis.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import math
from typing import Callable

import ipywidgets as widgets
import numpy as np
import torch

from .. import plotting

__all__ = ["render_png", "warp_picture", "png_size", "label_width", "CONTROL_WIDTH", "LABEL_FONT_SIZE"]

CONTROL_WIDTH = 460  # px: every control (ipywidgets' default is 300, which leaves a slider ~1.7 px per 72 steps)
LABEL_FONT_SIZE = 13  # px: the front end's --jp-widgets-font-size (JupyterLab and Voilà)
LABEL_SLACK = 4  # px added to the longest label: the browser's text layout is not Pillow's to the pixel
CHECKBOX = 30  # px: a checkbox's box and its margins, between its (empty) label and its description
FIGURE_DPI = 100  # Matplotlib pictures: 10-point text is 14 px, readable at natural size


def render_png(fig, dpi: int = FIGURE_DPI) -> bytes:
    """PNG bytes of a Matplotlib figure (closed afterwards, so it is not shown a second time)."""
    return plotting.figure_to_png(fig, dpi=dpi, close=True)


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` in pixels of PNG bytes, read from the header (the IHDR chunk leads every PNG)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError(f"expected PNG bytes (starting with the PNG signature and IHDR), got {png[:16]!r}")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def label_width(text: str) -> int:
    """Width in pixels of a control's description as the front end draws it (DejaVu Sans, ``LABEL_FONT_SIZE``)."""
    from .raster import font

    return math.ceil(font(LABEL_FONT_SIZE).getlength(text))


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


def _labelled(control: widgets.Widget) -> bool:
    """Whether ``control`` shows its description in the description-width label on its left (a checkbox shows it
    on its right, after the box)."""
    return bool(control.description) and not isinstance(control, widgets.Checkbox)


def _px(css: str) -> int:
    """``"460px" -> 460`` (the widths :func:`_size_controls` sets)."""
    if not css.endswith("px"):
        raise ValueError(f"expected a control width in px, got {css!r}")
    return round(float(css[:-2]))


def _size_controls(controls: dict[str, widgets.Widget]) -> None:
    """Every description label as wide as the longest one (so the controls line up and none is cut); every control
    ``CONTROL_WIDTH`` wide (unless its layout already sets a width), a checkbox just wide enough for its box and its
    description, which it draws after the box."""
    label = max([label_width(c.description) for c in controls.values() if _labelled(c)], default=0) + LABEL_SLACK
    for control in controls.values():
        if isinstance(control, widgets.Checkbox):
            natural = label + CHECKBOX + label_width(control.description) + LABEL_SLACK
            control.layout.width = control.layout.width or f"{natural}px"
        control.layout.width = control.layout.width or f"{CONTROL_WIDTH}px"
        if isinstance(control, widgets.ToggleButtons):  # else its label sits above the buttons, not on their left
            control.add_class("widget-inline-hbox")
        if hasattr(control, "style") and hasattr(control.style, "description_width"):
            control.style.description_width = f"{label}px"


def _explorer(css: str, controls: dict[str, widgets.Widget], draw: Callable[[dict], tuple[bytes, str, dict]],
              columns: int = 1) -> widgets.VBox:
    """Lay out ``controls`` (``columns`` to a row) with the HTML caption under them and the picture (a PNG Image,
    at its natural size) beside them; redraw on every change.

    ``draw(values) -> (png, caption_html, state)``. The box wraps: on a narrow screen the picture goes below. The
    returned VBox holds one row, ``[panel, figure]``; ``box.panel`` is the controls' column (CSS class
    ``stn-explorer-controls``: rows of controls, then ``box.caption``), ``box.figure`` the Image."""
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto", flex="0 1 auto"))
    image.add_class(f"{css}-figure")
    caption = widgets.HTML(layout=widgets.Layout(width="100%"))
    caption.add_class(f"{css}-matrices")
    _size_controls(controls)
    for name, control in controls.items():
        control.add_class(f"stn-control-{name.replace('_', '-')}")
    names = list(controls)
    rows = [[controls[n] for n in names[i:i + columns]] for i in range(0, len(names), columns)]
    width = max(sum(_px(c.layout.width) for c in row) for row in rows)  # the caption wraps within the controls' width
    panel = widgets.VBox([widgets.HBox(row) for row in rows] + [caption], layout=widgets.Layout(
        width=f"{width}px", max_width="100%", flex="0 0 auto", margin="0 16px 8px 0"))
    panel.add_class("stn-explorer-controls")
    row = widgets.HBox([panel, image], layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
    box = widgets.VBox([row])
    box.add_class("stn-explorer")
    box.add_class(css)
    box.controls = controls
    box.state = {}
    box.figure = image
    box.caption = caption
    box.panel = panel  # the controls' column, caption last: a widget added here sits beside the picture

    def update(_change=None) -> None:
        values = {name: control.value for name, control in controls.items()}
        png, html, state = draw(values)
        renders = box.state.get("renders", 0) + 1
        box.state.clear()
        box.state.update(state, renders=renders)
        image.value = png
        image.layout.width = f"{png_size(png)[0]}px"  # natural size: never stretched to the container
        caption.value = f"<div class='stn-caption' style='line-height:1.45'>{html}</div>"  # wrapped lines: not 28px

    for control in controls.values():
        control.observe(update, names="value")
    box.update = update
    update()
    return box
