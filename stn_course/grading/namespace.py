"""The learner's notebook inside the sandboxed child: cells in one namespace, an IPython stand-in, exercises called
by name (classroom grading).

Cells run as IPython would run them (magics and ``!`` escapes neutralised, ``check(...)`` returning the function),
each under a CPU-time limit; a cell that raises is recorded and the notebook goes on. An exercise's function is
called on the inputs the grader sends, and its result goes back as plain data (:mod:`~stn_course.grading.codec`).
While it runs, the exercises it *builds on* (``Check.builds_on``) are the guard's stand-ins for the registry's
references (:func:`~stn_course.grading.guard.make_stand_in`), so a mistake costs one exercise, not every one built
on it. Bans are not enforced here: the process is armed by the guard before the first call.
"""
from __future__ import annotations

import builtins
import contextlib
import linecache
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

from .limits import TimeLimit, cpu_limit

__all__ = ["Notebook", "ERROR_CHARS", "error_text", "close_figures"]

ERROR_CHARS = 300  # an error message sent back is cut to this length (the grader cuts again)


def error_text(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # noqa: BLE001 – a learner's exception whose __str__ fails
        text = "an exception that cannot be printed"
    return text[:ERROR_CHARS]


class _Sink:
    """stdout/stderr of the learner's code: counted, not kept (the grader does not show a notebook's output)."""

    encoding = "utf-8"

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class _Shell:
    """What ``get_ipython()`` returns while grading: line magics do nothing, ``%%time``/``%%capture`` run their
    cell, shell escapes (``!cmd``) do nothing."""

    def __init__(self, notebook: "Notebook") -> None:
        self.notebook = notebook

    def run_line_magic(self, name: str, line: str, *args: Any, **kwargs: Any) -> None:
        return None

    def run_cell_magic(self, name: str, line: str, cell: str) -> None:
        if name in ("time", "capture", "timeit", "prun"):
            exec(self.notebook.compile(cell, "<cell magic>"), self.notebook.namespace)

    def system(self, *args: Any, **kwargs: Any) -> None:
        return None

    def getoutput(self, *args: Any, **kwargs: Any) -> list:
        return []

    def magic(self, *args: Any, **kwargs: Any) -> None:
        return None


def close_figures() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        with contextlib.suppress(Exception):
            plt.close("all")


def _harness_grad(loss: Any, inputs: list) -> tuple:
    """The gradients the grader compares, through the guard's root marker (never a banned Python function)."""
    import torch

    from .guard import harness_backward

    return harness_backward((loss,), (torch.ones_like(loss),), tuple(inputs))


class Notebook:
    """The learner's notebook in this process: cells run in one namespace, exercises called by name."""

    def __init__(self, stand_ins: dict[str, Any] | None = None) -> None:
        from IPython.core.inputtransformer2 import TransformerManager

        from ..checks import registry
        from ..checks.shortcuts import find_shortcut

        self._transformer = TransformerManager()
        self.registry = registry
        self._find_shortcut = find_shortcut
        self.sink = _Sink()
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins,
                                          "get_ipython": lambda: self.shell}
        self.shell = _Shell(self)
        self.exercise: Any = None
        self.stand_ins = dict(stand_ins or {})  # check id -> stand-in function (made before any learner code)
        self.last_call_cpu_s = 0.0

    def compile(self, source: str, filename: str):
        """Compile a cell as IPython would, its source kept in ``linecache`` (as IPython keeps it) so that
        ``inspect.getsource`` works on what it defines – Triton's ``@triton.jit`` reads a kernel's source – and
        tracebacks show the learner's lines."""
        code = self._transformer.transform_cell(source)
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        return compile(code, filename, "exec")

    def restore_streams(self) -> None:
        sys.stdout = sys.stderr = self.sink

    def run_cell(self, index: int, source: str, timeout: float) -> dict:
        start = time.process_time()
        try:
            code = self.compile(source, f"<cell {index}>")
        except SyntaxError as exc:
            return {"status": "error", "error": f"SyntaxError: {exc.msg} (line {exc.lineno})"[:ERROR_CHARS],
                    "seconds": 0.0}
        except BaseException as exc:  # noqa: BLE001 – IPython's transformer on broken input
            return {"status": "error", "error": error_text(exc), "seconds": 0.0}
        status, error = "ok", ""
        try:
            with cpu_limit(timeout):
                exec(code, self.namespace)
        except TimeLimit as exc:
            status, error = "timed out", str(exc)
        except BaseException as exc:  # noqa: BLE001 – SystemExit and KeyboardInterrupt in a cell are its errors too
            status, error = "error", error_text(exc)
        finally:
            self.restore_streams()
            close_figures()
        return {"status": status, "error": error, "seconds": time.process_time() - start}

    # -- exercises ------------------------------------------------------------------------------------------------

    def begin_exercise(self, request: dict) -> dict:
        """The next calls go to ``request["function"]``; the exercises it builds on (``stand_ins``: pairs of name
        and check id) are the guard's stand-ins meanwhile. Answers ready, missing or banned (read from the code)."""
        name, forbidden = str(request["function"]), tuple(str(f) for f in request.get("forbidden", ()))
        fn = self.namespace.get(name)
        self.exercise = None
        if fn is None:
            return {"state": "missing"}
        if not callable(fn):
            return {"state": "not callable"}
        others = {str(other): self.stand_ins[str(check_id)] for other, check_id in request.get("stand_ins", ())
                  if str(check_id) in self.stand_ins and str(other) != name}
        self.exercise = (fn, others)
        try:
            with cpu_limit(10), self._isolated(others):  # read the code as it will run: stand-ins are not followed
                shortcut = self._find_shortcut(fn, forbidden) if forbidden else None
        except BaseException:  # noqa: BLE001 – a function whose code cannot be read is left to the runtime bans
            shortcut = None
        return {"state": "banned", "name": str(shortcut)} if shortcut else {"state": "ready"}

    @contextmanager
    def _isolated(self, others: dict) -> Iterator[None]:
        """The exercises this one builds on are the stand-ins for the duration of a call (defined or not: an
        exercise whose cell failed does not take the ones built on it down too)."""
        absent = object()
        saved = {name: self.namespace.get(name, absent) for name in others}
        self.namespace.update(others)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is absent:
                    self.namespace.pop(name, None)
                else:
                    self.namespace[name] = value

    def call(self, case: Any, timeout: float, positions: tuple[int, ...] | None = None) -> tuple[dict, bytes]:
        """Call the exercise's function on ``case`` (its gradients with ``positions``) -> (header, payload)."""
        from .codec import CodecError, encode

        if self.exercise is None:
            return {"status": "missing"}, b""
        fn, others = self.exercise
        value: Any = None
        start = time.process_time()
        try:
            with cpu_limit(timeout):
                with self._isolated(others):
                    try:
                        if positions is None:
                            value = self.registry.call_case(fn, case)
                        else:
                            value = self.registry.gradients_of(fn, case, tuple(positions), grad=_harness_grad)
                    except Exception as exc:  # a Triton kernel's own error, not the interpreter's wrapper
                        raise self.registry.unwrap_kernel_error(exc) from None
        except TimeLimit as exc:
            return {"status": "timed out", "message": str(exc)}, b""
        except NotImplementedError:
            return {"status": "not implemented"}, b""
        except BaseException as exc:  # noqa: BLE001 – the learner's code failed: report it
            return {"status": "raised", "type": type(exc).__name__[:100], "message": error_text(exc)}, b""
        finally:
            self.last_call_cpu_s = time.process_time() - start
            self.restore_streams()
            close_figures()
        if isinstance(value, str) and positions is not None:
            return {"status": "no gradient", "message": value[:ERROR_CHARS]}, b""
        try:
            return {"status": "ok"}, encode(value)
        except CodecError as exc:
            return {"status": "raised", "type": "unsupported result", "message": str(exc)[:ERROR_CHARS]}, b""
        except BaseException as exc:  # noqa: BLE001 – a result whose conversion itself fails
            return {"status": "raised", "type": "unsupported result", "message": error_text(exc)}, b""
