"""How a function meets a check's cases (every lesson): the seeded case lists, calls on fresh copies of a case's
arguments, and the gradients of a fixed weighting of what a function returns.

The runner (:mod:`.running`) calls the reference and the learner's function this way; the grader's sandboxed
child calls the learner's function this way too (:mod:`stn_course.grading.namespace`).
"""
from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .model import Case, Check

__all__ = ["iter_cases", "call_case", "gradients_of", "argument", "argument_name"]

_CASES: OrderedDict[tuple, list[Case]] = OrderedDict()  # the last few case lists (the grader reuses them)


def iter_cases(check: Check, seed: int, hidden: bool = False) -> Iterator[Case]:
    """The cases of ``check`` for ``seed`` (the same seed gives the same cases); ``hidden=True``: the hidden ones.

    A case is only ever used through copies (:func:`~.running.run_check` copies its inputs for every call), so the
    lists of the last 256 (check, seed) pairs are kept: grading a class builds each case once, not once per student.
    """
    generator = check.hidden_cases if hidden else check.cases
    if generator is None:
        return
    key = (check.id, generator, seed)
    cases = _CASES.get(key)
    if cases is None:
        torch_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            cases = list(generator(np.random.default_rng(seed)))
        finally:
            torch.random.set_rng_state(torch_state)
        _CASES[key] = cases
        if len(_CASES) > 256:
            _CASES.popitem(last=False)
    yield from cases


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return copy.deepcopy(value)


def _within(case: Case) -> Any:
    """The context every call on ``case`` runs in (:attr:`Case.within`; none by default)."""
    return case.within() if case.within is not None else contextlib.nullcontext()


def call_case(fn: Callable[..., Any], case: Case) -> Any:
    """``fn`` on fresh copies of ``case``'s arguments (nothing ``fn`` does to them reaches the case), within the
    case's context (:attr:`Case.within`)."""
    with _within(case):
        return fn(*_copy(case.args), **_copy(case.kwargs))


def argument(case: Case, position: int | str) -> Any:
    """The argument of ``case`` at ``position``: an index of its positional arguments, or a keyword's name."""
    return case.kwargs[position] if isinstance(position, str) else case.args[position]


def argument_name(position: int | str) -> str:
    """How feedback names the argument at ``position``: ``"argument 2"`` or ``"argument 'y'"``."""
    return f"argument {position!r}" if isinstance(position, str) else f"argument {position + 1}"


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def gradients_of(fn: Callable[..., Any], case: Case, positions: tuple[int | str, ...],
                 grad: Callable[..., Any] | None = None) -> list[torch.Tensor | None] | str:
    """Gradients of ``Σ w · outputs`` (``w`` fixed random weights) w.r.t. the arguments at ``positions`` (an
    index of ``case.args``, or the name of a keyword argument), or a
    message saying why there are none. ``grad(loss, inputs)`` computes them (default: ``torch.autograd.grad`` with
    ``allow_unused=True``; the grader's child passes its own way to the autograd engine)."""
    args, kwargs = list(_copy(case.args)), _copy(case.kwargs)
    inputs = []
    with torch.enable_grad(), _within(case):
        for i in positions:
            where = kwargs if isinstance(i, str) else args
            inputs.append(where[i].detach().clone().requires_grad_())
            where[i] = inputs[-1].clone()  # not a leaf: what fn does to it never touches the leaf
        outputs = [t for t in _tensors(fn(*args, **kwargs)) if t.is_floating_point()]
        connected = [t for t in outputs if t.requires_grad]
        if not connected:
            return ("no gradient reaches the inputs: the result is cut off from them (a .detach(), .item(), "
                    "NumPy or torch.tensor(...) on the way breaks the graph)")
        generator = torch.Generator().manual_seed(1234)
        loss = sum((t * torch.randn(t.shape, generator=generator, dtype=torch.float64).to(t)).sum()
                   for t in connected)
        if grad is None:
            return list(torch.autograd.grad(loss, inputs, allow_unused=True))
        return list(grad(loss, inputs))
