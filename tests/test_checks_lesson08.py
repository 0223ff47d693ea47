"""Mutation tests for the lesson 8 checks: the reference passes, known bugs fail, and the questions never show
their answer."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stn_course.checks import run_check
from stn_course.checks.lesson08 import point_pairs, start_view
from stn_course.checks.questions import NOT_THIS_ONE
from stn_course.data.signs import SIGN_CORNERS, homography, rectify
from stn_course.grids import projective_grid

from .check_helpers import fails, get, passes


# ---------------------------------------------------------------------------------------------------- learners


def dlt(src, dst, minus=True):
    x, y = src[..., 0].double(), src[..., 1].double()
    u, v = dst[..., 0].double(), dst[..., 1].double()
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    s = -1 if minus else 1
    rows_u = torch.stack([x, y, one, zero, zero, zero, s * u * x, s * u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, s * v * x, s * v * y], -1)
    h = torch.linalg.solve(torch.cat([rows_u, rows_v], 1), torch.cat([u, v], 1))
    return torch.cat([h, torch.ones_like(h[:, :1])], 1).view(-1, 3, 3).to(src.dtype)


def dlt_sign_slip(src, dst):  # +u x instead of -u x: the denominator multiplied to the wrong side
    return dlt(src, dst, minus=False)


def dlt_affine_only(src, dst):  # h7 = h8 = 0: least squares on the affine part – no perspective
    x = torch.cat([src.double(), torch.ones_like(src[..., :1]).double()], -1)
    a = torch.linalg.lstsq(x, dst.double()).solution.transpose(1, 2)
    bottom = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(src.shape[0], 1, 3)
    return torch.cat([a, bottom], 1).to(src.dtype)


def dlt_svd_unnormalised(src, dst):  # the null vector of the 8×9 system, not scaled to h9 = 1
    return dlt(src, dst) * 2.0


def rectify_learner(images, corners, out_size, backwards=True, align_corners=False):
    square = torch.tensor(SIGN_CORNERS, dtype=corners.dtype).expand_as(corners)
    h = homography(square, corners) if backwards else homography(corners, square)
    grid = projective_grid(h.to(images.dtype), (images.shape[0], images.shape[1], out_size, out_size), align_corners)
    return F.grid_sample(images, grid, align_corners=align_corners)


def rectify_forwards(images, corners, out_size):  # the homography canvas -> sign, the forward motion's inverse
    return rectify_learner(images, corners, out_size, backwards=False)


def rectify_align_corners(images, corners, out_size):
    return rectify_learner(images, corners, out_size, align_corners=True)


# ---------------------------------------------------------------------------------------------------- tests


def test_the_references_pass():
    assert passes("08.homography", dlt)
    assert passes("08.rectify", rectify_learner)
    assert passes("08.rectify", rectify)
    assert passes("08.point_pairs", point_pairs)
    assert passes("08.start_view", start_view)
    assert passes("08.start_view", lambda s, o: ((s - o) / 2, (s + o) / 2 - 1))  # the closed form


def test_homography_bugs_fail():
    assert fails("08.homography", dlt_sign_slip)
    assert fails("08.homography", dlt_affine_only)
    assert fails("08.homography", dlt_svd_unnormalised)


def test_rectify_bugs_fail():
    assert fails("08.rectify", rectify_forwards)
    assert fails("08.rectify", rectify_align_corners)


def test_rectify_failures_say_which_slip_without_values():
    """A wrong direction and the corner convention get different messages; neither prints the expected pixels."""
    from stn_course.checks import format_result, get, run_check

    forwards = format_result(run_check(get("08.rectify"), rectify_forwards, 0))
    corners = format_result(run_check(get("08.rectify"), rectify_align_corners, 0))
    assert "other way round" in forwards and "direction is right" not in forwards
    assert "direction is right" in corners and "pixel convention" in corners
    noise = format_result(run_check(get("08.rectify"), lambda i, c, o: rectify(i, c, o) + 0.1, 0))
    assert "direction is right" not in noise and "other way round" not in noise
    assert "expected" not in forwards.lower() and "expected" not in corners.lower()


def test_the_homography_maps_the_corners_and_rectify_inverts_the_generator():
    square = torch.tensor(SIGN_CORNERS, dtype=torch.float64)[None]
    quad = torch.tensor([[[-0.5, -0.4], [0.6, -0.5], [0.4, 0.7], [-0.6, 0.3]]], dtype=torch.float64)
    h = homography(square, quad)
    uvw = torch.cat([square, torch.ones(1, 4, 1, dtype=torch.float64)], -1) @ h.transpose(1, 2)
    assert torch.allclose(uvw[..., :2] / uvw[..., 2:], quad, atol=1e-12)
    assert h[0, 2, 2] == 1


def test_point_pairs_answers():
    assert [point_pairs(k, scale) for k, scale in ((9, True), (6, False), (3, False), (1, False), (12, True),
                                                   (32, False), (8, True))] == [4, 3, 2, 1, 6, 16, 4]
    # a learner who forgets that a pair gives two equations, one who forgets the scale, one who does not round up
    assert fails("08.point_pairs", lambda unknowns, up_to_scale: unknowns - up_to_scale)
    assert fails("08.point_pairs", lambda unknowns, up_to_scale: math.ceil(unknowns / 2))
    assert fails("08.point_pairs", lambda unknowns, up_to_scale: (unknowns - up_to_scale) // 2)


def test_a_wrong_count_is_not_told_the_right_one():
    result = run_check(get("08.point_pairs"), lambda unknowns, up_to_scale: 5, 0)
    assert not result.passed
    assert result.first_failure.message == NOT_THIS_ONE  # not "expected 4"
    assert "4" not in result.first_failure.message


def test_start_view_is_the_centred_window_measured_on_the_model():
    assert start_view(40, 28) == pytest.approx((6.0, 33.0), abs=1e-5)
    assert start_view(40, 27) == pytest.approx((6.5, 32.5), abs=1e-5)  # an odd difference: half-pixels
    assert start_view(28, 28) == pytest.approx((0.0, 27.0), abs=1e-5)


def test_start_view_wrong_predictions_fail_without_the_answer():
    check = get("08.start_view")
    for wrong in (lambda s, o: (0.0, s - 1.0),  # the whole canvas: the identity in normalized coordinates
                  lambda s, o: (s / 2 - o / 2, s / 2 + o / 2)):  # "centre ± half the view": one pixel too far
        result = run_check(check, wrong, 0)
        assert not result.passed
        assert result.first_failure.message == NOT_THIS_ONE
    # right for the lesson's 40 and 28, but floors the half-pixel of an odd difference; the lesson's answer copied:
    # the notebook's own check (visible cases, an odd difference among them) already rejects both
    floors = lambda s, o: ((s - o) // 2, (s - o) // 2 + o - 1)  # noqa: E731
    for wrong in (floors, lambda s, o: (6.0, 33.0)):
        visible = run_check(check, wrong, 0)
        assert not visible.passed and visible.first_failure.message == NOT_THIS_ONE
    # the visible answers looked up in a table: the hidden cases (other sizes) catch it
    table = {(40, 28): (6.0, 33.0), (40, 27): (6.5, 32.5), (33, 20): (6.5, 25.5)}
    assert run_check(check, lambda s, o: table[(s, o)], 0).passed
    assert not run_check(check, lambda s, o: table.get((s, o), (0.0, 0.0)), 0, hidden=True).passed
    assert run_check(check, lambda s, o: ((s - o) / 2, (s + o) / 2 - 1), 0, hidden=True).passed


def test_point_pairs_hidden_cases_catch_a_copied_four():
    assert run_check(get("08.point_pairs"), point_pairs, 0, hidden=True).passed
    assert not run_check(get("08.point_pairs"), lambda unknowns, up_to_scale: unknowns // 2 - up_to_scale + 1, 0,
                         hidden=True).passed
