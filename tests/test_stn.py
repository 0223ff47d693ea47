"""SpatialTransformer (lesson 3): identity at initialisation for every transform, out_size, reference == aten,
returned parameters/grid, gradients reach the localisation net, construction rules and bad input."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from stn_course.impls import SPATIAL_TRANSFORMER
from stn_course.stn import (
    AFFINE_FAMILY,
    TRANSFORMS,
    SpatialTransformer,
    identity_params,
    window_params,
    small_localisation_net,
    num_params,
    params_to_matrix,
    transform_to_grid,
)


def _loc(c=2, size=12, hidden=16):
    return nn.Sequential(nn.Flatten(), nn.Linear(c * size * size, hidden), nn.Tanh())


@pytest.mark.parametrize("impl", ("reference", "fast"))
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("align_corners", (False, True))
def test_fresh_transformer_is_the_identity(transform, align_corners, impl):
    torch.manual_seed(0)
    x = torch.randn(3, 2, 12, 12)
    st = SpatialTransformer(_loc(), transform, align_corners=align_corners, impl=impl)
    torch.testing.assert_close(st(x), x, rtol=0, atol=1e-6)
    # torch's float32 sampler reproduces the identity only to ~W·1e-7; in float64 it is exact to 1e-6 too
    st64 = SpatialTransformer(_loc().double(), transform, align_corners=align_corners, impl="aten")
    torch.testing.assert_close(st64(x.double()), x.double(), rtol=0, atol=1e-6)
    torch.testing.assert_close(SpatialTransformer(_loc(), transform, impl="aten")(x), x, rtol=0, atol=1e-4)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_head_starts_at_zero_weights_and_identity_bias(transform):
    st = SpatialTransformer(_loc(), transform)
    assert st.head.weight.abs().sum() == 0
    assert torch.equal(st.head.bias.detach(), identity_params(transform))
    assert st.head.out_features == num_params(transform) == {"affine": 6, "attention": 3, "rotation": 1, "rts": 4,
                                                              "projective": 8, "tps": 32}[transform]


@pytest.mark.parametrize("impl", ("reference", "fast"))
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_reference_and_fast_equal_aten_away_from_identity(transform, impl):
    torch.manual_seed(1)
    x = torch.randn(2, 2, 12, 12, dtype=torch.float64)
    ref = SpatialTransformer(_loc().double(), transform, out_size=(7, 9), impl=impl)
    with torch.no_grad():
        ref.head.weight.normal_(0, 0.05)
    aten = SpatialTransformer(_loc().double(), transform, out_size=(7, 9), impl="aten")
    aten.load_state_dict(ref.state_dict())
    out_r, m_r, g_r = ref(x, return_params=True)
    out_a, m_a, g_a = aten(x, return_params=True)
    torch.testing.assert_close(m_r, m_a)
    torch.testing.assert_close(g_r, g_a, rtol=0, atol=1e-12)
    torch.testing.assert_close(out_r, out_a, rtol=0, atol=1e-10)
    # and the gradients w.r.t. every parameter agree
    go = torch.randn_like(out_r)
    grads_r = torch.autograd.grad(out_r, list(ref.parameters()), go)
    grads_a = torch.autograd.grad(out_a, list(aten.parameters()), go)
    for a, b in zip(grads_r, grads_a):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_out_size_crops_and_zooms():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    st = SpatialTransformer(_loc(1, 8), "attention", out_size=4, align_corners=True)
    assert st(x).shape == (1, 1, 4, 4)
    with torch.no_grad():  # zoom on the top-left quarter: s = 3/7, t = -4/7 (pixel centres, align_corners=True)
        st.head.bias.copy_(torch.tensor([3 / 7, -4 / 7, -4 / 7]))
    torch.testing.assert_close(st(x), x[:, :, :4, :4])
    st2 = SpatialTransformer(_loc(1, 8), "affine", out_size=(3, 5))
    assert st2(x).shape == (1, 1, 3, 5)


def test_return_params_gives_the_matrix_and_the_grid():
    x = torch.randn(2, 2, 12, 12)
    for transform, shape in [("affine", (2, 2, 3)), ("attention", (2, 2, 3)), ("rotation", (2, 2, 3)),
                             ("rts", (2, 2, 3)), ("projective", (2, 3, 3)), ("tps", (2, 16, 2))]:
        out, matrix, grid = SpatialTransformer(_loc(), transform, out_size=(5, 6))(x, return_params=True)
        assert out.shape == (2, 2, 5, 6) and matrix.shape == shape and grid.shape == (2, 5, 6, 2)
        expected = F.affine_grid(torch.eye(2, 3).expand(2, 2, 3), (2, 2, 5, 6), align_corners=False)
        torch.testing.assert_close(grid, expected, rtol=0, atol=1e-6)


def test_params_to_matrix_parametrisations():
    a = torch.tensor([[0.3, 2.0, 0.1, -0.2]])
    theta = params_to_matrix(a, "rts")
    c, s = 2 * math.cos(0.3), 2 * math.sin(0.3)
    torch.testing.assert_close(theta, torch.tensor([[[c, -s, 0.1], [s, c, -0.2]]]))
    torch.testing.assert_close(params_to_matrix(torch.tensor([[0.5, 0.1, 0.2]]), "attention"),
                               torch.tensor([[[0.5, 0.0, 0.1], [0.0, 0.5, 0.2]]]))
    torch.testing.assert_close(params_to_matrix(torch.tensor([[math.pi / 2]]), "rotation"),
                               torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]]), atol=1e-7, rtol=0)
    H = params_to_matrix(torch.arange(8.0).view(1, 8), "projective")
    assert H[0, 2, 2] == 1 and H[0, 0, 1] == 1
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        params_to_matrix(torch.zeros(1, 5), "affine")


@pytest.mark.parametrize("transform", [t for t in TRANSFORMS if t != "rotation"])
def test_reset_head_with_a_scale_reads_a_centred_window(transform):
    # one output pixel per input pixel: the 6×8 window in the middle of a 12×16 image, whatever the parametrisation
    x = torch.randn(2, 1, 12, 16, dtype=torch.float64)
    st = SpatialTransformer(nn.Sequential(nn.Flatten(), nn.Linear(12 * 16, 8)), transform, out_size=(6, 8),
                            impl="fast").double()
    st.reset_head(scale=0.5)
    torch.testing.assert_close(st(x), x[:, :, 3:9, 4:12], rtol=0, atol=1e-12)
    assert torch.equal(window_params(transform, 1.0), identity_params(transform))


def test_window_params_bad_input():
    with pytest.raises(ValueError, match="rotation"):
        window_params("rotation", 0.5)
    with pytest.raises(ValueError, match="scale"):
        window_params("affine", 0.0)


@pytest.mark.parametrize("impl", SPATIAL_TRANSFORMER.accepts)  # impl="triton": marked triton (conftest.py)
def test_gradients_reach_the_localisation_network_through_every_transform(impl):
    torch.manual_seed(2)
    x = torch.randn(2, 2, 12, 12)
    target = torch.randn(2, 2, 12, 12)
    for transform in TRANSFORMS:
        if impl == "triton" and transform not in AFFINE_FAMILY:
            continue  # refused (tests/gpu/test_dispatch.py)
        st = SpatialTransformer(_loc(), transform, impl=impl)
        F.mse_loss(st(x), target).backward()
        assert st.head.weight.grad.abs().sum() > 0, (transform, impl)
        # the head's weights are zero, so the localisation net gets gradient only after a step
        assert st.localisation[1].weight.grad is not None


def test_a_few_steps_of_training_align_a_shifted_image():
    torch.manual_seed(3)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    template = torch.exp(-((xx / 0.3) ** 2 + (yy / 0.3) ** 2)).view(1, 1, 16, 16)
    shifted = torch.roll(template, shifts=2, dims=3)
    st = SpatialTransformer(nn.Sequential(nn.Flatten(), nn.Linear(256, 4)), "attention")
    opt = torch.optim.Adam(st.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = F.mse_loss(st(shifted), template)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert st.head.bias[1].item() == pytest.approx(2 * 2 / 16, abs=0.05)  # moved right by 2 pixels = 0.25


def test_feature_size_inference():
    loc = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten())
    with pytest.raises(ValueError, match="loc_features"):
        SpatialTransformer(loc)
    assert SpatialTransformer(loc, input_size=(1, 10, 10)).loc_features == 4 * 8 * 8
    assert SpatialTransformer(loc, loc_features=256).loc_features == 256
    assert SpatialTransformer(small_localisation_net(1, 24)).loc_features == 24
    st = SpatialTransformer(loc, loc_features=5)
    with pytest.raises(ValueError, match="5"):
        st(torch.zeros(1, 1, 10, 10))


def test_construction_follows_the_localisation_dtype_and_device():
    loc = _loc().double()
    st = SpatialTransformer(loc, "tps")
    assert st.head.weight.dtype == torch.float64 and st.head.weight.device == next(loc.parameters()).device
    out = st(torch.randn(1, 2, 12, 12, dtype=torch.float64))
    assert out.dtype == torch.float64
    st.to(torch.float32)
    assert st(torch.randn(1, 2, 12, 12)).dtype == torch.float32


def test_transform_to_grid_matches_the_grid_modules():
    params = identity_params("projective").unsqueeze(0) + 0.01
    H, grid = transform_to_grid(params, "projective", (1, 1, 4, 5))
    assert H.shape == (1, 3, 3) and grid.shape == (1, 4, 5, 2)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="transform"):
        SpatialTransformer(_loc(), "similarity")
    with pytest.raises(ValueError, match="impl"):
        SpatialTransformer(_loc(), impl="cuda")
    with pytest.raises(ValueError, match="out_size"):
        SpatialTransformer(_loc(), out_size=(0, 4))
    with pytest.raises(TypeError, match="nn.Module"):
        SpatialTransformer(lambda x: x)
    st = SpatialTransformer(_loc())
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        st(torch.zeros(2, 12, 12))
    with pytest.raises(TypeError, match="floating-point"):
        st(torch.zeros(1, 2, 12, 12, dtype=torch.long))
