"""Checks for lesson 7 – the GPU path: the bytes model, a program's tile, the kernel's index arithmetic and the
fused forward kernel.

References: :func:`stn_course.gpu.traffic.sampler_traffic` (the bytes model), :func:`stn_course.gpu.indexing.
program_pixels`, and torch itself for the rest – ``F.affine_grid`` indexed at the pixels and unnormalized for the
index arithmetic, ``F.affine_grid`` + ``F.grid_sample`` for the kernel. The kernel's cases are small: without a GPU
the learner's Triton kernel runs through Triton's interpreter (the grader's sandbox sets ``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..gpu.indexing import program_pixels
from ..gpu.traffic import sampler_traffic
from .cases import random_theta, tensor
from .equivalents import AFFINE_GRID, GRID_SAMPLE
from .registry import Case, Check, register

# ---------------------------------------------------------------------------------------------------------------
# 07.sampler_bytes
# ---------------------------------------------------------------------------------------------------------------


def _bytes_reference(input_shape, out_size, element_size=4, fused=False):
    return sampler_traffic(input_shape, out_size, element_size, fused).total


def _bytes_cases(rng: np.random.Generator, shapes=((1, 1, 1, 1, 1, 1), (2, 3, 5, 4, 6, 7), (1024, 1, 60, 60, 60, 60),
                                                   (256, 3, 224, 224, 224, 224), (8, 64, 28, 28, 14, 14))):
    for k, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        element_size = (4, 8, 4, 2, 4)[k % 5]
        for fused in (False, True):
            yield Case(f"input_shape=({n}, {c}, {h}, {w}), out_size=({h_out}, {w_out}), "
                       f"element_size={element_size}, fused={fused}",
                       ((n, c, h, w), (h_out, w_out), element_size, fused))


def _bytes_hidden(rng: np.random.Generator):
    return _bytes_cases(rng, ((3, 2, 1, 9, 4, 1), (1, 5, 17, 3, 2, 29), (64, 16, 32, 32, 64, 64)))


register(Check(
    id="07.sampler_bytes",
    forbidden=("stn_course.gpu.traffic.sampler_traffic",),
    idea="List every tensor the pass reads or writes – the input, the grid, the output – and count each once; "
         "which of them does the fused kernel never touch in memory?",
    title="the bytes one forward pass moves",
    reference=_bytes_reference,
    cases=_bytes_cases,
    hidden_cases=_bytes_hidden,
    hint="unfused: affine_grid writes the grid (N·H_out·W_out·2 elements), grid_sample reads it and the input "
         "(N·C·H·W) and writes the output (N·C·H_out·W_out); fused: only the input and the output. Multiply the "
         "element count by element_size and return a Python int.",
    rtol=0, atol=0, points=1,
))

# ---------------------------------------------------------------------------------------------------------------
# 07.program_pixels
# ---------------------------------------------------------------------------------------------------------------


def _tiles_cases(rng: np.random.Generator, setups=((0, 8, 3, 4), (1, 8, 3, 4), (0, 16, 2, 3), (3, 4, 5, 1),
                                                   (2, 64, 9, 17), (0, 1, 1, 1))):
    for pid, block, h_out, w_out in setups:
        yield Case(f"pid={pid}, block={block}, h_out={h_out}, w_out={w_out}", (pid, block, h_out, w_out))


def _tiles_hidden(rng: np.random.Generator):
    return _tiles_cases(rng, ((7, 32, 15, 17), (0, 256, 1, 300), (12, 2, 5, 5)))


register(Check(
    id="07.program_pixels",
    forbidden=("stn_course.gpu.indexing.program_pixels",),
    idea="A program owns BLOCK consecutive flat offsets of the output; a flat offset is a row and a column.",
    title="the output pixels one program computes",
    reference=program_pixels,
    cases=_tiles_cases,
    hidden_cases=_tiles_hidden,
    hint="offsets = pid * block + torch.arange(block); rows = offsets // w_out, cols = offsets % w_out (for every "
         "lane, masked or not); live = offsets < h_out * w_out. Return (rows, cols, live): int64, int64, bool.",
    rtol=0, atol=0, points=1,
))

# ---------------------------------------------------------------------------------------------------------------
# 07.source_pixels
# ---------------------------------------------------------------------------------------------------------------


def _source_reference(theta, rows, cols, in_size, out_size, align_corners=False):
    """Independent of the package: F.affine_grid's grid, looked up at (rows, cols), then lesson 2's unnormalize."""
    h, w = in_size
    with warnings.catch_warnings():  # a 1-pixel output with align_corners=True: torch warns, and is right
        warnings.simplefilter("ignore")
        grid = F.affine_grid(theta[None], (1, 1, *out_size), align_corners=align_corners)[0]
    g = grid[rows, cols]
    if align_corners:
        return (g[..., 0] + 1) / 2 * (w - 1), (g[..., 1] + 1) / 2 * (h - 1)
    return ((g[..., 0] + 1) * w - 1) / 2, ((g[..., 1] + 1) * h - 1) / 2


def _source_cases(rng: np.random.Generator, setups=((5, 7, 4, 6, False), (5, 7, 4, 6, True), (1, 9, 3, 1, False),
                                                    (6, 6, 1, 1, True), (12, 8, 10, 16, False))):
    for k, (h, w, h_out, w_out, align_corners) in enumerate(setups):
        theta = random_theta(rng, 1, spread=0.5 + 0.5 * k)[0]
        count = max(1, h_out * w_out // 2)
        rows = torch.from_numpy(rng.integers(0, h_out, count))
        cols = torch.from_numpy(rng.integers(0, w_out, count))
        if k % 2:  # a 2-D block of lanes, the first at the corner
            rows, cols = rows.view(1, -1), cols.view(1, -1)
            rows[0, 0], cols[0, 0] = h_out - 1, 0
        yield Case(f"theta (2, 3) float64, {rows.numel()} output pixels of shape {tuple(rows.shape)}, input (H, W) = "
                   f"({h}, {w}), output ({h_out}, {w_out}), align_corners={align_corners}",
                   (theta, rows, cols, (h, w), (h_out, w_out), align_corners))


def _source_hidden(rng: np.random.Generator):
    return _source_cases(rng, ((1, 1, 5, 3, True), (31, 2, 9, 40, False), (7, 13, 1, 8, True), (3, 30, 17, 1, False)))


register(Check(
    id="07.source_pixels",
    forbidden=("stn_course.gpu.indexing.source_pixels", "stn_course.grids.affine_grid",
               "stn_course.grids.base_grid", *AFFINE_GRID),
    idea="Three steps per output pixel, no grid: its normalized base coordinate, θ times it, then lesson 2's "
         "unnormalize into the input's pixels.",
    title="where an output pixel reads, without a grid",
    reference=_source_reference,
    cases=_source_cases,
    hidden_cases=_source_hidden,
    hint="align_corners=False: x_t = (2 j + 1) / W_out − 1 and x = ((x_s + 1) W − 1) / 2; True: x_t = 2 j / (W_out − 1) "
         "− 1 (0 for a 1-pixel side) and x = (x_s + 1)(W − 1) / 2; x_s = θ₀₀ x_t + θ₀₁ y_t + θ₀₂, and the same "
         "for y with the second row of θ. Work in theta's dtype.",
    rtol=1e-9, atol=1e-9, points=2,
))

# ---------------------------------------------------------------------------------------------------------------
# 07.fused_affine_sample
# ---------------------------------------------------------------------------------------------------------------


def _fused_reference(input, theta, out_size):
    grid = F.affine_grid(theta, (input.shape[0], input.shape[1], *out_size), align_corners=False)
    return F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _fused_cases(rng: np.random.Generator, shapes=((1, 1, 4, 5, 3, 4, 0.2), (2, 3, 6, 5, 7, 4, 0.6),
                                                   (1, 2, 5, 5, 6, 6, 2.5), (2, 1, 1, 6, 1, 1, 0.4))):
    for k, (n, c, h, w, h_out, w_out, spread) in enumerate(shapes):
        dtype = torch.float32 if k == 1 else torch.float64
        yield Case(f"input (N={n}, C={c}, H={h}, W={w}) {str(dtype)[6:]}, out_size=({h_out}, {w_out}), θ spread "
                   f"{spread}" + (" (reads far outside the image)" if spread > 1 else ""),
                   (tensor(rng, n, c, h, w, dtype=dtype), random_theta(rng, n, spread, dtype=dtype), (h_out, w_out)))


def _fused_hidden(rng: np.random.Generator):  # an output of more than one 1024-lane program; 1-pixel sides
    return _fused_cases(rng, ((1, 1, 40, 40, 36, 33, 0.5), (3, 2, 9, 1, 5, 7, 0.7), (1, 4, 7, 11, 1, 9, 1.5)))


register(Check(
    id="07.fused_affine_sample",
    forbidden=("stn_course.gpu.affine.affine_sample", "stn_course.sampling.bilinear_sample",
               "stn_course.sampling.grid_sample", "stn_course.autograd.bilinear_sample_analytic",
               *GRID_SAMPLE, *AFFINE_GRID),
    idea="Each lane is one output pixel: find where it reads (exercise 3, in tl operations), then for every channel "
         "load its four neighbours – masked where they fall outside the image – and blend them.",
    title="the fused forward kernel",
    reference=_fused_reference,
    cases=_fused_cases,
    hidden_cases=_fused_hidden,
    hint="x0 = tl.floor(x), fx = x − x0; the neighbours (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1) with "
         "weights (1−fx)(1−fy), fx(1−fy), (1−fx)fy, fx·fy; load each with mask = live & inside and other=0.0 (a "
         "neighbour outside the image reads 0); the address of (c, y, x) in image n is ((n·C + c)·H + y)·W + x.",
    rtol=1e-5, atol=1e-5, points=3,
))
