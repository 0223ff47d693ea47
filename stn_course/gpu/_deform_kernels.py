"""The Triton kernels of :mod:`stn_course.gpu.deform` (lesson 7): deformable convolution's bilinear im2col and its
backward. Importing this module imports ``triton`` (done on first use by :mod:`stn_course.gpu.deform`).

Half precision: the offsets, the image, the mask and the columns' gradient are read in their dtype and widened
(:func:`widen`: float16/bfloat16 to float32), so the sampling positions, weights and sums are float32; stores round
to the destination's dtype (the launcher gives the gradients float32 buffers).

Index width (lesson 7's int32 overflow): ``tl.program_id`` and the integer arguments are 32-bit, and the columns
are K = kh·kw times the image – ``(n·C + c)·K·P`` passes 2³¹ − 1 at 8×64 channels of 256² with a 3×3 kernel. Each
offset is split in two: a per-program *base* (sample n, channel c, its offset group) in 64 bits – ``n`` widened to
int64 before the first multiply, one scalar per program – added to the pointer first, then the per-lane part (tap
k, location p, neighbour ``y0·W + x0``) in 32 bits, bounded by one (sample, channel)'s ``2·K·P`` and ``H·W``,
which the launcher keeps below 2³¹ (:func:`stn_course.gpu.launches.check_index_range`): 64-bit lanes would cost
registers on every address of the gathers."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def widen(x):
    """float16/bfloat16 ``x`` as float32; float32 and float64 as they are (a compile-time choice)."""
    if x.dtype == tl.float64:
        wide = x
    else:
        wide = x.to(tl.float32)
    return wide


@triton.jit
def tap(offset, n, c, offs, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, P):
    """For the (c, k, p) entries ``offs`` of sample n (int64): the tap k, location p, offset group g, and where the tap
    reads, y = i·SH − PH + ki·DH + dy and x = j·SW − PW + kj·DW + dx (torchvision's (dy, dx) layout)."""
    k = offs // P
    p = offs % P
    i = p // WO
    j = p % WO
    ki = k // KW
    kj = k % KW
    g = c // CG
    # offset[n, 2 (g K + k), p] is dy, the next channel dx: the group's base in 64 bits, then the lanes' 2kP + p
    # (< 2KP, check_index_range) in 32
    row = offset + (n * G + g) * 2 * K * P + (2 * k * P + p)
    live = offs < K * P
    dy = widen(tl.load(row, mask=live, other=0.0))
    dx = widen(tl.load(row + P, mask=live, other=0.0))
    y = (i * SH - PH + ki * DH).to(dy.dtype) + dy
    x = (j * SW - PW + kj * DW).to(dx.dtype) + dx
    return k, p, g, y, x, live


@triton.jit
def neighbours(base, y, x, H, W, live):
    """Bilinear reads of the image at ``base`` at (y, x), neighbours outside reading 0: values, weights' parts."""
    finite = (y == y) & (x == x) & (tl.abs(y) < float("inf")) & (tl.abs(x) < float("inf"))
    zero = tl.zeros_like(y)  # never 0 * y: that is NaN where y is infinite
    ys = tl.where(finite, y, zero)
    xs = tl.where(finite, x, zero)
    y0f = tl.floor(ys)
    x0f = tl.floor(xs)
    fy = ys - y0f
    fx = xs - x0f
    y0 = tl.minimum(tl.maximum(y0f, zero - 2.0), zero + H + 1.0).to(tl.int32)
    x0 = tl.minimum(tl.maximum(x0f, zero - 2.0), zero + W + 1.0).to(tl.int32)
    ok = live & finite
    m00 = ok & (y0 >= 0) & (y0 <= H - 1) & (x0 >= 0) & (x0 <= W - 1)
    m01 = ok & (y0 >= 0) & (y0 <= H - 1) & (x0 + 1 >= 0) & (x0 + 1 <= W - 1)
    m10 = ok & (y0 + 1 >= 0) & (y0 + 1 <= H - 1) & (x0 >= 0) & (x0 <= W - 1)
    m11 = ok & (y0 + 1 >= 0) & (y0 + 1 <= H - 1) & (x0 + 1 >= 0) & (x0 + 1 <= W - 1)
    v00 = tl.load(base + y0 * W + x0, mask=m00, other=0.0).to(y.dtype)
    v01 = tl.load(base + y0 * W + x0 + 1, mask=m01, other=0.0).to(y.dtype)
    v10 = tl.load(base + (y0 + 1) * W + x0, mask=m10, other=0.0).to(y.dtype)
    v11 = tl.load(base + (y0 + 1) * W + x0 + 1, mask=m11, other=0.0).to(y.dtype)
    return v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite


@triton.jit
def blend(v00, v01, v10, v11, fy, fx):
    """Bilinear interpolation of the four neighbours read by :func:`neighbours`."""
    return (1.0 - fy) * (1.0 - fx) * v00 + (1.0 - fy) * fx * v01 + fy * (1.0 - fx) * v10 + fy * fx * v11


@triton.jit
def program_reads(inp, offset, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, BLOCK: tl.constexpr):
    """What :func:`im2col` and :func:`col2im` both start with: this program's block of (c, k, p) entries of
    sample ``n = program_id(0)``, channel ``c = program_id(1)``, where each tap reads (:func:`tap`) and the four
    neighbours there (:func:`neighbours`). ``plane`` is the int64 index of (n, c, 0, 0) in a (N, C, K, P) tensor (entry
    ``plane + offs``: 64-bit base, 32-bit lanes), ``mask_plane`` that of (n, g, 0, 0) in the mask (N, G, K, P)."""
    n = tl.program_id(0).to(tl.int64)  # every base below is a product with n: 64-bit (the module docstring)
    c = tl.program_id(1)
    offs = tl.program_id(2) * BLOCK + tl.arange(0, BLOCK)
    P = HO * WO
    k, p, g, y, x, live = tap(offset, n, c, offs, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, P)
    v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite = neighbours(inp + (n * C + c) * H * W, y, x,
                                                                                 H, W, live)
    plane = (n * C + c) * K * P
    mask_plane = (n * G + g) * K * P  # the entries' modulation is mask_plane + offs (offs = k·P + p)
    return n, c, k, p, offs, plane, mask_plane, live, v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite


@triton.jit
def im2col(inp, offset, mask, cols, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K,
           HAS_MASK: tl.constexpr, BLOCK: tl.constexpr):
    """cols[n, c, k, p] = mask · bilinear(input[n, c], where tap k of location p reads)."""
    n, c, k, p, offs, plane, mask_plane, live, v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite = \
        program_reads(inp, offset, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, BLOCK)
    v = blend(v00, v01, v10, v11, fy, fx)
    v = tl.where(finite, v, float("nan") + 0.0 * v)
    if HAS_MASK:
        v = v * tl.load(mask + mask_plane + offs, mask=live, other=0.0).to(v.dtype)
    tl.store(cols + plane + offs, v, mask=live)


@triton.jit
def col2im(inp, offset, mask, grad_cols, grad_inp, grad_offset, grad_mask, C, H, W, HO, WO, KW, SH, SW, PH, PW,
           DH, DW, G, CG, K, HAS_MASK: tl.constexpr, BLOCK: tl.constexpr):
    """The backward of :func:`im2col` for entry (n, c, k, p): the input gradient scattered into the four
    neighbours (atomic adds), and per *channel* the offset and mask gradients (summed over a group's channels
    afterwards, so no atomics there)."""
    n, c, k, p, offs, plane, mask_plane, live, v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite = \
        program_reads(inp, offset, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, BLOCK)
    P = HO * WO
    gc = tl.load(grad_cols + plane + offs, mask=live, other=0.0).to(fy.dtype)
    if HAS_MASK:
        m = tl.load(mask + mask_plane + offs, mask=live, other=0.0).to(fy.dtype)
        value = blend(v00, v01, v10, v11, fy, fx)
        tl.store(grad_mask + plane + offs, tl.where(finite, gc * value, 0.0 * gc), mask=live)
        gc = gc * m
    gbase = grad_inp + (n * C + c) * H * W
    tl.atomic_add(gbase + y0 * W + x0, gc * (1.0 - fy) * (1.0 - fx), mask=m00)
    tl.atomic_add(gbase + y0 * W + x0 + 1, gc * (1.0 - fy) * fx, mask=m01)
    tl.atomic_add(gbase + (y0 + 1) * W + x0, gc * fy * (1.0 - fx), mask=m10)
    tl.atomic_add(gbase + (y0 + 1) * W + x0 + 1, gc * fy * fx, mask=m11)
    gy = gc * ((1.0 - fx) * (v10 - v00) + fx * (v11 - v01))
    gx = gc * ((1.0 - fy) * (v01 - v00) + fy * (v11 - v10))
    row = grad_offset + plane * 2 + (2 * k * P + p)  # (N, C, K, 2, P): dy then dx; 64-bit base, 32-bit lanes
    tl.store(row, tl.where(finite, gy, 0.0 * gy), mask=live)
    tl.store(row + P, tl.where(finite, gx, 0.0 * gx), mask=live)
