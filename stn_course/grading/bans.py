"""Banned calls: while the learner's function runs for an exercise, the functions that *are* the exercise raise
(classroom grading; runs in the sandboxed child).

A check's :attr:`~stn_course.checks.registry.Check.forbidden` names them (the package's version and torch's). They
are caught by what they are, not by the name the learner reached them with – an alias, a closure, a copied
reference or a function rebuilt from the same code object all hit the same wall:

* Python functions (the package's, ``F.grid_sample``, ``torch.autograd.grad``) by their **code object**, through a
  profile hook that sees every Python call;
* torch's built-in functions (``torch.conv2d``) through a ``TorchFunctionMode``, and every path to a kernel
  (``torch.ops.aten.grid_sampler_2d``, ``nn.Conv2d``, a decomposition) through a ``TorchDispatchMode`` that
  refuses the banned ATen operators;
* classes (an ``autograd.Function``) through the code of their methods.

A banned call raises :class:`~stn_course.checks.registry.BannedCall`; the call is also recorded, so a learner's
``try``/``except`` around it does not hide it. This runs inside the learner's own process: it is a guard that
makes the shortcut fail loudly, not a security boundary (the grader keeps the references and the comparison in
its own process).
"""
from __future__ import annotations

import inspect
import sys
import threading
import types
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..checks.registry import BannedCall
from ..checks.shortcuts import resolve

__all__ = ["Bans", "guard_profile_functions"]

_REAL_SETPROFILE = sys.setprofile
_REAL_THREADING_SETPROFILE = threading.setprofile
_ACTIVE: list["Bans"] = []  # the bans in force (at most one: calls are graded one at a time)


def guard_profile_functions() -> None:
    """Replace ``sys.setprofile``/``threading.setprofile`` by versions that cannot switch the ban hook off while a
    graded call runs (they record the attempt as a banned call instead). Done once, before any learner code."""

    def setprofile(function: Any) -> None:
        if _ACTIVE:
            _ACTIVE[-1]._trip("sys.setprofile (switching the grader's ban off)")
            return
        _REAL_SETPROFILE(function)

    def threading_setprofile(function: Any) -> None:
        if _ACTIVE:
            _ACTIVE[-1]._trip("threading.setprofile (switching the grader's ban off)")
            return
        _REAL_THREADING_SETPROFILE(function)

    sys.setprofile = setprofile
    threading.setprofile = threading_setprofile


def _own_code(function: Any, home: str | None) -> types.CodeType | None:
    """The code of ``function`` itself, under its decorators (``functools.wraps`` wrappers share one code object
    with every function they decorate, so banning a wrapper's code would ban them all), if it lives in ``home``."""
    function = inspect.unwrap(getattr(function, "__func__", function))
    if not isinstance(function, types.FunctionType):
        return None
    code = function.__code__
    return code if home is None or code.co_filename == home else None


def _codes_of(obj: Any) -> Iterator[types.CodeType]:
    """The code objects that running ``obj`` executes (a function, a method, a class's own methods), written in the
    module that defines ``obj``."""
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    home = getattr(module, "__file__", None)
    members = vars(obj).values() if isinstance(obj, type) else [obj]
    for member in members:
        code = _own_code(member, home)
        if code is not None:
            yield code


class _FunctionBan(TorchFunctionMode):
    def __init__(self, bans: "Bans") -> None:
        super().__init__()
        self.bans = bans

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        name = self.bans.callables.get(id(func))
        if name is not None and not self.bans.suspended:
            self.bans._trip(name)
        return func(*args, **(kwargs or {}))


class _DispatchBan(TorchDispatchMode):
    def __init__(self, bans: "Bans") -> None:
        super().__init__()
        self.bans = bans

    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        name = self.bans.operators.get(func.overloadpacket)
        if name is not None and not self.bans.suspended:
            self.bans._trip(name)
        return func(*args, **(kwargs or {}))


class Bans:
    """The functions ``names`` (dotted, as in :attr:`Check.forbidden`) raise while ``with bans:`` is active.

    ``tripped`` is the name of the first banned function that was called (``None`` if none was), kept even when
    the learner's code caught the exception. ``with bans.suspend():`` lets trusted code (the registry's stand-ins
    for the lesson's other exercises) call them.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.codes: dict[types.CodeType, str] = {}
        self.callables: dict[int, str] = {}
        self.operators: dict[Any, str] = {}
        self._keep: list[Any] = []  # the resolved objects stay alive, so their ids stay theirs
        for name in names:
            try:
                obj = resolve(name)
            except Exception:  # noqa: BLE001 – not importable here (torchvision is optional)
                continue
            self._keep.append(obj)
            if isinstance(obj, torch._ops.OpOverloadPacket):
                self.operators.setdefault(obj, name)
                continue
            for code in _codes_of(obj):
                self.codes.setdefault(code, name)
            if not isinstance(obj, type):
                self.callables.setdefault(id(obj), name)
        self.tripped: str | None = None
        self._suspended = threading.local()
        self._previous_profile: Any = None

    @property
    def suspended(self) -> bool:
        return getattr(self._suspended, "depth", 0) > 0

    @contextmanager
    def suspend(self) -> Iterator[None]:
        self._suspended.depth = getattr(self._suspended, "depth", 0) + 1
        try:
            yield
        finally:
            self._suspended.depth -= 1

    def _trip(self, name: str) -> None:
        self.tripped = self.tripped or name
        raise BannedCall(name)

    def _profile(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in self.codes and not self.suspended:
            self._trip(self.codes[frame.f_code])

    def __enter__(self) -> "Bans":
        self.tripped = None
        self._modes = []
        if self.codes:
            _REAL_SETPROFILE(self._profile)
            _REAL_THREADING_SETPROFILE(self._profile)
        if self.callables:
            self._modes.append(_FunctionBan(self))
        if self.operators:
            self._modes.append(_DispatchBan(self))
        for mode in self._modes:
            mode.__enter__()
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        _ACTIVE.remove(self)
        for mode in reversed(self._modes):
            mode.__exit__(None, None, None)
        if self.codes:
            if sys.getprofile() not in (self._profile, None):
                self.tripped = self.tripped or "another profile function (switching the grader's ban off)"
            _REAL_SETPROFILE(None)
            _REAL_THREADING_SETPROFILE(None)
