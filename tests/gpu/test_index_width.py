"""The package's Triton kernels index tensors past 2³¹ elements correctly (lesson 7's int32 overflow, in our own
kernels) – without allocating them.

Each kernel runs under Triton's interpreter with the sizes of a tensor larger than 2³¹ elements passed as its
integer arguments, and one-element stand-ins for the big tensors: :func:`traced` intercepts every load, store and
atomic whose active lanes point outside the real (small) tensors, records the addresses and touches no memory
(loads read zeros). The addresses are compared with the flat offsets an int64 NumPy model computes from the
tensors' shapes: a 32-bit ``(n·C + c)·H·W`` wraps and points elsewhere. Only the first block of lanes of each
(sample, channel) runs – the grid's last axis is 1 – so each test takes about a second. The interpreter is used on
any machine (:class:`InterpretedFunction` of the kernel's Python), so the test runs on GPU machines too. The
compiled kernels: the last test (marker ``gpu_compile``, CI's background compile step) finds the 64-bit multiplies
in their PTX.

Also: the launchers refuse a plane the 32-bit lanes cannot index, with the limit named."""
from __future__ import annotations

import contextlib
import inspect
from typing import Iterator

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.triton  # the kernels are Triton's: skipped, "needs triton", without it (conftest.py)

N, C, H, W = 2, 2, 40_000, 40_000  # H·W = 1.6e9 < 2³¹, but (n·C + c)·H·W reaches 4.8e9
BIG = (N * C - 1) * H * W


@contextlib.contextmanager
def traced() -> Iterator[tuple[list, dict]]:
    """Within: interpreted kernels' memory operations outside their small tensor arguments are recorded as
    ``(op, addresses of the active lanes)`` in the first list, in program order, and not performed (loads give
    zeros, atomics return zeros); ``starts`` maps each tensor argument's name to its storage's first byte."""
    from triton.runtime import interpreter as module

    builder, executor = module.interpreter_builder, module.GridExecutor
    calls: list[tuple[str, np.ndarray]] = []
    starts: dict[str, int] = {}
    extents: list[tuple[int, int]] = []
    original_init, saved = executor._init_args_hst, dict(vars(builder))
    load, store, atomic = builder.create_masked_load, builder.create_masked_store, builder.create_atomic_rmw

    def init_args(self, args_dev, kwargs):
        args_hst, kwargs_hst = original_init(self, args_dev, kwargs)
        named = inspect.signature(self.fn).bind_partial(*args_hst, **kwargs_hst).arguments
        extents.clear()
        for name, value in named.items():
            if isinstance(value, torch.Tensor):
                storage = value.untyped_storage()
                starts[name] = storage.data_ptr()
                extents.append((storage.data_ptr(), storage.data_ptr() + storage.nbytes()))
        return args_hst, kwargs_hst

    def outside(ptrs, mask) -> np.ndarray | None:
        """The active lanes' addresses if any lies outside every real tensor, else None."""
        addresses = np.asarray(ptrs.data, dtype=np.uint64)
        active = addresses[np.broadcast_to(np.asarray(mask.data, dtype=bool), addresses.shape)]
        size = max(1, ptrs.get_element_ty().primitive_bitwidth // 8)
        inside = np.zeros(active.shape, dtype=bool)
        for start, end in extents:
            inside |= (active >= np.uint64(start)) & (active + np.uint64(size) <= np.uint64(end))
        return None if inside.all() else active

    def masked_load(ptrs, mask, other, *rest):
        active = outside(ptrs, mask)
        if active is None:
            return load(ptrs, mask, other, *rest)
        calls.append(("load", active))
        dtype = module._get_np_dtype(ptrs.get_element_ty())
        return module.TensorHandle(np.zeros(np.shape(ptrs.data), dtype=dtype), ptrs.get_element_ty())

    def masked_store(ptrs, value, mask, *rest):
        active = outside(ptrs, mask)
        if active is None:
            return store(ptrs, value, mask, *rest)
        calls.append(("store", active))

    def atomic_rmw(op, ptrs, value, mask, *rest):
        active = outside(ptrs, mask)
        if active is None:
            return atomic(op, ptrs, value, mask, *rest)
        calls.append(("atomic", active))
        return module.TensorHandle(np.zeros_like(value.data), value.dtype.scalar)

    executor._init_args_hst = init_args
    builder.create_masked_load, builder.create_masked_store = masked_load, masked_store
    builder.create_atomic_rmw = atomic_rmw
    try:
        yield calls, starts
    finally:
        executor._init_args_hst = original_init
        for name in ("create_masked_load", "create_masked_store", "create_atomic_rmw"):
            if name in saved:
                setattr(builder, name, saved[name])
            else:
                vars(builder).pop(name, None)


def interpreted(kernel):
    """``kernel`` (a ``@triton.jit`` function, compiled or interpreted) run through Triton's interpreter."""
    from triton.runtime.interpreter import InterpretedFunction

    return InterpretedFunction(kernel.fn)


def stand_in(dtype=torch.float32) -> torch.Tensor:
    """A one-element tensor standing for a big one: every access outside it is traced, not performed."""
    return torch.zeros(1, dtype=dtype)


def expect(calls, starts, plan) -> None:
    """``calls`` (from :func:`traced`) are ``plan``'s ``(op, tensor name, int64 element offsets)`` in order,
    float32 elements."""
    assert [op for op, _ in calls] == [op for op, _, _ in plan]
    for (op, got), (_, name, offsets) in zip(calls, plan, strict=True):
        want = np.uint64(starts[name]) + np.asarray(offsets, dtype=np.uint64) * np.uint64(4)
        assert np.array_equal(np.sort(got), np.sort(want)), (
            f"{op} on {name}: element offsets {(got.astype(np.int64) - starts[name]) // 4}, "
            f"expected {np.asarray(offsets, dtype=np.int64)}")


def affine_arguments():
    """A 1×1 output of an (N, C, H, W) input under the identity: each (n, c) reads the 2×2 pixels around the
    centre, (H/2 − 1, W/2 − 1) to (H/2, W/2). Returns (θ, xs, ys, neighbour offsets within a plane)."""
    theta = torch.eye(2, 3).expand(N, 2, 3).reshape(-1, 6).contiguous()
    xs, ys = torch.zeros(1), torch.zeros(1)
    y0, x0 = H // 2 - 1, W // 2 - 1
    return theta, xs, ys, np.array([y0 * W + x0, y0 * W + x0 + 1, (y0 + 1) * W + x0, (y0 + 1) * W + x0 + 1])


def affine_constants(**more):
    from stn_course.gpu.affine import kernel_constants

    return {**kernel_constants("zeros", "cpu"), "ALIGN": False, "BLOCK": 16, **more}


def test_affine_forward_reads_planes_past_two_to_the_31():
    """forward's input offsets ``(n·C + c)·H·W + y·W + x`` up to 4.8e9 (64-bit plane base); the output is small."""
    from stn_course.gpu import _affine_kernels as k

    theta, xs, ys, corners = affine_arguments()
    out = torch.zeros(N, C, 1, 1)
    with traced() as (calls, starts):
        interpreted(k.forward)[(N, 1)](stand_in(), theta, xs, ys, out, C, H, W, 1, 1, **affine_constants())
    expect(calls, starts, [("load", "inp", [(n * C + c) * H * W + corner])
                           for n in range(N) for c in range(C) for corner in corners])
    assert BIG > 2**31


def test_affine_backward_scatters_into_planes_past_two_to_the_31():
    """backward's input reads and atomic input-gradient adds at the same 64-bit offsets as the forward's."""
    from stn_course.gpu import _affine_kernels as k

    theta, xs, ys, corners = affine_arguments()
    grad_out, partial = torch.ones(N, C, 1, 1), torch.zeros(N, 1, 6)
    with traced() as (calls, starts):
        interpreted(k.backward)[(N, 1)](stand_in(), theta, xs, ys, grad_out, stand_in(), partial, C, H, W, 1, 1, 1,
                                        **affine_constants(NEED_INPUT=True))
    plan = []
    for base in [(n * C + c) * H * W for n in range(N) for c in range(C)]:  # per channel: 4 reads, 4 adds
        plan += [("load", "inp", [base + corner]) for corner in corners]
        plan += [("atomic", "grad_inp", [base + corner]) for corner in corners]
    expect(calls, starts, plan)


# deformable: the columns (N, C, K, P) and the offsets (N, 2·G·K, P) pass 2³¹ too, at K·P = 9e8 per channel
HO = WO = 10_000
KW, K, G = 3, 9, 2  # 3×3 taps, one offset group per channel
P = HO * WO


def deform_plan(backward: bool) -> list:
    """The int64 model of im2col's (or col2im's) memory operations for the first 16 (tap, location) entries of
    each (n, c) – tap 0 at locations p = 0…15 of row 0, which read row 0, columns p and p + 1 (zero offsets; stride
    1, no padding) – in the kernel's order."""
    p = np.arange(16, dtype=np.int64)
    plan = []
    for n in range(N):
        for c in range(C):
            group, plane = (n * G + c) * 2 * K * P, (n * C + c) * K * P  # g = c (one channel per group)
            plan += [("load", "offset", group + p), ("load", "offset", group + P + p)]
            plan += [("load", "inp", (n * C + c) * H * W + corner) for corner in (p, p + 1, W + p, W + p + 1)]
            modulation = ("load", "mask", (n * G + c) * K * P + p)
            if not backward:
                plan += [modulation, ("store", "cols", plane + p)]
                continue
            plan += [("load", "grad_cols", plane + p), modulation, ("store", "grad_mask", plane + p)]
            plan += [("atomic", "grad_inp", (n * C + c) * H * W + corner) for corner in (p, p + 1, W + p, W + p + 1)]
            plan += [("store", "grad_offset", 2 * plane + p), ("store", "grad_offset", 2 * plane + P + p)]
    return plan


DEFORM_SIZES = (C, H, W, HO, WO, KW, 1, 1, 0, 0, 1, 1, G, C // G, K)  # C … K: stride 1, padding 0, dilation 1


def test_deform_im2col_writes_columns_past_two_to_the_31():
    """im2col's offset, input, mask and column offsets up to 5.4e9 (64-bit bases per sample and channel)."""
    from stn_course.gpu import _deform_kernels as k

    with traced() as (calls, starts):
        interpreted(k.im2col)[(N, C, 1)](stand_in(), stand_in(), stand_in(), stand_in(), *DEFORM_SIZES,
                                          HAS_MASK=True, BLOCK=16)
    expect(calls, starts, deform_plan(backward=False))
    assert (N * C - 1) * K * P > 2**31 and (N * G - 1) * 2 * K * P > 2**31


def test_deform_col2im_scatters_gradients_past_two_to_the_31():
    """col2im's reads, atomic input-gradient adds and offset/mask-gradient stores at the int64 model's offsets."""
    from stn_course.gpu import _deform_kernels as k

    with traced() as (calls, starts):
        interpreted(k.col2im)[(N, C, 1)](*(stand_in() for _ in range(7)), *DEFORM_SIZES, HAS_MASK=True, BLOCK=16)
    expect(calls, starts, deform_plan(backward=True))


@pytest.mark.parametrize("call, match", [
    (lambda: _affine((1, 1, 2**16, 2**15 + 1), (2, 2)), r"affine_sample: input plane spans 2,147,549,184"),
    (lambda: _affine((1, 1, 2, 2), (2**16, 2**15)), r"affine_sample: output plane plus one block spans"),
    (lambda: _deform((1, 1, 2, 2), (1, 2 * 9, 2**13, 2**14), (1, 1, 3, 3)), r"deform_conv2d: offset rows of one "
                                                                               r"channel spans 2,415,9"),
], ids=["affine input", "affine output", "deform columns"])
def test_launchers_refuse_planes_past_the_32_bit_lanes(call, match):
    """A plane the 32-bit lanes cannot index is refused before any allocation, naming the limit."""
    with pytest.raises(ValueError, match=match + r".*at most 2\*\*31 - 1 = 2,147,483,647"):
        call()


def _big(*shape: int) -> torch.Tensor:
    """A float32 tensor of ``shape`` that allocates one element: an expanded view (the launchers check sizes first)."""
    return torch.zeros(1).expand(*shape)


def _affine(input_shape, size):
    from stn_course.gpu.affine import affine_sample

    return affine_sample(_big(*input_shape), torch.eye(2, 3).expand(input_shape[0], 2, 3), size)


def _deform(input_shape, offset_shape, weight_shape):
    from stn_course.gpu.deform import deform_conv2d

    return deform_conv2d(_big(*input_shape), _big(*offset_shape), _big(*weight_shape), None, (1, 1), (0, 0), (1, 1),
                         None, 1, 1)


# The compiled kernels (ahead of time, no GPU: stn_course.gpu.aot): the plane bases are 64-bit multiplies. With
# int32 bases the PTX of these kernels has no 64-bit multiply at all (mul.lo.s64 / mad.lo.s64; measured on the
# kernels before the fix: 0 in each), only the pointer widening (mul.wide.s32) of a product already wrapped.
_PTX_PROGRAM = """
import json, re, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from stn_course.gpu import aot
wanted = json.loads(sys.argv[1])
counts = {}
for variant in aot.launched_variants():
    if variant.key in wanted:
        source = ASTSource(fn=variant.kernel, signature=dict(variant.signature), constexprs=dict(variant.constants))
        ptx = triton.compile(source, target=GPUTarget("cuda", 90, 32)).asm["ptx"]
        counts[variant.key] = len(re.findall(r"\\b(?:mul|mad)\\.lo\\.s64\\b", ptx))
print(json.dumps(counts))
"""
_WIDE_KERNELS = [
    "affine.forward[float32](FOLD=keep_kernel,CLAMP=False,EMULATE_FMA=False,ALIGN=False,BLOCK=256)",
    "affine.backward[float32](FOLD=keep_kernel,CLAMP=False,EMULATE_FMA=False,ALIGN=False,BLOCK=128,NEED_INPUT=True)",
    "deform.im2col[float32](HAS_MASK=True,BLOCK=256)",
    "deform.col2im[float32](HAS_MASK=True,BLOCK=256)",
]


@pytest.mark.gpu_compile
def test_compiled_kernels_compute_the_plane_bases_in_64_bits(tmp_path):
    """float32 forward, backward, im2col and col2im for sm_90 (four compiles, ~20 s of CPU: CI's background
    compile step runs it): each PTX multiplies in 64 bits."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # compile, not interpret
    env.update(TRITON_CACHE_DIR=str(tmp_path / "triton-cache"), PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", _PTX_PROGRAM, json.dumps(_WIDE_KERNELS)], env=env, cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(counts) == set(_WIDE_KERNELS)
    assert all(count > 0 for count in counts.values()), counts
