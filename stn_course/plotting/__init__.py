"""Figures for the lessons (every lesson): one module per lesson, ``lesson01`` … ``lesson07``, plus ``common``.

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

from . import common, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07
from .common import *  # noqa: F401,F403
from .lesson01 import *  # noqa: F401,F403
from .lesson02 import *  # noqa: F401,F403
from .lesson03 import *  # noqa: F401,F403
from .lesson04 import *  # noqa: F401,F403
from .lesson05 import *  # noqa: F401,F403
from .lesson06 import *  # noqa: F401,F403
from .lesson07 import *  # noqa: F401,F403

__all__ = [name for module in (common, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07)
           for name in module.__all__]
