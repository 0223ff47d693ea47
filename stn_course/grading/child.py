"""The sandboxed side of classroom grading: a fork server, and the child that runs one submission.

The grader starts one server per job slot (``python -m stn_course.grading.child``), inside bubblewrap where it is
installed. The server imports torch and the course once, then forks a fresh child for every submission, so a
child starts in milliseconds with nothing of the previous one: its own process group, working folder and limits
(address space, CPU time, file size, processes), privileges dropped to an unprivileged uid when the server runs as
root, and nothing of the grader's environment. When the child is done – or killed on the grader's deadline – the
server kills everything the child left behind and removes its folder.

The child talks to the grader over its own socket (:mod:`~stn_course.grading.protocol`) and only computes: it runs
the notebook's code cells one at a time under a time limit (magics and ``check(...)`` calls neutralised, a cell
that raises recorded and skipped), then calls the learner's functions on the inputs the grader sends and sends
back plain data (:mod:`~stn_course.grading.codec`). While it calls an exercise's function, the other exercises'
functions of the lesson are replaced by the registry's references (a mistake costs one exercise, not every one
built on it) and the calls that *are* the exercise raise (:mod:`~stn_course.grading.bans`). It never sees a
reference result, and nothing it does can change how the grader compares.
"""
from __future__ import annotations

import argparse
import builtins
import contextlib
import json
import linecache
import os
import pickle
import resource
import select
import shutil
import signal
import socket
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["main"]

ERROR_CHARS = 600  # an error message sent back is cut to this length


class TimeLimit(BaseException):
    """The time limit of a cell or a call passed (raised in the child by SIGALRM)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum, frame):
        raise TimeLimit(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _text(exc: BaseException) -> str:
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


class Notebook:
    """The learner's notebook in this process: cells run in one namespace, exercises called by name."""

    def __init__(self) -> None:
        from IPython.core.inputtransformer2 import TransformerManager

        from ..checks import registry

        self._transformer = TransformerManager()
        self.registry = registry
        self.sink = _Sink()
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins,
                                          "get_ipython": lambda: self.shell}
        self.shell = _Shell(self)
        self.exercise: Any = None
        self.last_call_s = 0.0  # the time the learner's function took in the last call (for the overhead report)
        self._bans: dict[tuple[str, ...], Any] = {}
        # the references the lesson's other exercises stand in with, taken before any learner code runs
        self.references = {c.id: (c.function_name, c.reference) for c in registry.all_checks()}

    def compile(self, source: str, filename: str):
        """Compile a cell as IPython would, its source kept in ``linecache`` (as IPython keeps it) so that
        ``inspect.getsource`` works on what it defines – Triton's ``@triton.jit`` reads a kernel's source – and
        tracebacks show the learner's lines."""
        code = self._transformer.transform_cell(source)
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        return compile(code, filename, "exec")

    def _restore_streams(self) -> None:
        sys.stdout = sys.stderr = self.sink

    def run_cell(self, index: int, source: str, timeout: float) -> dict:
        start = time.perf_counter()
        try:
            code = self.compile(source, f"<cell {index}>")
        except SyntaxError as exc:
            return {"status": "error", "error": f"SyntaxError: {exc.msg} (line {exc.lineno})"[:ERROR_CHARS],
                    "seconds": 0.0}
        except BaseException as exc:  # noqa: BLE001 – IPython's transformer on broken input
            return {"status": "error", "error": _text(exc), "seconds": 0.0}
        status, error = "ok", ""
        try:
            with time_limit(timeout):
                exec(code, self.namespace)
        except TimeLimit as exc:
            status, error = "timed out", str(exc)
        except BaseException as exc:  # noqa: BLE001 – SystemExit and KeyboardInterrupt in a cell are its errors too
            status, error = "error", _text(exc)
        finally:
            self._restore_streams()
            _close_figures()
        return {"status": status, "error": error, "seconds": time.perf_counter() - start}

    # -- exercises ------------------------------------------------------------------------------------------------

    def begin_exercise(self, request: dict) -> dict:
        """The next calls go to ``request["function"]``; the lesson's other exercises (``others``: check ids) run
        the registry's references meanwhile, and ``forbidden`` is banned. Answers ready, missing or banned."""
        from ..checks.shortcuts import find_shortcut
        from .bans import Bans

        name, forbidden = str(request["function"]), tuple(str(f) for f in request.get("forbidden", ()))
        fn = self.namespace.get(name)
        self.exercise = None
        if fn is None:
            return {"state": "missing", "message": f"the notebook defines no `{name}`"}
        if not callable(fn):
            return {"state": "missing", "message": f"`{name}` is not a function"}
        others = {}
        for check_id in request.get("others", ()):
            if check_id in self.references:  # (an instructor's check is the grader's alone)
                other_name, reference = self.references[check_id]
                if other_name != name:
                    others[other_name] = reference
        bans = self._bans.get(forbidden)
        if bans is None:
            bans = self._bans[forbidden] = Bans(forbidden)
        self.exercise = (fn, bans, others)
        try:
            with time_limit(10):
                shortcut = find_shortcut(fn, forbidden) if forbidden else None
        except BaseException:  # noqa: BLE001 – a function whose code cannot be read is left to the runtime bans
            shortcut = None
        return {"state": "banned", "name": shortcut} if shortcut else {"state": "ready"}

    @contextmanager
    def _isolated(self, bans: Any, others: dict) -> Iterator[None]:
        """The lesson's other exercises run the registry's references for the duration of a call (defined or not:
        an exercise whose cell failed does not take the ones built on it down too)."""
        absent = object()
        saved = {name: self.namespace.get(name, absent) for name in others}

        def stand_in(reference):
            def call(*args: Any, **kwargs: Any) -> Any:
                with bans.suspend():
                    return reference(*args, **kwargs)
            return call

        for name, reference in others.items():
            self.namespace[name] = stand_in(reference)
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
        fn, bans, others = self.exercise
        value: Any = None
        start = time.perf_counter()
        try:
            with time_limit(timeout):
                with self._isolated(bans, others), bans:
                    try:
                        if positions is None:
                            value = self.registry._call(fn, case)
                        else:
                            value = self.registry._gradients(fn, case, tuple(positions))
                    except Exception as exc:  # a Triton kernel's own error, not the interpreter's wrapper
                        raise self.registry.unwrap_kernel_error(exc) from None
            self.last_call_s = time.perf_counter() - start
        except TimeLimit as exc:
            return {"status": "timed out", "message": str(exc)}, b""
        except self.registry.BannedCall as exc:
            return {"status": "banned", "name": bans.tripped or str(exc)}, b""
        except NotImplementedError:
            if bans.tripped:
                return {"status": "banned", "name": bans.tripped}, b""
            return {"status": "not implemented"}, b""
        except BaseException as exc:  # noqa: BLE001 – the learner's code failed: report it
            if bans.tripped:
                return {"status": "banned", "name": bans.tripped}, b""
            return {"status": "raised", "type": type(exc).__name__[:100], "message": _text(exc)}, b""
        finally:
            self._restore_streams()
            _close_figures()
        if bans.tripped:
            return {"status": "banned", "name": bans.tripped}, b""
        if isinstance(value, str) and positions is not None:
            return {"status": "no gradient", "message": value[:ERROR_CHARS]}, b""
        try:
            return {"status": "ok"}, encode(value)
        except CodecError as exc:
            return {"status": "raised", "type": "unsupported result", "message": str(exc)[:ERROR_CHARS]}, b""
        except BaseException as exc:  # noqa: BLE001 – a result whose conversion itself fails
            return {"status": "raised", "type": "unsupported result", "message": _text(exc)}, b""


def _close_figures() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        with contextlib.suppress(Exception):
            plt.close("all")


class _Holder:
    """The process that holds the notebook's state and answers the grader; everything the learner wrote runs in a
    forked copy of it.

    The cells run in a copy (the *runner*); the holder keeps their log. If the runner dies on a cell (``os._exit``,
    a crash) or overruns its time, the holder – still as it was before the cells – forks a new runner, replays the
    cells that went well, and the notebook goes on without the bad one. When the exercises begin, the runner takes
    over as the holder. The calls of an exercise's function run in another copy (a *caller*) that lives for that
    exercise's visible or hidden cases and is thrown away, so no exercise sees what another one did; a caller that
    dies or overruns is replaced, and the holder answers for it.
    """

    def __init__(self, sock: socket.socket, notebook: "Notebook", dedicated_uid: bool) -> None:
        self.sock, self.notebook, self.dedicated_uid = sock, notebook, dedicated_uid
        self.runner: tuple[int, socket.socket] | None = None
        self.caller: tuple[int, socket.socket] | None = None
        self.log: list[dict] = []  # the cells the runner ran (and must replay after a failure)

    # -- processes ----------------------------------------------------------------------------------------------

    def _fork(self) -> int:
        self._reap_strays()
        for attempt in range(50):
            try:
                return os.fork()
            except BlockingIOError:  # the learner's processes used up RLIMIT_NPROC
                if not self.dedicated_uid or attempt == 49:
                    raise
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(-1, signal.SIGKILL)  # every process of this submission's own uid but us
                time.sleep(0.05)  # killed processes count until they are reaped
                self._reap_strays()
        raise AssertionError("unreachable")

    @staticmethod
    def _reap_strays() -> None:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass

    @staticmethod
    def _kill(pid: int) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def _copy(self, serve) -> tuple[int, socket.socket]:
        """Fork a copy that runs ``serve(link)``; returns its pid and the holder's end of the link."""
        ours, theirs = socket.socketpair()
        pid = self._fork()
        if pid == 0:
            ours.close()
            serve(theirs)  # returns only in a runner taking over
            return 0, theirs
        theirs.close()
        return pid, ours

    def _ask(self, copy: tuple[int, socket.socket], header: dict, payload: bytes, timeout: float):
        """One request to a copy: its answer, or ``"timed out"`` / ``"died"`` (the copy is then gone)."""
        from .protocol import ProtocolError, recv_frame, send_frame

        pid, link = copy
        try:
            send_frame(link, header, payload)
            link.settimeout(timeout + 2.0)
            return recv_frame(link)
        except socket.timeout:
            link.close()
            self._kill(pid)
            return "timed out", None
        except (ProtocolError, OSError):
            link.close()
            return "died", self._kill(pid)

    # -- cells ----------------------------------------------------------------------------------------------------

    def _serve_cells(self, link: socket.socket) -> None:
        """The runner's loop: cells from the holder until it closes the link, or hands over (then return)."""
        from .protocol import ProtocolError, recv_frame, send_frame

        me = os.getpid()
        while True:
            try:
                header, _ = recv_frame(link)
            except (ProtocolError, OSError):
                os._exit(0)
            if header.get("op") == "takeover":
                send_frame(link, {"ok": True})
                link.close()
                self.runner, self.log = None, []
                self.pending = header["pending"]
                return
            reply = self.notebook.run_cell(int(header.get("index", -1)), str(header["source"]),
                                           float(header["timeout"]))
            if header.get("op") == "probe":  # for the sandbox's own tests: what the learner's code would see
                reply["value"] = repr(self.notebook.namespace.get("_probe"))[:ERROR_CHARS]
            if os.getpid() != me:  # a process the learner's code forked: it never talks to the holder
                os._exit(0)
            send_frame(link, reply)

    def _start_runner(self) -> bool:
        """A fresh runner with the logged cells replayed; False in the runner itself once it has taken over."""
        pid, link = self._copy(self._serve_cells)
        if pid == 0:
            return False
        self.runner = (pid, link)
        for request in list(self.log):
            answer, _ = self._ask(self.runner, request, b"", float(request["timeout"]))
            if not isinstance(answer, dict):  # a cell that went well before fails now: leave it out, go on
                self.log.remove(request)
                self.runner = None
                return self._start_runner()
        return True

    def cell(self, header: dict) -> tuple[dict, bytes] | None:
        self.end_caller()
        if self.runner is None and not self._start_runner():
            return None
        timeout = float(header["timeout"])
        answer, detail = self._ask(self.runner, header, b"", timeout)
        if isinstance(answer, dict):
            self.log.append(header)
            return answer, b""
        if answer == "timed out":
            reply = {"status": "timed out", "error": f"timed out after {timeout:g} s", "seconds": timeout}
        else:
            reply = {"status": "error", "error": f"the cell ended its process (exit code {detail})",
                     "seconds": 0.0}
        self.runner = None  # the holder, as it was before the cells, starts over without the bad cell
        if not self._start_runner():
            return None  # (in the new runner, once it has taken over: the holder sent this reply long ago)
        return reply, b""

    def take_over(self, pending: dict) -> bool:
        """Hand the notebook to the runner, which answers ``pending``: True in the old holder, which then exits;
        False when there is no runner (no cells ran) and the holder answers itself."""
        if self.runner is None:
            return False
        answer, _ = self._ask(self.runner, {"op": "takeover", "pending": pending}, b"", 30.0)
        self.runner = None
        return isinstance(answer, dict)

    # -- calls ----------------------------------------------------------------------------------------------------

    def _serve_calls(self, link: socket.socket) -> None:
        """A caller's loop: calls of the current exercise until the holder closes the link."""
        from .protocol import ProtocolError, recv_frame, send_frame

        self.sock.close()
        me = os.getpid()
        while True:
            try:
                header, payload = recv_frame(link)
            except (ProtocolError, OSError):
                os._exit(0)
            positions = tuple(header["positions"]) if header.get("op") == "gradients" else None
            self.notebook.last_call_s = 0.0
            reply, data = self.notebook.call(pickle.loads(payload), float(header["timeout"]), positions)
            if os.getpid() != me:
                os._exit(0)
            send_frame(link, {**reply, "seconds": self.notebook.last_call_s}, data)

    def call(self, header: dict, payload: bytes) -> tuple[dict, bytes]:
        """Forward one call to the exercise's caller (started on its first call), within its time limit."""
        if self.caller is None:
            self.caller = self._copy(self._serve_calls)
        timeout = float(header["timeout"])
        answer, detail = self._ask(self.caller, header, payload, timeout)
        if isinstance(answer, dict):
            return answer, detail
        self.caller = None
        if answer == "timed out":
            return {"status": "timed out", "message": f"timed out after {timeout:g} s"}, b""
        return {"status": "raised", "type": "ProcessExit",
                "message": f"your function ended the notebook's process (exit code {detail})"}, b""

    def end_caller(self) -> None:
        if self.caller is not None:
            pid, link = self.caller
            self.caller = None
            link.close()  # it leaves on its own; reaped before the next fork
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def serve_child(sock: socket.socket, dedicated_uid: bool = False) -> None:
    """The child's loop: one request from the grader, one answer, until ``bye`` or the connection closes."""
    from .protocol import ProtocolError, recv_frame, send_frame

    notebook = Notebook()
    notebook._restore_streams()
    holder = _Holder(sock, notebook, dedicated_uid)
    holder.pending = None
    send_frame(sock, {"ready": True, "uid": os.getuid(), "pid": os.getpid()})
    while True:
        if holder.pending is not None:  # a runner that has just taken over answers the request that made it
            header, payload, holder.pending = holder.pending, b"", None
        else:
            try:
                header, payload = recv_frame(sock)
            except ProtocolError:
                holder.end_caller()
                return
        op = header.get("op")
        answer: tuple[dict, bytes] | None
        if op in ("cell", "probe"):
            answer = holder.cell(header)
            if answer is None:  # this process is a runner that has just taken over
                continue
        elif op in ("call", "gradients"):
            answer = holder.call(header, payload)
        elif op == "exercise":  # a new exercise (or its hidden part): a fresh caller for its calls
            holder.end_caller()
            if holder.take_over(header):
                os._exit(0)  # the runner holds the notebook now, and answers
            answer = notebook.begin_exercise(header), b""
        elif op == "bye":
            holder.end_caller()
            return
        else:
            answer = {"status": "error", "error": f"unknown request {op!r}"}, b""
        send_frame(sock, *answer)


# --------------------------------------------------------------------------------------------------------------------
# The fork server
# --------------------------------------------------------------------------------------------------------------------


def preload() -> None:
    """Import (and warm up) what every lesson uses, once per server, so that forked children start at once."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    x = torch.rand(1, 1, 5, 5, requires_grad=True)
    F.grid_sample(F.conv2d(x, torch.rand(1, 1, 3, 3)), torch.zeros(1, 2, 2, 2), align_corners=False).sum().backward()
    from IPython.core.inputtransformer2 import TransformerManager  # noqa: F401

    import IPython.display

    IPython.display.display = lambda *objects, **kwargs: None  # no front end: displaying is a no-op
    import stn_course
    import stn_course.checks
    import stn_course.plotting  # noqa: F401
    import stn_course.widgets  # noqa: F401

    stn_course.checks.all_checks()
    from ..checks.equivalents import CONVOLUTION, GRID_SAMPLE
    from .bans import Bans, guard_profile_functions

    with Bans((*GRID_SAMPLE, *CONVOLUTION, "stn_course.sampling.bilinear_sample")):  # torch's modes import lazily
        (torch.zeros(2, requires_grad=True) * 2).sum().backward()
    guard_profile_functions()
    # check() in a notebook being graded returns the learner's function as it is: the grader runs the checks
    stn_course.checks.check = lambda check_id, fn, *args, **kwargs: fn
    stn_course.checks.status = lambda check_id: None


def _no_new_privileges() -> None:
    """PR_SET_NO_NEW_PRIVS: a setuid program started by the learner's code gains nothing."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)


def _enter_child(workdir: str, limits: dict, uid: int | None) -> None:
    """In the freshly forked child, before any learner code: limits, privileges, folder, file descriptors."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    memory = int(limits["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    size = int(limits["file_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    if uid is not None:  # a dedicated unprivileged uid: its process count is this child's alone
        os.chown(workdir, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        processes = int(limits["processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    _no_new_privileges()
    os.chdir(workdir)
    for key in ("HOME", "TMPDIR"):
        os.environ[key] = workdir
    os.environ["MPLCONFIGDIR"] = os.path.join(workdir, ".matplotlib")


def _reap(pid: int, wait_s: float) -> int | None:
    """Wait up to ``wait_s`` for ``pid``; its exit code (negative: the signal), or None if it is still running."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


def _kill_everything(pid: int, own_pid_namespace: bool) -> None:
    """Kill the child's process group – and, in the sandbox's own PID namespace, every process but us."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if own_pid_namespace:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(-1, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # reap whatever is left (grandchildren become ours in the namespace)
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if not done:
            time.sleep(0.005)


def serve(control: socket.socket, workroot: str, uid: int | None, own_pid_namespace: bool) -> None:
    """The fork server's loop (requests on ``control``, a SOCK_SEQPACKET socket to the grader)."""
    preload()
    control.send(json.dumps({"ready": True, "uid": os.getuid(), "pid": os.getpid()}).encode())
    counter = 0
    workdirs: dict[int, str] = {}
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 1)
        except OSError:
            break
        if not message:
            break
        request = json.loads(message)
        op = request.get("op")
        if op == "fork" and fds:
            counter += 1
            workdir = os.path.join(workroot, f"submission-{counter}")
            os.makedirs(workdir, mode=0o700)
            pid = os.fork()
            if pid == 0:  # the child
                code = 0
                try:
                    control.close()
                    _enter_child(workdir, request["limits"], uid)
                    serve_child(socket.socket(fileno=fds[0]), dedicated_uid=uid is not None)
                except BaseException:  # noqa: BLE001
                    code = 70
                finally:
                    os._exit(code)
            os.close(fds[0])
            workdirs[pid] = workdir
            reply: dict[str, Any] = {"pid": pid}
        elif op in ("kill", "reap"):
            pid = int(request["pid"])
            code = _reap(pid, 0.0 if op == "kill" else 2.0)
            if code is None:
                _kill_everything(pid, own_pid_namespace)
                code = _reap(pid, 2.0)
            else:
                _kill_everything(pid, own_pid_namespace)
            shutil.rmtree(workdirs.pop(pid, ""), ignore_errors=True)
            reply = {"pid": pid, "exit_code": code}
        elif op == "exit":
            break
        else:
            for fd in fds:
                os.close(fd)
            reply = {"error": f"unknown request {op!r}"}
        control.send(json.dumps(reply).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the grader's sandboxed fork server (started by stn-course grade)")
    parser.add_argument("--fd", type=int, required=True, help="the control socket (SOCK_SEQPACKET) to the grader")
    parser.add_argument("--workroot", required=True, help="where the children's working folders go")
    parser.add_argument("--uid", type=int, default=None, help="drop the children to this uid (needs root)")
    parser.add_argument("--own-pid-namespace", action="store_true", help="we run in a PID namespace of our own")
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.fd)
    os.makedirs(args.workroot, exist_ok=True)
    serve(control, args.workroot, args.uid, args.own_pid_namespace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
