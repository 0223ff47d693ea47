"""Interactive explorers (ipywidgets) for the lessons: one module per lesson, the one its header names as
``explorers`` (e.g. ``lesson01``; see :mod:`stn_course.course`).

Each function builds controls, draws with a :mod:`stn_course.plotting` function, shows the figure as a PNG in an
``ipywidgets.Image`` and **returns the widget** (display it by leaving it as the last expression of a cell). Every
explorer and each of its controls carries a CSS class (``stn-…``) so browser tests can find them. The returned box
also has two plain attributes for tests and curious learners: ``controls`` (name -> control widget) and ``state``
(the numbers behind the current picture, e.g. ``theta``), updated on every change.
"""
from __future__ import annotations

import importlib

from .. import course
from . import common
from .common import *  # noqa: F401,F403

# Each lesson names its explorers module in its header (stn_course.course); their __all__ is re-exported here.
_MODULES = [common, *(importlib.import_module(lesson.explorers) for lesson in course.lessons() if lesson.explorers)]
for _module in _MODULES[1:]:
    globals().update({name: getattr(_module, name) for name in _module.__all__})

__all__ = [name for module in _MODULES for name in module.__all__]
