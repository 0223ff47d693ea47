"""The Triton kernels of :mod:`stn_course.gpu.affine` (lesson 7). Importing this module imports ``triton``:
:mod:`stn_course.gpu.affine` does so on first use only, so that ``TRITON_INTERPRET`` is honoured and the package
imports without Triton.

The padding mode is not written here: every kernel takes the mode's kernel code as compile-time constants –
``FOLD``, its ``kernel_fold`` compiled by :func:`compiled`, and ``CLAMP`` (:mod:`stn_course.padding`) – so each
mode compiles to its own specialised kernel, and a new mode needs no change in this file.

The kernels compute in the dtype of θ and the base grid (``theta``, ``xs``, ``ys``): the input's, or float32 for a
float16/bfloat16 input (:func:`stn_course.gpu.launches.compute_dtype`). Values are read in the input's dtype and
widened to it on load (:func:`load_as`); stores round to the destination's dtype.

Index width (lesson 7's int32 overflow): ``tl.program_id`` and the integer arguments are 32-bit, so a flat offset
like ``(n·C + c)·H·W`` wraps past 2³¹ − 1 elements – a batch of 8×64×2048² floats already does. Every offset here
is therefore split in two: a per-program *base* in 64 bits (``n.to(tl.int64)`` before the first multiply: one
scalar per program, no per-lane registers), added to the pointer first, and the per-lane offset *within one plane*
(``y0·W + x0``, ``offs``) in 32 bits – those are bounded by one channel's pixels, which the launcher keeps below
2³¹ (:func:`stn_course.gpu.launches.check_index_range`). ``contributions`` and ``segments`` index the whole batch
per lane (sort keys), so they compute in int64 throughout."""
from __future__ import annotations

import functools
import types
from typing import Callable

import triton
import triton.language as tl


@functools.cache
def compiled(function: Callable) -> triton.JITFunction:
    """``function``, written in Triton's language (``tl``) in a module that imports without Triton (a padding
    mode's ``kernel_fold``), compiled with ``triton.jit`` – its globals, with ``tl`` bound to ``triton.language``."""
    scope = dict(function.__globals__, tl=tl)
    return triton.jit(types.FunctionType(function.__code__, scope, function.__name__, function.__defaults__,
                                         function.__closure__))


@triton.jit
def fused_sub_half(c, s, zero, EMULATE_FMA: tl.constexpr):
    """``c · s - 0.5`` rounded once, as ATen's CPU kernel unnormalizes (an FMA): where a point lies within rounding
    of a pixel centre, the rounding decides ``floor`` – which neighbours, so which one-sided gradient. On the GPU a
    hardware FMA; under the interpreter (``EMULATE_FMA``, NumPy rounds every operation) float32 goes through
    float64 (the product is exact there) and float64 adds the product's exact error (Dekker's splitting)."""
    if EMULATE_FMA:
        if c.dtype == tl.float32:
            out = (c.to(tl.float64) * s.to(tl.float64) - 0.5).to(tl.float32)
        else:
            p = c * s
            split = c * 134217729.0  # 2**27 + 1: c = high + low, 26-bit halves
            high = split - (split - c)
            low = c - high
            error = (high * s - p) + low * s  # c · s - p, exactly
            out = (p - 0.5) + tl.where(tl.abs(error) < float("inf"), error, zero)
    else:
        out = tl.fma(c, s, zero - 0.5)
    return out


@triton.jit
def load_as(pointer, mask, like):
    """``tl.load(pointer, mask, other=0)`` widened to ``like``'s dtype: a half-precision image read into float32."""
    return tl.load(pointer, mask=mask, other=0.0).to(like.dtype)


@triton.jit
def source(xt, yt, W, H, t0, t1, t2, t3, t4, t5, FOLD: tl.constexpr, CLAMP: tl.constexpr, ALIGN: tl.constexpr,
           EMULATE_FMA: tl.constexpr):
    """Base-grid point (xt, yt) -> the pixel coordinates (ix, iy) it reads, their derivatives w.r.t. the grid,
    and whether the point is finite. The padding mode: FOLD, then the clamp if CLAMP (see the module docstring).
    Rounded like ATen's CPU kernels (``F.affine_grid``'s base grid is loaded, not recomputed; unnormalized by
    :func:`fused_sub_half`), so that points on the kinks – the identity – fall on ATen's side of them."""
    zero = 0.0 * xt  # a zero of the right dtype and shape; never 0 * (something that may be inf or NaN)
    gx = t0 * xt + t1 * yt + t2
    gy = t3 * xt + t4 * yt + t5
    if ALIGN:  # unnormalize; the image's extent (low, span) is the centres (align) or the edges of the end pixels
        sx = (W - 1) / 2.0 + zero
        sy = (H - 1) / 2.0 + zero
        ix = (gx + 1.0) * sx
        iy = (gy + 1.0) * sy
        lo_x = zero
        span_x = (W - 1) + zero
        lo_y = zero
        span_y = (H - 1) + zero
    else:
        sx = W / 2.0 + zero
        sy = H / 2.0 + zero
        ix = fused_sub_half(gx + 1.0, sx, zero, EMULATE_FMA)
        iy = fused_sub_half(gy + 1.0, sy, zero, EMULATE_FMA)
        lo_x = -0.5 + zero
        span_x = W + zero
        lo_y = -0.5 + zero
        span_y = H + zero
    ix, dx = FOLD(ix, lo_x, span_x, sx, zero)
    iy, dy = FOLD(iy, lo_y, span_y, sy, zero)
    finite = (ix == ix) & (iy == iy) & (tl.abs(ix) < float("inf")) & (tl.abs(iy) < float("inf"))
    if CLAMP:  # clamp into the image, the derivative 0 where the clamp holds; NaN -> pixel 0
        nan_x = ix != ix
        nan_y = iy != iy
        dx = tl.where((ix > 0) & (ix < W - 1), dx, zero)
        dy = tl.where((iy > 0) & (iy < H - 1), dy, zero)
        ix = tl.minimum(tl.maximum(ix, zero), (W - 1) + zero)
        iy = tl.minimum(tl.maximum(iy, zero), (H - 1) + zero)
        ix = tl.where(nan_x, zero, ix)
        iy = tl.where(nan_y, zero, iy)
        finite = ix == ix  # (NaN went to pixel 0 above)
    return ix, iy, dx, dy, finite

@triton.jit
def corners(ix, iy, W, H, finite, zero):
    """The four neighbours (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1), their weights, whether
    each is inside the image, and safe int indices."""
    x0f = tl.floor(tl.where(finite, ix, zero))
    y0f = tl.floor(tl.where(finite, iy, zero))
    fx = tl.where(finite, ix, zero) - x0f
    fy = tl.where(finite, iy, zero) - y0f
    x0f = tl.minimum(tl.maximum(x0f, -2.0 + zero), W + 1.0 + zero)
    y0f = tl.minimum(tl.maximum(y0f, -2.0 + zero), H + 1.0 + zero)
    x0 = x0f.to(tl.int32)
    y0 = y0f.to(tl.int32)
    in_x0 = (x0 >= 0) & (x0 <= W - 1)
    in_x1 = (x0 + 1 >= 0) & (x0 + 1 <= W - 1)
    in_y0 = (y0 >= 0) & (y0 <= H - 1)
    in_y1 = (y0 + 1 >= 0) & (y0 + 1 <= H - 1)
    return x0, y0, fx, fy, in_x0, in_x1, in_y0, in_y1

@triton.jit
def theta_row(theta, n, ROW: tl.constexpr):
    """Row ``ROW`` of image ``n``'s θ, three numbers (θ is flattened to six per image)."""
    start = theta + n.to(tl.int64) * 6 + 3 * ROW  # (N·6 stays small; int64 costs one scalar)
    return tl.load(start), tl.load(start + 1), tl.load(start + 2)

@triton.jit
def points(theta, xs, ys, n, offs, H, W, HO, WO, FOLD: tl.constexpr, CLAMP: tl.constexpr, ALIGN: tl.constexpr,
           EMULATE_FMA: tl.constexpr):
    """What every kernel here starts with, for the output offsets ``offs`` of image ``n``: the lanes inside the
    output, θ's six numbers, each point's source (:func:`source`), its corners (:func:`corners`) and one mask per
    corner, named row then column (live, finite and inside the image). ``xs (WO,)``, ``ys (HO,)``: the base grid's
    axes (``F.affine_grid``'s numbers)."""
    live = offs < HO * WO
    i = offs // WO
    j = offs % WO
    t0, t1, t2 = theta_row(theta, n, 0)
    t3, t4, t5 = theta_row(theta, n, 1)
    xt = tl.load(xs + j, mask=live, other=0.0)
    yt = tl.load(ys + i, mask=live, other=0.0)
    ix, iy, dx, dy, finite = source(xt, yt, W, H, t0, t1, t2, t3, t4, t5, FOLD, CLAMP, ALIGN, EMULATE_FMA)
    x0, y0, fx, fy, in_x0, in_x1, in_y0, in_y1 = corners(ix, iy, W, H, finite, 0.0 * xt)
    ok = live & finite
    m_y0x0 = ok & in_x0 & in_y0
    m_y0x1 = ok & in_x1 & in_y0
    m_y1x0 = ok & in_x0 & in_y1
    m_y1x1 = ok & in_x1 & in_y1
    return live, finite, xt, yt, dx, dy, x0, y0, fx, fy, m_y0x0, m_y0x1, m_y1x0, m_y1x1

@triton.jit
def forward(inp, theta, xs, ys, out, C, H, W, HO, WO,
            FOLD: tl.constexpr, CLAMP: tl.constexpr, ALIGN: tl.constexpr, EMULATE_FMA: tl.constexpr,
            BLOCK: tl.constexpr):
    n = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    P = HO * WO
    live, finite, xt, yt, dx, dy, x0, y0, fx, fy, m_y0x0, m_y0x1, m_y1x0, m_y1x1 = points(
        theta, xs, ys, n, offs, H, W, HO, WO, FOLD, CLAMP, ALIGN, EMULATE_FMA)
    w_y0x0 = (1.0 - fx) * (1.0 - fy)
    w_y0x1 = fx * (1.0 - fy)
    w_y1x0 = (1.0 - fx) * fy
    w_y1x1 = fx * fy
    n64 = n.to(tl.int64)  # the plane bases (n·C + c)·H·W and ·P exceed 2³¹ on large batches: 64-bit, per program
    for c in range(0, C):
        base = inp + (n64 * C + c) * H * W
        v = w_y0x0 * load_as(base + y0 * W + x0, m_y0x0, xt)
        v += w_y0x1 * load_as(base + y0 * W + x0 + 1, m_y0x1, xt)
        v += w_y1x0 * load_as(base + (y0 + 1) * W + x0, m_y1x0, xt)
        v += w_y1x1 * load_as(base + (y0 + 1) * W + x0 + 1, m_y1x1, xt)
        v = tl.where(finite, v, float("nan") + 0.0 * xt)
        tl.store(out + (n64 * C + c) * P + offs, v, mask=live)  # base first, then the 32-bit lanes

@triton.jit
def backward(inp, theta, xs, ys, grad_out, grad_inp, partial, C, H, W, HO, WO, PROGRAMS,
             FOLD: tl.constexpr, CLAMP: tl.constexpr, ALIGN: tl.constexpr, EMULATE_FMA: tl.constexpr,
             BLOCK: tl.constexpr, NEED_INPUT: tl.constexpr):
    n = tl.program_id(0)
    pid = tl.program_id(1)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    P = HO * WO
    live, finite, xt, yt, dx, dy, x0, y0, fx, fy, m_y0x0, m_y0x1, m_y1x0, m_y1x1 = points(
        theta, xs, ys, n, offs, H, W, HO, WO, FOLD, CLAMP, ALIGN, EMULATE_FMA)
    gix = 0.0 * fx
    giy = 0.0 * fy
    n64 = n.to(tl.int64)  # 64-bit plane bases, as in forward
    for c in range(0, C):
        base = inp + (n64 * C + c) * H * W
        g = load_as(grad_out + (n64 * C + c) * P + offs, live, xt)
        v_y0x0 = load_as(base + y0 * W + x0, m_y0x0, xt)
        v_y0x1 = load_as(base + y0 * W + x0 + 1, m_y0x1, xt)
        v_y1x0 = load_as(base + (y0 + 1) * W + x0, m_y1x0, xt)
        v_y1x1 = load_as(base + (y0 + 1) * W + x0 + 1, m_y1x1, xt)
        gix += g * ((v_y0x1 - v_y0x0) * (1.0 - fy) + (v_y1x1 - v_y1x0) * fy)
        giy += g * ((v_y1x0 - v_y0x0) * (1.0 - fx) + (v_y1x1 - v_y0x1) * fx)
        if NEED_INPUT:  # eq. 6 by scattering: several output pixels may hit one input pixel, so add atomically
            gbase = grad_inp + (n64 * C + c) * H * W
            tl.atomic_add(gbase + y0 * W + x0, g * (1.0 - fx) * (1.0 - fy), mask=m_y0x0)
            tl.atomic_add(gbase + y0 * W + x0 + 1, g * fx * (1.0 - fy), mask=m_y0x1)
            tl.atomic_add(gbase + (y0 + 1) * W + x0, g * (1.0 - fx) * fy, mask=m_y1x0)
            tl.atomic_add(gbase + (y0 + 1) * W + x0 + 1, g * fx * fy, mask=m_y1x1)
    keep = live & finite
    gx = tl.where(keep, gix * dx, 0.0 * xt)  # ∂L/∂(grid x): eq. 7 chained through padding and unnormalize
    gy = tl.where(keep, giy * dy, 0.0 * xt)
    row = partial + (n64 * PROGRAMS + pid) * 6  # one partial per program: deterministic, summed afterwards
    tl.store(row + 0, tl.sum(gx * xt, axis=0))
    tl.store(row + 1, tl.sum(gx * yt, axis=0))
    tl.store(row + 2, tl.sum(gx, axis=0))
    tl.store(row + 3, tl.sum(gy * xt, axis=0))
    tl.store(row + 4, tl.sum(gy * yt, axis=0))
    tl.store(row + 5, tl.sum(gy, axis=0))

@triton.jit
def contributions(theta, xs, ys, keys, weights, H, W, HO, WO,
                  FOLD: tl.constexpr, CLAMP: tl.constexpr, ALIGN: tl.constexpr, EMULATE_FMA: tl.constexpr,
                  BLOCK: tl.constexpr):
    """Deterministic input gradient, step 1: for each output pixel's four corners, the input pixel it feeds
    (``key = n·H·W + y·W + x``; ``N·H·W`` for none) and the bilinear weight."""
    n = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    P = HO * WO
    live, finite, xt, yt, dx, dy, x0, y0, fx, fy, m_y0x0, m_y0x1, m_y1x0, m_y1x1 = points(
        theta, xs, ys, n, offs, H, W, HO, WO, FOLD, CLAMP, ALIGN, EMULATE_FMA)
    none = tl.num_programs(0).to(tl.int64) * H * W
    image = n.to(tl.int64) * H * W
    slot = (n.to(tl.int64) * P + offs) * 4
    tl.store(keys + slot + 0, tl.where(m_y0x0, image + y0 * W + x0, none), mask=live)
    tl.store(keys + slot + 1, tl.where(m_y0x1, image + y0 * W + x0 + 1, none), mask=live)
    tl.store(keys + slot + 2, tl.where(m_y1x0, image + (y0 + 1) * W + x0, none), mask=live)
    tl.store(keys + slot + 3, tl.where(m_y1x1, image + (y0 + 1) * W + x0 + 1, none), mask=live)
    tl.store(weights + slot + 0, (1.0 - fx) * (1.0 - fy), mask=live)
    tl.store(weights + slot + 1, fx * (1.0 - fy), mask=live)
    tl.store(weights + slot + 2, (1.0 - fx) * fy, mask=live)
    tl.store(weights + slot + 3, fx * fy, mask=live)

@triton.jit
def segments(order, starts, keys_sorted, weights, grad_out, grad_inp, C, HW, P,
             CBLOCK: tl.constexpr):
    """Deterministic input gradient, step 2: one program per input pixel (and block of channels) adds its
    contributions one after another, in the order of the stable sort – the same order on every run."""
    s = tl.program_id(0)
    cs = tl.program_id(1) * CBLOCK + tl.arange(0, CBLOCK)
    cmask = cs < C
    begin = tl.load(starts + s)
    end = tl.load(starts + s + 1)
    key = tl.load(keys_sorted + begin)
    n = key // HW
    pixel = key % HW
    acc = tl.zeros([CBLOCK], dtype=tl.float32) + 0.0 * tl.load(weights + 0)
    for k in range(begin, end):
        e = tl.load(order + k)
        w = tl.load(weights + e)
        q = e // 4 - n * P  # the output pixel of this contribution, in image n
        acc += w * load_as(grad_out + (n * C + cs) * P + q, cmask, w)
    tl.store(grad_inp + (n * C + cs) * HW + pixel, acc, mask=cmask)
