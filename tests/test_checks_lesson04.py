"""Lesson 4 checks: independent (learner-style, loop-free but package-free) solutions pass, known bugs fail.

Bugs: the gradient scaled by W instead of W/2 (or the align_corners scale swapped); clamp derivative 1 at the border;
reflection without the sign flip; assigning instead of adding colliding gradients; out-of-image neighbours
receiving gradient (clamped indices without the mask); x and y swapped in the grid gradient; a missing y-weight in
eq. 7; the left instead of the right derivative at the kinks; eq. 7 taken literally at an integer (all of these in
``04.sampler_backward``, the sampler's whole backward); the whole transformer's Function (θ → grid → sample) with the chain
into θ forgetting the constant column of the base grid, using the other align_corners or linspace(-1, 1, 1) for a
1-pixel side, returning too few gradients, using the default settings, asking autograd, or differentiable again; the
lesson's colleague's numerical gradient (one-sided, perturbing a reshape that copies, float32). The checked
prediction rejects wrong answers without showing the right one.
"""
from __future__ import annotations

import pytest
import torch
from torch.autograd.function import once_differentiable
import torch.nn.functional as F

from stn_course import grids
from stn_course.checks import run_check

from .check_helpers import assert_fails, assert_passes, get


# --- a learner-style implementation with switchable bugs --------------------------------------------------------


def coordinates(coord, size, padding_mode, align_corners):
    x = (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2
    if padding_mode == "border":
        x = x.clamp(0, size - 1)
    elif padding_mode == "reflection":
        lo, hi = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
        if hi == lo:
            return torch.zeros_like(x)
        span = hi - lo
        d = (x - lo).abs()
        flips = torch.floor(d / span)
        r = torch.fmod(d, span)
        x = torch.where(flips % 2 == 0, lo + r, hi - r).clamp(0, size - 1)
    return x


def source_coordinates_grad(coord, size, padding_mode="zeros", align_corners=False, bug=None):
    if bug == "scale-w":
        scale = size - 1 if align_corners else size
    elif bug == "scale-swapped":
        scale = size / 2 if align_corners else (size - 1) / 2
    else:
        scale = (size - 1) / 2 if align_corners else size / 2
    x = (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2
    if padding_mode == "zeros":
        return torch.full_like(coord, scale)
    sign = torch.ones_like(x)
    if padding_mode == "reflection":
        lo, hi = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
        if hi == lo:
            return torch.zeros_like(x)
        span = hi - lo
        sign = torch.where(x < lo, -sign, sign)
        d = (x - lo).abs()
        odd = torch.floor(d / span) % 2 == 1
        if bug != "no-flip":
            sign = torch.where(odd, -sign, sign)
        x = torch.where(odd, hi - torch.fmod(d, span), lo + torch.fmod(d, span))
    inside = (x > 0) & (x < size - 1) if bug != "border-inside" else (x >= 0) & (x <= size - 1)
    if bug == "border-one":
        inside = torch.ones_like(inside)
    return sign * inside * scale


def _neighbours(input, grid, padding_mode, align_corners, bug=None):
    n, c, h, w = input.shape
    x = coordinates(grid[..., 0], w, padding_mode, align_corners).reshape(n, -1)
    y = coordinates(grid[..., 1], h, padding_mode, align_corners).reshape(n, -1)
    x0, y0 = torch.floor(x), torch.floor(y)
    if bug == "left-derivative":  # at an integer, the neighbours on the left: the other one-sided derivative
        x0, y0 = torch.ceil(x) - 1, torch.ceil(y) - 1
    fx, fy = x - x0, y - y0
    out = []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = (x0 + dx).long(), (y0 + dy).long()
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            out.append((dx, dy, xi.clamp(0, w - 1), yi.clamp(0, h - 1), inside, wx, wy))
    return out, fx, fy


def grad_input(grad_output, input, grid, padding_mode="zeros", align_corners=False, bug=None):
    n, c, h, w = input.shape
    g = grad_output.reshape(n, c, -1)
    result = torch.zeros(n, c, h * w, dtype=input.dtype)
    corners, _, _ = _neighbours(input, grid, padding_mode, align_corners)
    for _, _, xi, yi, inside, wx, wy in corners:
        weight = wx * wy * (inside if bug != "no-mask" else 1)
        index = (yi * w + xi).unsqueeze(1).expand(n, c, -1)
        if bug == "assign":
            result.scatter_(2, index, g * weight.unsqueeze(1))
        else:
            result.scatter_add_(2, index, g * weight.unsqueeze(1))
    return result.view(n, c, h, w)


def grad_grid(grad_output, input, grid, padding_mode="zeros", align_corners=False, bug=None):
    n, c, h, w = input.shape
    g = grad_output.reshape(n, c, -1)
    flat = input.reshape(n, c, -1)
    corners, fx, fy = _neighbours(input, grid, padding_mode, align_corners, bug)
    gx = torch.zeros_like(fx)
    gy = torch.zeros_like(fy)
    for dx, dy, xi, yi, inside, wx, wy in corners:
        value = torch.gather(flat, 2, (yi * w + xi).unsqueeze(1).expand(n, c, -1))
        s = (value * g).sum(1) * inside
        sign_x, sign_y = (1 if dx else -1), (1 if dy else -1)
        if bug == "eq7-literal":  # eq. 7 as printed: the sign of m - x, +1 for m >= x (a neighbour at x itself)
            sign_x = torch.where(fx == 0, 1.0, float(sign_x)).to(fx)
            sign_y = torch.where(fy == 0, 1.0, float(sign_y)).to(fy)
        gx += s * sign_x * (wy if bug != "no-y-weight" else 1)
        gy += s * sign_y * wx
    border = bug if bug in COORDINATE_BUGS else None
    sx = source_coordinates_grad(grid[..., 0], w, padding_mode, align_corners, border).reshape(n, -1)
    sy = source_coordinates_grad(grid[..., 1], h, padding_mode, align_corners, border).reshape(n, -1)
    if bug == "no-chain":
        sx = sy = torch.ones_like(sx)
    out = torch.stack([gx * sx, gy * sy], -1)
    if bug == "yx":
        out = out.flip(-1)
    return out.view(grid.shape)


def centres(count, align_corners, dtype, bug=None):
    """Normalized pixel centres by the arithmetic formula (no grid generator; the check forbids them)."""
    i = torch.arange(count, dtype=dtype)
    if align_corners:
        if count == 1:  # the 1-pixel convention: its centre, 0 ("one-pixel-linspace": linspace(-1, 1, 1) = -1)
            return torch.full((1,), -1.0 if bug == "one-pixel-linspace" else 0.0, dtype=dtype)
        return 2 * i / (count - 1) - 1
    return (2 * i + 1) / count - 1


def base_points(h, w, align_corners, dtype, bug=None):
    """The output's base grid ``(h w, 3)``: rows ``(x_t, y_t, 1)``, x fastest."""
    corners = not align_corners if bug == "convention" else align_corners
    ys, xs = torch.meshgrid(centres(h, corners, dtype, bug), centres(w, corners, dtype, bug), indexing="ij")
    ones = torch.zeros_like(xs) if bug == "no-constant" else torch.ones_like(xs)
    return torch.stack([xs, ys, ones], -1).reshape(h * w, 3)


def affine_grid_backward(grad_grid, size, align_corners=False, bug=None):
    n, _, h, w = size
    return grad_grid.reshape(n, h * w, 2).transpose(1, 2) @ base_points(h, w, align_corners, grad_grid.dtype, bug)


GRID_BUGS = ("eq7-literal", "left-derivative", "border-inside", "yx")
THETA_BUGS = ("no-constant", "convention", "one-pixel-linspace")


class Transformer(torch.autograd.Function):
    """The whole transformer, θ → grid → sample, with a hand-derived backward (and switchable bugs)."""

    @staticmethod
    def forward(ctx, input, theta, size, padding_mode, align_corners, bug):
        n, _, h, w = size
        grid = (base_points(h, w, align_corners, theta.dtype) @ theta.transpose(1, 2)).view(n, h, w, 2)
        ctx.save_for_backward(input, grid)
        ctx.settings, ctx.size, ctx.bug = (padding_mode, align_corners), size, bug
        return F.grid_sample(input, grid, padding_mode=padding_mode, align_corners=align_corners)

    @staticmethod
    def backward(ctx, grad_output):
        input, grid = ctx.saved_tensors
        bug = ctx.bug
        settings = ("zeros", False) if bug == "settings-dropped" else ctx.settings  # the defaults: a dropped setting
        if bug == "autograd-backward":  # wrong: asks autograd for the gradient inside backward
            with torch.enable_grad():
                x, g = input.detach().requires_grad_(), grid.detach().requires_grad_()
                out = F.grid_sample(x, g, padding_mode=settings[0], align_corners=settings[1])
                gi, gg = torch.autograd.grad(out, (x, g), grad_output)
        else:
            gi = grad_input(grad_output, input, grid, *settings)
            gg = grad_grid(grad_output, input, grid, *settings, bug=bug if bug in GRID_BUGS else None)
        gt = affine_grid_backward(gg, ctx.size, settings[1], bug=bug if bug in THETA_BUGS else None)
        if bug == "grad-input-only":
            gt = torch.zeros_like(gt)
        return gi, gt, None, None, None, None


class OnceTransformer(Transformer):
    backward = staticmethod(once_differentiable(Transformer.backward))


def stn_function(grad_output, input, theta, padding_mode="zeros", align_corners=False, bug=None):
    x, t = input.clone().requires_grad_(), theta.clone().requires_grad_()
    function = Transformer if bug == "no-once-differentiable" else OnceTransformer
    out = function.apply(x, t, tuple(grad_output.shape), padding_mode, align_corners, bug)
    gi, gt = torch.autograd.grad(out, (x, t), grad_output)
    if bug == "no-detach-order":
        return out.detach(), gt, gi
    return out.detach(), gi, gt


def sampler_backward(grad_output, input, grid, padding_mode="zeros", align_corners=False, bug=None):
    """Both halves, each given only the bugs that belong to it."""
    gi = grad_input(grad_output, input, grid, padding_mode, align_corners, bug=bug if bug in INPUT_BUGS else None)
    gg = grad_grid(grad_output, input, grid, padding_mode, align_corners, bug=None if bug in INPUT_BUGS else bug)
    return gi, gg


COORDINATE_BUGS = ("scale-w", "scale-swapped", "no-flip", "border-one", "border-inside")
INPUT_BUGS = ("assign", "no-mask")
CORRECT = {
    "04.sampler_backward": sampler_backward,
    "04.stn_function": stn_function,
}
BUGS = [
    ("04.sampler_backward", "scale-w"),
    ("04.sampler_backward", "scale-swapped"),
    ("04.sampler_backward", "no-flip"),
    ("04.sampler_backward", "border-one"),
    ("04.sampler_backward", "border-inside"),
    ("04.sampler_backward", "assign"),
    ("04.sampler_backward", "no-mask"),
    ("04.sampler_backward", "no-y-weight"),
    ("04.sampler_backward", "no-chain"),
    ("04.sampler_backward", "yx"),
    ("04.sampler_backward", "eq7-literal"),
    ("04.sampler_backward", "left-derivative"),
    ("04.stn_function", "grad-input-only"),
    ("04.stn_function", "no-detach-order"),
    ("04.stn_function", "no-once-differentiable"),
    ("04.stn_function", "autograd-backward"),
    ("04.stn_function", "settings-dropped"),
    ("04.stn_function", "eq7-literal"),
    ("04.stn_function", "left-derivative"),
    ("04.stn_function", "border-inside"),
    ("04.stn_function", "yx"),
    ("04.stn_function", "no-constant"),
    ("04.stn_function", "convention"),
    ("04.stn_function", "one-pixel-linspace"),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("check_id", sorted(CORRECT))
def test_independent_solutions_pass(check_id):
    assert_passes(check_id, CORRECT[check_id])


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("check_id,bug", BUGS, ids=[f"{c}-{b}" for c, b in BUGS])
def test_known_bugs_fail(check_id, bug):
    fn = CORRECT[check_id]
    assert_fails(check_id, lambda *args, **kwargs: fn(*args, **kwargs, bug=bug))


def _central(f, x, eps=1e-6):
    grad = torch.zeros(x.shape, dtype=x.dtype)  # zeros_like keeps a transposed x's strides: grad.view(-1) would fail
    flat = x.detach().clone().reshape(-1)
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] += eps
        minus[i] -= eps
        grad.view(-1)[i] = (f(plus.view_as(x)) - f(minus.view_as(x))) / (2 * eps)
    return grad


def _central_in_place(f, x, eps=1e-6):
    """Wrong: shifts the caller's x in place and leaves it shifted (the lesson: inputs are not modified)."""
    grad = torch.zeros_like(x)
    flat = x.view(-1)
    for i in range(flat.numel()):
        flat[i] += eps
        up = f(x)
        flat[i] -= 2 * eps
        grad.view(-1)[i] = (up - f(x)) / (2 * eps)
    return grad


def test_numerical_gradient_must_leave_its_input_alone():
    assert_passes("04.numerical_gradient", _central)
    assert_fails("04.numerical_gradient", _central_in_place)
    result = run_check(get("04.numerical_gradient"), _central_in_place, 0)
    assert result.first_failure.property == "input modified" and "in place" in result.first_failure.message


def _forward(f, x, eps=1e-6):
    """Wrong: the one-sided difference, off by O(eps)."""
    grad = torch.zeros_like(x)
    flat = x.detach().clone().reshape(-1)
    for i in range(flat.numel()):
        plus = flat.clone()
        plus[i] += eps
        grad.view(-1)[i] = (f(plus.view_as(x)) - f(flat.view_as(x))) / eps
    return grad


def _colleague(f, x, eps=1e-6):
    """The lesson's colleague: one-sided, perturbs x through reshape (a copy when x is not contiguous), float32."""
    grad = torch.zeros(x.shape)
    flat = x.reshape(-1)
    for i in range(flat.numel()):
        base = float(f(x))
        flat[i] += eps
        grad.view(-1)[i] = (float(f(x)) - base) / eps
        flat[i] -= eps
    return grad


def _central_on_a_reshaped_copy(f, x, eps=1e-6):
    """Wrong (the colleague's second bug, alone): central, x's dtype, x left alone – but the steps go into
    ``xc.reshape(-1)``, which is a copy of ``xc`` when ``xc`` is not contiguous, so ``f(xc)`` never sees them."""
    xc = x.detach().clone()
    flat = xc.reshape(-1)
    grad = torch.zeros(x.shape, dtype=x.dtype)
    for i in range(flat.numel()):
        flat[i] += eps
        up = float(f(xc))
        flat[i] -= 2 * eps
        down = float(f(xc))
        flat[i] += eps
        grad.view(-1)[i] = (up - down) / (2 * eps)
    return grad


def test_the_colleagues_checker_fails_and_each_of_its_bugs_alone_is_caught():
    assert_fails("04.numerical_gradient", _colleague)
    result = run_check(get("04.numerical_gradient"), _central_on_a_reshaped_copy, 0)
    assert not result.passed and "not contiguous" in result.first_failure.case.description
    hidden = run_check(get("04.numerical_gradient"), _central_on_a_reshaped_copy, 0, hidden=True)
    assert not hidden.passed and "not contiguous" in hidden.first_failure.case.description
    float32 = run_check(get("04.numerical_gradient"),
                        lambda f, x, eps=1e-6: _central(f, x, eps).float(), 0)
    assert float32.first_failure.property == "dtype"


def test_a_transformer_that_drops_its_settings_fails_on_values_outside_the_default_setting():
    result = run_check(get("04.stn_function"), lambda *a, **k: stn_function(*a, **k, bug="settings-dropped"), 0)
    failure = result.first_failure
    assert not result.passed and failure.property == ""
    assert failure.case.kwargs != {"padding_mode": "zeros", "align_corners": False}


def test_a_forward_difference_is_told_about_truncation_not_rounding():
    result = run_check(get("04.numerical_gradient"), _forward, 0)
    assert not result.passed and result.first_failure.property == ""  # not "precision" (a float32 step)
    assert "eps = 1e-3" in result.first_failure.case.description and "one-sided" in result.first_failure.case.hint


def test_a_backward_that_asks_autograd_is_diagnosed_as_such():
    result = run_check(get("04.stn_function"), lambda *a, **k: stn_function(*a, **k, bug="autograd-backward"), 0)
    assert result.first_failure.property == "autograd inside backward"
    result = run_check(get("04.stn_function"),
                       lambda *a, **k: stn_function(*a, **k, bug="no-once-differentiable"), 0)
    failure = result.first_failure
    assert failure.property == "a second derivative taken through your backward"
    message = failure.message  # says what goes wrong (unchecked second derivatives, no error), not the fix
    assert "second derivative" in message and "no error" in message
    for fix in ("once_differentiable", "staticmethod", "decorat"):
        assert fix not in message and fix not in failure.property


def test_a_kink_failure_is_diagnosed_at_the_kinks():
    result = run_check(get("04.sampler_backward"), lambda *a, **k: sampler_backward(*a, **k, bug="left-derivative"), 0)
    assert result.first_failure.case.kink and result.first_failure.property == "gradient at the kinks"


@pytest.mark.parametrize("bug", ["scale-swapped", "assign", "yx"])
def test_a_bug_everywhere_is_not_diagnosed_as_a_kink(bug):
    """The merged exercise runs ordinary points first: a wrong scale or a scatter that assigns fails there."""
    result = run_check(get("04.sampler_backward"), lambda *a, **k: sampler_backward(*a, **k, bug=bug), 0)
    assert not result.first_failure.case.kink and result.first_failure.property != "gradient at the kinks"


def test_the_padding_kinks_are_tested_exactly_one_axis_at_a_time():
    """A clamp derivative of 1 on the border itself passes every random point and fails on the kink cases only."""
    result = run_check(get("04.sampler_backward"), lambda *a, **k: sampler_backward(*a, **k, bug="border-inside"), 0)
    assert result.first_failure.case.kink
    check = get("04.sampler_backward")
    described = [case.description for case in check.cases(__import__("numpy").random.default_rng(0))]
    assert sum("sits exactly on every pixel centre" in d for d in described) == 12  # 3 modes × 2 conventions × x, y


# --- the checked prediction: right answers pass, wrong ones fail without being told the answer ----------------------


def _sign_rule(shift):
    return " Positive " if 0 < shift <= 0.05 else "negative"


def test_sign_at_identity_visible_cases_reject_every_constant_without_telling_the_answer():
    assert_passes("04.sign_at_identity", _sign_rule, seeds=(0,))
    for wrong in ("positive", "negative", "zero"):  # both signs and a sub-pixel shift are visible: no constant passes
        result = run_check(get("04.sign_at_identity"), lambda shift: wrong, 0)
        failure = result.first_failure
        right = get("04.sign_at_identity").reference(*failure.case.args)
        assert not result.passed and right not in failure.message.lower()
    result = run_check(get("04.sign_at_identity"), lambda shift: "uphill", 0)
    assert not result.passed and "one of the choices" in result.first_failure.message


def test_sign_at_identity_hidden_cases_reject_every_constant_and_accept_the_rule():
    from stn_course.checks import get as full_get

    check = full_get("04.sign_at_identity")
    hidden = list(check.hidden_cases(__import__("numpy").random.default_rng(0)))
    answers = [check.reference(*case.args) for case in hidden]
    assert answers == [_sign_rule(*case.args).strip().lower() for case in hidden]
    assert set(answers) == {"positive", "negative"} and len(hidden) >= 5  # no constant passes; a guess: (1/3)^5
    for constant in ("positive", "negative", "zero"):
        assert not run_check(check, lambda shift: constant, 0, hidden=True).passed
    assert run_check(check, _sign_rule, 0, hidden=True).passed


def test_the_transformer_check_prints_no_unit_size_warning_and_diagnoses_the_one_pixel_base_grid():
    """Its 1-pixel align_corners=True cases ran the reference through F.affine_grid's size-1 warning (printed twice
    in the notebook); a hand-built base grid with linspace(-1, 1, 1) = -1 fails on a 1-pixel output, not a kink."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert run_check(get("04.stn_function"), stn_function, 0).passed
    result = run_check(get("04.stn_function"), lambda *a, **k: stn_function(*a, **k, bug="one-pixel-linspace"), 0)
    assert not result.passed and "output 1×" in result.first_failure.case.description


def test_the_transformer_may_build_its_grid_with_lesson_2s_generator():
    """The forward is lesson 2's: grids.affine_grid is allowed (the lesson's solution calls it, for B too)."""
    import warnings

    from stn_course.checks import get as full_get  # with the forbidden names (this file's get drops them)

    def with_the_generator(grad_output, input, theta, padding_mode="zeros", align_corners=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            grids.affine_grid(theta, grad_output.shape, align_corners)
        return stn_function(grad_output, input, theta, padding_mode, align_corners)

    assert run_check(full_get("04.stn_function"), with_the_generator, 0).passed


# --- where the referee is blind: the distance from g = 0 to the nearest point where it and the backward disagree --


def _blind_spot(width, align_corners, eps=1e-6):
    if width == 1 and align_corners:
        return None
    if width % 2:
        return 0.0
    return (1 / (width - 1) if align_corners else 1 / width) - eps


def test_the_distance_rule_passes_and_is_what_the_referee_measures():
    """The answer key is the experiment's: just inside the distance the referee and the backward agree, just beyond
    it (and on the kink) they disagree – on the check's own image, for every visible and hidden case."""
    import numpy as np

    from stn_course.checks import get as full_get
    from stn_course.checks.lesson04 import nearest_kink, referee_and_backward

    check = full_get("04.referee_blind_spot")
    assert run_check(check, _blind_spot, 0).passed and run_check(check, _blind_spot, 0, hidden=True).passed
    cases = [*check.cases(np.random.default_rng(0)), *check.hidden_cases(np.random.default_rng(0))]
    for case in cases:
        width, align_corners, eps = case.args
        d = check.reference(*case.args)
        assert d == _blind_spot(width, align_corners, eps)
        if d is None:
            for g in (-0.7, 0.0, 0.3, 1.0):
                numeric, analytic = referee_and_backward(g, width, align_corners, eps)
                assert abs(numeric - analytic) < 1e-9
            continue
        kink = nearest_kink(width, align_corners)
        for g in (kink, d + 0.1 * eps, -(d + 0.1 * eps)):
            numeric, analytic = referee_and_backward(g, width, align_corners, eps)
            assert abs(numeric - analytic) > 1e-6, (case.description, g)
        if d > 0:
            for g in (0.0, d - 0.1 * eps, -(d - 0.1 * eps), 0.5 * d):
                numeric, analytic = referee_and_backward(g, width, align_corners, eps)
                assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(analytic)), (case.description, g)


@pytest.mark.parametrize("wrong,where,words", [
    (lambda width, align_corners, eps=1e-6: 0.0, "6 wide", "middle"),  # the middle: a kink for odd widths only
    (lambda width, align_corners, eps=1e-6: _blind_spot(width, align_corners, 0.0), "6 wide", "kink itself"),
    (lambda width, align_corners, eps=1e-6: None if width == 1 and align_corners else
     0.0 if width % 2 else (1 / (width - 1) if align_corners else 1 / width) * (1 - 2 * eps), "6 wide", "not the pixel"),
    (lambda width, align_corners, eps=1e-6: _blind_spot(width, False, eps) if width > 1 else
     _blind_spot(width, align_corners, eps), "True", ""),  # one convention's formula for both
    (lambda width, align_corners, eps=1e-6: 0.0 if width == 1 else _blind_spot(width, align_corners, eps),
     "1 wide, align_corners=True", "agree everywhere"),  # a number where nothing moves
])
def test_the_natural_slips_fail_with_their_kind_and_without_the_distance(wrong, where, words):
    result = run_check(get("04.referee_blind_spot"), wrong, 0)
    failure = result.first_failure
    assert not result.passed and where in failure.case.description, failure.case.description
    assert words in failure.message, failure.message
    reference = get("04.referee_blind_spot").reference(*failure.case.args)
    assert reference is None or f"{reference:.6g}" not in failure.message


# --- the best step, predicted as a function of the order --------------------------------------------------------


def test_the_best_step_rule_passes_and_its_slips_are_named_without_the_answer():
    from stn_course.checks import get as full_get

    check = full_get("04.best_step")
    rule = lambda order: (1 / (order + 1), order / (order + 1))  # noqa: E731
    assert run_check(check, rule, 0).passed and run_check(check, rule, 0, hidden=True).passed
    for wrong, words in ((lambda p: (1 / p, 1.0), "divided by eps"), (lambda p: (1 / (p + 1),) * 2, "step itself"),
                         (lambda p: (1 / 3, 2 / 3), "")):  # the central difference's numbers for every order
        result = run_check(check, wrong, 0, hidden=True)
        assert not result.passed and words in result.first_failure.message
        assert "0.333" not in result.first_failure.message and "0.8" not in result.first_failure.message
