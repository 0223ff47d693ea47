"""The registered checks (every lesson): :func:`register` adds one, :func:`get` and :func:`all_checks` find them.

The lessons' check modules register their checks when they are imported; :func:`_load_all` imports, on first use,
the module each lesson names in its header (:mod:`stn_course.course`), so adding a lesson needs no edit here.
"""
from __future__ import annotations

import importlib
from typing import Any

from .model import Check

__all__ = ["register", "exercise", "get", "all_checks"]

_REGISTRY: dict[str, Check] = {}
_LOADED = False


def register(check: Check) -> Check:
    """Add a check to the registry (ids are unique)."""
    if check.id in _REGISTRY and _REGISTRY[check.id] is not check:
        raise ValueError(f"check id {check.id!r} is registered twice")
    _REGISTRY[check.id] = check
    return check


def exercise(check_id: str, **code: Any) -> Check:
    """The :class:`Check` of exercise ``check_id``: what its lesson's header declares (title, points, hint, recipe,
    tolerances …; :mod:`stn_course.course`) with the code given here (``reference``, ``cases``, ``hidden_cases``,
    ``compare``, ``forbidden``)."""
    from .. import course

    return Check(id=check_id, **course.get(check_id.split(".")[0]).exercise(check_id).check_fields(), **code)


def _load_all() -> None:
    """Import, once, the checks module each lesson names in its header (:mod:`stn_course.course`)."""
    global _LOADED
    if _LOADED:
        return
    from .. import course

    for lesson in course.lessons():
        if lesson.checks:
            importlib.import_module(lesson.checks)
    _LOADED = True


def get(check_id: str) -> Check:
    """Look a check up by id, e.g. ``"02.bilinear_sample"``."""
    _load_all()
    try:
        return _REGISTRY[check_id]
    except KeyError:
        close = [k for k in _REGISTRY if k.split(".")[0] == check_id.split(".")[0]]
        raise KeyError(f"unknown check id {check_id!r}; this lesson has: {', '.join(sorted(close)) or 'none'}") from None


def all_checks(include_hidden: bool = True) -> list[Check]:
    """Every registered check, sorted by id."""
    _load_all()
    return [c for _, c in sorted(_REGISTRY.items()) if include_hidden or not c.hidden]
