"""The sandbox itself: what a submission's code can and cannot do, limits, kills, no process left behind, and the
fallback without bubblewrap (reported as such, or refused with --require-sandbox). Runs with Debian's bubblewrap,
which CI installs."""
from __future__ import annotations

import ast
import os
from pathlib import Path
import subprocess
import time

import pytest

from stn_course.grading import sandbox
from stn_course.grading.sandbox import Limits, SessionDied, Worker, bubblewrap, sandbox_status

from .helpers import SOLUTIONS, grade


def _probe(session, source: str, timeout: float = 20.0) -> dict:
    reply, _ = session.request({"op": "probe", "source": source, "timeout": timeout}, timeout=timeout + 10)
    assert reply["status"] == "ok", reply
    return ast.literal_eval(reply["value"])


PROBE = """
import os, socket
_probe = {"uid": os.getuid(), "cwd": os.getcwd(), "home": os.environ.get("HOME"),
          "secret": os.environ.get("STN_TEST_SECRET"), "shadow": os.path.exists("/etc/shadow"),
          "root_listing": sorted(os.listdir("/"))}
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    _probe["loopback"] = "open"
except OSError as exc:
    _probe["loopback"] = type(exc).__name__
try:
    open(os.path.join(%r, "written-by-a-submission"), "w")
    _probe["project"] = "written"
except OSError as exc:
    _probe["project"] = type(exc).__name__
open("mine.txt", "w").write("x")
_probe["own_folder"] = os.listdir(".")
"""


def test_bubblewrap_is_installed_here():
    """CI installs Debian's bubblewrap; without it the sandbox tests below would test the fallback."""
    path, why = bubblewrap()
    assert path is not None, why
    assert sandbox_status().startswith("sandboxed with bubblewrap")


@pytest.fixture(scope="module")
def worker():
    os.environ["STN_TEST_SECRET"] = "grader-token"  # the grader's environment must not reach the child
    with Worker(0, Limits(timeout_s=10, memory_mb=3000)) as w:
        yield w
    os.environ.pop("STN_TEST_SECRET")


def test_a_child_sees_no_network_no_secrets_and_only_its_own_folder(worker):
    session = worker.spawn()
    try:
        seen = _probe(session, PROBE % str(SOLUTIONS))
    finally:
        session.close()
    assert seen["loopback"] in ("ConnectionRefusedError", "OSError")
    assert seen["project"] in ("OSError", "PermissionError", "FileNotFoundError")  # not even visible
    assert seen["secret"] is None and seen["shadow"] is False
    assert seen["home"] == seen["cwd"] and "mine.txt" in seen["own_folder"]
    bound = {Path(root).parts[1] for root in sandbox._bind_roots()}
    assert set(seen["root_listing"]) <= {"usr", "lib", "lib64", "bin", "sbin", "etc", "proc", "dev", "tmp"} | bound
    if os.geteuid() == 0:
        assert seen["uid"] == worker.uid and seen["uid"] >= 64000  # an unprivileged uid leased by this worker
    assert not (SOLUTIONS / "written-by-a-submission").exists()


def test_private_tmp_between_submissions(worker):
    first = worker.spawn()
    seen = _probe(first, "import os\nopen('left-behind.txt', 'w').write('secret')\n_probe = os.getcwd()")
    first.close()
    second = worker.spawn()
    try:
        found = _probe(second, "import os, glob\n_probe = glob.glob('/tmp/**/left-behind.txt', recursive=True)"
                               " + [os.path.exists(%r)]" % os.path.join(seen, "left-behind.txt"))
    finally:
        second.close()
    assert found == [False]


def test_memory_and_file_limits(worker):
    session = worker.spawn()
    try:
        memory = _probe(session, "try:\n    x = bytearray(4 * 2**30)\n    _probe = 'allocated'\n"
                                 "except MemoryError:\n    _probe = 'MemoryError'")
        size = _probe(session, "try:\n    open('big', 'wb').write(bytes(100 * 2**20))\n    _probe = 'written'\n"
                               "except OSError as exc:\n    _probe = type(exc).__name__")
    finally:
        session.close()
    assert memory == "MemoryError"
    assert size == "OSError"  # RLIMIT_FSIZE (64 MB)


def _processes_of(uid: int, settle_s: float = 5.0) -> list[str]:
    """The processes of ``uid``, after giving killed ones up to ``settle_s`` to be reaped."""
    deadline = time.monotonic() + settle_s
    while True:
        out = subprocess.run(["ps", "-o", "pid=,args=", "-u", str(uid)], capture_output=True, text=True).stdout
        alive = [line for line in out.splitlines() if line.strip()]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.mark.skipif(os.geteuid() != 0, reason="children run under a dedicated uid only when the grader is root")
def test_a_killed_child_leaves_no_process_behind(worker):
    session = worker.spawn()
    session.request({"op": "cell", "index": 0, "timeout": 10, "source": (
        "import os, time\n"
        "if os.fork() == 0:\n    time.sleep(600)\n"
        "if os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n")}, timeout=20)
    assert _processes_of(worker.uid, settle_s=0), "the submission's processes should be running now"
    with pytest.raises(Exception):
        session.request({"op": "cell", "index": 1, "source": "import signal\n"
                         "signal.signal(signal.SIGPROF, signal.SIG_IGN)\nwhile True:\n    pass",
                         "timeout": 1}, timeout=1.5)  # the grader's own deadline passes first: it kills
    assert not session.alive
    assert _processes_of(worker.uid) == []


def test_a_dead_server_is_restarted(worker):
    os.killpg(worker.process.pid, 9)
    worker.process.wait()
    session = worker.spawn()  # the next spawn starts a new server
    try:
        assert _probe(session, "_probe = 1 + 1") == 2
    finally:
        session.close()


def test_a_child_that_stops_answering_is_reported_dead(worker):
    session = worker.spawn()
    with pytest.raises(SessionDied):
        session.request({"op": "cell", "index": 0, "timeout": 5,
                         "source": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos._exit(0)"}, timeout=10)


def test_without_bubblewrap_it_runs_plain_processes_and_says_so(tmp_path):
    results = grade([SOLUTIONS / "01_affine_transforms.ipynb"], jobs=1, sandbox=False)
    (result,) = results.values()
    assert result.score == result.max_score > 0
    assert result.sandbox.startswith("not sandboxed")


def test_grading_without_bubblewrap_is_refused_by_default(monkeypatch, tmp_path, capsys):
    from stn_course import cli

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.bubblewrap.cache_clear()
    try:
        code = cli.main(["grade", str(SOLUTIONS / "01_affine_transforms.ipynb")])
        err = capsys.readouterr().err
        assert code == 2 and "bubblewrap (bwrap) is not installed" in err and "--allow-unsandboxed" in err
        assert sandbox_status().startswith("not sandboxed: separate processes with rlimits")
    finally:
        sandbox.bubblewrap.cache_clear()


def test_closing_a_worker_leaves_no_process_behind():
    with Worker(1, Limits(timeout_s=10)) as worker:
        session = worker.spawn()
        session.request({"op": "cell", "index": 0, "timeout": 10, "source": (
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n")}, timeout=20)
        server, uid = worker.process.pid, worker.uid
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    assert not [line for line in out.splitlines() if line.split()[0] == str(server)]
    if os.geteuid() == 0:
        assert _processes_of(uid) == []
