"""Lesson 3 checks: independent (learner-style) solutions pass, known bugs fail (mutation tests).

Bugs: a box's parameters one pixel too narrow (its first and last pixel centres taken for its edges), half a pixel
off, with align_corners=True one pixel too wide (False's edges carried over) or on False's rule, from the full width, with the zoom factor for the scale, with one scale for a family that has two (or one from the
rows for one that has one), x and y swapped, tps points not shifted or y first, all of Π scaled, rts without its scale,
or rebuilt from Python floats (no gradient); a tilt for a stretch ratio from the ratio of the
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


def box_params(transform, boxes, height, width, tps_grid_size=(4, 4), align_corners=False, bug=None):
    x0, x1, y0, y1 = boxes.unbind(1)
    if bug == "false-rule":  # align_corners ignored: always the False rule
        align_corners = False
    if align_corners and bug != "true-edges":  # the output's first and last centres read the box's first and last
        left, right = 2 * x0 / (width - 1) - 1, 2 * x1 / (width - 1) - 1  # p -> 2p / (W - 1) - 1
        top, bottom = 2 * y0 / (height - 1) - 1, 2 * y1 / (height - 1) - 1
    elif align_corners:  # False's edges carried over to True: one pixel too wide
        left, right = 2 * (x0 - 0.5) / (width - 1) - 1, 2 * (x1 + 0.5) / (width - 1) - 1
        top, bottom = 2 * (y0 - 0.5) / (height - 1) - 1, 2 * (y1 + 0.5) / (height - 1) - 1
    else:
        # the box's edges, half a pixel outside its first and last pixel centres, normalized: p -> (2p + 1) / W - 1
        left, right = (2 * (x0 - 0.5) + 1) / width - 1, (2 * (x1 + 0.5) + 1) / width - 1
        top, bottom = (2 * (y0 - 0.5) + 1) / height - 1, (2 * (y1 + 0.5) + 1) / height - 1
    if bug == "edges" and not align_corners:  # the first and last centres taken for the edges: one pixel too narrow
        left, right = (2 * x0 + 1) / width - 1, (2 * x1 + 1) / width - 1
        top, bottom = (2 * y0 + 1) / height - 1, (2 * y1 + 1) / height - 1
    sx, sy = (right - left) / 2, (bottom - top) / 2
    tx, ty = (left + right) / 2, (top + bottom) / 2
    if bug == "half-pixel" and not align_corners:
        tx, ty = tx - 1 / width, ty - 1 / height
    if bug == "full-width":
        sx, sy = 2 * sx, 2 * sy
    if bug == "zoom-factor":  # the start's scale as a zoom: in / out
        sx, sy = 1 / sx, 1 / sy
    if bug == "one-scale":  # every family like attention: the image's shape
        sy = sx
    if bug == "mean-of-both" and transform in ("attention", "rts"):  # right on boxes of the image's shape only
        sx = (sx + sy) / 2
    if bug == "yx":
        tx, ty = ty, tx
    zero = torch.zeros_like(sx)
    if transform == "tps":
        rows, cols = tps_grid_size
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, rows, dtype=boxes.dtype),
                                torch.linspace(-1, 1, cols, dtype=boxes.dtype), indexing="ij")
        if bug == "tps-unshifted":
            tx, ty = zero, zero
        pts = [xs.reshape(-1) * sx[:, None] + tx[:, None], ys.reshape(-1) * sy[:, None] + ty[:, None]]
        pts = torch.stack(pts[::-1] if bug == "tps-y-first" else pts, -1)
        return pts.reshape(len(boxes), -1)
    values = {"affine": [sx, zero, tx, zero, sy, ty], "attention": [sx, tx, ty], "rts": [zero, sx, tx, ty],
              "projective": [sx, zero, tx, zero, sy, ty, zero, zero]}[transform]
    if bug == "projective-whole-matrix" and transform == "projective":  # diag(s, s, s) ~ the identity, 8 entries of
        values = [sx / sx, zero, tx / sx, zero, sy / sx, ty / sx, zero, zero]  # it after dividing by π₃₃ = s
    if bug == "rts-zero-scale" and transform == "rts":
        values = [zero, zero, tx, ty]
    out = torch.stack(values, 1)
    if bug == "from-item":  # right numbers, but rebuilt from Python floats: no gradient reaches boxes
        return torch.tensor(out.tolist(), dtype=boxes.dtype)
    return out


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
    "03.attention_window": box_params,
    "03.projective_grid": projective_grid,
    "03.tps_grid": tps_grid,
}
BUGS = [
    ("03.attention_window", "edges"),
    ("03.attention_window", "true-edges"),
    ("03.attention_window", "false-rule"),
    ("03.attention_window", "half-pixel"),
    ("03.attention_window", "full-width"),
    ("03.attention_window", "zoom-factor"),
    ("03.attention_window", "one-scale"),
    ("03.attention_window", "mean-of-both"),
    ("03.attention_window", "yx"),
    ("03.attention_window", "tps-unshifted"),
    ("03.attention_window", "tps-y-first"),
    ("03.attention_window", "projective-whole-matrix"),
    ("03.attention_window", "rts-zero-scale"),
    ("03.attention_window", "from-item"),
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


def _first_failure(bug, hidden=False, seed=0):
    from stn_course.checks import get as full_get

    result = run_check(full_get("03.attention_window"), lambda *a, **k: box_params(*a, **k, bug=bug), seed,
                       hidden=hidden)
    assert not result.passed
    return result.first_failure


@pytest.mark.parametrize("bug,words", [("edges", "one pixel narrower"), ("half-pixel", "half a pixel off"),
                                       ("one-scale", "scale per axis"), ("mean-of-both", "gradient"),
                                       ("true-edges", "one pixel too wide"), ("false-rule", "align_corners=False rule"),
                                       ("zoom-factor", "fresh SpatialTransformer")])
def test_attention_window_names_the_kind_of_slip_never_the_answer(bug, words):
    """Each popular slip is named in kind (visible and hidden cases), and no expected value is quoted."""
    from stn_course.checks import get as full_get

    for hidden in (False, True):
        failure = _first_failure(bug, hidden)
        assert words in failure.message, failure.message
        expected = full_get("03.attention_window").reference(*failure.case.args, **failure.case.kwargs)
        for value in expected.flatten().tolist():
            if abs(value) not in (0.0, 1.0):
                assert f"{value:.3f}" not in failure.message and f"{value:g}" not in failure.message


def test_attention_window_first_case_is_the_glimpse_start_and_fencepost_fails_it():
    """The natural first try – the first and last pixels taken as the box's edges – fails the very first case (the
    start of a 16×16 glimpse of a 48×48 canvas), with the fencepost named."""
    failure = _first_failure("edges")
    assert "16×16" in failure.case.description and "one-pixel box" in failure.message


def test_box_params_read_the_box_in_a_spatial_transformer():
    """The claim of the exercise's test by hand: a fresh transformer with the answer as its bias returns the box's
    pixels (integer ends, h × w pixels, out_size=(h, w)) for every family that can read it."""
    from stn_course.stn import SpatialTransformer, box_to_params as package_box_params, small_localisation_net

    torch.manual_seed(0)
    x = torch.rand(1, 1, 24, 24)
    for align_corners in (False, True):
        for transform, box in (("affine", (4, 15, 2, 8)), ("projective", (4, 15, 2, 8)), ("tps", (0, 9, 3, 9)),
                               ("attention", (8, 22, 6, 20)), ("rts", (3, 22, 0, 19)), ("affine", (5, 5, 7, 7))):
            x0, x1, y0, y1 = box
            bias = package_box_params(transform, torch.tensor([box], dtype=torch.float32), 24, 24,
                                      align_corners=align_corners)[0]
            st = SpatialTransformer(small_localisation_net(1, 8, 24), transform, out_size=(y1 - y0 + 1, x1 - x0 + 1),
                                    align_corners=align_corners)
            with torch.no_grad():
                st.head.bias.copy_(bias)
                out = st(x)
            assert torch.allclose(out[0, 0], x[0, 0, y0:y1 + 1, x0:x1 + 1], atol=1e-4), (transform, align_corners)


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


def test_the_hunts_judge_counts_both_kinds_of_failure_and_asks_for_smaller_outputs():
    """The cell after 03.projective_grid's check: the smallest counterexamples (a 1×1 shift, a 1×2 identity) expose
    every kind of failure; the colleague's own test is none; a bigger output is told it could be smaller."""
    from stn_course.bug_hunt import judge_counterexamples

    eye = torch.eye(3, dtype=torch.float64)
    shift = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert "no counterexamples yet" in judge_counterexamples([])[0]
    lines = judge_counterexamples([(eye, (1, 1, 6, 6), False)])
    assert "not a counterexample" in lines[0] and "hunt on" in lines[-1]
    lines = judge_counterexamples([(shift, (1, 1, 1, 1), False), (eye[None], (1, 1, 1, 2), True)])
    assert all("no smaller output" in line for line in lines[:2]) and "every kind" in lines[-1]
    assert "wrong points" in lines[0] and "the wrong shape" in lines[1]
    lines = judge_counterexamples([(shift, (1, 1, 3, 3), True), ("not a matrix", (1, 1, 1, 1), False)])
    assert "a smaller output shows it too" in lines[0] and "cannot run it" in lines[1] and "hunt on" in lines[-1]
