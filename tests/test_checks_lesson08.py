"""Mutation tests for the lesson 8 checks: the reference passes, known bugs fail (the textbook "h₉ = 1" among them,
at the kink where h₉ = 0), and the failures say what is wrong in kind, never the answer."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import torch
import torch.nn.functional as F

from stn_course.checks import format_result, run_check
from stn_course.checks.lesson08 import _HORIZON, pins_down
from stn_course.data.signs import SIGN_CORNERS, homography, rectify
from stn_course.grids import projective_grid

from .check_helpers import fails, get, passes


# ---------------------------------------------------------------------------------------------------- learners


def _rows(src, dst):
    """The multiplied-out system, (N, 2P, 9) float64."""
    x, y = src[..., 0].double(), src[..., 1].double()
    u, v = dst[..., 0].double(), dst[..., 1].double()
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y, -u], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y, -v], -1)
    return torch.cat([rows_u, rows_v], 1)


def dlt_null_vector(src, dst):  # the textbook DLT, unnormalised: exact pairs right, noisy pixel pairs badly fitted
    return torch.linalg.svd(_rows(src, dst)).Vh[:, -1].view(-1, 3, 3).to(src.dtype)


def _similarity(points, centre=True, spread="mean"):
    """A normalising similarity (N, 3, 3): the centroid to the origin (``centre``), a typical distance to ~1."""
    c = points.mean(1) if centre else torch.zeros_like(points[:, 0])
    d = points - c[:, None]
    s = {"mean": 2 ** 0.5 / d.norm(dim=-1).mean(1), "rms": 1 / d.pow(2).sum(-1).mean(1).sqrt(),
         "box": 1 / d.abs().amax((1, 2)), "none": torch.ones_like(c[:, 0])}[spread]
    t = torch.zeros(points.shape[0], 3, 3, dtype=points.dtype)
    t[:, 0, 0] = t[:, 1, 1] = s
    t[:, :2, 2] = -s[:, None] * c
    t[:, 2, 2] = 1.0
    return t


def dlt_normalised(src, dst, centre=True, spread="mean"):  # Hartley: normalise, solve, undo – the lesson's solution
    s, d = src.double(), dst.double()
    a, b = _similarity(s, centre, spread), _similarity(d, centre, spread)
    moved = lambda t, p: p * t[:, None, [0, 1], [0, 1]] + t[:, None, :2, 2]
    return torch.linalg.solve(b, dlt_null_vector(moved(a, s), moved(b, d)) @ a).to(src.dtype)


def dlt_normalised_rms(src, dst):  # another normalisation (unit RMS distance): as good
    return dlt_normalised(src, dst, spread="rms")


def dlt_normalised_box(src, dst):  # another normalisation (largest coordinate 1): as good
    return dlt_normalised(src, dst, spread="box")


def dlt_centred_only(src, dst):  # the centroid moved to the origin, not scaled: fails where the noise is larger
    return dlt_normalised(src, dst, spread="none")


def dlt_scaled_only(src, dst):  # scaled, not centred: still far from the origin
    return dlt_normalised(src, dst, centre=False)


def dlt_scaled(src, dst):  # a different, negative scale: still right
    return -3.0 * dlt_normalised(src, dst)


def _h9_is_one(h8):
    return torch.cat([h8, torch.ones_like(h8[:, :1])], 1).view(-1, 3, 3)


def dlt_h9_solve(src, dst):  # the textbook shortcut with the first four pairs: singular where h9 = 0
    a = _rows(src, dst)
    rows = torch.cat([a[:, :4], a[:, src.shape[1]:src.shape[1] + 4]], 1)
    return _h9_is_one(torch.linalg.solve(rows[..., :8], -rows[..., 8])).to(src.dtype)


def dlt_h9_lstsq(src, dst):  # the shortcut with every pair, in least squares: a wrong map where h9 = 0
    a = _rows(src, dst)
    return _h9_is_one(torch.linalg.lstsq(a[..., :8], -a[..., 8:]).solution[..., 0]).to(src.dtype)


def dlt_first_four(src, dst):  # the null vector of the first four pairs only
    return dlt_null_vector(src[:, :4], dst[:, :4])


def dlt_sign_slip(src, dst):  # +u x instead of -u x: the denominator multiplied to the wrong side
    a = _rows(src, dst)
    a[..., 6:] = -a[..., 6:]
    return torch.linalg.svd(a).Vh[:, -1].view(-1, 3, 3).to(src.dtype)


def dlt_affine_only(src, dst):  # h7 = h8 = 0: least squares on the affine part – no perspective
    x = torch.cat([src.double(), torch.ones_like(src[..., :1]).double()], -1)
    a = torch.linalg.lstsq(x, dst.double()).solution.transpose(1, 2)
    bottom = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(src.shape[0], 1, 3)
    return torch.cat([a, bottom], 1).to(src.dtype)


def rectify_learner(images, corners, out_size, margin=0, backwards=True, align_corners=False,
                    inside=lambda out, m: 1 - 2 * m / out, padding="zeros"):
    square = inside(out_size, margin) * torch.tensor(SIGN_CORNERS, dtype=corners.dtype).expand_as(corners)
    h = homography(square, corners) if backwards else homography(corners, square)
    grid = projective_grid(h.to(images.dtype), (images.shape[0], images.shape[1], out_size, out_size), align_corners)
    return F.grid_sample(images, grid, padding_mode=padding, align_corners=align_corners)


def rectify_forwards(images, corners, out_size, margin=0):  # the homography canvas -> output, the undistortion
    return rectify_learner(images, corners, out_size, margin, backwards=False)


def rectify_align_corners(images, corners, out_size, margin=0):
    return rectify_learner(images, corners, out_size, margin, align_corners=True)


def rectify_margin_on_centres(images, corners, out_size, margin=0):  # the corners on the first inner pixel centres
    return rectify_learner(images, corners, out_size, margin, inside=lambda out, m: 1 - (2 * m + 1) / out)


def rectify_margin_in_half_units(images, corners, out_size, margin=0):  # a pixel taken as 1/out wide, not 2/out
    return rectify_learner(images, corners, out_size, margin, inside=lambda out, m: 1 - m / out)


def rectify_ignores_margin(images, corners, out_size, margin=0):
    return rectify(images, corners, out_size)


def rectify_border_padding(images, corners, out_size, margin=0):  # the canvas's edge smeared past the canvas
    return rectify_learner(images, corners, out_size, margin, padding="border")


def rectify_corners_in_align_corners_true(images, corners, out_size, margin=0):  # both calls and the inset in its unit
    return rectify_learner(images, corners, out_size, margin, align_corners=True,
                           inside=lambda out, m: 1 - 2 * m / (out - 1) if out > 1 else 1.0)


def rectify_in_float64(images, corners, out_size, margin=0):  # ignores the dtype contract
    return rectify(images.double(), corners.double(), out_size, margin)


def pins_down_count_only(src):  # "two equations a pair, 8 numbers: four pairs are enough"
    return torch.full((src.shape[0],), src.shape[1] >= 4)


def pins_down_not_all_on_a_line(src):  # four pairs and not all points on one line: misses "all but one on a line"
    points = torch.cat([src.double(), torch.ones_like(src[..., :1]).double()], -1)
    return (torch.linalg.matrix_rank(points) == 3) & (src.shape[1] >= 4)


def pins_down_no_three_on_a_line(src):  # general position of ALL points: too strict (the grid pins H down)
    points = torch.cat([src.double(), torch.ones_like(src[..., :1]).double()], -1)
    ok = torch.full((src.shape[0],), src.shape[1] >= 4)
    for three in combinations(range(src.shape[1]), 3):
        ok &= torch.linalg.det(points[:, list(three)]).abs() > 1e-9
    return ok


def pins_down_first_four(src):  # the first four only
    return pins_down(src[:, :4]) if src.shape[1] >= 4 else torch.zeros(src.shape[0], dtype=torch.bool)


def pins_down_by_rank(src):  # the experiment: the rank of the multiplied-out system for a random invertible map
    h = torch.eye(3, dtype=torch.float64) + 0.3 * torch.randn(3, 3, dtype=torch.float64,
                                                           generator=torch.Generator().manual_seed(0))
    uvw = torch.cat([src.double(), torch.ones_like(src[..., :1]).double()], -1) @ h.T
    a = _rows(src, uvw[..., :2] / uvw[..., 2:])
    return torch.linalg.matrix_rank(a) == 8


# ---------------------------------------------------------------------------------------------------- tests


def test_pins_down_answers_and_slips():
    for fn in (pins_down, pins_down_by_rank):
        assert passes("08.pins_down", fn), fn.__name__
        assert run_check(get("08.pins_down"), fn, 0, hidden=True).passed, fn.__name__
    for slip in (pins_down_count_only, pins_down_not_all_on_a_line, pins_down_no_three_on_a_line,
                 pins_down_first_four):
        assert fails("08.pins_down", slip), slip.__name__
    too_generous = format_result(run_check(get("08.pins_down"), pins_down_count_only, 0))
    too_strict = format_result(run_check(get("08.pins_down"), pins_down_no_three_on_a_line, 0))
    assert "independent" in too_generous and "line" in too_generous  # the message and the hint on lines
    assert "leave H free" in too_strict
    assert all("expected" not in text.lower() for text in (too_generous, too_strict))




def test_the_references_pass():
    for fn in (dlt_normalised, dlt_scaled, dlt_normalised_rms, dlt_normalised_box, homography):
        assert passes("08.homography", fn), fn.__name__
        assert run_check(get("08.homography"), fn, 0, hidden=True).passed, fn.__name__
    assert passes("08.rectify", rectify_learner)
    assert passes("08.rectify", rectify)
    for check_id, fn in (("08.homography", dlt_scaled), ("08.rectify", rectify_learner)):
        assert run_check(get(check_id), fn, 0, hidden=True).passed


def test_the_horizon_maps_send_the_centre_to_infinity_and_break_h9_is_one():
    """The kink the h9 = 1 shortcut misses: every horizon map has H[2, 2] = 0, and its 8×8 system is singular."""
    for h, _ in _HORIZON:
        assert h[2][2] == 0 and abs(torch.linalg.det(torch.tensor(h))) > 0.2
    assert fails("08.homography", dlt_h9_solve)
    assert fails("08.homography", dlt_h9_lstsq)
    result = format_result(run_check(get("08.homography"), dlt_h9_lstsq, 0))
    assert "horizon" in result and "(0, 0)" in result  # the case and its hint point at the kink, not at a value


def test_the_unnormalised_dlt_fails_on_noisy_pixel_pairs_only():
    """The textbook DLT is right on exact pairs but fits noisy pixel pairs far worse than it could: the visible
    noisy case (2 px) says so in kind, and catches centring alone and scaling alone too."""
    check = get("08.homography")
    for fn in (dlt_null_vector, dlt_scaled_only, dlt_centred_only):
        assert fails("08.homography", fn), fn.__name__
        result = run_check(check, fn, 0)
        assert all(r.passed for r in result.results if "noisy" not in r.case.description), fn.__name__
        assert "far from the origin" in result.first_failure.message
        assert "expected" not in format_result(result).lower()
    assert not run_check(check, dlt_centred_only, 0, hidden=True).passed


def test_the_pass_line_says_what_the_worst_error_is():
    """A passing homography's worst error is a ratio of transfer errors (about 1): the pass line says so."""
    text = format_result(run_check(get("08.homography"), dlt_normalised_rms, 0))
    assert text.startswith("✅") and "transfer error ÷ the package's" in text


def test_the_noisy_cases_tell_the_fits_apart_on_every_seed():
    """Measured, not hoped: on each of 30 seeds the unnormalised fit's median transfer error is over the threshold
    in every noisy case, and Hartley's at the threshold's other side by far (it is the reference)."""
    from stn_course.checks.lesson08 import NOISY_RATIO, _transfer

    check = get("08.homography")
    for seed in range(30):
        rng = np.random.default_rng(seed)
        noisy = [c for c in (*check.cases(rng), *check.hidden_cases(rng)) if "noisy" in c.description]
        assert len(noisy) == 3
        for case in noisy:
            best = _transfer(homography(*case.args), *case.args)
            plain = _transfer(dlt_null_vector(*case.args), *case.args)
            assert (plain / best).median() > NOISY_RATIO, (seed, case.description)
            if "2 px" in case.description:  # centring alone is not enough with two pixels of noise
                centred = _transfer(dlt_centred_only(*case.args), *case.args)
                assert (centred / best).median() > NOISY_RATIO, (seed, case.description)
            assert (_transfer(dlt_normalised_rms(*case.args), *case.args) / best).median() < 1.05


def dlt_normalised_h9(src, dst):  # normalised, then the h9 = 1 shortcut: fails where the centroid goes to infinity
    s, d = src.double(), dst.double()
    a, b = _similarity(s), _similarity(d)
    moved = lambda t, p: p * t[:, None, [0, 1], [0, 1]] + t[:, None, :2, 2]
    return torch.linalg.solve(b, dlt_h9_lstsq(moved(a, s), moved(b, d)) @ a).to(src.dtype)


def test_normalised_h9_is_one_fails_on_the_hidden_centroid_case():
    assert passes("08.homography", dlt_normalised_h9)  # normalised, the visible horizon cases no longer catch it
    result = run_check(get("08.homography"), dlt_normalised_h9, 0, hidden=True)
    assert not result.passed and "centroid" in result.first_failure.case.description


def test_homography_bugs_fail():
    assert fails("08.homography", dlt_first_four)
    assert fails("08.homography", dlt_sign_slip)
    assert fails("08.homography", dlt_affine_only)


def test_homography_failures_say_what_is_wrong_in_kind():
    def message(fn):
        return run_check(get("08.homography"), fn, 0).first_failure.message

    assert "zero" in message(lambda src, dst: torch.zeros(src.shape[0], 3, 3, dtype=src.dtype))
    assert "other way round" in message(lambda src, dst: dlt_normalised(dst, src))
    assert "not finite" in message(lambda src, dst: dlt_normalised(src, dst) / 0)
    assert "up to a common factor" in message(dlt_sign_slip)


def test_rectify_bugs_fail():
    for bug in (rectify_forwards, rectify_align_corners, rectify_margin_on_centres, rectify_margin_in_half_units,
                rectify_ignores_margin, rectify_border_padding, rectify_corners_in_align_corners_true,
                rectify_in_float64):
        assert fails("08.rectify", bug), bug.__name__


def test_rectify_failures_say_which_slip_without_values():
    """Each slip gets its own message; none prints the expected pixels."""
    def message(fn):
        return format_result(run_check(get("08.rectify"), fn, 0))

    forwards, corners = message(rectify_forwards), message(rectify_align_corners)
    centres, half = message(rectify_margin_on_centres), message(rectify_margin_in_half_units)
    assert "other way round" in forwards and "direction is right" not in forwards
    assert "direction is right" in corners and "pixel convention" in corners
    assert "inset" in centres and "pixel edges" in centres
    assert "inset" in half and "other way round" not in half
    border, true_unit = message(rectify_border_padding), message(rectify_corners_in_align_corners_true)
    assert "past the canvas" in border and "inset" not in border
    assert "pixel convention" in true_unit
    assert "dtype" in message(rectify_in_float64)
    noise = message(lambda i, c, o, m=0: rectify(i, c, o, m) + 0.1)
    assert "direction is right" not in noise and "other way round" not in noise and "inset" not in noise
    assert all("expected" not in text.lower() for text in (forwards, corners, centres, half, border, true_unit))


def test_rectify_cases_reach_past_the_canvas_in_float32():
    """The padding kink is in the visible cases: a sign whose corners leave the canvas, float32 images."""
    cases = list(get("08.rectify").cases(np.random.default_rng(0)))
    outside = [c for c in cases if "outside the canvas" in c.description]
    assert outside and all(c.args[0].dtype == torch.float32 for c in outside)
    assert any(bool((c.args[1].abs() > 1).any()) for c in outside)


def test_the_pins_down_pass_line_names_its_visible_cases():
    """"passed 5 cases" is not to be doubted: the note names them, "all but one on one line" with 5 points among them."""
    cases = list(get("08.pins_down").cases(np.random.default_rng(0)))
    line_plus_one = [c for c in cases if "all but one" in c.description]
    assert line_plus_one and line_plus_one[0].args[0].shape[1] >= 5 and not bool(pins_down(*line_plus_one[0].args))
    text = format_result(run_check(get("08.pins_down"), pins_down, 0))
    assert text.startswith("✅") and "5 points all but one on one line" in text


def test_the_ramp_row_of_the_prediction_tells_edges_from_centres():
    """The lesson's PREDICTION_ROW setting: row 5 of a 1 … 16 ramp that fills the canvas, out_size 12, margin 2 – the
    reference reads half-pixel blends and exact zeros; corners on pixel centres read half of the first column."""
    ramp = (torch.arange(16, dtype=torch.float64) + 1).expand(1, 1, 16, 16)
    whole = torch.tensor([SIGN_CORNERS], dtype=torch.float64)
    want = torch.tensor([0.0, 0.0] + [1.5 + 2 * k for k in range(8)] + [0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(rectify(ramp, whole, 12, 2)[0, 0, 5], want, atol=1e-9)
    assert torch.allclose(rectify_margin_on_centres(ramp, whole, 12, 2)[0, 0, 5, 2], torch.tensor(0.5, dtype=torch.float64))
