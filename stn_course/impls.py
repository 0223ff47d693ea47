"""The ``impl=`` vocabulary: which implementation of an operation runs, and what ``"auto"`` picks (every lesson).

Several operations of the course exist more than once – the readable version a lesson writes, the package's own
fast one, torch's, and lesson 7's Triton kernels – and every function that offers a choice takes ``impl=`` with the
same names (:data:`IMPLS`). This module is the one definition: the names, which of them each operation accepts
(an :class:`ImplSet` per operation, the table below), what ``"auto"`` becomes for a call, and each default. The
tests prove the paths of one operation equal (``tests/test_stn.py``, ``tests/test_deform.py``,
``tests/test_autograd.py``, ``tests/test_data.py``, ``tests/gpu/``).

The names
---------
* ``"reference"`` – the readable version the learner writes in the lesson (autograd differentiates it);
* ``"fast"`` – the package's own optimised path (lesson 4's hand-derived backward, lesson 6's im2col + GEMM);
* ``"aten"`` – torch's own kernels (``F.affine_grid``, ``F.grid_sample``);
* ``"triton"`` – lesson 7's Triton kernels (:mod:`stn_course.gpu`: CUDA, or CPU through Triton's interpreter);
  asked for explicitly where they cannot run, it is an error that says why;
* ``"auto"`` – one rule everywhere (:meth:`ImplSet.resolve`): ``"triton"`` where the operation has Triton kernels
  that fit the call and can run on its tensors (:func:`stn_course.gpu.auto_uses_triton`: ``triton`` installed, CUDA
  tensors of float64 or float32, or float16/bfloat16 as autocast hands them – computed in float32 – and never the
  interpreter, which checks kernels and is no speed); everywhere else the operation's fastest path off the GPU
  (:attr:`ImplSet.fallback`): torch's kernels (``"aten"``) where the operation has them, else the package's
  ``"fast"`` path.

The default, one rule
---------------------
An operation's default (:attr:`ImplSet.default`) is the package's own path – ``"fast"`` where the operation has
one, else the readable ``"reference"`` – and it is ``"auto"`` where ``"auto"`` falls back to that very path, so that
the default computes the same numbers on every CPU and uses the Triton kernels on a GPU. Signatures take their
default from here (``impl: str = DEFORM_CONV2D.default``). One builder is outside the rule on purpose:
:func:`stn_course.training.st_cnn` is lesson 5's experiment, not an operation, and pins ``impl="aten"`` – the path
lesson 5's training runs and benchmarks were made with.

>>> for ops in OPERATIONS:
...     auto = f"auto off CUDA: {ops.fallback}" if "auto" in ops.accepts else ""
...     print(f"{ops.op:<19} {' '.join(ops.accepts):<31} default: {ops.default:<10} {auto}".rstrip())
SpatialTransformer  reference fast aten triton auto default: fast       auto off CUDA: aten
deform_conv2d       fast reference triton auto      default: auto       auto off CUDA: fast
autograd            fast reference                  default: fast
distort             reference aten                  default: reference
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ._validation import check_choice

__all__ = ["Impl", "IMPLS", "ImplSet", "SPATIAL_TRANSFORMER", "DEFORM_CONV2D", "AUTOGRAD", "DISTORT", "OPERATIONS"]

#: The type of an ``impl=`` argument.
Impl = Literal["reference", "fast", "aten", "triton", "auto"]

#: Every name of the vocabulary and what it means; each operation accepts a subset (:class:`ImplSet`).
IMPLS: dict[str, str] = {
    "reference": "the readable version the learner writes in the lesson (autograd differentiates it)",
    "fast": "the package's own optimised path (hand-derived backward, fused gathers, im2col + GEMM)",
    "aten": "torch's own kernels (F.affine_grid, F.grid_sample)",
    "triton": "the package's Triton kernels (stn_course.gpu: CUDA, or CPU through Triton's interpreter)",
    "auto": "Triton where its kernels fit the call and can run (CUDA; float64, float32, float16 or bfloat16; triton "
            "installed), else the operation's fastest path off the GPU: aten where it has one, else fast",
}

#: What ``"auto"`` falls back to off the GPU: the first of these an operation accepts.
FALLBACK_ORDER = ("aten", "fast", "reference")


@dataclass(frozen=True)
class ImplSet:
    """The ``impl=`` names one operation accepts, in the order its docs list them; default and ``"auto"`` follow
    the module's rules.

    >>> DEFORM_CONV2D.check("fast"), DEFORM_CONV2D.resolve("auto", torch.zeros(1))
    ('fast', 'fast')
    """

    op: str
    accepts: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [name for name in self.accepts if name not in IMPLS]
        if unknown or not self.accepts:
            raise ValueError(f"{self.op}: accepts names outside the impl vocabulary ({', '.join(IMPLS)}): {unknown}")

    @property
    def fallback(self) -> str:
        """What ``"auto"`` runs where Triton does not: ``"aten"``, else ``"fast"``, else ``"reference"``."""
        return next(name for name in FALLBACK_ORDER if name in self.accepts)

    @property
    def default(self) -> str:
        """The package's own path (``"fast"``, else ``"reference"``); ``"auto"`` where ``"auto"`` falls back to it."""
        own = "fast" if "fast" in self.accepts else "reference"
        return "auto" if "auto" in self.accepts and self.fallback == own else own

    def check(self, impl: object, name: str = "impl") -> str:
        """``impl`` if this operation accepts it; ``ValueError`` (``TypeError`` for a non-string) naming the choices."""
        check_choice(impl, self.accepts, name)
        return impl  # type: ignore[return-value]

    def resolve(self, impl: str, *tensors: torch.Tensor, triton_fits: bool = True) -> str:
        """The path a call runs: ``impl`` itself, or for ``"auto"`` ``"triton"`` where this operation has Triton
        kernels, they fit the call (``triton_fits``: e.g. the fused kernel covers the affine family only) and can
        run on ``tensors``; :attr:`fallback` otherwise. Call :meth:`check` first."""
        if impl != "auto":
            return impl
        if "triton" in self.accepts and triton_fits and tensors:
            from .gpu import auto_uses_triton  # on first use: lesson 7's package, which never imports triton itself

            if auto_uses_triton(*tensors):
                return "triton"
        return self.fallback


#: :class:`stn_course.stn.SpatialTransformer` and its grid generator :func:`stn_course.stn.transform_to_grid`.
SPATIAL_TRANSFORMER = ImplSet("SpatialTransformer", ("reference", "fast", "aten", "triton", "auto"))
#: :func:`stn_course.deform.deform_conv2d`, :class:`~stn_course.deform.DeformConv2d` and the models built on it.
DEFORM_CONV2D = ImplSet("deform_conv2d", ("fast", "reference", "triton", "auto"))
#: The hand-derived backward of lesson 4 (:mod:`stn_course.autograd`): the derivation as written, or vectorized.
AUTOGRAD = ImplSet("autograd", ("fast", "reference"))
#: The distorted digits of lesson 5 (:func:`stn_course.data.distort`, :class:`~stn_course.data.DistortedMNIST`).
DISTORT = ImplSet("distort", ("reference", "aten"))

#: Every operation with an ``impl=`` choice.
OPERATIONS = (SPATIAL_TRANSFORMER, DEFORM_CONV2D, AUTOGRAD, DISTORT)
