"""Hand-derived backward passes (lesson 4): gradcheck in float64, agreement with autograd through F.grid_sample /
F.affine_grid in float32, the readable gather/scatter backward, once-differentiability and bad input."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from stn_course.autograd import (
    BilinearSampleFunction,
    affine_grid_analytic,
    affine_grid_backward,
    bilinear_sample_analytic,
    bilinear_sample_backward,
    source_coordinates_grad,
)
from stn_course.padding import GRID_SAMPLE_MODES
from stn_course.sampling import PADDING_MODES, bilinear_sample, source_coordinates, unnormalize

MODES = list(itertools.product(PADDING_MODES, (False, True)))  # every mode: gradcheck, readable = fast
MODE_IDS = [f"{m}-ac{int(a)}" for m, a in MODES]
TORCH_MODES = list(itertools.product(GRID_SAMPLE_MODES, (False, True)))  # the modes F.grid_sample knows
TORCH_MODE_IDS = [f"{m}-ac{int(a)}" for m, a in TORCH_MODES]
# (N, C, H, W, H_out, W_out): 1-pixel, non-square, C = 1 / few / many (the fast path switches layout at 16)
SHAPES = [(1, 1, 1, 1, 2, 3), (2, 3, 5, 7, 4, 6), (1, 2, 6, 4, 3, 5), (2, 17, 4, 5, 3, 3)]


def away_from_kinks(grid: torch.Tensor, height: int, width: int, align_corners: bool, margin: float = 1e-3):
    """Nudge grid points whose pixel coordinate lies within ``margin`` of a multiple of 1/2 (pixel centres, pixel
    edges, and with them every border and mirror line) – where the sampler is only one-sidedly differentiable."""
    grid = grid.clone()
    for axis, size in ((0, width), (1, height)):
        for _ in range(3):
            x = unnormalize(grid[..., axis], size, align_corners)
            near = ((2 * x) - torch.round(2 * x)).abs() < 2 * margin
            step = (4 * margin) * (2 / max(size, 1))
            grid[..., axis] = torch.where(near, grid[..., axis] + step, grid[..., axis])
    return grid


def assert_close_scaled(actual, expected, tol=1e-5):
    """Agree to ``tol`` relative to each value and to the largest value (float32 gradients w.r.t. the grid are
    sums of products scaled by W/2 that partly cancel, so a small entry carries the rounding of the big terms;
    torch's own float32 result is that far from the float64 truth too)."""
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * scale)


def _case(shape, dtype, seed, reach=1.5):
    n, c, h, w, h_out, w_out = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=dtype)
    grid = (torch.rand(n, h_out, w_out, 2, generator=g, dtype=dtype) * 2 - 1) * reach
    return x, grid


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
def test_bilinear_gradcheck_input_and_grid(shape, mode, align_corners):
    x, grid = _case(shape, torch.float64, seed=sum(shape))
    grid = away_from_kinks(grid, shape[2], shape[3], align_corners)
    x.requires_grad_(), grid.requires_grad_()
    fn = lambda a, b: bilinear_sample_analytic(a, b, mode, align_corners)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, grid), eps=1e-6, atol=1e-6, fast_mode=x.numel() > 100)


@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
def test_affine_grid_gradcheck_theta(mode, align_corners):
    g = torch.Generator().manual_seed(1)
    theta = (torch.eye(2, 3, dtype=torch.float64) + 0.3 * torch.randn(2, 2, 3, generator=g,
                                                                       dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: affine_grid_analytic(t, (2, 1, 5, 6), align_corners), (theta,))
    # chained: theta -> grid -> sampler, all hand-derived, at a theta whose grid stays away from the kinks
    x = torch.randn(2, 2, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    for _ in range(100):
        theta = torch.eye(2, 3, dtype=torch.float64) + 0.3 * torch.randn(2, 2, 3, generator=g, dtype=torch.float64)
        grid = affine_grid_analytic(theta, (2, 2, 4, 5), align_corners)
        if torch.equal(away_from_kinks(grid, 6, 7, align_corners, margin=1e-2), grid):
            break
    else:
        pytest.fail("no theta away from the kinks found")
    theta.requires_grad_()
    fn = lambda a, t: bilinear_sample_analytic(a, affine_grid_analytic(t, (2, 2, 4, 5), align_corners), mode,  # noqa
                                               align_corners)
    assert torch.autograd.gradcheck(fn, (x, theta))


@pytest.mark.parametrize("shape", [(2, 3, 9, 11, 7, 8), (3, 1, 28, 28, 28, 28), (2, 20, 12, 10, 9, 13)],
                         ids=["c3", "c1", "c20"])
@pytest.mark.parametrize("mode,align_corners", TORCH_MODES, ids=TORCH_MODE_IDS)
def test_matches_autograd_through_grid_sample_float32(shape, mode, align_corners):
    x, grid = _case(shape, torch.float32, seed=7 + sum(shape))
    grid = away_from_kinks(grid, shape[2], shape[3], align_corners)
    theta = torch.eye(2, 3) + 0.3 * torch.randn(shape[0], 2, 3, generator=torch.Generator().manual_seed(3))
    size = (shape[0], shape[1], shape[4], shape[5])
    go = torch.randn(size, generator=torch.Generator().manual_seed(4))

    def grads(sample, make_grid, theta_):
        xx, tt = x.clone().requires_grad_(), theta_.clone().requires_grad_()
        out = sample(xx, make_grid(tt))
        return (out, *torch.autograd.grad(out, (xx, tt), go))

    ours = grads(lambda a, g: bilinear_sample_analytic(a, g, mode, align_corners),
                 lambda t: affine_grid_analytic(t, size, align_corners), theta)
    torch_ = grads(lambda a, g: F.grid_sample(a, g, padding_mode=mode, align_corners=align_corners),
                   lambda t: F.affine_grid(t, size, align_corners=align_corners), theta)
    for a, b in zip(ours, torch_):
        assert_close_scaled(a, b)
    # and w.r.t. an arbitrary grid
    gg = grid.clone().requires_grad_()
    gt = grid.clone().requires_grad_()
    ours = torch.autograd.grad(bilinear_sample_analytic(x, gg, mode, align_corners), gg, go)[0]
    ref = torch.autograd.grad(F.grid_sample(x, gt, padding_mode=mode, align_corners=align_corners), gt, go)[0]
    assert_close_scaled(ours, ref)


@pytest.mark.parametrize("mode,align_corners", TORCH_MODES, ids=TORCH_MODE_IDS)
def test_forward_matches_grid_sample_and_the_reference(mode, align_corners):
    for shape in SHAPES + [(2, 16, 5, 6, 7, 4)]:
        x, grid = _case(shape, torch.float64, seed=11 + sum(shape), reach=2.5)
        expected = F.grid_sample(x, grid, padding_mode=mode, align_corners=align_corners)
        torch.testing.assert_close(bilinear_sample_analytic(x, grid, mode, align_corners), expected,
                                   rtol=0, atol=1e-12)
        x32, g32 = x.float(), grid.float()
        torch.testing.assert_close(bilinear_sample_analytic(x32, g32, mode, align_corners),
                                   bilinear_sample(x32, g32, mode, align_corners), rtol=0, atol=2e-6)


@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
def test_readable_backward_equals_the_fast_one(mode, align_corners):
    for shape in SHAPES:
        x, grid = _case(shape, torch.float64, seed=5 + sum(shape))
        out_shape = (shape[0], shape[1], shape[4], shape[5])
        go = torch.randn(out_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
        xx, gg = x.clone().requires_grad_(), grid.clone().requires_grad_()
        fast = torch.autograd.grad(BilinearSampleFunction.apply(xx, gg, mode, align_corners), (xx, gg), go)
        slow = bilinear_sample_backward(go, x, grid, mode, align_corners)
        for a, b in zip(fast, slow):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    theta = torch.randn(2, 2, 3, dtype=torch.float64)
    gg = torch.randn(2, 4, 5, 2, dtype=torch.float64)
    tt = theta.clone().requires_grad_()
    auto = torch.autograd.grad(F.affine_grid(tt, (2, 1, 4, 5), align_corners=align_corners), tt, gg)[0]
    torch.testing.assert_close(affine_grid_backward(gg, (2, 1, 4, 5), align_corners), auto)


@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
def test_source_coordinates_grad_is_the_derivative(mode, align_corners):
    coord = torch.linspace(-3.1, 3.3, 401, dtype=torch.float64)
    for size in (1, 2, 5):
        coord_ = away_from_kinks(coord.view(1, 1, -1, 1).expand(1, 1, -1, 2), size, size, align_corners)[0, 0, :, 0]
        c = coord_.clone().requires_grad_()
        out = source_coordinates(c, size, mode, align_corners)
        auto = torch.autograd.grad(out.sum(), c)[0] if out.requires_grad else torch.zeros_like(coord_)
        torch.testing.assert_close(source_coordinates_grad(coord_, size, mode, align_corners), auto)


def test_gradient_reaches_only_the_four_neighbours():
    x = torch.zeros(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    grid = torch.tensor([[[[-1 / 12, 0.1]]]], dtype=torch.float64)  # pixel (x, y) = (2.25, 2.8) with ac=False
    bilinear_sample_analytic(x, grid).sum().backward()
    nonzero = x.grad[0, 0].nonzero().tolist()
    assert nonzero == [[2, 2], [2, 3], [3, 2], [3, 3]]
    assert x.grad[0, 0, 2, 2].item() == pytest.approx(0.75 * 0.2)
    assert x.grad.sum().item() == pytest.approx(1.0)


def test_identity_is_exact_in_float32_and_gradients_at_the_kink_are_one_sided():
    x = torch.randn(2, 3, 9, 7)
    theta = torch.eye(2, 3).expand(2, 2, 3).clone().requires_grad_()
    out = bilinear_sample_analytic(x, affine_grid_analytic(theta, x.shape, False))
    assert torch.equal(out, x)
    # at the identity every sample is a pixel centre: the right derivative (forward difference) is used
    x1 = torch.arange(5.0, dtype=torch.float64).pow(2).view(1, 1, 1, 5)
    grid = torch.stack([torch.linspace(-1, 1, 5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)], -1)
    grid = grid.view(1, 1, 5, 2)
    g = grid.clone().requires_grad_()
    bilinear_sample_analytic(x1, g, "zeros", True).sum().backward()
    right = torch.tensor([1.0, 3.0, 5.0, 7.0, -16.0], dtype=torch.float64) * 2  # U[j+1] - U[j], scaled by (W-1)/2
    torch.testing.assert_close(g.grad[0, 0, :, 0], right)


def test_double_backward_raises():
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    grid = torch.rand(1, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    out = bilinear_sample_analytic(x, grid)
    with pytest.raises(RuntimeError, match="double backward is not supported"):
        torch.autograd.grad(out.pow(2).sum(), (x, grid), create_graph=True)
    theta = torch.randn(1, 2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="double backward is not supported"):
        torch.autograd.grad(affine_grid_analytic(theta, (1, 1, 3, 3)).pow(2).sum(), theta, create_graph=True)
    # a plain backward still works after the refusal
    gx, = torch.autograd.grad(bilinear_sample_analytic(x, grid).sum(), x)
    torch.testing.assert_close(gx, bilinear_sample_backward(torch.ones(1, 1, 3, 3, dtype=torch.float64), x.detach(),
                                                            grid.detach())[0])


def test_only_requested_gradients_are_computed():
    x = torch.randn(1, 2, 4, 4)
    grid = torch.rand(1, 3, 3, 2, requires_grad=True)
    bilinear_sample_analytic(x, grid).sum().backward()
    assert x.grad is None and grid.grad is not None
    xr = x.clone().requires_grad_()
    bilinear_sample_analytic(xr, grid.detach()).sum().backward()
    assert xr.grad is not None


def test_half_precision_uses_the_readable_path():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, generator=g).bfloat16()
    grid = (torch.rand(1, 4, 4, 2, dtype=torch.float64, generator=g) * 2 - 1).bfloat16()
    out16 = bilinear_sample_analytic(x, grid)
    assert out16.dtype == torch.bfloat16
    # bfloat16 keeps 8 significant bits and the products round too: agree with float64 on the same inputs to 2^-4
    expected = F.grid_sample(x.double(), grid.double(), align_corners=False)
    torch.testing.assert_close(out16.double(), expected, rtol=0, atol=2 ** -4 * expected.abs().max().item())
    xx, gg = x.clone().requires_grad_(), grid.clone().requires_grad_()
    grads = torch.autograd.grad(bilinear_sample_analytic(xx, gg).sum(), (xx, gg))
    assert grads[0].dtype == grads[1].dtype == torch.bfloat16


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        bilinear_sample_analytic(torch.zeros(3, 4, 4), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match=r"\(N, H_out, W_out, 2\)"):
        bilinear_sample_analytic(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError, match="padding_mode"):
        bilinear_sample_analytic(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 2, 2), "wrap")
    with pytest.raises(TypeError, match="same dtype"):
        bilinear_sample_analytic(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(N, 2, 3\)"):
        affine_grid_analytic(torch.zeros(2, 3), (1, 1, 2, 2))
    with pytest.raises(ValueError, match="batch size"):
        affine_grid_analytic(torch.zeros(2, 2, 3), (1, 1, 2, 2))
