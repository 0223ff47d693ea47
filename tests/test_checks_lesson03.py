"""Lesson 3 checks: independent (learner-style) solutions pass, known bugs fail (mutation tests).

Bugs: an attention window half a pixel off (pixel centres taken for edges), its scale from the full width, x and
y swapped, or rebuilt from Python floats (no gradient); a head's start that forgets a
parameter, takes the zoom factor for the scale, or scales all of Π; a tilt for a stretch ratio from the ratio of the
w's, from the 1/w² rate at ±1, upside down or on one convention; a homography without the perspective divide, with the grid's x/y swapped, or with the lesson colleague's bugs (Π
transposed, the output's height and width swapped); a TPS grid whose kernel is nan at r = 0 or uses r log r with
the wrong power, whose solve inverts the displacement, drops the affine part or builds P from the sources, whose
radial terms are centred at the sources, whose targets are y first or 4 per side for any K, or which is evaluated on
the wrong align_corners convention.
"""
from __future__ import annotations

import math

import pytest
import torch

from stn_course.checks import run_check

from .check_helpers import assert_fails, assert_passes, get


# --- learner-style solutions, written independently of the package --------------------------------------------


def attention_window(boxes, height, width, bug=None):
    x0, x1, y0, y1 = boxes.unbind(1)
    # the window's edges, normalized: pixel p -> (2p + 1) / W - 1
    left, right = (2 * x0 + 1) / width - 1, (2 * x1 + 1) / width - 1
    top, bottom = (2 * y0 + 1) / height - 1, (2 * y1 + 1) / height - 1
    if bug == "half-pixel":
        left, right, top, bottom = 2 * x0 / width - 1, 2 * x1 / width - 1, 2 * y0 / height - 1, 2 * y1 / height - 1
    s = (right - left) / 2
    if bug == "full-width":
        s = right - left
    if bug == "mean-of-both":  # right on boxes of the image's shape; s depends on y0, y1 too
        s = ((right - left) + (bottom - top)) / 4
    out = torch.stack([s, (left + right) / 2, (top + bottom) / 2], 1)
    if bug == "yx":
        out = out[:, [0, 2, 1]]
    if bug == "from-item":  # right numbers, but rebuilt from Python floats: no gradient reaches boxes
        return torch.tensor(out.tolist(), dtype=boxes.dtype)
    return out


def start_params(transform, in_size, out_size, tps_grid_size=(4, 4), bug=None):
    scale = out_size / in_size if bug != "zoom-factor" else in_size / out_size
    if transform == "tps":
        rows, cols = tps_grid_size
        ys, xs = torch.linspace(-1, 1, rows), torch.linspace(-1, 1, cols)
        pts = [(x * scale, y * scale) for y in ys.tolist() for x in xs.tolist()]
        if bug == "tps-y-first":
            pts = [(y, x) for x, y in pts]
        if bug == "tps-unscaled":
            pts = [(x / scale, y / scale) for x, y in pts]
        return torch.tensor(pts).reshape(-1)
    values = {"affine": [scale, 0, 0, 0, scale, 0], "attention": [scale, 0, 0], "rotation": [0],
              "rts": [0, scale, 0, 0], "projective": [scale, 0, 0, 0, scale, 0, 0, 0]}[transform]
    if bug == "rts-zero-scale" and transform == "rts":
        values = [0, 0, 0, 0]
    if bug == "affine-zero" and transform == "affine":
        values = [0] * 6
    if bug == "projective-whole-matrix" and transform == "projective":  # diag(s, s, s) ~ the identity, 8 entries of
        values = [1, 0, 0, 0, 1, 0, 0, 0]  # it after dividing by π₃₃ = s
    return torch.tensor(values, dtype=torch.float32)


def base_grid(h, w, align_corners, dtype):
    def axis(n):
        if n == 1:
            return torch.zeros(1, dtype=dtype)
        t = torch.linspace(-1, 1, n, dtype=dtype)
        return t if align_corners else t * (n - 1) / n
    ys, xs = torch.meshgrid(axis(h), axis(w), indexing="ij")
    return torch.stack([xs, ys, torch.ones_like(xs)], -1)  # (H, W, 3)


def projective_grid(H, size, align_corners=False, bug=None):
    n, _, h, w = size
    if bug == "colleague-size":  # height and width swapped: invisible on square outputs
        h, w = w, h
    p = base_grid(h, w, align_corners if bug != "convention" else not align_corners, H.dtype)
    uvw = torch.einsum("nij,hwj->nhwi", H.transpose(1, 2) if bug == "colleague-transposed" else H, p)
    if bug == "no-divide":
        return uvw[..., :2]
    out = uvw[..., :2] / uvw[..., 2:]
    return out.flip(-1) if bug == "yx" else out


def tps_kernel(points, centres, bug=None):
    r2 = ((points.unsqueeze(-2) - centres.unsqueeze(-3)) ** 2).sum(-1)
    if bug == "nan-at-zero":
        return r2 * torch.log(r2)
    if bug == "r-log-r":
        r = r2.sqrt()
        return torch.where(r > 0, r * torch.log(torch.where(r > 0, r, torch.ones_like(r))), torch.zeros_like(r))
    return torch.special.xlogy(r2, r2)  # 0 at r = 0, its limit


def tps_coefficients(source, target, bug=None):
    k = target.shape[0]
    P = torch.cat([torch.ones(k, 1, dtype=target.dtype), target], 1)
    if bug == "p-from-sources":  # the system built on the network's points, not the fixed targets
        P = torch.cat([torch.ones(k, 1, dtype=target.dtype), source[0]], 1)
    K = tps_kernel(target, target, bug=bug)
    if bug == "no-affine":
        w = torch.linalg.solve(K.expand(source.shape[0], k, k), source)
        return torch.cat([w, torch.zeros(source.shape[0], 3, 2, dtype=w.dtype)], 1)
    L = torch.cat([torch.cat([K, P], 1), torch.cat([P.T, torch.zeros(3, 3, dtype=P.dtype)], 1)], 0)
    rhs = torch.cat([source, torch.zeros(source.shape[0], 3, 2, dtype=source.dtype)], 1)
    if bug == "inverted":  # solves for the inverse displacement (target -> source swapped)
        rhs = torch.cat([target.expand_as(source) * 2 - source, rhs[:, k:]], 1)
    return torch.linalg.solve(L.expand(source.shape[0], -1, -1), rhs)


def tps_grid(control_points, size, align_corners=False, bug=None):
    """The whole capability, written from the conditions: targets, solve, evaluation at the pixel centres."""
    n, _, h, w = size
    k = control_points.shape[1]
    side = int(math.isqrt(k)) if bug != "side-k-over-4" else k // 4  # the tempting: right for K = 16 only
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    target = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1).double()
    if bug == "target-y-first":
        target = target.flip(-1)
    coef = tps_coefficients(control_points.double(), target, bug=bug)
    p = base_grid(h, w, align_corners if bug != "convention" else not align_corners, torch.float64)[..., :2]
    p = p.reshape(-1, 2)
    if bug == "centred-at-source":  # radial terms at the q_k (equal to the p_k unbent)
        p = p.expand(n, -1, -1)
        feats = torch.cat([tps_kernel(p, control_points.double()), torch.ones(n, h * w, 1, dtype=torch.float64), p], 2)
        return (feats @ coef).view(n, h, w, 2).to(control_points.dtype)
    feats = torch.cat([tps_kernel(p, target, bug=bug), torch.ones(h * w, 1, dtype=torch.float64), p], 1)
    return (feats @ coef).view(n, h, w, 2).to(control_points.dtype)


# --- tests --------------------------------------------------------------------------------------------------------


CORRECT = {
    "03.attention_window": attention_window,
    "03.start_params": start_params,
    "03.projective_grid": projective_grid,
    "03.tps_grid": tps_grid,
}
BUGS = [
    ("03.attention_window", "half-pixel"),
    ("03.attention_window", "full-width"),
    ("03.attention_window", "yx"),
    ("03.attention_window", "from-item"),
    ("03.attention_window", "mean-of-both"),
    ("03.start_params", "zoom-factor"),
    ("03.start_params", "tps-y-first"),
    ("03.start_params", "tps-unscaled"),
    ("03.start_params", "rts-zero-scale"),
    ("03.start_params", "affine-zero"),
    ("03.start_params", "projective-whole-matrix"),
    ("03.projective_grid", "no-divide"),
    ("03.projective_grid", "yx"),
    ("03.projective_grid", "convention"),
    ("03.projective_grid", "colleague-transposed"),
    ("03.projective_grid", "colleague-size"),
    ("03.tps_grid", "nan-at-zero"),
    ("03.tps_grid", "r-log-r"),
    ("03.tps_grid", "no-affine"),
    ("03.tps_grid", "inverted"),
    ("03.tps_grid", "p-from-sources"),
    ("03.tps_grid", "target-y-first"),
    ("03.tps_grid", "convention"),
    ("03.tps_grid", "centred-at-source"),
    ("03.tps_grid", "side-k-over-4"),
]


@pytest.mark.parametrize("check_id", sorted(CORRECT))
def test_independent_solutions_pass(check_id):
    assert_passes(check_id, CORRECT[check_id])


@pytest.mark.parametrize("check_id,bug", BUGS, ids=[f"{c}-{b}" for c, b in BUGS])
def test_known_bugs_fail(check_id, bug):
    fn = CORRECT[check_id]
    assert_fails(check_id, lambda *args, **kwargs: fn(*args, **kwargs, bug=bug))


# --- the checked predictions: right answers pass, wrong ones fail without being told the answer ---------------------


def _measured_stretch(pi31, width, align_corners):
    """First pair of columns' sample gap over the last pair's, measured on the package's projective grid."""
    from stn_course.grids import projective_grid as package_projective_grid

    H = torch.eye(3, dtype=torch.float64).unsqueeze(0).clone()
    H[0, 2, 0] = pi31
    row = package_projective_grid(H, (1, 1, 3, width), align_corners=align_corners)[0, 2, :, 0]  # any row
    return ((row[1] - row[0]) / (row[-1] - row[-2])).item()


def test_perspective_stretch_key_is_measured_on_the_package_grid_and_is_not_revealed():
    from stn_course.checks import get as full_get
    from stn_course.checks.lesson03 import perspective_stretch

    check = full_get("03.perspective_stretch")  # its reference is the key: the tilt, checked on the package's grid
    for pi31, width, align_corners in ((0.45, 64, False), (-0.6, 9, True), (0.7, 2, True), (-0.8, 3, False)):
        assert _measured_stretch(pi31, width, align_corners) == pytest.approx(
            perspective_stretch(pi31, width, align_corners), rel=1e-12)
    for ratio, width, align_corners in ((6.0, 64, False), (0.25, 9, True), (0.1, 4, False), (20.0, 31, False),
                                        (1.5, 3, False), (1.0, 12, True)):
        pi31 = check.reference(ratio, width, align_corners)
        assert _measured_stretch(pi31, width, align_corners) == pytest.approx(ratio, rel=1e-9)
        centres = torch.linspace(-1, 1, width) if align_corners else (torch.arange(width) + 0.5) / width * 2 - 1
        assert (pi31 * centres + 1).min() > 0  # the root with the horizon outside the output, not the other one
    assert check.reference(0.2, 3, True) == pytest.approx((0.2 - 1) / (0.2 + 1))  # centre column: linear, β = 0
    assert check.reference(perspective_stretch(0.45, 64, False), 64, False) == pytest.approx(0.45)  # the figure's
    with pytest.raises(ValueError, match="width >= 3"):
        check.reference(2.0, 2, True)
    with pytest.raises(ValueError, match="ratio > 0"):
        check.reference(-1.0, 8, True)

    def edge(align_corners, width):
        return 1.0 if align_corners else 1 - 1 / width

    naive = lambda r, width, ac: (r - 1) / ((r + 1) * edge(ac, width))  # the ratio of the w's at the edge columns
    rate = lambda r, width, ac: (r ** 0.5 - 1) / (r ** 0.5 + 1)  # the limit 1 / w² at x = ±1
    flipped = lambda r, *args: check.reference(1 / r, *args)
    one_convention = lambda r, width, ac: check.reference(r, width, True)  # centres always reaching ±1
    for wrong in (naive, rate, flipped, one_convention, lambda *args: 0.45):
        assert not run_check(get("03.perspective_stretch"), wrong, 0).passed  # the lesson's 0.45 copied too
    assert not run_check(get("03.perspective_stretch"), one_convention, 0, hidden=True).passed
    result = run_check(get("03.perspective_stretch"), naive, 0)
    key = check.reference(*result.first_failure.case.args)
    assert f"{key:.2f}" not in result.first_failure.message and "too high" in result.first_failure.message

    def learner(ratio, width, align_corners):  # bisection on the map at the columns' centres, without the package
        x = (torch.linspace(-1, 1, width, dtype=torch.float64) if align_corners
             else (torch.arange(width, dtype=torch.float64) + 0.5) / width * 2 - 1)

        def stretch(pi31):
            x_s = x / (pi31 * x + 1)
            return float((x_s[1] - x_s[0]) / (x_s[-1] - x_s[-2]))

        low, high = -1 / x[-1].item(), 1 / x[-1].item()  # w > 0 at every column
        for _ in range(200):
            middle = (low + high) / 2
            low, high = (middle, high) if stretch(middle) < ratio else (low, middle)
        return (low + high) / 2

    assert_passes("03.perspective_stretch", learner)


def test_start_params_wrong_value_is_not_shown():
    """The zoom factor in / out = 3 would give the scale 1/3 away if the message quoted it."""
    result = run_check(get("03.start_params"), lambda *a, **k: start_params(*a, **k, bug="zoom-factor"), 0)
    message = result.first_failure.message
    assert not result.passed and "neutral start" in message and "3" not in message.replace("×", "")


def test_attention_window_scale_from_both_edges_is_told_what_kind_of_slip_not_the_answer():
    """s read from the height too: right values on boxes of the image's shape, so the first visible case – a box of
    another shape – fails on the values with a message naming the slip, without the expected s."""
    from stn_course.checks import get as full_get

    check = full_get("03.attention_window")
    fn = lambda *args: attention_window(*args, bug="mean-of-both")
    for hidden in (False, True):
        result = run_check(check, fn, 0, hidden=hidden)
        message = result.first_failure.message
        assert not result.passed and "top and bottom edges (y0, y1)" in message and "wrong gradient" in message
        boxes, height, width = result.first_failure.case.args
        expected_s = check.reference(boxes, height, width)[0, 0].item()
        assert f"{expected_s:.2f}"[:4] not in message and f"{expected_s:g}" not in message


def test_colleague_tps_grid_passes_the_identity_but_not_the_interpolation_property():
    """The lesson's claim about the colleague's grid: source = target hides bug 1, the p_k -> q_k property shows it."""
    from stn_course.grids import tps_control_points

    target = tps_control_points(4, 4, dtype=torch.float64).unsqueeze(0)
    bent = target + 0.1 * torch.randn(1, 16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    colleague = lambda *args, **kwargs: tps_grid(*args, **kwargs, bug="centred-at-source")
    assert torch.allclose(colleague(target, (1, 1, 5, 7)), tps_grid(target, (1, 1, 5, 7)), atol=1e-9)
    on_points = colleague(bent, (1, 1, 4, 4), align_corners=True).reshape(1, 16, 2)
    assert (on_points - bent).abs().max() > 1e-3
    assert torch.allclose(tps_grid(bent, (1, 1, 4, 4), align_corners=True).reshape(1, 16, 2), bent, atol=1e-9)


def test_tps_grid_nan_at_r_zero_is_told_the_kind_of_slip():
    """r² log r² at r = 0 makes the whole grid nan (the solve spreads it): the message names U at r = 0."""
    result = run_check(get("03.tps_grid"), lambda *a, **k: tps_grid(*a, **k, bug="nan-at-zero"), 0)
    assert not result.passed and "r = 0" in result.first_failure.message and "not finite" in result.first_failure.message
    result = run_check(get("03.tps_grid"), lambda *a, **k: tps_grid(*a, **k, bug="centred-at-source"), 0)
    assert not result.passed and "r = 0" not in result.first_failure.message


def test_tps_grid_reference_is_the_package_and_learner_cannot_call_it():
    from stn_course.checks import get as full_get

    check = full_get("03.tps_grid")
    assert {"stn_course.grids.tps_grid", "stn_course.grids.tps_kernel",
            "stn_course.grids.tps_coefficients"} <= set(check.forbidden)
