"""The explorer of lesson 1: an affine motion built from sliders, drawn with its matrices.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import math

import ipywidgets as widgets
import torch

from .. import affine
from ..images import sample_image
from .common import _explorer, _matrix_html, warp_picture

__all__ = ["affine_explorer"]


def affine_explorer(image: torch.Tensor | None = None, size: int = 48) -> widgets.VBox:
    """Sliders for rotation, scale, shear and translation of the *content*, about the image centre.

    The motion is built in pixel space as ``M = T(c) · T(t) · R(angle) · Sh(shear) · S(scale) · T(-c)``; the sampler
    needs the inverse map, so the picture uses ``theta = pixel_to_theta(invert(M))`` and shows both matrices.
    ``image: (1, C, H, W)``, default: Grace Hopper at ``size`` pixels. ``-> VBox`` (CSS class
    ``stn-affine-explorer``), ``state["theta"]`` is the current ``(2, 3)`` theta, ``state["output"]`` the picture's
    output ``(1, C, H, W)`` and ``state["layout"]`` where each panel sits in the PNG.
    """
    image = sample_image("grace_hopper", size=size) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    h, w = image.shape[-2:]
    controls = {
        "rotation": widgets.FloatSlider(0.0, min=-180.0, max=180.0, step=5.0, description="rotation °"),
        "scale": widgets.FloatLogSlider(1.0, base=2, min=-1.5, max=1.5, step=0.05, description="scale"),
        "shear": widgets.FloatSlider(0.0, min=-1.0, max=1.0, step=0.05, description="shear x"),
        "tx": widgets.FloatSlider(0.0, min=-(w // 2), max=w // 2, step=1.0, description="tx (px)"),
        "ty": widgets.FloatSlider(0.0, min=-(h // 2), max=h // 2, step=1.0, description="ty (px)"),
        "align_corners": widgets.Checkbox(False, description="align_corners"),
    }
    centre_x, centre_y = (w - 1) / 2, (h - 1) / 2

    def draw(v: dict) -> tuple[bytes, str, dict]:
        f64 = lambda value: torch.tensor(float(value), dtype=torch.float64)  # noqa: E731 - exact matrices
        motion = affine.compose(
            affine.translation(f64(centre_x + v["tx"]), f64(centre_y + v["ty"])),
            affine.rotation(f64(math.radians(v["rotation"]))),
            affine.shear(f64(v["shear"])),
            affine.scaling(f64(v["scale"])),
            affine.translation(f64(-centre_x), f64(-centre_y)),
        )
        theta = affine.pixel_to_theta(affine.invert(motion), (h, w), align_corners=v["align_corners"])
        png, state = warp_picture(image, theta, (h, w), v["align_corners"], "zeros", "bilinear",
                                  ("input: where each output pixel reads", "output"))
        html = _matrix_html("motion M (pixels)", motion) + _matrix_html("theta = normalize(M⁻¹)", theta)
        return png, html, {"motion": motion, "theta": theta, **state}

    return _explorer("stn-affine-explorer", controls, draw)
