"""torchvision's own ``TestDeformConv`` tests (CPU), adapted to the package's API, on every impl.

Source: ``test/test_ops.py`` of pytorch/vision, class ``TestDeformConv``: ``get_fn_args`` (6 → 2 channels, 2 weight
groups, 3 offset groups, a 3 × 2 kernel, stride (2, 1), padding (1, 0), dilation (2, 1) on 5 × 4 images, modulated,
contiguous or not), ``expected_fn`` (a loop over every output, tap and channel with torchvision's
``bilinear_interpolate``: corners outside the image read 0), ``test_forward`` (batch 0 and 33, with and without the
mask), ``test_backward`` (``gradcheck(..., nondet_tol=1e-5, fast_mode=True)`` with and without the mask),
``test_wrong_sizes`` (``RuntimeError`` matching "the shape of the offset" and ``mask.shape[1] is not valid``).
``expected_fn`` is rewritten here, same arithmetic.

Adapted: ``ops.deform_conv2d`` → :func:`stn_course.deform.deform_conv2d` with ``impl=`` ``"fast"``,
``"reference"`` and ``"triton"`` (lesson 7's kernels; on a machine without CUDA under ``TRITON_INTERPRET=1``, so its
batches are small: 0 and 3 instead of 33); ``ops.DeformConv2d`` → :class:`stn_course.deform.DeformConv2d` (same
arguments in the same order; ``forward(input, offset, mask)`` as torchvision's). ``test_compare_cpu_cuda_grads``
needs CUDA; its idea – one weight gradient whatever computes it, contiguous or not – runs here across the impls at a
small size.

Not supported, so not adapted: TorchScript (``torch.jit.script`` in ``test_backward`` and
``test_forward_scriptability``; ``torch.compile`` is the supported compiler), FX leaf tracing (``test_is_leaf_node``),
``optests.generate_opcheck_tests`` (no registered custom op) and ``test_autocast`` (CUDA autocast).
"""
from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from stn_course.deform import DeformConv2d, deform_conv2d

IMPLS = ["fast", "reference", "triton"]  # impl="triton" tests are marked triton automatically (conftest.py)
DTYPE = torch.float64

IN_CHANNELS, OUT_CHANNELS, KERNEL, GROUPS, OFFSET_GROUPS = 6, 2, (3, 2), 2, 3
STRIDE, PADDING, DILATION, IN_SIZE = (2, 1), (1, 0), (2, 1), (5, 4)


def _batches(impl: str) -> tuple[int, ...]:
    return (0, 3) if impl == "triton" else (0, 33)


# ---------------------------------------------------------------------------------------------------------------
# expected_fn: torchvision's loop reference
# ---------------------------------------------------------------------------------------------------------------


def _bilinear(plane: torch.Tensor, y: float, x: float) -> float:
    """torchvision's ``bilinear_interpolate``: the four neighbours ``floor`` and ``floor + 1``, those outside read 0."""
    height, width = plane.shape
    y0, x0 = math.floor(y), math.floor(x)
    value = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                value += wy * wx * float(plane[yy, xx])
    return value


def expected_fn(x, weight, offset, mask, bias, stride, padding, dilation) -> torch.Tensor:
    """Deformable convolution one output, tap and channel at a time (torchvision's ``TestDeformConv.expected_fn``)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    kh, kw = weight.shape[-2:]
    n, c_in, h, w = x.shape
    c_out, c_per_group = weight.shape[0], weight.shape[1]
    h_out = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    w_out = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    offset_groups = offset.shape[1] // (2 * kh * kw)
    c_per_offset_group = c_in // offset_groups
    o_per_group = c_out // (c_in // c_per_group)
    x, weight, offset = x.detach(), weight.detach(), offset.detach()
    mask = None if mask is None else mask.detach()
    out = torch.zeros(n, c_out, h_out, w_out, dtype=x.dtype)
    for b in range(n):
        for o in range(c_out):
            group = o // o_per_group
            for i in range(h_out):
                for j in range(w_out):
                    total = 0.0
                    for di in range(kh):
                        for dj in range(kw):
                            for c in range(c_per_group):
                                ci = group * c_per_group + c
                                tap = (ci // c_per_offset_group) * kh * kw + di * kw + dj
                                y = sh * i - ph + dh * di + float(offset[b, 2 * tap, i, j])
                                xx = sw * j - pw + dw * dj + float(offset[b, 2 * tap + 1, i, j])
                                m = 1.0 if mask is None else float(mask[b, tap, i, j])
                                total += m * float(weight[o, c, di, dj]) * _bilinear(x[b, ci], y, xx)
                    out[b, o, i, j] = total
    return out + bias.detach().view(1, c_out, 1, 1)


# ---------------------------------------------------------------------------------------------------------------
# get_fn_args and make_obj
# ---------------------------------------------------------------------------------------------------------------


def get_fn_args(contiguous: bool, batch_sz: int, dtype=DTYPE, seed: int = 0):
    """torchvision's arguments: ``x, weight, offset, mask, bias, stride, padding, dilation`` (all requiring grad);
    ``contiguous=False`` gives every tensor a permuted memory layout with the same values."""
    gen = torch.Generator().manual_seed(seed)
    (kh, kw), (h, w) = KERNEL, IN_SIZE
    h_out = (h + 2 * PADDING[0] - (DILATION[0] * (kh - 1) + 1)) // STRIDE[0] + 1
    w_out = (w + 2 * PADDING[1] - (DILATION[1] * (kw - 1) + 1)) // STRIDE[1] + 1
    x = torch.rand(batch_sz, IN_CHANNELS, h, w, dtype=dtype, generator=gen)
    offset = torch.randn(batch_sz, OFFSET_GROUPS * 2 * kh * kw, h_out, w_out, dtype=dtype, generator=gen)
    mask = torch.randn(batch_sz, OFFSET_GROUPS * kh * kw, h_out, w_out, dtype=dtype, generator=gen)
    weight = torch.randn(OUT_CHANNELS, IN_CHANNELS // GROUPS, kh, kw, dtype=dtype, generator=gen)
    bias = torch.randn(OUT_CHANNELS, dtype=dtype, generator=gen)
    if not contiguous:
        x = x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)
        offset = offset.permute(1, 3, 0, 2).contiguous().permute(2, 0, 3, 1)
        mask = mask.permute(1, 3, 0, 2).contiguous().permute(2, 0, 3, 1)
        weight = weight.permute(3, 2, 0, 1).contiguous().permute(2, 3, 1, 0)
        assert not (x.is_contiguous() or offset.is_contiguous() or weight.is_contiguous()) or batch_sz == 0
    tensors = [t.requires_grad_() for t in (x, weight, offset, mask, bias)]
    return (*tensors, STRIDE, PADDING, DILATION)


def make_obj(impl: str, in_channels=IN_CHANNELS, out_channels=OUT_CHANNELS, kernel_size=KERNEL, groups=GROUPS):
    return DeformConv2d(in_channels, out_channels, kernel_size, stride=STRIDE, padding=PADDING, dilation=DILATION,
                        groups=groups, impl=impl)


# ---------------------------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("impl", IMPLS)
def test_forward(impl, contiguous):
    for batch_sz in _batches(impl):
        x, _, offset, mask, _, stride, padding, dilation = get_fn_args(contiguous, batch_sz)
        layer = make_obj(impl).to(dtype=DTYPE)
        weight, bias = layer.weight.data, layer.bias.data
        res = layer(x, offset, mask)
        expected = expected_fn(x, weight, offset, mask, bias, stride, padding, dilation)
        torch.testing.assert_close(res.detach(), expected, rtol=1e-5, atol=1e-5)
        res = layer(x, offset)  # no modulation
        expected = expected_fn(x, weight, offset, None, bias, stride, padding, dilation)
        torch.testing.assert_close(res.detach(), expected, rtol=1e-5, atol=1e-5)


def test_wrong_sizes():
    """torchvision's exception type and wording for a wrong offset and a wrong mask (ours: ValueError too)."""
    x, _, offset, mask, _, stride, padding, dilation = get_fn_args(True, batch_sz=10)
    layer = DeformConv2d(IN_CHANNELS, OUT_CHANNELS, KERNEL, stride=stride, padding=padding, dilation=dilation,
                         groups=GROUPS)
    with pytest.raises(RuntimeError, match="the shape of the offset"):
        layer(x, torch.rand_like(offset[:, :2]))
    with pytest.raises(RuntimeError, match=r"mask.shape\[1\] is not valid"):
        layer(x, offset, torch.rand_like(mask[:, :2]))
    with pytest.raises(ValueError, match="the shape of the offset"):  # the package's own type still holds
        deform_conv2d(x, torch.rand_like(offset[:, :2]), layer.weight, layer.bias, stride, padding, dilation)


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("impl", IMPLS)
def test_backward(impl, contiguous):
    for batch_sz in (0, 2) if impl == "triton" else (0, 5):
        x, weight, offset, mask, bias, stride, padding, dilation = get_fn_args(contiguous, batch_sz)

        def func(x_, offset_, mask_, weight_, bias_):
            return deform_conv2d(x_, offset_, weight_, bias_, stride=stride, padding=padding, dilation=dilation,
                                 mask=mask_, impl=impl)

        assert gradcheck(func, (x, offset, mask, weight, bias), nondet_tol=1e-5, fast_mode=True)

        def func_no_mask(x_, offset_, weight_, bias_):
            return deform_conv2d(x_, offset_, weight_, bias_, stride=stride, padding=padding, dilation=dilation,
                                 mask=None, impl=impl)

        assert gradcheck(func_no_mask, (x, offset, weight, bias), nondet_tol=1e-5, fast_mode=True)


@pytest.mark.parametrize("contiguous", [True, False])
def test_compare_grads_across_impls(contiguous):
    """test_compare_cpu_cuda_grads's idea off CUDA: the weight gradient of ``out.mean()`` (9 → 9 channels, 3 × 3,
    padding 1, modulated) is the same whichever impl computes it, for contiguous and permuted tensors."""
    gen = torch.Generator().manual_seed(2598)
    init_weight = torch.randn(9, 9, 3, 3, generator=gen)
    img = torch.randn(2, 9, 7, 5, generator=gen)
    offset = torch.rand(2, 2 * 3 * 3, 7, 5, generator=gen)
    mask = torch.rand(2, 3 * 3, 7, 5, generator=gen)
    if not contiguous:
        img = img.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)
        offset = offset.permute(1, 3, 0, 2).contiguous().permute(2, 0, 3, 1)
        mask = mask.permute(1, 3, 0, 2).contiguous().permute(2, 0, 3, 1)
    grads = {}
    for impl in ("fast", "reference"):
        weight = init_weight.clone().requires_grad_()
        w = weight if contiguous else weight.permute(3, 2, 0, 1).contiguous().permute(2, 3, 1, 0)
        deform_conv2d(img, offset, w, padding=1, mask=mask, impl=impl).mean().backward()
        grads[impl] = weight.grad
    torch.testing.assert_close(grads["fast"], grads["reference"])


@pytest.mark.triton
def test_compare_grads_triton():
    """The same comparison for lesson 7's kernels (small, for the interpreter), float32 as on CUDA."""
    gen = torch.Generator().manual_seed(2598)
    init_weight = torch.randn(3, 3, 3, 3, generator=gen)
    img, offset = torch.randn(2, 3, 5, 4, generator=gen), torch.rand(2, 18, 5, 4, generator=gen)
    mask = torch.rand(2, 9, 5, 4, generator=gen)
    grads = {}
    for impl in ("fast", "triton"):
        weight = init_weight.clone().requires_grad_()
        deform_conv2d(img, offset, weight, padding=1, mask=mask, impl=impl).mean().backward()
        grads[impl] = weight.grad
    torch.testing.assert_close(grads["triton"], grads["fast"], rtol=1e-5, atol=1e-6)


def test_layer_signature_is_torchvisions():
    """``DeformConv2d(in, out, kernel_size, stride, padding, dilation, groups, bias)`` positionally, as torchvision."""
    layer = DeformConv2d(IN_CHANNELS, OUT_CHANNELS, KERNEL, STRIDE, PADDING, DILATION, GROUPS, False)
    assert (layer.stride, layer.padding, layer.dilation, layer.groups, layer.bias) == (
        STRIDE, PADDING, DILATION, GROUPS, None)
    assert layer.weight.shape == (OUT_CHANNELS, IN_CHANNELS // GROUPS, *KERNEL)
