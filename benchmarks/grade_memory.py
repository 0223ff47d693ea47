"""How much memory does a grading run take? Gradescope gives a submission 768 MB (its default) and stops a run that
goes past it with no feedback at all, so the grader's whole process tree must stay well under that.

Runs ``stn-course grade`` on the given notebooks (by default the solutions of lessons 03–07, as one student's
submission folder) with ``--no-sandbox --allow-unsandboxed`` – what Gradescope's containers get – and samples the
proportional set size (PSS: shared pages divided among the processes that share them, so the sum is what the tree
really holds) of the grader and every process below it (the worker's fork server, the notebook's children) from
``/proc/<pid>/smaps_rollup`` every 50 ms. Prints the peak of the sum and its split by role.

    python benchmarks/grade_memory.py [NOTEBOOK ...] [--interval 0.05] [--container-mb 768]
                                      [further stn-course grade flags, as --flag=value]

``--container-mb N`` runs the whole grading run inside a memory cgroup of N MB – what Docker, and so Gradescope,
enforces on the container (root; cgroup v2 or v1's memory hierarchy) – and reports the cgroup's own peak (its
accounting includes the page cache of the libraries it maps, which the kernel reclaims before it kills) and whether
the kernel had to kill anything: the run *fits* when nothing was killed and every exercise still passed.

Run it as the user that grades (as root the children run as an unprivileged uid, which must be able to read the
interpreter's folder).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LESSONS = ("03", "04", "05", "06", "07")


def _pss_kb(pid: int, field: str = "Pss") -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree(root: int) -> list[int]:
    """``root`` and every process below it (the grading server's own process-tree walk)."""
    from stn_course.grading.server import _Processes

    return sorted(_Processes(own_pid_namespace=False, uid=None).descendants(root))


def _role(pid: int, root: int) -> str:
    """``grader``, ``server`` (the worker's fork server, a child of the grader), ``notebook`` (a submission's
    processes: holder, runner, callers) or ``other``."""
    if pid == root:
        return "grader"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "other"
    if b"stn_course.grading.server" not in command:
        program = command.split(bytes(1))[0].decode(errors="replace")[-30:]
        return f"other ({program or 'exiting'})"
    from stn_course.grading.server import _Processes

    return "server" if _Processes._parent(pid) == root else "notebook"


def _cgroup_stats(group) -> dict:
    """The cgroup's peak charge (MB) and the number of processes its OOM killer killed (v2 or v1 files)."""
    path, stats = group.path, {}
    for name in ("memory.peak", "memory.max_usage_in_bytes"):
        if (path / name).exists():
            stats["peak_mb"] = int((path / name).read_text().split()[0]) / 2**20
    for name in ("memory.events", "memory.oom_control"):
        if (path / name).exists():
            for line in (path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    stats["oom_kills"] = int(value)
    return stats


def measure(command: list[str], interval: float = 0.05, container_mb: int | None = None) -> dict:
    """Run ``command``; the peak of its process tree's summed PSS (MB), the split at the peak, the seconds; with
    ``container_mb``, inside a memory cgroup of that size, whose own peak and OOM kills are added."""
    group = None
    if container_mb:
        from stn_course.grading.cgroups import memory_cgroup

        group = memory_cgroup(f"stn-grade-memory-{os.getpid()}", container_mb)
        if group is None:
            raise SystemExit("--container-mb needs root and a cgroup memory controller (v2 or v1)")
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=group.enter if group else None)
    peak, split, anon_peak = 0, {}, 0
    while process.poll() is None:
        pids = tree(process.pid)
        sizes = {pid: _pss_kb(pid) for pid in pids}
        total = sum(sizes.values())
        anon_peak = max(anon_peak, sum(_pss_kb(pid, "Pss_Anon") for pid in pids))
        if total > peak:
            peak, split = total, {}
            for pid, size in sizes.items():
                role = _role(pid, process.pid)
                split[role] = split.get(role, 0) + size
                if role == "notebook":
                    split["notebook processes"] = split.get("notebook processes", 0) + 1024  # a count, in MB units
        time.sleep(interval)
    output = process.stdout.read() if process.stdout else ""
    result = {"peak_mb": peak / 1024, "anon_peak_mb": anon_peak / 1024,
              "split_mb": {k: v / 1024 for k, v in split.items()},
              "seconds": time.perf_counter() - start, "returncode": process.returncode, "output": output}
    if group is not None:
        result["container"] = {"limit_mb": container_mb, **_cgroup_stats(group)}
        group.remove()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to grade (default: the solutions of lessons 03–07)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between samples")
    parser.add_argument("--container-mb", type=int, help="run inside a memory cgroup of this many MB (as Docker does)")
    args, extra = parser.parse_known_args(argv)  # the rest goes to stn-course grade
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(p) for p in args.notebooks]
        if not paths:  # one student's folder holding five lessons
            for lesson in DEFAULT_LESSONS:
                source = next((ROOT / "solutions").glob(f"{lesson}_*.ipynb"))
                target = Path(folder) / "student" / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read_bytes())
            paths = [Path(folder) / "student"]
        command = [sys.executable, "-m", "stn_course.cli", "grade", *map(str, paths), "--no-sandbox",
                   "--allow-unsandboxed", "--jobs", "1", *extra]
        result = measure(command, args.interval, args.container_mb)
    print(result["output"].rstrip())
    split = ", ".join(f"{role} {mb:.0f}" for role, mb in sorted(result["split_mb"].items()))
    print(f"peak memory (sum of PSS, sampled every {args.interval * 1000:.0f} ms): {result['peak_mb']:.0f} MB "
          f"({split}; anonymous memory alone {result['anon_peak_mb']:.0f} MB); {result['seconds']:.1f} s; "
          f"exit {result['returncode']}")
    container = result.get("container")
    if container:
        print(f"in a {container['limit_mb']} MB memory cgroup: its peak charge {container.get('peak_mb', 0):.0f} MB "
              f"(page cache included), processes killed by the OOM killer: {container.get('oom_kills', 'unknown')}")
        if container.get("oom_kills"):
            return 1
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
