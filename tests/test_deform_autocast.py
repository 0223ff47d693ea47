"""Deformable convolution under autocast (issue 24): torchvision's policy – float32 inside, the input's dtype out –
so that a ``DeformConv2d`` with float32 weights takes the bfloat16/float16 features autocast's convolutions give it.
Outside autocast a dtype mismatch keeps its error.

CPU autocast (bfloat16) is what runs here; the wrapper keys on the input's device type only, so CUDA autocast
takes the same code (not faked: ``torch.autocast("cuda")`` without a GPU disables itself). The reference is the
same convolution in float64 on the same (bfloat16) numbers, rounded once to bfloat16: the float32 computation is
within a float32 rounding of it, so the outputs agree to one bfloat16 rounding (relative 2⁻⁸)."""
from __future__ import annotations

import pytest
import torch

from stn_course import gpu
from stn_course._validation import DTypeError
from stn_course.deform import DeformConv2d, deform_conv2d

BF16 = torch.bfloat16


def _features_and_layer(modulated: bool, impl: str = "fast"):
    """bfloat16 features from a float32 convolution under CPU autocast, and a float32 deformable layer whose
    offset predictor is moved off zero (so that the offsets are fractional and the mask not 1)."""
    torch.manual_seed(0)
    stem = torch.nn.Conv2d(3, 4, 3, padding=1)
    layer = DeformConv2d(4, 6, 3, padding=1, modulated=modulated, impl=impl)
    with torch.no_grad():
        layer.offset_conv.weight.normal_(0, 0.3)
    return stem, layer, torch.rand(2, 3, 7, 8)


@pytest.mark.parametrize("modulated", [False, True], ids=["v1", "v2"])
def test_float32_layer_takes_bfloat16_features_under_autocast(modulated):
    stem, layer, x = _features_and_layer(modulated)
    with torch.autocast("cpu", dtype=BF16):
        features = stem(x)
        offset, mask = layer.offsets_and_mask(features)
        out = layer(features, offset, mask) if modulated else layer(features)
    assert features.dtype == offset.dtype == BF16 and layer.weight.dtype == torch.float32
    assert out.dtype == BF16  # the input's dtype, as torchvision returns it
    wide = lambda t: None if t is None else t.detach().double()  # noqa: E731
    expected = deform_conv2d(wide(features), wide(offset), wide(layer.weight), wide(layer.bias), padding=1,
                             mask=wide(mask)).to(BF16)
    torch.testing.assert_close(out.float(), expected.float(), rtol=2**-8, atol=1e-6)


def test_gradients_reach_the_float32_parameters_under_autocast():
    stem, layer, x = _features_and_layer(modulated=True)
    with torch.autocast("cpu", dtype=BF16):
        out = layer(stem(x))
    out.float().square().mean().backward()
    for p in (layer.weight, layer.bias, layer.offset_conv.weight, stem.weight):
        assert p.grad is not None and p.grad.dtype == torch.float32 and p.grad.abs().sum() > 0


def test_outside_autocast_a_dtype_mismatch_keeps_its_error():
    _, layer, _ = _features_and_layer(modulated=False)
    with pytest.raises(DTypeError, match="input and weight must have the same dtype, got torch.bfloat16 and "
                                         "torch.float32"):
        deform_conv2d(torch.rand(1, 4, 5, 5, dtype=BF16), torch.zeros(1, 18, 5, 5, dtype=BF16), layer.weight,
                      padding=1)


def test_under_autocast_float64_is_not_cast():
    """torchvision's cast leaves float64 alone: a float64 input with a float32 weight is still a mismatch."""
    with torch.autocast("cpu", dtype=BF16), pytest.raises(DTypeError, match="torch.float64 and torch.float32"):
        deform_conv2d(torch.rand(1, 2, 4, 4, dtype=torch.float64), torch.zeros(1, 18, 4, 4, dtype=torch.float64),
                      torch.rand(3, 2, 3, 3), padding=1)


@pytest.mark.triton
def test_triton_path_under_autocast_computes_in_float32():
    """impl="triton" (the interpreter here) under autocast: float32 kernels on the cast tensors (the interpreter
    has no bfloat16 – notes/triton-interpreter.md – so without the cast this could not run at all)."""
    if not gpu.can_run(torch.zeros(1)):
        pytest.fail("the Triton kernels cannot run here: " + gpu.INSTALL_HINT)
    stem, layer, x = _features_and_layer(modulated=True, impl="triton")
    with torch.autocast("cpu", dtype=BF16):
        features = stem(x)
        out = layer(features)
        offset, mask = layer.offsets_and_mask(features)
    layer.impl = "fast"
    with torch.autocast("cpu", dtype=BF16):
        expected = layer(features, offset, mask)
    assert out.dtype == BF16
    torch.testing.assert_close(out.float(), expected.float(), rtol=2**-8, atol=1e-6)
