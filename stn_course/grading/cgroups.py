"""One memory budget for all the processes of a job slot, where the machine lets the grader make a cgroup
(classroom grading).

rlimits bound each process: 64 processes of 6 GB each, or a RAM-backed ``/tmp``, could still take a machine down.
A control group bounds them together – every process the slot's server forks, and the pages they put in tmpfs. The
grader makes one per job slot under its own cgroup (cgroup v2 where the memory controller is enabled there, else
cgroup v1's memory hierarchy), moves the server into it before it starts, and removes it when the slot closes.
Where neither can be made (no root, no cgroup file system), :func:`memory_cgroup` returns None and the reports say
that memory is limited per process only.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["MemoryCgroup", "memory_cgroup"]

_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
_V1 = Path("/sys/fs/cgroup/memory")


class MemoryCgroup:
    """A cgroup with a memory limit; :meth:`enter` moves the calling process into it (use as ``preexec_fn``)."""

    def __init__(self, path: Path, procs: Path, limit_bytes: int) -> None:
        self.path, self.procs, self.limit_bytes = path, procs, limit_bytes

    def enter(self) -> None:
        with open(self.procs, "w") as handle:
            handle.write("0")

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            for _ in range(50):
                try:
                    self.path.rmdir()
                    return
                except OSError:  # still has processes being reaped
                    import time

                    time.sleep(0.02)

    def __repr__(self) -> str:
        return f"<MemoryCgroup {self.path} {self.limit_bytes // 2**20} MB>"


def _own(line_prefix: str) -> str | None:
    """This process's cgroup path for a hierarchy (``"0::"`` for v2, ``"memory"`` for v1)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if (line_prefix == "v2" and parts[0] == "0" and parts[1] == "") or \
                (line_prefix == "memory" and "memory" in parts[1].split(",")):
            return parts[2]
    return None


def memory_cgroup(name: str, limit_mb: int) -> MemoryCgroup | None:
    """A fresh cgroup ``name`` limited to ``limit_mb`` (memory and swap where the kernel counts it), or None."""
    limit = int(limit_mb) * 2**20
    own = _own("v2")
    for root in _ROOTS:  # cgroup v2: memory.max in a child of our own cgroup
        if own is None or not (root / "cgroup.controllers").exists():
            continue
        parent = root / own.lstrip("/")
        try:
            if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                continue
            path = parent / name
            path.mkdir()
            (path / "memory.max").write_text(str(limit))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
            return MemoryCgroup(path, path / "cgroup.procs", limit)
        except OSError:
            continue
    own = _own("memory")
    if own is not None and (_V1 / "memory.limit_in_bytes").exists():  # cgroup v1's memory hierarchy
        for parent in (_V1 / own.lstrip("/"), _V1):
            if not parent.is_dir():
                continue
            path = parent / name
            try:
                path.mkdir()
                (path / "memory.limit_in_bytes").write_text(str(limit))
                with contextlib.suppress(OSError):
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
                return MemoryCgroup(path, path / "cgroup.procs", limit)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
    return None


def _self_test() -> None:  # pragma: no cover - a manual check: python -m stn_course.grading.cgroups
    group = memory_cgroup(f"stn-grade-selftest-{os.getpid()}", 256)
    print(group)
    if group is not None:
        group.remove()


if __name__ == "__main__":  # pragma: no cover
    _self_test()
