"""stn_course.widgets (lessons 1–2 and 7 explorers; every explorer's sliders): build, change a control, the picture and the numbers follow.

No browser: the controls are driven from Python (``control.value = ...`` fires the same observers a browser
would), and the state is checked against matrices derived by hand.
"""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import ipywidgets as widgets_module  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from stn_course import affine, widgets  # noqa: E402
from stn_course.widgets import raster  # noqa: E402
from stn_course.gpu.indexing import program_pixels, source_pixels  # noqa: E402
from stn_course.images import checkerboard, sample_image  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def image():
    return torch.rand(1, 3, 10, 14, generator=torch.Generator().manual_seed(0))


def test_render_png_closes_the_figure():
    fig = plt.figure()
    number = fig.number
    assert widgets.render_png(fig)[:8] == PNG
    assert not plt.fignum_exists(number)


def test_affine_explorer_starts_at_the_identity(image):
    box = widgets.affine_explorer(image)
    assert "stn-affine-explorer" in box._dom_classes and "stn-explorer" in box._dom_classes
    assert box.figure.value[:8] == PNG and "stn-affine-explorer-figure" in box.figure._dom_classes
    for name, control in box.controls.items():
        assert f"stn-control-{name.replace('_', '-')}" in control._dom_classes
    torch.testing.assert_close(box.state["theta"], torch.eye(2, 3, dtype=torch.float64), rtol=0, atol=1e-12)
    assert box.state["renders"] == 1


def test_affine_explorer_translation_gives_the_inverse_shift_in_theta(image):
    """Content moved right by 3 px -> each output pixel reads 3 px to the left: x_s = x_t - 3 · 2/W."""
    box = widgets.affine_explorer(image)
    before = box.figure.value
    box.controls["tx"].value = 3.0
    width = image.shape[-1]
    expected = torch.tensor([[1.0, 0.0, -6.0 / width], [0.0, 1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(box.state["theta"], expected, rtol=0, atol=1e-12)
    assert box.figure.value != before and box.state["renders"] == 2
    box.controls["align_corners"].value = True  # same motion, other convention: 2/(W - 1) per pixel
    expected[0, 2] = -6.0 / (width - 1)
    torch.testing.assert_close(box.state["theta"], expected, rtol=0, atol=1e-12)


def test_affine_explorer_rotation_is_about_the_centre(image):
    box = widgets.affine_explorer(image)
    box.controls["rotation"].value = 90.0
    h, w = image.shape[-2:]
    centre = torch.tensor([[(w - 1) / 2, (h - 1) / 2]], dtype=torch.float64)
    motion = box.state["motion"]
    torch.testing.assert_close(affine.apply(motion, centre), centre)
    # +90° with y down: the point right of the centre goes below it
    right = centre + torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(affine.apply(motion, right), centre + torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    # theta = N (M^-1) N^-1: on this non-square image it is not a rotation matrix
    n = affine.normalization_matrix((h, w), False, torch.float64)
    expected = (n @ torch.linalg.inv(motion) @ torch.linalg.inv(n))[:2]
    torch.testing.assert_close(box.state["theta"], expected, rtol=0, atol=1e-12)
    assert abs(abs(box.state["theta"][0, 1].item()) - h / w) < 1e-9


def test_affine_explorer_scale_and_shear(image):
    box = widgets.affine_explorer(image)
    box.controls["scale"].value = 2.0
    torch.testing.assert_close(box.state["theta"][:, :2], 0.5 * torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-12)
    box.controls["scale"].value = 1.0
    box.controls["shear"].value = 0.5
    assert box.state["motion"][0, 1].item() == pytest.approx(0.5)


def test_affine_explorer_default_image_and_bad_input():
    box = widgets.affine_explorer(size=24)
    assert box.figure.value[:8] == PNG
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        widgets.affine_explorer(torch.zeros(2, 1, 4, 4))


def test_sampling_explorer_controls_change_the_picture():
    box = widgets.sampling_explorer(checkerboard(6, 8, dtype=torch.float64), out_size=12)
    assert "stn-sampling-explorer" in box._dom_classes
    seen = {box.figure.value}
    for name, value in [("padding_mode", "reflection"), ("mode", "nearest"), ("align_corners", True),
                        ("padding_mode", "border")]:
        box.controls[name].value = value
        assert box.state[name] == value
        seen.add(box.figure.value)
    assert len(seen) == 5 and box.state["renders"] == 5


def test_sampling_explorer_theta_is_zoom_and_rotation():
    box = widgets.sampling_explorer(checkerboard(4, dtype=torch.float64), out_size=6)
    box.controls["zoom"].value = 0.5
    torch.testing.assert_close(box.state["theta"], torch.tensor([[2.0, 0, 0], [0, 2.0, 0]], dtype=torch.float64))
    box.controls["rotation"].value = 90.0
    torch.testing.assert_close(box.state["theta"], torch.tensor([[0, -2.0, 0], [2.0, 0, 0]], dtype=torch.float64),
                               rtol=0, atol=1e-12)
    assert math.isclose(box.controls["zoom"].value, 0.5)


def test_explorers_leave_no_open_figures(image):
    plt.close("all")
    box = widgets.affine_explorer(image)
    box.controls["rotation"].value = 30.0
    widgets.sampling_explorer(checkerboard(4, dtype=torch.float64), out_size=6)
    assert plt.get_fignums() == []


def panel(box, title: str) -> np.ndarray:
    """The pixels of one image panel of an explorer's PNG, back at the image's own size (one per magnified block)."""
    picture = np.asarray(Image.open(io.BytesIO(box.figure.value)).convert("RGB"))
    x, y, w, h, f = box.state["layout"][title]
    block = picture[y:y + h, x:x + w]
    assert (block == np.repeat(np.repeat(block[::f, ::f], f, axis=0), f, axis=1)).all()  # really a magnified image
    return block[::f, ::f]


def direct_warp(image, theta, out_size, align_corners=False, padding_mode="zeros", mode="bilinear"):
    from stn_course.grids import affine_grid
    from stn_course.sampling import bilinear_sample, nearest_sample

    grid = affine_grid(theta.unsqueeze(0), (1, image.shape[1], *out_size), align_corners=align_corners)
    sampler = bilinear_sample if mode == "bilinear" else nearest_sample
    return sampler(image.double(), grid, padding_mode=padding_mode, align_corners=align_corners)


def test_the_affine_explorer_shows_the_package_warp_pixel_for_pixel(image):
    box = widgets.affine_explorer(image)
    box.controls["rotation"].value, box.controls["scale"].value, box.controls["tx"].value = 30.0, 1.4, 2.5
    expected = direct_warp(image, box.state["theta"], image.shape[-2:])
    assert (panel(box, "output") == raster.to_rgb(expected)).all()


def test_the_sampling_explorer_shows_the_whole_grid_when_it_leaves_the_image():
    """Zoom < 1: the input panel grows a grey margin so every grid line is drawn, and the image's extent is outlined
    (the readers' defect: the grid was cropped at the image's edge, so reading outside was invisible)."""
    box = widgets.sampling_explorer()  # a 32×27 photo
    box.controls["zoom"].value = 1.0
    assert box.state["margin"] == 0
    box.controls["zoom"].value = 0.5
    margin, (x, y, width, height, f) = box.state["margin"], box.state["layout"]["input and sampling grid"]
    h, w = 32, 27
    assert margin > 0 and (width, height) == ((w + 2 * margin) * f, (h + 2 * margin) * f)
    from stn_course.sampling import grid_to_pixels

    pixels = grid_to_pixels(box.state["grid"], (h, w), box.state["align_corners"]) + margin
    assert pixels.min() >= -0.5
    assert pixels[..., 0].max() <= w + 2 * margin - 0.5 and pixels[..., 1].max() <= h + 2 * margin - 0.5
    picture = np.asarray(Image.open(io.BytesIO(box.figure.value)).convert("L"))
    frame_row = y + (margin - 1) * f + f // 2  # the outline, one pixel above the image
    assert (picture[frame_row, x + margin * f + f:x + (margin + w - 1) * f] < 100).mean() > 0.5


def test_the_sampling_explorer_shows_the_package_sampler_pixel_for_pixel():
    box = widgets.sampling_explorer(checkerboard(6, 8, dtype=torch.float64), out_size=12)
    for name, value in [("zoom", 0.7), ("rotation", 25.0), ("mode", "nearest"), ("padding_mode", "reflection"),
                        ("align_corners", True)]:
        box.controls[name].value = value
        title = f"{box.state['mode']}, padding_mode={box.state['padding_mode']!r}"
        expected = direct_warp(checkerboard(6, 8, dtype=torch.float64), box.state["theta"], (12, 12),
                               box.state["align_corners"], box.state["padding_mode"], box.state["mode"])
        assert (panel(box, title) == raster.to_rgb(expected)).all(), name


def test_the_affine_and_sampling_explorers_update_fast_enough_to_drag():
    """Their pictures come from the raster renderer, not Matplotlib (the < 100 ms target is measured, with its
    command, by benchmarks/bench_widgets.py – timings live there, never in the tests)."""
    plt.close("all")
    box = widgets.affine_explorer(size=64)
    box.controls["rotation"].value = 10.0
    assert plt.get_fignums() == [] and "input: where each output pixel reads" in box.state["layout"]


def _explorers_as_built_by_the_lessons():
    from stn_course import data, deform_net, training

    _, test = data.make_datasets("RTS", n_train=16, n_test=8, seed=0, impl="aten")
    yield widgets.affine_explorer(size=64)
    yield widgets.sampling_explorer()
    yield widgets.warp_explorer(size=64)
    yield widgets.descent_explorer(size=40)
    yield widgets.transformer_explorer(training.st_cnn(42, seed=0), test)
    yield widgets.offset_layout_explorer()
    yield widgets.deformable_explorer(deform_net.DeformableCNN(in_size=42), test)
    yield widgets.kernel_explorer(sample_image("grace_hopper", size=32, gray=True))


def test_every_slider_starts_on_its_own_step_grid():
    """A browser snaps a slider's value to min + k·step (base**(min + k·step) for a log slider) and sends the snapped
    value back: a default off the grid would change the picture the moment it is shown (found by the Voilà test:
    the sampling explorer's zoom started at 0.6, the browser made it 2**-0.75 = 0.595)."""
    sliders = 0
    for box in _explorers_as_built_by_the_lessons():
        for name, control in box.controls.items():
            if isinstance(control, widgets_module.FloatLogSlider):
                position = (math.log(control.value, control.base) - control.min) / control.step
            elif isinstance(control, (widgets_module.FloatSlider, widgets_module.IntSlider)):
                position = (control.value - control.min) / control.step
            else:
                continue
            sliders += 1
            assert abs(position - round(position)) < 1e-9, f"{box._dom_classes[-1]} {name} = {control.value}"
    assert sliders >= 15


# -- lesson 7: the kernel explorer ------------------------------------------------------------------------------------


def test_the_kernel_explorer_highlights_the_programs_pixels_and_counts_what_it_reads():
    from stn_course.gpu.traffic import sampler_traffic

    photo = sample_image("grace_hopper", size=32, gray=True)
    box = widgets.kernel_explorer(photo, out_size=24, batch=8)
    box.controls["rotation"].value, box.controls["zoom"].value, box.controls["block"].value = 30.0, 2.0, 32
    box.controls["program"].value = 5
    tiles = panel(box, f"output: program 5 of {24 * 24 // 32}")
    strong = np.zeros((24, 24), dtype=bool)
    strong.flat[5 * 32:6 * 32] = True  # the program's 32 flat offsets, row-major
    brightness = tiles.astype(int).sum(-1)
    assert brightness[strong].max() < brightness[~strong].min()  # its tiles in full colour, the others faded
    # the input pixels it reads: the four neighbours of its points, from the package's index arithmetic
    rows, cols, live = program_pixels(5, 32, 24, 24)
    x, y = source_pixels(box.state["theta"], rows[live], cols[live], (32, 27), (24, 24))
    read = {(int(math.floor(b)) + dy, int(math.floor(a)) + dx) for a, b in zip(x.tolist(), y.tolist())
            for dy in (0, 1) for dx in (0, 1)}
    read = {(r, c) for r, c in read if 0 <= r < 32 and 0 <= c < 27}
    assert box.state["pixels_read"] == len(read)
    picture = panel(box, f"input: {len(read)} pixels read").astype(int)
    plain = raster.to_rgb(photo).astype(int)
    tinted = {(r, c) for r in range(32) for c in range(27) if (picture[r, c] != plain[r, c]).any()}
    assert tinted == read
    assert box.state["bytes_unfused"] == sampler_traffic((8, 1, 32, 27), (24, 24)).total
    assert box.state["bytes_fused"] == sampler_traffic((8, 1, 32, 27), (24, 24), fused=True).total


def test_the_kernel_explorer_keeps_the_program_slider_within_the_programs():
    box = widgets.kernel_explorer(out_size=24)
    box.controls["block"].value = 16
    assert box.controls["program"].max == 24 * 24 // 16 - 1
    box.controls["program"].value = 30
    box.controls["block"].value = 256  # three programs now: the slider follows, the picture shows the last one
    assert box.controls["program"].max == 2 and box.state["program"] == 2 and box.state["live"] == 64
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        widgets.kernel_explorer(torch.zeros(1, 4, 4))
