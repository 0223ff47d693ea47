"""How a learner's result is compared with the reference's (every lesson): same type, shape and dtype, values
within tolerance – on plain tensors and arrays, whatever subclass the learner returned.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["compare", "plain"]


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def _float64(array: torch.Tensor | np.ndarray) -> np.ndarray:
    """A float64 NumPy copy of a tensor or an array."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().double().numpy()
    return array.astype(np.float64)


def compare(expected: Any, actual: Any, rtol: float = 1e-5, atol: float = 1e-5) -> tuple[bool, float, str]:
    """Compare the reference's result with the learner's: same type, shape and dtype, values within tolerance.

    Returns ``(ok, worst_absolute_error, message)``.

    >>> compare(torch.ones(2), torch.ones(2) + 1e-7)
    (True, 1.1920928955078125e-07, '')
    >>> compare(torch.ones(2), torch.ones(3))
    (False, inf, 'expected shape (2,), got (3,)')
    """
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            return False, float("inf"), f"expected a sequence of {len(expected)} results, got {_describe(actual)}"
        worst, messages = 0.0, []
        for i, (e, a) in enumerate(zip(expected, actual)):
            ok, err, msg = compare(e, a, rtol, atol)
            worst = max(worst, err)
            if not ok:
                messages.append(f"item {i}: {msg}")
        return not messages, worst, "; ".join(messages)
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        tensor = isinstance(expected, torch.Tensor)
        kind, name = (torch.Tensor, "a torch.Tensor") if tensor else (np.ndarray, "a numpy array")
        if not isinstance(actual, kind):
            return False, float("inf"), f"expected {name}, got {_describe(actual)}"
        if actual.shape != expected.shape:
            return False, float("inf"), f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}"
        if actual.dtype != expected.dtype:
            return False, float("inf"), f"expected dtype {expected.dtype}, got {actual.dtype}"
        expected_np, actual_np = _float64(expected), _float64(actual)
    elif isinstance(expected, (bool, np.bool_)):
        ok = bool(actual) == bool(expected) and isinstance(actual, (bool, np.bool_))
        return ok, 0.0 if ok else 1.0, "" if ok else f"got {actual!r}, which is not the right truth value"
    elif isinstance(expected, (int, float, np.number)):
        if isinstance(actual, (torch.Tensor, np.ndarray)) and isinstance(expected, (int, float)):
            return False, float("inf"), (f"expected a Python {type(expected).__name__}, got {_describe(actual)}; "
                                         "convert with float(...) or .item()")
        if isinstance(actual, (bool, np.bool_)) or not isinstance(actual, (int, float, np.number)):
            return False, float("inf"), f"expected a number, got {_describe(actual)}"
        expected_np, actual_np = np.float64(expected), np.float64(actual)
    else:
        ok = expected == actual
        return ok, 0.0 if ok else 1.0, "" if ok else f"got {_describe(actual)}, which is not the reference's result"

    nan_mismatch = np.isnan(expected_np) != np.isnan(actual_np)
    if nan_mismatch.any():
        return False, float("inf"), "NaN where the reference has a number (or the other way round)"
    diff = np.abs(np.nan_to_num(expected_np) - np.nan_to_num(actual_np))
    worst = float(diff.max()) if diff.size else 0.0
    bad = diff > atol + rtol * np.abs(np.nan_to_num(expected_np))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        # The reference's value is never printed: a learner who reads "expected -0.84, got 0.84" flips a sign
        # without finding out why. The size of the error (to one digit) and where it is are what a debugger needs.
        if not where:  # a single number: how far off would give the answer away (an integer count, exactly)
            return False, worst, f"you return {actual_np[where]:.6g}, which is not the reference's value"
        return False, worst, (
            f"{int(bad.sum())} of {bad.size} values differ; worst error about {worst:.1g} "
            f"(the first at index {where}, where you return {actual_np[where]:.6g})"
        )
    return True, worst, ""


def plain(value: Any) -> Any:
    """``value`` with tensor and array subclasses turned into plain ``torch.Tensor`` / ``numpy.ndarray`` copies, so
    that a comparison runs torch's and NumPy's own code, not methods a subclass overrides."""
    if isinstance(value, torch.Tensor) and type(value) is not torch.Tensor:
        with torch._C.DisableTorchFunctionSubclass():
            return torch.Tensor._make_subclass(torch.Tensor, value.detach()).clone()
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        return np.array(value.view(np.ndarray), copy=True)
    if isinstance(value, tuple) and type(value) is not tuple:
        return value  # a namedtuple or a rigged tuple: compare() checks the type of what it reads
    if type(value) in (tuple, list):
        return type(value)(plain(v) for v in value)
    return value
