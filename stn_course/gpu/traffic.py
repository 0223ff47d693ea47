"""How many bytes a sampler moves (lesson 7): the model that says why the spatial transformer is memory-bound and
what fusing the grid generator into the sampler saves.

The model counts every tensor a pass reads or writes **once**, at ``element_size`` bytes per element, and ignores
what is negligible (θ: six numbers per image) – the least traffic any implementation of that pass can have, unless
an image does not fit the caches and is read again. The *achieved bandwidth* of a measured run is then
``bytes / seconds``; its ratio to the device's copy bandwidth says how close to the memory's limit the kernel runs.

Forward, ``input (N, C, H, W) -> output (N, C, H_out, W_out)``:

* unfused (``F.affine_grid`` then ``F.grid_sample``): the grid generator writes the grid ``(N, H_out, W_out, 2)``;
  the sampler reads the grid and the input and writes the output;
* fused (:func:`stn_course.gpu.affine.affine_sample`): reads the input, writes the output; the grid lives in
  registers only.

Backward (gradients w.r.t. the input and θ): unfused, the sampler's backward reads the output gradient, the grid
and the input, zero-fills and writes the input gradient and writes the grid gradient, which the grid generator's
backward reads back; fused, the kernel reads the output gradient and the input and zero-fills and writes the input
gradient (θ's gradient leaves as a few partial sums per program).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .._validation import check_bool, check_int

__all__ = ["Traffic", "sampler_traffic"]


@dataclass(frozen=True)
class Traffic:
    """Bytes a pass reads and writes, and the part of them that is the sampling grid."""

    read: int
    written: int
    grid: int

    @property
    def total(self) -> int:
        return self.read + self.written


def sampler_traffic(input_shape: Sequence[int], out_size: Sequence[int], element_size: int = 4, fused: bool = False,
                    backward: bool = False) -> Traffic:
    """The bytes model of one affine sampling pass (see the module docstring).

    ``input_shape = (N, C, H, W)``, ``out_size = (H_out, W_out)``; ``backward=True`` counts the backward pass
    (gradients w.r.t. the input and θ) instead of the forward.

    >>> sampler_traffic((1, 1, 4, 4), (4, 4)).total  # grid written + read (2·2·16·4 B), input + output (2·16·4 B)
    384
    >>> sampler_traffic((1, 1, 4, 4), (4, 4), fused=True).total
    128
    """
    if len(input_shape) != 4:
        raise ValueError(f"input_shape: expected (N, C, H, W), got {tuple(input_shape)}")
    n, c, h, w = (check_int(v, name, minimum=0) for v, name in zip(input_shape, ("N", "C", "H", "W")))
    if len(out_size) != 2:
        raise ValueError(f"out_size: expected (H_out, W_out), got {tuple(out_size)}")
    h_out, w_out = (check_int(v, name, minimum=0) for v, name in zip(out_size, ("H_out", "W_out")))
    element_size = check_int(element_size, "element_size", minimum=1)
    fused, backward = check_bool(fused, "fused"), check_bool(backward, "backward")
    image, out, grid = n * c * h * w, n * c * h_out * w_out, n * h_out * w_out * 2
    if not backward:
        read, written = image + (0 if fused else grid), out + (0 if fused else grid)
        grid_bytes = 0 if fused else 2 * grid
    else:
        read = out + image + (0 if fused else 2 * grid)  # grad_out, input; unfused: the grid, then grad_grid back
        written = 2 * image + (0 if fused else grid)  # grad_input zero-filled then accumulated; unfused: grad_grid
        grid_bytes = 0 if fused else 3 * grid
    return Traffic(read * element_size, written * element_size, grid_bytes * element_size)
