"""Interactive explorers (ipywidgets) for the lessons; sections below are ordered by lesson.

Each function builds controls, draws with a :mod:`stn_course.plotting` function, shows the figure as a PNG in an
``ipywidgets.Image`` and **returns the widget** (display it by leaving it as the last expression of a cell). Every
explorer and each of its controls carries a CSS class (``stn-…``) so browser tests can find them. The returned box
also has two plain attributes for tests and curious learners: ``controls`` (name -> control widget) and ``state``
(the numbers behind the current picture, e.g. ``theta``), updated on every change.
"""
from __future__ import annotations

import math
from typing import Callable

import ipywidgets as widgets
import torch

from . import affine, plotting
from .images import sample_image
from .sampling import PADDING_MODES

__all__ = ["render_png", "affine_explorer", "sampling_explorer", "transformer_explorer"]


def render_png(fig, dpi: int = 72) -> bytes:
    """PNG bytes of a Matplotlib figure (closed afterwards, so it is not shown a second time)."""
    return plotting.figure_to_png(fig, dpi=dpi, close=True)


def _matrix_html(name: str, matrix: torch.Tensor) -> str:
    rows = "".join("<tr>" + "".join(f"<td style='padding:0 6px;text-align:right'>{v:+.3f}</td>" for v in row)
                   + "</tr>" for row in matrix.tolist())
    return f"<div style='display:inline-block;margin-right:18px'><b>{name}</b><table>{rows}</table></div>"


def _explorer(css: str, controls: dict[str, widgets.Widget], draw: Callable[[dict], tuple[bytes, str, dict]],
              columns: int = 3) -> widgets.VBox:
    """Lay out ``controls``, an Image and an HTML caption; redraw on every change."""
    image = widgets.Image(format="png")
    image.add_class(f"{css}-figure")
    caption = widgets.HTML()
    caption.add_class(f"{css}-matrices")
    for name, control in controls.items():
        control.add_class(f"stn-control-{name.replace('_', '-')}")
    names = list(controls)
    rows = [widgets.HBox([controls[n] for n in names[i:i + columns]]) for i in range(0, len(names), columns)]
    box = widgets.VBox(rows + [image, caption])
    box.add_class("stn-explorer")
    box.add_class(css)
    box.controls = controls
    box.state = {}
    box.figure = image
    box.caption = caption

    def update(_change=None) -> None:
        values = {name: control.value for name, control in controls.items()}
        png, html, state = draw(values)
        renders = box.state.get("renders", 0) + 1
        box.state.clear()
        box.state.update(state, renders=renders)
        image.value = png
        caption.value = html

    for control in controls.values():
        control.observe(update, names="value")
    box.update = update
    update()
    return box


# ----------------------------------------------------------------------------------------------------------------
# Lesson 1 – affine transforms
# ----------------------------------------------------------------------------------------------------------------


def affine_explorer(image: torch.Tensor | None = None, size: int = 48, dpi: int = 72) -> widgets.VBox:
    """Sliders for rotation, scale, shear and translation of the *content*, about the image centre.

    The motion is built in pixel space as ``M = T(c) · T(t) · R(angle) · Sh(shear) · S(scale) · T(-c)``; the sampler
    needs the inverse map, so the picture uses ``theta = pixel_to_theta(invert(M))`` and shows both matrices.
    ``image: (1, C, H, W)``, default: Grace Hopper at ``size`` pixels. ``-> VBox`` (CSS class
    ``stn-affine-explorer``), ``state["theta"]`` is the current ``(2, 3)`` theta.
    """
    image = sample_image("grace_hopper", size=size) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    h, w = image.shape[-2:]
    style = {"description_width": "80px"}
    controls = {
        "rotation": widgets.FloatSlider(0.0, min=-180.0, max=180.0, step=5.0, description="rotation °", style=style),
        "scale": widgets.FloatLogSlider(1.0, base=2, min=-1.5, max=1.5, step=0.05, description="scale", style=style),
        "shear": widgets.FloatSlider(0.0, min=-1.0, max=1.0, step=0.05, description="shear x", style=style),
        "tx": widgets.FloatSlider(0.0, min=-w / 2, max=w / 2, step=0.5, description="tx (px)", style=style),
        "ty": widgets.FloatSlider(0.0, min=-h / 2, max=h / 2, step=0.5, description="ty (px)", style=style),
        "align_corners": widgets.Checkbox(False, description="align_corners", style=style),
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
        fig = plotting.plot_warp(image.double(), theta, align_corners=v["align_corners"],
                                 titles=("input: where each output pixel reads", "output"))
        html = _matrix_html("motion M (pixels)", motion) + _matrix_html("theta = normalize(M⁻¹)", theta)
        return render_png(fig, dpi), html, {"motion": motion, "theta": theta}

    return _explorer("stn-affine-explorer", controls, draw)


# ----------------------------------------------------------------------------------------------------------------
# Lesson 2 – sampling grids and bilinear interpolation
# ----------------------------------------------------------------------------------------------------------------


def sampling_explorer(image: torch.Tensor | None = None, size: int = 20, out_size: int = 40,
                      dpi: int = 72) -> widgets.VBox:
    """Zoom/rotate a small image and compare nearest vs bilinear, the padding modes and ``align_corners``.

    ``theta = zoom⁻¹ · R(angle)`` in normalized coordinates (zoom < 1 reads outside the image and shows the padding
    mode; zoom > 1 magnifies and shows the interpolation). ``image: (1, C, H, W)``, default: a ``size``-pixel
    grayscale photo; the output is ``out_size × out_size``. ``-> VBox`` (CSS class ``stn-sampling-explorer``).
    """
    image = sample_image("grace_hopper", size=size, gray=True) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    style = {"description_width": "95px"}
    controls = {
        "mode": widgets.ToggleButtons(options=["bilinear", "nearest"], value="bilinear", description="mode",
                                      style=style),
        "padding_mode": widgets.Dropdown(options=list(PADDING_MODES), value="zeros", description="padding_mode",
                                         style=style),
        "align_corners": widgets.Checkbox(False, description="align_corners", style=style),
        "zoom": widgets.FloatLogSlider(0.6, base=2, min=-2.0, max=2.0, step=0.05, description="zoom", style=style),
        "rotation": widgets.FloatSlider(0.0, min=-180.0, max=180.0, step=5.0, description="rotation °",
                                        style=style),
    }

    def draw(v: dict) -> tuple[bytes, str, dict]:
        a = math.radians(v["rotation"])
        c, s = math.cos(a) / v["zoom"], math.sin(a) / v["zoom"]
        theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=torch.float64)
        fig = plotting.plot_warp(image.double(), theta, out_size=(out_size, out_size),
                                 align_corners=v["align_corners"], padding_mode=v["padding_mode"], mode=v["mode"],
                                 titles=("input and sampling grid", f"{v['mode']}, padding_mode={v['padding_mode']!r}"))
        html = _matrix_html("theta", theta)
        return render_png(fig, dpi), html, {"theta": theta, **v}

    return _explorer("stn-sampling-explorer", controls, draw)


# ----------------------------------------------------------------------------------------------------------------
# Lesson 5 – training spatial transformers
# ----------------------------------------------------------------------------------------------------------------


def transformer_explorer(model: torch.nn.Module, dataset, dpi: int = 72) -> widgets.VBox:
    """Browse a dataset through a trained ST-CNN: the input with the learned sampling grid, the transformer's
    output, the prediction and ``theta`` read as zoom / rotation / shift.

    ``model``: an :class:`stn_course.training.STCNN`; ``dataset[i] -> (x (1, S, S), label)``. ``-> VBox`` (CSS class
    ``stn-transformer-explorer``), ``state`` holds ``theta``, ``prediction`` and ``label`` of the current digit.
    """
    from .training import theta_statistics

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


# ----------------------------------------------------------------------------------------------------------------
# Lesson 6 – deformable convolution
# ----------------------------------------------------------------------------------------------------------------

__all__ += ["offset_layout_explorer", "deformable_explorer"]

LAYOUTS = ("(dy, dx) interleaved – torchvision", "(dx, dy) interleaved – bug", "blocked – bug")


def _repack(offset: torch.Tensor, kernel: int, layout: str) -> torch.Tensor:
    """Pack correct offsets the way a buggy producer would; ``deform_conv2d`` then reads them as torchvision does."""
    from .deform import pack_offsets, unpack_offsets

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
    from .deform import offsets_from_affine, sampling_positions

    image = sample_image("grace_hopper", size=size, gray=True) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[:2] != (1, 1):
        raise ValueError(f"image: expected a tensor of shape (1, 1, H, W), got {getattr(image, 'shape', image)}")
    h, w = image.shape[-2:]
    style = {"description_width": "90px"}
    controls = {
        "layout": widgets.Dropdown(options=list(LAYOUTS), value=LAYOUTS[0], description="layout", style=style),
        "rotation": widgets.FloatSlider(30.0, min=-180.0, max=180.0, step=5.0, description="rotation °",
                                        style=style),
        "scale": widgets.FloatSlider(1.5, min=0.3, max=3.0, step=0.1, description="scale", style=style),
        "y": widgets.IntSlider(h // 2, min=0, max=h - 1, description="location y", style=style),
        "x": widgets.IntSlider(w // 2, min=0, max=w - 1, description="location x", style=style),
        "dilation": widgets.IntSlider(2, min=1, max=4, description="dilation", style=style),
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


def deformable_explorer(model: torch.nn.Module, dataset, dpi: int = 72) -> widgets.VBox:
    """Browse test digits through a trained :class:`stn_course.deform.DeformableCNN`: the 81 image pixels that one
    output location of its last deformable layer reads (through both layers), next to a plain convolution's.

    ``dataset[i] -> (x (1, S, S), label)``. ``-> VBox`` (CSS class ``stn-deformable-explorer``); ``state`` holds the
    ``points (81, 2)``, their ``spread`` (px) and the ``prediction``.
    """
    from .deform import trace_sampling_points

    x0, _ = dataset[0]
    grid = x0.shape[-1] // 4  # the last layer's output is S/4 × S/4
    style = {"description_width": "80px"}
    controls = {
        "index": widgets.IntSlider(0, min=0, max=len(dataset) - 1, description="test digit", style=style),
        "y": widgets.IntSlider(grid // 2, min=0, max=grid - 1, description="output y", style=style),
        "x": widgets.IntSlider(grid // 2, min=0, max=grid - 1, description="output x", style=style),
    }

    def draw(v: dict) -> tuple[bytes, str, dict]:
        x, label = dataset[v["index"]]
        x = x.unsqueeze(0)
        model.eval()
        with torch.no_grad():
            points = model.sampling_points(x, v["y"], v["x"])[0]
            prediction = int(model(x).argmax(1))
            maps = model.features(x)
            plain = [torch.nn.Conv2d(1, 1, 3, padding=1) for _ in model.layers]
            regular = trace_sampling_points(plain, maps[:2], v["y"], v["x"], pools=(2, 2))[0]
        centre = (4 * v["y"] + 1.5, 4 * v["x"] + 1.5)
        fig = plotting.plot_sampling_panels([x[0, 0]] * 2, [regular, points],
                                            ["plain convolutions", f"deformable (prediction {prediction})"],
                                            centres=[centre, centre], taps=9, size=3.2)
        spread = ((points - points.mean(0)) ** 2).sum(1).mean().sqrt().item()
        html = f"label {int(label)}, prediction <b>{prediction}</b>; spread of the 81 samples {spread:.1f} px"
        return render_png(fig, dpi), html, {"points": points, "spread": spread, "prediction": prediction}

    return _explorer("stn-deformable-explorer", controls, draw)


# ----------------------------------------------------------------------------------------------------------------
# Lesson 3 – projective and thin-plate-spline warps
# ----------------------------------------------------------------------------------------------------------------


def warp_explorer(image: torch.Tensor | None = None, size: int = 64, dpi: int = 72) -> widgets.VBox:
    """Bend an image with a projective or thin-plate-spline grid and see the grid on the input next to the output.

    ``projective``: two sliders set the perspective row ``H[2, :2]`` of a homography. ``tps``: the sliders move the
    16 source control points by a seeded random field of the given strength. ``-> VBox`` (CSS class
    ``stn-warp-explorer``); ``state`` holds the ``matrix`` (``H (3, 3)`` or control points ``(16, 2)``) and ``grid``.
    """
    from .grids import projective_grid, tps_control_points, tps_grid
    from .sampling import bilinear_sample

    image = sample_image("grace_hopper", size=(size, size)) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    image = image.double()
    style = {"description_width": "80px"}
    controls = {
        "transform": widgets.Dropdown(options=["projective", "tps"], value="tps", description="transform",
                                      style=style),
        "a": widgets.FloatSlider(0.2, min=-0.8, max=0.8, step=0.05, description="H[2,0] / bend", style=style),
        "b": widgets.FloatSlider(0.0, min=-0.8, max=0.8, step=0.05, description="H[2,1] / seed", style=style),
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
            g = torch.Generator().manual_seed(int(round(100 * v["b"])))
            matrix = target + v["a"] * 0.5 * torch.randn(16, 2, generator=g, dtype=torch.float64)
            grid = tps_grid(matrix.unsqueeze(0), size4)
            html = "source control points (x, y): " + ", ".join(f"({x:+.2f}, {y:+.2f})" for x, y in matrix.tolist())
        out = bilinear_sample(image, grid)
        fig = plotting.show_images({"input and the grid": image, "output": out}, size=3.2)
        plotting.show_grid(image, grid, ax=fig.axes[0], max_lines=10, points=False)
        return render_png(fig, dpi), html, {"matrix": matrix, "grid": grid}

    return _explorer("stn-warp-explorer", controls, draw)


__all__ += ["warp_explorer"]


# ----------------------------------------------------------------------------------------------------------------
# Lesson 4 – gradient descent on one transformation parameter
# ----------------------------------------------------------------------------------------------------------------


def _one_parameter_theta(kind: str, value: torch.Tensor) -> torch.Tensor:
    """``(1, 2, 3)`` theta of a horizontal shift or a rotation about the centre by ``value``."""
    zero, one = torch.zeros_like(value), torch.ones_like(value)
    if kind == "shift":
        rows = [one, zero, value, zero, one, zero]
    else:
        c, s = torch.cos(value), torch.sin(value)
        rows = [c, -s, zero, s, c, zero]
    return torch.stack(rows).view(1, 2, 3)


def descent_explorer(image: torch.Tensor | None = None, size: int = 40, dpi: int = 72) -> widgets.VBox:
    """Align a shifted or rotated copy of an image to the original by gradient descent on one parameter, with the
    hand-derived backward of :mod:`stn_course.autograd`; shows the loss curve and the iterates.

    ``-> VBox`` (CSS class ``stn-descent-explorer``); ``state`` holds the ``path`` of parameter values, their
    ``losses`` and the ``truth``.
    """
    from .autograd import affine_grid_analytic, bilinear_sample_analytic

    image = sample_image("grace_hopper", size=(size, size), gray=True) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    template = image.double()
    style = {"description_width": "80px"}
    controls = {
        "kind": widgets.Dropdown(options=["shift", "rotation"], value="shift", description="parameter", style=style),
        "truth": widgets.FloatSlider(0.3, min=-0.8, max=0.8, step=0.05, description="distortion", style=style),
        "start": widgets.FloatSlider(0.0, min=-1.0, max=1.0, step=0.05, description="start", style=style),
        "lr": widgets.FloatLogSlider(0.3, base=10, min=-2, max=1, step=0.1, description="step size", style=style),
        "steps": widgets.IntSlider(20, min=1, max=80, description="steps", style=style),
    }

    def loss_at(distorted: torch.Tensor, kind: str, value: torch.Tensor) -> torch.Tensor:
        grid = affine_grid_analytic(_one_parameter_theta(kind, value), template.shape, False)
        return (bilinear_sample_analytic(distorted, grid) - template).pow(2).mean()

    def draw(v: dict) -> tuple[bytes, str, dict]:
        kind = v["kind"]
        truth = torch.tensor(float(v["truth"]), dtype=torch.float64)
        distorted = bilinear_sample_analytic(template, affine_grid_analytic(
            _one_parameter_theta(kind, truth), template.shape, False))
        values = torch.linspace(-1.0, 1.0, 81, dtype=torch.float64)
        with torch.no_grad():
            losses = [loss_at(distorted, kind, t).item() for t in values]
        value, path, path_losses = torch.tensor(float(v["start"]), dtype=torch.float64), [], []
        for _ in range(v["steps"] + 1):
            value = value.detach().requires_grad_()
            loss = loss_at(distorted, kind, value)
            (grad,) = torch.autograd.grad(loss, value)
            path.append(value.item())
            path_losses.append(loss.item())
            value = value - v["lr"] * grad
        fig = plotting.plot_descent(values.tolist(), losses, path, path_losses,
                                    xlabel="shift t_x" if kind == "shift" else "angle (rad)", truth=-truth.item())
        html = (f"start {path[0]:+.3f} → after {v['steps']} steps {path[-1]:+.3f} (the answer is "
                f"{-truth.item():+.3f}); loss {path_losses[0]:.4f} → {path_losses[-1]:.4f}")
        return render_png(fig, dpi), html, {"path": path, "losses": path_losses, "truth": -truth.item()}

    return _explorer("stn-descent-explorer", controls, draw)


__all__ += ["descent_explorer"]
