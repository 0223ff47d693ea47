"""Figures for the lessons (every lesson): one module per lesson, the one its header names as ``figures`` (e.g.
``lesson01``; see :mod:`stn_course.course`), plus ``common``.

Every function draws with Matplotlib and **returns the Figure** (it never calls ``plt.show``): a notebook shows it
inline, a widget renders it to PNG (:func:`figure_to_png`), a test inspects its artists. Functions that draw on one
panel accept ``ax=`` to draw into an existing Axes.

Images may be given as tensors ``(1, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` (C = 1 or 3), or as NumPy arrays
``(H, W)``/``(H, W, 3)``. Pixel coordinates follow ``imshow``: the centre of pixel ``image[y, x]`` is drawn at
``(x, y)``, its edges at ``± 0.5``, and y points down – the convention of :mod:`stn_course.affine`.

Everything is re-exported here, so ``from stn_course.plotting import show_grid`` works. The algorithms the figures
draw live in the modules of their concepts (:func:`stn_course.sampling.grid_to_pixels`, :mod:`stn_course.warps`).
"""
from __future__ import annotations

import importlib

from .. import course
from . import common
from .common import *  # noqa: F401,F403

# Each lesson names its figures module in its header (stn_course.course); their __all__ is re-exported here.
_MODULES = [common, *(importlib.import_module(lesson.figures) for lesson in course.lessons() if lesson.figures)]
for _module in _MODULES[1:]:
    globals().update({name: getattr(_module, name) for name in _module.__all__})

__all__ = [name for module in _MODULES for name in module.__all__]
