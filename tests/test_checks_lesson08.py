"""Mutation tests for the lesson 8 checks: the reference passes, known bugs fail, and the questions never show
their answer."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stn_course.checks import run_check
from stn_course.checks.lesson08 import point_pairs, start_view
from stn_course.checks.questions import NOT_THIS_ONE
from stn_course.data.signs import SIGN_CORNERS, homography, rectify
from stn_course.grids import projective_grid
from stn_course.stn import num_params

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


def test_homography_bugs_fail():
    assert fails("08.homography", dlt_sign_slip)
    assert fails("08.homography", dlt_affine_only)
    assert fails("08.homography", dlt_svd_unnormalised)


def test_rectify_bugs_fail():
    assert fails("08.rectify", rectify_forwards)
    assert fails("08.rectify", rectify_align_corners)


def test_the_homography_maps_the_corners_and_rectify_inverts_the_generator():
    square = torch.tensor(SIGN_CORNERS, dtype=torch.float64)[None]
    quad = torch.tensor([[[-0.5, -0.4], [0.6, -0.5], [0.4, 0.7], [-0.6, 0.3]]], dtype=torch.float64)
    h = homography(square, quad)
    uvw = torch.cat([square, torch.ones(1, 4, 1, dtype=torch.float64)], -1) @ h.transpose(1, 2)
    assert torch.allclose(uvw[..., :2] / uvw[..., 2:], quad, atol=1e-12)
    assert h[0, 2, 2] == 1


def test_point_pairs_answers():
    assert [point_pairs(t) for t in ("rotation", "attention", "rts", "affine", "projective", "tps")] == \
        [1, 2, 2, 3, 4, 16]
    # a learner who forgets that a pair gives two equations, and one who does not round up
    assert fails("08.point_pairs", num_params)
    assert fails("08.point_pairs", lambda t: num_params(t) / 2)


def test_start_view_is_the_centre_and_wrong_answers_do_not_show_it():
    assert start_view() == "centre"
    for wrong in ("whole", "rectified", "varies"):
        result = run_check(get("08.start_view"), lambda wrong=wrong: wrong, 0)
        assert not result.passed
        assert result.first_failure.message == NOT_THIS_ONE


def test_a_wrong_count_is_not_told_the_right_one():
    result = run_check(get("08.point_pairs"), lambda transform: 5, 0)
    assert not result.passed
    assert result.first_failure.message == NOT_THIS_ONE  # not "expected 4"
