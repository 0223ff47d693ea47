"""The process tree of one submission inside the sandbox: a holder, a runner for the cells, a caller per exercise
part (classroom grading).

The *holder* answers the grader and keeps the notebook's state; everything the learner wrote runs in a forked copy
of it. The cells run in a copy (the *runner*); the holder keeps their log. If the runner dies on a cell
(``os._exit``, a crash) or overruns its time, the holder – still as it was before the cells – forks a new runner,
replays the cells that went well, and the notebook goes on without the bad one. When the exercises begin, the
runner takes over as the holder.

Each part of an exercise (its visible cases, then its hidden ones) runs in a *caller*: a fresh fork of the holder
that first asks the guard to arm it for that exercise (:func:`~stn_course.grading.guard.arm`; the guard tells the
grader), then reads the grader's calls from the submission's socket itself and answers them. While it does, the
grader has the fork server stop every other process of the submission (``SIGSTOP``), so no unguarded copy can
compute for it; when the part is over the caller is killed and the others go on.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import time
from typing import Any

from .limits import wall_backstop
from .namespace import ERROR_CHARS, Notebook
from .protocol import ProtocolError, recv_frame, send_frame

__all__ = ["serve_child"]


class _Holder:
    def __init__(self, sock: socket.socket, notebook: Notebook) -> None:
        self.sock, self.notebook = sock, notebook
        self.runner: tuple[int, socket.socket] | None = None
        self.log: list[dict] = []  # the cells the runner ran (and must replay after a failure)
        self.pending: dict | None = None  # a request a runner that has just taken over must answer

    # -- processes ----------------------------------------------------------------------------------------------

    def _fork(self) -> int:
        self._reap_strays()
        for attempt in range(50):
            try:
                return os.fork()
            except BlockingIOError:  # the learner's processes used up RLIMIT_NPROC
                if attempt == 49:
                    raise
                time.sleep(0.05)
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
        try:
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except ChildProcessError:
            return -9

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

    def _ask(self, copy: tuple[int, socket.socket], header: dict, timeout: float):
        """One request to a copy: its answer, or ``"timed out"`` / ``"died"`` (the copy is then gone)."""
        pid, link = copy
        try:
            send_frame(link, header)
            link.settimeout(wall_backstop(timeout))
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
                reply["value"] = repr(self.notebook.namespace.get("_probe"))[:4000]
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
            answer, _ = self._ask(self.runner, request, float(request["timeout"]))
            if not isinstance(answer, dict):  # a cell that went well before fails now: leave it out, go on
                self.log.remove(request)
                self.runner = None
                return self._start_runner()
        return True

    def cell(self, header: dict) -> tuple[dict, bytes] | None:
        if self.runner is None and not self._start_runner():
            return None
        timeout = float(header["timeout"])
        answer, detail = self._ask(self.runner, header, timeout)
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
        answer, _ = self._ask(self.runner, {"op": "takeover", "pending": pending}, 30.0)
        self.runner = None
        return isinstance(answer, dict)

    # -- exercise parts -------------------------------------------------------------------------------------------

    def caller(self, header: dict) -> tuple[dict, bytes] | None:
        """Fork the caller for one exercise part: it arms itself, says so, and then answers the grader's calls
        directly on the submission's socket. The holder waits for it to end (stopped by the grader meanwhile)."""
        from .guard import arm

        self._reap_strays()
        pid = self._fork()
        if pid == 0:
            if not arm(str(header["id"])):
                os._exit(71)
            send_frame(self.sock, {"armed": True})
            self._serve_calls()
            os._exit(0)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        return None

    def _serve_calls(self) -> None:
        """A caller's loop: calls of the current exercise from the grader until ``done`` or the socket closes."""
        me = os.getpid()
        while True:
            try:
                header, payload = recv_frame(self.sock)
            except (ProtocolError, OSError):
                os._exit(0)
            if header.get("op") not in ("call", "gradients"):
                os._exit(0)
            positions = tuple(header["positions"]) if header.get("op") == "gradients" else None
            try:
                case = pickle.loads(payload)
            except Exception:  # noqa: BLE001 – cannot happen with the grader's own payloads
                os._exit(72)
            reply, data = self.notebook.call(case, float(header["timeout"]), positions)
            if os.getpid() != me:
                os._exit(0)
            send_frame(self.sock, {**reply, "seconds": self.notebook.last_call_cpu_s}, data)


def serve_child(sock: socket.socket, stand_ins: dict[str, Any]) -> None:
    """The child's loop: one request from the grader, one answer, until ``bye`` or the connection closes."""
    notebook = Notebook(stand_ins)
    notebook.restore_streams()
    holder = _Holder(sock, notebook)
    send_frame(sock, {"ready": True, "uid": os.getuid(), "pid": os.getpid()})
    while True:
        if holder.pending is not None:  # a runner that has just taken over answers the request that made it
            header, payload, holder.pending = holder.pending, b"", None
        else:
            try:
                header, payload = recv_frame(sock)
            except ProtocolError:
                return
        op = header.get("op")
        answer: tuple[dict, bytes] | None
        if op in ("cell", "probe"):
            answer = holder.cell(header)
            if answer is None:  # this process is a runner that has just taken over
                continue
        elif op == "exercise":  # a new exercise: the runner (if any) takes over, then reads the function's code
            if holder.take_over(header):
                os._exit(0)  # the runner holds the notebook now, and answers
            answer = notebook.begin_exercise(header), b""
        elif op == "caller":
            holder.caller(header)
            continue
        elif op == "bye":
            return
        else:
            answer = {"status": "error", "error": f"unknown request {str(op)[:ERROR_CHARS]!r}"}, b""
        send_frame(sock, *answer)
