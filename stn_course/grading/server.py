"""The fork server in the sandbox: imports once, forks a fresh child per submission, and is the grader's trusted
hand inside the sandbox (classroom grading).

The grader starts one server per job slot (``python -m stn_course.grading.server``), inside bubblewrap where it
is installed. It imports torch and the course once, resolves every check's bans into plans, makes the stand-ins
and records what each stand-in's reference calls – all before any learner code exists – then forks a child for
every submission: its own process group, working folder and limits (address space, CPU time, file size,
processes), privileges dropped to an unprivileged uid when the server runs as root, the guard
(:mod:`~stn_course.grading.guard`) installed with the grader's channel and nonce. The server never runs learner
code, so the grader uses it to stop (``freeze``) and resume (``thaw``) a submission's other processes while a
caller is graded, and to kill what a submission leaves behind.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import resource
import shutil
import signal
import socket
import sys
import time
from typing import Any

__all__ = ["main", "preload"]


class _Prepared:
    """What preload makes before any learner code: the plans, the stand-ins, the trusted code, the markers."""

    def __init__(self) -> None:
        self.plans: dict = {}
        self.stand_ins: dict[str, Any] = {}
        self.stand_in_uses: dict[int, frozenset] = {}
        self.trusted: frozenset[int] = frozenset()
        self.roots: frozenset[int] = frozenset()
        self.protected: list[Any] = []


def _record_uses(function: Any, args: tuple, kwargs: dict) -> frozenset:
    """The fingerprints of every Python function that runs while ``function(*args, **kwargs)`` runs."""
    from .guard import fingerprint

    seen: set = set()
    codes: set = set()

    def profile(frame, event, arg):
        if event == "call" and id(frame.f_code) not in codes:
            codes.add(id(frame.f_code))
            seen.add(fingerprint(frame.f_code))

    sys.setprofile(profile)
    try:
        function(*args, **kwargs)
    except Exception:  # noqa: BLE001 – a reference that cannot run here simply records what it reached
        pass
    finally:
        sys.setprofile(None)
    return frozenset(seen)


def preload(extra_forbidden: dict[str, list[str]] | None = None) -> _Prepared:
    """Import (and warm up) what every lesson uses, once per server, so that forked children start at once; then
    prepare the guard's plans and stand-ins."""
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
    import threading  # noqa: F401  (before the guard replaces its thread start)
    import concurrent.futures.thread  # noqa: F401
    import multiprocessing.pool  # noqa: F401
    import IPython.display
    from IPython.core.inputtransformer2 import TransformerManager  # noqa: F401

    IPython.display.display = lambda *objects, **kwargs: None  # no front end: displaying is a no-op
    import stn_course
    for module in ("affine", "autograd", "deform", "deform_net", "grids", "impls", "sampling", "stn", "warps"):
        importlib.import_module(f"stn_course.{module}")  # the torch modules (stn_course imports them on first use)
    import stn_course.checks
    import stn_course.plotting  # noqa: F401
    import stn_course.widgets  # noqa: F401

    with contextlib.suppress(ImportError):  # lesson 7 (Linux): the interpreter's first kernel launch
        import triton  # noqa: F401
        import stn_course.gpu.affine  # noqa: F401
    from ..checks import registry
    from ..checks.registry import iter_cases
    from ..checks.shortcuts import resolve
    from . import guard
    from .namespace import Notebook, _harness_grad  # noqa: F401

    prepared = _Prepared()
    checks = registry.all_checks()
    forbidden = {c.id: list(c.forbidden) for c in checks}
    forbidden.update(extra_forbidden or {})
    for names in forbidden.values():  # import every module a ban names (so no later import defines one)
        for name in names:
            with contextlib.suppress(Exception):
                resolve(name)
    prepared.plans = {check_id: guard.plan_for(names) for check_id, names in forbidden.items()}
    targets = {b for c in checks for b in c.builds_on}
    for check in checks:
        if check.id not in targets:
            continue
        stand_in = guard.make_stand_in(check.reference, check.function_name)
        prepared.stand_ins[check.id] = stand_in
        case = next(iter(iter_cases(check, 0)), None)
        uses = _record_uses(check.reference, case.args, case.kwargs) if case is not None else frozenset()
        prepared.stand_in_uses[id(stand_in.__code__)] = uses
    # the dispatcher warns once per process when a kernel is replaced: do it here, where nobody listens
    with contextlib.suppress(Exception):
        library = torch._C._dispatch_library("IMPL", "aten", "", "stn-course preload", 0)
        library.impl("_test_warn_in_autograd", "CPU", lambda *a, **k: None, False)
        library.reset()
    # check() in a notebook being graded returns the learner's function as it is: the grader runs the checks
    stn_course.checks.check = lambda check_id, fn, *args, **kwargs: fn
    stn_course.checks.status = lambda check_id: None
    prepared.trusted = guard.trusted_code_ids()
    prepared.roots = frozenset({id(guard.harness_backward.__code__)})
    prepared.protected = [guard.arm, guard.start_new_thread, guard._bootstrap, *prepared.stand_ins.values()]
    return prepared


def _not_dumpable() -> None:
    """PR_SET_NO_NEW_PRIVS (a setuid program gains nothing) and PR_SET_DUMPABLE 0 (``/proc/<pid>/mem`` and ptrace
    closed to the same uid); set in the server, inherited by every child, before any learner code."""
    import ctypes

    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)
        libc.prctl(4, 0, 0, 0, 0)


def _share_with_children() -> None:
    """Keep the preloaded interpreter's pages shared with the forked children (memory, docs/grading.md section 9):
    collect once, then move every object to the collector's permanent generation, so that no child's collections
    write to (and so copy) the pages of the server's objects."""
    import gc

    gc.collect()
    gc.freeze()


def _enter_child(workdir: str, limits: dict, uid: int | None) -> None:
    """In the freshly forked child, before any learner code: limits, privileges, folder, file descriptors."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    from .memory import limit_address_space, prefer_as_victim

    limit_address_space(int(limits["memory_mb"]))  # what the server mapped after its imports + the budget
    prefer_as_victim()  # past the job's cgroup budget the kernel ends this process, not the server
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


class _Processes:
    """The processes of the submission being graded, as this server sees them."""

    def __init__(self, own_pid_namespace: bool, uid: int | None) -> None:
        self.own_pid_namespace, self.uid = own_pid_namespace, uid
        self.me = os.getpid()

    @staticmethod
    def _all() -> list[int]:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]

    @staticmethod
    def _parent(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            return int(fields[1])
        except (OSError, IndexError, ValueError):
            return None

    @staticmethod
    def _owner(pid: int) -> int | None:
        try:
            return os.stat(f"/proc/{pid}").st_uid
        except OSError:
            return None

    def of(self, root: int) -> list[int]:
        """Every process of the submission whose child is ``root``: in our own PID namespace everyone but us and
        the namespace's init; with a dedicated uid, everything of that uid (leased by this run alone, see
        :mod:`~stn_course.grading.uids`); else ``root``'s descendants (``root`` must not be reaped yet)."""
        pids = [p for p in self._all() if p not in (self.me, 1)]
        if self.own_pid_namespace:
            return pids
        if self.uid is not None:
            return [p for p in pids if self._owner(p) == self.uid]
        return sorted(self.descendants(root))

    def descendants(self, pid: int) -> set[int]:
        """``pid`` and every process below it (by parent pid)."""
        parents = {p: self._parent(p) for p in self._all() if p != self.me}
        tree, changed = {pid}, True
        while changed:
            changed = False
            for child, parent in parents.items():
                if parent in tree and child not in tree:
                    tree.add(child)
                    changed = True
        return tree

    def signal_all(self, root: int, signum: int, keep: set[int] = frozenset()) -> int:
        """Send ``signum`` to every process of ``root``'s submission but ``keep``; how many were signalled."""
        return self.signal(root, [p for p in self.of(root) if p not in keep], signum)

    def signal(self, root: int, pids: list[int], signum: int) -> int:
        """Send ``signum`` to each of ``pids`` that is provably a process of ``root``'s submission: each is first
        pinned with a pidfd (a pid that is reused meanwhile is then not signalled), then the submission's
        processes are listed again and only pinned processes in that list get the signal. Never ``kill(-1)``."""
        pinned: dict[int, int | None] = {}
        for pid in dict.fromkeys(pids):
            if pid in (self.me, 1, 0) or pid < 0:
                continue
            try:
                pinned[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            except (OSError, AttributeError):  # a kernel without pidfds (before 5.3): the re-check alone
                pinned[pid] = None
        count = 0
        try:
            members = set(self.of(root))
            for pid, fd in pinned.items():
                if pid not in members:
                    continue
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if fd is None:
                        os.kill(pid, signum)
                    else:
                        signal.pidfd_send_signal(fd, signum)
                    count += 1
        finally:
            for fd in pinned.values():
                if fd is not None:
                    os.close(fd)
        return count


def _exited(pid: int, wait_s: float) -> bool:
    """Wait up to ``wait_s`` for our child ``pid`` to end, without reaping it: while it is a zombie its pid (and
    its process group's id) cannot be reused, so signals aimed at them reach only this submission."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def _kill_everything(pid: int, processes: _Processes) -> int | None:
    """Kill the child's process group and every other process of its submission – the child ``pid`` not reaped
    yet, so neither id can belong to anyone else – then reap; the child's exit code."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for _ in range(3):
        processes.signal_all(pid, signal.SIGKILL)
        processes.signal_all(pid, signal.SIGCONT)
    code = _reap(pid, 2.0)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # reap whatever is left (grandchildren become ours in the namespace)
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if not done:
            time.sleep(0.005)
    return code


def serve(control: socket.socket, workroot: str, uid: int | None, own_pid_namespace: bool,
          extra_forbidden: dict[str, list[str]]) -> None:
    """The fork server's loop (requests on ``control``, a SOCK_SEQPACKET socket to the grader)."""
    prepared = preload(extra_forbidden)
    _share_with_children()
    _not_dumpable()
    control.send(json.dumps({"ready": True, "uid": os.getuid(), "pid": os.getpid()}).encode())
    processes = _Processes(own_pid_namespace, uid)
    counter = 0
    workdirs: dict[int, str] = {}
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 2)
        except OSError:
            break
        if not message:
            break
        request = json.loads(message)
        op = request.get("op")
        reply: dict[str, Any]
        if op == "fork" and len(fds) == 2:
            counter += 1
            workdir = os.path.join(workroot, f"submission-{counter}")
            os.makedirs(workdir, mode=0o700)
            pid = os.fork()
            if pid == 0:  # the child
                code = 0
                try:
                    control.close()
                    _enter_child(workdir, request["limits"], uid)
                    from . import guard
                    from .processes import serve_child

                    guard.install(fds[1], str(request["nonce"]), prepared.plans, prepared.trusted,
                                  prepared.stand_in_uses, prepared.roots, prepared.protected)
                    serve_child(socket.socket(fileno=fds[0]), prepared.stand_ins)
                except BaseException:  # noqa: BLE001
                    code = 70
                finally:
                    os._exit(code)
            for fd in fds:
                os.close(fd)
            workdirs[pid] = workdir
            reply = {"pid": pid}
        elif op in ("kill", "reap"):
            pid = int(request["pid"])
            if op == "reap":  # let it end by itself first (it stays a zombie until everything is killed)
                _exited(pid, 2.0)
            code = _kill_everything(pid, processes)
            shutil.rmtree(workdirs.pop(pid, ""), ignore_errors=True)
            reply = {"pid": pid, "exit_code": code}
        elif op == "freeze":  # stop every process of the submission but the armed caller
            root, keep = int(request["root"]), int(request["keep"])
            if keep not in processes.of(root):
                reply = {"frozen": False, "error": "the armed process is not part of this submission"}
            else:
                count = processes.signal_all(root, signal.SIGSTOP, keep={keep})
                reply = {"frozen": True, "stopped": count}
        elif op == "end-caller":  # kill the caller and what it started, then let the rest go on
            root, caller = int(request["root"]), int(request["caller"])
            processes.signal(root, sorted(processes.descendants(caller)), signal.SIGKILL)
            processes.signal_all(root, signal.SIGCONT)
            reply = {"ok": True}
        elif op == "alive":  # is the caller still running (not exited, not a zombie)?
            pid = int(request["pid"])
            try:
                with open(f"/proc/{pid}/stat", "rb") as handle:
                    state = handle.read().rsplit(b")", 1)[1].split()[0]
                reply = {"alive": state not in (b"Z", b"X")}
            except (OSError, IndexError):
                reply = {"alive": False}
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
    parser.add_argument("--forbidden", default="{}", help="JSON: bans of the instructor's checks, by check id")
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.fd)
    os.makedirs(args.workroot, exist_ok=True)
    serve(control, args.workroot, args.uid, args.own_pid_namespace, json.loads(args.forbidden))
    return 0


if __name__ == "__main__":
    sys.exit(main())
