"""Memory budgets of a submission's processes, and feedback that says a submission used too much (classroom
grading).

Two limits, whichever the machine allows:

- **per process** (everywhere): the address space (``RLIMIT_AS``) of each of a submission's processes is what the
  interpreter maps once the grader's server has imported torch and the course – the *baseline*, the same for every
  child since they are forked from it – plus ``Limits.memory_mb``. An absolute limit would have to guess the
  baseline (torch alone maps about 2 GB of address space, most of it never touched); a relative one lets a student
  allocate exactly the budget, whatever the interpreter's size on this machine. Going past it raises
  ``MemoryError`` (or torch's "can't allocate memory") in the student's code: an error of that cell or exercise.
- **per job slot** (as root, where a cgroup can be made: :mod:`.cgroups`): all of a slot's processes together,
  ``Limits.total_memory_mb``. The kernel's OOM killer then ends the process that went past it – the student's,
  never the server's (each child asks to be the first victim, :func:`prefer_as_victim`) – and the grader reads the
  cgroup's OOM-kill count to say why (:func:`oom_kills`).
"""
from __future__ import annotations

import contextlib
import resource
from pathlib import Path

__all__ = ["address_space", "limit_address_space", "prefer_as_victim", "oom_kills", "memory_feedback",
           "is_out_of_memory", "return_freed_memory", "fewer_arenas"]

_MARKERS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "std::bad_alloc",
            "not enough memory", "out of memory")


def address_space() -> int:
    """This process's address space in bytes (``VmSize``), 0 where ``/proc`` cannot tell."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def limit_address_space(budget_mb: int) -> int:
    """Limit this process (and what it forks) to its current address space plus ``budget_mb``; the limit set."""
    if int(budget_mb) <= 0:
        raise ValueError(f"the memory budget must be a positive number of MB, got {budget_mb!r}")
    limit = address_space() + int(budget_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


def prefer_as_victim() -> None:
    """Ask the kernel's OOM killer to end this process first (a learner's child, not the grader's server)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


def oom_kills(cgroup_path: Path | None) -> int:
    """How many processes the kernel's OOM killer has ended in a cgroup (v2 ``memory.events``, v1
    ``memory.oom_control``); 0 without a cgroup or where the kernel does not count."""
    if cgroup_path is None:
        return 0
    for name in ("memory.events", "memory.oom_control"):
        with contextlib.suppress(OSError, ValueError):
            for line in (Path(cgroup_path) / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    return 0


def is_out_of_memory(text: str) -> bool:
    """Does an error message say that an allocation failed?"""
    return any(marker in text for marker in _MARKERS)


def memory_feedback(text: str, budget_mb: int) -> str:
    """``text`` (an error from the learner's process), said plainly when it is an allocation that failed."""
    if is_out_of_memory(text):
        return (f"used more than {int(budget_mb)} MB of memory (each process may use that much beyond the "
                f"interpreter's own): {text}")
    return text


def return_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``): the grader frees its references and
    cases after each submission, and glibc would otherwise keep those pages. A no-op where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def fewer_arenas(arenas: int = 2) -> None:
    """At most ``arenas`` malloc arenas in this process (glibc's ``M_ARENA_MAX``, as ``MALLOC_ARENA_MAX`` would set
    before start): each thread otherwise gets its own, which keeps its freed memory. Call before threads start."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, int(arenas))  # M_ARENA_MAX
