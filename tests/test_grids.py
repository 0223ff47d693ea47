"""stn_course.grids.affine_grid against F.affine_grid; NumPy twin; bad input."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course.grids import affine_grid, affine_grid_np, base_grid, linspace_from_neg_one

SIZES = [(1, 1, 1, 1), (1, 3, 1, 7), (2, 1, 5, 1), (3, 2, 4, 9), (2, 1, 64, 64), (1, 1, 33, 17)]


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid behavior:UserWarning")
@pytest.mark.parametrize("size,align_corners", list(itertools.product(SIZES, (False, True))))
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)], ids=["f32", "f64"])
def test_affine_grid_matches_torch(size, align_corners, dtype, tol):
    g = torch.Generator().manual_seed(sum(size) + align_corners)
    theta = torch.randn(size[0], 2, 3, generator=g, dtype=dtype) * 2
    expected = F.affine_grid(theta, size, align_corners=align_corners)
    actual = affine_grid(theta, size, align_corners)
    assert actual.shape == (size[0], size[2], size[3], 2) and actual.dtype == dtype
    torch.testing.assert_close(actual, expected, rtol=0, atol=tol)


def test_affine_grid_float64_large():
    theta = torch.randn(2, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    size = (2, 1, 300, 451)
    for ac in (False, True):
        torch.testing.assert_close(affine_grid(theta, size, ac), F.affine_grid(theta, size, align_corners=ac),
                                   rtol=0, atol=1e-10)


@pytest.mark.parametrize("align_corners", [False, True])
def test_identity_grid_holds_pixel_centres(align_corners):
    grid = affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], (1, 1, 3, 4), align_corners)[0]
    xs = torch.tensor([-1, -1 / 3, 1 / 3, 1], dtype=torch.float64)
    if not align_corners:
        xs = torch.tensor([-0.75, -0.25, 0.25, 0.75], dtype=torch.float64)
    torch.testing.assert_close(grid[0, :, 0], xs)
    torch.testing.assert_close(grid[:, 0, 1], linspace_from_neg_one(3, align_corners, torch.float64))


def test_base_grid_layout_is_x_then_y_then_one():
    grid = base_grid(2, 3, align_corners=True)
    torch.testing.assert_close(grid[..., 2], torch.ones(2, 3))
    assert grid[0, 2, 0] == 1 and grid[1, 0, 1] == 1 and grid[0, 0, 0] == -1


def test_gradient_flows_to_theta_like_torch():
    theta = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 5, 6, 2, dtype=torch.float64)
    ours = torch.autograd.grad((affine_grid(theta, (2, 1, 5, 6)) * weights).sum(), theta)[0]
    theirs = torch.autograd.grad((F.affine_grid(theta, (2, 1, 5, 6), align_corners=False) * weights).sum(), theta)[0]
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("align_corners", [False, True])
def test_numpy_twin_matches_torch(align_corners):
    theta = torch.randn(3, 2, 3, dtype=torch.float64)
    for size in [(3, 1, 1, 1), (3, 2, 5, 8)]:
        np.testing.assert_allclose(affine_grid_np(theta.numpy(), size, align_corners),
                                   affine_grid(theta, size, align_corners).numpy(), rtol=0, atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 2, 3\)"):
        affine_grid(torch.eye(2, 3), (1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, 2, 3\)"):
        affine_grid(torch.zeros(1, 3, 3), (1, 1, 4, 4))
    with pytest.raises(ValueError, match="batch size 2"):
        affine_grid(torch.zeros(2, 2, 3), (1, 1, 4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        affine_grid(torch.zeros(1, 2, 3, dtype=torch.int64), (1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        affine_grid(torch.zeros(1, 2, 3), (1, 4, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        affine_grid(np.zeros((1, 2, 3)), (1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, 2, 3\)"):
        affine_grid_np(np.zeros((2, 3)), (1, 1, 4, 4))
