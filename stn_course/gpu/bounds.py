"""Kernel memory checked against the tensors a launch was given, under Triton's interpreter (lesson 7's checks).

A ``tl.store`` without ``mask=`` writes its lanes past the output's end straight into the process's memory: under
the interpreter (``TRITON_INTERPRET=1``) that corrupts the heap, and the notebook's kernel dies later with
"free(): invalid pointer" or a segmentation fault – every variable lost, no feedback. Inside
:func:`checked_memory`, every load and store of a kernel launched through the interpreter first checks the
address of each active lane (mask true) against the storages of the launch's tensor arguments, and raises
:class:`KernelOutOfBounds` – naming the operation, the tensor and how far outside it – *before* anything is read or
written. A correct kernel never notices: masked-off lanes are not checked.

Nothing here runs a kernel or imports Triton unless the interpreter is on and Triton already imported.
"""
from __future__ import annotations

import contextlib
import inspect
import sys
from typing import Any, Iterator

import numpy as np
import torch

from . import interpreter

__all__ = ["KernelOutOfBounds", "checked_memory"]

_ADVICE = ("every load and store needs mask=… that switches off the lanes past the last pixel (offsets >= "
           "H_out·W_out) and the neighbours outside the image (loads also other=0.0)")


class KernelOutOfBounds(IndexError):
    """A kernel's load or store reached outside every tensor it was given (see :func:`checked_memory`)."""


def _extents(fn: Any, args: list, kwargs: dict) -> list[tuple[int, int, str]]:
    """``(first byte, end byte, name)`` of the storage of each tensor argument of a launch of ``fn``."""
    try:
        named = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        named = {f"argument {i + 1}": a for i, a in enumerate(args)} | dict(kwargs)
    extents = []
    for name, value in named.items():
        for tensor in value if isinstance(value, tuple) else (value,):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                extents.append((storage.data_ptr(), storage.data_ptr() + storage.nbytes(), name))
    return extents


def _where(address: int, size: int, extents: list[tuple[int, int, str]]) -> str:
    """Where ``address`` lies relative to the nearest tensor, in elements of ``size`` bytes."""
    def distance(extent):
        start, end, _ = extent
        return start - address if address < start else address + size - end

    start, end, name = min(extents, key=distance)
    if address < start:
        return f"is {-(-(start - address) // size)} element(s) before the start of `{name}`"
    past = -(-(address + size - end) // size)
    return f"is {past} element(s) past the end of `{name}`, which holds {(end - start) // size}"


def _check(kind: str, ptrs: Any, mask: Any, extents: list[tuple[int, int, str]]) -> None:
    """Raise :class:`KernelOutOfBounds` if an active lane of ``ptrs`` lies outside every extent."""
    if not extents:
        return
    size = max(1, ptrs.get_element_ty().primitive_bitwidth // 8)
    addresses = np.asarray(ptrs.data, dtype=np.uint64)
    active = addresses[np.broadcast_to(np.asarray(mask.data, dtype=bool), addresses.shape)]
    inside = np.zeros(active.shape, dtype=bool)
    for start, end, _ in extents:
        inside |= (active >= np.uint64(start)) & (active <= np.uint64(max(start, end - size)))
    if inside.all():
        return
    outside = active[~inside]
    what = "tl.store wrote outside the output" if kind == "store" else "tl.load read outside the input"
    raise KernelOutOfBounds(
        f"your kernel's {what}: {outside.size} active lane(s) point outside every tensor it was given (the first "
        f"{_where(int(outside[0]), size, extents)}) – {_ADVICE}. The access was stopped before it happened.")


@contextlib.contextmanager
def checked_memory() -> Iterator[None]:
    """Within: kernels launched through Triton's interpreter raise :class:`KernelOutOfBounds` on an active lane's
    load or store outside the storages of their tensor arguments, instead of touching that memory. Does nothing
    when the interpreter is off (real GPUs) or Triton is not imported yet."""
    if not interpreter() or "triton" not in sys.modules:
        yield
        return
    from triton.runtime import interpreter as module

    builder, executor = module.interpreter_builder, module.GridExecutor
    extents: list[tuple[int, int, str]] = []
    original_init, saved = executor._init_args_hst, dict(vars(builder))
    load, store = builder.create_masked_load, builder.create_masked_store

    def init_args(self, args_dev, kwargs):
        args_hst, kwargs_hst = original_init(self, args_dev, kwargs)
        extents[:] = _extents(self.fn, list(args_hst), dict(kwargs_hst))
        return args_hst, kwargs_hst

    def masked_load(ptrs, mask, *rest):
        _check("load", ptrs, mask, extents)
        return load(ptrs, mask, *rest)

    def masked_store(ptrs, value, mask, *rest):
        _check("store", ptrs, mask, extents)
        return store(ptrs, value, mask, *rest)

    executor._init_args_hst = init_args
    builder.create_masked_load, builder.create_masked_store = masked_load, masked_store
    try:
        yield
    finally:
        executor._init_args_hst = original_init
        for name in ("create_masked_load", "create_masked_store"):
            if name in saved:
                setattr(builder, name, saved[name])
            else:
                vars(builder).pop(name, None)
