"""Input validation shared by every module: clear errors that name what was expected.

Every public function in the package checks its tensors with these helpers, so a wrong shape, dtype or device
fails loudly with a message like ``theta: expected shape (N, 2, 3), got (2, 3)`` instead of returning a silently
wrong answer.
"""
from __future__ import annotations

from typing import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_tensor(value: object, name: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``value`` is a ``torch.Tensor``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def check_float(t: torch.Tensor, name: str) -> None:
    """Raise ``TypeError`` unless ``t`` has a floating-point dtype."""
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name}: expected a floating-point tensor (float32 or float64), got dtype {t.dtype}; "
            f"convert with {name}.float()"
        )


def check_ndim(t: torch.Tensor, ndim: int, name: str, layout: str) -> None:
    """Raise ``ValueError`` unless ``t.ndim == ndim``; ``layout`` is e.g. ``"(N, C, H, W)"``."""
    if t.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor of shape {layout}, got shape {_shape(t)}")


def check_last_dims(t: torch.Tensor, dims: Sequence[int], name: str, layout: str) -> None:
    """Raise ``ValueError`` unless the trailing dimensions of ``t`` equal ``dims``."""
    if tuple(t.shape[-len(dims):]) != tuple(dims):
        raise ValueError(f"{name}: expected shape {layout}, got {_shape(t)}")


def check_same(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise unless ``a`` and ``b`` share dtype and device (``TypeError`` / ``ValueError``)."""
    if a.dtype != b.dtype:
        raise TypeError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{name_a} and {name_b} must be on the same device, got {a.device} and {b.device}")


def check_batch(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless the batch sizes (dim 0) agree."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same batch size N, got {a.shape[0]} and {b.shape[0]} "
            f"(shapes {_shape(a)} and {_shape(b)})"
        )


def check_choice(value: str, choices: Sequence[str], name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


def check_size(size: Sequence[int], ndim: int, name: str = "size") -> tuple[int, ...]:
    """Validate a ``torch.Size``-like tuple of ``ndim`` positive ints and return it as a tuple."""
    try:
        size = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of {ndim} ints like (N, C, H, W), got {size!r}") from None
    if len(size) != ndim or any(s <= 0 for s in size):
        layout = "(N, C, H, W)" if ndim == 4 else f"{ndim} positive ints"
        raise ValueError(f"{name}: expected {layout} with positive entries, got {size!r}")
    return size


def check_pair(value: object, name: str, layout: str = "(H, W)") -> tuple[int, int]:
    """Validate a pair of positive ints such as an image size and return it as a tuple.

    ``TypeError`` unless it is a pair of ints; ``ValueError`` unless both are positive.
    """
    try:
        a, b = (int(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected an int or a pair {layout}, got {value!r}") from None
    if a <= 0 or b <= 0:
        raise ValueError(f"{name}: expected positive {layout}, got {tuple(value)}")  # type: ignore[arg-type]
    return a, b
