"""stn_course.plotting (lessons 1–2 sections): the figures draw the right numbers.

Each test reads the data back out of the Matplotlib artists and compares it with an independent computation
(``F.affine_grid``/``F.grid_sample``, hand-written coordinates), so a figure that lies fails.
"""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from stn_course import affine, plotting, sampling, warps  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _image(h=6, w=9, c=1, seed=0):
    return torch.rand(1, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _shown(ax):
    """The array an Axes displays with imshow (the last one drawn)."""
    return np.asarray(ax.images[-1].get_array())


# --- shared helpers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, expected", [((1, 3, 4, 5), (4, 5, 3)), ((1, 1, 4, 5), (4, 5)), ((3, 4, 5), (4, 5, 3)),
                                             ((1, 4, 5), (4, 5)), ((4, 5), (4, 5))])
def test_to_numpy_image_layouts(shape, expected):
    image = torch.arange(float(np.prod(shape))).view(shape)
    array = plotting.to_numpy_image(image)
    assert array.shape == expected
    if len(expected) == 3 and len(shape) >= 3:
        assert array[1, 2, 0] == image.reshape(-1, 4, 5)[0, 1, 2]


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 4, 5), (4, 5, 2, 1)])
def test_to_numpy_image_rejects_batches_and_odd_channels(shape):
    with pytest.raises(ValueError, match="expected"):
        plotting.to_numpy_image(torch.zeros(shape))


def test_show_images_titles_and_panels():
    images = {"a": _image(), "b": _image(c=3), "c": np.zeros((4, 4))}
    fig = plotting.show_images(images, ncols=2)
    assert isinstance(fig, Figure)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == ["a", "b", "c"]
    np.testing.assert_allclose(_shown(titled[0]), images["a"][0, 0].numpy())
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        plotting.show_images([_image(), _image()], titles=["x"])


def test_figure_to_png_renders_and_closes():
    fig = plotting.show_images([_image()])
    number = fig.number
    png = plotting.figure_to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 100
    assert not plt.fignum_exists(number)


# --- lesson 1 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("h, w", [(1, 1), (1, 4), (5, 7)])
def test_identity_grid_lands_on_pixel_centres(h, w, align_corners):
    def centres(n):  # normalized pixel centres, written out from the two conventions
        j = torch.arange(n, dtype=torch.float64)
        if align_corners:
            return 2 * j / (n - 1) - 1 if n > 1 else torch.zeros(1, dtype=torch.float64)
        return (2 * j + 1) / n - 1

    v, u = torch.meshgrid(centres(h), centres(w), indexing="ij")
    grid = torch.stack([u, v], -1)[None]
    pixels = sampling.grid_to_pixels(grid, (h, w), align_corners)
    ys, xs = np.mgrid[0:h, 0:w]
    np.testing.assert_allclose(pixels, np.stack([xs, ys], -1), atol=1e-12)


def test_grid_to_pixels_with_a_different_input_size():
    # a 3-wide output grid reading a 9-wide input: x = -1, 0, 1 -> pixels -0.5, 4, 8.5 (align_corners=False)
    grid = torch.tensor([[[[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    np.testing.assert_allclose(sampling.grid_to_pixels(grid, (5, 9), False)[0, :, 0], [-0.5, 4.0, 8.5])
    np.testing.assert_allclose(sampling.grid_to_pixels(grid, (5, 9), True)[0, :, 0], [0.0, 4.0, 8.0])
    with pytest.raises(ValueError, match="one grid"):
        sampling.grid_to_pixels(torch.zeros(2, 3, 3, 2), (5, 9))


def test_show_grid_draws_the_sampled_region_and_the_first_pixel():
    theta = torch.tensor([[[0.5, -0.2, 0.3], [0.2, 0.5, -0.1]]], dtype=torch.float64)
    grid = F.affine_grid(theta, (1, 1, 4, 6), align_corners=False)
    fig = plotting.show_grid(_image(), grid, align_corners=False)
    ax = fig.axes[0]
    pixels = sampling.grid_to_pixels(grid, (6, 9), False)
    marker = [line for line in ax.lines if line.get_label() == "out[0, 0]"][0]
    np.testing.assert_allclose([marker.get_xdata()[0], marker.get_ydata()[0]], pixels[0, 0])
    first_row = ax.lines[0]
    np.testing.assert_allclose(np.c_[first_row.get_xdata(), first_row.get_ydata()], pixels[0])
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # y points down


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_plot_warp_shows_what_grid_sample_computes(mode):
    image = _image(7, 10, c=3)
    theta = torch.tensor([[0.8, 0.3, 0.1], [-0.3, 0.9, 0.2]], dtype=torch.float64)
    fig = plotting.plot_warp(image, theta, out_size=(5, 8), align_corners=True, padding_mode="border", mode=mode)
    expected = F.grid_sample(image, F.affine_grid(theta[None], (1, 3, 5, 8), align_corners=True), mode=mode,
                             padding_mode="border", align_corners=True)
    np.testing.assert_allclose(_shown(fig.axes[1]), expected[0].permute(1, 2, 0).numpy(), atol=1e-12)
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        plotting.plot_warp(image.expand(2, -1, -1, -1), theta)


def test_plot_shapes_maps_the_outline_with_each_matrix():
    matrices = {"R": affine.rotation(0.5), "T": affine.translation(2.0, -1.0)}
    fig = plotting.plot_shapes(matrices)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    f = plotting.letter_f().numpy()
    c, s = np.cos(0.5), np.sin(0.5)
    np.testing.assert_allclose(lines["R"].get_xdata()[:-1], c * f[:, 0] - s * f[:, 1], atol=1e-6)
    np.testing.assert_allclose(lines["R"].get_ydata()[:-1], s * f[:, 0] + c * f[:, 1], atol=1e-6)
    np.testing.assert_allclose(lines["T"].get_xdata()[:-1], f[:, 0] + 2)
    assert fig.axes[0].yaxis_inverted()
    marked = plotting.plot_shapes(matrices, mark=(3.0, 2.0))
    centre = [line for line in marked.axes[0].lines if line.get_label() == "(3, 2)"][0]
    assert (centre.get_xdata()[0], centre.get_ydata()[0]) == (3.0, 2.0)


def _numbers(texts):
    return [float(t.get_text()) for t in texts if re.fullmatch(r"[+-]\d\.\d\d", t.get_text())]


def test_plot_align_corners_labels_and_frames():
    fig = plotting.plot_align_corners(height=3, width=4)
    off, on = fig.axes
    # top labels = normalized x of the 4 centres, left labels = normalized y of the 3 centres
    np.testing.assert_allclose(_numbers(off.texts), [-0.75, -0.25, 0.25, 0.75, -2 / 3, 0.0, 2 / 3], atol=0.005)
    np.testing.assert_allclose(_numbers(on.texts), [-1, -1 / 3, 1 / 3, 1, -1, 0, 1], atol=0.005)
    frame_off = [p for p in off.patches if p.get_edgecolor()[:3] == matplotlib.colors.to_rgb("tab:red")][0]
    frame_on = [p for p in on.patches if p.get_edgecolor()[:3] == matplotlib.colors.to_rgb("tab:red")][0]
    assert (frame_off.get_x(), frame_off.get_y(), frame_off.get_width(), frame_off.get_height()) == (-0.5, -0.5, 4, 3)
    assert (frame_on.get_x(), frame_on.get_y(), frame_on.get_width(), frame_on.get_height()) == (0, 0, 3, 2)
    assert "frac" in off.get_title() and "frac" in on.get_title()
    bare = plotting.plot_align_corners(height=3, width=4, formulas=False)  # lesson 1: before Exercise 5 derives them
    assert [ax.get_title() for ax in bare.axes] == ["align_corners=False", "align_corners=True"]
    plt.close("all")


def test_forward_warp_by_two_hits_only_even_pixels():
    image = _image(8, 8)
    out, hit = warps.forward_warp_nearest(image, affine.scaling(2.0).double())
    assert int(hit.sum()) == 16  # 4 × 4 input pixels land on (2x, 2y); the other 48 pixels are holes
    assert hit[::2, ::2][:4, :4].all()
    torch.testing.assert_close(out[0, 0, 0:8:2, 0:8:2], image[0, 0, :4, :4])
    identity, hit_all = warps.forward_warp_nearest(image, torch.eye(3, dtype=torch.float64))
    assert hit_all.all() and torch.equal(identity, image)


def test_inverse_warp_nearest_matches_grid_sample_and_integer_shifts():
    image = _image(6, 9)
    shifted = warps.inverse_warp_nearest(image, affine.translation(2.0, 1.0).double())
    expected = torch.zeros_like(image)
    expected[..., 1:, 2:] = image[..., :-1, :-2]
    torch.testing.assert_close(shifted, expected)
    motion = affine.compose(affine.translation(4.0, 2.5), affine.rotation(0.4), affine.scaling(1.3),
                            affine.translation(-4.0, -2.5)).double()
    theta = affine.pixel_to_theta(affine.invert(motion), (6, 9))[None]
    reference = F.grid_sample(image, F.affine_grid(theta, (1, 1, 6, 9), align_corners=False), mode="nearest",
                              align_corners=False)
    torch.testing.assert_close(warps.inverse_warp_nearest(image, motion), reference)


def test_plot_forward_vs_inverse_counts_the_holes():
    image = _image(8, 8)
    fig = plotting.plot_forward_vs_inverse(image, affine.scaling(2.0).double())
    # scaling by 2 about the origin covers the whole 8×8 output; 16 pixels are hit, 48 are holes
    assert "48 holes" in fig.axes[1].get_title()
    shown = _shown(fig.axes[1])
    assert np.all(shown[1, 1] == (1.0, 0.0, 0.0)) and np.allclose(shown[2, 2], image[0, 0, 1, 1].item())
    np.testing.assert_allclose(_shown(fig.axes[2]), warps.inverse_warp_nearest(image, affine.scaling(2.0).double())
                               [0, 0].numpy())


# --- lesson 2 -------------------------------------------------------------------------------------------------


def test_plot_interpolation_1d_curves():
    signal = [0.2, 0.9, 0.4, 0.6]
    fig = plotting.plot_interpolation_1d(signal, samples=501)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    x, linear = lines["linear"].get_xdata(), lines["linear"].get_ydata()
    np.testing.assert_allclose(linear, np.interp(x, np.arange(-1, 5), [0.0] + signal + [0.0]), atol=1e-12)
    nearest = lines["nearest"].get_ydata()
    inside = (x > -0.49) & (x < 3.49) & (np.abs(x - np.round(x)) > 0.01)
    np.testing.assert_allclose(nearest[inside], np.array(signal)[np.round(x[inside]).astype(int)])
    assert np.all(nearest[x < -0.51] == 0) and np.all(nearest[x > 3.51] == 0)


def test_plot_bilinear_weights_are_the_opposite_areas():
    x, y = 0.3, 0.65
    fig = plotting.plot_bilinear_weights(x, y)
    weights = {}
    for t in fig.axes[0].texts:
        match = re.fullmatch(r"w\[y(\d),x(\d)\]\n([\d.]+)", t.get_text())
        if match:  # keyed (i, j) = (x offset, y offset)
            weights[(int(match[2]), int(match[1]))] = float(match[3])
    expected = {(0, 0): (1 - x) * (1 - y), (1, 0): x * (1 - y), (0, 1): (1 - x) * y, (1, 1): x * y}
    assert weights.keys() == expected.keys()
    for key, value in expected.items():
        assert weights[key] == pytest.approx(value, abs=5e-4)
    with pytest.raises(ValueError, match="inside the cell"):
        plotting.plot_bilinear_weights(1.2, 0.5)


@pytest.mark.parametrize("align_corners", [False, True])
def test_plot_padding_modes_panels_match_grid_sample(align_corners):
    image = _image(6, 7, c=3)
    theta = torch.tensor([[1.5, -0.4, 0.1], [0.4, 1.5, 0.0]], dtype=torch.float64)
    fig = plotting.plot_padding_modes(image, theta, align_corners=align_corners)
    grid = F.affine_grid(theta[None], (1, 3, 6, 7), align_corners=align_corners)
    for ax, mode in zip(fig.axes, ("zeros", "border", "reflection")):
        expected = F.grid_sample(image, grid, padding_mode=mode, align_corners=align_corners)[0].permute(1, 2, 0)
        np.testing.assert_allclose(_shown(ax), np.clip(expected.numpy(), 0, 1), atol=1e-12)
        assert mode in ax.get_title()


def test_plot_differences_reports_the_worst_error():
    reference = _image(5, 6)
    broken = reference.clone()
    broken[..., -1] = 0  # lose the last column
    fig = plotting.plot_differences(reference, {"broken": broken, "same": reference})
    worst = reference[..., -1].abs().max().item()
    assert f"max {worst:.3g}" in fig.axes[2].get_title() or f"max {worst:.3g}" in fig.axes[1].get_title()
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.endswith("max 0") for t in titles)
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_differences(reference, {"wrong": _image(4, 6)})


def test_bilinear_weight_labels_name_the_pixel_they_weight_row_first():
    fig = plotting.plot_bilinear_weights(0.3, 0.65)
    texts = [t.get_text() for t in fig.axes[0].texts]
    weights = {t.split("\n")[0]: float(t.split("\n")[1]) for t in texts if t.startswith("w[")}
    corners = {t for t in texts if t.startswith("I[")}
    # the weight of pixel I[y1, x0] is (1 - x) y, labelled with the same (row, column) order
    assert weights["w[y1,x0]"] == pytest.approx((1 - 0.3) * 0.65, abs=1e-3)
    assert weights["w[y0,x1]"] == pytest.approx(0.3 * (1 - 0.65), abs=1e-3)
    assert {w.replace("w[", "I[").replace(",", ", ") for w in weights} == corners
    plt.close(fig)


def test_plot_differences_says_when_it_sums_over_channels():
    rgb = torch.zeros(1, 3, 4, 5)
    shifted = rgb.clone()
    shifted[0, :, 0, 0] = 0.5
    fig = plotting.plot_differences(rgb, {"shifted": shifted})
    assert fig.axes[1].get_title() == "|difference|: max 1.5"
    assert fig.axes[2].get_xlabel() == "|difference|, summed over channels"  # the colourbar's label, under it
    gray = plotting.plot_differences(rgb[:, :1], {"shifted": shifted[:, :1]})
    assert gray.axes[1].get_title() == "|difference|: max 0.5" and gray.axes[2].get_xlabel() == "|difference|"
    plt.close("all")


def test_plot_differences_titles_clear_the_colourbar_labels():
    """Lesson 2's three-panel figure: no title overlaps a colourbar's label (the readers' defect)."""
    image = torch.rand(1, 3, 12, 14)
    fig = plotting.plot_differences(image, {f"a rather long sampler name {k}": image * 0.9 for k in range(3)})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    labels = [ax.xaxis.label.get_window_extent(renderer) for ax in fig.axes if ax.get_xlabel()]
    assert len(titles) == 6 and len(labels) == 3
    bars = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_xlabel()]  # bar, ticks and label
    assert not any(t.overlaps(box) for t in titles for box in labels + bars)
    plt.close(fig)
