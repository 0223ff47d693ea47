"""The explorers of lesson 6: the offset layout, and where a deformable CNN reads – live while it trains, and after.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import contextlib
import math

import ipywidgets as widgets
import torch

from .. import plotting
from ..images import sample_image
from .common import _explorer, render_png

__all__ = ["LAYOUTS", "offset_layout_explorer", "deformable_explorer", "first_correct"]

LAYOUTS = ("(dy, dx) interleaved – torchvision", "(dx, dy) interleaved – bug", "blocked – bug")


def _repack(offset: torch.Tensor, kernel: int, layout: str) -> torch.Tensor:
    """Pack correct offsets the way a buggy producer would; ``deform_conv2d`` then reads them as torchvision does."""
    from ..deform import pack_offsets, unpack_offsets

    dy, dx = unpack_offsets(offset, kernel)
    if layout == LAYOUTS[1]:
        return pack_offsets(dx, dy)
    if layout == LAYOUTS[2]:
        return torch.cat([dy, dx], dim=2).flatten(1, 2)
    return offset


def offset_layout_explorer(image: torch.Tensor | None = None, size: int = 24, dpi: int = 72) -> widgets.VBox:
    """A 3×3 deformable convolution whose offsets come from one rotation/scale about the chosen output location
    (:func:`stn_course.deform.offsets_from_affine`), packed in the chosen layout and read by ``deform_conv2d``.

    Left: where the offsets meant to read; right: where the layer actually reads. With torchvision's layout they
    agree; the two popular bugs scramble the taps. ``image: (1, 1, H, W)``, default: a grayscale photo of ``size``
    pixels. ``-> VBox`` (CSS class ``stn-offset-layout-explorer``); ``state`` holds ``offset`` (at the location),
    ``intended`` and ``read`` positions ``(9, 2)``.
    """
    from ..deform import offsets_from_affine, sampling_positions

    image = sample_image("grace_hopper", size=size, gray=True) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[:2] != (1, 1):
        raise ValueError(f"image: expected a tensor of shape (1, 1, H, W), got {getattr(image, 'shape', image)}")
    h, w = image.shape[-2:]
    style = {"description_width": "90px"}
    slow = {"style": style, "continuous_update": False}  # a redraw takes long: on release
    controls = {
        "layout": widgets.Dropdown(options=list(LAYOUTS), value=LAYOUTS[0], description="layout", style=style),
        "rotation": widgets.FloatSlider(30.0, min=-180.0, max=180.0, step=5.0, description="rotation °",
                                        **slow),
        "scale": widgets.FloatSlider(1.5, min=0.3, max=3.0, step=0.1, description="scale", **slow),
        "y": widgets.IntSlider(h // 2, min=0, max=h - 1, description="location y", **slow),
        "x": widgets.IntSlider(w // 2, min=0, max=w - 1, description="location x", **slow),
        "dilation": widgets.IntSlider(2, min=1, max=4, description="dilation", **slow),
    }

    def draw(v: dict) -> tuple[bytes, str, dict]:
        a, s, d = math.radians(v["rotation"]), v["scale"], v["dilation"]
        c = torch.tensor([float(v["x"]), float(v["y"])], dtype=torch.float64)
        rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64) * s
        matrix = torch.eye(3, dtype=torch.float64)
        matrix[:2, :2] = rot
        matrix[:2, 2] = c - rot @ c  # rotate and scale about the location
        offset = offsets_from_affine(matrix[None], h, w, 3, padding=d, dilation=d)
        intended = sampling_positions(offset, 3, padding=d, dilation=d)[0, 0, :, v["y"], v["x"]]
        read = sampling_positions(_repack(offset, 3, v["layout"]), 3, padding=d, dilation=d)[0, 0, :, v["y"], v["x"]]
        regular = sampling_positions(torch.zeros_like(offset), 3, padding=d, dilation=d)[0, 0, :, v["y"], v["x"]]
        centre = (v["y"], v["x"])
        fig = plotting.plot_sampling_panels([image[0, 0]] * 2, [intended, read],
                                            ["intended samples", f"read by deform_conv2d: {v['layout']}"],
                                            centres=[centre, centre], arrows_from=[regular, regular], size=3.2)
        error = (read - intended).norm(dim=1).max().item()
        html = (f"largest distance between intended and read sample: <b>{error:.2f} px</b> "
                f"(taps coloured by index k = 3·i + j)")
        at = offset[0, :, v["y"], v["x"]]
        return render_png(fig, dpi), html, {"offset": at, "intended": intended, "read": read, "error": error}

    return _explorer("stn-offset-layout-explorer", controls, draw)


def deformable_explorer(model: torch.nn.Module, dataset, dpi: int = 72, refresh_s: float = 2.0) -> widgets.VBox:
    """Browse test digits through a :class:`stn_course.deform_net.DeformableCNN`: the 81 image pixels that one
    output location of its last deformable layer reads (through both layers), next to a plain convolution's.

    Trained beforehand, or live: ``box.start_training(train_loader, test_loader, **fit_kwargs)`` trains it in the
    background and returns the run at once (:class:`~stn_course.widgets.lesson05.LiveTraining`: a status line, CSS
    class ``stn-training-status``, says how far it got; the picture is redrawn every ``refresh_s`` seconds and at
    every epoch's end). When that run ends, and the digit slider was not moved meanwhile, the explorer moves to the
    first digit of ``dataset`` the trained network classifies correctly (the status line says so). A redraw reads
    the model in ``eval()`` mode between training steps and puts its mode back.

    ``dataset[i] -> (x (1, S, S), label)``. ``-> VBox`` (CSS class ``stn-deformable-explorer``); ``state`` holds the
    ``points (81, 2)``, their ``spread`` (px), the ``prediction`` and the ``label``.
    """
    from ..deform_net import trace_sampling_points
    from .lesson05 import LiveTraining

    x0, _ = dataset[0]
    grid = x0.shape[-1] // 4  # the last layer's output is S/4 × S/4
    style = {"description_width": "80px"}
    slow = {"style": style, "continuous_update": False}  # a redraw takes long: on release
    controls = {
        "index": widgets.IntSlider(0, min=0, max=len(dataset) - 1, description="test digit", **slow),
        "y": widgets.IntSlider(grid // 2, min=0, max=grid - 1, description="output y", **slow),
        "x": widgets.IntSlider(grid // 2, min=0, max=grid - 1, description="output x", **slow),
    }
    live = LiveTraining(model, refresh_s)

    def draw(v: dict) -> tuple[bytes, str, dict]:
        x, label = dataset[v["index"]]
        x = x.unsqueeze(0)
        with live.lock, torch.no_grad():  # between training steps; the mode it trains in is put back
            was_training = model.training
            model.eval()
            try:
                points = model.sampling_points(x, v["y"], v["x"])[0]
                prediction = int(model(x).argmax(1))
                maps = model.features(x)
            finally:
                model.train(was_training)
        plain = [torch.nn.Conv2d(1, 1, 3, padding=1) for _ in model.layers]
        with torch.no_grad():
            regular = trace_sampling_points(plain, maps[:2], v["y"], v["x"], pools=(2, 2))[0]
        centre = (4 * v["y"] + 1.5, 4 * v["x"] + 1.5)
        fig = plotting.plot_sampling_panels([x[0, 0]] * 2, [regular, points],
                                            ["plain convolutions", f"deformable (prediction {prediction})"],
                                            centres=[centre, centre], taps=9, size=3.2)
        spread = ((points - points.mean(0)) ** 2).sum(1).mean().sqrt().item()
        html = f"label {int(label)}, prediction <b>{prediction}</b>; spread of the 81 samples {spread:.1f} px"
        return render_png(fig, dpi), html, {"points": points, "spread": spread, "prediction": prediction,
                                            "label": int(label)}

    box = _explorer("stn-deformable-explorer", controls, draw)
    live.attach(box)
    start = box.start_training

    def start_training(train_loader, test_loader=None, **fit_kwargs):
        shown = controls["index"].value

        def show_a_correct_digit(run) -> None:
            if run.error is not None or controls["index"].value != shown:
                return  # failed, or the learner has moved on: leave the slider alone
            found = first_correct(model, dataset, live.lock)
            if found is None:
                live.set_status(f"{live.text}; it classifies none of these digits correctly")
                return
            controls["index"].value = found
            live.set_status(f"{live.text}; showing test digit {found}, the first it classifies correctly")

        return start(train_loader, test_loader, then=show_a_correct_digit, **fit_kwargs)

    box.start_training = start_training
    return box


def first_correct(model: torch.nn.Module, dataset, lock=None, batch: int = 256) -> int | None:
    """Index of the first item of ``dataset`` (``dataset[i] -> (x (1, S, S), label)``) that ``model`` classifies
    correctly (in ``eval()`` mode, put back afterwards; ``lock`` held while it reads the model), or ``None``."""
    for begin in range(0, len(dataset), batch):
        items = [dataset[i] for i in range(begin, min(begin + batch, len(dataset)))]
        x = torch.stack([item[0] for item in items])
        labels = torch.as_tensor([int(item[1]) for item in items])
        with lock or contextlib.nullcontext(), torch.no_grad():
            was_training = model.training
            model.eval()
            try:
                right = (model(x).argmax(1) == labels).nonzero()
            finally:
                model.train(was_training)
        if len(right):
            return begin + int(right[0])
    return None
