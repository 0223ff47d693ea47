"""Grading runs that never touch each other: each run leases its own sandbox uids (stn_course/grading/uids.py), so
two ``stn-course grade`` at once – two instructors, a regrade beside a class run, CI beside a session – share no
process limit and never signal each other's processes.

Cost: the allocator's tests take under a second; each mode (sandboxed, unsandboxed) grades lesson 01 three times
(``--jobs 1``): both submissions alone, then one each at once – 53–75 s a mode, measured on 2 cores at load
average 6.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stn_course.grading import uids
from stn_course.grading.uids import FIRST_UID, LAST_UID, NoFreeUid, UidPool, UnsafeLockFolder, processes_of

from .helpers import ROOT, TEST_SEED, solution, with_cell, write_submission

NAME1, LESSON1 = solution("01")
SPARE = 65300  # a range of uids no test machine uses for anything else: the allocator's tests lease from it

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching a process to another uid needs root "
                                                          "(CI runs as root)")


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "locks"
    folder.mkdir(mode=0o700)
    return folder


HOLDER = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("uids", sys.argv[4])  # alone: importing the package means torch
    uids = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(uids)
    lease = uids.UidPool(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])).acquire()
    print(lease.uid, flush=True)
    sys.stdin.readline()  # hold the lease until told (or killed)
""")


def _holder(folder: Path, first: int, last: int) -> tuple[subprocess.Popen, int]:
    """A separate process that leases a uid from the pool and holds it; the process and its uid."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(first), str(last), uids.__file__],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.strip().isdigit(), f"the holder did not lease a uid: {line!r}"
    return process, int(line)


# -- the allocator ---------------------------------------------------------------------------------------------------

def test_two_processes_lease_disjoint_uids_and_the_range_runs_out(tmp_path):
    folder = _folder(tmp_path)
    first, uid_a = _holder(folder, SPARE, SPARE + 2)
    second, uid_b = _holder(folder, SPARE, SPARE + 2)
    try:
        assert (uid_a, uid_b) == (SPARE, SPARE + 1)
        with UidPool(folder, SPARE, SPARE + 2).acquire() as third:  # this process: a third uid
            assert third.uid == SPARE + 2
            assert (folder / f"{SPARE + 2}.lock").read_text() == f"{os.getpid()}\n"  # who holds it
            with pytest.raises(NoFreeUid, match=rf"no free sandbox uid in {SPARE}–{SPARE + 2}: 3 held"):
                UidPool(folder, SPARE, SPARE + 2).acquire()  # even a second pool of the same process is refused
        first.communicate("\n", timeout=10)  # a lease given up ends with its process
        assert UidPool(folder, SPARE, SPARE + 2).acquire().uid == SPARE
    finally:
        for process in (first, second):
            process.kill()
            process.wait()


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    folder = _folder(tmp_path)
    process, uid = _holder(folder, SPARE, SPARE + 1)
    with UidPool(folder, SPARE, SPARE + 1).acquire() as lease:
        assert uid == SPARE and lease.uid == SPARE + 1
    os.kill(process.pid, signal.SIGKILL)  # a crashed run: nothing released it but the kernel
    process.wait()
    with UidPool(folder, SPARE, SPARE + 1).acquire() as lease:
        assert lease.uid == SPARE


def _sleeper_of(uid: int) -> int:
    """Fork a process that sleeps as ``uid``; return its pid once /proc shows it under that uid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            time.sleep(60)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 10
    while not processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


@needs_root
def test_a_uid_with_a_live_process_is_skipped(tmp_path):
    folder = _folder(tmp_path)
    pid = _sleeper_of(SPARE)  # a leftover of an earlier run: a process of uid SPARE that no lock protects
    try:
        assert processes_of(SPARE) == [pid]
        with UidPool(folder, SPARE, SPARE + 1).acquire() as lease:
            assert lease.uid == SPARE + 1
        with pytest.raises(NoFreeUid, match="1 still running processes of an earlier run"):
            UidPool(folder, SPARE, SPARE).acquire()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with UidPool(folder, SPARE, SPARE).acquire() as lease:  # gone: free again
        assert lease.uid == SPARE


@needs_root
def test_a_lease_kills_what_its_uid_left_running_and_only_while_held(tmp_path):
    lease = UidPool(_folder(tmp_path), SPARE, SPARE).acquire()
    pid = _sleeper_of(SPARE)  # a submission's process that outlived an unsandboxed server
    try:
        assert lease.kill_processes() >= 1
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
        assert processes_of(SPARE) == []
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    lease.release()
    with pytest.raises(RuntimeError, match=f"uid {SPARE} is no longer leased"):
        lease.kill_processes()


def test_an_unsafe_lock_folder_is_refused(tmp_path):
    open_to_all = tmp_path / "open"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    with pytest.raises(UnsafeLockFolder, match=r"others can write it \(expected drwx------\)"):
        UidPool(open_to_all, SPARE, SPARE).acquire()
    link = tmp_path / "link"
    link.symlink_to(_folder(tmp_path))
    with pytest.raises(UnsafeLockFolder, match="must be a directory, not a link"):
        UidPool(link, SPARE, SPARE).acquire()
    if os.geteuid() == 0:  # a folder someone else made first (under /tmp, anyone can)
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
        with pytest.raises(UnsafeLockFolder, match="owned by uid 65534, expected 0"):
            UidPool(theirs, SPARE, SPARE).acquire()
    with pytest.raises(ValueError, match="expected a uid range 0 < first <= last, got 5–4"):
        UidPool(tmp_path, 5, 4)
    made = tmp_path / "new"
    with UidPool(made, SPARE, SPARE).acquire():
        assert oct(made.stat().st_mode & 0o777) == "0o700"  # a folder it makes is the grader's alone
    assert (FIRST_UID, LAST_UID) == (64000, 64999)


# -- two real runs at once ---------------------------------------------------------------------------------------------

UID_PROBE = "import os\nraise RuntimeError(f'UID {os.getuid()}')"  # a failing cell costs nothing; it shows the uid
FORK_BOMB = (  # fills its uid's RLIMIT_NPROC for 5 s (a plain `while True: os.fork()` goes on for minutes)
    "import os, time\nkids = []\nwhile True:\n    try:\n        pid = os.fork()\n    except BlockingIOError:\n"
    "        break\n    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n    kids.append(pid)\n"
    "for pid in kids:\n    os.waitpid(pid, 0)\nraise RuntimeError(f'FORKED {len(kids)}')")
FORKS = ("import os, time\nfor _ in range(5):\n    if os.fork() == 0:\n        os.setsid()\n"
         "        time.sleep(600)")  # detached processes the run's kill must find (everything of its uid)


def _grade(folder: Path, out: Path, *flags: str) -> subprocess.Popen:
    seed = out.parent / "seed.txt"
    seed.write_text(TEST_SEED)
    return subprocess.Popen([sys.executable, "-m", "stn_course.cli", "grade", str(folder), "--jobs", "1",
                             "--timeout", "20", "--seed-file", str(seed), "--json", str(out), "--quiet", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _finish(process: subprocess.Popen, out: Path) -> dict[str, dict]:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return {s["student"]: s for s in json.loads(out.read_text())["submissions"]}


def _outcome(result: dict) -> tuple:
    """What must not depend on another run: the scores, each exercise's, and which cells failed and how."""
    return (result["score"], result["max_score"], [(e["id"], e["score"], e["status"]) for e in result["exercises"]],
            [(c["index"], c["status"], c["error"].split(":")[0]) for c in result["cells"]],
            result["timing"]["restarts"])


def _uid(result: dict) -> int:
    (probe,) = [c["error"] for c in result["cells"] if "UID " in c["error"]]
    return int(probe.split("UID ", 1)[1].split()[0].strip("'\""))


SUBMISSIONS = {"bomber": with_cell(with_cell(LESSON1, FORK_BOMB), UID_PROBE),
               "forker": with_cell(with_cell(LESSON1, FORKS), UID_PROBE)}


# Unsandboxed only: there "everything of that uid" is what the grader kills and counts, so a shared uid shows at
# once (a killed cell, an extra restart); the sandboxed path leases its uid from the same pool (CI time: 30 s).
@pytest.mark.parametrize("mode", ["unsandboxed"])
def test_two_runs_at_once_score_as_each_alone(tmp_path, mode):
    flags = () if mode == "sandboxed" else ("--allow-unsandboxed", "--no-sandbox")
    submissions = SUBMISSIONS
    for student, nb in submissions.items():
        write_submission(tmp_path / "both", student, NAME1, nb)
        write_submission(tmp_path / student, student, NAME1, nb)
    # alone: one run grades both, one after the other (unsandboxed children see less of the machine, so each mode
    # is compared with itself); then two runs, one submission each, at once
    alone = _finish(_grade(tmp_path / "both", tmp_path / "alone.json", *flags), tmp_path / "alone.json")
    runs = {student: _grade(tmp_path / student, tmp_path / f"{student}.json", *flags) for student in submissions}
    try:
        together = {student: _finish(run, tmp_path / f"{student}.json")[student] for student, run in runs.items()}
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.communicate()
    for student in submissions:
        assert _outcome(together[student]) == _outcome(alone[student]), (student, together[student]["cells"])
        assert together[student]["score"] == together[student]["max_score"] > 0
    forked = [c["error"] for c in together["bomber"]["cells"] if "FORKED" in c["error"]]
    assert len(forked) == 1 and int(forked[0].split("FORKED ")[1].split()[0]) > 30  # it did fill RLIMIT_NPROC
    if os.geteuid() == 0:  # each run had a uid of its own, and left no process of it behind
        uids = {student: _uid(result) for student, result in together.items()}
        assert len(set(uids.values())) == 2 and all(FIRST_UID <= u <= LAST_UID for u in uids.values()), uids
        for uid in uids.values():
            deadline = time.monotonic() + 5
            while processes_of(uid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert processes_of(uid) == [], uid
