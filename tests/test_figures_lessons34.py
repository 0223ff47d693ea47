"""Lesson 3–4 figures and explorers: the pictures show the numbers they claim to (read back from the artists)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from stn_course import grids, plotting, widgets  # noqa: E402
from stn_course.autograd import bilinear_sample_analytic  # noqa: E402
from stn_course.sampling import unnormalize  # noqa: E402


def test_control_points_are_drawn_where_the_sampler_reads():
    image = torch.rand(1, 1, 12, 16, dtype=torch.float64)
    target = grids.tps_control_points(4, 4, dtype=torch.float64)
    source = target + 0.1
    warped = bilinear_sample_analytic(image, grids.tps_grid(source.unsqueeze(0), image.shape))
    fig = plotting.plot_control_points(image, warped, source, target)
    left, right = fig.axes[:2]
    xs, ys = left.lines[-1].get_data()
    np.testing.assert_allclose(xs, unnormalize(source[:, 0], 16, False).numpy())
    np.testing.assert_allclose(ys, unnormalize(source[:, 1], 12, False).numpy())
    xt, _ = right.lines[-1].get_data()
    np.testing.assert_allclose(xt, unnormalize(target[:, 0], 16, False).numpy())


def test_gradient_footprint_shows_the_summed_absolute_gradient():
    image = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    grad = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    grid = grids.affine_grid(torch.eye(2, 3, dtype=torch.float64).unsqueeze(0), (1, 1, 3, 3))
    fig = plotting.plot_gradient_footprint(image, grad, grid)
    shown = fig.axes[1].images[0].get_array()
    np.testing.assert_allclose(np.asarray(shown), grad.abs().sum(1)[0].numpy())
    assert len(fig.axes[0].lines[0].get_xdata()) == 9  # one dot per sampling point


def test_descent_plot_draws_the_curve_and_the_path():
    fig = plotting.plot_descent([0, 1, 2], [3.0, 1.0, 2.0], [0.0, 0.5, 0.9], [3.0, 1.5, 1.1], truth=1.0)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [3.0, 1.0, 2.0])
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [0.0, 0.5, 0.9])


def test_warp_explorer_state_follows_the_controls():
    box = widgets.warp_explorer(size=16)
    assert box.state["grid"].shape == (1, 16, 16, 2) and box.state["matrix"].shape == (16, 2)
    expected = grids.tps_grid(box.state["matrix"].unsqueeze(0), (1, 3, 16, 16))
    torch.testing.assert_close(box.state["grid"], expected)
    box.controls["transform"].value = "projective"
    box.controls["a"].value = 0.3
    H = box.state["matrix"]
    assert H.shape == (3, 3) and H[2, 0].item() == pytest.approx(0.3)
    torch.testing.assert_close(box.state["grid"], grids.projective_grid(H.unsqueeze(0), (1, 3, 16, 16)))


def test_descent_explorer_converges_to_the_undoing_parameter():
    box = widgets.descent_explorer(size=24)
    box.controls["kind"].value = "rotation"
    box.controls["truth"].value = 0.4
    box.controls["lr"].value = 0.3
    box.controls["steps"].value = 40
    assert box.state["truth"] == pytest.approx(-0.4)
    assert abs(box.state["path"][-1] + 0.4) < 0.05
    assert box.state["losses"][-1] < box.state["losses"][0]
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        widgets.descent_explorer(torch.zeros(2, 1, 4, 4))


def test_tps_explorer_turn_slider_is_smooth():
    """The second TPS slider turns the direction field: neighbouring values give neighbouring control points (it was
    a float 'seed' whose neighbouring values drew unrelated random fields)."""
    box = widgets.warp_explorer(size=16)
    box.controls["a"].value = 0.6
    points = []
    for turn in (0.0, 0.05, 0.8):
        box.controls["b"].value = turn
        points.append(box.state["matrix"].clone())
    step = (points[1] - points[0]).norm(dim=1).max().item()
    far = (points[2] - points[0]).norm(dim=1).max().item()
    assert 0 < step < 0.2 * far  # a small turn moves the points a little; half a turn moves them a lot
