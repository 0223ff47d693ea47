"""Lesson-6 figures and explorers: the pictures show the numbers they claim (points where the offsets say, layout
bugs detected), read back from the Matplotlib artists and the explorers' state."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from stn_course import plotting, widgets  # noqa: E402
from stn_course.deform import regular_sampling_positions  # noqa: E402
from stn_course.deform_net import DeformableCNN  # noqa: E402


def _scatter_xy(ax) -> np.ndarray:
    """Offsets (x, y) of the biggest scatter collection of ``ax``."""
    collections = [c for c in ax.collections if isinstance(c, PathCollection)]
    return max((c.get_offsets() for c in collections), key=len)


def test_sampling_points_are_drawn_at_x_y():
    image = torch.zeros(10, 12)
    points = regular_sampling_positions(1, 1, 3, padding=0, dilation=2)[:, 0, 0] + torch.tensor([3.0, 5.0],
                                                                                               dtype=torch.float64)
    fig = plotting.plot_sampling_points(image, points, centre=(5, 7))
    drawn = _scatter_xy(fig.axes[0])
    np.testing.assert_allclose(drawn[:, 0], points[:, 1].numpy())  # x on the horizontal axis
    np.testing.assert_allclose(drawn[:, 1], points[:, 0].numpy())  # y on the vertical axis
    assert fig.axes[0].yaxis_inverted()
    matplotlib.pyplot.close(fig)


def test_sampling_panels_check_lengths():
    with pytest.raises(ValueError, match="2 images but 1 point sets"):
        plotting.plot_sampling_panels([torch.zeros(4, 4)] * 2, [torch.zeros(9, 2)])


def test_offset_layout_figure_counts_misread_channels():
    fig = plotting.plot_offset_layout(3, 3)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert any(t.startswith("torchvision") and "misread" not in t for t in titles)
    assert any("(dx, dy)" in t and "18 of 18 channels misread" in t for t in titles)
    assert any("blocked" in t and "16 of 18 channels misread" in t for t in titles)
    matplotlib.pyplot.close(fig)


def test_spread_vs_size_reports_the_correlation():
    size = np.linspace(0.6, 1.4, 20)
    fig = plotting.plot_spread_vs_size(size, 2 * size + 1, regular=3.0)
    assert "r = +1.00" in fig.axes[0].get_title()
    matplotlib.pyplot.close(fig)


def test_offset_layout_explorer_detects_the_bugs():
    image = torch.rand(1, 1, 16, 16)
    box = widgets.offset_layout_explorer(image)
    assert box.state["error"] == pytest.approx(0.0, abs=1e-12)
    offset = box.state["offset"]  # 18 numbers at the location: (dy, dx) of 9 taps
    assert offset.shape == (18,)
    for layout in widgets.LAYOUTS[1:]:
        box.controls["layout"].value = layout
        assert box.state["error"] > 0.5
    box.controls["layout"].value = widgets.LAYOUTS[0]
    box.controls["rotation"].value = 0.0
    box.controls["scale"].value = 1.0
    assert box.state["offset"].abs().max() < 1e-12  # identity transform: zero offsets


def test_deformable_explorer_plain_model_has_the_grid_spread():
    torch.manual_seed(0)
    model = DeformableCNN(in_size=24, deformable=True)  # fresh: offsets are zero, so the trace is the regular grid
    dataset = [(torch.rand(1, 24, 24), 3), (torch.rand(1, 24, 24), 5)]
    box = widgets.deformable_explorer(model, dataset)
    points = box.state["points"]
    assert points.shape == (81, 2)
    box.controls["index"].value = 1
    assert box.state["spread"] == pytest.approx(float(((points - points.mean(0)) ** 2).sum(1).mean().sqrt()))
