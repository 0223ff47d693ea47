"""stn_course.explore and ``stn-course explore`` without a browser: the pages it writes (a live page waits for
its visitor), the Voilà command, the help, and – with a real server for one lesson – the page it serves (no CDN
link, only the widget managers' lab extensions) and Ctrl+C.

The Ctrl+C test starts the real server for one lesson (Voilà and one preheated kernel: about 10 s of wall time on the
project's 2 loaded cores, ~4 s of CPU); tests/browser/test_voila.py drives the pages in Chromium.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from stn_course import explore

from .browser.conftest import descendants, still_running

ROOT = Path(__file__).resolve().parents[1]
BOARDS = explore.dashboards()


def test_every_lesson_with_a_dashboard_gets_a_page_in_order(tmp_path):
    pages = explore.write_dashboards(tmp_path)
    assert [page.name for page in pages] == [f"{number}_explore.ipynb" for number in sorted(BOARDS)]
    assert len(pages) == 8  # every lesson of the course declares one (solutions/src/*.py)


@pytest.mark.parametrize("lesson", sorted(BOARDS))
def test_a_page_imports_first_and_a_live_page_waits_for_its_visitor_before_training(tmp_path, lesson):
    [path] = explore.write_dashboards(tmp_path, [lesson])
    title, setup, *code = nbformat.read(path, as_version=4).cells
    assert title.cell_type == "markdown" and title.source.startswith(f"# {BOARDS[lesson].title}")
    assert "from stn_course import widgets" in setup.source and "wait_for_visitor" not in setup.source
    wait = "from stn_course.explore import wait_for_visitor\nwait_for_visitor()\n"
    if explore.is_live(BOARDS[lesson]):
        before, after = (cell.source for cell in code)
        assert after.startswith(wait) and before + after[len(wait):] == BOARDS[lesson].code
        assert "start_training(" not in before and "display(live)" in before  # the explorer shows before training
    else:
        assert [cell.source for cell in code] == [BOARDS[lesson].code]


def test_the_live_pages_are_the_ones_that_train():
    assert sorted(number for number, board in BOARDS.items() if explore.is_live(board)) == ["05", "06"]
    board = explore.Dashboard(title="t", intro="i", code="if ready:\n    box.start_training(a, b)\nx = 1\n")
    assert not explore.is_live(board)  # an indented line cannot be split off: the page is not live
    live = explore.Dashboard(title="t", intro="i", code="box = w()\nbox.start_training(a,\n  b)\nNone\n")
    assert explore.code_cells(live)[1:] == ["box = w()\n", explore._WAIT + "box.start_training(a,\n  b)\nNone\n"]


def test_an_unknown_lesson_is_named_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"lesson '09': expected one of 01, 02, .*08"):
        explore.write_dashboards(tmp_path, ["09"])


def test_the_voila_command_preheats_and_loads_only_the_widget_managers():
    command = explore.voila_command(Path("pages"), 8866, token="t")
    assert command[:4] == [sys.executable, "-m", "voila", "pages"]
    assert {"--preheat_kernel=True", f"--template={explore.TEMPLATE}", "--strip_sources=True", "--port=8866",
            "--Voila.ip=127.0.0.1", "--token=t"} <= set(command)
    allowed = [flag.split("=", 1)[1] for flag in command
               if flag.startswith("--VoilaConfiguration.extension_allowlist=")]
    assert allowed == list(explore.LAB_EXTENSIONS) and "jupyterlab-jupytext" not in allowed


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stn_course.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_the_help_lists_the_lessons_from_their_headers():
    done = run_cli("explore", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert f"one of {', '.join(sorted(BOARDS))} (default: all {len(BOARDS)})" in text
    assert "six" not in text and "Ctrl+C stops the server and its kernels" in text


def test_an_unknown_lesson_is_an_error_naming_the_lessons():
    done = run_cli("explore", "09")
    assert done.returncode == 2 and f"lessons: {', '.join(sorted(BOARDS))}" in done.stderr


def test_the_page_is_local_and_ctrl_c_stops_voila_and_its_kernels_with_one_line_and_status_0(tmp_path):
    """The served page names no CDN and loads only the widget managers. Ctrl+C in a terminal sends SIGINT to the
    foreground process group: here, the CLI's group. The page fetched, Voilà starts a kernel to refill its pool, so
    the stop finds a kernel mid-cell (which printed a traceback of its closed sockets before). It exits 0 (a server
    stopped as its banner says is no failure), prints one line and no traceback, and leaves no Voilà or kernel
    process behind."""
    port = explore.free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    log = tmp_path / "log"
    with log.open("w") as out, (tmp_path / "err").open("w") as err:
        cli = subprocess.Popen([sys.executable, "-m", "stn_course.cli", "explore", "01", "--port", str(port)],
                               stdout=out, stderr=err, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Kernel pool of 01_explore.ipynb is filled" not in (tmp_path / "err").read_text():
            assert cli.poll() is None and time.monotonic() < deadline, (tmp_path / "err").read_text()[-2000:]
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as answer:
            page = answer.read().decode()
        below = descendants(cli.pid)
        assert len(below) >= 2, "expected Voilà and its preheated kernel"
        os.killpg(cli.pid, signal.SIGINT)
        status = cli.wait(timeout=30)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
    err = (tmp_path / "err").read_text()
    left = still_running(below)
    assert status == 0
    assert "Traceback" not in err and "Traceback" not in log.read_text() and "KeyboardInterrupt" not in err
    assert err.rstrip().splitlines()[-1] == "stn-course explore: stopped (Voilà and its kernels shut down)."
    assert not left, f"left running: {sorted(left)}"
    assert re.search(r"Serving the explorers at http://127\.0\.0\.1:\d+/ ", log.read_text())
    # the page itself: no CDN link (Voilà's lab template has two), and only the widget managers' lab extensions
    assert "cdn.jsdelivr.net" not in page and "stn-affine-explorer" not in page  # the explorer is a widget view
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page,
                                  re.S).group(1))
    loaded = {extension["name"] for extension in config["federated_extensions"]}
    assert loaded and loaded <= set(explore.LAB_EXTENSIONS), loaded
