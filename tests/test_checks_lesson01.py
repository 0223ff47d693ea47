"""Lesson 1 checks: independent solutions pass, known bugs fail (mutation tests)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from .check_helpers import assert_fails, assert_passes


# --- independent solutions, written the way a learner would (plain formulas, no stn_course.affine) ------------


def rotation_matrix(angle):
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def translation_matrix(tx, ty):
    return torch.tensor([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]], dtype=torch.float64)


def rotate_about(angle, size, centre=lambda n: (n - 1) / 2, reverse=False):
    """The turn about the image centre; ``centre=lambda n: n / 2`` and ``reverse=True`` switch in the known bugs."""
    cx, cy = centre(size[1]), centre(size[0])
    if reverse:  # turns about -c
        return translation_matrix(-cx, -cy) @ rotation_matrix(angle) @ translation_matrix(cx, cy)
    return translation_matrix(cx, cy) @ rotation_matrix(angle) @ translation_matrix(-cx, -cy)


def apply_affine(matrix, points):
    ones = torch.ones(*points.shape[:-1], 1, dtype=points.dtype)
    return (torch.cat([points, ones], -1) @ matrix.transpose(-1, -2))[..., :2]


def normalization_matrix(size, align_corners, one_pixel=(0.0, 0.0)):
    """Pixel -> normalized; ``one_pixel`` is the (scale, offset) of a 1-pixel side with align_corners=True."""
    h, w = size

    def axis(n):
        if align_corners:
            return (2 / (n - 1), -1.0) if n > 1 else one_pixel
        return 2 / n, 1 / n - 1

    (ax, bx), (ay, by) = axis(w), axis(h)
    return torch.tensor([[ax, 0, bx], [0, ay, by], [0, 0, 1]], dtype=torch.float64)


def pixel_to_theta(matrix, in_size, out_size, align_corners, invert_n_out=False, normalization=normalization_matrix):
    """N_in @ A @ D_out with the normalization lines written out; the keyword arguments switch in known bugs."""
    n_in = normalization(in_size, align_corners)
    if invert_n_out:  # singular for a 1-pixel output side with align_corners=True
        d_out = torch.linalg.inv(normalization_matrix(out_size, align_corners))
    else:  # x = (u + 1)(n - 1)/2 (align_corners) or ((u + 1) n - 1)/2, written directly
        (h, w) = out_size
        sx, sy = ((w - 1) / 2, (h - 1) / 2) if align_corners else (w / 2, h / 2)
        d_out = torch.tensor([[sx, 0.0, (w - 1) / 2], [0.0, sy, (h - 1) / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return (n_in @ matrix @ d_out)[..., :2, :]


def test_pixel_to_theta_by_inverting_n_out_fails_on_a_1_pixel_side():
    assert_fails("01.pixel_to_theta", lambda *a: pixel_to_theta(*a, invert_n_out=True))


def inverse_warp(image, motion, to_index=torch.round, swap_xy=False, zeros_outside=True, last=torch.ones_like,
                 transpose=True):
    """Nearest-neighbour inverse warp; the keyword arguments switch in the known bugs."""
    n, c, h, w = image.shape
    back = torch.linalg.inv(motion.double())
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    src = torch.stack([xs, ys, last(xs)], -1) @ (back.T if transpose else back)
    sx, sy = to_index(src[..., 0]).long(), to_index(src[..., 1]).long()
    if swap_xy:
        sx, sy = sy, sx
    values = image[..., sy.clamp(0, h - 1), sx.clamp(0, w - 1)]
    return values * ((sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)) if zeros_outside else values


# --- the correct solutions pass ----------------------------------------------------------------------------


@pytest.mark.parametrize("check_id, fn", [
    ("01.rotation_matrix", rotation_matrix),
    ("01.rotation_matrix", lambda a: rotation_matrix(a).float().double()),  # float64 as specified, even if rounded
    ("01.rotate_about", rotate_about),
    ("01.inverse_warp", inverse_warp),
])
def test_independent_solutions_pass(check_id, fn):
    assert_passes(check_id, fn)


def test_pixel_to_theta_solution_passes():
    """N_in @ A @ inv(N_out); the check avoids 1-pixel outputs with align_corners=True, where N_out is singular."""
    assert_passes("01.pixel_to_theta", pixel_to_theta)


def test_pixel_to_theta_agrees_with_f_affine_grid_on_a_real_image():
    """Independent of stn_course.affine: the theta drives F.affine_grid to the input pixels the matrix names."""
    motion = rotate_about(0.3, (6, 9)) @ translation_matrix(1.5, -0.5)  # about (4, 2.5)
    for align_corners in (False, True):
        theta = pixel_to_theta(motion, (6, 9), (5, 7), align_corners)[None]
        grid = F.affine_grid(theta, (1, 1, 5, 7), align_corners=align_corners)[0]
        ys, xs = torch.meshgrid(torch.arange(5.0, dtype=torch.float64), torch.arange(7.0, dtype=torch.float64),
                                indexing="ij")
        expected = apply_affine(motion, torch.stack([xs, ys], -1).reshape(-1, 2)).reshape(5, 7, 2)
        w, h = 9, 6
        if align_corners:
            pixels = torch.stack([(grid[..., 0] + 1) / 2 * (w - 1), (grid[..., 1] + 1) / 2 * (h - 1)], -1)
        else:
            pixels = torch.stack([((grid[..., 0] + 1) * w - 1) / 2, ((grid[..., 1] + 1) * h - 1) / 2], -1)
        torch.testing.assert_close(pixels, expected, rtol=0, atol=1e-12)


# --- known bugs fail -------------------------------------------------------------------------------------------


def test_rotation_sign_flipped_fails():
    assert_fails("01.rotation_matrix", lambda a: rotation_matrix(-a))


def test_rotation_in_degrees_fails():
    assert_fails("01.rotation_matrix", lambda a: rotation_matrix(math.degrees(a)))


def first_failure_message(check_id, fn):
    """The message of the first failing case of ``fn`` on ``check_id``'s visible cases (it must fail)."""
    from stn_course.checks import run_check

    from .check_helpers import get

    assert_fails(check_id, fn)
    return next(r for r in run_check(get(check_id), fn, 0).results if not r.passed).message


@pytest.mark.parametrize("wrong, kind", [
    (lambda a: rotation_matrix(-a), "counter-clockwise on screen"),  # the y-up habit: "clockwise is negative"
    (lambda a: rotation_matrix(math.degrees(a)), "degrees"),
])
def test_a_wrong_rotation_is_told_the_kind_of_slip(wrong, kind):
    message = first_failure_message("01.rotation_matrix", wrong)
    assert kind in message, message


@pytest.mark.parametrize("wrong, kind", [
    (lambda a, size: rotate_about(a, size, centre=lambda n: n / 2), "half a pixel off"),  # the habit (W/2, H/2)
    (lambda a, size: rotate_about(a, size, reverse=True), "turns about the point -c"),  # T(-c) R T(c)
    (lambda a, size: rotate_about(a, size[::-1]), "x and y are swapped"),  # the centre from (W, H)
])
def test_a_wrong_rotate_about_fails_and_is_told_the_kind_of_slip(wrong, kind):
    message = first_failure_message("01.rotate_about", wrong)
    assert kind in message, message


def test_rotate_about_with_the_centre_half_a_pixel_off_fails_on_a_1_pixel_image_too():
    """The kink: a 1×1 image's centre is its only pixel, (0, 0); (W/2, H/2) = (0.5, 0.5) moves it."""
    import numpy as np

    from .check_helpers import get

    check = get("01.rotate_about")
    one_pixel = [case for case in check.cases(np.random.default_rng(0)) if case.args[1] == (1, 1)]
    assert one_pixel
    for case in one_pixel:
        wrong = rotate_about(*case.args, centre=lambda n: n / 2)
        assert not check.compare(check.reference(*case.args), wrong, case)[0]
        assert check.compare(check.reference(*case.args), rotate_about(*case.args), case)[0]


def test_rotate_about_the_origin_or_translated_only_fails():
    assert_fails("01.rotate_about", lambda a, size: rotation_matrix(a))
    assert_fails("01.rotate_about", lambda a, size: rotation_matrix(a) @ translation_matrix(-(size[1] - 1) / 2,
                                                                                            -(size[0] - 1) / 2))


def test_inverse_warp_without_the_homogeneous_one_fails():
    """Without the 1 the translation column multiplies 0: a shift moves nothing."""
    assert_fails("01.inverse_warp", lambda image, motion: inverse_warp(image, motion, last=torch.zeros_like))


def test_inverse_warp_with_the_untransposed_matrix_fails():
    assert_fails("01.inverse_warp", lambda image, motion: inverse_warp(image, motion, transpose=False))


@pytest.mark.parametrize("normalization", [
    lambda size, ac: normalization_matrix(size, not ac),  # the conventions swapped
    lambda size, ac: torch.tensor([[2 / size[1], 0, -1], [0, 2 / size[0], -1], [0, 0, 1]],
                                  dtype=torch.float64),  # u = 2x/W - 1: neither convention, half a pixel off
    lambda size, ac: normalization_matrix(size[::-1], ac),  # height and width swapped
])
def test_pixel_to_theta_with_a_wrong_normalization_fails(normalization):
    assert_fails("01.pixel_to_theta", lambda *a: pixel_to_theta(*a, normalization=normalization))


@pytest.mark.parametrize("one_pixel", [(0.0, -1.0), (1.0, -1.0), (2.0, 0.5)])
def test_pixel_to_theta_with_any_finite_row_for_a_1_pixel_input_side_passes(one_pixel):
    """align_corners=True: grid_sample reads a 1-pixel side's only pixel whatever u, so the check (which compares
    where the sampler reads) accepts any finite row there – the lesson no longer hands over a choice."""
    normalization = lambda size, ac: normalization_matrix(size, ac, one_pixel=one_pixel)  # noqa: E731
    assert_passes("01.pixel_to_theta", lambda *a: pixel_to_theta(*a, normalization=normalization))


def test_pixel_to_theta_dividing_by_zero_on_a_1_pixel_side_is_told_the_theta_is_not_finite():
    """The natural 2/(n - 1) in torch at n = 1 gives inf (nan after the products): a diagnosis, no value."""
    def natural(size, ac):
        h, w = (torch.tensor(float(n), dtype=torch.float64) for n in size)
        ax, ay = (2 / (w - 1), 2 / (h - 1)) if ac else (2 / w, 2 / h)
        bx, by = (-1.0, -1.0) if ac else (1 / w - 1, 1 / h - 1)
        return torch.tensor([[float(ax), 0, float(bx)], [0, float(ay), float(by)], [0, 0, 1]], dtype=torch.float64)
    message = first_failure_message("01.pixel_to_theta", lambda *a: pixel_to_theta(*a, normalization=natural))
    assert "inf or nan" in message and "whatever u" in message


def test_pixel_to_theta_in_the_other_convention_is_told_so():
    def wrong(matrix, in_size, out_size, align_corners):
        return pixel_to_theta(matrix, in_size, out_size, not align_corners,
                              normalization=lambda s, ac: normalization_matrix(s, ac))
    message = first_failure_message("01.pixel_to_theta", wrong)
    assert "other align_corners convention" in message


def test_pixel_to_theta_in_float32_passes():
    assert_passes("01.pixel_to_theta", lambda *a: pixel_to_theta(*a).float())


def test_pixel_to_theta_through_the_pseudo_inverse_of_n_out_passes():
    """The lesson's fold says so: pinv leaves a 1-pixel side's zero scale at zero – the line written directly."""
    def pinv_solution(matrix, in_size, out_size, align_corners):
        n_out = normalization_matrix(out_size, align_corners)
        return (normalization_matrix(in_size, align_corners) @ matrix @ torch.linalg.pinv(n_out))[..., :2, :]
    assert_passes("01.pixel_to_theta", pinv_solution)


def test_pixel_to_theta_in_the_wrong_order_fails():
    def wrong(matrix, in_size, out_size, align_corners):
        n_in = normalization_matrix(in_size, align_corners)
        n_out = normalization_matrix(out_size, align_corners)
        return (n_out @ matrix @ torch.linalg.pinv(n_in))[..., :2, :]  # pinv: N_in is singular for 1 pixel
    assert_fails("01.pixel_to_theta", wrong)


def test_pixel_to_theta_without_denormalizing_the_output_fails():
    def wrong(matrix, in_size, out_size, align_corners):
        return (normalization_matrix(in_size, align_corners) @ matrix)[..., :2, :]
    assert_fails("01.pixel_to_theta", wrong)


def test_pixel_to_theta_with_the_input_size_for_the_output_fails():
    assert_fails("01.pixel_to_theta", lambda m, i, o, ac: pixel_to_theta(m, i, i, ac))


def test_forward_instead_of_inverse_mapping_fails():
    assert_fails("01.inverse_warp", lambda image, motion: inverse_warp(image, torch.linalg.inv(motion.double())))


def test_truncating_instead_of_rounding_fails():
    # .long() truncates: floor for x >= 0, but -0.7 -> 0
    assert_fails("01.inverse_warp", lambda image, motion: inverse_warp(image, motion, to_index=lambda t: t))


def test_adding_a_half_and_truncating_fails_just_beyond_the_left_and_top_borders():
    """(x + 0.5).long() rounds every source inside the image, but truncates -0.6 + 0.5 = -0.1 to pixel 0."""
    assert_fails("01.inverse_warp", lambda image, motion: inverse_warp(image, motion, to_index=lambda t: t + 0.5))


@pytest.mark.parametrize("wrong, kind", [
    (lambda image, motion: inverse_warp(image, torch.linalg.inv(motion.double())), "opposite way to the motion"),
    (lambda image, motion: inverse_warp(image, motion, to_index=lambda t: t), "a neighbour of their nearest"),
    (lambda image, motion: inverse_warp(image, motion, to_index=lambda t: t + 0.5), "beyond the left or top border"),
    (lambda image, motion: inverse_warp(image, motion, zeros_outside=False), "must read 0"),
])
def test_a_wrong_inverse_warp_is_told_the_kind_of_slip(wrong, kind):
    message = first_failure_message("01.inverse_warp", wrong)
    assert kind in message, message


def test_swapped_x_and_y_fails():
    assert_fails("01.inverse_warp", lambda image, motion: inverse_warp(image, motion, swap_xy=True))


def test_clamping_instead_of_zeros_fails():
    assert_fails("01.inverse_warp", lambda image, motion: inverse_warp(image, motion, zeros_outside=False))


def test_lesson_one_has_at_least_five_visible_checks():
    from stn_course.checks import all_checks
    assert len([c for c in all_checks(include_hidden=False) if c.id.startswith("01.")]) >= 5


def test_a_float32_matrix_fails_where_the_docstring_says_float64_and_is_diagnosed_as_a_dtype():
    """rotation_matrix is specified "(3, 3) float64": right values in float32 fail on its own check with a dtype
    diagnosis, not later on rotate_about with a rotation-order hint."""
    import math

    from stn_course.checks import run_check
    from stn_course.checks import get as get_check

    def rotation32(angle):
        c, s = math.cos(angle), math.sin(angle)
        return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float32)

    result = run_check(get_check("01.rotation_matrix"), rotation32, 0)
    assert not result.passed and result.first_failure.property == "dtype"
    assert not run_check(get_check("01.rotation_matrix"), lambda a: rotation32(a).double(), 0).first_failure


# --- the questions: a learner's answer passes, wrong ones fail without being told the answer -------------------


def quarter_turn_theta(height, width, align_corners, sign=1.0):
    """The sampler's theta of a +90° turn about the centre; ``sign=-1`` writes the motion's instead (a known slip)."""
    hp, wp = (height - 1, width - 1) if align_corners else (height, width)
    return torch.tensor([[0.0, sign * hp / wp, 0.0], [-sign * wp / hp, 0.0, 0.0]], dtype=torch.float64)


def test_the_prediction_passes_with_a_learners_answer():
    assert_passes("01.turn_theta", quarter_turn_theta)


@pytest.mark.parametrize("check_id, wrong", [
    ("01.turn_theta", lambda h, w, ac: quarter_turn_theta(h, w, ac, sign=-1.0)),  # the motion, not the sampler's map
    ("01.turn_theta", lambda h, w, ac: quarter_turn_theta(h, w, False)),  # one convention for both
    ("01.turn_theta", lambda h, w, ac: quarter_turn_theta(2, 2, ac)),  # a rotation matrix, blind to the aspect
    ("01.turn_theta", lambda h, w, ac: quarter_turn_theta(w, h, ac)),  # the aspect ratio upside down
    ("01.turn_theta", lambda h, w, ac: quarter_turn_theta(64, 55, False)),  # the lesson's numbers, copied
])
def test_wrong_answers_fail_without_the_expected_value(check_id, wrong):
    from stn_course.checks import run_check
    from stn_course.checks.questions import NOT_THIS_ONE

    from .check_helpers import get

    assert_fails(check_id, wrong)
    check = get(check_id)
    result = run_check(check, wrong, 0)
    failed = next(r for r in result.results if not r.passed)
    expected = check.reference(*failed.case.args)
    values = expected.flatten().tolist() if isinstance(expected, torch.Tensor) else \
        (expected if isinstance(expected, tuple) else (expected,))
    shown = [f"{v:.3g}" for v in values if abs(v) > 1e-9]  # a 0 entry is no secret
    assert NOT_THIS_ONE in failed.message and not any(s in failed.message for s in shown), failed.message


@pytest.mark.parametrize("wrong, kind", [
    (lambda h, w, ac: quarter_turn_theta(h, w, ac, sign=-1.0), "turns the content the other way"),
    (lambda h, w, ac: quarter_turn_theta(h, w, not ac), "other align_corners convention"),
    (lambda h, w, ac: quarter_turn_theta(2, 2, ac), "ignore the shape of the image"),
    (lambda h, w, ac: quarter_turn_theta(w, h, ac), "aspect ratio is upside down"),
    (lambda h, w, ac: quarter_turn_theta(h, w, ac) + torch.tensor([[0.0, 0.0, 0.1], [0.0, 0.0, 0.0]],
                                                                  dtype=torch.float64), "the last column"),
])
def test_a_wrong_quarter_turn_theta_is_told_the_kind_of_slip_not_the_value(wrong, kind):
    from stn_course.checks import run_check

    from .check_helpers import get

    check = get("01.turn_theta")
    failed = next(r for r in run_check(check, wrong, 0).results if not r.passed)
    assert kind in failed.message, failed.message
    expected = check.reference(*failed.case.args)
    shown = {f"{v:.3g}" for v in expected.flatten().tolist() if abs(v) > 1e-9} | {f"{v:.2f}" for v in
                                                                                  expected.flatten().tolist()}
    assert not any(s in failed.message for s in shown - {"0.00", "-0.00"}), failed.message


# --- 01.chain_thetas: the one theta of two warps in a row ----------------------------------------------------


def homogeneous(theta):
    last = torch.zeros(*theta.shape[:-2], 1, 3, dtype=theta.dtype)
    last[..., 0, 2] = 1
    return torch.cat([theta, last], -2)


def chain_thetas(first, second, order="pull"):
    """first @ second (homogeneous); ``order`` switches in the known slips."""
    one, two = homogeneous(first), homogeneous(second)
    if order == "motions":  # composed like the motions you see (§3): the natural first answer
        return (two @ one)[..., :2, :]
    if order == "motion":  # the motion the two warps show, not its theta
        return torch.linalg.inv(one @ two)[..., :2, :]
    if order == "no translation":  # (2, 2) @ (2, 3): the first's shift is lost
        return first[..., :2] @ second
    if order == "added":
        return torch.cat([first[..., :2] @ second[..., :2], first[..., 2:] + second[..., 2:]], -1)
    return (one @ two)[..., :2, :]


def test_chain_thetas_passes_and_drives_two_warps_into_one():
    """Independent of stn_course.affine: the grid of the chained theta is the second grid read through the first."""
    assert_passes("01.chain_thetas", chain_thetas)
    first = torch.tensor([[0.8, 0.3, 0.1], [-0.2, 1.1, -0.4]], dtype=torch.float64)
    second = torch.tensor([[0.0, 1.2, 0.3], [-0.9, 0.1, 0.2]], dtype=torch.float64)
    two = F.affine_grid(second[None], (1, 1, 5, 7), align_corners=False)[0]  # where the second reads
    through_first = apply_affine(first, two.reshape(-1, 2)).reshape(5, 7, 2)  # where those points read
    one = F.affine_grid(chain_thetas(first, second)[None], (1, 1, 5, 7), align_corners=False)[0]
    torch.testing.assert_close(one, through_first, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order, kind", [
    ("motions", "in the order of the motions you see"),
    ("motion", "the motion the two warps show"),
    ("no translation", "a translation is lost"),
    ("added", "simply added"),
])
def test_a_wrong_chained_theta_fails_and_is_told_the_kind_of_slip_not_the_value(order, kind):
    from stn_course.checks import run_check
    from stn_course.checks.questions import NOT_THIS_ONE

    from .check_helpers import get

    wrong = lambda first, second: chain_thetas(first, second, order)  # noqa: E731
    assert_fails("01.chain_thetas", wrong)
    check = get("01.chain_thetas")
    for hidden in (False, True):
        result = run_check(check, wrong, 0, hidden=hidden) if hidden else run_check(check, wrong, 0)
        failed = [r for r in result.results if not r.passed]
        assert failed
        for r in failed:
            expected = check.reference(*r.case.args).flatten().tolist()
            shown = {f"{v:.3g}" for v in expected if abs(v) > 1e-9} | {f"{v:.2f}" for v in expected}
            assert NOT_THIS_ONE in r.message and not any(s in r.message for s in shown - {"0.00", "-0.00"}), r.message
        assert kind in failed[0].message, failed[0].message


def test_a_quarter_turn_about_the_wrong_centre_is_told_where_the_corner_pixel_went():
    message = first_failure_message("01.rotate_about", lambda a, size: rotate_about(a, size, centre=lambda n: n / 2))
    assert "sends the corner pixel (0, 0) to (4, 0)" in message and "half a pixel off" in message, message


def test_adding_a_half_and_truncating_already_fails_a_visible_case():
    """The trap the fold describes is met at the check, not only in the grader: a visible sub-pixel shift puts a
    source between -1 and -0.5. floor(x + 0.5) and torch.round both pass (no case holds a tie)."""
    from stn_course.checks import run_check

    from .check_helpers import get

    result = run_check(get("01.inverse_warp"), lambda i, m: inverse_warp(i, m, to_index=lambda t: t + 0.5), 0)
    assert not result.passed and "beyond the left or top border" in result.first_failure.message
    assert_passes("01.inverse_warp", lambda i, m: inverse_warp(i, m, to_index=lambda t: torch.floor(t + 0.5)))
