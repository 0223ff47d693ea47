"""The explorer of lesson 7: how the fused kernel cuts the output into programs, where one program reads, how
often its backward adds into the same input pixel, and the bytes fusing saves.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import torch

from ..gpu.indexing import num_programs, program_pixels, source_pixels
from ..gpu.traffic import sampler_traffic
from ..images import sample_image
from .common import _explorer, _matrix_html
from .raster import Canvas, to_rgb

__all__ = ["kernel_explorer", "BLOCKS"]

BLOCKS = (16, 32, 64, 128, 256)
PALETTE = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)], dtype=float)


def program_reads(theta: torch.Tensor, program: int, block: int, in_size: tuple[int, int],
                  out_size: tuple[int, int]) -> tuple[np.ndarray, int]:
    """``(hits, live)``: for program ``program``, how many of its bilinear corner reads land on each input pixel
    ``(H, W)`` – in the backward, the number of atomic adds into that pixel – and its number of live lanes."""
    h, w = in_size
    rows, cols, live = program_pixels(program, block, *out_size)
    x, y = source_pixels(theta.double(), rows[live], cols[live], in_size, out_size)
    hits = np.zeros((h, w), dtype=np.int64)
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = (torch.floor(x) + dx).long(), (torch.floor(y) + dy).long()
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            np.add.at(hits, (yi[inside].numpy(), xi[inside].numpy()), 1)
    return hits, int(live.sum())


def kernel_explorer(image: torch.Tensor | None = None, out_size: int = 24, batch: int = 256) -> widgets.VBox:
    """Pick ``BLOCK`` and a program of the fused affine kernel: see the output pixels it computes (left, the other
    programs faded), the input pixels it reads (right, red: how many of its corner reads – atomic adds in the
    backward – land on each), and the bytes one forward pass moves with and without the grid for a batch of
    ``batch`` images of the picture's size with ``channels`` channels.

    ``image: (1, C, H, W)`` (default: a 24-pixel grayscale photo); ``out_size``: the output's side.
    ``-> VBox`` (CSS class ``stn-kernel-explorer``).
    """
    image = sample_image("grace_hopper", size=24, gray=True) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    h, w = image.shape[-2:]
    out = (out_size, out_size)
    controls = {
        "block": widgets.Dropdown(options=list(BLOCKS), value=64, description="BLOCK"),
        "program": widgets.IntSlider(0, min=0, max=num_programs(*out, 64) - 1, description="program"),
        "channels": widgets.Dropdown(options=[1, 3, 64], value=1, description="channels"),
        "zoom": widgets.FloatLogSlider(1.0, base=2, min=-2.0, max=2.0, step=0.25, description="zoom"),
        "rotation": widgets.FloatSlider(0.0, min=-180.0, max=180.0, step=5.0, description="rotation °"),
    }

    def keep_program_in_range(change) -> None:  # a smaller BLOCK means more programs, and the other way round
        controls["program"].max = num_programs(*out, change["new"]) - 1

    controls["block"].observe(keep_program_in_range, names="value")

    def draw(v: dict) -> tuple[bytes, str, dict]:
        block, program = v["block"], min(v["program"], num_programs(*out, v["block"]) - 1)
        a = math.radians(v["rotation"])
        c, s = math.cos(a) / v["zoom"], math.sin(a) / v["zoom"]
        theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=torch.float64)
        ids = (np.arange(out_size * out_size) // block).reshape(out)
        tiles = PALETTE[ids % len(PALETTE)]
        tiles[ids != program] = 0.3 * tiles[ids != program] + 0.7 * 255
        hits, live = program_reads(theta, program, block, (h, w), out)
        picture = to_rgb(image).astype(float)
        red = np.array([255.0, 0.0, 0.0])
        alpha = np.where(hits > 0, 0.35 + 0.5 * hits / max(hits.max(), 1), 0.0)[..., None]
        picture = (1 - alpha) * picture + alpha * red
        canvas = Canvas(min_side=240)
        canvas.add(f"output: program {program} of {num_programs(*out, block)}", tiles.astype(np.uint8))
        canvas.add(f"input: {int((hits > 0).sum())} pixels read", picture.round().astype(np.uint8))
        png = canvas.png()
        unfused = sampler_traffic((batch, v["channels"], h, w), out)
        fused = sampler_traffic((batch, v["channels"], h, w), out, fused=True)
        saved = 1 - fused.total / unfused.total
        most = int(hits.max())
        html = (_matrix_html("theta", theta)
                + f"<div class='stn-kernel-numbers'>program {program}: {live} live lanes of {block}, reads "
                  f"{int((hits > 0).sum())} input pixels; the most-read one gets {most} of its corner reads "
                  f"(= atomic adds in the backward)<br>forward, {batch} images × {v['channels']} channel(s): "
                  f"{unfused.total / 1e6:.2f} MB with the grid, {fused.total / 1e6:.2f} MB fused – "
                  f"{saved:.0%} fewer bytes</div>")
        state = {"theta": theta, "programs": num_programs(*out, block), "live": live,
                 "pixels_read": int((hits > 0).sum()), "max_adds": most, "bytes_unfused": unfused.total,
                 "bytes_fused": fused.total, "saved": saved, **v, "program": program,
                 "layout": dict(canvas.boxes)}
        return png, html, state

    return _explorer("stn-kernel-explorer", controls, draw)
