"""Mutation tests for the lesson-7 checks: correct solutions written independently pass on every seed, the popular
bugs fail; the kernel check runs a real Triton kernel (through the interpreter without a GPU)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stn_course import gpu
from stn_course.checks import format_result, run_check
from stn_course.gpu.affine import affine_sample

from .check_helpers import assert_fails, assert_passes, get

# -- the bytes model, counted independently (behind 07.fusion_bound) ----------------------------------------


def bytes_ok(input_shape, out_size, element_size=4, fused=False, backward=False, zero_fill=True, grid_back=True):
    """An independent count, tensor by tensor; ``zero_fill``/``grid_back`` False leave out one backward crossing."""
    n, c, h, w = input_shape
    pixels = n * out_size[0] * out_size[1]
    image, output, grid = n * c * h * w, c * pixels, 2 * pixels
    if not backward:
        tensors = [image, output] + ([] if fused else [grid, grid])  # grid written, then read
    else:  # grad_output and the input read, the input gradient zero-filled and written
        tensors = [output, image, image] + [image] * zero_fill
        if not fused:  # grid read, grad_grid written, (read back by affine_grid's backward)
            tensors += [grid, grid] + [grid] * grid_back
    return sum(tensors) * element_size


# -- 07.program_reads (a colleague's tile and the index arithmetic, in one) ----------------------------------------


def tiles_ok(pid, block, h_out, w_out):
    lanes = torch.arange(pid * block, (pid + 1) * block)
    return torch.div(lanes, w_out, rounding_mode="floor"), torch.remainder(lanes, w_out), lanes < h_out * w_out


def source_ok(theta, rows, cols, in_size, out_size, align_corners=False, corners=None):
    """Pixel coordinates from the inverse of lesson 1's pixel_to_theta view: output pixel -> normalized -> θ ->
    input pixel, as 3×3 matrices (an independent route from the kernel's formulas)."""
    from stn_course.affine import normalization_matrix, to_homogeneous

    ac = align_corners if corners is None else corners
    n_out = normalization_matrix(out_size, ac, dtype=theta.dtype)
    n_in = normalization_matrix(in_size, ac, dtype=theta.dtype)
    m = torch.linalg.inv(n_in) @ to_homogeneous(theta) @ n_out
    p = torch.stack([cols.to(theta.dtype), rows.to(theta.dtype), torch.ones_like(cols, dtype=theta.dtype)], -1)
    q = p @ m.T
    return q[..., 0], q[..., 1]


def reads_ok(theta, pid, block, in_size, out_size, align_corners=False, tiles=tiles_ok, corners=None):
    """The tile, then the matrices' route to every lane's sampling point; ``tiles``/``corners`` plant a bug."""
    rows, cols, live = tiles(pid, block, *out_size)
    return (*source_ok(theta, rows, cols, in_size, out_size, align_corners, corners), live)


def colleague_pixels(pid, block, h_out, w_out, fix_rows=False, fix_mask=False):
    """Lesson 7's colleague: rows of h_out pixels, the lane past the end live – either bug fixed on request."""
    offsets = pid * block + torch.arange(block)
    side = w_out if fix_rows else h_out
    return offsets // side, offsets % side, (offsets < h_out * w_out) if fix_mask else (offsets <= h_out * w_out)


def test_program_reads():
    assert_passes("07.program_reads", reads_ok)
    assert_fails("07.program_reads", lambda t, p, b, i, o, a=False: reads_ok(t, p, b, i, o, a, corners=not a))
    assert_fails("07.program_reads", lambda t, p, b, i, o, a=False: reads_ok(t[:, [1, 0, 2]], p, b, i, o, a))
    assert_fails("07.program_reads", lambda t, p, b, i, o, a=False: reads_ok(t, p, b, i, o, a)[:2]
                 + (torch.ones(b, dtype=torch.bool),))  # every lane live: the ragged end unmasked
    assert_fails("07.program_reads", lambda t, p, b, i, o, a=False: tuple(v.float() if v.is_floating_point() else v
                                                                        for v in reads_ok(t, p, b, i, o, a)))


def test_the_colleague_s_bugs_hide_in_his_test_and_each_fails_the_check_alone():
    from stn_course.bug_hunt import colleague_pixels as black_box

    for pid in (0, 1):  # his printout: 4×4, BLOCK 8 – square, 16 pixels a multiple of BLOCK – looks right
        assert all(torch.equal(a, b) for a, b in zip(colleague_pixels(pid, 8, 4, 4), tiles_ok(pid, 8, 4, 4)))
    for args in ((0, 8, 4, 4), (1, 8, 4, 4), (0, 2, 1, 2), (0, 2, 1, 1), (3, 16, 5, 7)):  # the lesson's black box
        assert all(torch.equal(a, b) for a, b in zip(black_box(*args), colleague_pixels(*args)))
    # the fold's smallest counterexamples: a 1×2 output (second pixel in row 1), a 1×1 output with BLOCK 2
    assert not torch.equal(black_box(0, 2, 1, 2)[0], tiles_ok(0, 2, 1, 2)[0])
    assert not torch.equal(black_box(0, 2, 1, 1)[2], tiles_ok(0, 2, 1, 1)[2])

    def with_tile(**fixes):
        return lambda t, p, b, i, o, a=False: reads_ok(t, p, b, i, o, a,
                                                       tiles=lambda *args: colleague_pixels(*args, **fixes))

    assert_fails("07.program_reads", with_tile())
    assert_fails("07.program_reads", with_tile(fix_rows=True))  # the mask still one lane late
    assert_fails("07.program_reads", with_tile(fix_mask=True))  # rows of h_out pixels
    assert_passes("07.program_reads", with_tile(fix_rows=True, fix_mask=True))


def test_program_reads_cases_meet_the_kinks():
    """Non-square outputs, a partly masked last program, 1-pixel sides under align_corners=True, visible and
    hidden."""
    check = get("07.program_reads")
    for cases in (check.cases(np.random.default_rng(0)), check.hidden_cases(np.random.default_rng(0))):
        args = [c.args for c in cases]
        assert any(o[0] != o[1] for _, _, _, _, o, _ in args)
        assert any((p + 1) * b > o[0] * o[1] > p * b for _, p, b, _, o, _ in args)
        assert any(a and 1 in o for _, _, _, _, o, a in args)


# -- 07.fused_affine_sample (a real kernel: through the interpreter here) -----------------------------------------


def fused_ok(input, theta, out_size):
    return affine_sample(input, theta, (input.shape[0], input.shape[1], *out_size))


@pytest.mark.triton
def test_fused_affine_sample_with_a_real_kernel():
    assert gpu.can_run(torch.zeros(1))  # tests/conftest.py sets TRITON_INTERPRET=1 without a GPU
    assert_passes("07.fused_affine_sample", fused_ok, seeds=(0, 1))
    assert_fails("07.fused_affine_sample", lambda x, t, o: affine_sample(x, t, (x.shape[0], x.shape[1], *o),
                                                                         "border"), seeds=(0, 1))  # clamps outside
    assert_fails("07.fused_affine_sample", lambda x, t, o: affine_sample(x, t, (x.shape[0], x.shape[1], *o),
                                                                         align_corners=True), seeds=(0, 1))


@pytest.mark.triton
def test_the_hidden_kernel_cases_span_several_programs():
    check = get("07.fused_affine_sample")
    largest = max(c.args[2][0] * c.args[2][1] for c in check.hidden_cases(__import__("numpy").random.default_rng(0)))
    assert largest > gpu.block_size(torch.device("cpu"))
    assert run_check(check, fused_ok, 3, hidden=True).passed


# -- a kernel without its masks: a clear failure, never a dead process -------------------------------------------


@pytest.mark.triton
def test_the_guard_lets_a_correct_kernel_run_and_stops_a_store_without_mask_before_it_writes():
    from stn_course.gpu.bounds import KernelOutOfBounds, checked_memory

    from .lesson07_kernels import launcher

    x, theta = torch.randn(1, 2, 5, 6, dtype=torch.float64), torch.eye(2, 3, dtype=torch.float64)[None]
    with checked_memory():
        assert torch.allclose(launcher()(x, theta, (5, 6)), x, rtol=0, atol=1e-12)  # the identity copies the input
    with pytest.raises(Exception) as raised, checked_memory():
        launcher(mask_store=False)(x, theta, (5, 6))
    cause = raised.value.__cause__ or raised.value
    assert isinstance(cause, KernelOutOfBounds)
    assert "tl.store wrote outside the output" in str(cause) and "mask=" in str(cause)
    assert "past the end of `out`" in str(cause)


@pytest.mark.triton
@pytest.mark.parametrize("masks", [{"mask_store": False}, {"mask_load": False}], ids=["store", "load"])
def test_a_kernel_without_its_masks_fails_the_check_with_a_message(masks):
    from .lesson07_kernels import launcher

    assert_passes("07.fused_affine_sample", launcher(), seeds=(0,))
    result = run_check(get("07.fused_affine_sample"), launcher(**masks), 0)
    assert not result.passed and result.first_failure.status == "error"
    message = result.first_failure.message
    assert "KernelOutOfBounds" in message and "every load and store needs mask=" in message
    assert ("tl.store wrote outside the output" if "mask_store" in masks else "tl.load read outside") in message


@pytest.mark.triton
def test_a_float64_case_is_compared_to_float64_precision():
    """A kernel that computes in float32 inside is off by ~1e-7–1e-5 on a float64 case: that fails now (1e-12)."""
    inside_float32 = lambda x, t, o: fused_ok(x.float(), t.float(), o).to(x.dtype)  # noqa: E731
    assert_fails("07.fused_affine_sample", inside_float32, seeds=(0, 1))
    results = run_check(get("07.fused_affine_sample"), fused_ok, 0).results
    float64 = [r.error for r in results if r.case.args[0].dtype == torch.float64]
    assert len(float64) >= 3 and max(float64) < 1e-12


def test_the_worst_error_reported_is_the_measure_the_text_states():
    """|yours − torch| / (1 + |torch|): a pass never reports more than the tolerance, a failure's message names it."""
    from stn_course.checks.lesson07 import _compare_kernel

    expected = torch.tensor([100.0, 0.0], dtype=torch.float32)
    ok, worst, message = _compare_kernel(expected, expected + torch.tensor([5e-4, 0.0]), None)
    assert ok and worst <= 1e-5 and worst > 4e-6  # absolutely 5e-4 off, within 1e-5 · (1 + 100)
    ok, worst, message = _compare_kernel(expected, expected + torch.tensor([0.0, 3e-5]), None)
    assert not ok and "(1 + |torch|) about 3e-05" in message and abs(worst - 3e-5) < 1e-9


@pytest.mark.triton
def test_check_in_a_notebook_reports_a_store_without_mask_and_the_process_lives_on():
    from stn_course.checks import CheckFailed, check

    from .lesson07_kernels import launcher

    with pytest.raises(CheckFailed) as failed:
        check("07.fused_affine_sample", launcher(mask_store=False), seed=0)
    assert "tl.store wrote outside the output" in str(failed.value)
    assert "every load and store needs mask=" in str(failed.value)
    assert check("07.fused_affine_sample", launcher(), seed=0, quiet=True) is not None  # the session goes on


@pytest.mark.triton
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_the_guard_never_stops_the_package_s_own_kernels(padding_mode):
    """No false alarms: the package's forward and backward kernels (atomics, reductions) run under the guard and
    give what they give without it."""
    from stn_course.gpu.bounds import checked_memory

    x = torch.randn(2, 3, 7, 5, dtype=torch.float64, requires_grad=True)
    theta = (torch.eye(2, 3, dtype=torch.float64) + 0.4 * torch.randn(2, 2, 3, dtype=torch.float64)).requires_grad_()
    results = []
    for guarded in (False, True):
        with checked_memory() if guarded else __import__("contextlib").nullcontext():
            out = affine_sample(x, theta, (2, 3, 6, 9), padding_mode)
            results.append((out, *torch.autograd.grad(out.square().sum(), (x, theta))))
    for unguarded, guarded in zip(*results):
        assert torch.equal(unguarded, guarded)


# -- 07.affine_input_gradient (the learner's atomic scatter: a real kernel, through the interpreter here) -------


def input_gradient_ok(grad_output, theta, in_size, align_corners=False):
    """An independent scatter in torch: each output pixel's gradient times the bilinear weights of its corners
    (from the corners' distances, ``(1 − |x − x_k|)(1 − |y − y_k|)``), added with ``index_add_``."""
    from stn_course.gpu.indexing import source_pixels as where_read

    n, c, h_out, w_out = grad_output.shape
    h, w = in_size
    rows, cols = torch.meshgrid(torch.arange(h_out), torch.arange(w_out), indexing="ij")
    flat = torch.zeros(n, c, h * w, dtype=grad_output.dtype, device=grad_output.device)
    for k in range(n):
        x, y = where_read(theta[k], rows.to(theta.device), cols.to(theta.device), (h, w), (h_out, w_out),
                          align_corners)
        for dy in (0, 1):
            for dx in (0, 1):
                xk, yk = x.floor() + dx, y.floor() + dy
                weight = (1 - (x - xk).abs()) * (1 - (y - yk).abs())
                inside = ((xk >= 0) & (xk < w) & (yk >= 0) & (yk < h)).flatten()
                index = (yk * w + xk).flatten().long()[inside]
                contribution = (grad_output[k].flatten(1) * weight.flatten())[:, inside]
                flat[k].index_add_(1, index, contribution)
    return flat.view(n, c, h, w)


def theta_gradient_ok(grad_output, input, theta, align_corners=False):
    """θ's gradient from the package's fused kernel (its own autograd; not the check's torch reference)."""
    t = theta.detach().clone().requires_grad_()
    out = affine_sample(input, t, tuple(grad_output.shape[-2:]), align_corners=align_corners)
    return torch.autograd.grad(out, t, grad_output)[0]


def backward_ok(grad_output, input, theta, align_corners=False):
    return (input_gradient_ok(grad_output, theta, input.shape[-2:], align_corners),
            theta_gradient_ok(grad_output, input, theta, align_corners))


@pytest.mark.triton
def test_backward_with_an_independent_scatter_and_a_real_kernel():
    from .lesson07_kernels import input_gradient_launcher

    assert_passes("07.affine_input_gradient", backward_ok, seeds=(0, 1))
    assert_passes("07.affine_input_gradient", input_gradient_launcher(), seeds=(0,))
    assert run_check(get("07.affine_input_gradient"), input_gradient_launcher(), 2, hidden=True).passed


@pytest.mark.triton
def test_input_gradient_without_atomics_loses_additions_even_under_the_interpreter():
    """A plain load-add-store: lanes of one program that share an input pixel overwrite each other's additions (the
    interpreter runs programs one after another, but a vector store with repeated addresses keeps one)."""
    from .lesson07_kernels import input_gradient_launcher

    result = run_check(get("07.affine_input_gradient"), input_gradient_launcher(atomic=False), 0,
                       stop_at_first_failure=False)
    assert not result.passed and all(r.status in ("passed", "failed") for r in result.results)
    assert any("zoomed in" in r.case.description for r in result.results if not r.passed)
    assert "additions were lost" in result.first_failure.message  # the diagnosis: where lanes share an address


def test_backward_cases_meet_the_kinks():
    cases = list(get("07.affine_input_gradient").cases(np.random.default_rng(0)))
    hidden = list(get("07.affine_input_gradient").hidden_cases(np.random.default_rng(0)))
    for group in (cases, hidden):
        assert {c.args[3] for c in group} == {False, True}  # both conventions
        assert any(torch.equal(c.args[2], torch.eye(2, 3, dtype=c.args[2].dtype).expand_as(c.args[2]))
                   for c in group)  # the identity
    assert {c.args[0].dtype for c in cases} == {torch.float32, torch.float64}
    assert any(c.args[1].shape[-1] == 1 for c in hidden)  # a 1-pixel side
    assert any(c.args[0].shape[1] > 1 for c in cases)  # several channels: θ's gradient sums over them


@pytest.mark.triton
def test_backward_bugs_fail_and_theta_s_slips_are_named():
    check_id = "07.affine_input_gradient"
    assert_fails(check_id, lambda g, i, t, a: (2 * input_gradient_ok(g, t, i.shape[-2:], a),
                                               theta_gradient_ok(g, i, t, a)))  # every addition made twice
    assert_fails(check_id, lambda g, i, t, a: (input_gradient_ok(g, t, i.shape[-2:], a).flip(-1),
                                               theta_gradient_ok(g, i, t, a)))  # columns mirrored
    assert_fails(check_id, lambda g, i, t, a: input_gradient_ok(g, t, i.shape[-2:], a))  # θ's gradient missing

    def slipped(change):
        return lambda g, i, t, a: (input_gradient_ok(g, t, i.shape[-2:], a), change(g, i, t, a))

    h_w = lambda i: torch.tensor([[i.shape[-1]], [i.shape[-2]]], dtype=i.dtype)  # noqa: E731
    one_factor = slipped(lambda g, i, t, a: theta_gradient_ok(g, i, t, a) * (h_w(i) / (h_w(i) - 1) if a else 1))
    flipped = slipped(lambda g, i, t, a: -theta_gradient_ok(g, i, t, a))
    halved = slipped(lambda g, i, t, a: theta_gradient_ok(g, i, t, a) / 2)
    last_channel = slipped(lambda g, i, t, a: theta_gradient_ok(
        torch.cat([torch.zeros_like(g[:, :-1]), g[:, -1:]], 1), i, t, a))
    batch_sum = slipped(lambda g, i, t, a: theta_gradient_ok(g, i, t, a).sum(0, keepdim=True).expand_as(t))
    for fn, kind in ((one_factor, "two conventions' unnormalization"), (flipped, "opposite sign"),
                     (halved, "times a constant"), (last_channel, "one channel's part"),
                     (batch_sum, "the batch's sum")):
        result = run_check(get(check_id), fn, 0)
        assert not result.passed and "θ's gradient: " + "" in result.first_failure.message, kind
        assert kind in result.first_failure.message, (kind, result.first_failure.message)


# -- 07.kernel_address ---------------------------------------------------------------------------------------------


def address_ok(index, shape):
    """Independently, as the kernel does it: NumPy int32 arithmetic step by step for each integer chain (NumPy
    wraps int32 arrays), each chain added to an int64 "pointer" at 0 on its own, left to right."""
    n, c, y, x = (np.array([v], dtype=np.int64).astype(np.int32) for v in index)
    _, channels, h, w = (np.array([v], dtype=np.int64).astype(np.int32) for v in shape)
    pointer = np.zeros(1, dtype=np.int64)
    with np.errstate(over="ignore"):
        for term in ((n * channels + c) * h * w, y * w, x):
            pointer = pointer + term.astype(np.int64)  # a 64-bit pointer plus the value the int32 register holds
    return int(pointer[0])


def exact_position(index, shape):
    return ((index[0] * shape[1] + index[1]) * shape[2] + index[2]) * shape[3] + index[3]


def test_int32_address():
    assert_passes("07.kernel_address", address_ok)
    exact = exact_position
    assert_fails("07.kernel_address", exact)  # the address an int64 kernel computes: no overflow
    assert_fails("07.kernel_address", lambda i, s: (exact(i, s) + 2**31) % 2**32 - 2**31)  # wrapped once at the end
    assert_fails("07.kernel_address", lambda i, s: exact(i, s) % 2**32)  # unsigned
    assert_fails("07.kernel_address", lambda i, s: min(exact(i, s), 2**31 - 1))  # saturating
    assert_fails("07.kernel_address", lambda i, s: float(address_ok(i, s)))  # a float is not an address


def test_int32_address_cases_reach_past_two_to_the_31_without_a_tensor():
    check = get("07.kernel_address")
    for cases in (check.cases(np.random.default_rng(0)), check.hidden_cases(np.random.default_rng(0))):
        cases = list(cases)
        shapes = {c.args[1] for c in cases}
        assert any(np.prod(s, dtype=object) > 2**31 for s in shapes)
        assert any(np.prod(s, dtype=object) < 2**31 for s in shapes)  # a case that fits, too
        once = [c for c in cases if check.reference(*c.args) != (exact_position(*c.args) + 2**31) % 2**32 - 2**31]
        assert once  # a case where wrapping the position once at the end is wrong
    # image 8 of a 16 × 64 × 2048² batch starts exactly at 2³¹: the first address that wraps to −2³¹
    assert check.reference((8, 0, 0, 0), (16, 64, 2048, 2048)) == -2**31
    assert check.reference((7, 63, 2047, 2047), (16, 64, 2048, 2048)) == 2**31 - 1
    # two 40000² planes: every term fits in int32, the 64-bit pointer adds them – the load is right
    assert check.reference((1, 0, 39999, 39999), (2, 1, 40000, 40000)) == 2 * 40000**2 - 1


# -- 07.wave_efficiency (tuning: the waves of a launch) ------------------------------------------------------------


def waves_ok(n, h_out, w_out, block, sms, per_sm):
    """Independently, by simulation: deal every image's programs out to the slots wave by wave, and count the lanes
    of every slot of every wave that compute a pixel."""
    per_image = [min(block, h_out * w_out - start) for start in range(0, h_out * w_out, block)]  # live lanes
    programs = per_image * n
    useful, paid = 0, 0
    for wave in range(0, len(programs), sms * per_sm):
        useful += sum(programs[wave:wave + sms * per_sm])
        paid += sms * per_sm * block
    return useful / paid


def test_wave_efficiency():
    assert_passes("07.wave_efficiency", waves_ok)
    slots = lambda s, p: s * p  # noqa: E731
    programs = lambda n, h, w, b: n * math.ceil(h * w / b)  # noqa: E731
    waves = lambda n, h, w, b, s, p: math.ceil(programs(n, h, w, b) / slots(s, p))  # noqa: E731
    assert_fails("07.wave_efficiency", lambda n, h, w, b, s, p:  # the last wave's fill alone
                 (programs(n, h, w, b) % slots(s, p) or slots(s, p)) / slots(s, p))
    assert_fails("07.wave_efficiency", lambda n, h, w, b, s, p:  # programs, not lanes: the masked lanes forgotten
                 programs(n, h, w, b) / (waves(n, h, w, b, s, p) * slots(s, p)))
    assert_fails("07.wave_efficiency", lambda n, h, w, b, s, p:  # the batch tiled as one image
                 n * h * w / (math.ceil(math.ceil(n * h * w / b) / slots(s, p)) * slots(s, p) * b))
    assert_fails("07.wave_efficiency", lambda n, h, w, b, s, p: 0.7424242424242424)  # the lesson's case, copied
    assert_fails("07.wave_efficiency", lambda n, h, w, b, s, p:  # the waves rounded down
                 n * h * w / (max(1, programs(n, h, w, b) // slots(s, p)) * slots(s, p) * b))


def test_wave_efficiency_cases_meet_the_kinks_and_the_message_hides_the_answer():
    check = get("07.wave_efficiency")
    hidden = [check.reference(*c.args) for c in check.hidden_cases(np.random.default_rng(0))]
    assert 1.0 in hidden and min(hidden) < 0.05  # every wave full; a single, nearly empty wave
    assert {c.args[4] for c in check.hidden_cases(np.random.default_rng(0))} >= {40, 108}  # T4, A100
    text = format_result(run_check(check, lambda *a: 0.5, 0))
    assert "too" in text and "0.742" not in text


# -- 07.fusion_bound (the learner's bytes model; at the roofline the bandwidth cancels) -------------------------


def bound_ok(input_shape, out_size):
    """Independently, per output pixel in elements, with :func:`bytes_ok`'s tensor-by-tensor count at 8-byte
    elements and a bandwidth that cancels."""
    bandwidth = 2.5e12
    aten = (bytes_ok(input_shape, out_size, 8) + bytes_ok(input_shape, out_size, 8, backward=True)) / bandwidth
    fused = (bytes_ok(input_shape, out_size, 8, True) + bytes_ok(input_shape, out_size, 8, True, True)) / bandwidth
    return aten / fused


def test_fusion_bound():
    assert_passes("07.fusion_bound", bound_ok)
    assert_passes("07.fusion_bound", lambda s, o: (6 * s[1] + 10) / (6 * s[1]) if tuple(s[2:]) == tuple(o)
                  else bound_ok(s, o))  # the formula of the fold, where the output is the input's size
    assert_fails("07.fusion_bound", lambda s, o: bytes_ok(s, o) / bytes_ok(s, o, fused=True))  # the forward alone
    assert_fails("07.fusion_bound", lambda s, o: 1.0260416666666667)  # the goal's shape, copied
    assert_fails("07.fusion_bound", lambda s, o: (bytes_ok(s, o) + bytes_ok(s, o, backward=True, grid_back=False))
                 / (bytes_ok(s, o, fused=True) + bytes_ok(s, o, fused=True, backward=True)))  # a crossing missed
    assert_fails("07.fusion_bound", lambda s, o: (bytes_ok(s, o) + bytes_ok(s, o, backward=True, zero_fill=False))
                 / (bytes_ok(s, o, fused=True) + bytes_ok(s, o, fused=True, backward=True, zero_fill=False)))
    input_bytes = lambda s: s[0] * s[1] * s[2] * s[3] * 4  # noqa: E731 – the backward reads the input (eq. 7)
    assert_fails("07.fusion_bound", lambda s, o: (bytes_ok(s, o) + bytes_ok(s, o, backward=True) - input_bytes(s))
                 / (bytes_ok(s, o, fused=True) + bytes_ok(s, o, fused=True, backward=True) - input_bytes(s)))
    assert_fails("07.fusion_bound", lambda s, o: (6 * s[1] + 10) / (6 * s[1]))  # the fold's formula, any output
    output_bytes = lambda s, o: s[0] * s[1] * o[0] * o[1] * 4  # noqa: E731 – eq. 7 read on the output's side
    output_for_input = lambda s, o: ((bytes_ok(s, o) + bytes_ok(s, o, backward=True) - input_bytes(s)  # noqa: E731
                                      + output_bytes(s, o)) / (bytes_ok(s, o, fused=True) - input_bytes(s)
                                      + bytes_ok(s, o, fused=True, backward=True) + output_bytes(s, o)))
    assert_fails("07.fusion_bound", output_for_input)
    check = get("07.fusion_bound")  # a hidden case with the output's size not the input's tells the two apart
    assert any(abs(output_for_input(*c.args) - bound_ok(*c.args)) > 1e-3 and c.args[0][2:] != c.args[1]
               for c in check.hidden_cases(np.random.default_rng(0)))
    text = format_result(run_check(get("07.fusion_bound"), lambda s, o: 1.5, 0))
    assert "too" in text and "2.666" not in text and "1.026" not in text


# -- the checks' diagnoses: each names the kind of slip, from the case's own arguments --------------------------


def test_program_reads_diagnoses_the_colleague_s_bugs_and_the_convention():
    def message(fn):
        result = run_check(get("07.program_reads"), fn, 0)
        assert not result.passed
        return result.first_failure.message

    def with_tile(**fixes):
        return lambda t, p, b, i, o, a=False: reads_ok(t, p, b, i, o, a,
                                                       tiles=lambda *args: colleague_pixels(*args, **fixes))

    assert "right on square outputs only" in message(with_tile(fix_mask=True))
    assert "lets a lane with no output pixel through" in message(with_tile(fix_rows=True))
    assert "sampling points of align_corners=True" in message(lambda t, p, b, i, o, a=False: reads_ok(t, p, b, i, o,
                                                                                                      not a))


@pytest.mark.triton
def test_fused_affine_sample_diagnoses_the_border_and_float32():
    from stn_course.checks.lesson07 import _corner_addresses

    def one_mask_for_the_point(input, theta, out_size):  # "all four neighbours inside, or nothing": 0 at the border
        out = fused_ok(input, theta, out_size)
        for n in range(len(theta)):
            address = _corner_addresses(theta[n], input.shape[-2:], out_size, 1)[0]
            out[n, :, ((address < 0).any(1) & (address >= 0).any(1)).reshape(out_size)] = 0
        return out

    def through_float32(input, theta, out_size):
        return fused_ok(input.float(), theta.float(), out_size).to(input.dtype)

    for fn, kind in ((one_mask_for_the_point, "partly outside the image"), (through_float32, "float32's precision")):
        result = run_check(get("07.fused_affine_sample"), fn, 0)
        assert not result.passed and kind in result.first_failure.message


@pytest.mark.triton
def test_input_gradient_diagnoses_lost_additions_only_where_lanes_share_an_address():
    result = run_check(get("07.affine_input_gradient"), lambda g, i, t, a: (
        2 * input_gradient_ok(g, t, i.shape[-2:], a), theta_gradient_ok(g, i, t, a)), 0)
    assert not result.passed and "additions were lost" not in result.first_failure.message
