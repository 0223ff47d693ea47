"""Properties a check tests besides the values (every lesson), each with its own diagnosis.

A wrong answer is seldom "wrong everywhere": it has the wrong dtype, the wrong shape, writes into its inputs,
cuts the gradient off, gets the gradient wrong only where the sampler has a kink, or asks autograd inside a
hand-written ``backward``. The runner (:mod:`.running`) names the property that failed in
:attr:`~.model.CaseResult.property`; ``check()`` prints that property's diagnosis *before* – and instead of – the
failing case's own hint, which may be about something else.

Two kinds:

* **Read from a failure** (:func:`diagnose`): ``DTYPE``, ``SHAPE``, ``GRADIENT_MISSING``, ``GRADIENT_AT_KINKS``
  – every check gets these for free (a case marked ``Case(kink=True)`` makes a wrong value or gradient there a
  ``GRADIENT_AT_KINKS`` failure).
* **Probed by running the learner's function once more** (:class:`Property`, listed in
  :attr:`~.model.Check.properties`): :data:`KEEPS_INPUTS` (the inputs are not modified in place),
  :data:`HAND_DERIVED_BACKWARD` (a custom ``autograd.Function``'s ``backward`` asks no autograd and is marked
  ``@once_differentiable``), or your own ``Property(name, test)`` whose ``test(fn, case)`` returns a diagnosis
  (a string) when ``fn`` breaks it on ``case`` and ``None`` otherwise. Probes need the function in this process:
  ``check()`` and the tests run them, the sandboxed grader (whose function lives in another process) does not.

API for a lesson's checks module::

    from .properties import KEEPS_INPUTS, HAND_DERIVED_BACKWARD, Property
    register(exercise("NN.name", ..., properties=(KEEPS_INPUTS,)))
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .calls import _copy
from .model import Case

__all__ = ["DTYPE", "SHAPE", "PRECISION", "GRADIENT_MISSING", "GRADIENT_AT_KINKS", "INPUTS_MODIFIED", "AUTOGRAD_IN_BACKWARD",
           "NOT_ONCE_DIFFERENTIABLE", "DIAGNOSES", "Property", "KEEPS_INPUTS", "HAND_DERIVED_BACKWARD", "diagnose",
           "probe"]

DTYPE, SHAPE, PRECISION = "dtype", "shape", "precision"
GRADIENT_MISSING, GRADIENT_AT_KINKS = "gradient missing", "gradient at the kinks"
INPUTS_MODIFIED, AUTOGRAD_IN_BACKWARD, NOT_ONCE_DIFFERENTIABLE = ("input modified", "autograd inside backward",
                                                                  "not once_differentiable")

# One diagnosis per property: what is wrong, not how to write the exercise.
DIAGNOSES = {
    DTYPE: "the values may be right, but the dtype is not the one the exercise states: build the result in that "
           "dtype (torch.tensor(..., dtype=...)) or keep the input's dtype – no float32 step in between.",
    SHAPE: "the result has the wrong shape: compare the docstring's shapes with yours (batch dimension, the order "
           "of H and W, a missing or extra dimension).",
    PRECISION: "the values are right to about 7 digits but not to the check's tolerance: somewhere a float32 "
               "step rounds them (a float32 tensor, torch.tensor(...) without dtype, .float()) – compute in the "
               "input's dtype throughout.",
    GRADIENT_MISSING: "no gradient flows back to the input the text says it depends on: somewhere the result is "
                      "cut off from it (.detach(), .item(), float(...), NumPy, torch.tensor(...) of a tensor, "
                      "torch.no_grad()). Keep every step a torch operation on the input itself.",
    GRADIENT_AT_KINKS: "this case puts points exactly on a kink – a pixel centre (integer coordinate), the border "
                       "of the image or a mirror line – where a spatial transformer at the identity sits. There the "
                       "gradient follows ATen's convention (F.grid_sample's backward): the derivative on the side of "
                       "the upper neighbour (the weight of floor(x) + 1), and 0 for a coordinate exactly on the clamp "
                       "boundary (it counts as outside). Random points never hit these – check your <= / < and "
                       "your choice of neighbour at an integer.",
    INPUTS_MODIFIED: "your function changed one of its inputs in place (+=, x[i] = …, .add_(), …): the caller's "
                     "tensor must come back as it went in. Work on a copy (x.clone()) or build new tensors.",
    AUTOGRAD_IN_BACKWARD: "your backward asks autograd for the gradient (torch.autograd.grad / .backward() inside "
                          "backward): the exercise is to compute it by hand, from the formulas of the lesson.",
    NOT_ONCE_DIFFERENTIABLE: "your gradients come back as a graph PyTorch can differentiate again: asked for a "
                             "second derivative (create_graph=True), it would differentiate the operations of your "
                             "hand-written backward (floor, gathers, masks) and silently return wrong numbers "
                             "instead of an error. A backward that is not itself differentiable must say so.",
}


def diagnose(case: Case, message: str, error: float = float("inf")) -> str:
    """The property a failed comparison of ``case`` shows (``message`` and worst ``error`` are the comparison's),
    or ``""``.

    >>> diagnose(Case("x"), "expected dtype torch.float64, got torch.float32")
    'dtype'
    """
    if "expected dtype" in message:
        return DTYPE
    if "expected shape" in message:
        return SHAPE
    if "no gradient reaches" in message:
        return GRADIENT_MISSING
    if case.kink and ("differ" in message or "gradient" in message):
        return GRADIENT_AT_KINKS
    if 0 < error < 1e-4 and "differ" in message:
        return PRECISION
    return ""


@dataclass(frozen=True)
class Property:
    """A property probed by running the learner's function on a case again: ``test(fn, case)`` returns a
    diagnosis when ``fn`` breaks it, ``None`` when it holds. ``name`` is what the feedback calls it."""

    name: str
    test: Callable[[Callable[..., Any], Case], str | None]


def _same(before: Any, after: Any) -> bool:
    if isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor):
        if before.shape != after.shape or before.dtype != after.dtype:
            return False
        return bool(((before == after) | (before.isnan() & after.isnan())).all()) if before.numel() else True
    if isinstance(before, np.ndarray) and isinstance(after, np.ndarray):
        return before.shape == after.shape and bool(np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
    if isinstance(before, (tuple, list)) and isinstance(after, (tuple, list)) and len(before) == len(after):
        return all(_same(b, a) for b, a in zip(before, after))
    return True  # numbers, strings, modules, functions: not what this property is about


def _keeps_inputs(fn: Callable[..., Any], case: Case) -> str | None:
    args, kwargs = _copy(case.args), _copy(case.kwargs)
    fn(*args, **kwargs)
    for i, (before, after) in enumerate(zip(case.args, args)):
        if not _same(before, after):
            return f"{DIAGNOSES[INPUTS_MODIFIED]} (argument {i + 1} changed)"
    for name, before in case.kwargs.items():
        if not _same(before, kwargs[name]):
            return f"{DIAGNOSES[INPUTS_MODIFIED]} (argument {name!r} changed)"
    return None


KEEPS_INPUTS = Property(INPUTS_MODIFIED, _keeps_inputs)


@contextlib.contextmanager
def _watched_autograd(log: list[str]) -> Iterator[None]:
    """``torch.autograd.grad``/``backward`` counting nested calls (a call made while another runs is autograd
    inside a ``backward``) and building a graph of the backward (``create_graph=True``), so that the gradients
    show whether a custom Function's backward is ``@once_differentiable``."""
    grad, backward, depth = torch.autograd.grad, torch.autograd.backward, [0]

    def enter() -> None:
        if depth[0]:
            log.append(AUTOGRAD_IN_BACKWARD)

    def watched_grad(*args: Any, **kwargs: Any) -> Any:
        outermost = not depth[0]
        enter()
        depth[0] += 1
        try:
            return grad(*args, **({**kwargs, "create_graph": True} if outermost else kwargs))
        finally:
            depth[0] -= 1

    def watched_backward(*args: Any, **kwargs: Any) -> Any:
        enter()
        depth[0] += 1
        try:
            return backward(*args, **kwargs)
        finally:
            depth[0] -= 1

    torch.autograd.grad, torch.autograd.backward = watched_grad, watched_backward
    try:
        yield
    finally:
        torch.autograd.grad, torch.autograd.backward = grad, backward


def _hand_derived_backward(fn: Callable[..., Any], case: Case) -> str | None:
    """For a function that runs a custom ``autograd.Function`` forward and backward with ``torch.autograd.grad``
    and returns ``(output, *gradients)``, its first argument the output's gradient."""
    args = list(_copy(case.args))
    args[0] = args[0].detach().clone().requires_grad_()  # a graph-carrying grad_output: once_differentiable shows
    log: list[str] = []
    with torch.enable_grad(), _watched_autograd(log):
        result = fn(*args, **_copy(case.kwargs))
    if AUTOGRAD_IN_BACKWARD in log:
        return DIAGNOSES[AUTOGRAD_IN_BACKWARD]
    gradients = [t for t in (result[1:] if isinstance(result, (tuple, list)) else ())
                 if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    if any(type(t.grad_fn).__name__ != "Error" for t in gradients):  # once_differentiable wraps them in an Error
        return DIAGNOSES[NOT_ONCE_DIFFERENTIABLE]
    return None


HAND_DERIVED_BACKWARD = Property(AUTOGRAD_IN_BACKWARD, _hand_derived_backward)


def probe(properties: tuple[Property, ...], fn: Callable[..., Any], case: Case) -> tuple[str, str] | None:
    """The first of ``properties`` that ``fn`` breaks on ``case``: ``(name, diagnosis)``, or ``None``."""
    for prop in properties:
        message = prop.test(fn, case)
        if message:
            name = NOT_ONCE_DIFFERENTIABLE if message == DIAGNOSES[NOT_ONCE_DIFFERENTIABLE] else prop.name
            return name, message
    return None
