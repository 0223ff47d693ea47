"""The explorer of lesson 5: what a spatial transformer does to each test digit – live while it trains, and after.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import time
from typing import Any

import ipywidgets as widgets
import torch

from ..sampling import grid_to_pixels
from .common import _explorer, _matrix_html
from .raster import Canvas

__all__ = ["transformer_explorer"]


def transformer_explorer(model: torch.nn.Module, dataset, history: dict | None = None,
                         refresh_s: float = 1.0) -> widgets.VBox:
    """Browse a dataset through an ST-CNN: the input with the predicted sampling grid, the transformer's output,
    the prediction, ``theta`` read as zoom / rotation / shift, and the error curves of its training.

    Live: pass ``box.on_progress`` to :func:`stn_course.training.fit` as its ``callback`` and the picture follows
    the training (redrawn at most every ``refresh_s`` seconds and at the end of every epoch, so it costs training
    little time). Afterwards it is an explorer like the others – also on a model saved with
    :func:`stn_course.training.save` and loaded with :func:`stn_course.training.load` (pass the ``history`` it was
    saved with to see its error curves).

    ``model``: an :class:`stn_course.training.STCNN`; ``dataset[i] -> (x (1, S, S), label)``. ``-> VBox`` (CSS class
    ``stn-transformer-explorer``); ``state`` holds ``theta``, ``output``, ``prediction``, ``label``, the training
    ``history`` seen so far and the ``layout`` of the picture.
    """
    from ..training import theta_statistics

    if not hasattr(model, "transform"):
        raise TypeError(f"model: expected an ST-CNN with .transform (stn_course.training.STCNN), got "
                        f"{type(model).__name__}")
    style = {"description_width": "80px"}
    controls = {
        "index": widgets.IntSlider(0, min=0, max=len(dataset) - 1, description="test digit", style=style),
        "grid": widgets.Checkbox(True, description="draw grid", style=style),
    }
    training: dict[str, Any] = {"history": history, "status": "", "last": 0.0}
    align_corners = bool(getattr(getattr(model, "transformer", None), "align_corners", False))

    def draw(v: dict) -> tuple[bytes, str, dict]:
        x, label = dataset[v["index"]]
        x = x.unsqueeze(0)
        was_training = model.training  # (live: the model is training; a picture must not change it)
        with torch.no_grad():
            out, theta, grid = model.transform(x)
            model.eval()
            prediction = int(model(x).argmax(1))
        model.train(was_training)
        canvas = Canvas(min_side=168)
        pixels = grid_to_pixels(grid[0], x.shape[-2:], align_corners) if v["grid"] else None
        canvas.add(f"input, label {int(label)}", x[0], grid=pixels, max_lines=8)
        canvas.add(f"transformer output -> {prediction}", out[0])
        history = training["history"]
        if history and history.get("epoch"):
            series = {"train error %": history["train_error"]}
            if history.get("test_error"):
                series["test error %"] = history["test_error"]
            canvas.add_curves("error along training", series, size=168)
        png = canvas.png()
        html = f"<b>prediction: {prediction}</b> (label {int(label)}) &nbsp; {training['status']}<br>"
        if theta.shape[1:] == (2, 3):
            zoom, rotation, shift = theta_statistics(theta)
            html += (f"zoom {zoom.item():.2f}, rotation {rotation.item():+.1f}°, shift "
                     f"({shift[0, 0].item():+.2f}, {shift[0, 1].item():+.2f})<br>")
            html += _matrix_html("theta", theta[0])
        return png, html, {"theta": theta[0], "output": out, "prediction": prediction, "label": int(label),
                           "history": history, "layout": dict(canvas.boxes)}

    box = _explorer("stn-transformer-explorer", controls, draw, columns=2)

    def on_progress(info: dict) -> None:
        """``training.fit``'s callback: remember the history, redraw now and then."""
        training["history"] = info.get("history")
        steps = f"/{info['steps']}" if info.get("steps") else ""
        training["status"] = (f"training: epoch {info['epoch'] + 1}, step {info['step']}{steps}, "
                              f"loss {info['loss']:.3f}")
        now = time.perf_counter()
        if info.get("epoch_end") or now - training["last"] >= refresh_s:
            training["last"] = now
            box.update()

    box.on_progress = on_progress
    return box
