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
                order="yx", sampler=bilinear_sample_pixels, use_mask=True, per_group=True, strided_groups=False,
                mask_tap_major=False, offset_path=lambda d: d):
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
    dy, dx = offset_path(dy), offset_path(dx)
    masks = None if mask is None else mask.view(n, og, k_taps, h_out, w_out)
    if mask is not None and mask_tap_major:
        masks = mask.view(n, k_taps, og, h_out, w_out).transpose(1, 2)
    cg = c_in // og
    out = 0
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            samples = []
            for c in range(c_in):
                g = (c % og if strided_groups else c // cg) if per_group else 0
                y = pos[k, :, :, 0] + dy[:, g, k]
                x = pos[k, :, :, 1] + dx[:, g, k]
                s = sampler(input[:, c:c + 1], x=x, y=y)
                if mask is not None and use_mask:
                    s = s * masks[:, g, k].unsqueeze(1)
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
        ("06.offsets_from_affine", affine_offsets_by_hand),
        ("06.offsets_from_affine", deform.offsets_from_affine),
    ]:
        assert passes(check_id, fn), check_id
        assert passes(check_id, get(check_id).reference), check_id


def test_the_fast_path_passes_away_from_the_kinks_only():
    """The package's fast path samples with F.grid_sample in normalized coordinates: a whole pixel can come back a
    hair below the integer, and there its offset gradient is the one-sided one from below. It passes every case
    but the integer-offset one, which compares with torch's convention in pixel coordinates (the reference's)."""
    import dataclasses

    from stn_course.checks import run_check

    from .check_helpers import get as without_bans

    check = without_bans("06.deform_conv2d")
    away = dataclasses.replace(check, cases=lambda rng: [c for c in check.cases(rng) if not c.kink])
    fast = lambda *a, **k: deform.deform_conv2d(*a, **k, impl="fast")  # noqa: E731
    assert all(run_check(away, fast, seed).passed for seed in SEEDS)


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


@pytest.mark.parametrize("bug, diagnosis", [
    ({"strided_groups": True}, "each group's offsets move the wrong input channels"),
    ({"mask_tap_major": True}, "the mask weights the wrong samples"),
    ({"order": "xy"}, "along the other axis"),
    ({"layout": "blocked"}, "read blocked"),
    ({"use_mask": False}, "without the mask"),
])
def test_deform_conv2d_probed_contract_slips_are_named_never_shown(bug, diagnosis):
    """The groups' channels and the mask's order are found by probing: a slip is told its kind, on the visible and
    the hidden cases, and no message shows a value of the reference."""
    from stn_course.checks import format_result, run_check

    for hidden in (False, True):
        result = run_check(get("06.deform_conv2d"), lambda *a, **k: deform_loop(*a, **k, **bug), 0, hidden=hidden)
        assert not result.passed and diagnosis in result.first_failure.message, format_result(result)


def test_deform_conv2d_gradient_at_a_fresh_layer_s_zero_offsets():
    """Zero and whole-pixel offsets sit on the kinks: an offset path with no derivative at 0 (NaN there, right
    everywhere else) fails on the visible integer-offset case, diagnosed as a gradient at the kinks; torch's
    one-sided convention (the solution's) passes there."""
    from stn_course.checks import run_check
    from stn_course.checks.properties import GRADIENT_AT_KINKS

    def nan_at_zero(d):
        return (d ** 2).sqrt() * d.sign()

    cases = [c for c in get("06.deform_conv2d").cases(__import__("numpy").random.default_rng(0)) if c.kink]
    assert cases and all((c.args[1] == c.args[1].round()).all() and (c.args[1] == 0).any() for c in cases)
    for hidden in (False, True):
        result = run_check(get("06.deform_conv2d"), lambda *a, **k: deform_loop(*a, **k, offset_path=nan_at_zero), 0,
                           hidden=hidden)
        failure = result.first_failure
        assert failure.case.kink and "NaN" in failure.message and failure.property == GRADIENT_AT_KINKS


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


def taps_right(applied, kernel_size, dilation):
    """The taps whose applied pair equals the one meant, in both numbers."""
    return (applied == dilation_by_hand(kernel_size, dilation)).all(1).nonzero().flatten().tolist()


def blocked_answer(kernel_size, dilation):
    applied = blocked_by_hand(dilation_by_hand(kernel_size, dilation))
    return applied, taps_right(applied, kernel_size, dilation)


def test_blocked_dilation_by_hand_is_the_reference_and_the_3x3_case_is_what_the_lesson_says():
    reference = get("06.blocked_dilation").reference
    for k, d in ((3, 2), (5, 3), (5, 1), (1, 5)):
        applied, taps = reference(k, d)
        torch.testing.assert_close(applied, blocked_by_hand(dilation_by_hand(k, d)))
        assert taps == taps_right(applied, k, d)
    applied, taps = reference(3, 2)
    assert taps == [0, 1, 5]  # the rest move wrong; tap 5 is the one a hand count misses
    assert applied[4].abs().sum() > 0  # the centre tap, meant to stay, moves
    assert reference(5, 1)[1] == list(range(25)) and reference(1, 5)[1] == [0]  # d = 1 and 1×1: every tap right
    assert reference(3, 4)[1] == [0, 1, 5] and reference(5, 3)[1] != [0, 1, 5]  # depends on k, not on d ≥ 2


def _with_taps(applied_of):
    """A bug in the displacements, with the taps its author would compute from them."""
    return lambda k, d: (applied_of(k, d), taps_right(applied_of(k, d), k, d))


@pytest.mark.parametrize("bug, said", [
    (_with_taps(lambda k, d: dilation_by_hand(k, d)), "as if the layout were right"),  # what was meant
    (_with_taps(lambda k, d: blocked_by_hand(dilation_by_hand(k, d + 1))), "d·(i − c)"),  # the plain place forgotten
    (_with_taps(lambda k, d: blocked_by_hand(dilation_by_hand(k, d)[:, [1, 0]])), "(dx, dy)"),  # dx first
    (_with_taps(lambda k, d: blocked_by_hand(dilation_by_hand(k, d)).T.reshape(-1, 2)), "the displacements"),
    (lambda k, d: blocked_answer(3, 2), "the displacements"),  # the lesson's 3×3 answer, copied
    (lambda k, d: (blocked_answer(k, d)[0], [0, 1]), "compare every tap"),  # the reader's hand count
    (lambda k, d: (blocked_answer(k, d)[0], [t + 1 for t in blocked_answer(k, d)[1]]), "count from 0"),
    (lambda k, d: (blocked_answer(k, d)[0], (blocked_answer(k, d)[0] == dilation_by_hand(k, d)).any(1)
                   .nonzero().flatten().tolist()), "BOTH"),
    (lambda k, d: (blocked_answer(k, d)[0], (blocked_answer(k, d)[0] == 0).all(1).nonzero().flatten().tolist()),
     "stays put"),
    (lambda k, d: blocked_answer(k, d)[0], "expected a pair"),  # the old answer: displacements only
], ids=["meant", "times d", "dx first", "blocked both ways", "copied", "hand count", "from 1", "one coordinate",
        "stay put", "no taps"])
def test_blocked_dilation_passes_and_bugs_fail_without_showing_the_answer(bug, said):
    from stn_course.checks import format_result, run_check

    check_id = "06.blocked_dilation"
    assert passes(check_id, blocked_answer)
    assert all(run_check(get(check_id), blocked_answer, s, hidden=True).passed for s in SEEDS)
    # a tensor of taps is fine too
    assert passes(check_id, lambda k, d: (blocked_answer(k, d)[0], torch.tensor(blocked_answer(k, d)[1])))
    # fails the visible cases (the lesson's numbers and one more) and some hidden ones
    results = [run_check(get(check_id), bug, s, hidden=hidden) for s in SEEDS for hidden in (False, True)]
    assert not any(r.passed for r in results[0::2]) and not all(r.passed for r in results[1::2])
    text = " ".join(format_result(r) for r in results if not r.passed)
    assert said in text, text
    assert "-1., -1." not in text and "1., -1." not in text and "[0, 1, 5]" not in text


# -- the question: 06.fresh_offset_gradient (a prediction on the kinks; messages name the slip, never a value) -----


def fresh_gradient_by_hand(image, border="zeros", scheme="forward"):
    """What a learner writes for a fresh 1×1 layer's offset gradient: differences of neighbours read from a padded
    image (``border``: what lies beyond it), ``scheme`` forward / below (backward) / central. ``(H, W) -> (2, H, W)``"""
    mode = "constant" if border == "zeros" else "replicate"
    p = F.pad(image[None], (1, 1, 1, 1), mode=mode)[0]
    centre = p[1:-1, 1:-1]
    below, above, right, left = p[2:, 1:-1], p[:-2, 1:-1], p[1:-1, 2:], p[1:-1, :-2]
    if scheme == "forward":
        return torch.stack([below - centre, right - centre])
    if scheme == "below":  # the backward difference
        return torch.stack([centre - above, centre - left])
    return torch.stack([(below - above) / 2, (right - left) / 2])


def test_fresh_offset_gradient_is_autograd_s_on_the_kinks_and_the_forward_difference():
    g = torch.Generator().manual_seed(0)
    for h, w in ((1, 1), (1, 4), (3, 1), (4, 5)):
        image = torch.randn(h, w, generator=g, dtype=torch.float64)
        offset = torch.zeros(2, h, w, dtype=torch.float64, requires_grad=True)
        rows, cols = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")
        bilinear_sample_pixels(image[None, None], x=(cols + offset[1])[None], y=(rows + offset[0])[None]).sum().backward()
        torch.testing.assert_close(get("06.fresh_offset_gradient").reference(image), offset.grad)
        torch.testing.assert_close(offset.grad, fresh_gradient_by_hand(image))
        assert (offset.grad[0, -1] == -image[-1]).all()  # the last row: the neighbour outside reads 0


@pytest.mark.parametrize("bug, diagnosis", [
    ({"border": "replicate"}, "wrong on the last row or column"),
    ({"scheme": "central"}, "a central difference"),
    ({"scheme": "below"}, "the derivative from below"),
    ({"negate": True}, "the wrong sign"),
    ({"swap": True}, "swapped"),
    ({"zero": True}, "0 everywhere"),
], ids=["border clamped", "central", "backward", "sign", "dy/dx swapped", "zero"])
def test_fresh_offset_gradient_slips_are_named_visible_and_hidden_never_shown(bug, diagnosis):
    from stn_course.checks import format_result, run_check

    def answer(image):
        if bug.get("zero"):
            return torch.zeros(2, *image.shape, dtype=image.dtype)
        out = fresh_gradient_by_hand(image, **{k: v for k, v in bug.items() if k in ("border", "scheme")})
        return -out if bug.get("negate") else out.flip(0) if bug.get("swap") else out

    check = get("06.fresh_offset_gradient")
    solution = lambda image: fresh_gradient_by_hand(image)  # noqa: E731
    assert all(run_check(check, solution, s, hidden=hidden).passed for s in SEEDS for hidden in (False, True))
    for hidden in (False, True):
        result = run_check(check, answer, 0, hidden=hidden)
        assert not result.passed and "not this one" in result.first_failure.message, format_result(result)
        if not hidden:  # the visible cases are 3×4 and 5×6: every slip is told its kind
            assert diagnosis in result.first_failure.message, format_result(result)
        assert "tensor(" not in format_result(result)


def test_fresh_offset_gradient_bans_the_experiment():
    def by_experiment(image):
        offset = torch.zeros(2, *image.shape, dtype=image.dtype, requires_grad=True)
        rows, cols = torch.meshgrid(torch.arange(image.shape[0]).to(image.dtype),
                                    torch.arange(image.shape[1]).to(image.dtype), indexing="ij")
        out = bilinear_sample_pixels(image[None, None], x=(cols + offset[1])[None], y=(rows + offset[0])[None])
        return torch.autograd.grad(out.sum(), offset)[0]

    from stn_course.checks import run_check

    result = run_check(get("06.fresh_offset_gradient"), by_experiment, 0)
    assert not result.passed and result.first_failure.status == "banned call"
