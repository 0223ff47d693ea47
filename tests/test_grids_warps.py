"""Projective and thin-plate-spline grids (lesson 3): identities, interpolation property, NumPy-free references,
gradients, bad input."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from stn_course.grids import (
    affine_grid,
    base_grid,
    projective_grid,
    tps_coefficients,
    tps_control_points,
    tps_grid,
    tps_kernel,
    tps_transform,
)

SIZES = [(1, 1, 1, 1), (2, 3, 5, 7), (3, 1, 16, 12), (1, 2, 33, 17)]


def _affine_h(theta: torch.Tensor) -> torch.Tensor:
    last = torch.tensor([0.0, 0.0, 1.0], dtype=theta.dtype).expand(theta.shape[0], 1, 3)
    return torch.cat([theta, last], 1)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("size,align_corners", list(itertools.product(SIZES, (False, True))))
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)], ids=["f32", "f64"])
def test_projective_with_affine_homography_equals_affine_grid(size, align_corners, dtype, tol):
    g = torch.Generator().manual_seed(sum(size))
    theta = torch.randn(size[0], 2, 3, generator=g, dtype=dtype)
    expected = F.affine_grid(theta, size, align_corners=align_corners)
    torch.testing.assert_close(projective_grid(_affine_h(theta), size, align_corners), expected, rtol=0, atol=tol)
    # the scale of H does not matter
    torch.testing.assert_close(projective_grid(3.5 * _affine_h(theta), size, align_corners), expected,
                               rtol=0, atol=10 * tol)


def test_projective_grid_matches_a_float64_loop():
    g = torch.Generator().manual_seed(3)
    H = torch.eye(3, dtype=torch.float64) + 0.2 * torch.randn(2, 3, 3, generator=g, dtype=torch.float64)
    size = (2, 1, 4, 6)
    grid = projective_grid(H, size, align_corners=False)
    for n in range(2):
        for i in range(4):
            for j in range(6):
                xt, yt = (2 * j + 1) / 6 - 1, (2 * i + 1) / 4 - 1
                u, v, w = (H[n] @ torch.tensor([xt, yt, 1.0], dtype=torch.float64)).tolist()
                assert grid[n, i, j].tolist() == pytest.approx([u / w, v / w], abs=1e-12)


def test_projective_perspective_row_changes_the_grid():
    H = torch.eye(3).unsqueeze(0).clone()
    H[0, 2, 0] = 0.5  # w = 1 + 0.5 x: the right side is squeezed towards the centre
    grid = projective_grid(H, (1, 1, 3, 5), align_corners=True)
    x = grid[0, 1, :, 0]
    assert torch.allclose(x, torch.tensor([-1 / 0.5, -0.5 / 0.75, 0.0, 0.5 / 1.25, 1 / 1.5]))


def test_tps_control_points_layout():
    pts = tps_control_points(4, 4)
    assert pts.shape == (16, 2)
    assert torch.equal(pts[0], torch.tensor([-1.0, -1.0])) and torch.equal(pts[-1], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(pts[1], torch.tensor([-1 / 3, -1.0]))  # x runs first (row-major)
    assert tps_control_points(2, 3).shape == (6, 2)


@pytest.mark.parametrize("size,align_corners", list(itertools.product(SIZES, (False, True))))
def test_tps_with_identity_control_points_is_the_regular_grid(size, align_corners):
    n = size[0]
    for rows, cols in ((4, 4), (3, 5)):
        target = tps_control_points(rows, cols, dtype=torch.float64)
        points = target.expand(n, -1, -1).clone()
        expected = base_grid(size[2], size[3], align_corners, torch.float64)[..., :2].expand(n, -1, -1, -1)
        grid = tps_grid(points, size, align_corners, target_points=target)
        torch.testing.assert_close(grid, expected, rtol=0, atol=1e-12)
    grid32 = tps_grid(tps_control_points(4, 4).expand(n, -1, -1), size, align_corners)
    torch.testing.assert_close(grid32, affine_grid(torch.eye(2, 3).expand(n, 2, 3), size, align_corners),
                               rtol=0, atol=1e-6)


def test_tps_maps_each_target_control_point_onto_its_source():
    g = torch.Generator().manual_seed(0)
    target = tps_control_points(4, 4, dtype=torch.float64)
    source = target + 0.15 * torch.randn(3, 16, 2, generator=g, dtype=torch.float64)
    coefficients = tps_coefficients(source, target)
    torch.testing.assert_close(tps_transform(target, coefficients, target), source, rtol=0, atol=1e-10)
    # a 4×4 output with align_corners=True has its pixel centres exactly on the control points
    grid = tps_grid(source, (3, 1, 4, 4), align_corners=True)
    torch.testing.assert_close(grid.reshape(3, 16, 2), source, rtol=0, atol=1e-10)


def test_tps_reproduces_an_affine_map_exactly():
    """A thin-plate spline minimises bending energy: affine control-point motion gives that affine map."""
    theta = torch.tensor([[[0.9, -0.2, 0.1], [0.3, 1.1, -0.05]]], dtype=torch.float64)
    target = tps_control_points(4, 4, dtype=torch.float64)
    source = torch.cat([target, torch.ones(16, 1, dtype=torch.float64)], 1) @ theta[0].T
    coefficients = tps_coefficients(source.unsqueeze(0), target)
    torch.testing.assert_close(coefficients[0, :16], torch.zeros(16, 2, dtype=torch.float64), rtol=0, atol=1e-10)
    size = (1, 1, 9, 11)
    torch.testing.assert_close(tps_grid(source.unsqueeze(0), size), affine_grid(theta, size), rtol=0, atol=1e-10)


def test_tps_side_conditions_and_kernel():
    g = torch.Generator().manual_seed(1)
    target = tps_control_points(3, 3, dtype=torch.float64)
    source = target + 0.2 * torch.randn(2, 9, 2, generator=g, dtype=torch.float64)
    w = tps_coefficients(source, target)[:, :9]
    # sum w = sum w x = sum w y = 0 (no affine component in the radial part)
    torch.testing.assert_close(w.sum(1), torch.zeros(2, 2, dtype=torch.float64), rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.einsum("nkd,k->nd", w, target[:, 0]), torch.zeros(2, 2, dtype=torch.float64),
                               rtol=0, atol=1e-10)
    k = tps_kernel(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0]]))
    assert k[0, 0] == 0 and k[1, 0].item() == pytest.approx(25 * torch.log(torch.tensor(25.0)).item())


def test_grids_are_differentiable():
    g = torch.Generator().manual_seed(2)
    H = (torch.eye(3, dtype=torch.float64) + 0.1 * torch.randn(2, 3, 3, generator=g, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda h: projective_grid(h, (2, 1, 3, 4)), (H.requires_grad_(),))
    pts = (tps_control_points(3, 3, dtype=torch.float64) + 0.1 * torch.randn(2, 9, 2, generator=g,
                                                                               dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda p: tps_grid(p, (2, 1, 4, 5)), (pts.requires_grad_(),))


def test_dtype_and_device_follow_the_input():
    H = torch.eye(3, dtype=torch.float64).expand(1, 3, 3)
    assert projective_grid(H, (1, 1, 2, 2)).dtype == torch.float64
    pts = tps_control_points(2, 2).expand(1, 4, 2)
    assert tps_grid(pts, (1, 1, 3, 3)).dtype == torch.float32


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, 3, 3\)"):
        projective_grid(torch.eye(3), (1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"\(N, 3, 3\)"):
        projective_grid(torch.zeros(1, 2, 3), (1, 1, 2, 2))
    with pytest.raises(ValueError, match="batch size"):
        projective_grid(torch.eye(3).expand(2, 3, 3), (1, 1, 2, 2))
    with pytest.raises(TypeError, match="floating-point"):
        projective_grid(torch.eye(3, dtype=torch.long).expand(1, 3, 3), (1, 1, 2, 2))
    with pytest.raises(ValueError, match="square"):
        tps_grid(torch.zeros(1, 6, 2), (1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"\(N, K, 2\)"):
        tps_grid(torch.zeros(6, 2), (1, 1, 2, 2))
    with pytest.raises(ValueError, match="pair up"):
        tps_coefficients(torch.zeros(1, 9, 2), tps_control_points(4, 4))
    with pytest.raises(ValueError, match="rows, cols >= 2"):
        tps_control_points(1, 4)
    with pytest.raises(TypeError, match="torch.Tensor"):
        tps_grid([[0.0, 0.0]], (1, 1, 2, 2))
