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
            if bug == "point-mask":  # "a point outside the image reads 0": the point, not its neighbours
                inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
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
    d = ((x - low) ** 2).sqrt() if bug == "sqrt-distance" else (x - low).abs()  # the same values; NaN slope at 0
    flips = torch.floor(d / span)
    extra = d - flips * span
    return torch.where(flips % 2 == 0, low + extra, high - extra)


def clamp(x, high, bug=None):
    """Into [0, high], flat on the bounds too (ATen counts a point exactly on a bound as clamped); torch.clamp has
    the same values but passes the gradient on its bounds."""
    if bug == "torch-clamp":
        return x.clamp(0, high)
    return torch.where((x > 0) & (x < high), x, x.detach().clamp(0, high))


def bilinear_torch(input, grid, padding_mode="zeros", align_corners=False, bug=None):
    n, c, h, w = input.shape
    if bug == "detached-grid":  # the text: gradients must reach the grid (that is what trains the localisation net)
        grid = grid.detach()
    gx, gy = (grid[..., 1], grid[..., 0]) if bug == "swap" else (grid[..., 0], grid[..., 1])
    x = unnormalize(gx, w, align_corners, bug)
    y = unnormalize(gy, h, align_corners, bug)
    if padding_mode == "border":
        x, y = clamp(x, w - 1, bug), clamp(y, h - 1, bug)
    elif padding_mode == "reflection":
        if align_corners or bug == "reflect-centres":
            x, y = reflect(x, 0, w - 1, bug), reflect(y, 0, h - 1, bug)
        else:
            x, y = reflect(x, -0.5, w - 0.5, bug), reflect(y, -0.5, h - 0.5, bug)
        x, y = clamp(x, w - 1, bug), clamp(y, h - 1, bug)
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


def blog_identity_error(height, width, rescale_max, bug=None):
    """The prediction, by hand: column j reads j/(W - 1) short, row i reads i/(H - 1) rows (worth W each) short; the
    "fix" reads the right positions but blacks out the last row and column (weights from clipped neighbours)."""
    if rescale_max == 0:
        if bug == "fix-is-exact":  # "W - 1 is the right rescaling": the natural first answer
            return 0.0
        if bug == "fix-like-original":
            return float(width + 1)
        if bug == "fix-last-column-only":  # the black column's top pixel, not its largest
            return float(width)
        return float(height * width)
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


@pytest.mark.parametrize("bug", ["w-2", "trunc", "clamp", "swap", "swapped", "no-half", "point-mask"])
def test_numpy_sampler_bugs_fail(bug):
    assert_fails("02.bilinear_sample_np", lambda i, g, align_corners=False: bilinear_np(i, g, align_corners, bug))


def test_the_edge_value_fails_first_on_the_visible_edge_case():
    """Exercise 2's prediction: at u = ±1 with align_corners=False zeros padding reads half the edge pixel. The edge
    value (neighbours clipped onto the border) passes the identity grid and fails first on the case with points
    exactly on the outer ends, whose hint names the half pixel. (Its twin, "a point outside reads 0", already loses
    the identity's last centre to rounding: test_numpy_sampler_bugs_fail.)"""
    result = run_check(get("02.bilinear_sample_np"),
                       lambda i, g, align_corners=False: bilinear_np(i, g, align_corners, "clamp"), 0)
    failed = next(r for r in result.results if not r.passed)
    assert "outer ends" in failed.case.description and "align_corners=False" in failed.case.description, \
        failed.case.description
    assert "half a pixel beyond its centre" in failed.case.hint, failed.case.hint
    # the lesson's row, diagnosed at its first predicted point (u = +1), in kind: the edge value, never torch's
    assert "1×4" in failed.case.description and "(u, v) = (1, 0)" in failed.message, failed.message
    assert "border padding" in failed.message and "7.5" not in failed.message, failed.message


@pytest.mark.parametrize("bug", ["w-2", "trunc", "clamp", "swap", "swapped", "reflect-centres", "detached-grid",
                                 "strict-border", "zero-span", "torch-clamp", "sqrt-distance"])
def test_torch_sampler_bugs_fail(bug):
    assert_fails("02.bilinear_sample",
                 lambda i, g, padding_mode="zeros", align_corners=False: bilinear_torch(i, g, padding_mode,
                                                                                        align_corners, bug))


@pytest.mark.parametrize("bug", ["torch-clamp", "sqrt-distance"])
def test_gradients_at_the_corners_of_the_padding_fail_on_the_visible_kink_case(bug):
    """torch.clamp (its backward passes the gradient on its bounds) and a mirror distance sqrt((x - low)**2) (NaN
    slope at 0) have the right values everywhere and the right gradients at random points: only the visible case
    that evaluates gradients exactly on the clamp bounds and mirror points catches them, diagnosed as a gradient at
    the kinks, without an expected value."""
    result = run_check(get("02.bilinear_sample"),
                       lambda i, g, padding_mode="zeros", align_corners=False: bilinear_torch(i, g, padding_mode,
                                                                                              align_corners, bug), 0)
    failed = [r for r in result.results if not r.passed]
    assert failed and all(r.case.kink and "mirror points" in r.case.description for r in failed), \
        [r.case.description for r in failed]
    assert failed[0].property == "gradient at the kinks" and "gradient" in failed[0].message, failed[0].message
    if bug == "sqrt-distance":
        assert "NaN" in failed[0].message, failed[0].message


def test_the_blog_sampler_fails_the_sampler_check():
    assert_fails("02.bilinear_sample", blog_sampler)


@pytest.mark.parametrize("check_id, wrong", [
    ("02.blog_identity_error", lambda h, w, r: blog_identity_error(h, w, r, "one-pixel")),
    ("02.blog_identity_error", lambda h, w, r: blog_identity_error(h, w, r, "row-only")),
    ("02.blog_identity_error", lambda h, w, r: blog_identity_error(h, w, r, "copied")),
    ("02.blog_identity_error", lambda h, w, r: blog_identity_error(h, w, r, "fix-last-column-only")),
])
def test_wrong_answers_to_the_questions_fail_without_the_expected_value(check_id, wrong):
    assert_fails(check_id, wrong)
    check = get(check_id)
    failed = next(r for r in run_check(check, wrong, 0).results if not r.passed)
    expected = check.reference(*failed.case.args)
    shown = [f"{v:.3g}" for v in (expected if isinstance(expected, tuple) else (expected,))]
    assert NOT_THIS_ONE in failed.message and not any(s in failed.message for s in shown), failed.message


def test_the_blog_prediction_is_what_the_blog_sampler_does():
    """W + 1 (the tutorial) and H W (the "fix") for every H, W >= 2, measured on the numbered image."""
    for height, width in [(2, 2), (4, 5), (7, 3), (2, 11), (13, 8), (40, 64), (17, 2)]:
        grid = F.affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], (1, 1, height, width), align_corners=True)
        image = numbered_image(height, width)
        assert (blog_sampler(image, grid) - image).abs().max().item() == pytest.approx(width + 1, abs=1e-9)
        fixed = blog_sampler(image, grid, rescale_max=0)
        assert (fixed - image).abs().max().item() == pytest.approx(height * width, abs=1e-9)
        assert (fixed[..., -1, :] == 0).all() and (fixed[..., :, -1] == 0).all()  # the black last row and column
        assert (fixed - image)[..., :-1, :-1].abs().max() < 1e-9  # and right everywhere else


@pytest.mark.parametrize("bug, rescale_max, words", [
    ("fix-is-exact", 0, "follow the last column"),
    ("fix-like-original", 0, "original version's error"),
])
def test_the_natural_answers_for_the_fixed_blog_sampler_are_diagnosed(bug, rescale_max, words):
    """The natural first answer for the "fix" is 0 (its rescaling is right): the first case of that version fails
    with a diagnosis that points at the clipping, in kind."""
    wrong = lambda h, w, r: blog_identity_error(h, w, r, bug)  # noqa: E731
    assert_fails("02.blog_identity_error", wrong)
    failed = [r for r in run_check(get("02.blog_identity_error"), wrong, 0).results if not r.passed]
    assert failed and all(r.case.args[2] == rescale_max for r in failed)
    assert words in failed[0].message and f"{failed[0].case.args[0] * failed[0].case.args[1]}" not in \
        failed[0].message, failed[0].message


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


# --- 02.centre_slope: the prediction of the backward's slope exactly on a pixel centre --------------------------


def centre_slope(values, x, padding_mode, align_corners, bug=None):
    """An independent answer: d out / du = (dx/du) · (d out / dx), the latter the slope of the cell [x, x + 1]."""
    width = len(values)
    dx_du = ((width - 1) if align_corners else width) / 2
    padded = list(values) + [0.0]  # zeros padding's v[W]
    clamped = padding_mode in ("border", "reflection") and (x == 0 or x == width - 1)
    if bug == "central":
        left = padded[x - 1] if x > 0 else 0.0
        return dx_du * (padded[x + 1] - left) / 2
    if bug == "per-pixel":
        dx_du = 1.0
    if bug == "backward":
        return dx_du * (values[x] - (values[x - 1] if x > 0 else 0.0))
    if clamped and bug != "no-clamp":
        return 0.0
    return dx_du * (padded[x + 1] - padded[x])


@pytest.mark.parametrize("hidden", [False, True])
def test_the_centre_slope_prediction_passes_and_is_torchs(hidden):
    result = run_check(get("02.centre_slope"), centre_slope, 0, hidden=hidden)
    assert result.passed, result
    for case in get("02.centre_slope").cases(np.random.default_rng(0)):  # the reference is F.grid_sample's backward
        values, x, padding_mode, align_corners = case.args
        from stn_course.checks.lesson02 import centre_u
        grid = torch.tensor([[[[centre_u(len(values), x, align_corners), 0.0]]]], dtype=torch.float64,
                            requires_grad=True)
        row = torch.tensor(values, dtype=torch.float64).view(1, 1, 1, -1)
        F.grid_sample(row, grid, padding_mode=padding_mode, align_corners=align_corners).sum().backward()
        assert grid.grad[0, 0, 0, 0].item() == pytest.approx(centre_slope(*case.args), abs=1e-12)


@pytest.mark.parametrize("bug, words", [("central", "central difference"), ("per-pixel", "per pixel"),
                                        ("backward", "left neighbour"), ("no-clamp", "clamps")])
def test_natural_centre_slopes_fail_on_a_visible_case_with_their_diagnosis(bug, words):
    result = run_check(get("02.centre_slope"), lambda *a: centre_slope(*a, bug=bug), 0)
    assert not result.passed
    failed = next(r for r in result.results if not r.passed)
    assert words in failed.message + " " + failed.case.hint, (failed.message, failed.case.hint)
