"""Lesson 5 figures (stn_course.plotting) and the transformer explorer widget (stn_course.widgets)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from stn_course import data, plotting, training  # noqa: E402
from stn_course.widgets import transformer_explorer  # noqa: E402


@pytest.fixture(scope="module")
def rts():
    return data.make_datasets("RTS", seed=0, n_train=10, n_test=12, impl="aten")


def test_plot_distortions_one_row_per_kind():
    g = torch.Generator().manual_seed(0)
    digits = data.load_splits()[2][:4]
    samples = {k: data.distort(digits, k, g, impl="aten") for k in ("R", "TC")}
    fig = plotting.plot_distortions(samples, labels=[1, 2, 3, 4], n=4)
    assert len(fig.axes) == 8
    assert fig.axes[0].get_title() == "1" and "TC" in fig.axes[4].get_ylabel()
    assert fig.axes[4].images[0].get_array().shape == (60, 60)
    plt.close(fig)


def test_plot_learning_curves_draws_every_history():
    h = {"epoch": [1, 2], "loss": [2.0, 1.0], "train_error": [50.0, 30.0], "test_error": [40.0, 20.0]}
    fig = plotting.plot_learning_curves({"a": h, "b": h}, paper={"a": 1.0})
    ax_loss, ax_err = fig.axes
    assert len(ax_loss.lines) == 2
    np.testing.assert_array_equal(ax_err.lines[0].get_ydata(), [40.0, 20.0])
    assert ax_err.get_yscale() == "log"
    assert ax_err.get_legend_handles_labels()[1][0] == "a (test)" and "test solid" in ax_err.get_title()
    plt.close(fig)
    fig = plotting.plot_learning_curves({"a": h}, held_out="validation")  # lesson 5 hands fit the validation set
    assert fig.axes[1].get_legend_handles_labels()[1][0] == "a (validation)"
    assert "validation solid" in fig.axes[1].get_title()
    plt.close(fig)


def test_plot_transformer_view_and_theta_statistics(rts):
    _, test = rts
    model = training.st_cnn(42, seed=0)
    x, _ = test[:3]
    out, theta, grid = model.transform(x)
    fig = plotting.plot_transformer_view(x, out, grid, n=3)
    assert len(fig.axes) == 6
    # a fresh ST-CNN reads the central 28×28 window at full resolution: the outline joins the centres of the
    # input pixels 7 ... 34
    outline = next(line for line in fig.axes[0].lines if line.get_linewidth() == 2)
    np.testing.assert_allclose([min(outline.get_xdata()), max(outline.get_xdata())], [7, 34], atol=1e-5)
    plt.close(fig)
    # started at the normalized identity instead, it spreads the 28 output pixels over the 42-pixel canvas:
    # ((±27/28 + 1) * 42 - 1) / 2 = 0.25 ... 40.75 in input pixels
    _, _, whole = training.st_cnn(42, seed=0, start="identity").transform(x)
    fig = plotting.plot_transformer_view(x, out, whole, n=3)
    outline = next(line for line in fig.axes[0].lines if line.get_linewidth() == 2)
    np.testing.assert_allclose([min(outline.get_xdata()), max(outline.get_xdata())], [0.25, 40.75], atol=1e-5)
    plt.close(fig)
    zoom, rotation, shift = training.theta_statistics(theta)
    fig = plotting.plot_theta_statistics(torch.tensor([10.0, -5, 0]), torch.tensor([0.8, 1.0, 1.1]), rotation, zoom,
                                         shift, torch.zeros(3, 2))
    assert len(fig.axes) == 3
    np.testing.assert_allclose(fig.axes[1].collections[0].get_offsets()[:, 1], zoom.numpy())
    plt.close(fig)


def test_transformer_explorer_state_follows_the_model(rts):
    _, test = rts
    model = training.st_cnn(42, seed=1)
    box = transformer_explorer(model, test)
    assert model.training  # a picture does not change the model's mode (it may be drawn while training)
    x, label = test[0]
    with torch.no_grad():
        assert box.state["prediction"] == int(model.eval()(x[None]).argmax(1))
    assert box.state["label"] == int(label)
    torch.testing.assert_close(box.state["theta"], torch.eye(2, 3) * 28 / 42)  # fresh: the identity in pixels
    box.controls["index"].value = 7
    assert box.state["label"] == int(test.labels[7]) and box.state["renders"] == 2
    assert box.figure.value[:4] == b"\x89PNG"
    assert box.controls["index"].max == len(test) - 1
