"""Tests for stn_course.deform: both implementations against an independent float64 loop nest, identities with
F.conv2d, gradcheck, the module, the helpers and the error messages."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course import sampling
from stn_course.deform import (
    DeformConv2d,
    bilinear_sample_pixels,
    conv_output_size,
    deform_conv2d,
    offsets_from_affine,
    pack_offsets,
    regular_sampling_positions,
    sampling_positions,
    unpack_offsets,
)

IMPLS = ("reference", "fast")


# ----------------------------------------------------------------------------------------------------------------
# Independent reference: plain Python loops, float64, written from torchvision's C++ kernel's definition
# ----------------------------------------------------------------------------------------------------------------


def _bilinear_loop(img: np.ndarray, y: float, x: float) -> float:
    """torchvision's bilinear_interpolate: 0 beyond (-1, H) x (-1, W), out-of-range corners read 0."""
    h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    total = 0.0
    for yy, xx, wt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                       (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        if 0 <= yy < h and 0 <= xx < w:
            total += wt * img[yy, xx]
    return total


def deform_conv2d_loops(input, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mask=None):
    """out[n, o, ho, wo] = bias[o] + sum_{c in group(o), i, j} weight[o, c, i, j] * mask * x[n, c](y, x)."""
    x_np = input.detach().double().numpy()
    off = offset.detach().double().numpy()
    w_np = weight.detach().double().numpy()
    m_np = None if mask is None else mask.detach().double().numpy()
    n_batch, c_in, h, w = x_np.shape
    c_out, c_per_group, kh, kw = w_np.shape
    groups = c_in // c_per_group
    o_per_group = c_out // groups
    offset_groups = off.shape[1] // (2 * kh * kw)
    c_per_offset_group = c_in // offset_groups
    h_out = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n_batch, c_out, h_out, w_out))
    for n in range(n_batch):
        for o in range(c_out):
            g = o // o_per_group
            for ho in range(h_out):
                for wo in range(w_out):
                    acc = 0.0 if bias is None else float(bias[o])
                    for c_local in range(c_per_group):
                        c = g * c_per_group + c_local
                        og = c // c_per_offset_group
                        for i in range(kh):
                            for j in range(kw):
                                k = i * kw + j
                                dy = off[n, og * 2 * kh * kw + 2 * k, ho, wo]
                                dx = off[n, og * 2 * kh * kw + 2 * k + 1, ho, wo]
                                y = ho * stride[0] - padding[0] + i * dilation[0] + dy
                                xx = wo * stride[1] - padding[1] + j * dilation[1] + dx
                                value = _bilinear_loop(x_np[n, c], y, xx)
                                if m_np is not None:
                                    value *= m_np[n, og * kh * kw + k, ho, wo]
                                acc += w_np[o, c_local, i, j] * value
                    out[n, o, ho, wo] = acc
    return torch.from_numpy(out)


# (N, C_in, C_out, H, W, (kh, kw), stride, padding, dilation, groups, offset_groups, with mask)
CONFIGS = [
    (1, 2, 3, 5, 5, (3, 3), (1, 1), (0, 0), (1, 1), 1, 1, False),
    (1, 2, 3, 5, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, True),
    (2, 3, 2, 6, 7, (2, 3), (2, 1), (1, 2), (1, 2), 1, 1, True),
    (2, 4, 6, 5, 6, (3, 2), (1, 2), (2, 1), (2, 1), 2, 2, True),
    (3, 4, 2, 4, 7, (3, 1), (2, 2), (1, 0), (1, 2), 1, 4, False),
    (2, 6, 3, 5, 4, (1, 3), (1, 1), (0, 1), (1, 1), 3, 1, True),
    (1, 4, 4, 3, 3, (1, 1), (1, 1), (0, 0), (1, 1), 4, 2, False),
    (2, 2, 4, 1, 6, (1, 2), (1, 1), (0, 0), (1, 1), 1, 2, True),
]
CONFIG_IDS = [f"cfg{i}" for i in range(len(CONFIGS))]


def make_case(cfg, dtype=torch.float64, seed=0, reach=2.5, bias=True):
    n, c_in, c_out, h, w, (kh, kw), stride, padding, dilation, groups, og, with_mask = cfg
    g = torch.Generator().manual_seed(seed)
    h_out = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    w_out = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    x = torch.randn(n, c_in, h, w, generator=g, dtype=torch.float64)
    offset = torch.randn(n, 2 * og * kh * kw, h_out, w_out, generator=g, dtype=torch.float64) * reach
    weight = torch.randn(c_out, c_in // groups, kh, kw, generator=g, dtype=torch.float64)
    b = torch.randn(c_out, generator=g, dtype=torch.float64) if bias else None
    mask = torch.rand(n, og * kh * kw, h_out, w_out, generator=g, dtype=torch.float64) if with_mask else None
    kwargs = dict(stride=stride, padding=padding, dilation=dilation)
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    return cast(x), cast(offset), cast(weight), cast(b), cast(mask), kwargs


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("impl", IMPLS)
def test_matches_loop_nest_float64(cfg, impl):
    x, offset, weight, bias, mask, kw = make_case(cfg)
    # offsets reach outside the image: some samples are fully outside, some straddle the border
    positions = sampling_positions(offset, weight.shape[-2:], **kw)
    assert (positions[..., 0] < -1).any() or (positions[..., 0] > x.shape[2]).any()
    expected = deform_conv2d_loops(x, offset, weight, bias, mask=mask, **kw)
    actual = deform_conv2d(x, offset, weight, bias, mask=mask, impl=impl, **kw)
    assert actual.dtype == torch.float64 and actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cfg", CONFIGS[1:5], ids=CONFIG_IDS[1:5])
@pytest.mark.parametrize("impl", IMPLS)
def test_matches_loop_nest_float32(cfg, impl):
    x, offset, weight, bias, mask, kw = make_case(cfg, dtype=torch.float32, seed=1)
    expected = deform_conv2d_loops(x, offset, weight, bias, mask=mask, **kw)  # float64 from the float32 values
    actual = deform_conv2d(x, offset, weight, bias, mask=mask, impl=impl, **kw)
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual.double(), expected, rtol=1e-5, atol=1e-5)


def test_samples_exactly_on_and_beyond_the_border():
    """Positions at -1, H, W exactly, just inside and far outside: values and zeros like torchvision."""
    x = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4) + 1  # H = 3, W = 4
    weight = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    targets = [(-1.0, 0.0), (-0.5, 0.0), (2.5, 0.0), (3.0, 0.0), (0.0, -1.0), (0.0, 3.25), (0.0, 4.0), (-7.0, 0.0)]
    offset = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    for case, (ty, tx) in enumerate(targets):  # output location (ho, wo) reads at its position + offset
        ho, wo = divmod(case, 4)
        offset[0, 0, ho, wo], offset[0, 1, ho, wo] = ty - ho, tx - wo
    expected = deform_conv2d_loops(x, offset, weight)
    for impl in IMPLS:
        torch.testing.assert_close(deform_conv2d(x, offset, weight, impl=impl), expected, rtol=1e-12, atol=1e-12)
    got = expected.flatten()[:8].tolist()
    assert got == pytest.approx([0.0, 0.5 * 1, 0.5 * 9, 0.0, 0.0, 0.75 * 4, 0.0, 0.0], abs=1e-15)


# ----------------------------------------------------------------------------------------------------------------
# Identities
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("impl", IMPLS)
def test_zero_offsets_and_unit_mask_equal_conv2d(cfg, impl):
    x, offset, weight, bias, mask, kw = make_case(cfg)
    groups = x.shape[1] // weight.shape[1]
    offset = torch.zeros_like(offset)
    mask = None if mask is None else torch.ones_like(mask)
    expected = F.conv2d(x, weight, bias, groups=groups, **kw)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, bias, mask=mask, impl=impl, **kw), expected,
                               rtol=1e-12, atol=1e-12)


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """shifted[..., y, x] = x[..., y + dy, x + dx], zero outside."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    yt, xt = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
    out[..., ys, xs] = x[..., yt, xt]
    return out


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_integer_offsets_equal_conv_of_shifted_input(impl, dtype):
    """Offset group g shifted by a constant integer (dy_g, dx_g) == conv2d of the input shifted the same way.

    (Padding 0: with padding, the conv would read the shifted image's zero padding where the deformable conv still
    reads real pixels.)"""
    cfg = (2, 4, 6, 6, 7, (3, 2), (1, 1), (0, 0), (1, 2), 2, 2, False)
    x, offset, weight, bias, _, kw = make_case(cfg, dtype=dtype)
    shifts = [(1, -2), (-3, 2)]
    offset = torch.zeros_like(offset).view(2, 2, 6, 2, *offset.shape[-2:])
    for g, (dy, dx) in enumerate(shifts):
        offset[:, g, :, 0], offset[:, g, :, 1] = dy, dx
    offset = offset.flatten(1, 3)
    shifted = torch.cat([_shift(x[:, 2 * g:2 * g + 2], dy, dx) for g, (dy, dx) in enumerate(shifts)], dim=1)
    expected = F.conv2d(shifted, weight, bias, groups=2, **kw)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(deform_conv2d(x, offset, weight, bias, impl=impl, **kw), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("impl", IMPLS)
def test_mask_scales_each_tap(impl):
    """A mask that is 0 everywhere except tap k equals a conv with only tap k of the weight."""
    cfg = (2, 3, 2, 5, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, True)
    x, offset, weight, bias, mask, kw = make_case(cfg)
    mask = torch.zeros_like(mask)
    mask[:, 4] = 0.5
    only_centre = torch.zeros_like(weight)
    only_centre[:, :, 1, 1] = 0.5 * weight[:, :, 1, 1]
    out = deform_conv2d(x, torch.zeros_like(offset), weight, bias, mask=mask, impl=impl, **kw)
    torch.testing.assert_close(out, F.conv2d(x, only_centre, bias, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_reference_and_fast_agree_with_gradients(cfg):
    x, offset, weight, bias, mask, kw = make_case(cfg, seed=3)
    leaves = [t.clone().requires_grad_() for t in (x, offset, weight, bias) + ((mask,) if mask is not None else ())]
    outs, grads = [], []
    for impl in IMPLS:
        out = deform_conv2d(*leaves[:4], mask=leaves[4] if mask is not None else None, impl=impl, **kw)
        grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
        outs.append(out)
        grads.append(torch.autograd.grad(out, leaves, grad_out))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)
    for g_ref, g_fast in zip(*grads):
        torch.testing.assert_close(g_ref, g_fast, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------------------------------------------
# gradcheck (float64), offsets away from the integer kinks of bilinear interpolation
# ----------------------------------------------------------------------------------------------------------------


def _away_from_kinks(offset: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    whole = torch.randint(-3, 3, offset.shape, generator=g).to(offset.dtype)
    return whole + 0.2 + 0.6 * torch.rand(offset.shape, generator=g, dtype=offset.dtype)


GRAD_CONFIGS = [
    (2, 2, 2, 4, 5, (2, 2), (1, 1), (1, 1), (1, 1), 1, 1, True),
    (1, 4, 2, 5, 6, (2, 3), (2, 1), (1, 0), (1, 2), 2, 2, True),
    (2, 2, 3, 3, 4, (1, 2), (1, 1), (0, 1), (1, 1), 1, 2, False),
]


@pytest.mark.parametrize("cfg", GRAD_CONFIGS, ids=[f"g{i}" for i in range(len(GRAD_CONFIGS))])
@pytest.mark.parametrize("impl", IMPLS)
def test_gradcheck(cfg, impl):
    x, offset, weight, bias, mask, kw = make_case(cfg, seed=5)
    offset = _away_from_kinks(offset, seed=5)
    leaves = [t.clone().requires_grad_() for t in (x, offset, weight, bias) + ((mask,) if mask is not None else ())]

    def fn(*tensors):
        m = tensors[4] if len(tensors) > 4 else None
        return deform_conv2d(*tensors[:4], mask=m, impl=impl, **kw)

    assert torch.autograd.gradcheck(fn, tuple(leaves), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("impl", IMPLS)
def test_offset_gradient_by_hand(impl):
    """Moving the sample towards a brighter pixel increases the output: the offset gradient has the right sign."""
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    x[0, 0, 1, 2] = 1.0  # bright pixel to the right of the centre
    weight = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    # the centre output reads at (1.25, 1.3): ly = 0.25, lx = 0.3 (away from the integer kinks)
    offset = torch.tensor([[[[0.25]], [[0.3]]]], dtype=torch.float64).expand(1, 2, 3, 3).clone().requires_grad_()
    out = deform_conv2d(x, offset, weight, impl=impl)
    assert out[0, 0, 1, 1].item() == pytest.approx(0.75 * 0.3)  # (1 - ly)·lx·1
    out[0, 0, 1, 1].backward()
    assert offset.grad[0, 1, 1, 1] == pytest.approx(0.75)  # d/dx = (1 - ly)·(v01 - v00)
    assert offset.grad[0, 0, 1, 1] == pytest.approx(-0.3)  # d/dy = lx·(v11 - v01): moving down leaves the bright row


# ----------------------------------------------------------------------------------------------------------------
# Module
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("modulated", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_fresh_module_is_a_plain_convolution(modulated, impl):
    torch.manual_seed(0)
    layer = DeformConv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2, offset_groups=2,
                         modulated=modulated, impl=impl).double()
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64)
    expected = F.conv2d(x, layer.weight, layer.bias, stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    offset, mask = layer.offsets_and_mask(x)
    assert offset.shape == (2, 2 * 2 * 6, *expected.shape[-2:]) and (offset == 0).all()
    if modulated:
        assert mask.shape == (2, 2 * 6, *expected.shape[-2:]) and (mask == 1).all()
    else:
        assert mask is None


def test_module_learns_offsets_and_accepts_external_ones():
    torch.manual_seed(0)
    layer = DeformConv2d(2, 3, 3, padding=1, modulated=True)
    x = torch.randn(2, 2, 6, 6)
    layer(x).square().sum().backward()
    assert layer.offset_conv.weight.grad.abs().sum() > 0  # the predictor receives gradient at its zero init
    assert layer.weight.grad.shape == layer.weight.shape and layer.bias.grad.shape == (3,)
    offset = torch.randn(2, 18, 6, 6)
    mask = torch.rand(2, 9, 6, 6)
    torch.testing.assert_close(layer(x, offset, mask),
                               deform_conv2d(x, offset, layer.weight, layer.bias, padding=1, mask=mask))
    assert "modulated=True" in repr(layer)


def test_module_parameters_and_errors():
    layer = DeformConv2d(4, 8, 3, groups=2, offset_groups=4, bias=False)
    assert layer.bias is None and layer.weight.shape == (8, 2, 3, 3)
    assert layer.offset_conv.out_channels == 2 * 4 * 9
    assert DeformConv2d(4, 8, 3, offset_groups=2, modulated=True).offset_conv.out_channels == 3 * 2 * 9
    with pytest.raises(ValueError, match="divisible by groups"):
        DeformConv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="offset_groups"):
        DeformConv2d(4, 6, 3, offset_groups=3)
    with pytest.raises(ValueError, match="impl"):
        DeformConv2d(4, 6, 3, impl="cuda")


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------


def test_regular_sampling_positions():
    pos = regular_sampling_positions(2, 3, (2, 3), stride=(2, 1), padding=(1, 2), dilation=(3, 2))
    assert pos.shape == (6, 2, 3, 2) and pos.dtype == torch.float64
    for i in range(2):
        for j in range(3):
            for ho in range(2):
                for wo in range(3):
                    assert pos[i * 3 + j, ho, wo].tolist() == [ho * 2 - 1 + i * 3, wo * 1 - 2 + j * 2]


def test_regular_positions_reproduce_unfold():
    """Sampling at the regular positions is F.unfold (im2col) of the zero-padded input."""
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    pos = regular_sampling_positions(3, 5, (3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2))
    k = pos.shape[0]
    y = pos[..., 0].reshape(1, -1).expand(2, -1)
    xs = pos[..., 1].reshape(1, -1).expand(2, -1)
    sampled = bilinear_sample_pixels(x, x=xs, y=y).view(2, 3 * k, 15)  # (N, C·K, P) in unfold's (c, k) order
    expected = F.unfold(x, (3, 2), dilation=(1, 2), padding=(1, 1), stride=(2, 1))
    torch.testing.assert_close(sampled, expected, rtol=0, atol=0)


def test_bilinear_sample_pixels_matches_grid_sample():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 7, generator=g, dtype=torch.float64)
    y = torch.rand(2, 4, 6, generator=g, dtype=torch.float64) * 9 - 2
    xs = torch.rand(2, 4, 6, generator=g, dtype=torch.float64) * 11 - 2
    grid = torch.stack([2 * xs / 6 - 1, 2 * y / 4 - 1], dim=-1)  # align_corners=True normalization
    expected = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    torch.testing.assert_close(bilinear_sample_pixels(x, x=xs, y=y), expected, rtol=1e-12, atol=1e-12)
    # positionally the package's one order, (x, y) like grid_sample's last dim and sampling.bilinear_interpolate
    torch.testing.assert_close(bilinear_sample_pixels(x, xs, y), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sampling.bilinear_interpolate(x, xs, y), expected, rtol=1e-12, atol=1e-12)


def test_pack_offsets_layout_is_dy_dx_interleaved_per_tap():
    dy = torch.arange(2 * 3).view(1, 2, 3, 1, 1).expand(1, 2, 3, 1, 2).double()
    dx = -dy - 100
    packed = pack_offsets(dy, dx)
    assert packed.shape == (1, 12, 1, 2)
    # offset group 0: [dy0, dx0, dy1, dx1, dy2, dx2], then offset group 1
    assert packed[0, :, 0, 0].tolist() == [0, -100, 1, -101, 2, -102, 3, -103, 4, -104, 5, -105]
    back_dy, back_dx = unpack_offsets(packed, (1, 3))
    assert torch.equal(back_dy, dy) and torch.equal(back_dx, dx)
    with pytest.raises(ValueError, match="dy, dx"):
        pack_offsets(dy, dx[..., :1])
    with pytest.raises(ValueError, match=r"2\*offset_groups\*kh\*kw"):
        unpack_offsets(packed, (2, 2))


def test_offsets_from_affine_translation_and_identity():
    eye = torch.eye(3, dtype=torch.float64).unsqueeze(0)
    assert (offsets_from_affine(eye, 4, 5, 3) == 0).all()
    move = eye.clone()
    move[0, 0, 2], move[0, 1, 2] = 2.0, -0.5  # read 2 px to the right (x) and 0.5 px up (y)
    offset = offsets_from_affine(move, 4, 5, 3)
    assert offset.shape == (1, 18, 4, 5)
    assert (offset[:, 0::2] == -0.5).all() and (offset[:, 1::2] == 2.0).all()  # dy first, then dx


@pytest.mark.parametrize("impl", IMPLS)
def test_offsets_from_affine_equal_warp_then_convolve(impl):
    """An STN (one global warp) followed by a conv == a deformable conv with offsets_from_affine (padding 0)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 9, 8, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    angle = torch.tensor([0.3, -0.7], dtype=torch.float64)
    a = torch.zeros(2, 2, 3, dtype=torch.float64)  # pixel-space map (x, y, 1) -> where to read
    a[:, 0, 0], a[:, 0, 1], a[:, 1, 0], a[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    a[:, 0, 2], a[:, 1, 2] = 1.5, -0.75
    h, w = x.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    src_x = a[:, 0, 0, None, None] * xs + a[:, 0, 1, None, None] * ys + a[:, 0, 2, None, None]
    src_y = a[:, 1, 0, None, None] * xs + a[:, 1, 1, None, None] * ys + a[:, 1, 2, None, None]
    grid = torch.stack([2 * src_x / (w - 1) - 1, 2 * src_y / (h - 1) - 1], dim=-1)
    warped = F.grid_sample(x, grid, align_corners=True, padding_mode="zeros")
    expected = F.conv2d(warped, weight)
    offset = offsets_from_affine(a, h - 2, w - 2, 3)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, impl=impl), expected, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------------------------------------------
# Errors that name the expected shape
# ----------------------------------------------------------------------------------------------------------------


def _valid():
    x = torch.randn(2, 4, 6, 6)
    return x, torch.zeros(2, 18, 6, 6), torch.randn(5, 4, 3, 3), torch.zeros(5), torch.ones(2, 9, 6, 6)


def test_errors_name_the_expected_shape():
    x, offset, weight, bias, mask = _valid()
    with pytest.raises(ValueError, match=r"offset: expected shape \(N, 2\*offset_groups\*kh\*kw, H_out, W_out\)"):
        deform_conv2d(x, offset[:, :17], weight, padding=1)
    with pytest.raises(ValueError, match=r"\(2, 18\*offset_groups, 6, 6\).*got \(2, 18, 4, 4\)"):
        deform_conv2d(x, offset[..., :4, :4], weight, padding=1)
    with pytest.raises(ValueError, match="offset_groups dividing C_in = 4"):
        deform_conv2d(x, torch.zeros(2, 54, 6, 6), weight, padding=1)  # 3 offset groups for 4 channels
    with pytest.raises(ValueError, match=r"offset: expected a 4-D tensor"):
        deform_conv2d(x, offset[0], weight, padding=1)
    with pytest.raises(ValueError, match=r"mask: expected shape \(N, offset_groups\*kh\*kw, H_out, W_out\) = "
                                         r"\(2, 9, 6, 6\), got \(2, 18, 6, 6\)"):
        deform_conv2d(x, offset, weight, padding=1, mask=torch.ones(2, 18, 6, 6))
    with pytest.raises(ValueError, match=r"weight: expected shape \(C_out, C_in / groups, kh, kw\)"):
        deform_conv2d(x, offset, torch.randn(5, 3, 3, 3), padding=1)
    with pytest.raises(ValueError, match=r"weight: expected a 4-D tensor"):
        deform_conv2d(x, offset, torch.randn(5, 4, 9), padding=1)
    with pytest.raises(ValueError, match=r"bias: expected shape \(C_out,\) = \(5,\)"):
        deform_conv2d(x, offset, weight, torch.zeros(4), padding=1)
    with pytest.raises(ValueError, match=r"input: expected a 4-D tensor of shape \(N, C_in, H, W\)"):
        deform_conv2d(x[0], offset, weight, padding=1)
    with pytest.raises(ValueError, match="too small"):
        deform_conv2d(x[..., :2, :2], offset, weight)
    with pytest.raises(ValueError, match="batch|offset"):
        deform_conv2d(x[:1], offset, weight, padding=1)
    with pytest.raises(TypeError, match="same dtype"):
        deform_conv2d(x, offset.double(), weight, padding=1)
    with pytest.raises(TypeError, match="floating-point"):
        deform_conv2d(x.long(), offset, weight, padding=1)
    with pytest.raises(TypeError, match="torch.Tensor"):
        deform_conv2d(x.numpy(), offset, weight, padding=1)
    with pytest.raises(ValueError, match="impl"):
        deform_conv2d(x, offset, weight, padding=1, impl="cuda")
    with pytest.raises(TypeError, match="stride"):
        deform_conv2d(x, offset, weight, stride="two", padding=1)
    # and the valid call works
    assert deform_conv2d(x, offset, weight, bias, padding=1, mask=mask).shape == (2, 5, 6, 6)


@pytest.mark.parametrize("impl", IMPLS)
def test_non_contiguous_inputs(impl):
    """channels_last input, a sliced offset and a transposed mask give the same numbers as contiguous ones."""
    x, offset, weight, bias, mask, kw = make_case(CONFIGS[3], seed=11)
    expected = deform_conv2d(x, offset, weight, bias, mask=mask, impl=impl, **kw)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    offset_nc = torch.cat([offset, torch.zeros_like(offset)], dim=1)[:, :offset.shape[1]]  # a non-contiguous slice
    mask_nc = mask.transpose(2, 3).contiguous().transpose(2, 3)
    assert not offset_nc.is_contiguous() and not mask_nc.is_contiguous()
    out = deform_conv2d(x_cl, offset_nc, weight, bias, mask=mask_nc, impl=impl, **kw)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
