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
        # the references the lesson's other exercises stand in with, taken before any learner code runs
        self.references = {c.id: (c.function_name, c.reference) for c in registry.all_checks()}

    def compile(self, source: str, filename: str):
        return compile(self._transformer.transform_cell(source), filename, "exec")

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
        self.exercise = (fn, Bans(forbidden), others)
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
        try:
            with time_limit(timeout):
                with self._isolated(bans, others), bans:
                    if positions is None:
                        value = self.registry._call(fn, case)
                    else:
                        value = self.registry._gradients(fn, case, tuple(positions))
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
    """The process that holds the notebook's state, and runs everything the learner wrote in a forked copy.

    A cell runs in a copy that, when the cell is over, takes over as the holder (its state is the notebook's new
    state) while the old holder exits. The calls of an exercise's function run in a copy (a "caller") that lives
    for one exercise's visible or hidden cases and is then thrown away, so no exercise sees what another one
    did. If a copy dies (``os._exit``, a crash) or overruns its time, the holder – still as it was before – kills
    it and answers for it: the notebook goes on from there.
    """

    def __init__(self, sock: socket.socket, notebook: "Notebook", dedicated_uid: bool) -> None:
        self.sock, self.notebook, self.dedicated_uid = sock, notebook, dedicated_uid
        self.caller: tuple[int, socket.socket] | None = None

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
    def _end(pid: int) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def run_cell(self, work, timeout: float) -> tuple[dict, bytes] | None:
        """Run ``work() -> (reply, payload)`` in a copy that becomes the holder once it has answered (``None``
        comes back in the copy; the old holder exits). If the copy dies or overruns ``timeout`` (plus a grace), the
        holder answers for it and stays."""
        from .protocol import send_frame

        self.end_caller()
        read_end, write_end = os.pipe()
        pid = self._fork()
        if pid == 0:  # the copy
            os.close(read_end)
            me = os.getpid()
            reply, data = work()
            if os.getpid() != me:  # a process the learner's code forked: it never talks to the grader
                os._exit(0)
            os.write(write_end, b"k")  # take over: the old holder leaves
            os.close(write_end)
            send_frame(self.sock, reply, data)
            return None
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], timeout + 2.0)
        taken_over = ready and os.read(read_end, 1) == b"k"
        os.close(read_end)
        if taken_over:
            os._exit(0)  # the copy holds the notebook now
        code = self._end(pid)
        if not ready:
            return {"status": "timed out", "error": f"timed out after {timeout:g} s", "seconds": timeout}, b""
        return {"status": "error", "error": f"the cell ended its process (exit code {code})", "seconds": 0.0}, b""

    def call(self, header: dict, payload: bytes) -> tuple[dict, bytes]:
        """Forward one call to the exercise's caller copy (started on the first call), within its time limit."""
        from .protocol import ProtocolError, recv_frame, send_frame

        timeout = float(header["timeout"])
        if self.caller is None:
            self.caller = self._start_caller()
        pid, link = self.caller
        try:
            send_frame(link, header, payload)
            link.settimeout(timeout + 2.0)
            return recv_frame(link)
        except socket.timeout:
            self.end_caller()
            return {"status": "timed out", "message": f"timed out after {timeout:g} s"}, b""
        except (ProtocolError, OSError):
            self.caller = None
            link.close()
            code = self._end(pid)
            return {"status": "raised", "type": "ProcessExit",
                    "message": f"your function ended the notebook's process (exit code {code})"}, b""

    def _start_caller(self) -> tuple[int, socket.socket]:
        from .protocol import ProtocolError, recv_frame, send_frame

        ours, theirs = socket.socketpair()
        pid = self._fork()
        if pid == 0:  # the caller: answers calls until the holder closes the link
            ours.close()
            self.sock.close()
            me = os.getpid()
            while True:
                try:
                    header, payload = recv_frame(theirs)
                except (ProtocolError, OSError):
                    os._exit(0)
                positions = tuple(header["positions"]) if header.get("op") == "gradients" else None
                reply, data = self.notebook.call(pickle.loads(payload), float(header["timeout"]), positions)
                if os.getpid() != me:
                    os._exit(0)
                send_frame(theirs, reply, data)
        theirs.close()
        return pid, ours

    def end_caller(self) -> None:
        if self.caller is not None:
            pid, link = self.caller
            self.caller = None
            link.close()
            self._end(pid)


def serve_child(sock: socket.socket, dedicated_uid: bool = False) -> None:
    """The child's loop: one request from the grader, one answer, until ``bye`` or the connection closes."""
    from .protocol import ProtocolError, recv_frame, send_frame

    notebook = Notebook()
    notebook._restore_streams()
    holder = _Holder(sock, notebook, dedicated_uid)
    send_frame(sock, {"ready": True, "uid": os.getuid(), "pid": os.getpid()})
    while True:
        try:
            header, payload = recv_frame(sock)
        except ProtocolError:
            holder.end_caller()
            return
        op = header.get("op")
        answer: tuple[dict, bytes] | None
        if op in ("cell", "probe"):
            index, timeout = int(header.get("index", -1)), float(header["timeout"])

            def work(source=str(header["source"])) -> tuple[dict, bytes]:
                reply = notebook.run_cell(index, source, timeout)
                if op == "probe":  # for the sandbox's own tests: what the learner's code would see
                    reply["value"] = repr(notebook.namespace.get("_probe"))[:ERROR_CHARS]
                return reply, b""

            answer = holder.run_cell(work, timeout)
        elif op in ("call", "gradients"):
            answer = holder.call(header, payload)
        elif op == "exercise":  # a new exercise (or its hidden part): a fresh caller for its calls
            holder.end_caller()
            answer = notebook.begin_exercise(header), b""
        elif op == "bye":
            holder.end_caller()
            return
        else:
            answer = {"status": "error", "error": f"unknown request {op!r}"}, b""
        if answer is not None:
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
