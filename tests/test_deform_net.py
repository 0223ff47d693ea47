"""Tests for stn_course.deform_net (lesson 6's experiment): a fresh deformable classifier is its plain twin, and
the trace of where stacked (deformable) convolutions read."""
from __future__ import annotations

import torch

from stn_course.deform import DeformConv2d
from stn_course.deform_net import DeformableCNN, trace_sampling_points


def test_fresh_deformable_cnn_equals_its_plain_twin():
    torch.manual_seed(0)
    deformable = DeformableCNN(in_size=24, deformable=True, modulated=True).double()
    plain = DeformableCNN(in_size=24, deformable=False).double()
    state = {k: v for k, v in deformable.state_dict().items() if "offset_conv" not in k}
    plain.load_state_dict(state)
    x = torch.rand(3, 1, 24, 24, dtype=torch.float64)
    out = deformable(x)
    assert out.shape == (3, 10)
    torch.testing.assert_close(out, plain(x), rtol=1e-12, atol=1e-12)


def test_trace_sampling_points_single_layer_and_pooling():
    layer = DeformConv2d(1, 1, 3, padding=1).double()
    x = torch.rand(2, 1, 6, 7, dtype=torch.float64)
    # regular grid at a zero-initialised layer: the 9 taps around (2, 3)
    points = trace_sampling_points([layer], [x], 2.0, 3.0)
    expected = torch.tensor([[2 + i, 3 + j] for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=torch.float64)
    torch.testing.assert_close(points, expected.expand(2, 9, 2))
    # constant offsets (dy, dx) = (0.5, -1.25) everywhere move every point alike; a pooling of 2 maps q -> 2q + 0.5
    with torch.no_grad():
        layer.offset_conv.bias.copy_(torch.tensor([0.5, -1.25] * 9, dtype=torch.float64))
    points = trace_sampling_points([layer], [x], 2.0, 3.0, pools=[2])
    moved = (expected + torch.tensor([0.5, -1.25], dtype=torch.float64)) * 2 + 0.5
    torch.testing.assert_close(points, moved.expand(2, 9, 2))
    # two stacked plain layers: 9 · 9 points, the sum of two 3×3 grids
    plain = [torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.Conv2d(1, 1, 3, padding=1)]
    points = trace_sampling_points(plain, [x, x], 2.0, 3.0)
    assert points.shape == (2, 81, 2)
    assert points[0, :, 0].min() == 0 and points[0, :, 0].max() == 4 and points[0, :, 1].min() == 1
