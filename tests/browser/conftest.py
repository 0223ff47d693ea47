"""Real-browser tests of the explorers: JupyterLab and Voilà servers on 127.0.0.1, driven by Playwright with
Debian's Chromium (``apt-get install chromium``; never ``playwright install``).

Every server is started in a new session with a temporary HOME and stopped – with its whole process group – when
its test ends. Screenshots go to ``test-artifacts/browser/`` (kept on failure, with the browser's console log
printed). The tests carry the ``browser`` marker.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    """A throwaway HOME for Chromium and Jupyter (they write settings and caches there)."""
    folder = tmp_path_factory.mktemp("browser-home")
    settings = folder / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    return folder


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}


def wait_for(url: str, seconds: float = 90.0, headers: dict | None = None, process=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited early ({process.returncode}): {read_log(process)}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds:g} s")


def read_log(process) -> str:
    log = getattr(process, "log_path", None)
    return Path(log).read_text()[-3000:] if log and Path(log).exists() else ""


def start(command: list[str], home: Path, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    process = subprocess.Popen(command, env=environment(home), stdout=handle, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True, cwd=home)
    process.log_path = log
    return process


def stop(process: subprocess.Popen, shutdown_url: str | None = None, token: str = "") -> None:
    """Stop a server and everything it started (its kernels): politely first, then its whole process group."""
    if shutdown_url and process.poll() is None:
        with contextlib.suppress(OSError):
            request = urllib.request.Request(shutdown_url, method="POST", data=b"",
                                             headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=5).close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def group_alive(process: subprocess.Popen, grace_s: float = 10.0) -> bool:
    """Whether anything of ``process``'s group is still there ``grace_s`` after it was stopped (processes killed
    with the group take a moment to exit and be reaped: a kernel orphaned by its server is reaped by init)."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, read from /proc (a kernel that Voilà starts in a session of its own is still
    its child, so a process-group check would miss it)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cpu_seconds(pids: set[int]) -> float:
    """The CPU time (user + system) the processes of ``pids`` have used so far, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def wait_until_quiet(pid: int, seconds: float = 240.0, share: float = 0.1) -> float:
    """Wait until ``pid`` and everything below it use less than ``share`` of a core over a second (a server whose
    preheated kernels have run their notebooks). ``-> the seconds waited``."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        before = cpu_seconds(descendants(pid) | {pid})
        time.sleep(1.0)
        if cpu_seconds(descendants(pid) | {pid}) - before < share:
            break
    return time.monotonic() - began


def still_running(pids: set[int], grace_s: float = 10.0) -> set[int]:
    """The processes of ``pids`` still running (zombies aside) ``grace_s`` seconds from now, or sooner if none is."""
    def running() -> set[int]:
        alive = set()
        for pid in pids:
            with contextlib.suppress(OSError, IndexError):
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(pid)
        return alive

    deadline = time.monotonic() + grace_s
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    return running()


@pytest.fixture
def browser_page(home, request):
    """A Chromium page (1280×1600) whose console messages are kept; prints them and keeps the screenshot if the
    test fails."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.on("console", lambda message: console.append(f"[{message.type}] {message.text}"))
            page.console = console
            yield page
            failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
            if failed:
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"), full_page=True)
                print(f"\nbrowser console of {request.node.name}:\n" + "\n".join(console[-200:]))
        finally:
            browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def image_bytes(page, selector: str) -> bytes:
    """The bytes behind an ``<img>`` (an ipywidgets Image shows a ``blob:`` URL)."""
    encoded = page.evaluate("""async (selector) => {
        const src = document.querySelector(selector).src;
        const buffer = await (await fetch(src)).arrayBuffer();
        let text = ''; const bytes = new Uint8Array(buffer);
        for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
        return btoa(text);
    }""", selector)
    return base64.b64decode(encoded)


def free_port() -> int:
    from stn_course.explore import free_port as free

    return free()


def python() -> str:
    return sys.executable


def token() -> str:
    return secrets.token_hex(16)
