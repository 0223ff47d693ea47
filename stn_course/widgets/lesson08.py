"""The explorer of lesson 8: the sign generator's distortion, and what a trained ST-CNN makes of it.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import ipywidgets as widgets
import torch

from ..data.signs import ANGLE, CLASSES, PERSPECTIVE, SCALE, make_signs, rectify
from ..sampling import grid_to_pixels
from .common import _explorer
from .raster import Canvas

__all__ = ["sign_explorer"]


def sign_explorer(model: torch.nn.Module | None = None, out_size: int = 28) -> widgets.VBox:
    """Draw one sign with the generator's knobs – its class, its size, the in-plane turn, how slanted the view is
    (the corners' noise), the random draw – and show it rectified by its true corners (the homography of the
    lesson). With a trained ST-CNN (``model``, an :class:`stn_course.training.STCNN` on 3-channel canvases), also
    its sampling grid on the input, what its transformer shows, and its prediction.

    ``-> VBox`` (CSS class ``stn-sign-explorer``); ``state`` holds ``label``, ``corners (4, 2)``, ``image``
    ``(3, S, S)``, ``rectified (3, out_size, out_size)`` and, with a model, ``prediction`` and ``params``.
    """
    controls = {
        "label": widgets.IntSlider(0, min=0, max=len(CLASSES) - 1, description="class"),
        "scale": widgets.FloatSlider(sum(SCALE) / 2, min=0.15, max=0.8, step=0.05, description="half-side"),
        "angle": widgets.FloatSlider(ANGLE, min=0.0, max=90.0, step=5.0, description="max turn °"),
        "perspective": widgets.FloatSlider(PERSPECTIVE, min=0.0, max=0.2, step=0.01, description="slant"),
        "seed": widgets.IntSlider(0, min=0, max=99, description="draw"),
        "clutter": widgets.Checkbox(True, description="clutter"),
    }

    def draw(v: dict) -> tuple[bytes, str, dict]:
        images, labels, corners = make_signs(len(CLASSES), seed=v["seed"], scale=(v["scale"], v["scale"]),
                                             angle=v["angle"], perspective=v["perspective"], clutter=v["clutter"])
        i = int((labels == v["label"]).nonzero()[0])  # len(CLASSES) signs hold every class once
        image, label = images[i:i + 1], int(labels[i])
        canvas = Canvas(min_side=200)
        state = {"label": label, "corners": corners[i], "image": image[0]}
        grid_pixels, html = None, f"class {label}: {' '.join(CLASSES[label])}"
        if model is not None:
            out, params, grid = model.transform(image)
            was_training = model.training
            model.eval()
            with torch.no_grad():
                prediction = int(model(image).argmax(1))
            model.train(was_training)
            grid_pixels = grid_to_pixels(grid[0], image.shape[-2:], False)
            state.update(prediction=prediction, params=params[0])
            html += f" &nbsp; <b>ST-CNN: {prediction}</b> ({'right' if prediction == label else 'wrong'})"
        canvas.add("input", image[0], grid=grid_pixels, max_lines=8)
        state["rectified"] = rectify(image, corners[i:i + 1], out_size)[0]
        canvas.add("rectified (true corners)", state["rectified"])
        if model is not None:
            canvas.add("the ST-CNN's view", out[0])
        return canvas.png(), html, {**state, "layout": dict(canvas.boxes)}

    return _explorer("stn-sign-explorer", controls, draw)
