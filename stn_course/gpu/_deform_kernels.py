"""The Triton kernels of :mod:`stn_course.gpu.deform` (lesson 7): deformable convolution's bilinear im2col and its
backward. Importing this module imports ``triton`` (done on first use by :mod:`stn_course.gpu.deform`)."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def tap(offset, n, c, offs, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, P):
    """For the (c, k, p) entries ``offs`` of sample n: the tap k, location p, offset group g, and where the tap
    reads, y = i·SH − PH + ki·DH + dy and x = j·SW − PW + kj·DW + dx (torchvision's (dy, dx) layout)."""
    k = offs // P
    p = offs % P
    i = p // WO
    j = p % WO
    ki = k // KW
    kj = k % KW
    g = c // CG
    row = (n * 2 * G * K + 2 * (g * K + k)) * P + p  # offset[n, 2 (g K + k), p] is dy, the next channel dx
    live = offs < K * P
    dy = tl.load(offset + row, mask=live, other=0.0)
    dx = tl.load(offset + row + P, mask=live, other=0.0)
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
    v00 = tl.load(base + y0 * W + x0, mask=m00, other=0.0)
    v01 = tl.load(base + y0 * W + x0 + 1, mask=m01, other=0.0)
    v10 = tl.load(base + (y0 + 1) * W + x0, mask=m10, other=0.0)
    v11 = tl.load(base + (y0 + 1) * W + x0 + 1, mask=m11, other=0.0)
    return v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite


@triton.jit
def blend(v00, v01, v10, v11, fy, fx):
    """Bilinear interpolation of the four neighbours read by :func:`neighbours`."""
    return (1.0 - fy) * (1.0 - fx) * v00 + (1.0 - fy) * fx * v01 + fy * (1.0 - fx) * v10 + fy * fx * v11


@triton.jit
def program_reads(inp, offset, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, BLOCK: tl.constexpr):
    """What :func:`im2col` and :func:`col2im` both start with: this program's block of (c, k, p) entries of
    sample ``n = program_id(0)``, channel ``c = program_id(1)``, where each tap reads (:func:`tap`) and the four
    neighbours there (:func:`neighbours`). ``entry`` is the entries' index into a (N, C, K, P) tensor."""
    n = tl.program_id(0)
    c = tl.program_id(1)
    offs = tl.program_id(2) * BLOCK + tl.arange(0, BLOCK)
    P = HO * WO
    k, p, g, y, x, live = tap(offset, n, c, offs, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, P)
    v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite = neighbours(inp + (n * C + c) * H * W, y, x,
                                                                                 H, W, live)
    entry = (n * C + c) * K * P + offs
    mask_at = (n * G * K + g * K + k) * P + p  # the index of the entries' modulation in mask (N, G, K, P)
    return n, c, k, p, entry, mask_at, live, v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite


@triton.jit
def im2col(inp, offset, mask, cols, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K,
           HAS_MASK: tl.constexpr, BLOCK: tl.constexpr):
    """cols[n, c, k, p] = mask · bilinear(input[n, c], where tap k of location p reads)."""
    n, c, k, p, entry, mask_at, live, v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite = \
        program_reads(inp, offset, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, BLOCK)
    v = blend(v00, v01, v10, v11, fy, fx)
    v = tl.where(finite, v, float("nan") + 0.0 * v)
    if HAS_MASK:
        v = v * tl.load(mask + mask_at, mask=live, other=0.0)
    tl.store(cols + entry, v, mask=live)


@triton.jit
def col2im(inp, offset, mask, grad_cols, grad_inp, grad_offset, grad_mask, C, H, W, HO, WO, KW, SH, SW, PH, PW,
           DH, DW, G, CG, K, HAS_MASK: tl.constexpr, BLOCK: tl.constexpr):
    """The backward of :func:`im2col` for entry (n, c, k, p): the input gradient scattered into the four
    neighbours (atomic adds), and per *channel* the offset and mask gradients (summed over a group's channels
    afterwards, so no atomics there)."""
    n, c, k, p, entry, mask_at, live, v00, v01, v10, v11, fy, fx, y0, x0, m00, m01, m10, m11, finite = \
        program_reads(inp, offset, C, H, W, HO, WO, KW, SH, SW, PH, PW, DH, DW, G, CG, K, BLOCK)
    P = HO * WO
    gc = tl.load(grad_cols + entry, mask=live, other=0.0)
    if HAS_MASK:
        m = tl.load(mask + mask_at, mask=live, other=0.0)
        value = blend(v00, v01, v10, v11, fy, fx)
        tl.store(grad_mask + entry, tl.where(finite, gc * value, 0.0 * gc), mask=live)
        gc = gc * m
    gbase = grad_inp + (n * C + c) * H * W
    tl.atomic_add(gbase + y0 * W + x0, gc * (1.0 - fy) * (1.0 - fx), mask=m00)
    tl.atomic_add(gbase + y0 * W + x0 + 1, gc * (1.0 - fy) * fx, mask=m01)
    tl.atomic_add(gbase + (y0 + 1) * W + x0, gc * fy * (1.0 - fx), mask=m10)
    tl.atomic_add(gbase + (y0 + 1) * W + x0 + 1, gc * fy * fx, mask=m11)
    gy = gc * ((1.0 - fx) * (v10 - v00) + fx * (v11 - v01))
    gx = gc * ((1.0 - fy) * (v01 - v00) + fy * (v11 - v10))
    row = grad_offset + ((n * C + c) * K + k) * 2 * P + p  # (N, C, K, 2, P): dy then dx
    tl.store(row, tl.where(finite, gy, 0.0 * gy), mask=live)
    tl.store(row + P, tl.where(finite, gx, 0.0 * gx), mask=live)
