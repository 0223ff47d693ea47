"""Input validation shared by every module: clear errors that name what was expected (every lesson).

Every public function in the package's ``__all__`` checks its arguments with these helpers, so a wrong shape,
dtype, device, size or mode fails loudly with a message like ``theta: expected shape (N, 2, 3), got (2, 3)``
instead of returning a silently wrong answer (``tests/test_contract.py`` calls the public functions with bad input).

Integers follow Python's ``operator.index`` rule, as torch's own size arguments do: ``3`` and ``numpy.int64(3)``
pass, ``3.0``, ``2.7``, ``"3"`` and ``True`` are refused (a bool is an int to Python, never a size to us).

Error types: every error keeps its message and is *also* an instance of what ``torch`` / ``torchvision`` raise for
the same input, so code written against theirs (``except RuntimeError``, their own tests) works with ours:
:class:`ShapeError` (a ``ValueError`` and a ``RuntimeError``: torch's C++ checks of shapes and sizes),
:class:`DTypeError` (a ``TypeError``, ``ValueError`` and ``RuntimeError``: ``F.affine_grid`` raises ``ValueError``
for an integer ``theta``, ``F.grid_sample`` ``RuntimeError`` for mixed dtypes), :class:`DeviceError` (a
``ValueError`` and a ``RuntimeError``: "Expected all tensors to be on the same device") and
:class:`UnsupportedSizeError` (a :class:`ShapeError` and a ``NotImplementedError``: ``F.affine_grid`` with a size
that is neither 4-D nor 5-D).

The ``impl=`` vocabulary (its names, what ``"auto"`` picks, the defaults) is :mod:`stn_course.impls`.
"""
from __future__ import annotations

import operator
from typing import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class ShapeError(ValueError, RuntimeError):
    """A wrong shape or size: a ``ValueError`` to the course, a ``RuntimeError`` like torch's own shape checks.

    >>> isinstance(ShapeError("grid: expected shape (N, H_out, W_out, 2)"), (ValueError, RuntimeError))
    True
    """


class UnsupportedSizeError(ShapeError, NotImplementedError):
    """A size of a dimensionality we do not implement (``F.affine_grid`` raises ``NotImplementedError`` there)."""


class DTypeError(TypeError, ValueError, RuntimeError):
    """A wrong or mismatched dtype: ``TypeError`` to the course; ``ValueError`` (``F.affine_grid``) and
    ``RuntimeError`` (``F.grid_sample``, torchvision's kernels) as torch raises for the same input."""


class DeviceError(ValueError, RuntimeError):
    """Tensors on different devices: ``ValueError`` to the course, ``RuntimeError`` like torch."""


def shape_str(t: torch.Tensor) -> str:
    """``(2, 3)``-style text of a tensor's shape, for error messages."""
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_tensor(value: object, name: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``value`` is a ``torch.Tensor``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def check_float(t: torch.Tensor, name: str) -> None:
    """Raise :class:`DTypeError` (a ``TypeError``) unless ``t`` has a floating-point dtype."""
    if t.dtype not in FLOAT_DTYPES:
        raise DTypeError(
            f"{name}: expected a floating-point tensor (float16, bfloat16, float32 or float64), got dtype "
            f"{t.dtype}; convert with {name}.float()"
        )


def check_float_tensor(value: object, name: str, ndim: int | None = None, layout: str = "") -> torch.Tensor:
    """:func:`check_tensor`, :func:`check_float` and (if ``ndim``) :func:`check_ndim` in one call."""
    check_tensor(value, name)
    check_float(value, name)  # type: ignore[arg-type]
    if ndim is not None:
        check_ndim(value, ndim, name, layout)  # type: ignore[arg-type]
    return value  # type: ignore[return-value]


def check_module(value: object, name: str = "model") -> "torch.nn.Module":
    """Raise ``TypeError`` unless ``value`` is an ``nn.Module``."""
    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{name}: expected a torch.nn.Module, got {type(value).__name__}")
    return value


def check_ndim(t: torch.Tensor, ndim: int, name: str, layout: str) -> None:
    """Raise :class:`ShapeError` (a ``ValueError``) unless ``t.ndim == ndim``; ``layout`` is e.g. ``"(N, C, H, W)"``."""
    if t.ndim != ndim:
        raise ShapeError(f"{name}: expected a {ndim}-D tensor of shape {layout}, got shape {shape_str(t)}")


def check_same(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise unless ``a`` and ``b`` share dtype and device (:class:`DTypeError` / :class:`DeviceError`)."""
    if a.dtype != b.dtype:
        raise DTypeError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise DeviceError(f"{name_a} and {name_b} must be on the same device, got {a.device} and {b.device}")


def check_same_device(tensors: dict[str, torch.Tensor]) -> None:
    """Raise :class:`DeviceError` (a ``ValueError``) unless every tensor is on one device; the message names each
    tensor's device."""
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        where = ", ".join(f"{name} on {t.device}" for name, t in tensors.items())
        raise DeviceError(f"expected all tensors on one device, got {where}")


def check_batch(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise :class:`ShapeError` (a ``ValueError``) unless the batch sizes (dim 0) agree."""
    if a.shape[0] != b.shape[0]:
        raise ShapeError(
            f"{name_a} and {name_b} must have the same batch size N, got {a.shape[0]} and {b.shape[0]} "
            f"(shapes {shape_str(a)} and {shape_str(b)})"
        )


def check_choice(value: object, choices: Sequence[str], name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (``TypeError`` if it is not even a string)."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {type(value).__name__} "
                        f"{value!r}")
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


def check_bool(value: object, name: str) -> bool:
    """Raise ``TypeError`` unless ``value`` is a bool (``align_corners=1`` is accepted by torch; ``"False"`` is not)."""
    if not isinstance(value, bool):
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return value


def check_int(value: object, name: str, minimum: int | None = None) -> int:
    """An ``int`` by ``operator.index`` (floats, strings and bools are refused), at least ``minimum``."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got bool {value!r}")
    try:
        result = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}") from None
    if minimum is not None and result < minimum:
        wanted = "a positive int" if minimum == 1 else "a non-negative int" if minimum == 0 else f"an int >= {minimum}"
        raise ValueError(f"{name}: expected {wanted}, got {result}")
    return result


def _int_sequence(value: object, name: str, what: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__} {value!r}")
    items = tuple(value)  # type: ignore[arg-type]
    for item in items:
        if isinstance(item, bool):
            raise TypeError(f"{name}: expected {what}, got a bool in {value!r}")
        try:
            operator.index(item)
        except TypeError:
            raise TypeError(f"{name}: expected {what}, got {type(item).__name__} {item!r} in {value!r}") from None
    return tuple(operator.index(item) for item in items)


def check_size(size: object, ndim: int, name: str = "size", allow_zero: bool = False) -> tuple[int, ...]:
    """Validate a ``torch.Size``-like sequence of ``ndim`` ints and return it as a tuple.

    ``TypeError`` unless every entry is an int (``operator.index``; no floats, no bools); :class:`ShapeError` (a
    ``ValueError``) unless there are ``ndim`` of them, all positive (or, with ``allow_zero``, non-negative: empty
    batches and outputs).
    """
    layout = "(N, C, H, W)" if ndim == 4 else "(H, W)" if ndim == 2 else f"{ndim} ints"
    values = _int_sequence(size, name, f"a sequence of {ndim} ints like {layout}")
    low = 0 if allow_zero else 1
    if len(values) != ndim or any(s < low for s in values):
        kind = "non-negative" if allow_zero else "positive"
        raise ShapeError(f"{name}: expected {layout} with {kind} entries, got {tuple(size)!r}")  # type: ignore
    return values


def check_pair(value: object, name: str, layout: str = "(H, W)", minimum: int = 1) -> tuple[int, int]:
    """Validate an int or a pair of ints (an image size, a stride) and return it as a pair.

    ``TypeError`` unless it is an int or a pair of ints (``operator.index``; no floats, no bools); ``ValueError``
    unless both are at least ``minimum``.
    """
    if not isinstance(value, bool) and hasattr(value, "__index__"):
        value = (value, value)
    values = _int_sequence(value, name, f"an int or a pair of ints {layout}")
    if len(values) != 2:
        raise ValueError(f"{name}: expected an int or a pair {layout}, got {tuple(value)!r}")  # type: ignore
    if min(values) < minimum:
        wanted = "positive" if minimum == 1 else "non-negative" if minimum == 0 else f">= {minimum}"
        raise ValueError(f"{name}: expected {layout} with {wanted} entries, got {values}")
    return values[0], values[1]
