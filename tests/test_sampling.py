"""stn_course.sampling against torch's F.grid_sample, plus identities, NumPy twins and bad input."""
from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course.grids import affine_grid
from stn_course.padding import GRID_SAMPLE_MODES
from stn_course.sampling import (
    PADDING_MODES,
    bilinear_sample,
    bilinear_sample_np,
    nearest_sample,
    nearest_sample_np,
    source_coordinates,
)

# (N, C, H, W, H_out, W_out): 1-pixel, non-square, other output sizes, batch 1 and > 1.
SHAPES = [
    (1, 1, 1, 1, 3, 4),
    (1, 2, 1, 6, 2, 5),
    (2, 3, 5, 7, 4, 9),
    (3, 1, 16, 12, 20, 8),
    (2, 2, 64, 64, 31, 47),
    (1, 3, 40, 64, 64, 40),
]
CASES = list(itertools.product(SHAPES, GRID_SAMPLE_MODES, (False, True)))  # compared with F.grid_sample


def _seed(case) -> int:
    """A stable seed per case (Python's hash() of strings changes between processes)."""
    return zlib.crc32(repr(case).encode())


def _ids(case):
    shape, mode, ac = case
    return f"{'x'.join(map(str, shape))}-{mode}-ac{int(ac)}"


def _grid(n, h_out, w_out, dtype, generator, reach=1.7):
    return (torch.rand(n, h_out, w_out, 2, generator=generator, dtype=dtype) * 2 - 1) * reach


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)], ids=["f32", "f64"])
def test_bilinear_matches_grid_sample_on_random_grids(case, dtype, tol):
    (n, c, h, w, h_out, w_out), mode, align_corners = case
    g = torch.Generator().manual_seed(_seed(case))
    x = torch.randn(n, c, h, w, generator=g, dtype=dtype)
    grid = _grid(n, h_out, w_out, dtype, g)
    expected = F.grid_sample(x, grid, mode="bilinear", padding_mode=mode, align_corners=align_corners)
    actual = bilinear_sample(x, grid, padding_mode=mode, align_corners=align_corners)
    assert actual.shape == expected.shape and actual.dtype == dtype
    torch.testing.assert_close(actual, expected, rtol=0, atol=tol)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)], ids=["f32", "f64"])
def test_bilinear_matches_grid_sample_on_affine_grids(case, dtype, tol):
    (n, c, h, w, h_out, w_out), mode, align_corners = case
    g = torch.Generator().manual_seed(1 + _seed(case))
    theta = torch.eye(2, 3, dtype=dtype) + 0.5 * torch.randn(n, 2, 3, generator=g, dtype=dtype)
    grid = affine_grid(theta, (n, c, h_out, w_out), align_corners)
    x = torch.rand(n, c, h, w, generator=g, dtype=dtype)
    expected = F.grid_sample(x, grid, mode="bilinear", padding_mode=mode, align_corners=align_corners)
    torch.testing.assert_close(bilinear_sample(x, grid, mode, align_corners), expected, rtol=0, atol=tol)


def test_bilinear_float64_large_image():
    """float64 agrees to 1e-10 at any size, here 3×160×224 with a 300×200 output."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 160, 224, generator=g, dtype=torch.float64)
    grid = _grid(2, 300, 200, torch.float64, g, reach=1.2)
    for mode, ac in itertools.product(GRID_SAMPLE_MODES, (False, True)):
        expected = F.grid_sample(x, grid, padding_mode=mode, align_corners=ac)
        torch.testing.assert_close(bilinear_sample(x, grid, mode, ac), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_nearest_matches_grid_sample(case):
    (n, c, h, w, h_out, w_out), mode, align_corners = case
    g = torch.Generator().manual_seed(2 + _seed(case))
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    grid = _grid(n, h_out, w_out, torch.float64, g)
    expected = F.grid_sample(x, grid, mode="nearest", padding_mode=mode, align_corners=align_corners)
    torch.testing.assert_close(nearest_sample(x, grid, mode, align_corners), expected, rtol=0, atol=0)


def test_nearest_rounds_half_to_even_like_torch():
    """Sample points exactly half-way between pixels: torch uses nearbyint (round half to even)."""
    x = torch.arange(8.0, dtype=torch.float64).view(1, 1, 1, 8)
    # align_corners=True: pixel x sits at 2x/7 - 1; half-way points are (2x+1)/7 - 1.
    xs = torch.tensor([(2 * k + 1) / 7 - 1 for k in range(7)], dtype=torch.float64)
    grid = torch.stack([xs, torch.zeros_like(xs)], -1).view(1, 1, 7, 2)
    expected = F.grid_sample(x, grid, mode="nearest", align_corners=True)
    torch.testing.assert_close(nearest_sample(x, grid, align_corners=True), expected, rtol=0, atol=0)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 8), (1, 1, 28, 28), (4, 2, 17, 3)])
def test_identity_theta_reproduces_the_input(shape, mode, align_corners):
    x = torch.rand(*shape)
    theta = torch.eye(2, 3).expand(shape[0], 2, 3)
    out = bilinear_sample(x, affine_grid(theta, shape, align_corners), mode, align_corners)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)
    out = nearest_sample(x, affine_grid(theta, shape, align_corners), mode, align_corners)
    torch.testing.assert_close(out, x, rtol=0, atol=0)


def test_integer_translation_shifts_pixels():
    """Sampling at x + 1 pixel reads the right neighbour; the last column falls outside and reads 0."""
    x = torch.arange(12.0).view(1, 1, 3, 4)
    theta = torch.tensor([[[1.0, 0.0, 2.0 / 4], [0.0, 1.0, 0.0]]])  # one pixel = 2/W in normalized units
    out = bilinear_sample(x, affine_grid(theta, x.shape), "zeros", False)
    expected = torch.cat([x[..., 1:], torch.zeros(1, 1, 3, 1)], dim=-1)
    torch.testing.assert_close(out, expected)


def test_bilinear_weights_sum_to_one_inside_the_image():
    """Constant image: every sample inside (border/reflection everywhere) reads exactly the constant."""
    x = torch.full((1, 2, 6, 9), 3.5, dtype=torch.float64)
    grid = _grid(1, 11, 13, torch.float64, torch.Generator().manual_seed(0), reach=3.0)
    for mode in ("border", "reflection"):
        for ac in (False, True):
            torch.testing.assert_close(bilinear_sample(x, grid, mode, ac), torch.full((1, 2, 11, 13), 3.5,
                                       dtype=torch.float64))


def test_reflection_coordinates_mirror_about_the_border():
    coords = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.5, 3.2], dtype=torch.float64)
    # align_corners=True, size 5: pixel = 2 * (u + 1); mirror about pixel centres 0 and 4.
    pixels = source_coordinates(coords, 5, "reflection", True)
    torch.testing.assert_close(pixels, torch.tensor([1.0, 0.0, 2.0, 4.0, 3.0, 0.4], dtype=torch.float64))


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_numpy_twins_match_torch(mode, align_corners):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64)
    grid = _grid(2, 4, 6, torch.float64, g)
    np.testing.assert_allclose(bilinear_sample_np(x.numpy(), grid.numpy(), mode, align_corners),
                               bilinear_sample(x, grid, mode, align_corners).numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(nearest_sample_np(x.numpy(), grid.numpy(), mode, align_corners),
                               nearest_sample(x, grid, mode, align_corners).numpy(), rtol=0, atol=0)


def test_gradients_flow_through_the_reference_like_grid_sample():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 2, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    grid = _grid(2, 3, 4, torch.float64, g, reach=0.9).requires_grad_()
    ours = torch.autograd.grad(bilinear_sample(x, grid, "border", False).square().sum(), (x, grid))
    theirs = torch.autograd.grad(F.grid_sample(x, grid, padding_mode="border", align_corners=False).square().sum(),
                                 (x, grid))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


# ---- bad input ------------------------------------------------------------------------------------------------


def test_rejects_grid_of_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, H_out, W_out, 2\)"):
        bilinear_sample(torch.rand(1, 1, 4, 4), torch.rand(1, 4, 4, 3))
    with pytest.raises(ValueError, match=r"\(N, H_out, W_out, 2\)"):
        bilinear_sample(torch.rand(1, 1, 4, 4), torch.rand(4, 4, 2))


def test_rejects_input_of_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        nearest_sample(torch.rand(1, 4, 4), torch.rand(1, 4, 4, 2))


def test_rejects_batch_mismatch():
    with pytest.raises(ValueError, match="same batch size"):
        bilinear_sample(torch.rand(2, 1, 4, 4), torch.rand(3, 4, 4, 2))


def test_rejects_integer_dtype():
    with pytest.raises(TypeError, match="floating-point"):
        bilinear_sample(torch.ones(1, 1, 4, 4, dtype=torch.int64), torch.rand(1, 4, 4, 2))
    with pytest.raises(TypeError, match="floating-point"):
        bilinear_sample(torch.rand(1, 1, 4, 4), torch.zeros(1, 4, 4, 2, dtype=torch.int32))


def test_rejects_mixed_dtypes_and_unknown_padding():
    with pytest.raises(TypeError, match="same dtype"):
        bilinear_sample(torch.rand(1, 1, 4, 4), torch.rand(1, 4, 4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="'zeros', 'border', 'reflection'"):
        bilinear_sample(torch.rand(1, 1, 4, 4), torch.rand(1, 4, 4, 2), padding_mode="wrap")


def test_rejects_non_tensors():
    with pytest.raises(TypeError, match="torch.Tensor"):
        bilinear_sample(np.zeros((1, 1, 4, 4)), torch.rand(1, 4, 4, 2))


def test_numpy_twin_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, H_out, W_out, 2\)"):
        bilinear_sample_np(np.zeros((1, 1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(TypeError, match="floating point"):
        bilinear_sample_np(np.zeros((1, 1, 4, 4), dtype=np.int64), np.zeros((1, 4, 4, 2)))


def test_identity_is_exact_even_with_torch_float32_grids():
    """F.grid_sample misses the identity by ~W·1e-7 in float32; the snap to pixel centres makes it exact."""
    x = torch.rand(2, 3, 224, 160)
    for ac in (False, True):
        grid = F.affine_grid(torch.eye(2, 3).expand(2, 2, 3), x.shape, align_corners=ac)
        assert torch.equal(bilinear_sample(x, grid, "zeros", ac), x)


def test_gradient_wrt_grid_at_the_identity_is_not_lost():
    """At the identity every point sits on a pixel centre up to rounding (a kink): the gradient is a one-sided
    difference, scaled by dx/du = W/2 – not zero, which a plain snap with torch.round would give – and the side is
    ATen's: the snap moves the weights, never the neighbours ``floor(x)``, ``floor(x) + 1`` of the unsnapped point.
    A point exactly on a centre takes the difference to the right."""
    x = torch.randn(1, 1, 6, 7, dtype=torch.float32)
    grid = F.affine_grid(torch.eye(2, 3)[None], x.shape, align_corners=False).requires_grad_()
    grad = torch.autograd.grad(bilinear_sample(x, grid).sum(), grid)[0][0]
    expected = torch.autograd.grad(F.grid_sample(x, grid, align_corners=False).sum(), grid)[0][0]
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-5)
    assert (grad.abs() > 1e-3).float().mean() > 0.5  # a one-sided difference, not zero
    image = torch.arange(64.0).view(1, 1, 8, 8) ** 2  # U[i, j] = (8 i + j)²: differences tell the side apart
    on_centre = torch.tensor([[[[-0.375, -0.625]]]], requires_grad=True)  # exactly pixel (x, y) = (2, 1) of 8 × 8
    g = torch.autograd.grad(bilinear_sample(image, on_centre).sum(), on_centre)[0].flatten()
    right = torch.tensor([(8 + 3) ** 2 - (8 + 2) ** 2, (16 + 2) ** 2 - (8 + 2) ** 2]) * 8 / 2
    torch.testing.assert_close(g, right)
