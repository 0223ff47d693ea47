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


def positions_by_hand(h_out, w_out, kernel_size, stride, padding, dilation):
    """Where tap (i, j) of output (h, w) reads, (row, column) = (h s − p + i d, w s − p + j d), written out."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, *(
        (v, v) if isinstance(v, int) else v for v in (stride, padding, dilation))
    return torch.tensor([[[[h * sh - ph + i * dh, w * sw - pw + j * dw] for w in range(w_out)] for h in range(h_out)]
                         for i in range(kh) for j in range(kw)], dtype=torch.float64).view(kh * kw, h_out, w_out, 2)


def affine_offsets_by_hand(matrix, h_out, w_out, kernel_size, stride, padding, dilation, bug=None):
    """Offsets for a pixel-space affine map, one number at a time: tap k at (h, w) reads (y, x) and should read
    A (x, y, 1); channel 2k holds the row offset, 2k + 1 the column offset. ``bug`` switches in a popular mistake."""
    pos = positions_by_hand(h_out, w_out, kernel_size, stride, padding, dilation)  # (K, H_out, W_out, 2) as (y, x)
    if bug == "transposed matrix":
        matrix = matrix.clone()
        matrix[:, :2, :2] = matrix[:, :2, :2].transpose(1, 2).clone()
    k_taps, n = pos.shape[0], matrix.shape[0]
    out = torch.zeros(n, 2 * k_taps, h_out, w_out, dtype=matrix.dtype)
    for b in range(n):
        a = matrix[b].tolist()
        for k in range(k_taps):
            for h in range(h_out):
                for w in range(w_out):
                    y, x = pos[k, h, w].tolist()
                    if bug == "matrix acts on (y, x)":
                        y, x = x, y
                    new_x, new_y = (a[0][0] * x + a[0][1] * y + a[0][2], a[1][0] * x + a[1][1] * y + a[1][2])
                    if bug == "matrix acts on (y, x)":
                        y, x = x, y
                    dy, dx = (new_y, new_x) if bug == "absolute positions" else (new_y - y, new_x - x)
                    first, second = (dx, dy) if bug == "dx first" else (dy, dx)
                    if bug == "blocked":
                        out[b, k, h, w], out[b, k_taps + k, h, w] = first, second
                    else:
                        out[b, 2 * k, h, w], out[b, 2 * k + 1, h, w] = first, second
    return out


def conv_by_sampling(input, weight, bias, stride, padding, dilation, sampler=bilinear_sample_pixels,
                     positions=positions_by_hand, flip=False):
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


# ---------------------------------------------------------------------------------------------------------------


def test_positions_by_hand_are_the_package_s():
    for geometry in [((3, 2), (2, 1), (1, 2), (3, 1)), ((1, 1), (1, 1), (0, 0), (1, 1))]:
        torch.testing.assert_close(positions_by_hand(4, 3, *geometry), regular_sampling_positions(4, 3, *geometry))


def test_references_and_independent_solutions_pass():
    for check_id, fn in [
        ("06.conv2d_by_sampling", conv_by_sampling),
        ("06.deform_conv2d", deform_loop),
        ("06.deform_conv2d", lambda *a, **k: deform.deform_conv2d(*a, **k, impl="fast")),
        ("06.offsets_from_affine", affine_offsets_by_hand),
        ("06.offsets_from_affine", deform.offsets_from_affine),
    ]:
        assert passes(check_id, fn), check_id
        assert passes(check_id, get(check_id).reference), check_id


POSITION_BUGS = {
    "no dilation": lambda h, w, k, s, p, d: positions_by_hand(h, w, k, s, p, 1),
    "padding added": lambda h, w, k, s, p, d: positions_by_hand(h, w, k, s, (-p[0], -p[1]), d),
    "no padding": lambda h, w, k, s, p, d: positions_by_hand(h, w, k, s, 0, d),
    "stride and dilation swapped": lambda h, w, k, s, p, d: positions_by_hand(h, w, k, d, p, s),
    "xy order": lambda *a: positions_by_hand(*a).flip(-1),
    "column-major taps": lambda h, w, k, s, p, d: positions_by_hand(h, w, k, s, p, d).view(
        k[0], k[1], h, w, 2).transpose(0, 1).reshape(k[0] * k[1], h, w, 2),
}


@pytest.mark.parametrize("bug", [*POSITION_BUGS, "flipped kernel", "clamping sampler"])
def test_conv_by_sampling_bugs_fail(bug):
    """Where the taps read is the exercise: every wrong position formula, a flipped kernel and a sampler that clamps
    onto the border instead of reading 0 lose the points."""
    def fn(input, weight, bias, stride, padding, dilation):
        if bug == "flipped kernel":
            return conv_by_sampling(input, weight, bias, stride, padding, dilation, flip=True)
        if bug == "clamping sampler":
            return conv_by_sampling(input, weight, bias, stride, padding, dilation, sampler=clamping_sampler)
        return conv_by_sampling(input, weight, bias, stride, padding, dilation, positions=POSITION_BUGS[bug])

    assert fails("06.conv2d_by_sampling", fn)


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


AFFINE_BUGS = ["dx first", "blocked", "matrix acts on (y, x)", "absolute positions", "transposed matrix"]


@pytest.mark.parametrize("bug", AFFINE_BUGS)
def test_offsets_from_affine_bugs_fail(bug):
    """The layout (dx first, blocked) and where (x, y) meets (dy, dx) lose the points."""
    assert fails("06.offsets_from_affine", lambda *args: affine_offsets_by_hand(*args, bug=bug))


@pytest.mark.parametrize("bug", AFFINE_BUGS)
def test_a_wrong_layout_is_not_told_the_right_one(bug):
    """The layout is the learner's to find by probing: a wrong answer gets "not this one" or, for a layout bug only,
    "the right numbers, in the wrong channels" – never values; a wrong shape may be said."""
    from stn_course.checks import format_result, run_check
    from stn_course.checks.lesson06 import RIGHT_NUMBERS_WRONG_CHANNELS
    from stn_course.checks.questions import NOT_THIS_ONE

    check = get("06.offsets_from_affine")
    for hidden in (False, True):
        result = run_check(check, lambda *args: affine_offsets_by_hand(*args, bug=bug), 0, hidden=hidden)
        failure = result.first_failure
        assert not result.passed
        layout_bug = bug in ("dx first", "blocked")
        assert failure.message == (RIGHT_NUMBERS_WRONG_CHANNELS if layout_bug else NOT_THIS_ONE), failure.message
        assert "tensor(" not in format_result(result)
    shape = run_check(check, lambda *args: affine_offsets_by_hand(*args)[:, None], 0)
    assert not shape.passed and "shape" in shape.first_failure.message


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


def test_deform_conv2d_with_torchvision_s_border_convention_passes():
    assert passes("06.deform_conv2d", lambda *a, **k: deform_loop(*a, **k, sampler=torchvision_style_sampler))


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


# -- the question: 06.blocked_dilation (messages never show the answer) -----------------------------------------


def dilation_by_hand(kernel_size, dilation):
    """The offsets meant: (d − 1)(i − c, j − c) per tap, ``(k·k, 2)`` (dy, dx)."""
    c = (kernel_size - 1) / 2
    return torch.tensor([[(dilation - 1) * (i - c), (dilation - 1) * (j - c)] for i in range(kernel_size)
                         for j in range(kernel_size)], dtype=torch.float64)


def blocked_by_hand(offsets):
    """What the layer applies to ``offsets (K, 2)`` packed blocked: tap k gets channels 2k and 2k + 1."""
    channels = offsets[:, 0].tolist() + offsets[:, 1].tolist()
    return torch.tensor([[channels[2 * k], channels[2 * k + 1]] for k in range(len(offsets))], dtype=torch.float64)


def test_blocked_dilation_by_hand_is_the_reference_and_the_3x3_case_is_what_the_lesson_says():
    torch.testing.assert_close(get("06.blocked_dilation").reference(3, 2), blocked_by_hand(dilation_by_hand(3, 2)))
    read = blocked_by_hand(dilation_by_hand(3, 2))
    assert (read == dilation_by_hand(3, 2)).all(1).nonzero().flatten().tolist() == [0, 1, 5]  # the rest move wrong
    assert read[4].abs().sum() > 0  # the centre tap, meant to stay, moves


@pytest.mark.parametrize("bug", [
    lambda k, d: dilation_by_hand(k, d),  # what was meant, as if the layout were right
    lambda k, d: blocked_by_hand(dilation_by_hand(k, d + 1)),  # d (i − c): the plain layer's own place forgotten
    lambda k, d: blocked_by_hand(dilation_by_hand(k, d)[:, [1, 0]]),  # dx first
    lambda k, d: blocked_by_hand(dilation_by_hand(k, d)).T.reshape(-1, 2),  # read back blocked by the same mistake
    lambda k, d: blocked_by_hand(dilation_by_hand(3, 2)),  # the lesson's 3×3 answer, copied
], ids=["meant", "times d", "dx first", "blocked both ways", "copied"])
def test_blocked_dilation_passes_and_bugs_fail_without_showing_the_answer(bug):
    from stn_course.checks import format_result, run_check

    check_id = "06.blocked_dilation"
    solution = lambda k, d: blocked_by_hand(dilation_by_hand(k, d))  # noqa: E731
    assert passes(check_id, solution) and all(run_check(get(check_id), solution, s, hidden=True).passed for s in SEEDS)
    # fails the visible cases (the lesson's numbers and one more) and some hidden ones
    results = [run_check(get(check_id), bug, s, hidden=hidden) for s in SEEDS for hidden in (False, True)]
    assert not any(r.passed for r in results[0::2]) and not all(r.passed for r in results[1::2])
    text = " ".join(format_result(r) for r in results if not r.passed)
    assert ("not this one" in text or "expected shape" in text) and "-1., -1." not in text and "1., -1." not in text
