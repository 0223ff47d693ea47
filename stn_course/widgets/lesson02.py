"""The explorer of lesson 2: a sampling grid, the padding mode and align_corners on a small image.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import math

import ipywidgets as widgets
import torch

from ..images import sample_image
from ..padding import PADDING_MODES
from .common import _explorer, _matrix_html, warp_picture

__all__ = ["sampling_explorer"]


def sampling_explorer(image: torch.Tensor | None = None, size: int = 32, out_size: int = 40) -> widgets.VBox:
    """Zoom/rotate a small image and compare nearest vs bilinear, the padding modes and ``align_corners``.

    ``theta = zoom⁻¹ · R(angle)`` in normalized coordinates (zoom < 1 reads outside the image and shows the padding
    mode, and the input panel grows a grey margin so the whole grid shows, the image's extent framed; zoom > 1
    magnifies and shows the interpolation). ``image: (1, C, H, W)``, default: Grace Hopper, ``size`` pixels high, in
    grayscale (small enough that its pixels show, large enough to recognise); the output is
    ``out_size × out_size``. ``-> VBox`` (CSS class ``stn-sampling-explorer``).
    """
    image = sample_image("grace_hopper", size=size, gray=True) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    controls = {
        "mode": widgets.ToggleButtons(options=["bilinear", "nearest"], value="bilinear", description="mode"),
        "padding_mode": widgets.Dropdown(options=list(PADDING_MODES), value="zeros", description="padding_mode"),
        "align_corners": widgets.Checkbox(False, description="align_corners"),
        "zoom": widgets.FloatLogSlider(0.5, base=2, min=-2.0, max=2.0, step=0.05, description="zoom"),
        "rotation": widgets.FloatSlider(0.0, min=-180.0, max=180.0, step=5.0, description="rotation °"),
    }

    def draw(v: dict) -> tuple[bytes, str, dict]:
        a = math.radians(v["rotation"])
        c, s = math.cos(a) / v["zoom"], math.sin(a) / v["zoom"]
        theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=torch.float64)
        png, state = warp_picture(image, theta, (out_size, out_size), v["align_corners"], v["padding_mode"],
                                  v["mode"], ("input and sampling grid",
                                              f"{v['mode']}, padding_mode={v['padding_mode']!r}"))
        html = _matrix_html("theta", theta)
        return png, html, {"theta": theta, **v, **state}

    return _explorer("stn-sampling-explorer", controls, draw)
