"""Lesson 2 checks: independent solutions pass, known bugs fail (mutation tests).

The bugs are the ones found in popular STN code: the ``x = 0.5 * ((x + 1) * (W - 2))`` rescaling, a truncating
int cast instead of floor (wrong for negative coordinates), clamping neighbours instead of zero padding, swapped
(x, y), the wrong ``align_corners`` formula, a one-step ``linspace`` on a 1-pixel side, a reflection that divides
by a zero-length span. The bug hunt's counterexample (``02.truncation_counterexample``) passes for any point that
exposes the colleague's ``truncating_sampler`` and fails for the points a first guess picks (far outside, the near
band of a 1-pixel image, a pinned 1-pixel side).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course.bug_hunt import blog_sampler, clamping_sampler, swapped_xy_sampler, truncating_sampler
from stn_course.checks import run_check
from stn_course.checks.lesson02 import numbered_image
from stn_course.checks.questions import NOT_THIS_ONE
from stn_course.sampling import bilinear_sample as package_bilinear_sample
from stn_course.sampling import identity_error as package_identity_error
from stn_course.sampling import nearest_sample

SAMPLERS = {  # the samplers lesson 2's identity table compares
    "the package's bilinear_sample (correct)": package_bilinear_sample,
    "the package's nearest_sample (correct)": nearest_sample,
    "the blog sampler (W - 2 rescaling, clipped neighbours)": blog_sampler,
    "a sampler that swaps x and y": swapped_xy_sampler,
    "a sampler that clamps instead of reading zeros": clamping_sampler,
    "a sampler that truncates instead of flooring": truncating_sampler,
}

from .check_helpers import assert_fails, assert_passes, get


# --- a learner-style implementation with switchable bugs --------------------------------------------------------


def unnormalize(coord, size, align_corners, bug=None):
    if bug == "w-2":
        return 0.5 * ((coord + 1) * (size - 2))
    if bug == "swapped":
        align_corners = not align_corners
    if bug == "no-half":
        return (coord + 1) / 2 * size
    if bug == "one-pixel-reads-0" and size == 1:  # the colleague's special case, kept after fixing the swap
        return coord * 0
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def floor(x, bug=None, lib=np):
    if bug == "trunc":
        return lib.trunc(x)
    return lib.floor(x)


def bilinear_np(input, grid, align_corners=False, bug=None):
    n, c, h, w = input.shape
    gx, gy = (grid[..., 1], grid[..., 0]) if bug == "swap" else (grid[..., 0], grid[..., 1])
    x = unnormalize(gx, w, align_corners, bug)
    y = unnormalize(gy, h, align_corners, bug)
    x0, y0 = floor(x, bug).astype(np.int64), floor(y, bug).astype(np.int64)
    out = np.zeros((n, c) + grid.shape[1:3])
    b = np.arange(n)[:, None, None]
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - np.abs(x - xi)) * (1 - np.abs(y - yi))
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            values = input[b, :, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]  # (N, H_out, W_out, C)
            if bug != "clamp":
                values = values * inside[..., None]
            out += np.moveaxis(values, -1, 1) * weight[:, None]
    return out


def reflect(x, low, high, bug=None):
    """Mirror x into [low, high] (both pixel coordinates), the way grid_sample does."""
    if high == low and bug != "zero-span":
        return torch.zeros_like(x)
    span = high - low
    d = (x - low).abs()
    flips = torch.floor(d / span)
    extra = d - flips * span
    return torch.where(flips % 2 == 0, low + extra, high - extra)


def bilinear_torch(input, grid, padding_mode="zeros", align_corners=False, bug=None):
    n, c, h, w = input.shape
    if bug == "detached-grid":  # the text: gradients must reach the grid (that is what trains the localisation net)
        grid = grid.detach()
    gx, gy = (grid[..., 1], grid[..., 0]) if bug == "swap" else (grid[..., 0], grid[..., 1])
    x = unnormalize(gx, w, align_corners, bug)
    y = unnormalize(gy, h, align_corners, bug)
    if padding_mode == "border":
        x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    elif padding_mode == "reflection":
        if align_corners or bug == "reflect-centres":
            x, y = reflect(x, 0, w - 1, bug), reflect(y, 0, h - 1, bug)
        else:
            x, y = reflect(x, -0.5, w - 0.5, bug), reflect(y, -0.5, h - 0.5, bug)
        x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    x0, y0 = floor(x, bug, torch).long(), floor(y, bug, torch).long()
    flat = input.reshape(n, c, h * w)
    out = 0
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            if bug == "strict-border":  # > 0 instead of >= 0: the first row and column count as outside
                inside = (xi > 0) & (xi < w) & (yi > 0) & (yi < h)
            index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).reshape(n, 1, -1).expand(n, c, -1)
            values = torch.gather(flat, 2, index).reshape(n, c, *grid.shape[1:3])
            if bug != "clamp":
                values = values * inside[:, None]
            out = out + values * weight[:, None]
    return out


def affine_grid(theta, size, align_corners=False, bug=None):
    n, _, h, w = size

    def axis(steps):
        if steps == 1 and bug == "one-step-linspace":  # linspace(-1, 1, 1) is [-1]: the end, not the centre
            return torch.linspace(-1, 1, 1, dtype=theta.dtype) * (1 if align_corners else 0)
        if steps == 1:
            return torch.zeros(1, dtype=theta.dtype)
        coords = torch.linspace(-1, 1, steps, dtype=theta.dtype)
        return coords if (align_corners or bug == "always-corners") else coords * (steps - 1) / steps

    ys, xs = torch.meshgrid(axis(h), axis(w), indexing="ij")
    first, second = (ys, xs) if bug == "swap" else (xs, ys)
    base = torch.stack([first, second, torch.ones_like(xs)], -1).reshape(1, h * w, 3)
    if bug == "no-translation":
        return (base[..., :2] @ theta[:, :, :2].transpose(1, 2)).reshape(n, h, w, 2)
    return (base @ theta.transpose(1, 2)).reshape(n, h, w, 2)


def blog_identity_error(height, width, bug=None):
    """The prediction, by hand: column j reads j/(W - 1) short, row i reads i/(H - 1) rows (worth W each) short."""
    if bug == "one-pixel":  # "it is off by a pixel"
        return 1.0
    if bug == "row-only":  # forgets the column's share
        return float(width)
    if bug == "copied":  # the 4×5 printout's number
        return 6.0
    return float(width * (height - 1) / (height - 1) + (width - 1) / (width - 1))


def truncation_counterexample(height, width, align_corners, bug=None):
    """A learner's point: half a pixel before the first centre along a free axis longer than 1 pixel (the cast's
    wrong neighbour, pixel 1, is inside), 1.5 pixels before it on a 1-pixel one; the other coordinate on row/column 0."""
    def normalized(pixel, size):
        return 2 * pixel / (size - 1) - 1 if align_corners else (2 * pixel + 1) / size - 1

    if bug == "far-outside":  # "outside the image": zeros, right by accident
        return -5.0, 0.0
    if bug == "corner":  # u = v = -1: half a pixel out only with align_corners=False
        return -1.0, -1.0
    x_pinned = width == 1 and align_corners and bug != "pinned"  # "pinned": forgets it (divides by zero)
    along, across = (height, width) if x_pinned else (width, height)
    out = -0.5 if along > 1 or bug == "near-band" else -1.5  # "near-band": half a pixel out on a 1-pixel side too
    first = normalized(out, along)
    centre = 0.0 if across == 1 else normalized(0.0, across)
    return (centre, first) if x_pinned else (first, centre)


# --- correct solutions pass ----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid behavior")  # torch's 1-pixel remark
@pytest.mark.parametrize("check_id, fn", [
    ("02.affine_grid", affine_grid),
    ("02.affine_grid", lambda theta, size, align_corners=False: F.affine_grid(theta, size, align_corners)),
    ("02.bilinear_sample_np", bilinear_np),
    ("02.bilinear_sample", bilinear_torch),
    ("02.blog_identity_error", blog_identity_error),
    ("02.truncation_counterexample", truncation_counterexample),
])
def test_independent_solutions_pass(check_id, fn):
    assert_passes(check_id, fn)


# --- known bugs fail -----------------------------------------------------------------------------------------


def test_a_one_pixel_axis_needs_no_special_case():
    """Exercise 2's derivation: a 1-pixel axis reads u/2 with align_corners=False (its pixel spans [-1/2, 1/2])."""
    coord = torch.tensor([-1.0, 0.5, 1.0], dtype=torch.float64)
    from stn_course.sampling import unnormalize as package_unnormalize
    torch.testing.assert_close(package_unnormalize(coord, 1, True), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(package_unnormalize(coord, 1, False), coord / 2)


@pytest.mark.parametrize("bug", ["swap", "always-corners", "no-translation", "one-step-linspace"])
def test_affine_grid_bugs_fail(bug):
    assert_fails("02.affine_grid", lambda t, s, align_corners=False: affine_grid(t, s, align_corners, bug))


@pytest.mark.parametrize("bug, words", [("always-corners", "align_corners=False"),
                                        ("one-step-linspace", "one centre of a 1-pixel side")])
def test_affine_grid_failures_point_at_their_kink(bug, words):
    """The first failing case's hint names the kind of mistake: the convention of the longer side's ends for a
    swapped convention, the single centre of a 1-pixel side for a one-step linspace – never the centres' values."""
    result = run_check(get("02.affine_grid"), lambda t, s, align_corners=False: affine_grid(t, s, align_corners, bug), 0)
    failed = next(r for r in result.results if not r.passed)
    assert words in failed.case.hint and "linspace(" not in failed.case.hint, failed.case.hint


@pytest.mark.parametrize("bug", ["w-2", "trunc", "clamp", "swap", "swapped", "no-half"])
def test_numpy_sampler_bugs_fail(bug):
    assert_fails("02.bilinear_sample_np", lambda i, g, align_corners=False: bilinear_np(i, g, align_corners, bug))


@pytest.mark.parametrize("bug", ["w-2", "trunc", "clamp", "swap", "swapped", "reflect-centres", "detached-grid",
                                 "strict-border", "zero-span"])
def test_torch_sampler_bugs_fail(bug):
    assert_fails("02.bilinear_sample",
                 lambda i, g, padding_mode="zeros", align_corners=False: bilinear_torch(i, g, padding_mode,
                                                                                        align_corners, bug))


def test_the_blog_sampler_fails_the_sampler_check():
    assert_fails("02.bilinear_sample", blog_sampler)


@pytest.mark.parametrize("check_id, wrong", [
    ("02.blog_identity_error", lambda h, w: blog_identity_error(h, w, "one-pixel")),
    ("02.blog_identity_error", lambda h, w: blog_identity_error(h, w, "row-only")),
    ("02.blog_identity_error", lambda h, w: blog_identity_error(h, w, "copied")),
])
def test_wrong_answers_to_the_questions_fail_without_the_expected_value(check_id, wrong):
    assert_fails(check_id, wrong)
    check = get(check_id)
    failed = next(r for r in run_check(check, wrong, 0).results if not r.passed)
    expected = check.reference(*failed.case.args)
    shown = [f"{v:.3g}" for v in (expected if isinstance(expected, tuple) else (expected,))]
    assert NOT_THIS_ONE in failed.message and not any(s in failed.message for s in shown), failed.message


def test_the_blog_prediction_is_what_the_blog_sampler_does():
    """W + 1 for every H, W >= 2, measured on the numbered image (the prediction's closed form)."""
    for height, width in [(2, 2), (4, 5), (7, 3), (2, 11), (13, 8)]:
        grid = F.affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], (1, 1, height, width), align_corners=True)
        image = numbered_image(height, width)
        assert (blog_sampler(image, grid) - image).abs().max().item() == pytest.approx(width + 1, abs=1e-9)


# --- the numbers the bug hunt teaches ------------------------------------------------------------------------


def test_the_identity_test_separates_the_samplers():
    image = torch.rand(1, 1, 6, 5, dtype=torch.float64) + 0.5  # no zero pixels, so a lost pixel always shows
    for name, sampler in SAMPLERS.items():
        for align_corners in (False, True):
            error = package_identity_error(sampler, image, align_corners)
            if "correct" in name or "clamps" in name or "truncates" in name:  # invisible to the identity test
                assert error < 1e-12, (name, align_corners, error)
            else:
                assert error > 0.1, (name, align_corners, error)


def test_the_blog_sampler_loses_the_last_row_and_column():
    """With W - 2 the identity grid reaches only column W - 2: the output is a stretched copy of columns 0..W-2."""
    image = torch.arange(1.0, 1 + 4 * 6, dtype=torch.float64).view(1, 1, 4, 6)
    grid = F.affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], (1, 1, 4, 6), align_corners=True)
    out = blog_sampler(image, grid)
    assert out[0, 0, 0, 0] == image[0, 0, 0, 0]
    assert out[0, 0, -1, -1] == image[0, 0, -2, -2]  # bottom-right reads pixel (H-2, W-2)
    assert not torch.isin(image[0, 0, -1, :], out).any() and out.max() < image[0, 0, -1, 0]


# --- the counterexample hunt ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bug, case", [("far-outside", 1), ("corner", 2), ("near-band", 5), ("pinned", 4)])
def test_first_guesses_at_the_counterexample_fail_in_kind_on_a_visible_case(bug, case):
    """Far outside (zeros either way), u = v = -1 (inside for align_corners=True), the near band of a 1×1 image (the
    cast's wrong neighbour is outside too), a pinned 1-pixel side (a division by zero): each fails on the visible case named, with a
    message about the kind of mistake and no expected point."""
    result = run_check(get("02.truncation_counterexample"), lambda h, w, a: truncation_counterexample(h, w, a, bug), 0)
    first = next(i for i, r in enumerate(result.results) if not r.passed)
    failed = result.results[first]
    assert first == case - 1, (first, failed.case.description)
    words = "ZeroDivisionError" if bug == "pinned" else "correctly"
    assert words in failed.message, failed.message
    expected = get("02.truncation_counterexample").reference(*failed.case.args)
    answer = () if bug == "pinned" else truncation_counterexample(*failed.case.args, bug)
    assert not any(f"{value:.6g}" in failed.message for value in expected if value not in (0, *answer)), failed.message


def test_the_colleagues_sampler_passes_its_tests_and_fails_at_the_counterexample():
    """What Exercise 5 says: the identity test and random grids in [-1, 1] with align_corners=True pass (the
    identity row of test_the_identity_test_separates_the_samplers covers both conventions); a point in the two
    pixels left of the image does not; a point far outside reads zeros either way."""
    torch.manual_seed(0)
    image = torch.rand(2, 3, 5, 7, dtype=torch.float64) + 0.5
    grid = torch.rand(2, 6, 6, 2, dtype=torch.float64) * 2 - 1
    right = F.grid_sample(image, grid, align_corners=True)
    torch.testing.assert_close(truncating_sampler(image, grid, align_corners=True), right)
    assert (truncating_sampler(image, grid, align_corners=False) - F.grid_sample(image, grid, align_corners=False)).abs().max() > 0.1
    for x, gap in ((-0.5, 0.5), (-0.9, 0.5), (-1.5, 0.5), (-2.5, 0.0), (6.5, 0.0)):  # pixel x on row 0, 5×7 image
        point = torch.tensor([[[[(2 * x + 1) / 7 - 1, 1 / 5 - 1]]]], dtype=torch.float64)
        wrong = truncating_sampler(image[:1, :1], point)
        assert ((wrong - F.grid_sample(image[:1, :1], point, align_corners=False)).abs().item() > 0.2) == (gap > 0), x
