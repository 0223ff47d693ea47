"""Kernel exercises (lesson 7): the device their cases run on, and a kernel stub that says "not implemented yet"
before anything is compiled.

* :func:`kernel_device` – where a Triton kernel written by the learner runs: CUDA when a GPU is there and Triton's
  interpreter is off (``TRITON_INTERPRET`` unset: the kernel is compiled for the GPU), the CPU otherwise (the
  interpreter runs the kernel on CPU tensors). :func:`on_kernel_device` moves a case's tensors there, so that
  ``check()`` and the grader call a learner's launcher with tensors its kernel can read.
* :func:`jit_exercise` – ``@triton.jit`` for a kernel exercise. A generated stub's body is ``raise
  NotImplementedError``, which Triton's compiler rejects (``UnsupportedLanguageConstruct ... Raise``; only the
  interpreter accepts it): on a GPU, "Run All" on a fresh lesson would stop at the kernel. ``jit_exercise`` looks at
  the function's body first: a stub becomes a :class:`KernelStub`, whose launch raises ``NotImplementedError`` in
  Python – ``check()`` reports "not implemented yet" – and anything else is handed to ``triton.jit``.

Triton is imported only when a written kernel is decorated.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from typing import Any, Callable

import torch

from ..gpu import interpreter
from .model import Case

__all__ = ["kernel_device", "on_kernel_device", "jit_exercise", "is_stub", "KernelStub"]


def kernel_device() -> torch.device:
    """``cuda`` when CUDA is available and the interpreter is off, else ``cpu`` (the interpreter's tensors)."""
    return torch.device("cuda" if torch.cuda.is_available() and not interpreter() else "cpu")


def _moved(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_moved(v, device) for v in value)
    return value


def on_kernel_device(case: Case) -> Case:
    """``case`` with every tensor argument (in tuples and lists too) moved to :func:`kernel_device`."""
    device = kernel_device()
    return dataclasses.replace(case, args=_moved(case.args, device),
                               kwargs={k: _moved(v, device) for k, v in case.kwargs.items()})


def _body(fn: Callable[..., Any]) -> list[ast.stmt]:
    """The statements of ``fn``'s body (its docstring left out), parsed from its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    definition = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))
    body = definition.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return body


def is_stub(fn: Callable[..., Any]) -> bool:
    """True when ``fn``'s body is only ``raise NotImplementedError`` (or ``...(...)``): a generated stub."""
    body = _body(fn)
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


class KernelStub:
    """Stands in for a kernel exercise not written yet: ``stub[grid](...)`` raises ``NotImplementedError``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")

    def __getitem__(self, grid: Any) -> Callable[..., Any]:
        def launch(*args: Any, **kwargs: Any) -> None:
            raise NotImplementedError(f"{self.__name__} is not written yet (its body is the stub)")

        return launch

    def __repr__(self) -> str:
        return f"KernelStub({self.__name__})"


def jit_exercise(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``@triton.jit`` (with ``options``) for a kernel exercise, or a :class:`KernelStub` when the body is a stub."""
    if fn is None:
        return lambda f: jit_exercise(f, **options)
    if is_stub(fn):
        return KernelStub(fn)
    import triton

    return triton.jit(fn, **options)
