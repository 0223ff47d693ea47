"""Sandbox uids that belong to one grading run alone (classroom grading).

When the grader runs as root, each job slot's children run as an unprivileged uid, and the fork server limits,
stops and kills "everything of that uid". That is only safe if no other grading run – a second instructor, a
regrade beside a class run, CI beside a session – uses the same uid at the same time: ``RLIMIT_NPROC`` counts every
process of a uid, and a kill aimed at one run's uid would reach the other's children.

So each :class:`~stn_course.grading.sandbox.Worker` leases its uid from a :class:`UidPool`: the pool scans a range
(:data:`FIRST_UID`–:data:`LAST_UID`) and takes an exclusive, non-blocking ``flock`` on one lock file per uid in a
root-only folder (``/run/stn-course-uids``, or ``/tmp/stn-course-uids`` where ``/run`` cannot be written). The lock
lives as long as the lease's file descriptor: the kernel releases it when the run ends, crashed or not, so a run
leaks nothing. After locking, a uid that still has a process (a leftover of an earlier run) is skipped: processes
of a uid are only made by forking processes of that uid (only a root fork server holding the lock switches to it),
so once it is locked and empty, every process of it is provably this run's.
"""
from __future__ import annotations

import fcntl
import os
import signal
import stat
from pathlib import Path

__all__ = ["FIRST_UID", "LAST_UID", "UidLease", "UidPool", "NoFreeUid", "UnsafeLockFolder", "default_folder",
           "processes_of", "processes_of_pids"]

FIRST_UID = 64000  # the range the grader's children run in (as root); far from distributions' own users
LAST_UID = 64999
FOLDERS = ("/run/stn-course-uids", "/tmp/stn-course-uids")


class UnsafeLockFolder(RuntimeError):
    """The lock folder is not a directory of the grader's own user that only it can write."""


class NoFreeUid(RuntimeError):
    """Every uid of the range is leased by another run or still has processes."""


def processes_of(uid: int) -> list[int]:
    """The processes (visible in this PID namespace) whose real, effective, saved or file-system uid is ``uid``."""
    return processes_of_pids(uid, [int(entry) for entry in os.listdir("/proc") if entry.isdigit()])


def processes_of_pids(uid: int, pids: list[int]) -> list[int]:
    """Those of ``pids`` that are running processes with ``uid`` among their uids (see :func:`processes_of`)."""
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as handle:
                line = next(l for l in handle if l.startswith(b"Uid:"))
        except (OSError, StopIteration):
            continue  # gone meanwhile
        if uid in {int(field) for field in line.split()[1:]}:
            found.append(pid)
    return found


def default_folder() -> str:
    """``/run/stn-course-uids`` where ``/run`` is a folder this process can write (root), else under ``/tmp``."""
    return FOLDERS[0] if os.path.isdir("/run") and os.access("/run", os.W_OK) else FOLDERS[1]


def _open_folder(path: str) -> int:
    """Make (mode 0700) or open the lock folder and check it: a real directory, owned by this process's user,
    that nobody else can write. Returns its descriptor (locks are opened relative to it, never through a link)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UnsafeLockFolder(f"cannot make the uid lock folder {path}: {exc}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UnsafeLockFolder(f"the uid lock folder {path} must be a directory, not a link or a file ({exc})") \
            from None
    info = os.fstat(fd)
    problem = None
    if info.st_uid != os.geteuid():
        problem = f"it is owned by uid {info.st_uid}, expected {os.geteuid()} (the grader's user)"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"its mode is {stat.filemode(info.st_mode)}: others can write it (expected drwx------)"
    if problem is not None:
        os.close(fd)
        raise UnsafeLockFolder(f"refusing the uid lock folder {path}: {problem}; remove it or pass another folder")
    return fd


class UidLease:
    """One uid, this run's while the lease is held (its lock file's descriptor stays open). Release it with
    :meth:`release` (or ``with``); a run that dies releases it with its descriptors."""

    def __init__(self, uid: int, fd: int, path: str) -> None:
        self.uid, self._fd, self.path = uid, fd, path

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def kill_processes(self, rounds: int = 3) -> int:
        """SIGKILL every process of the uid – all of them this run's while the lease is held (a server killed
        without the sandbox's PID namespace leaves its children running); how many were signalled. Each is pinned
        by a pidfd and its uid read again before the signal, so a pid reused meanwhile is never hit."""
        if not self.held:
            raise RuntimeError(f"uid {self.uid} is no longer leased: its processes may be another run's")
        count = 0
        for _ in range(rounds):
            found = processes_of(self.uid)
            if not found:
                break
            for pid in found:
                try:
                    fd = os.pidfd_open(pid)
                except OSError:
                    continue  # gone (or no pidfds: then it is left to the next run's leftover check)
                try:
                    if pid in processes_of_pids(self.uid, [pid]):
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                        count += 1
                except ProcessLookupError:
                    pass
                finally:
                    os.close(fd)
        return count

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor of the open file releases the flock
            self._fd = -1

    def __enter__(self) -> "UidLease":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"UidLease(uid={self.uid}, held={self.held})"


class UidPool:
    """Leases uids ``first``–``last`` through lock files in ``folder`` (default: :func:`default_folder`)."""

    def __init__(self, folder: str | Path | None = None, first: int = FIRST_UID, last: int = LAST_UID) -> None:
        first, last = int(first), int(last)
        if not 0 < first <= last:
            raise ValueError(f"expected a uid range 0 < first <= last, got {first}–{last}")
        self.folder, self.first, self.last = str(folder or default_folder()), first, last

    def acquire(self) -> UidLease:
        """The first uid of the range that no other run holds and no process uses; :class:`NoFreeUid` if none."""
        folder = _open_folder(self.folder)
        held = leftover = 0
        try:
            for uid in range(self.first, self.last + 1):
                name = f"{uid}.lock"
                fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    held += 1
                    continue
                if processes_of(uid):  # checked under the lock: nobody can start a process of it now but us
                    os.close(fd)
                    leftover += 1
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for an instructor looking
                return UidLease(uid, fd, os.path.join(self.folder, name))
        finally:
            os.close(folder)
        raise NoFreeUid(f"no free sandbox uid in {self.first}–{self.last}: {held} held by other grading runs "
                        f"(lock files in {self.folder}), {leftover} still running processes of an earlier run")
