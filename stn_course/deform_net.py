"""Lesson 6's experiment: a small digit classifier with deformable layers, and where those layers read (lesson 6).

:class:`DeformableCNN` is the model lesson 6 trains on distorted digits, with a plain twin (``deformable=False``)
that has the same weights minus the offset predictors; :func:`trace_sampling_points` follows one output location
back through a stack of (deformable) convolutions to the input pixels it reads (Dai et al. 2017, Fig. 5) – the
picture of lesson 6's figures and of its explorer (:func:`stn_course.widgets.deformable_explorer`). The operation
and the layer themselves are :mod:`stn_course.deform`.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_pair
from .deform import DeformConv2d, bilinear_sample_pixels, regular_sampling_positions, unpack_offsets
from .impls import DEFORM_CONV2D

__all__ = ["DeformableCNN", "trace_sampling_points"]


class DeformableCNN(nn.Module):
    """A small digit classifier whose two 3×3 layers are plain (``deformable=False``) or deformable.

    ``conv5×5(1→c0) → pool2 → [d]conv3×3(c0→c1) → pool2 → [d]conv3×3(c1→c2) → pool2 → linear``, ReLU after every
    conv, "same" padding, so a ``S × S`` canvas becomes ``S//8 × S//8`` features. The plain twin has exactly the same
    weights minus the offset (and mask) predictors. ``(N, 1, S, S) -> (N, num_classes)``
    """

    def __init__(self, in_size: int = 42, deformable: bool = True, modulated: bool = False,
                 channels: tuple[int, int, int] = (8, 16, 32), num_classes: int = 10,
                 impl: str = DEFORM_CONV2D.default) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.deformable, self.modulated, self.in_size = deformable, modulated, in_size
        self.stem = nn.Conv2d(1, c0, 5, padding=2)

        def layer(c_in: int, c_out: int) -> nn.Module:
            if deformable:
                return DeformConv2d(c_in, c_out, 3, padding=1, modulated=modulated, impl=impl)
            return nn.Conv2d(c_in, c_out, 3, padding=1)

        self.layers = nn.ModuleList([layer(c0, c1), layer(c1, c2)])
        self.head = nn.Linear(c2 * (in_size // 8) ** 2, num_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input of each entry of ``self.layers``, then the final feature map: ``[x_1, x_2, out]``."""
        x = F.max_pool2d(F.relu(self.stem(x)), 2)
        maps = [x]
        for layer in self.layers:
            x = F.max_pool2d(F.relu(layer(x)), 2)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[-1].flatten(1))

    def sampling_points(self, x: torch.Tensor, y: float, x_: float) -> torch.Tensor:
        """Image pixels ``(y, x)`` that output ``(y, x_)`` of the last layer reads through both layers (9 · 9 each).

        ``x: (N, 1, S, S)`` ``-> (N, 81, 2)``
        """
        maps = self.features(x)
        return trace_sampling_points(list(self.layers), maps[:2], y, x_, pools=(2, 2))


def trace_sampling_points(layers: Sequence[nn.Module], inputs: Sequence[torch.Tensor], y: float, x: float,
                          pools: Sequence[int] | None = None) -> torch.Tensor:
    """Where a stack of (deformable) convolutions reads, traced back from one output location (Dai et al., Fig. 5).

    ``layers[i]`` (a :class:`~stn_course.deform.DeformConv2d` or ``nn.Conv2d``; offset group 0 is followed) consumes ``inputs[i]``,
    which is the previous layer's output max-pooled by ``pools[i]`` (1: no pooling; a pooled cell ``q`` is traced to
    the centre ``pools[i]·q + (pools[i] − 1)/2`` of its window). The point ``(y, x)`` of the last layer's output is
    mapped to its ``kh·kw`` sampling positions in that layer's input, each of those – through the previous layer's
    offsets, interpolated bilinearly at the fractional position – to ``kh·kw`` more, and so on; finally ``pools[0]``
    maps them to the grid in front of the first pooling.
    ``inputs[i]: (N, C_i, H_i, W_i)`` ``-> (N, Π kh·kw, 2)`` pixel ``(y, x)``
    """
    layers, inputs = list(layers), list(inputs)
    pools = [1] * len(layers) if pools is None else list(pools)
    n = inputs[0].shape[0]
    dtype, device = inputs[0].dtype, inputs[0].device
    points = torch.tensor([[y, x]], dtype=dtype, device=device).expand(n, 1, 2)
    with torch.no_grad():
        for i in reversed(range(len(layers))):
            layer, feature = layers[i], inputs[i]
            kh, kw = check_pair(layer.kernel_size, "kernel_size", "(h, w)")
            stride = torch.tensor(check_pair(layer.stride, "stride", "(h, w)"), dtype=dtype, device=device)
            padding = torch.tensor(check_pair(layer.padding, "padding", "(h, w)", 0), dtype=dtype, device=device)
            taps = regular_sampling_positions(1, 1, (kh, kw), 1, 0, layer.dilation, dtype, device)[:, 0, 0]  # (K, 2)
            new = (points * stride - padding)[:, :, None, :] + taps[None, None]  # (N, P, K, 2)
            if isinstance(layer, DeformConv2d):
                offset, _ = layer.offsets_and_mask(feature)
                dy, dx = unpack_offsets(offset, (kh, kw))  # (N, G, K, H_out, W_out)
                field = torch.cat([dy[:, 0], dx[:, 0]], dim=1)  # (N, 2K, H_out, W_out)
                at = bilinear_sample_pixels(field, x=points[..., 1], y=points[..., 0])  # (N, 2K, P)
                new = new + torch.stack([at[:, :kh * kw], at[:, kh * kw:]], dim=-1).permute(0, 2, 1, 3)
            points = new.reshape(n, -1, 2) * pools[i] + (pools[i] - 1) / 2
    return points
