"""The grader's side of the sandbox: fork servers in bubblewrap, children with deadlines (classroom grading).

A :class:`Worker` is one job slot: a fork server (:mod:`~stn_course.grading.server`) started once, inside
Debian's ``bubblewrap`` where it works – no network, a private size-limited ``/tmp``, nothing of the file system
but the interpreter, the installed packages and the course's package folder (never the course folder, its
``solutions/``, the seed file, other submissions or the working folder), its own PID namespace, children dropped
to an unprivileged uid when the grader runs as root – or, only when the instructor allows it, as a plain process
with the same rlimits and the same unprivileged uid (every report says it was not sandboxed). That uid is leased
for the worker's life from :mod:`~stn_course.grading.uids`, so two grading runs never share one.
:meth:`Worker.spawn` gives a :class:`Session` with one fresh child, its socket and the guard's channel: a second
socket that only the guard in the child writes to, each line starting with a nonce that exists only here and in
the guard. Every request to the child has a wall-clock deadline kept here, in the grader: a child that does not
answer in time is killed with everything it started.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .protocol import ProtocolError, recv_frame, send_frame
from .uids import UidLease, UidPool

__all__ = ["Limits", "Worker", "Session", "SessionDied", "SessionTimeout", "SandboxUnavailable", "bubblewrap",
           "sandbox_status"]

GRACE_S = 5.0  # the holder kills a copy at the wall-clock backstop; the grader waits this much longer


@dataclass(frozen=True)
class Limits:
    """Per-submission limits: CPU seconds per exercise, per cell and for all cells (:mod:`.budgets`), wall-clock
    seconds for the whole submission and the whole run, the memory each process may map beyond what the interpreter
    maps after its imports and the number of processes (together: the memory budget), CPU, files, ``/tmp``.
    The defaults fit Gradescope's 10 minutes with headroom (docs/grading.md, section 9)."""

    timeout_s: float = 20.0  # CPU seconds of an exercise's calls, visible and hidden together
    memory_mb: int = 4096  # each process: RLIMIT_AS = its address space after the imports + this
    cpu_s: int = 900
    file_mb: int = 64
    processes: int = 64
    submission_s: float | None = None  # default: 10 × timeout_s
    tmp_mb: int = 512
    total_memory_mb: int = 8192  # all of a job slot's processes together, where a cgroup can be made
    cell_timeout_s: float = 12.0  # CPU seconds of one cell (at most timeout_s)
    cells_s: float = 60.0  # CPU seconds of all of a notebook's cells, then budgets.CELL_FLOOR_S per cell
    run_s: float | None = None  # wall-clock seconds of the whole run (Gradescope: one student's notebooks)

    @property
    def submission_budget_s(self) -> float:
        return float(self.submission_s) if self.submission_s else 10.0 * self.timeout_s

    @property
    def cell_s(self) -> float:
        """CPU seconds of one cell: ``cell_timeout_s``, never more than an exercise gets."""
        return min(float(self.cell_timeout_s), float(self.timeout_s))

    def for_child(self) -> dict[str, Any]:
        return {"memory_mb": self.memory_mb, "cpu_s": self.cpu_s, "file_mb": self.file_mb,
                "processes": self.processes}


class SandboxUnavailable(RuntimeError):
    """``--require-sandbox`` was given and bubblewrap cannot run here."""


class SessionDied(RuntimeError):
    """The child exited or broke the protocol (``os._exit``, a crash, a closed socket)."""


class SessionTimeout(RuntimeError):
    """The child did not answer before the deadline; it has been killed."""


def _bind_roots() -> list[str]:
    """The read-only folders the child needs: the interpreter, the environment's packages, and the course's
    package folder itself – not the folder around it (an editable install lives in the course folder, beside
    ``solutions/`` and perhaps the seed and the submissions)."""
    import site

    import stn_course

    package = Path(stn_course.__file__).resolve().parent
    roots = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), str(package)}
    for entry in [*site.getsitepackages(), site.getusersitepackages()]:
        if entry and os.path.isdir(entry) and not (package.parent == Path(entry).resolve()
                                                   or package.parent in Path(entry).resolve().parents):
            roots.add(os.path.realpath(entry))
    kept: list[str] = []
    for root in sorted(roots, key=len):  # drop system folders and folders inside another bound folder
        if (root in ("/", "/tmp", "/usr", "/etc", "/root") or root.startswith(("/usr/", "/proc", "/dev"))
                or any(root == k or root.startswith(k + "/") for k in kept)):
            continue
        kept.append(root)
    return kept


def _bwrap_command(bwrap: str, unprivileged: bool, tmp_mb: int = 512) -> list[str]:
    command = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--die-with-parent", "--new-session"]
    if unprivileged:
        command += ["--unshare-user"]
    command += ["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
                "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
                "--proc", "/proc", "--dev", "/dev", "--size", str(int(tmp_mb) * 2**20), "--tmpfs", "/tmp",
                "--perms", "1777", "--size", str(64 * 2**20), "--tmpfs", "/dev/shm"]  # (multiprocessing's semaphores live there)
    made = {"/", "/usr", "/tmp", "/proc", "/dev", "/dev/shm", "/etc", "/lib", "/lib64", "/bin", "/sbin"}
    for root in _bind_roots():
        parents = [str(p) for p in reversed(Path(root).parents) if str(p) not in made]
        for parent in parents:  # bwrap would make them 0700, closed to the children's uid
            command += ["--perms", "0755", "--dir", parent]
            made.add(parent)
        command += ["--ro-bind", root, root]
        made.add(root)
    return command + ["--chdir", "/tmp"]


@lru_cache(maxsize=1)
def bubblewrap() -> tuple[str | None, str]:
    """``(path to bwrap, "")`` when bubblewrap can build the sandbox here, else ``(None, why not)``."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bubblewrap (bwrap) is not installed"
    command = _bwrap_command(bwrap, os.geteuid() != 0) + [sys.executable, "-c", "print('ok')"]
    try:
        probe = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_environment())
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"bubblewrap failed to start ({exc})"
    if probe.returncode != 0 or probe.stdout.strip() != "ok":
        return None, f"bubblewrap cannot build a sandbox here: {probe.stderr.strip()[:300] or probe.returncode}"
    return bwrap, ""


def sandbox_status(disable: bool = False) -> str:
    """How submissions will run, in words for every report."""
    from .cgroups import memory_cgroup

    probe = memory_cgroup(f"stn-grade-probe-{os.getpid()}", 256) if os.geteuid() == 0 else None
    memory = "one memory budget per job (cgroup)" if probe is not None else "memory limited per process only"
    if probe is not None:
        probe.remove()
    if disable:
        return ("not sandboxed: separate processes with rlimits, an unprivileged uid when run as root, "
                f"{memory} (the sandbox was switched off)")
    bwrap, why = bubblewrap()
    if bwrap:
        who = "an unprivileged uid per job" if os.geteuid() == 0 else "the grader's uid in a user namespace"
        return (f"sandboxed with bubblewrap: no network, private /tmp, only the interpreter and the course's package "
                f"visible, own PID namespace, {who}, rlimits, {memory}")
    return (f"not sandboxed: separate processes with rlimits, an unprivileged uid when run as root, {memory} "
            f"({why})")


def _environment() -> dict[str, str]:
    """The whole environment the server and its children get: nothing of the grader's own (no tokens). The course
    is imported from the folder this grader imported it from (whatever an editable install's path file says)."""
    import stn_course

    package_parent = str(Path(stn_course.__file__).resolve().parents[1])
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
            "PYTHONPATH": package_parent,
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",  # fewer malloc arenas: less memory
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1", "STN_COURSE_GRADING": "1", "TRITON_INTERPRET": "1"}


class Worker:
    """One job slot: a fork server, sandboxed where possible; :meth:`spawn` makes a fresh child."""

    def __init__(self, slot: int, limits: Limits, sandbox: bool = True) -> None:
        self.slot, self.limits = slot, limits
        bwrap, self.unsandboxed_reason = bubblewrap() if sandbox else (None, "switched off")
        self.bwrap = bwrap
        self.sandboxed = bwrap is not None
        self.process: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self._tmp: str | None = None
        self._lock = threading.Lock()
        self.cgroup = None
        self.uids = UidPool()  # as root: the slot's children run as a uid leased for this worker's life alone
        self.uid_lease: UidLease | None = None

    @property
    def uid(self) -> int | None:
        """The unprivileged uid this worker's children run as (when the grader runs as root), else None."""
        return self.uid_lease.uid if self.uid_lease is not None else None

    # -- the server ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until it has imported everything (about 2 s)."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the server without waiting for it. bubblewrap's ``--die-with-parent`` follows the *thread* that
        started it: launch from a thread that outlives the worker (the grader launches from its own)."""
        parent_end, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = os.geteuid() == 0
        if root and self.uid_lease is None:  # a uid no other grading run holds and no leftover process uses
            self.uid_lease = self.uids.acquire()
        uid = ["--uid", str(self.uid)] if root else []
        if self.sandboxed:
            prefix = _bwrap_command(self.bwrap, not root, self.limits.tmp_mb)
            workroot = "/tmp/grading"
            extra = ["--own-pid-namespace", *uid]
        else:  # the same unprivileged uid; a folder of its own that nobody else can list
            prefix = []
            self._tmp = tempfile.mkdtemp(prefix="stn-grade-")
            os.chmod(self._tmp, 0o711)
            workroot = os.path.join(self._tmp, "work")
            extra = uid
        from ..checks import registry

        forbidden = json.dumps({c.id: list(c.forbidden) for c in registry.all_checks()  # the instructor's checks
                                if not getattr(c.cases, "__module__", "").startswith("stn_course.")})
        command = prefix + [sys.executable, "-m", "stn_course.grading.server", "--fd", str(server_end.fileno()),
                            "--workroot", workroot, "--forbidden", forbidden, *extra]
        from .cgroups import memory_cgroup

        if self.cgroup is None and os.geteuid() == 0:
            self.cgroup = memory_cgroup(f"stn-grade-{os.getpid()}-{self.slot}-{secrets.token_hex(4)}",
                                        self.limits.total_memory_mb)
        self.process = subprocess.Popen(command, pass_fds=(server_end.fileno(),), env=_environment(),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True,
                                        preexec_fn=self.cgroup.enter if self.cgroup is not None else None)
        server_end.close()
        self.control = parent_end

    def wait_ready(self) -> None:
        assert self.control is not None
        self.control.settimeout(120)
        try:
            ready = json.loads(self.control.recv(1 << 16) or b"{}")
        except (OSError, ValueError):
            ready = {}
        if not ready.get("ready"):
            error = self._stop_process()
            raise RuntimeError(f"the grading worker did not start: {error[-2000:]}")
        self.control.settimeout(None)

    def _stop_process(self) -> str:
        error = ""
        if self.process is not None:
            if self.process.poll() is None:
                try:
                    os.killpg(self.process.pid, 9)
                except (ProcessLookupError, PermissionError):
                    self.process.kill()
            try:
                _, stderr = self.process.communicate(timeout=10)
                error = (stderr or b"").decode(errors="replace")
            except subprocess.TimeoutExpired:
                pass
        self.process = None
        if self.control is not None:
            self.control.close()
            self.control = None
        return error

    def _request(self, request: dict, fds: list[int] | None = None, timeout: float = 30.0) -> dict:
        if self.control is None or self.process is None or self.process.poll() is not None:
            self.close()
            self.start()
        assert self.control is not None
        self.control.settimeout(timeout)
        try:
            if fds:
                socket.send_fds(self.control, [json.dumps(request).encode()], fds)
            else:
                self.control.send(json.dumps(request).encode())
            reply = json.loads(self.control.recv(1 << 16) or b"{}")
        except (OSError, ValueError) as exc:
            self._stop_process()
            raise SessionDied(f"the grading worker stopped answering ({exc})") from None
        finally:
            if self.control is not None:
                self.control.settimeout(None)
        return reply

    def close(self) -> None:
        if self.control is not None and self.process is not None and self.process.poll() is None:
            try:
                self.control.send(json.dumps({"op": "exit"}).encode())
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stop_process()
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self.uid_lease is not None:  # after the server: whatever of its uid is left is ours, then release it
            if not self.sandboxed:  # (in bubblewrap, the PID namespace ended with the server)
                self.uid_lease.kill_processes()
            self.uid_lease.release()
            self.uid_lease = None

    # -- children --------------------------------------------------------------------------------------------------

    def spawn(self) -> "Session":
        """A fresh child, ready for requests: its socket, and the guard's channel with a fresh nonce."""
        with self._lock:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            channel, guard_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            nonce = secrets.token_hex(16)
            try:
                reply = self._request({"op": "fork", "limits": self.limits.for_child(), "nonce": nonce},
                                      [theirs.fileno(), guard_end.fileno()])
            finally:
                theirs.close()
                guard_end.close()
            if "pid" not in reply:
                ours.close()
                channel.close()
                raise SessionDied(f"the grading worker could not start a child: {reply}")
            session = Session(self, int(reply["pid"]), ours, channel, nonce)
        session.handshake()
        return session

    def freeze(self, root: int, keep: int) -> bool:
        """Stop (SIGSTOP) every process of the submission whose child is ``root`` but ``keep``."""
        with self._lock:
            try:
                reply = self._request({"op": "freeze", "root": root, "keep": keep})
            except SessionDied:
                return False
        return bool(reply.get("frozen"))

    def alive(self, pid: int) -> bool:
        """Is process ``pid`` (as the sandbox numbers it) still running?"""
        with self._lock:
            try:
                return bool(self._request({"op": "alive", "pid": pid}).get("alive"))
            except SessionDied:
                return False

    def end_caller(self, root: int, caller: int) -> None:
        """Kill the caller ``caller`` and what it started; let the submission's other processes go on."""
        with self._lock:
            with contextlib.suppress(SessionDied):
                self._request({"op": "end-caller", "root": root, "caller": caller})

    def finish(self, pid: int, kill: bool) -> int | None:
        """Kill (or wait briefly for) child ``pid`` and everything it started; its exit code."""
        with self._lock:
            try:
                reply = self._request({"op": "kill" if kill else "reap", "pid": pid})
            except SessionDied:
                return None
        return reply.get("exit_code")

    def __enter__(self) -> "Worker":
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class Session:
    """One child: requests with deadlines. A missed deadline kills the child (:class:`SessionTimeout`); a child
    that exits or garbles the protocol is :class:`SessionDied` with its exit code."""

    def __init__(self, worker: Worker, pid: int, sock: socket.socket, channel: socket.socket | None = None,
                 nonce: str = "") -> None:
        self.worker, self.pid, self.sock, self.channel, self.nonce = worker, pid, sock, channel, nonce
        self.alive = True
        self.info: dict = {}
        self._pending = b""
        self.forged = 0  # lines on the channel without the nonce (written by learner code)

    def reports(self) -> list[tuple[str, str]]:
        """What the guard has reported since the last look: ``(kind, detail)`` pairs (``armed``, ``banned``,
        ``refused``, ``tamper``). Lines without the nonce are counted in :attr:`forged` and dropped."""
        if self.channel is None or self.channel.fileno() < 0:
            return []
        try:
            self.channel.setblocking(False)
            while True:
                chunk = self.channel.recv(1 << 16)
                if not chunk:
                    break
                self._pending += chunk
                if len(self._pending) > 1 << 20:  # a flood: keep the tail
                    self._pending = self._pending[-(1 << 16):]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass
        lines = self._pending.split(b"\n")
        self._pending = lines.pop()
        found = []
        for line in lines:
            text = line.decode("utf-8", "replace")
            prefix = self.nonce + " "
            if not self.nonce or not text.startswith(prefix):
                self.forged += 1
                continue
            kind, _, detail = text[len(prefix):].partition(" ")
            found.append((kind, detail))
        return found

    def handshake(self, timeout: float = 60.0) -> None:
        header, _ = self._receive(timeout)
        if not header.get("ready"):
            self._died()
        self.info = header

    def request(self, header: dict, payload: bytes = b"", timeout: float = 60.0) -> tuple[dict, bytes]:
        """Send one request and wait at most ``timeout`` seconds for the answer."""
        if not self.alive:
            raise SessionDied("the child is gone")
        try:
            send_frame(self.sock, header, payload)
        except OSError:
            self._died()
        return self._receive(timeout)

    def _receive(self, timeout: float) -> tuple[dict, bytes]:
        self.sock.settimeout(timeout)
        try:
            return recv_frame(self.sock)
        except socket.timeout:
            self.close(kill=True)
            raise SessionTimeout(f"no answer within {timeout:g} s") from None
        except (ProtocolError, OSError):
            self._died()

    def _died(self) -> None:
        code = self.close(kill=False)
        raise SessionDied(f"the notebook's process ended (exit code {code})")

    def close(self, kill: bool = True) -> int | None:
        if not self.alive:
            return None
        self.alive = False
        if not kill:
            code = self.worker.finish(self.pid, kill=False)
        else:
            try:
                self.sock.settimeout(2)
                send_frame(self.sock, {"op": "bye"})
            except OSError:
                pass
            code = self.worker.finish(self.pid, kill=True)
        self.sock.close()
        if self.channel is not None:
            self.channel.close()
        return code
