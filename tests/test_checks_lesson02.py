"""Lesson 2 checks: independent solutions pass, known bugs fail (mutation tests).

The bugs are the ones found in popular STN code: the ``x = 0.5 * ((x + 1) * (W - 2))`` rescaling, a truncating
int cast instead of floor (wrong for negative coordinates), clamping neighbours instead of zero padding, swapped
(x, y), the wrong ``align_corners`` formula.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course.bug_hunt import blog_sampler, clamping_sampler, swapped_xy_sampler
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


def lerp_1d(signal, x, bug=None):
    f = signal.numpy()
    xs = x.numpy()
    x0 = floor(xs, bug).astype(np.int64)
    t = xs - x0

    def read(i):
        if bug == "clamp":
            return f[np.clip(i, 0, len(f) - 1)]
        inside = (i >= 0) & (i < len(f))
        return np.where(inside, f[np.clip(i, 0, len(f) - 1)], 0.0)

    if bug == "ceil":  # x1 = ceil(x) with weights x1 - x and x - x0: both weights vanish on a sample
        x1 = np.ceil(xs).astype(np.int64)
        return torch.from_numpy((x1 - xs) * read(x0) + (xs - x0) * read(x1))
    if bug == "x-mask":  # "zeros outside 0 … L-1" read as f(x) = 0 for x outside [0, L-1]: no fade at the ends
        inside = (xs >= 0) & (xs <= len(f) - 1)
        return torch.from_numpy(np.where(inside, (1 - t) * read(x0) + t * read(x0 + 1), 0.0))
    return torch.from_numpy((1 - t) * read(x0) + t * read(x0 + 1))


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


def reflect(x, low, high):
    """Mirror x into [low, high] (both pixel coordinates), the way grid_sample does."""
    if high == low:
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
            x, y = reflect(x, 0, w - 1), reflect(y, 0, h - 1)
        else:
            x, y = reflect(x, -0.5, w - 0.5), reflect(y, -0.5, h - 0.5)
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


def zeros_fade_band(width, align_corners, bug=None):
    def normalize(x):
        if align_corners != (bug == "other-convention"):
            return 2 * x / (width - 1) - 1
        return (2 * x + 1) / width - 1

    if bug == "half-pixel":  # fades over the half pixel beyond the edge only
        return normalize(-0.5), normalize(-1.0)
    return normalize(0.0), normalize(-1.0)


# --- correct solutions pass ----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid behavior")  # torch's 1-pixel remark
@pytest.mark.parametrize("check_id, fn", [
    ("02.lerp_1d", lerp_1d),
    ("02.unnormalize", unnormalize),
    ("02.affine_grid", affine_grid),
    ("02.affine_grid", lambda theta, size, align_corners=False: F.affine_grid(theta, size, align_corners)),
    ("02.bilinear_sample_np", bilinear_np),
    ("02.bilinear_sample", bilinear_torch),
    ("02.blog_identity_error", blog_identity_error),
    ("02.zeros_fade_band", zeros_fade_band),
])
def test_independent_solutions_pass(check_id, fn):
    assert_passes(check_id, fn)


# --- known bugs fail -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bug", ["trunc", "clamp", "ceil", "x-mask"])
def test_lerp_1d_bugs_fail(bug):
    assert_fails("02.lerp_1d", lambda s, x: lerp_1d(s, x, bug))


@pytest.mark.parametrize("bug", ["ceil", "x-mask"])
def test_lerp_1d_edge_bugs_fail_on_a_visible_case_with_its_hint(bug):
    """The slips the exercise asks the learner to think about (a sample hit exactly, the ends, L = 1) fail on the
    first visible case, and its hint is shown."""
    from stn_course.checks import format_result, run_check

    from .check_helpers import get

    result = run_check(get("02.lerp_1d"), lambda s, x: lerp_1d(s, x, bug), 0)
    assert not result.passed
    text = format_result(result)
    assert "failed on case 1: a 1-sample signal" in text and "Hint for this case: with one sample" in text, text


@pytest.mark.parametrize("bug", ["w-2", "swapped", "no-half", "one-pixel-reads-0"])
def test_unnormalize_bugs_fail(bug):
    assert_fails("02.unnormalize", lambda c, s, a: unnormalize(c, s, a, bug))


def test_the_colleagues_one_pixel_special_case_is_right_only_with_align_corners_true():
    """Lesson 2's bug hunt: a 1-pixel axis reads u/2 with align_corners=False (its pixel spans [-1/2, 1/2])."""
    coord = torch.tensor([-1.0, 0.5, 1.0], dtype=torch.float64)
    from stn_course.sampling import unnormalize as package_unnormalize
    torch.testing.assert_close(package_unnormalize(coord, 1, True), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(package_unnormalize(coord, 1, False), coord / 2)


@pytest.mark.parametrize("bug", ["swap", "always-corners", "no-translation"])
def test_affine_grid_bugs_fail(bug):
    assert_fails("02.affine_grid", lambda t, s, align_corners=False: affine_grid(t, s, align_corners, bug))


@pytest.mark.parametrize("bug", ["w-2", "trunc", "clamp", "swap", "swapped", "no-half"])
def test_numpy_sampler_bugs_fail(bug):
    assert_fails("02.bilinear_sample_np", lambda i, g, align_corners=False: bilinear_np(i, g, align_corners, bug))


@pytest.mark.parametrize("bug", ["w-2", "trunc", "clamp", "swap", "swapped", "reflect-centres", "detached-grid",
                                 "strict-border"])
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
    ("02.zeros_fade_band", lambda w, a: zeros_fade_band(w, a, "other-convention")),
    ("02.zeros_fade_band", lambda w, a: zeros_fade_band(w, a, "half-pixel")),
    ("02.zeros_fade_band", lambda w, a: zeros_fade_band(w, a)[::-1]),  # the ends the other way round
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
            if "correct" in name or "clamps" in name:  # clamping is invisible to the identity test
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
