"""Half precision on the GPU path (issue 24, item 3): float16 inputs through the Triton kernels – under Triton's
interpreter here, which has no bfloat16 (bfloat16 is compiled for real GPUs in tests/test_kernels_compile.py) –
against torch in float32 on the same half-precision numbers, and against ``F.grid_sample`` in float16 (what
autocast runs for half inputs); autocast's promotion; ``impl="auto"`` choosing the kernels for half tensors on CUDA;
and every launch checked against its declaration (stn_course.gpu.launches).

The tolerances are the ones the module docstrings state: the kernels compute in float32 and round once to float16,
so an output or input gradient is within float16's rounding (relative 2⁻¹¹ ≈ 4.9e-4 of its largest entry; 1e-3
allowed) of the float32 result, and θ's gradient – summed in float32, returned in θ's float32 – within float32's."""
from __future__ import annotations

import types
import zlib

import pytest
import torch
import torch.nn.functional as F

from stn_course import gpu
from stn_course.deform import deform_conv2d
from stn_course.gpu import affine as gpu_affine
from stn_course.gpu import deform as gpu_deform
from stn_course.gpu.affine import affine_sample
from stn_course.gpu.launches import DTYPES, KernelSpec, check_dtype, compute_dtype
from stn_course.impls import DEFORM_CONV2D, SPATIAL_TRANSFORMER

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HALF_ROUNDING = 1e-3  # relative to the largest entry: float16's 2**-11, and some


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want|, in float64."""
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


def _torch_affine(x, theta, size, padding_mode, align_corners):
    grid = F.affine_grid(theta, size, align_corners=align_corners)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


@pytest.mark.triton
@pytest.mark.parametrize("padding_mode, align_corners, deterministic", [
    ("zeros", False, False), ("border", True, False), ("reflection", False, False), ("reflection", True, True)])
def test_float16_affine_sampling_is_float32_on_the_same_numbers_rounded_once(padding_mode, align_corners,
                                                                              deterministic):
    g = torch.Generator().manual_seed(zlib.crc32(f"{padding_mode}{align_corners}".encode()))
    x = torch.randn(2, 3, 9, 8, generator=g).half().to(DEVICE)
    theta = (torch.eye(2, 3) + 0.4 * torch.randn(2, 2, 3, generator=g)).to(DEVICE)  # float32, as a head makes it
    size = (2, 3, 7, 6)
    x16, t16 = x.clone().requires_grad_(), theta.clone().requires_grad_()
    out = affine_sample(x16, t16, size, padding_mode, align_corners, deterministic)
    x32, t32 = x.float().requires_grad_(), theta.clone().requires_grad_()
    ref = _torch_affine(x32, t32, size, padding_mode, align_corners)
    assert out.dtype == torch.float16
    assert _relative(out, ref) < HALF_ROUNDING
    grad = torch.randn(out.shape, generator=g).half().to(DEVICE)
    gx, gt = torch.autograd.grad(out, (x16, t16), grad)
    rx, rt = torch.autograd.grad(ref, (x32, t32), grad.float())
    assert gx.dtype == torch.float16 and gt.dtype == torch.float32
    assert _relative(gx, rx) < HALF_ROUNDING
    assert _relative(gt, rt) < 1e-5  # float32 sums of the same products
    # F.grid_sample in float16 (autocast's path for half inputs) rounds the grid to float16 as well: it lies
    # further from the float32 result than the kernel does (a coordinate off by 2**-11 of the image's size)
    aten16 = _torch_affine(x, theta.half(), size, padding_mode, align_corners)
    assert _relative(out, aten16) < 2e-2
    assert _relative(out, ref) < _relative(aten16, ref)


@pytest.mark.triton
def test_float16_deformable_convolution_matches_float32_within_half_rounding():
    """Sampling in float32, columns and GEMMs in float16 (as autocast runs them), gradients summed in float32.
    The offsets are kept off whole pixels: there bilinear sampling has a kink, and which one-sided derivative
    is the offset's gradient depends on the last bit."""
    g = torch.Generator().manual_seed(4)
    x, w = torch.randn(2, 3, 6, 5, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    offset, mask = torch.randn(2, 18, 6, 5, generator=g) + 0.01, torch.rand(2, 9, 6, 5, generator=g)
    tensors = [t.half().to(DEVICE) for t in (x, offset, w, mask)]
    half = [t.clone().requires_grad_() for t in tensors]
    wide = [t.float().requires_grad_() for t in tensors]
    out = deform_conv2d(half[0], half[1], half[2], padding=1, mask=half[3], impl="triton")
    ref = deform_conv2d(wide[0], wide[1], wide[2], padding=1, mask=wide[3], impl="fast")
    assert out.dtype == torch.float16 and _relative(out, ref) < HALF_ROUNDING
    grad = torch.randn(out.shape, generator=g).half().to(DEVICE)
    got = torch.autograd.grad(out, half, grad)
    want = torch.autograd.grad(ref, wide, grad.float())
    for name, a, b in zip(("input", "offset", "weight", "mask"), got, want):
        assert a.dtype == torch.float16, name
        assert _relative(a, b) < 2 * HALF_ROUNDING, name  # float16 GEMMs, then the float32 scatter


@pytest.mark.triton
def test_under_autocast_mixed_dtypes_promote_as_grid_sample_does():
    """Autocast promotes ``F.grid_sample``'s arguments to the wider dtype: a float16 input and a float32 θ give a
    float32 output – the kernels' too (outside autocast the output keeps the input's dtype)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 6, 5, generator=g).half().to(DEVICE)
    theta = (torch.eye(2, 3) + 0.3 * torch.randn(1, 2, 3, generator=g)).to(DEVICE)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16 if DEVICE.type == "cpu" else torch.float16):
        out = affine_sample(x, theta, (1, 2, 4, 4))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, affine_sample(x.float(), theta, (1, 2, 4, 4)), rtol=0, atol=0)
    assert affine_sample(x, theta, (1, 2, 4, 4)).dtype == torch.float16


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_auto_picks_the_kernels_for_every_dtype_they_take_on_cuda(dtype, monkeypatch):
    """The rule of ``impl="auto"`` on a CUDA tensor, faked: a stand-in with ``is_cuda`` and the dtype (no GPU here),
    Triton reported runnable. Half precision – what autocast hands a layer – goes to the kernels."""
    monkeypatch.setattr(gpu, "can_run", lambda *tensors: True)
    cuda_tensor = types.SimpleNamespace(is_cuda=True, dtype=dtype)
    assert gpu.auto_uses_triton(cuda_tensor)
    assert SPATIAL_TRANSFORMER.resolve("auto", cuda_tensor) == "triton"
    assert DEFORM_CONV2D.resolve("auto", cuda_tensor) == "triton"
    cpu_tensor = types.SimpleNamespace(is_cuda=False, dtype=dtype)
    assert SPATIAL_TRANSFORMER.resolve("auto", cpu_tensor) == "aten"


def test_a_dtype_the_kernels_do_not_take_is_refused_naming_those_they_do():
    with pytest.raises(TypeError, match=r"offset: the Triton kernels take float64, float32, float16, bfloat16, "
                                        r"got torch.int32"):
        check_dtype(torch.zeros(1, dtype=torch.int32), "offset")
    assert gpu.auto_uses_triton(torch.zeros(1, dtype=torch.int32)) is False
    assert [compute_dtype(d) for d in DTYPES] == [torch.float64, torch.float32, torch.float32, torch.float32]


@pytest.mark.triton
def test_a_launch_that_strays_from_its_declaration_is_an_error():
    """Every launch is checked against KERNELS and launch_constants – what the compile test compiles – before it
    runs: a tensor of another dtype than declared, or constants never declared, stop it."""
    x = torch.zeros(1, 1, 2, 2, device=DEVICE)
    theta, axis = torch.zeros(1, 6, device=DEVICE), torch.zeros(2, device=DEVICE)
    constants = {**gpu_affine.kernel_constants("zeros", DEVICE), "ALIGN": False,
                 "BLOCK": gpu.block_size(DEVICE, gpu_affine.BLOCK)}
    with pytest.raises(AssertionError, match=r"forward: argument theta is torch.float64, declared torch.float32"):
        gpu_affine._launch("forward", (1, 1), torch.float16, x.half(), theta.double(), axis, axis, x.half(),
                           1, 2, 2, 2, 2, **constants)
    with pytest.raises(AssertionError, match="constants .* are not among the declared launches"):
        gpu_affine._launch("forward", (1, 1), torch.float32, x, theta, axis, axis, x, 1, 2, 2, 2, 2,
                           **{**constants, "BLOCK": 8})
    gpu_affine._launch("forward", (1, 1), torch.float32, x, theta, axis, axis, x, 1, 2, 2, 2, 2, **constants)


@pytest.mark.triton
def test_every_kernel_the_modules_define_is_declared():
    """The Triton functions of the kernel modules that no other one calls – the kernels a launch starts – are
    exactly the declared ones: a new kernel cannot be launched unchecked, nor escape the compile test."""
    import inspect
    import re

    for module in (gpu_affine, gpu_deform):
        kernels = module.kernels()
        functions = {name: inspect.getsource(value.fn) for name, value in vars(kernels).items()
                     if hasattr(value, "fn") and getattr(value.fn, "__module__", "") == kernels.__name__}
        called = {name for name in functions for other, code in functions.items()
                  if other != name and re.search(rf"\b{name}\(", code)}
        assert set(functions) - called == set(module.KERNELS), module.__name__
        for name, spec in module.KERNELS.items():
            assert isinstance(spec, KernelSpec) and set(spec.pointers) <= set(inspect.signature(
                getattr(kernels, name).fn).parameters)
