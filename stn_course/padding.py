"""Padding modes, one object each: what a sampler reads for a point outside the image (lessons 2, 4 and 7).

A sampler turns a grid value into a pixel coordinate in two steps: :func:`stn_course.sampling.unnormalize`, then
the padding mode's map of the coordinate – this module. A :class:`PaddingMode` holds everything the package needs
to know about one mode, so that adding a mode is one definition (plus its tests):

* its ``name`` (what ``padding_mode=`` accepts) and whether ``F.grid_sample`` knows it (``grid_sample``; the
  lessons teach those, and the checks and tests hold ours to torch's);
* its **coordinate map** (lesson 2): ``fold`` moves a coordinate outside the image back in – the identity for
  ``zeros`` and ``border``, a mirror for ``reflection`` – and, if the mode ``clamps``, the result is clamped into
  ``[0, size - 1]`` (a NaN goes to pixel 0); a mode that does not clamp (``zeros``) keeps the coordinate, and the
  neighbours outside the image read 0. :meth:`PaddingMode.coordinates` is the whole map;
* its **derivative** (lesson 4): :meth:`PaddingMode.slope`, ``∂(mapped)/∂x`` – 1, 0 where the clamp holds, ±1
  through mirrors – which the hand-derived backward chains with unnormalize's scale;
* its **kernel code** (lesson 7): ``kernel_fold``, the fold in Triton's language, which
  :mod:`stn_course.gpu.affine` compiles and hands to the fused kernel as a compile-time constant (with
  ``clamps``). It is written here, with ``tl`` for ``triton.language``, and compiled only when a kernel runs: this
  module imports without Triton;
* the **hints** the checks of lessons 2 and 4 print for a failing case in this mode.

Folding about the image's extent: the centres of the end pixels, ``[0, size - 1]``, with ``align_corners=True``,
their outer edges, ``[-0.5, size - 0.5]``, otherwise (:func:`image_extent`).

>>> [mode.name for mode in MODES][:3]
['zeros', 'border', 'reflection']
>>> get("border").coordinates(torch.tensor([-2.0, 1.5, 7.0]), 4, align_corners=False)
tensor([0.0000, 1.5000, 3.0000])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ._validation import check_choice, check_float_tensor

__all__ = ["PaddingMode", "MODES", "PADDING_MODES", "GRID_SAMPLE_MODES", "ZEROS", "BORDER", "REFLECTION", "get",
           "image_extent", "keep", "reflect_coordinates"]

#: ``triton.language`` inside the kernel code below (``kernel_fold``): :mod:`stn_course.gpu` binds it when it
#: compiles that code, so this module never imports Triton.
tl: Any = None


def _xp(x):
    """The array namespace of ``x``: ``torch`` for tensors, ``numpy`` otherwise (the NumPy twins)."""
    return torch if isinstance(x, torch.Tensor) else np


def _check_coordinates(coord, name: str = "coord"):
    """A floating-point tensor or array of coordinates (a list becomes an array), else a clear error."""
    if isinstance(coord, torch.Tensor):
        check_float_tensor(coord, name)
        return coord
    coord = np.asarray(coord)
    if not np.issubdtype(coord.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point torch.Tensor or NumPy array, got dtype {coord.dtype}")
    return coord


def image_extent(size: int, align_corners: bool) -> tuple[float, int]:
    """``(low, span)`` of an axis of ``size`` pixels, in pixel coordinates: ``(0, size - 1)`` – the centres of the
    end pixels – with ``align_corners=True``, ``(-0.5, size)`` – their outer edges – otherwise."""
    return (0.0, size - 1) if align_corners else (-0.5, size)


# ---------------------------------------------------------------------------------------------------------------
# The folds: a coordinate outside the image moved back in (before the clamp), and their kernel code
# ---------------------------------------------------------------------------------------------------------------


def keep(x, low: float, span: float, with_sign: bool = False):
    """The identity fold (``zeros``, ``border``): ``x`` stays where it is; ``with_sign`` adds its derivative, 1."""
    return (x, _xp(x).ones_like(x)) if with_sign else x


def reflect_coordinates(x, low: float, span: float, with_sign: bool = False):
    """Mirror ``x`` about ``low`` and ``low + span`` as many times as needed to land in ``[low, low + span]``.

    Unfolding: reflections repeat with period ``2 span``, so take the distance from ``low`` modulo ``2 span``; a
    remainder past ``span`` has been mirrored once more: ``min(extra, 2 span - extra)`` (the arithmetic of ATen's
    vectorized CPU kernel). ``with_sign=True`` also returns ``∂(reflected)/∂x``, ``±1``: the sign flips with every
    mirror (ATen's ``reflect_coordinates_set_grad``). A zero ``span`` (a 1-pixel axis with ``align_corners=True``)
    sends everything to ``low``'s pixel 0 with derivative 0. Works on tensors and arrays.

    >>> reflect_coordinates(torch.tensor([-1.0, 2.5, 5.0]), 0.0, 2.0)
    tensor([1.0000, 1.5000, 1.0000])
    """
    x = _check_coordinates(x, "x")
    for value, name in ((low, "low"), (span, "span")):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    xp = _xp(x)
    if span <= 0:
        zeros = xp.zeros_like(x)
        if xp is torch:  # still a function of x, with derivative 0 (as torch's grid gradient is there), not None
            zeros = torch.where(torch.zeros_like(x, dtype=torch.bool), x, zeros)
        return (zeros, xp.zeros_like(x)) if with_sign else zeros
    twice_span = 2 * span
    shifted = x - low
    distance = abs(shifted)
    with np.errstate(invalid="ignore"):  # inf - inf = NaN for infinite points (NumPy warns, torch does not)
        extra = distance - xp.trunc(distance / twice_span) * twice_span
    reflected = xp.minimum(extra, twice_span - extra) + low
    if not with_sign:
        return reflected
    one = xp.ones_like(x)
    sign = xp.where(shifted < 0, -one, one)
    return reflected, xp.where(extra > span, -sign, sign)


def keep_kernel(x, low, span, slope, zero):
    """Kernel code of :func:`keep` (Triton): ``(x, ∂x/∂g) -> (x, ∂x/∂g)``, unchanged."""
    return x, slope


def reflect_kernel(x, low, span, slope, zero):
    """Kernel code of :func:`reflect_coordinates` (Triton): mirror ``x`` about ``low`` and ``low + span`` until it
    lands in between; the slope's sign flips with every mirror; a zero span sends everything to 0."""
    twice = 2.0 * span
    shifted = x - low
    distance = tl.abs(shifted)
    extra = distance - tl.floor(distance / tl.where(twice > 0, twice, 1.0 + zero)) * twice
    folded = tl.minimum(extra, twice - extra) + low
    sign = tl.where(shifted < 0, -1.0 + zero, 1.0 + zero)
    sign = tl.where(extra > span, -sign, sign)
    return tl.where(span > 0, folded, zero), tl.where(span > 0, slope * sign, zero)


def _clamp(x, high: float):
    """``x`` clamped into ``[0, high]``, with ATen's derivative: 1 strictly inside, 0 *at* and beyond the bounds.

    ``torch.clamp``'s autograd passes the gradient at the bounds themselves (``0 <= x <= high``); ATen's
    ``clip_coordinates_set_grad`` counts a coordinate on the border as outside. So autograd through this clamp
    gives the hand-derived :meth:`PaddingMode.slope` – the border pixel of ``border`` padding has gradient 0.
    Same values as ``clip`` (NaN stays NaN); arrays are clipped.
    """
    if not isinstance(x, torch.Tensor):
        return np.clip(x, 0, high)
    inside = (x > 0) & (x < high)
    return torch.where(inside, x, x.detach().clamp(0, high))


# ---------------------------------------------------------------------------------------------------------------
# The mode object and the registry
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaddingMode:
    """One padding mode: its name, coordinate map, derivative, kernel code and hints (see the module docstring).

    * ``hint``, ``slope_hint``: what the checks of lessons 2 (the sampler) and 4 (its derivative) print for a
      failing case in this mode;
    * ``fold(x, low, span, with_sign=False)`` (default :func:`keep`): moves a pixel coordinate (tensor or array)
      back into ``[low, low + span]``; with ``with_sign`` it also returns ``∂(folded)/∂x``;
    * ``kernel_fold(x, low, span, slope, zero) -> (x, slope)`` (default :func:`keep_kernel`): the same in Triton's
      language;
    * ``clamps`` (default True): the folded coordinate is clamped into ``[0, size - 1]`` (NaN -> 0). A mode that
      does not clamp must keep the coordinate (``fold=keep``): its neighbours outside the image read 0, and the
      fast paths rely on that;
    * ``grid_sample`` (default True): ``F.grid_sample`` knows the mode.
    """

    name: str
    hint: str
    slope_hint: str
    fold: Callable = keep
    kernel_fold: Callable = keep_kernel
    clamps: bool = True
    grid_sample: bool = True

    def __post_init__(self):
        if not self.clamps and self.fold is not keep:
            raise ValueError(f"padding mode {self.name!r}: a mode that does not clamp must keep the coordinate")

    def coordinates(self, x, size: int, align_corners: bool):
        """Pixel coordinates ``x`` (tensor or array, ``(…)``) -> the coordinates to interpolate at, ``(…)``."""
        x = self.fold(x, *image_extent(size, align_corners))
        if not self.clamps:
            return x
        xp = _xp(x)
        x = _clamp(x, size - 1)
        return xp.where(xp.isnan(x), xp.zeros_like(x), x)

    def slope(self, x, size: int, align_corners: bool):
        """``∂ coordinates(x) / ∂x``, elementwise ``(…) -> (…)``: the fold's derivative, times 0 where the clamp
        holds – at and beyond the border, as in ATen (the clamp is flat there)."""
        x, slope = self.fold(x, *image_extent(size, align_corners), with_sign=True)
        if not self.clamps:
            return slope
        inside = (x > 0) & (x < size - 1)
        return slope * (inside.to(x.dtype) if isinstance(inside, torch.Tensor) else inside.astype(x.dtype))

    def __str__(self) -> str:
        return self.name


ZEROS = PaddingMode(
    "zeros", clamps=False,
    hint="zeros padding: a neighbour outside the image reads 0 but keeps its weight – don't clamp its index "
         "onto the border (that repeats the edge, which is 'border').",
    slope_hint="zeros padding does not move the coordinate: only unnormalize's scale remains.",
)
BORDER = PaddingMode(
    "border",
    hint="border padding clamps the *coordinate* into [0, size - 1] before the neighbours are chosen, so "
         "nothing is read outside; clamping the neighbour indices instead gives different weights.",
    slope_hint="border clamps: the derivative is 1 where the coordinate is strictly inside [0, size - 1] and 0 "
               "where the clamp holds it.",
)
REFLECTION = PaddingMode(
    "reflection", fold=reflect_coordinates, kernel_fold=reflect_kernel,
    hint="reflection mirrors the *coordinate* about the image's edges (pixel edges with align_corners=False, "
         "pixel centres with True), repeatedly for points far outside, then clamps it like border.",
    slope_hint="reflection is a mirror: every reflection flips the sign of the derivative, so count the mirrors "
               "a point crossed (and a clamp after it is flat).",
)

#: Every padding mode, in the order they are taught and listed (a new mode is added here).
MODES: tuple[PaddingMode, ...] = (ZEROS, BORDER, REFLECTION)
#: Their names: what ``padding_mode=`` accepts.
PADDING_MODES: tuple[str, ...] = tuple(mode.name for mode in MODES)
#: The names ``F.grid_sample`` knows too: what the lessons teach and the checks and the tests compare with torch.
GRID_SAMPLE_MODES: tuple[str, ...] = tuple(mode.name for mode in MODES if mode.grid_sample)

_BY_NAME = {mode.name: mode for mode in MODES}


def get(padding_mode: str | PaddingMode, name: str = "padding_mode") -> PaddingMode:
    """The :class:`PaddingMode` called ``padding_mode`` (a mode object is returned as it is); an unknown name is a
    ``ValueError`` listing the modes, a non-string a ``TypeError``."""
    if isinstance(padding_mode, PaddingMode):
        return padding_mode
    check_choice(padding_mode, PADDING_MODES, name)
    return _BY_NAME[padding_mode]
