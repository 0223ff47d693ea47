"""The GPU path's Triton kernels (stn_course.gpu) against the package's references and torch's kernels: forward and
backward of the fused affine sampler and of deformable im2col, every padding mode, both conventions, borders,
points far outside, non-square sizes, the deterministic option. On a machine without a GPU they run on CPU tensors
through Triton's interpreter (TRITON_INTERPRET=1, set in tests/conftest.py), at small shapes; on a GPU, on CUDA."""
from __future__ import annotations

import zlib

import pytest
import torch
import torch.nn.functional as F

from stn_course import gpu
from stn_course.deform import deform_conv2d
from stn_course.gpu import affine as gpu_affine
from stn_course.gpu import deform as gpu_deform
from stn_course.gpu.affine import affine_sample

pytestmark = pytest.mark.triton  # every test here runs a kernel: skipped, "needs triton", without it (conftest.py)

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}


def test_the_kernels_can_run_here():
    """triton is installed (the gpu extra) and runs: on CUDA, or on the CPU through the interpreter."""
    assert gpu.triton_available(), gpu.INSTALL_HINT
    assert gpu.can_run(torch.zeros(1, device=DEVICE))
    if DEVICE.type == "cpu":
        assert gpu.interpreter()


def _torch_affine(x, theta, size, padding_mode, align_corners):
    grid = F.affine_grid(theta, size, align_corners=align_corners)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


def _close(a, b, dtype, scale=1.0):
    torch.testing.assert_close(a, b, rtol=TOL[dtype], atol=TOL[dtype] * scale)


CASES = [  # (N, C, H, W, H_out, W_out, theta spread)
    (2, 3, 5, 7, 4, 6, 0.5),
    (1, 1, 1, 9, 3, 5, 0.6),
    (3, 2, 8, 3, 1, 1, 0.4),
    (1, 2, 6, 6, 7, 5, 2.5),  # points far outside the image
]


@pytest.fixture(params=[None, 16], ids=["block=default", "block=16"])
def block(request, monkeypatch):
    """The kernels' block size: the default (one program covers these small images whole under the interpreter)
    and 16, so that several programs share an image – the partial sums of θ's gradient, the atomics across programs."""
    monkeypatch.setattr(gpu_affine, "BLOCK", request.param)
    monkeypatch.setattr(gpu_deform, "BLOCK", request.param)
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:6])))
def test_fused_affine_sampling_forward_and_backward(dtype, padding_mode, align_corners, case, block):
    n, c, h, w, h_out, w_out, spread = case
    g = torch.Generator().manual_seed(zlib.crc32(repr((h, w, padding_mode, align_corners)).encode()))
    x = torch.randn(n, c, h, w, generator=g, dtype=dtype).to(DEVICE).requires_grad_()
    theta = (torch.eye(2, 3, dtype=dtype) + spread * torch.randn(n, 2, 3, generator=g, dtype=dtype)).to(DEVICE)
    theta.requires_grad_()
    size = (n, c, h_out, w_out)
    out = affine_sample(x, theta, size, padding_mode, align_corners)
    ref = _torch_affine(x, theta, size, padding_mode, align_corners)
    assert out.dtype == dtype and out.device == DEVICE and out.shape == ref.shape
    _close(out, ref, dtype)
    grad = torch.randn(out.shape, generator=g, dtype=dtype).to(DEVICE)
    gx, gt = torch.autograd.grad(out, (x, theta), grad)
    rx, rt = torch.autograd.grad(ref, (x, theta), grad)
    _close(gx, rx, dtype)
    _close(gt, rt, dtype, scale=h_out * w_out * c)  # θ's gradient sums over every output pixel


@pytest.mark.parametrize("align_corners", [False, True])
def test_points_exactly_on_the_border_pixel_centres(align_corners):
    """The identity reads every pixel centre exactly, the first and last rows and columns included."""
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64, device=DEVICE)
    eye = torch.eye(2, 3, dtype=torch.float64, device=DEVICE).expand(2, 2, 3)
    torch.testing.assert_close(affine_sample(x, eye, None, "zeros", align_corners), x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("special", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("entry", [0, 2, 4])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_nan_and_infinity_behave_as_in_torch(special, entry, padding_mode, align_corners):
    """A NaN or infinite entry of θ gives what F.grid_sample gives: NaN with zeros padding, the clamped pixel
    (NaN -> pixel 0) with border and reflection – never garbage read from outside the image."""
    g = torch.Generator().manual_seed(entry)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, generator=g).to(DEVICE)
    theta = torch.tensor([[[0.9, 0.1, 0.05], [-0.1, 0.8, 0.1]]], dtype=torch.float64, device=DEVICE)
    theta.view(-1)[entry] = special
    size = (1, 2, 3, 4)
    expected = F.grid_sample(x, F.affine_grid(theta, size, align_corners=align_corners),
                             padding_mode=padding_mode, align_corners=align_corners)
    got = affine_sample(x, theta, size, padding_mode, align_corners)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12, equal_nan=True)


def test_the_deterministic_input_gradient_is_bit_identical_across_runs_and_right(block):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 6, 9, generator=g).to(DEVICE).requires_grad_()
    theta = (0.4 * torch.eye(2, 3) + 0.3 * torch.randn(2, 2, 3, generator=g)).to(DEVICE)  # zoom in: many collide
    grad = torch.randn(2, 3, 11, 10, generator=g).to(DEVICE)
    runs = []
    for _ in range(3):
        out = affine_sample(x, theta, (2, 3, 11, 10), "reflection", False, deterministic=True)
        (gx,) = torch.autograd.grad(out, x, grad)
        runs.append(gx)
    assert all(torch.equal(runs[0], r) for r in runs[1:])
    atomic = torch.autograd.grad(affine_sample(x, theta, (2, 3, 11, 10), "reflection"), x, grad)[0]
    torch.testing.assert_close(runs[0], atomic, rtol=1e-5, atol=1e-5)


DEFORM_CASES = [  # (N, C_in, C_out, H, W, offset_groups, groups, mask, kernel, stride, padding, dilation)
    (2, 4, 6, 7, 6, 2, 2, True, (3, 3), (1, 1), (1, 1), (1, 1)),
    (1, 3, 2, 8, 5, 1, 1, False, (2, 3), (2, 1), (1, 0), (1, 2)),
    (3, 2, 3, 1, 9, 2, 1, True, (1, 3), (1, 1), (0, 1), (1, 1)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", DEFORM_CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_triton_deformable_convolution_forward_and_backward(dtype, case, block):
    n, c_in, c_out, h, w, og, groups, masked, kernel, stride, padding, dilation = case
    g = torch.Generator().manual_seed(c_in * 100 + h)
    k = kernel[0] * kernel[1]
    h_out = (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1

    def make(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=dtype)).to(DEVICE).requires_grad_()

    x, weight, bias = make(n, c_in, h, w), make(c_out, c_in // groups, *kernel), make(c_out)
    offset = make(n, 2 * og * k, h_out, w_out, scale=2.5)  # reaches outside the image
    mask = torch.rand(n, og * k, h_out, w_out, generator=g, dtype=dtype).to(DEVICE).requires_grad_() if masked else None
    tensors = [t for t in (x, offset, weight, bias, mask) if t is not None]
    out = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask, impl="triton")
    ref = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask, impl="reference")
    _close(out, ref, dtype, scale=10)
    grad = torch.randn(out.shape, generator=g, dtype=dtype).to(DEVICE)
    for got, want in zip(torch.autograd.grad(out, tensors, grad), torch.autograd.grad(ref, tensors, grad)):
        _close(got, want, dtype, scale=100)


@pytest.mark.parametrize("special", [float("nan"), float("inf"), -float("inf")])
def test_deformable_nan_and_infinite_offsets_propagate_like_the_reference(special):
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, device=DEVICE)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64, device=DEVICE)
    offset = torch.zeros(1, 18, 5, 5, dtype=torch.float64, device=DEVICE)
    offset[0, 4, 2, 2] = special
    out = deform_conv2d(x, offset, weight, padding=1, impl="triton")
    ref = deform_conv2d(x, offset, weight, padding=1, impl="reference")
    assert torch.equal(torch.isnan(out), torch.isnan(ref))
    assert torch.isnan(out).any() or special == special  # a NaN offset reaches the output
    torch.testing.assert_close(out.nan_to_num(), ref.nan_to_num())
