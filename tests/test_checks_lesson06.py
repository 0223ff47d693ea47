"""Mutation tests for the lesson-6 checks: the references pass, the popular bugs fail."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stn_course import deform
from stn_course.checks import get
from stn_course.deform import bilinear_sample_pixels, regular_sampling_positions
from .check_helpers import SEEDS, fails, passes


# ---------------------------------------------------------------------------------------------------------------
# Correct solutions, written independently of the references (they are what the notebook's solutions do)
# ---------------------------------------------------------------------------------------------------------------


def positions_ok(h_out, w_out, kernel_size, stride, padding, dilation):
    return regular_sampling_positions(h_out, w_out, kernel_size, stride, padding, dilation)


def conv_by_sampling(input, weight, bias, stride, padding, dilation, sampler=bilinear_sample_pixels,
                     positions=regular_sampling_positions, flip=False):
    n = input.shape[0]
    kh, kw = weight.shape[-2:]
    h_out = (input.shape[2] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (input.shape[3] + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    pos = positions(h_out, w_out, (kh, kw), stride, padding, dilation).to(input.dtype)
    if flip:
        weight = weight.flip(-1, -2)
    out = 0
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            y = pos[k, :, :, 0].expand(n, h_out, w_out)
            x = pos[k, :, :, 1].expand(n, h_out, w_out)
            out = out + torch.einsum("oc,nchw->nohw", weight[:, :, i, j], sampler(input, x=x, y=y))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def deform_loop(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None, layout="interleaved",
                order="yx", sampler=bilinear_sample_pixels, use_mask=True, per_group=True):
    """A learner-style deform_conv2d with switchable bugs."""
    n, c_in, h, w = input.shape
    c_out, _, kh, kw = weight.shape
    k_taps = kh * kw
    og = offset.shape[1] // (2 * k_taps)
    h_out, w_out = offset.shape[-2:]
    pos = regular_sampling_positions(h_out, w_out, (kh, kw), stride, padding, dilation).to(input.dtype)
    off = offset.view(n, og, 2 * k_taps, h_out, w_out)
    if layout == "interleaved":
        first, second = off[:, :, 0::2], off[:, :, 1::2]
    else:  # blocked: all first components, then all second ones
        first, second = off[:, :, :k_taps], off[:, :, k_taps:]
    dy, dx = (first, second) if order == "yx" else (second, first)
    cg = c_in // og
    out = 0
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            samples = []
            for c in range(c_in):
                g = c // cg if per_group else 0
                y = pos[k, :, :, 0] + dy[:, g, k]
                x = pos[k, :, :, 1] + dx[:, g, k]
                s = sampler(input[:, c:c + 1], x=x, y=y)
                if mask is not None and use_mask:
                    s = s * mask.view(n, og, k_taps, h_out, w_out)[:, g, k].unsqueeze(1)
                samples.append(s)
            out = out + torch.einsum("oc,nchw->nohw", weight[:, :, i, j], torch.cat(samples, 1))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def clamping_sampler(input, x, y):
    """Bug: out-of-range neighbours are clamped onto the border instead of reading 0."""
    n, c, h, w = input.shape
    y0, x0 = torch.floor(y), torch.floor(x)
    ly, lx = y - y0, x - x0
    flat = input.reshape(n, c, h * w)
    out = 0
    for yy, xx, wt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                       (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long().reshape(n, 1, -1).expand(n, c, -1)
        out = out + flat.gather(2, index).reshape(n, c, *y.shape[1:]) * wt.unsqueeze(1)
    return out


def truncating_sampler(input, x, y):
    """Bug: int() / .long() truncates towards zero, wrong for negative coordinates."""
    n, c, h, w = input.shape
    y0, x0 = y.long().to(y.dtype), x.long().to(x.dtype)
    ly, lx = y - y0, x - x0
    flat = input.reshape(n, c, h * w)
    out = 0
    for yy, xx, wt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                       (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        inside = (yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= w - 1)
        index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long().reshape(n, 1, -1).expand(n, c, -1)
        out = out + flat.gather(2, index).reshape(n, c, *y.shape[1:]) * (wt * inside).unsqueeze(1)
    return out


def swapped_sampler(input, x, y):
    """Bug: x and y swapped (reads image[x, y])."""
    return bilinear_sample_pixels(input, x=y, y=x)


def sampler_in_the_old_order(input, y, x):
    """A learner's sampler written as (input, y, x), the order before the package's one (x, y): the check passes
    the coordinates by keyword, so it reads them right."""
    return bilinear_sample_pixels(input, x=x, y=y)


# ---------------------------------------------------------------------------------------------------------------


def test_references_and_independent_solutions_pass():
    for check_id, fn in [
        ("06.regular_sampling_positions", positions_ok),
        ("06.bilinear_sample_pixels", bilinear_sample_pixels),
        ("06.bilinear_sample_pixels", sampler_in_the_old_order),
        ("06.conv2d_by_sampling", conv_by_sampling),
        ("06.pack_offsets", lambda dy, dx: torch.stack([dy, dx], 3).flatten(1, 3)),
        ("06.deform_conv2d", deform_loop),
        ("06.deform_conv2d", lambda *a, **k: deform.deform_conv2d(*a, **k, impl="fast")),
        ("06.offsets_from_affine", deform.offsets_from_affine),
    ]:
        assert passes(check_id, fn), check_id
        assert passes(check_id, get(check_id).reference), check_id


@pytest.mark.parametrize("bug", ["no dilation", "xy order", "padding added", "column-major taps"])
def test_positions_bugs_fail(bug):
    def fn(h_out, w_out, kernel_size, stride, padding, dilation):
        if bug == "no dilation":
            dilation = (1, 1)
        if bug == "padding added":
            padding = (-padding[0], -padding[1])
        pos = regular_sampling_positions(h_out, w_out, kernel_size, stride, padding, dilation)
        if bug == "xy order":
            pos = pos.flip(-1)
        if bug == "column-major taps":
            kh, kw = kernel_size
            pos = pos.view(kh, kw, h_out, w_out, 2).transpose(0, 1).reshape(kh * kw, h_out, w_out, 2)
        return pos

    assert fails("06.regular_sampling_positions", fn)


@pytest.mark.parametrize("sampler", [clamping_sampler, truncating_sampler, swapped_sampler],
                         ids=["clamp", "truncate", "swap"])
def test_bilinear_bugs_fail(sampler):
    assert fails("06.bilinear_sample_pixels", sampler)


@pytest.mark.parametrize("bug", ["flipped kernel", "clamping sampler", "positions without padding"])
def test_conv_by_sampling_bugs_fail(bug):
    def fn(input, weight, bias, stride, padding, dilation):
        if bug == "flipped kernel":
            return conv_by_sampling(input, weight, bias, stride, padding, dilation, flip=True)
        if bug == "clamping sampler":
            return conv_by_sampling(input, weight, bias, stride, padding, dilation, sampler=clamping_sampler)
        return conv_by_sampling(input, weight, bias, stride, padding, dilation,
                                positions=lambda h, w, k, s, p, d: regular_sampling_positions(h, w, k, s, 0, d))

    assert fails("06.conv2d_by_sampling", fn)


@pytest.mark.parametrize("bug", ["dx first", "blocked"])
def test_pack_offsets_bugs_fail(bug):
    def fn(dy, dx):
        if bug == "dx first":
            return torch.stack([dx, dy], 3).flatten(1, 3)
        return torch.cat([dy, dx], 2).flatten(1, 2)  # blocked: all dy of the group, then all dx

    assert fails("06.pack_offsets", fn)


def test_a_wrong_layout_is_not_told_the_right_one():
    """The layout is the learner's to find by probing: a wrong packing gets "not this one", no values."""
    from stn_course.checks import run_check
    from stn_course.checks.questions import NOT_THIS_ONE

    result = run_check(get("06.pack_offsets"), lambda dy, dx: torch.stack([dx, dy], 3).flatten(1, 3), 0)
    assert not result.passed and result.first_failure.message == NOT_THIS_ONE
    shape = run_check(get("06.pack_offsets"), lambda dy, dx: torch.stack([dy, dx], 3), 0)
    assert not shape.passed and "shape" in shape.first_failure.message  # a wrong form may be said


@pytest.mark.parametrize("bug", ["dx dy swapped", "blocked layout", "clamping", "mask ignored",
                                 "one offset group for all channels"])
def test_deform_conv2d_bugs_fail(bug):
    kwargs = {
        "dx dy swapped": {"order": "xy"},
        "blocked layout": {"layout": "blocked"},
        "clamping": {"sampler": clamping_sampler},
        "mask ignored": {"use_mask": False},
        "one offset group for all channels": {"per_group": False},
    }[bug]
    assert fails("06.deform_conv2d", lambda *a, **k: deform_loop(*a, **k, **kwargs))


@pytest.mark.parametrize("bug", ["xy order", "absolute positions", "transposed matrix"])
def test_offsets_from_affine_bugs_fail(bug):
    def fn(matrix, h_out, w_out, kernel_size, stride, padding, dilation):
        if bug == "transposed matrix":
            transposed = matrix.clone()
            transposed[:, :2, :2] = matrix[:, :2, :2].transpose(1, 2)
            matrix = transposed
        offset = deform.offsets_from_affine(matrix, h_out, w_out, kernel_size, stride, padding, dilation)
        if bug == "xy order":
            n = offset.shape[0]
            offset = offset.view(n, -1, 2, h_out, w_out).flip(2).view(n, -1, h_out, w_out)
        if bug == "absolute positions":
            base = regular_sampling_positions(h_out, w_out, kernel_size, stride, padding, dilation)
            offset = offset + base.permute(0, 3, 1, 2).reshape(1, -1, h_out, w_out)
        return offset

    assert fails("06.offsets_from_affine", fn)


def test_fast_conv_reference_is_conv2d():
    """The conv check's reference is F.conv2d itself (cross-correlation, zero padding)."""
    x, w = torch.randn(1, 2, 5, 5, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    out = get("06.conv2d_by_sampling").reference(x, w, None, (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(out, F.conv2d(x, w, padding=1))


# ---------------------------------------------------------------------------------------------------------------
# Gradient flow where the text promises it: to the sampling coordinates and to the offsets
# ---------------------------------------------------------------------------------------------------------------


def torchvision_style_sampler(input, x, y):
    """Written as torchvision's bilinear_interpolate: exactly 0 (value and gradient) once a point is at or beyond
    -1 / H, W – a different one-sided derivative exactly on that border, the same everywhere else: it passes."""
    out = bilinear_sample_pixels(input, x=x, y=y)
    outside = (y <= -1) | (y >= input.shape[2]) | (x <= -1) | (x >= input.shape[3])
    return torch.where(outside.unsqueeze(1), torch.zeros_like(out), out)


@pytest.mark.parametrize("detached", ["x", "y"])
def test_a_sampler_that_detaches_a_coordinate_fails(detached):
    def sampler(input, x, y):
        return bilinear_sample_pixels(input, x=x.detach() if detached == "x" else x,
                                      y=y.detach() if detached == "y" else y)

    assert fails("06.bilinear_sample_pixels", sampler)
    from stn_course.checks import run_check

    from .check_helpers import get as without_bans

    message = run_check(without_bans("06.bilinear_sample_pixels"), sampler, 0).first_failure.message
    assert f"no gradient reaches argument '{detached}'" in message


def test_a_sampler_with_torchvision_s_border_convention_passes():
    assert passes("06.bilinear_sample_pixels", torchvision_style_sampler)


def test_deform_conv2d_needs_the_gradient_of_the_offsets():
    detached = lambda input, offset, *a, **k: deform_loop(input, offset.detach(), *a, **k)  # noqa: E731
    assert fails("06.deform_conv2d", detached)
    from stn_course.checks import run_check

    from .check_helpers import get as without_bans

    message = run_check(without_bans("06.deform_conv2d"), detached, 0).first_failure.message
    assert "no gradient reaches argument 2" in message
    def positions_detached(*args, **kwargs):
        return deform_loop(*args, **kwargs, sampler=lambda im, x, y: bilinear_sample_pixels(im, x=x, y=y.detach()))

    assert fails("06.deform_conv2d", positions_detached)


# -- the questions: 06.blocked_reads, 06.dilation_offsets (messages never show the answer) -------------------------


def blocked_by_hand(k_taps, dy, dx):
    channels = [float(dy)] * k_taps + [float(dx)] * k_taps
    return torch.tensor([[channels[2 * k], channels[2 * k + 1]] for k in range(k_taps)], dtype=torch.float64)


def dilation_by_hand(kernel_size, dilation):
    c = (kernel_size - 1) / 2
    return torch.tensor([[(dilation - 1) * (i - c), (dilation - 1) * (j - c)] for i in range(kernel_size)
                         for j in range(kernel_size)], dtype=torch.float64)


@pytest.mark.parametrize("check_id, solution, bugs", [
    ("06.blocked_reads", blocked_by_hand, [
        lambda k, dy, dx: torch.tensor([[float(dy), float(dx)]] * k, dtype=torch.float64),  # what was asked for
        lambda k, dy, dx: blocked_by_hand(k, dx, dy),  # dx first
        lambda k, dy, dx: blocked_by_hand(9, 0.0, 2.0),  # the picture's answer, copied
    ]),
    ("06.dilation_offsets", dilation_by_hand, [
        lambda k, d: dilation_by_hand(k, d + 1),  # d (i - c): the padding's share forgotten
        lambda k, d: dilation_by_hand(k, d)[:, [1, 0]],  # (dx, dy)
        lambda k, d: dilation_by_hand(3, 2),  # the question's 3×3 answer, copied
    ]),
])
def test_questions_pass_and_bugs_fail_without_showing_the_answer(check_id, solution, bugs):
    from stn_course.checks import format_result, run_check

    assert passes(check_id, solution) and all(run_check(get(check_id), solution, s, hidden=True).passed for s in SEEDS)
    for bug in bugs:  # a copied answer fails the visible cases (the lesson's numbers and one more) and the hidden ones
        results = [run_check(get(check_id), bug, s, hidden=hidden) for s in SEEDS for hidden in (False, True)]
        assert not any(r.passed for r in results[0::2]) and not all(r.passed for r in results[1::2])
        text = " ".join(format_result(r) for r in results if not r.passed)
        assert ("not this one" in text or "expected shape" in text) and "2., 2." not in text and "-1., -1." not in text
