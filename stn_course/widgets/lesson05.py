"""The explorer of lesson 5: what a trained spatial transformer does to each test digit.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations


import ipywidgets as widgets
import torch

from .. import plotting
from .common import _explorer, _matrix_html, render_png

__all__ = ["transformer_explorer"]


def transformer_explorer(model: torch.nn.Module, dataset, dpi: int = 72) -> widgets.VBox:
    """Browse a dataset through a trained ST-CNN: the input with the learned sampling grid, the transformer's
    output, the prediction and ``theta`` read as zoom / rotation / shift.

    ``model``: an :class:`stn_course.training.STCNN`; ``dataset[i] -> (x (1, S, S), label)``. ``-> VBox`` (CSS class
    ``stn-transformer-explorer``), ``state`` holds ``theta``, ``prediction`` and ``label`` of the current digit.
    """
    from ..training import theta_statistics

    style = {"description_width": "80px"}
    controls = {
        "index": widgets.IntSlider(0, min=0, max=len(dataset) - 1, description="test digit", style=style),
        "grid": widgets.Checkbox(True, description="draw grid", style=style),
    }

    def draw(v: dict) -> tuple[bytes, str, dict]:
        x, label = dataset[v["index"]]
        x = x.unsqueeze(0)
        model.eval()
        with torch.no_grad():
            out, theta, grid = model.transform(x)
            prediction = int(model(x).argmax(1))
        if v["grid"]:
            fig = plotting.plot_transformer_view(x, out, grid, n=1, titles=[f"label {int(label)}"], size=2.6)
        else:
            fig = plotting.show_images({f"input, label {int(label)}": x[0], "transformer output": out[0]}, size=2.6)
        html = f"<b>prediction: {prediction}</b> (label {int(label)}) &nbsp; "
        if theta.shape[1:] == (2, 3):
            zoom, rotation, shift = theta_statistics(theta)
            html += (f"zoom {zoom.item():.2f}, rotation {rotation.item():+.1f}°, shift "
                     f"({shift[0, 0].item():+.2f}, {shift[0, 1].item():+.2f})<br>")
            html += _matrix_html("theta", theta[0])
        return render_png(fig, dpi), html, {"theta": theta[0], "prediction": prediction, "label": int(label)}

    return _explorer("stn-transformer-explorer", controls, draw, columns=2)
