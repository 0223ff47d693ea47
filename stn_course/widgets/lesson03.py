"""The explorer of lesson 3: warps of every transformer family (affine, projective, thin-plate spline).

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import math

import ipywidgets as widgets
import torch

from ..images import sample_image
from .common import _explorer, _matrix_html
from .raster import Canvas

__all__ = ["warp_explorer"]


def warp_explorer(image: torch.Tensor | None = None, size: int = 64) -> widgets.VBox:
    """Bend an image with a projective or thin-plate-spline grid and see the grid on the input next to the output.

    ``projective``: two sliders set the perspective row ``H[2, :2]`` of a homography. ``tps``: the first slider sets
    how far the 16 source control points move, the second turns the direction field smoothly (a blend
    ``cos φ · A + sin φ · B`` of two fixed random fields, φ = π · slider / 0.8), so neighbouring values give
    neighbouring fields. ``-> VBox`` (CSS class
    ``stn-warp-explorer``); ``state`` holds the ``matrix`` (``H (3, 3)`` or control points ``(16, 2)``) and ``grid``.
    """
    from ..grids import projective_grid, tps_control_points, tps_grid
    from ..sampling import bilinear_sample, grid_to_pixels

    image = sample_image("grace_hopper", size=(size, size)) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    image = image.double()
    controls = {
        "transform": widgets.Dropdown(options=["projective", "tps"], value="tps", description="transform"),
        "a": widgets.FloatSlider(0.2, min=-0.8, max=0.8, step=0.05, description="H[2,0] / bend"),
        "b": widgets.FloatSlider(0.0, min=-0.8, max=0.8, step=0.05, description="H[2,1] / turn"),
    }

    def draw(v: dict) -> tuple[bytes, str, dict]:
        size4 = (1, image.shape[1], image.shape[2], image.shape[3])
        if v["transform"] == "projective":
            matrix = torch.eye(3, dtype=torch.float64)
            matrix[2, 0], matrix[2, 1] = v["a"], v["b"]
            grid = projective_grid(matrix.unsqueeze(0), size4)
            html = _matrix_html("H", matrix)
        else:
            target = tps_control_points(4, 4, dtype=torch.float64)
            g = torch.Generator().manual_seed(0)
            field_a, field_b = torch.randn(2, 16, 2, generator=g, dtype=torch.float64)
            phi = math.pi * v["b"] / 0.8  # a smooth turn of the direction field, not a new random draw
            matrix = target + v["a"] * 0.5 * (math.cos(phi) * field_a + math.sin(phi) * field_b)
            grid = tps_grid(matrix.unsqueeze(0), size4)
            html = "source control points (x, y): " + ", ".join(f"({x:+.2f}, {y:+.2f})" for x, y in matrix.tolist())
        out = bilinear_sample(image, grid)
        canvas = Canvas().add("input and the grid", image, grid=grid_to_pixels(grid, image.shape[-2:]),
                              max_lines=10).add("output", out)
        return canvas.png(), html, {"matrix": matrix, "grid": grid, "output": out, "layout": dict(canvas.boxes)}

    return _explorer("stn-warp-explorer", controls, draw)
