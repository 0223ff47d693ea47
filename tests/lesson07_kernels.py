"""A learner's lesson-7 kernels, written as the lesson asks (zeros padding, ``align_corners=False``): the forward
with switches for the masks a learner forgets, and the backward's input gradient with a switch for the atomics –
imported by the ``triton``-marked tests only (``triton`` is optional).

``MASK_STORE=False``: the store writes every lane, past the output's end too; ``MASK_LOAD=False``: the four
neighbour loads read outside the image. Under Triton's interpreter either touches memory outside the tensors –
without lesson 7's guard (:mod:`stn_course.gpu.bounds`) the process dies ("free(): invalid pointer").
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from stn_course import gpu


@triton.jit
def learner_kernel(inp, theta, out, C, H, W, H_out, W_out, BLOCK: tl.constexpr, MASK_STORE: tl.constexpr,
                   MASK_LOAD: tl.constexpr):
    n = tl.program_id(0)
    offsets = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    live = offsets < H_out * W_out
    t0 = tl.load(theta + n * 6 + 0)
    t1 = tl.load(theta + n * 6 + 1)
    t2 = tl.load(theta + n * 6 + 2)
    t3 = tl.load(theta + n * 6 + 3)
    t4 = tl.load(theta + n * 6 + 4)
    t5 = tl.load(theta + n * 6 + 5)
    i = (offsets // W_out).to(t0.dtype)
    j = (offsets % W_out).to(t0.dtype)
    xt = (2.0 * j + 1.0) / W_out - 1.0
    yt = (2.0 * i + 1.0) / H_out - 1.0
    x = ((t0 * xt + t1 * yt + t2 + 1.0) * W - 1.0) / 2.0
    y = ((t3 * xt + t4 * yt + t5 + 1.0) * H - 1.0) / 2.0
    x0f = tl.floor(x)
    y0f = tl.floor(y)
    fx = x - x0f
    fy = y - y0f
    x0 = x0f.to(tl.int32)
    y0 = y0f.to(tl.int32)
    m00 = live & (x0 >= 0) & (x0 < W) & (y0 >= 0) & (y0 < H)
    m10 = live & (x0 + 1 >= 0) & (x0 + 1 < W) & (y0 >= 0) & (y0 < H)
    m01 = live & (x0 >= 0) & (x0 < W) & (y0 + 1 >= 0) & (y0 + 1 < H)
    m11 = live & (x0 + 1 >= 0) & (x0 + 1 < W) & (y0 + 1 >= 0) & (y0 + 1 < H)
    if not MASK_LOAD:
        m00 = live
        m10 = live
        m01 = live
        m11 = live
    for c in range(0, C):
        image = inp + (n * C + c) * H * W
        value = (1.0 - fx) * (1.0 - fy) * tl.load(image + y0 * W + x0, mask=m00, other=0.0)
        value += fx * (1.0 - fy) * tl.load(image + y0 * W + x0 + 1, mask=m10, other=0.0)
        value += (1.0 - fx) * fy * tl.load(image + (y0 + 1) * W + x0, mask=m01, other=0.0)
        value += fx * fy * tl.load(image + (y0 + 1) * W + x0 + 1, mask=m11, other=0.0)
        if MASK_STORE:
            tl.store(out + (n * C + c) * H_out * W_out + offsets, value, mask=live)
        else:
            tl.store(out + (n * C + c) * H_out * W_out + offsets, value)


def launcher(mask_store: bool = True, mask_load: bool = True):
    """The lesson's launcher around :func:`learner_kernel` with the masks switched as given."""

    def fused_affine_sample(input, theta, out_size):
        input, theta = input.contiguous(), theta.reshape(-1, 6).contiguous().to(input.dtype)
        n, c, h, w = input.shape
        h_out, w_out = out_size
        out = torch.empty(n, c, h_out, w_out, dtype=input.dtype, device=input.device)
        block = gpu.block_size(input.device)
        learner_kernel[(n, triton.cdiv(h_out * w_out, block))](input, theta, out, c, h, w, h_out, w_out, BLOCK=block,
                                                               MASK_STORE=mask_store, MASK_LOAD=mask_load)
        return out

    return fused_affine_sample


@triton.jit
def learner_input_grad_kernel(grad_out, theta, grad_in, C, H, W, H_out, W_out, BLOCK: tl.constexpr,
                              ATOMIC: tl.constexpr, ALIGN: tl.constexpr):
    """Lesson 7's exercise 5, written out independently of the lesson's helper; ``ATOMIC=False``: a plain load, add
    and store, which loses the additions of lanes that share an input pixel."""
    n = tl.program_id(0)
    offsets = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    live = offsets < H_out * W_out
    base = theta + n * 6
    t0 = tl.load(base)
    j = (offsets % W_out).to(t0.dtype)
    i = (offsets // W_out).to(t0.dtype)
    if ALIGN:
        xt = tl.where(W_out > 1, 2.0 * j / tl.maximum(W_out - 1, 1) - 1.0, 0.0 * j)
        yt = tl.where(H_out > 1, 2.0 * i / tl.maximum(H_out - 1, 1) - 1.0, 0.0 * i)
        x = (t0 * xt + tl.load(base + 1) * yt + tl.load(base + 2) + 1.0) * (W - 1) / 2.0
        y = (tl.load(base + 3) * xt + tl.load(base + 4) * yt + tl.load(base + 5) + 1.0) * (H - 1) / 2.0
    else:
        xt = (2.0 * j + 1.0) / W_out - 1.0
        yt = (2.0 * i + 1.0) / H_out - 1.0
        x = ((t0 * xt + tl.load(base + 1) * yt + tl.load(base + 2) + 1.0) * W - 1.0) / 2.0
        y = ((tl.load(base + 3) * xt + tl.load(base + 4) * yt + tl.load(base + 5) + 1.0) * H - 1.0) / 2.0
    x0f = tl.floor(x)
    y0f = tl.floor(y)
    x0 = x0f.to(tl.int32)
    y0 = y0f.to(tl.int32)
    for c in range(0, C):
        g = tl.load(grad_out + (n * C + c) * H_out * W_out + offsets, mask=live, other=0.0)
        for dy in tl.static_range(2):
            for dx in tl.static_range(2):
                xk = x0 + dx
                yk = y0 + dy
                weight = (1.0 - tl.abs(x - xk.to(x.dtype))) * (1.0 - tl.abs(y - yk.to(y.dtype)))
                mask = live & (xk >= 0) & (xk < W) & (yk >= 0) & (yk < H)
                address = grad_in + (n * C + c) * H * W + yk * W + xk
                if ATOMIC:
                    tl.atomic_add(address, weight * g, mask=mask)
                else:
                    tl.store(address, tl.load(address, mask=mask, other=0.0) + weight * g, mask=mask)


def input_gradient_launcher(atomic: bool = True):
    """The lesson's backward launcher: the input's gradient from :func:`learner_input_grad_kernel`, θ's from the
    package's fused kernel (its autograd) – an independent pair for ``07.affine_input_gradient``."""
    from stn_course.gpu.affine import affine_sample

    def affine_backward(grad_output, input, theta, align_corners=False):
        grad_output, t6 = grad_output.contiguous(), theta.reshape(-1, 6).contiguous().to(grad_output.dtype)
        n, c, h_out, w_out = grad_output.shape
        grad_input = torch.zeros_like(input)
        block = gpu.block_size(grad_output.device)
        learner_input_grad_kernel[(n, triton.cdiv(h_out * w_out, block))](
            grad_output, t6, grad_input, c, input.shape[2], input.shape[3], h_out, w_out, BLOCK=block,
            ATOMIC=atomic, ALIGN=bool(align_corners))
        t = theta.detach().clone().requires_grad_()
        with torch.enable_grad():
            out = affine_sample(input, t, (h_out, w_out), align_corners=align_corners)
            (grad_theta,) = torch.autograd.grad(out, t, grad_output)
        return grad_input, grad_theta

    return affine_backward
