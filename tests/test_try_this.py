"""Every explorer's "Try this" list says what the explorer really shows: each bullet is driven here, headless, with
the image its lesson uses, and the picture or numbers compared with a direct computation. Each test names the words
of its bullet, which must still be in the lesson (change one, change the other)."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from stn_course import affine, course, data, training, widgets  # noqa: E402
from stn_course.grids import tps_control_points  # noqa: E402
from stn_course.images import sample_image  # noqa: E402

SOURCES = Path(__file__).resolve().parents[1] / "solutions" / "src"


def said(lesson: str, words: str) -> None:
    text = " ".join(" ".join(line.lstrip("# ") for line in
                             next(SOURCES.glob(f"{lesson}_*.py")).read_text().splitlines()).split())
    assert " ".join(words.split()) in text, f"lesson {lesson} no longer says: {words}"


# -- lesson 1 (the explorer on the lesson's FAST image: Grace Hopper, 48 pixels high) ---------------------------------


@pytest.fixture(scope="module")
def hopper48():
    return sample_image("grace_hopper", size=48)


def test_l1_rotate_by_90_is_not_a_rotation_matrix_on_a_non_square_image(hopper48):
    said("01", "Rotate by 90° and look at $\\theta$: on this non-square image it is not a rotation matrix")
    box = widgets.affine_explorer(hopper48)
    box.controls["rotation"].value = 90.0
    theta, (h, w) = box.state["theta"], hopper48.shape[-2:]
    assert h != w and abs(theta[0, 1].item() + theta[1, 0].item()) > 0.05  # not antisymmetric
    assert abs(abs(theta[0, 1].item()) - h / w) < 1e-9


def test_l1_scale_by_2_halves_theta(hopper48):
    said("01", "Scale by 2: the grid shrinks (the output reads a smaller region) – $\\theta$'s scale is $1/2$")
    box = widgets.affine_explorer(hopper48)
    box.controls["scale"].value = 2.0
    torch.testing.assert_close(box.state["theta"][:, :2], 0.5 * torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-12)


def test_l1_translate_right_gives_a_negative_theta_shift(hopper48):
    said("01", "Translate right by 10 pixels: which sign does $\\theta$'s translation get, and why?")
    box = widgets.affine_explorer(hopper48)
    box.controls["tx"].value = 10.0
    assert box.state["theta"][0, 2].item() == pytest.approx(-20 / hopper48.shape[-1])


def test_l1_align_corners_changes_theta_not_the_picture(hopper48):
    said("01", "Toggle `align_corners` with a translation: $\\theta$ changes, the picture does not.")
    box = widgets.affine_explorer(hopper48)
    box.controls["tx"].value = 6.0
    before_theta, before_output = box.state["theta"].clone(), box.state["output"].clone()
    box.controls["align_corners"].value = True
    assert not torch.allclose(box.state["theta"], before_theta)
    torch.testing.assert_close(box.state["output"], before_output, rtol=0, atol=1e-9)


# -- lesson 2 (its default 32-pixel photo, output 40×40) --------------------------------------------------------------


def test_l2_zoom_out_shows_the_padding_and_reflection_moves_with_align_corners():
    said("02", "zoom < 1 (reading outside): switch `padding_mode` and watch the frame; toggle `align_corners` with "
               "`reflection` – the mirror moves by half a pixel")
    box = widgets.sampling_explorer()
    box.controls["zoom"].value = 0.5
    frames = {}
    for mode in ("zeros", "border", "reflection"):
        box.controls["padding_mode"].value = mode
        frames[mode] = box.state["output"][0, 0, 0].clone()  # the top row lies outside the image
    assert frames["zeros"].abs().max() == 0 and frames["border"].abs().max() > 0
    assert not torch.allclose(frames["border"], frames["reflection"])
    box.controls["align_corners"].value = True
    assert not torch.allclose(box.state["output"][0, 0, 0], frames["reflection"])


def test_l2_zoom_3_nearest_shows_blocks_bilinear_ramps():
    said("02", "zoom ≈ 3: `nearest` shows blocks, `bilinear` ramps")
    box = widgets.sampling_explorer()
    box.controls["zoom"].value = 3.0
    bilinear = box.state["output"].clone()
    box.controls["mode"].value = "nearest"
    nearest = box.state["output"]
    assert len(torch.unique(nearest)) * 3 < len(torch.unique(bilinear))
    assert (nearest[..., 1:] == nearest[..., :-1]).float().mean() > 0.5  # neighbours repeat: blocks


def test_l2_rotation_90_stretches_a_non_square_input():
    said("02", "rotation 90°: this input is not square, so a rotation in normalized coordinates also stretches the "
               "picture")
    box = widgets.sampling_explorer()
    box.controls["zoom"].value = 1.0
    box.controls["rotation"].value = 90.0
    h, w = 32, 27
    assert sample_image("grace_hopper", size=32, gray=True).shape[-2:] == (h, w)
    motion = affine.theta_to_pixel(box.state["theta"], (h, w), (40, 40))
    columns = torch.linalg.norm(motion[:2, :2], dim=0)
    assert abs(columns[0] - columns[1]) > 0.05  # the pixel motion scales x and y differently


# -- lesson 3 (its FAST photo, 64×64) ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo64():
    return sample_image("grace_hopper", size=(64, 64)).double().float()


def test_l3_tps_without_bend_is_the_identity(photo64):
    said("03", "`tps` with the first slider at 0: the source points are the targets, and the output is the image itself")
    box = widgets.warp_explorer(photo64)
    box.controls["a"].value = 0.0
    torch.testing.assert_close(box.state["output"], photo64.double(), rtol=0, atol=1e-9)


def test_l3_projective_perspective_and_padding(photo64):
    said("03", "`projective` with $\\pi_{31} = 0.5$: the grid's left column is taller than its right one – "
               "perspective – and parts of the grid leave the image, where the output reads the zeros padding")
    box = widgets.warp_explorer(photo64)
    box.controls["transform"].value = "projective"
    box.controls["a"].value, box.controls["b"].value = 0.5, 0.0
    grid = box.state["grid"][0]
    left, right = grid[:, 0, 1], grid[:, -1, 1]
    assert (left.max() - left.min()) > 1.5 * (right.max() - right.min())
    outside = (grid.abs() > 1 + 2 / 64).any(-1)  # a pixel beyond the border: its four neighbours are padding
    assert outside.any() and box.state["output"][0, :, outside].abs().max() == 0


def test_l3_tps_strong_bend_moves_every_point_and_bends_every_line(photo64):
    said("03", "`tps` with a strong bend: all 16 source points move, so no grid line stays straight – every row and "
               "column of the grid bends, far from its straight chord")
    box = widgets.warp_explorer(photo64)
    box.controls["a"].value = 0.8
    moved = (box.state["matrix"] - tps_control_points(4, 4, dtype=torch.float64)).norm(dim=1)
    assert moved.shape == (16,) and (moved > 0.05).all()
    grid = box.state["grid"][0]
    for lines in (grid, grid.transpose(0, 1)):  # rows, then columns: (lines, points, 2)
        start, end = lines[:, :1], lines[:, -1:]
        along = torch.linspace(0, 1, lines.shape[1], dtype=lines.dtype).view(1, -1, 1)
        off_chord = (lines - (start + along * (end - start))).norm(dim=-1).amax(1)
        assert off_chord.min() > 0.1  # every line leaves its chord by more than 3 pixels (of 64)


def test_l3_projective_keeps_every_line_straight(photo64):
    said("03", "Compare `projective` with $\\pi_{31} = 0.5$, $\\pi_{32} = 0.3$: its lines stay straight, only their "
               "spacing and directions change")
    box = widgets.warp_explorer(photo64)
    box.controls["transform"].value = "projective"
    box.controls["a"].value, box.controls["b"].value = 0.5, 0.3
    grid = box.state["grid"][0].double()
    for lines in (grid, grid.transpose(0, 1)):  # rows, then columns: (lines, points, 2)
        start, end = lines[:, :1], lines[:, -1:]
        direction = (end - start) / (end - start).norm(dim=-1, keepdim=True)
        off_line = ((lines - start)[..., 0] * direction[..., 1] - (lines - start)[..., 1] * direction[..., 0]).abs()
        assert off_line.max() < 1e-5  # every point on the line through the ends (float32 grid)
        spacing = (lines[:, 1:] - lines[:, :-1]).norm(dim=-1)
        assert (spacing.amax(1) > 1.2 * spacing.amin(1)).all()  # but not evenly spaced: perspective


# -- lesson 4 (its FAST photo: 40×40 grayscale) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo40():
    return sample_image("grace_hopper", size=(40, 40), gray=True).float()


def test_l4_descent_comes_most_of_the_way(photo40):
    said("04", "`shift`, step size 0.3: twenty steps from 0 take the parameter most of the way to the answer, $-0.3$")
    box = widgets.descent_explorer(photo40)
    path = box.state["path"]
    assert path[0] == 0 and box.state["truth"] == pytest.approx(-0.3) and -0.3 < path[-1] < -0.2


def test_l4_large_steps_overshoot(photo40):
    said("04", "step size 3: the steps overshoot, and the loss ends higher than it started")
    box = widgets.descent_explorer(photo40)
    box.controls["lr"].value = 3.0
    assert box.state["losses"][-1] > box.state["losses"][0]


def test_l4_rotation_has_a_local_minimum(photo40):
    said("04", "`rotation` with a distortion of 0.8, started at 0: descent stops far from the answer $-0.8$, in a local "
               "minimum of the loss – start it at $-0.9$ and it finds the answer")
    box = widgets.descent_explorer(photo40)
    box.controls["kind"].value = "rotation"
    box.controls["truth"].value = 0.8
    assert abs(box.state["path"][-1] + 0.8) > 0.5 and box.state["losses"][-1] > 0.03
    box.controls["start"].value = -0.9
    assert abs(box.state["path"][-1] + 0.8) < 0.02


# -- lesson 5 --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rts():
    return data.make_datasets("RTS", n_train=256, n_test=64, seed=0, impl="aten")


def test_l5_the_live_explorer_starts_with_one_grid_and_follows_training(rts, tmp_path):
    said("05", "At the start every digit gets the same grid, the central 28×28 window")
    said("05", "before training every digit got the same grid, the central 28×28 window ($\\theta = \\tfrac{28}{42} I$); "
               "now the grid differs from digit to digit")
    train, test = rts
    model = training.st_cnn(42, seed=0)
    live = widgets.transformer_explorer(model, test)
    thetas = []
    for i in range(4):
        live.controls["index"].value = i
        thetas.append(live.state["theta"])
    for theta in thetas:
        torch.testing.assert_close(theta, torch.eye(2, 3) * 28 / 42)
    renders = live.state["renders"]
    loaders = data.make_loaders(train, test, batch_size=32)
    history = training.fit(model, *loaders, epochs=2, lr=3e-3, transformer_lr=1e-3, progress=False,
                           callback=live.on_progress)
    assert live.state["renders"] >= renders + 2  # at least every epoch's end
    assert live.state["history"]["epoch"] == [1, 2] and live.state["history"] is history
    after = []
    for i in range(4):
        live.controls["index"].value = i
        after.append(live.state["theta"])
    assert torch.stack(after).std(0).max() > 1e-3  # the grid differs from digit to digit


def test_l5_the_saved_model_predicts_what_the_model_in_memory_predicts(rts, tmp_path):
    said("05", "the saved model predicts exactly what the model in memory predicts")
    train, test = rts
    model = training.st_cnn(42, seed=0)
    history = training.fit(model, *data.make_loaders(train, test, batch_size=32), epochs=1, progress=False)
    training.save(model, tmp_path / "m.pt", history=history)
    saved = training.load(tmp_path / "m.pt")
    live, loaded = widgets.transformer_explorer(model, test), widgets.transformer_explorer(saved, test,
                                                                                           history=history)
    for i in range(5):
        live.controls["index"].value = loaded.controls["index"].value = i
        assert live.state["prediction"] == loaded.state["prediction"]
        torch.testing.assert_close(live.state["theta"], loaded.state["theta"])
    assert "error along training" in loaded.state["layout"]


# -- lesson 6 (its 24-pixel digit... the default image of the explorer) ------------------------------------------------


def test_l6_torchvision_layout_reads_where_it_means():
    said("06", "torchvision's layout: the distance is 0 – every tap reads where it was meant to")
    box = widgets.offset_layout_explorer()
    assert box.state["error"] == 0


def test_l6_the_bugs_move_the_taps():
    said("06", "either bug at the start (rotation 30°, scale 1.5): taps land pixels away from where they were meant "
               "to read")
    box = widgets.offset_layout_explorer()
    assert (box.controls["rotation"].value, box.controls["scale"].value) == (30.0, 1.5)
    for layout in widgets.LAYOUTS[1:]:
        box.controls["layout"].value = layout
        assert box.state["error"] > 2


def test_l6_the_identity_cannot_catch_a_layout_bug():
    said("06", "rotation 0 and scale 1: all three layouts agree (the offsets are all zero) – a test with the identity "
               "cannot catch a layout bug")
    box = widgets.offset_layout_explorer()
    box.controls["rotation"].value, box.controls["scale"].value = 0.0, 1.0
    for layout in widgets.LAYOUTS:
        box.controls["layout"].value = layout
        assert box.state["error"] == 0 and float(box.state["offset"].abs().max()) == 0
    assert math.isfinite(float(np.float64(box.state["error"])))


# -- lesson 7 (the kernel explorer on the lesson's photo: Grace Hopper, 32 pixels high; a 24×24 output) ---------------


@pytest.fixture(scope="module")
def kernel_box():
    return widgets.kernel_explorer(sample_image("grace_hopper", size=32, gray=True))


def test_l7_block_256_takes_three_programs_the_last_partly_masked(kernel_box):
    said("07", "`BLOCK` 256: the 24×24 output takes three programs, and the last one has only 64 live lanes – the "
               "rest are masked")
    kernel_box.controls["zoom"].value, kernel_box.controls["block"].value = 1.0, 256
    assert kernel_box.state["programs"] == 3 and kernel_box.controls["program"].max == 2
    kernel_box.controls["program"].value = 2
    assert kernel_box.state["live"] == 24 * 24 - 2 * 256 == 64


def test_l7_magnifying_piles_atomic_adds_onto_few_pixels(kernel_box):
    said("07", "zoom 4 (magnify), `BLOCK` 64: every program reads fewer than 30 input pixels, and the most-read one "
               "receives more than 20 of its corner reads – that many atomic additions to one address from one "
               "program alone; zoom 0.5 (shrink): at most one per input pixel")
    kernel_box.controls["block"].value = 64
    for zoom, check in ((4.0, lambda s: s["pixels_read"] < 30 and s["max_adds"] > 20),
                        (0.5, lambda s: s["max_adds"] <= 1)):
        kernel_box.controls["zoom"].value = zoom
        for program in range(kernel_box.state["programs"]):
            kernel_box.controls["program"].value = program
            assert check(kernel_box.state), (zoom, program, kernel_box.state["pixels_read"], kernel_box.state["max_adds"])
    # the explorer's count, directly: program 3's corner reads at zoom 4, from the package's index arithmetic
    from stn_course.gpu.indexing import program_pixels, source_pixels

    kernel_box.controls["zoom"].value, kernel_box.controls["program"].value = 4.0, 3
    rows, cols, live = program_pixels(3, 64, 24, 24)
    x, y = source_pixels(kernel_box.state["theta"], rows[live], cols[live], (32, 27), (24, 24))
    corners = [(int(math.floor(b)) + dy, int(math.floor(a)) + dx) for a, b in zip(x.tolist(), y.tolist())
               for dy in (0, 1) for dx in (0, 1)]
    inside = [c for c in corners if 0 <= c[0] < 32 and 0 <= c[1] < 27]
    assert max(inside.count(c) for c in set(inside)) == kernel_box.state["max_adds"]


def test_l7_fusing_saves_little_for_64_channels_and_most_for_one(kernel_box):
    said("07", "channels 64: fusing saves less than 3 % of the bytes; channels 1: more than half")
    saved = {}
    for channels in (64, 1):
        kernel_box.controls["channels"].value = channels
        saved[channels] = kernel_box.state["saved"]
    assert saved[64] < 0.03 and saved[1] > 0.5


# -- lesson 8 (the sign explorer without a model: the generator and the rectification by the true corners) ----------


def test_l8_a_badly_slanted_sign_is_rectified_upright():
    said("08", "turn clutter off and set the slant to 0.12: the sign is badly slanted, yet its rectification by the "
               "true corners is upright and square")
    from stn_course.data.signs import SIGN_CORNERS, render_signs

    box = widgets.sign_explorer()
    box.controls["clutter"].value = False
    box.controls["perspective"].value = 0.12
    square = torch.tensor(SIGN_CORNERS, dtype=torch.float64)[None]
    for seed in range(3):
        box.controls["seed"].value = seed
        corners = box.state["corners"]
        sides = (corners.roll(-1, 0) - corners).norm(dim=1)
        assert sides.max() / sides.min() > 1.25  # slanted: the sign's sides differ in length
        upright = render_signs(torch.tensor([box.state["label"]]), square, torch.Generator(), size=28,
                               clutter=False)[0]
        assert (box.state["rectified"] - upright).abs().mean() < 0.06


def test_l8_turned_by_up_to_90_some_horizontal_bars_look_vertical():
    said("08", "raise max turn to 90° and step through the draws of class 0: some horizontal bars end up closer to "
               "vertical than to horizontal")
    box = widgets.sign_explorer()
    box.controls["angle"].value = 90.0
    turns = []
    for seed in range(10):
        box.controls["seed"].value = seed
        top = box.state["corners"][1] - box.state["corners"][0]  # the sign's top edge, along its horizontal bar
        turns.append(abs(math.degrees(math.atan2(top[1].item(), top[0].item()))))
    assert box.state["label"] == 0 and any(45 < t < 135 for t in turns)


# -- every bullet is driven -------------------------------------------------------------------------------------------


def _driven() -> dict[str, list[str]]:
    """The words each test above quotes with ``said(lesson, words)``, by lesson (read from this file's syntax)."""
    import ast

    quoted: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(Path(__file__).read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "said":
            lesson, words = (ast.literal_eval(arg) for arg in node.args)
            quoted.setdefault(lesson, []).append(" ".join(words.split()))
    return quoted


@pytest.mark.parametrize("lesson", course.lessons(), ids=lambda lesson: lesson.slug)
def test_every_try_this_bullet_has_a_test(lesson):
    """Each bullet of a lesson's "Try this" list (the lesson's and its dashboard's: one list, stn_course.course) is
    quoted by a test here that drives it."""
    quoted = _driven().get(lesson.number, [])
    untested = [item for item in lesson.try_this if not any(words.rstrip(";.") in " ".join(item.split())
                                                            or " ".join(item.split()) in words for words in quoted)]
    assert not untested, f"lesson {lesson.number}: 'Try this' bullets no test drives: {untested}"
