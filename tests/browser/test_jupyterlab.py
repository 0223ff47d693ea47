"""Lesson 1's affine explorer in JupyterLab, in Chromium: run the solution notebook, move the angle slider with the
keyboard, and check that the picture is the package's own warp for the new angle and the caption its theta."""
from __future__ import annotations

import re
import shutil
import time

from stn_course import widgets

from .conftest import (ARTIFACTS, ROOT, free_port, group_alive, image_bytes, python, start, stop, token,
                       wait_for)

EXPLORER = ".stn-affine-explorer"
FIGURE = f"{EXPLORER} img.stn-affine-explorer-figure"  # an ipywidgets Image is the <img> itself
KERNEL_IDLE = """() => {
    const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = widget && widget.sessionContext && widget.sessionContext.session
                   && widget.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle';
}"""


def lab_command(folder, home, port: int, secret: str) -> list[str]:
    return [python(), "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}", "--port-retries=0",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={secret}", f"--ServerApp.root_dir={folder}",
            "--expose-app-in-browser", "--LabApp.extension_manager=readonly", "--LabApp.news_url=None",
            f"--LabApp.workspaces_dir={home / 'workspaces'}", f"--LabApp.user_settings_dir={home / 'settings'}"]


def wait_for_picture(page, expected: bytes, seconds: float = 30.0) -> bytes:
    """Poll the explorer's image until it shows ``expected`` (updates may still be on their way)."""
    deadline = time.monotonic() + seconds
    seen = b""
    while time.monotonic() < deadline:
        seen = image_bytes(page, FIGURE)
        if seen == expected:
            return seen
        time.sleep(0.2)
    return seen


def test_the_affine_explorer_follows_its_slider_in_jupyterlab(home, browser_page, tmp_path):
    folder = tmp_path / "course"
    folder.mkdir()
    shutil.copy(ROOT / "solutions" / "01_affine_transforms.ipynb", folder)
    port, secret = free_port(), token()
    server = start(lab_command(folder, home, port, secret), home, tmp_path / "jupyterlab.log")
    page = browser_page
    try:
        wait_for(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {secret}"}, process=server)
        page.goto(f"http://127.0.0.1:{port}/lab/tree/01_affine_transforms.ipynb?reset&token={secret}")
        page.wait_for_function(KERNEL_IDLE, timeout=120_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector(FIGURE, timeout=180_000)
        page.wait_for_function(KERNEL_IDLE, timeout=180_000)
        page.locator(EXPLORER).scroll_into_view_if_needed()

        # what the lesson's explorer starts with: the identity, Grace Hopper at the lesson's FAST size (64)
        reference = widgets.affine_explorer(size=64)
        assert wait_for_picture(page, reference.figure.value) == reference.figure.value
        readout = page.locator(f"{EXPLORER} .stn-control-rotation .widget-readout")
        assert float(readout.inner_text()) == 0.0

        handle = page.locator(f"{EXPLORER} .stn-control-rotation .noUi-handle")
        handle.focus()
        for _ in range(6):  # six steps of 5°
            page.keyboard.press("ArrowRight")
        page.wait_for_function("(selector) => document.querySelector(selector).innerText.trim() === '30.00'",
                               arg=f"{EXPLORER} .stn-control-rotation .widget-readout", timeout=10_000)
        reference.controls["rotation"].value = 30.0
        shown = wait_for_picture(page, reference.figure.value)
        time.sleep(0.3)
        page.locator(EXPLORER).screenshot(path=str(ARTIFACTS / "jupyterlab-affine-explorer.png"))
        assert shown == reference.figure.value, "the picture is not the package's warp for 30°"

        caption = page.locator(f"{EXPLORER} .stn-affine-explorer-matrices").inner_text()
        numbers = [float(n) for n in re.findall(r"[+-]\d+\.\d{3}", caption)]
        theta = reference.state["theta"]
        assert numbers[-6:] == [round(v, 3) for v in theta.reshape(-1).tolist()]
        assert not [m for m in page.console if m.startswith("[error]") and "widget" in m.lower()]
    finally:
        stop(server, f"http://127.0.0.1:{port}/api/shutdown", secret)
    assert not group_alive(server), "JupyterLab or one of its kernels is still running"
