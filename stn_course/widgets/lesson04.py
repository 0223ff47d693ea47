"""The explorer of lesson 4: gradient descent on one transform parameter through the hand-derived backward.

See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations


import ipywidgets as widgets
import torch

from .. import plotting
from ..images import sample_image
from .common import FIGURE_DPI, _explorer, render_png

__all__ = ["descent_explorer"]


def _one_parameter_theta(kind: str, value: torch.Tensor) -> torch.Tensor:
    """``(1, 2, 3)`` theta of a horizontal shift or a rotation about the centre by ``value``."""
    zero, one = torch.zeros_like(value), torch.ones_like(value)
    if kind == "shift":
        rows = [one, zero, value, zero, one, zero]
    else:
        c, s = torch.cos(value), torch.sin(value)
        rows = [c, -s, zero, s, c, zero]
    return torch.stack(rows).view(1, 2, 3)


def descent_explorer(image: torch.Tensor | None = None, size: int = 40,
                     dpi: int = FIGURE_DPI) -> widgets.VBox:
    """Align a shifted or rotated copy of an image to the original by gradient descent on one parameter, with the
    hand-derived backward of :mod:`stn_course.autograd`; shows the loss curve and the iterates.

    ``-> VBox`` (CSS class ``stn-descent-explorer``); ``state`` holds the ``path`` of parameter values, their
    ``losses`` and the ``truth``.
    """
    from ..autograd import affine_grid_analytic, bilinear_sample_analytic

    image = sample_image("grace_hopper", size=(size, size), gray=True) if image is None else image
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image: expected a tensor of shape (1, C, H, W), got {getattr(image, 'shape', image)}")
    template = image.double()
    slow = {"continuous_update": False}  # a redraw takes long: on release
    controls = {
        "kind": widgets.Dropdown(options=["shift", "rotation"], value="shift", description="parameter"),
        "truth": widgets.FloatSlider(0.3, min=-0.8, max=0.8, step=0.05, description="distortion", **slow),
        "start": widgets.FloatSlider(0.0, min=-1.0, max=1.0, step=0.05, description="start", **slow),
        "lr": widgets.FloatSlider(0.3, min=0.1, max=5.0, step=0.1, description="step size", **slow),
        "steps": widgets.IntSlider(20, min=1, max=80, description="steps", **slow),
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
