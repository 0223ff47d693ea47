"""Does an exercise call the package function it asks the learner to write? (every lesson)

A one-line wrapper around ``stn_course.affine.pixel_to_theta`` would pass ``01.pixel_to_theta``'s values, so a
check lists the functions that *are* the exercise (:attr:`Check.forbidden`) and :func:`find_shortcut` looks for
them in what the learner's function refers to: the global names and attribute chains its code loads (nested
functions and lambdas included), the variables it closes over, and – one level down – the other functions of the
notebook it calls. It reads the code, it does not run it; it is a guard for honest self-assessment, not a sandbox
(in the grader, the guard of :mod:`stn_course.grading.guard` enforces the bans, and the grader's own process is the
trust boundary).
"""
from __future__ import annotations

import builtins
import dis
import functools
import importlib
import inspect
import types
from collections import ChainMap
from typing import Any, Callable, Iterable, Iterator

__all__ = ["resolve", "find_shortcut", "referenced"]


def resolve(dotted: str) -> Any:
    """The object named ``"package.module.attr"`` (the longest importable module prefix, then attributes)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot resolve {dotted!r}")


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _loaded_chains(code: types.CodeType) -> Iterator[tuple[str, ...]]:
    """Name chains the code loads: ``affine.pixel_to_theta`` -> ("affine", "pixel_to_theta")."""
    chain: list[str] = []
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_FAST", "LOAD_FAST_LOAD_FAST"):
            if chain:
                yield tuple(chain)
            chain = [ins.argval] if isinstance(ins.argval, str) else []
        elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and chain:
            chain.append(ins.argval)
        else:
            if chain:
                yield tuple(chain)
            chain = []
    if chain:
        yield tuple(chain)


def referenced(fn: Callable[..., Any]) -> Iterator[Any]:
    """Objects ``fn`` refers to by name (and every prefix of an attribute chain)."""
    if isinstance(fn, functools.partial):
        yield fn.func
        fn = fn.func
    fn = inspect.unwrap(fn)  # the learner's own functools.wraps decorators are looked through
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    closed_over = {}
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            closed_over[name] = cell.cell_contents
        except ValueError:  # an empty cell
            pass
    scope = ChainMap(closed_over, getattr(fn, "__globals__", {}))
    for inner in _code_objects(code):
        for chain in _loaded_chains(inner):
            head, *attrs = chain
            if head in scope:
                obj = scope[head]
            elif hasattr(builtins, head):
                obj = getattr(builtins, head)
            else:
                continue
            yield obj
            for attr in attrs:
                try:
                    obj = getattr(obj, attr)
                except Exception:  # noqa: BLE001 – a property may raise; the chain simply ends there
                    break
                yield obj


def _same_notebook(candidate: Any, fn: Callable[..., Any]) -> bool:
    return (isinstance(candidate, types.FunctionType) and candidate is not fn
            and getattr(candidate, "__module__", None) == getattr(fn, "__module__", None)
            and not getattr(candidate, "__stn_course_stand_in__", None)
            and not (getattr(candidate, "__module__", "") or "").startswith("stn_course"))


def find_shortcut(fn: Callable[..., Any], forbidden: Iterable[str], depth: int = 2) -> str | None:
    """The dotted name of the first ``forbidden`` function that ``fn`` is, or calls (directly, through a closure,
    or through another function of the same notebook up to ``depth`` levels down); ``None`` when there is none.

    >>> from stn_course.affine import pixel_to_theta
    >>> find_shortcut(lambda m, a, b, c: pixel_to_theta(m, a, b, c), ["stn_course.affine.pixel_to_theta"])
    'stn_course.affine.pixel_to_theta'
    >>> find_shortcut(lambda x: x + 1, ["stn_course.affine.pixel_to_theta"]) is None
    True
    """
    targets, alive = {}, []
    for name in forbidden:
        try:
            target = resolve(name)
        except Exception:  # noqa: BLE001 – not importable here (torchvision is optional): nothing to find
            continue
        # keep it alive while ids are compared: a name that resolves to a fresh object (a bound method such as
        # Variable._execution_engine.run_backward) would otherwise free it, and a temporary of the learner's code
        # (``bug.get``) could be given the same id – a banned call that is not there
        alive.append(target)
        targets.setdefault(id(target), name)
    if not targets:
        return None
    frontier, visited = [fn], set()
    for _ in range(depth + 1):
        following = []
        for current in frontier:
            if id(current) in visited:
                continue
            visited.add(id(current))
            unwrapped = inspect.unwrap(current)
            if id(unwrapped) in targets:
                return targets[id(unwrapped)]
            for obj in referenced(current):
                if id(obj) in targets:
                    return targets[id(obj)]
                if _same_notebook(obj, fn):
                    following.append(obj)
        frontier = following
    return None
