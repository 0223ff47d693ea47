"""Mutation tests for the lesson-7 checks: correct solutions written independently pass on every seed, the popular
bugs fail; the kernel check runs a real Triton kernel (through the interpreter without a GPU)."""
from __future__ import annotations

import pytest
import torch

from stn_course import gpu
from stn_course.checks import run_check
from stn_course.gpu.affine import affine_sample

from .check_helpers import assert_fails, assert_passes, get

# -- 07.sampler_bytes ---------------------------------------------------------------------------------------------


def bytes_ok(input_shape, out_size, element_size=4, fused=False):
    n, c, h, w = input_shape
    pixels = n * out_size[0] * out_size[1]
    tensors = [n * c * h * w, c * pixels] + ([] if fused else [2 * pixels, 2 * pixels])  # grid written, then read
    return sum(tensors) * element_size


def test_sampler_bytes():
    assert_passes("07.sampler_bytes", bytes_ok)
    assert_fails("07.sampler_bytes", lambda s, o, e=4, fused=False: bytes_ok(s, o, e, fused)
                 - (0 if fused else 2 * s[0] * o[0] * o[1] * e))  # the grid counted once
    assert_fails("07.sampler_bytes", lambda s, o, e=4, fused=False: bytes_ok(s, o, 4, fused))  # element_size ignored
    assert_fails("07.sampler_bytes", lambda s, o, e=4, fused=False: bytes_ok(s, o, e, not fused))  # flag inverted


# -- 07.program_pixels --------------------------------------------------------------------------------------------


def tiles_ok(pid, block, h_out, w_out):
    lanes = torch.arange(pid * block, (pid + 1) * block)
    return torch.div(lanes, w_out, rounding_mode="floor"), torch.remainder(lanes, w_out), lanes < h_out * w_out


def test_program_pixels():
    assert_passes("07.program_pixels", tiles_ok)
    assert_fails("07.program_pixels", lambda p, b, h, w: (tiles_ok(p, b, h, w)[1], tiles_ok(p, b, h, w)[0],
                                                          tiles_ok(p, b, h, w)[2]))  # (col, row)
    assert_fails("07.program_pixels", lambda p, b, h, w: tiles_ok(p * b // b, b, h, w)[:2]
                 + (torch.arange(p * b, (p + 1) * b) < h * w - 1,))  # the last pixel masked off
    assert_fails("07.program_pixels", lambda p, b, h, w: tuple(t.to(torch.int32) if t.dtype == torch.int64 else t
                                                               for t in tiles_ok(p, b, h, w)))  # int32


# -- 07.source_pixels ---------------------------------------------------------------------------------------------


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


def test_source_pixels():
    assert_passes("07.source_pixels", source_ok)
    assert_fails("07.source_pixels", lambda *a: source_ok(*a[:5], corners=not (a[5] if len(a) > 5 else False)))
    assert_fails("07.source_pixels", lambda t, r, c, i, o, a=False: source_ok(t, c, r, i, o, a))  # rows for x
    assert_fails("07.source_pixels", lambda t, r, c, i, o, a=False: source_ok(t[:, [1, 0, 2]], r, c, i, o, a))


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
