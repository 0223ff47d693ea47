"""Interactive explorers (ipywidgets) for the lessons: one module per lesson, ``lesson01`` … ``lesson07``.

Each function builds controls, draws with a :mod:`stn_course.plotting` function, shows the figure as a PNG in an
``ipywidgets.Image`` and **returns the widget** (display it by leaving it as the last expression of a cell). Every
explorer and each of its controls carries a CSS class (``stn-…``) so browser tests can find them. The returned box
also has two plain attributes for tests and curious learners: ``controls`` (name -> control widget) and ``state``
(the numbers behind the current picture, e.g. ``theta``), updated on every change.
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
