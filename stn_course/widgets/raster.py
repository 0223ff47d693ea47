"""Fast pictures for the explorers: tensors straight to PNG bytes, without Matplotlib (every lesson's explorers).

An explorer redraws on every slider step, so its picture must take milliseconds: Matplotlib's figure, layout and
anti-aliased rendering take 100–300 ms for two 256×256 panels, this takes a few. A :class:`Canvas` places panels
side by side, each an image (nearest-neighbour magnified so a small image is still big enough to see) with an
optional sampling grid drawn over it, under a title; :meth:`Canvas.png` encodes the whole with Pillow.
Text (titles, chart labels) is drawn with the DejaVu Sans TrueType font that ships with Matplotlib, anti-aliased at
the size it is shown at: the explorers show their PNG at its natural size (:mod:`stn_course.widgets.common`), so it
reads crisply on a projector. A title longer than its panel wraps onto more lines.
Panels keep their placement in :attr:`Canvas.boxes`, so a test (or a browser test probing pixels) can find an
image's pixels again: panel pixel ``(i, j)`` of a magnified image is image pixel ``(i // f, j // f)``.
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..plotting.common import to_numpy_image

__all__ = ["to_rgb", "Canvas", "GRID_COLOUR", "font", "FONT_PATH", "TITLE_SIZE", "LABEL_SIZE"]

GRID_COLOUR = (255, 64, 64)
CURVE_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
BACKGROUND = (255, 255, 255)
GAP = 12
TITLE_SIZE = 15  # px: titles above the panels
LABEL_SIZE = 12  # px: a chart's axis labels and legend
LINE_SPACING = 1.25  # a text line's height, in font sizes
FONT_PATH = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


@functools.lru_cache(maxsize=None)
def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (the TrueType font that ships with Matplotlib) at ``size`` pixels, loaded once per size."""
    if not FONT_PATH.is_file():
        raise FileNotFoundError(f"expected Matplotlib's DejaVu Sans at {FONT_PATH} (it ships with every Matplotlib)")
    return ImageFont.truetype(str(FONT_PATH), size)


def wrap(text: str, width: float, face: ImageFont.FreeTypeFont) -> list[str]:
    """``text`` split at spaces into lines no wider than ``width`` pixels in ``face`` (a single word wider than that
    keeps a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and face.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def to_rgb(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(1, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` (C = 1 or 3) with values in [0, 1] -> ``uint8 (H, W, 3)``.

    Values outside [0, 1] are clipped, as the lesson figures show them; NaN shows as black.
    """
    array = np.nan_to_num(to_numpy_image(image), nan=0.0)
    array = np.clip(array, 0.0, 1.0)
    rgb = np.round(array * 255).astype(np.uint8)
    return np.repeat(rgb[..., None], 3, axis=-1) if rgb.ndim == 2 else rgb


@dataclass
class Canvas:
    """Panels side by side. ``min_side``: a panel's image is magnified by the smallest integer factor that makes its
    longer side at least this many pixels."""

    min_side: int = 240
    panels: list[tuple[str, np.ndarray]] = field(default_factory=list)
    boxes: dict[str, tuple[int, int, int, int, int]] = field(default_factory=dict)  # title: (x, y, w, h, factor)
    _grids: list[tuple[int, np.ndarray, int]] = field(default_factory=list)
    _unscaled: set[int] = field(default_factory=set)  # panels drawn at their final size (charts)

    def factor(self, rgb: np.ndarray) -> int:
        return max(1, -(-self.min_side // max(rgb.shape[:2])))

    def add(self, title: str, image: torch.Tensor | np.ndarray, grid: torch.Tensor | None = None,
            max_lines: int = 12) -> "Canvas":
        """A panel of ``image``; ``grid``: sampling positions ``(H_out, W_out, 2)`` in the image's *pixel*
        coordinates (x, y), drawn as every few rows and columns of the grid."""
        rgb = image if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 else to_rgb(image)
        if grid is not None:
            points = grid.detach().cpu().double().numpy() if isinstance(grid, torch.Tensor) else np.asarray(grid)
            self._grids.append((len(self.panels), points, max_lines))
        self.panels.append((title, rgb))
        return self

    def add_curves(self, title: str, series: dict[str, list[float]], size: int = 240,
                   ymax: float | None = None) -> "Canvas":
        """A panel with line charts of ``series`` (name -> values per epoch, from 0 up), a legend and the last
        values; the y axis runs from 0 to ``ymax`` (default: the largest value)."""
        panel = Image.new("RGB", (size, size), BACKGROUND)
        draw = ImageDraw.Draw(panel)
        face = font(LABEL_SIZE)
        line = round(LABEL_SIZE * LINE_SPACING)
        values = [v for vs in series.values() for v in vs if np.isfinite(v)]
        top_value = ymax if ymax is not None else max(values + [1e-9])
        length = max([len(vs) for vs in series.values()] + [2])
        top_label = f"{top_value:.0f}"
        left = 6 + round(max(face.getlength(top_label), face.getlength("0")))
        top, right, bottom = 8, size - 8, size - 6 - line * (1 + len(series))  # the x label and the legend below
        draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
        draw.text((left - 3, top), top_label, fill=(0, 0, 0), font=face, anchor="rm")
        draw.text((left - 3, bottom), "0", fill=(0, 0, 0), font=face, anchor="rm")
        draw.text((left, bottom + 3), f"epochs 1 to {max(length, 1)}", fill=(0, 0, 0), font=face)
        for k, (name, vs) in enumerate(series.items()):
            colour = CURVE_COLOURS[k % len(CURVE_COLOURS)]
            xs = [left + (right - left) * i / max(length - 1, 1) for i in range(len(vs))]
            ys = [bottom - (bottom - top) * min(v, top_value) / top_value for v in vs]
            if len(vs) > 1:
                draw.line(list(zip(xs, ys)), fill=colour, width=2)
            for x, y in zip(xs, ys):
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
            last = f" {vs[-1]:.1f}" if vs else ""
            draw.text((left, bottom + 3 + line * (k + 1)), f"{name}{last}", fill=colour, font=face)
        self.panels.append((title, np.asarray(panel)))
        self._unscaled.add(len(self.panels) - 1)
        return self

    def render(self) -> np.ndarray:
        """The canvas as ``uint8 (H, W, 3)`` (panels magnified, grids drawn, titles written).

        Each panel sits in a column as wide as the panel or its title's longest word, whichever is wider; a title
        wraps onto as many lines as it needs, and every panel starts below the tallest title."""
        face, line = font(TITLE_SIZE), round(TITLE_SIZE * LINE_SPACING)
        columns = []
        for index, (title, rgb) in enumerate(self.panels):
            f = 1 if index in self._unscaled else self.factor(rgb)
            big = np.repeat(np.repeat(rgb, f, axis=0), f, axis=1)
            lines = wrap(title, big.shape[1], face)
            width = max(big.shape[1], *(int(np.ceil(face.getlength(text))) for text in lines))
            columns.append((title, big, f, lines, width))
        title_height = line * max(len(lines) for *_, lines, _ in columns) + 4
        height = title_height + max(big.shape[0] for _, big, *_ in columns)
        canvas = Image.new("RGB", (sum(c[-1] for c in columns) + GAP * (len(columns) - 1), height), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        x = 0
        self.boxes = {}
        for index, (title, big, f, lines, width) in enumerate(columns):
            panel = Image.fromarray(big)
            for which, points, max_lines in self._grids:  # drawn on the panel alone: clipped to it
                if which == index:
                    self._draw_grid(ImageDraw.Draw(panel), points, f, max_lines)
            canvas.paste(panel, (x, title_height))
            for k, text in enumerate(lines):
                draw.text((x, 2 + k * line), text, fill=(0, 0, 0), font=face)
            self.boxes[title] = (x, title_height, big.shape[1], big.shape[0], f)
            x += width + GAP
        return np.asarray(canvas)

    @staticmethod
    def _draw_grid(draw: ImageDraw.ImageDraw, points: np.ndarray, f: int, max_lines: int) -> None:
        """Rows and columns of the grid, in panel pixels: image pixel centre (x, y) is at ((x + 0.5) f, (y + 0.5) f)."""
        h_out, w_out = points.shape[:2]
        panel = (points + 0.5) * f
        finite = np.isfinite(panel).all(-1)
        rows = np.unique(np.linspace(0, h_out - 1, min(max_lines, h_out)).round().astype(int))
        cols = np.unique(np.linspace(0, w_out - 1, min(max_lines, w_out)).round().astype(int))
        lines = [(panel[r], finite[r], r in (0, h_out - 1)) for r in rows]
        lines += [(panel[:, c], finite[:, c], c in (0, w_out - 1)) for c in cols]
        for line, ok, outline in lines:  # the outline of the sampled region is drawn thicker
            line = line[ok]
            if len(line) > 1:
                draw.line([tuple(p) for p in line.tolist()], fill=GRID_COLOUR, width=2 if outline else 1)
        if finite[0, 0]:  # the first output pixel, out[0, 0], so the output's orientation can be read
            px, py = panel[0, 0]
            draw.rectangle([px - 3, py - 3, px + 3, py + 3], outline=GRID_COLOUR, width=2)

    def png(self) -> bytes:
        """PNG bytes of :meth:`render` (fast compression: an explorer redraws on every step)."""
        buffer = io.BytesIO()
        Image.fromarray(self.render()).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()
