"""Fast pictures for the explorers: tensors straight to PNG bytes, without Matplotlib (every lesson's explorers).

An explorer redraws on every slider step, so its picture must take milliseconds: Matplotlib's figure, layout and
anti-aliased rendering take 100–300 ms for two 256×256 panels, this takes a few. A :class:`Canvas` places panels
side by side, each an image (nearest-neighbour magnified so a small image is still big enough to see) with an
optional sampling grid drawn over it, under a title; :meth:`Canvas.png` encodes the whole with Pillow.
Panels keep their placement in :attr:`Canvas.boxes`, so a test (or a browser test probing pixels) can find an
image's pixels again: panel pixel ``(i, j)`` of a magnified image is image pixel ``(i // f, j // f)``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..plotting.common import to_numpy_image

__all__ = ["to_rgb", "Canvas", "GRID_COLOUR"]

GRID_COLOUR = (255, 64, 64)
CURVE_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
BACKGROUND = (255, 255, 255)
TITLE_HEIGHT = 16
GAP = 12


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
        legend = 12 * len(series)  # one line per series under the axes
        left, top, right, bottom = 30, 8, size - 8, size - 22 - legend
        draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
        values = [v for vs in series.values() for v in vs if np.isfinite(v)]
        top_value = ymax if ymax is not None else max(values + [1e-9])
        length = max([len(vs) for vs in series.values()] + [2])
        font = ImageFont.load_default()
        draw.text((2, top - 2), f"{top_value:.0f}", fill=(0, 0, 0), font=font)
        draw.text((2, bottom - 10), "0", fill=(0, 0, 0), font=font)
        draw.text((left, bottom + 4), f"epochs 1 to {max(length, 1)}", fill=(0, 0, 0), font=font)
        for k, (name, vs) in enumerate(series.items()):
            colour = CURVE_COLOURS[k % len(CURVE_COLOURS)]
            xs = [left + (right - left) * i / max(length - 1, 1) for i in range(len(vs))]
            ys = [bottom - (bottom - top) * min(v, top_value) / top_value for v in vs]
            if len(vs) > 1:
                draw.line(list(zip(xs, ys)), fill=colour, width=2)
            for x, y in zip(xs, ys):
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
            last = f" {vs[-1]:.1f}" if vs else ""
            draw.text((left, bottom + 18 + 12 * k), f"{name}{last}", fill=colour, font=font)
        self.panels.append((title, np.asarray(panel)))
        self._unscaled.add(len(self.panels) - 1)
        return self

    def render(self) -> np.ndarray:
        """The canvas as ``uint8 (H, W, 3)`` (panels magnified, grids drawn, titles written)."""
        scaled = []
        for index, (title, rgb) in enumerate(self.panels):
            f = 1 if index in self._unscaled else self.factor(rgb)
            scaled.append((title, np.repeat(np.repeat(rgb, f, axis=0), f, axis=1), f))
        height = TITLE_HEIGHT + max(s.shape[0] for _, s, _ in scaled)
        width = sum(s.shape[1] for _, s, _ in scaled) + GAP * (len(scaled) - 1)
        canvas = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default()
        x = 0
        self.boxes = {}
        for index, (title, big, f) in enumerate(scaled):
            panel = Image.fromarray(big)
            for which, points, max_lines in self._grids:  # drawn on the panel alone: clipped to it
                if which == index:
                    self._draw_grid(ImageDraw.Draw(panel), points, f, max_lines)
            canvas.paste(panel, (x, TITLE_HEIGHT))
            draw.text((x + 2, 2), title, fill=(0, 0, 0), font=font)
            self.boxes[title] = (x, TITLE_HEIGHT, big.shape[1], big.shape[0], f)
            x += big.shape[1] + GAP
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
