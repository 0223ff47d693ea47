"""Gradients at the kinks: every implementation gives ATen's gradient where the sampler is only one-sidedly
differentiable – pixel centres (the identity transform puts every point there), the clamp of ``border`` and
``reflection`` at the image's edge, the mirror lines – and at random points.

ATen's convention, which every path follows: the neighbours are ``floor(x)`` and ``floor(x) + 1`` of the coordinate
*as ATen rounds it* (so a point a rounding error left of a centre takes the left difference, one exactly on it the
right one), and the clamp counts a coordinate on the border as outside (``clip_coordinates_set_grad``: gradient 0).
The reference is always ``F.grid_sample``'s / ``F.affine_grid``'s backward, in float64 and float32, every padding
mode, both ``align_corners``. Implementations: the readable sampler (autograd through
:func:`stn_course.sampling.grid_sample`), the hand-derived backward (``impl="reference"`` and ``"fast"``), the
Triton kernels (``impl="triton"``, through the interpreter on a CPU) and :class:`stn_course.stn.SpatialTransformer`.
"""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import gradcheck

from stn_course import sampling
from stn_course.autograd import affine_grid_analytic, bilinear_sample_analytic
from stn_course.grids import affine_grid
from stn_course.padding import GRID_SAMPLE_MODES
from stn_course.stn import SpatialTransformer

DTYPES = (torch.float64, torch.float32)
MODES = list(itertools.product(GRID_SAMPLE_MODES, (False, True)))
MODE_IDS = [f"{m}-ac{int(a)}" for m, a in MODES]
SIZES = ((4, 5), (5, 3), (8, 8))  # (H, W): odd, even, non-square; 8 makes many centres exact binary fractions
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

SAMPLERS = {
    "readable": lambda pm, ac: lambda u, g: sampling.grid_sample(u, g, "bilinear", pm, ac),
    "reference": lambda pm, ac: lambda u, g: bilinear_sample_analytic(u, g, pm, ac, impl="reference"),
    "fast": lambda pm, ac: lambda u, g: bilinear_sample_analytic(u, g, pm, ac, impl="fast"),
}


def _normalized(pixels: torch.Tensor, size: int, align_corners: bool) -> torch.Tensor:
    """Pixel coordinates (float64) -> normalized grid values."""
    return pixels * 2 / (size - 1) - 1 if align_corners else (2 * pixels + 1) / size - 1


def _lattice(xs: torch.Tensor, ys: torch.Tensor, h: int, w: int, align_corners: bool, dtype) -> torch.Tensor:
    rows, cols = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([_normalized(cols, w, align_corners), _normalized(rows, h, align_corners)], -1)[None].to(dtype)


def kink_grids(h: int, w: int, align_corners: bool, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Grids ``(1, H_out, W_out, 2)`` that sit on the kinks, and one of random points."""
    eye = torch.eye(2, 3, dtype=dtype)[None]
    whole_x = torch.arange(-2.0, w + 2, dtype=torch.float64)  # centres, the border, and just outside it
    whole_y = torch.arange(-2.0, h + 2, dtype=torch.float64)
    edges = torch.tensor([-1.0, 1.0, -3.0, 3.0, 0.0, -1.0 + 1 / w, 1.0 - 1 / w], dtype=torch.float64)
    generator = torch.Generator().manual_seed(h * 100 + w)
    return {
        "identity (F.affine_grid)": F.affine_grid(eye, (1, 1, h, w), align_corners=align_corners),
        "identity (affine_grid)": affine_grid(eye, (1, 1, h, w), align_corners=align_corners),
        "integer pixels": _lattice(whole_x, whole_y, h, w, align_corners, dtype),
        "half pixels (edges, mirror lines)": _lattice(whole_x + 0.5, whole_y + 0.5, h, w, align_corners, dtype),
        "±1 and beyond": torch.stack(torch.meshgrid(edges, edges, indexing="xy"), -1)[None].to(dtype),
        "random": (torch.rand(1, 6, 7, 2, generator=generator, dtype=torch.float64) * 2.6 - 1.3).to(dtype),
    }


def _gradients(sample, u: torch.Tensor, grid: torch.Tensor, grad_output: torch.Tensor):
    u, grid = u.clone().requires_grad_(), grid.clone().requires_grad_()
    return torch.autograd.grad(sample(u, grid), (u, grid), grad_output)


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """float64: 1e-10 relative to the gradient's size; float32: 1e-5 of it (rounding, never a one-sided choice:
    the other side of a kink differs by a whole pixel difference, ~the gradient's size)."""
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * scale, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("impl", list(SAMPLERS))
@pytest.mark.parametrize("padding_mode, align_corners", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sampler_gradients_equal_atens_on_the_kinks(impl, padding_mode, align_corners, dtype):
    torch.manual_seed(0)
    for h, w in SIZES:
        u = torch.randn(2, 3, h, w, dtype=dtype) * 3
        for name, grid in kink_grids(h, w, align_corners, dtype).items():
            grid = grid.expand(2, *grid.shape[1:])
            grad_output = torch.randn(2, 3, *grid.shape[1:3], dtype=dtype)
            expected = _gradients(lambda a, g: F.grid_sample(a, g, "bilinear", padding_mode, align_corners),
                                  u, grid, grad_output)
            actual = _gradients(SAMPLERS[impl](padding_mode, align_corners), u, grid, grad_output)
            assert_close_scaled(actual[0], expected[0], dtype, f"{impl} {h}x{w} {name}: input gradient")
            assert_close_scaled(actual[1], expected[1], dtype, f"{impl} {h}x{w} {name}: grid gradient")


@pytest.mark.parametrize("impl", list(SAMPLERS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_the_clamp_is_flat_on_the_border(impl, dtype):
    """A point exactly on the border (pixel 0 or W - 1) with ``border`` padding: gradient 0 along that axis, as in
    ATen – autograd through ``torch.clamp`` would pass 1 there (the readable sampler's old −8/−10)."""
    u = torch.arange(20.0, dtype=dtype).view(1, 1, 4, 5) ** 2
    for align_corners in (False, True):
        on_border = _normalized(torch.tensor([0.0, 4.0], dtype=torch.float64), 5, align_corners)
        grid = torch.stack([on_border, torch.zeros(2, dtype=torch.float64)], -1).view(1, 1, 2, 2).to(dtype)
        _, grad_grid = _gradients(SAMPLERS[impl]("border", align_corners), u, grid, torch.ones(1, 1, 1, 2, dtype=dtype))
        assert torch.equal(grad_grid[..., 0], torch.zeros_like(grad_grid[..., 0])), grad_grid


def _transformer_theta_gradient(impl: str, padding_mode: str, align_corners: bool, dtype, x, grad_output):
    torch.manual_seed(1)
    n, c, h, w = x.shape
    localisation = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 8), nn.ReLU())
    st = SpatialTransformer(localisation, impl=impl, align_corners=align_corners,
                            padding_mode=padding_mode).to(dtype=dtype, device=x.device)
    st(x).backward(grad_output)
    return st.head.bias.grad  # the head starts at the identity: its bias *is* θ


def _transformer_case(dtype, h, w):
    generator = torch.Generator().manual_seed(h * 10 + w)
    x = torch.randn(2, 2, h, w, generator=generator, dtype=dtype)
    return x.to(DEVICE), torch.randn(2, 2, h, w, generator=generator, dtype=dtype).to(DEVICE)


@pytest.mark.parametrize("impl", ["reference", "fast"])
@pytest.mark.parametrize("padding_mode, align_corners", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_transformer_theta_gradient_at_identity_init_equals_aten(impl, padding_mode, align_corners, dtype):
    """``SpatialTransformer`` starts at θ = identity, every sample on a pixel centre: ``head.bias.grad`` (∂L/∂θ)
    of every impl equals ``impl="aten"``'s (it differed by up to 18.5 in float64 before)."""
    for h, w in ((28, 28), (7, 10), (5, 3)):
        x, grad_output = _transformer_case(dtype, h, w)
        expected = _transformer_theta_gradient("aten", padding_mode, align_corners, dtype, x, grad_output)
        actual = _transformer_theta_gradient(impl, padding_mode, align_corners, dtype, x, grad_output)
        assert_close_scaled(actual, expected, dtype, f"{impl} {h}x{w}: dL/dθ")


@pytest.mark.triton
@pytest.mark.parametrize("padding_mode, align_corners", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_triton_gradients_at_identity_and_integer_shifts_equal_aten(padding_mode, align_corners, dtype):
    """The fused kernels (interpreter on a CPU): ∂L/∂θ and ∂L/∂input at θ = identity, at integer pixel shifts
    and through ``SpatialTransformer(impl="triton")``, against ``F.affine_grid`` + ``F.grid_sample``."""
    from stn_course.gpu.affine import affine_sample

    for h, w in ((7, 10), (5, 3)):
        x, grad_output = _transformer_case(dtype, h, w)
        shift = _normalized(torch.tensor(1.0, dtype=torch.float64), w, align_corners) - _normalized(
            torch.tensor(0.0, dtype=torch.float64), w, align_corners)
        thetas = torch.eye(2, 3, dtype=dtype, device=DEVICE).repeat(2, 1, 1)
        thetas[1, 0, 2] = float(shift)  # one pixel to the right (up to rounding)
        expected = _gradients(lambda u, t: F.grid_sample(u, F.affine_grid(t, u.shape, align_corners=align_corners),
                                                         "bilinear", padding_mode, align_corners),
                              x, thetas, grad_output)
        actual = _gradients(lambda u, t: affine_sample(u, t, None, padding_mode, align_corners), x, thetas,
                            grad_output)
        assert_close_scaled(actual[0], expected[0], dtype, f"triton {h}x{w}: input gradient")
        assert_close_scaled(actual[1], expected[1], dtype, f"triton {h}x{w}: dL/dθ")
        aten = _transformer_theta_gradient("aten", padding_mode, align_corners, dtype, x, grad_output)
        fused = _transformer_theta_gradient("triton", padding_mode, align_corners, dtype, x, grad_output)
        assert_close_scaled(fused, aten, dtype, f"SpatialTransformer(impl='triton') {h}x{w}: dL/dθ")


@pytest.mark.parametrize("padding_mode, align_corners", MODES, ids=MODE_IDS)
def test_nearest_gives_the_grid_a_zero_gradient_like_torch(padding_mode, align_corners):
    """``mode="nearest"`` is piecewise constant in the grid: torch gives the grid zeros – also when the input needs
    no gradient (the backward used to raise "element 0 of tensors does not require grad")."""
    torch.manual_seed(0)
    u = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    grid = torch.rand(2, 3, 6, 2, dtype=torch.float64) * 2.4 - 1.2
    grad_output = torch.randn(2, 3, 3, 6, dtype=torch.float64)
    for input_needs_grad in (False, True):
        results = []
        for sample in (F.grid_sample, sampling.grid_sample):
            a, g = u.clone().requires_grad_(input_needs_grad), grid.clone().requires_grad_()
            out = sample(a, g, "nearest", padding_mode, align_corners)
            assert out.requires_grad
            out.backward(grad_output)
            results.append((out.detach(), g.grad, a.grad))
        (out_t, grid_t, input_t), (out_o, grid_o, input_o) = results
        torch.testing.assert_close(out_o, out_t, rtol=0, atol=0)
        assert grid_o is not None and torch.equal(grid_o, grid_t) and not grid_o.any()
        assert (input_o is None) == (input_t is None)
        if input_t is not None:
            torch.testing.assert_close(input_o, input_t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", ["reference", "fast"])
@pytest.mark.parametrize("padding_mode, align_corners", MODES, ids=MODE_IDS)
def test_forward_mode_ad_of_the_hand_derived_functions(impl, padding_mode, align_corners):
    """``jvp``: gradcheck with forward-mode AD (away from the kinks, as finite differences need)."""
    torch.manual_seed(0)
    u = torch.rand(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    grid = (torch.rand(2, 4, 3, 2, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    assert gradcheck(lambda a, g: bilinear_sample_analytic(a, g, padding_mode, align_corners, impl=impl), (u, grid),
                     check_forward_ad=True)
    theta = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: affine_grid_analytic(t, (2, 1, 4, 5), align_corners), (theta,),
                     check_forward_ad=True)


def test_forward_mode_tangent_at_the_identity_equals_atens():
    """On the kinks the jvp takes the same one-sided differences as the backward – ATen's. ATen has no forward
    mode for grid_sample, so the tangent ``J dθ`` is held to ATen's backward by the adjoint identity
    ``<v, J dθ> = <Jᵀ v, dθ>`` for several ``v``."""
    import torch.autograd.forward_ad as fwAD

    torch.manual_seed(0)
    for align_corners, padding_mode in itertools.product((False, True), GRID_SAMPLE_MODES):
        u = torch.randn(1, 2, 5, 7, dtype=torch.float64)
        theta, d_theta = torch.eye(2, 3, dtype=torch.float64)[None], torch.randn(1, 2, 3, dtype=torch.float64)
        with fwAD.dual_level():
            grid = affine_grid_analytic(fwAD.make_dual(theta, d_theta), u.shape, align_corners)
            tangent = fwAD.unpack_dual(bilinear_sample_analytic(u, grid, padding_mode, align_corners)).tangent
        for _ in range(4):
            v = torch.randn_like(tangent)
            t = theta.clone().requires_grad_()
            out = F.grid_sample(u, F.affine_grid(t, u.shape, align_corners=align_corners), "bilinear",
                                padding_mode, align_corners)
            (vjp,) = torch.autograd.grad(out, t, v)
            torch.testing.assert_close((v * tangent).sum(), (vjp * d_theta).sum(), rtol=1e-10, atol=1e-10)


@pytest.mark.triton
def test_fused_kernels_name_forward_mode_ad_as_not_implemented():
    import torch.autograd.forward_ad as fwAD

    from stn_course.gpu.affine import affine_sample

    u = torch.rand(1, 1, 3, 4, dtype=torch.float64, device=DEVICE)
    with fwAD.dual_level(), pytest.raises(NotImplementedError, match="forward-mode AD"):
        affine_sample(u, fwAD.make_dual(torch.eye(2, 3, dtype=torch.float64, device=DEVICE)[None],
                                        torch.ones(1, 2, 3, dtype=torch.float64, device=DEVICE)))
