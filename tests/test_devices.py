"""Device and dtype across the public API (Kornia's pattern): every function returns on the input's device and in
its dtype, on the CPU and – on a machine with a GPU – on CUDA (the ``device`` fixture of tests/conftest.py), and the
values on that device equal the CPU's. Tensors on two devices get an error that names both."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from stn_course import affine, autograd, deform, grids, sampling, stn

DTYPES = [torch.float32, torch.float64]


def _cases(device, dtype):
    g = torch.Generator().manual_seed(0)

    def r(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(device=device, dtype=dtype)

    x, theta = r(2, 3, 6, 5), torch.eye(2, 3, dtype=torch.float64).to(device, dtype) + r(2, 2, 3, scale=0.2)
    grid = r(2, 4, 7, 2, scale=0.7)
    weight, offset, mask = r(4, 3, 3, 3), r(2, 18, 6, 5), r(2, 9, 6, 5).sigmoid()
    return {
        "affine.rotation": lambda: affine.rotation(torch.tensor([0.3, 1.0], device=device, dtype=dtype)),
        "affine.compose": lambda: affine.compose(affine.to_homogeneous(theta), affine.to_homogeneous(theta)),
        "affine.invert": lambda: affine.invert(theta),
        "affine.apply": lambda: affine.apply(theta, r(2, 5, 2)),
        "affine.pixel_to_theta": lambda: affine.pixel_to_theta(affine.to_homogeneous(theta), (6, 5), (4, 7)),
        "grids.affine_grid": lambda: grids.affine_grid(theta, (2, 3, 4, 7)),
        "grids.projective_grid": lambda: grids.projective_grid(affine.to_homogeneous(theta), (2, 3, 4, 7)),
        "grids.tps_grid": lambda: grids.tps_grid(grids.tps_control_points(3, 3, dtype=dtype, device=device)
                                                 .expand(2, 9, 2) + r(2, 9, 2, scale=0.1), (2, 3, 4, 7)),
        "sampling.bilinear_sample": lambda: sampling.bilinear_sample(x, grid, "reflection"),
        "sampling.grid_sample nearest": lambda: sampling.grid_sample(x, grid, "nearest", "border"),
        "autograd.bilinear_sample_analytic": lambda: autograd.bilinear_sample_analytic(x, grid, "border"),
        "autograd.affine_grid_analytic": lambda: autograd.affine_grid_analytic(theta, (2, 3, 4, 7)),
        "deform.deform_conv2d fast": lambda: deform.deform_conv2d(x, offset, weight, padding=1, mask=mask),
        "deform.deform_conv2d reference": lambda: deform.deform_conv2d(x, offset, weight, padding=1,
                                                                        impl="reference"),
        "deform.offsets_from_affine": lambda: deform.offsets_from_affine(affine.to_homogeneous(theta), 6, 5, 3,
                                                                                padding=1),
    }


CASE_NAMES = list(_cases("cpu", torch.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_outputs_keep_the_device_and_dtype_and_match_the_cpu(name, dtype, device):
    out = _cases(device, dtype)[name]()
    assert out.device.type == device.type, f"{name} returned on {out.device}, input on {device}"
    assert out.dtype == dtype, f"{name} returned {out.dtype} for {dtype} input"
    on_cpu = _cases("cpu", dtype)[name]()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.cpu(), on_cpu, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["reference", "fast", "aten"])
def test_the_spatial_transformer_keeps_device_and_dtype(impl, dtype, device):
    loc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 5, 8), nn.Tanh())
    st = stn.SpatialTransformer(loc, loc_features=8, out_size=(4, 4), impl=impl).to(device=device, dtype=dtype)
    out, matrix, grid = st(torch.randn(2, 3, 6, 5, device=device, dtype=dtype), return_params=True)
    for t in (out, matrix, grid):
        assert t.device.type == device.type and t.dtype == dtype


@pytest.mark.parametrize("call, names", [
    (lambda: affine.compose(torch.eye(3), torch.eye(3, device="meta")), r"matrices\[0\] on cpu, matrices\[1\] on meta"),
    (lambda: affine.apply(torch.eye(3), torch.zeros(4, 2, device="meta")), "matrix on cpu, points on meta"),
    (lambda: sampling.bilinear_sample(torch.zeros(1, 1, 3, 3), torch.zeros(1, 2, 2, 2, device="meta")),
     "input and grid must be on the same device, got cpu and meta"),
    (lambda: deform.deform_conv2d(torch.zeros(1, 2, 4, 4), torch.zeros(1, 18, 4, 4, device="meta"),
                                  torch.zeros(3, 2, 3, 3), padding=1), "input and offset .* cpu and meta"),
    (lambda: stn.SpatialTransformer(nn.Flatten(), loc_features=9)(torch.zeros(1, 1, 3, 3, device="meta")),
     "x is on meta but the transformer's parameters are on cpu"),
])
def test_tensors_on_two_devices_get_an_error_naming_both(call, names):
    with pytest.raises(ValueError, match=names):
        call()


DATA_DEPENDENT = {"affine.invert", "affine.pixel_to_theta"}  # they read values (.item()): no meta run possible


@pytest.mark.parametrize("name", [n for n in CASE_NAMES if n not in DATA_DEPENDENT])
def test_no_hidden_cpu_constants_on_the_meta_device(name):
    """On a machine without a GPU, the meta device stands in for CUDA: a constant made on the CPU inside a function
    (a torch.tensor(...) without device=) mixed with meta inputs raises, as it would with CUDA inputs."""
    out = _cases("meta", torch.float32)[name]()
    assert out.device.type == "meta"


@pytest.mark.parametrize("transform", stn.TRANSFORMS)
@pytest.mark.parametrize("impl", ["reference", "fast", "aten"])
def test_the_spatial_transformer_has_no_hidden_cpu_constants(impl, transform):
    loc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 5, 8), nn.Tanh())
    st = stn.SpatialTransformer(loc, transform=transform, loc_features=8, out_size=(4, 4), impl=impl).to("meta")
    out, matrix, grid = st(torch.randn(2, 3, 6, 5, device="meta"), return_params=True)
    assert {out.device.type, matrix.device.type, grid.device.type} == {"meta"}


def test_affine_constructors_follow_their_tensor_arguments():
    assert affine.rotation(torch.tensor([0.3, 1.0], device="meta")).device.type == "meta"
    with pytest.raises(ValueError, match=r"one device, got \['cpu', 'meta'\]"):
        affine.translation(torch.tensor([1.0]), torch.tensor([2.0], device="meta"))
