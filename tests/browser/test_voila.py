"""`stn-course explore` in Chromium: the Voilà dashboards show the explorers and no code, and two of them (lessons 1
and 2) follow their sliders – the picture is the package's own for the new value."""
from __future__ import annotations

import re
import time

import pytest

from stn_course import explore, widgets

from .conftest import ARTIFACTS, free_port, group_alive, image_bytes, python, start, stop

BOARDS = explore.dashboards()  # every lesson's page, from the lessons' headers (stn_course.course)


def explorers_on(lesson: str) -> list[str]:
    """The explorers a lesson's dashboard builds (their names, as its code calls them)."""
    return re.findall(r"widgets\.(\w+_explorer)\(", BOARDS[lesson].code)


def css_class(explorer: str) -> str:
    return "stn-" + explorer.replace("_", "-")


SLIDERS = {  # explorer: (the reference explorer the dashboard builds, slider, steps of it)
    "affine_explorer": (lambda: widgets.affine_explorer(size=64), "rotation", 4),
    "sampling_explorer": (lambda: widgets.sampling_explorer(), "rotation", 3),
}
PAGES = {lesson: (css_class(name), *SLIDERS[name]) for lesson in BOARDS for name in explorers_on(lesson)
         if name in SLIDERS}


@pytest.fixture(scope="module")
def dashboards(home, tmp_path_factory):
    """``stn-course explore`` (every lesson), as a classroom would start it."""
    port = free_port()
    log = tmp_path_factory.mktemp("voila") / "explore.log"
    server = start([python(), "-m", "stn_course.cli", "explore", "--port", str(port)], home, log)
    try:
        from .conftest import wait_for

        wait_for(f"http://127.0.0.1:{port}/", process=server, seconds=120)
        yield port
    finally:
        stop(server)
        assert not group_alive(server), "Voilà or one of its kernels is still running"


def _picture(page, css: str) -> bytes:
    return image_bytes(page, f".{css} img.{css}-figure")


@pytest.mark.parametrize("lesson", sorted(PAGES))
def test_a_dashboard_shows_its_explorer_and_follows_its_slider(dashboards, browser_page, lesson):
    css, build, slider, steps = PAGES[lesson]
    page = browser_page
    page.goto(f"http://127.0.0.1:{dashboards}/voila/render/{lesson}_explore.ipynb")
    page.wait_for_selector(f".{css} img.{css}-figure", timeout=120_000)
    assert "widgets." not in page.inner_text("body"), "the dashboard shows code"
    reference = build()
    deadline = time.monotonic() + 30
    while _picture(page, css) != reference.figure.value and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _picture(page, css) == reference.figure.value

    page.locator(f".{css} .stn-control-{slider} .noUi-handle").focus()
    for _ in range(steps):
        page.keyboard.press("ArrowRight")
    step = reference.controls[slider].step
    reference.controls[slider].value = reference.controls[slider].value + steps * step
    deadline = time.monotonic() + 30
    while _picture(page, css) != reference.figure.value and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.3)
    page.locator(f".{css}").screenshot(path=str(ARTIFACTS / f"voila-{lesson}-{css}.png"))
    assert _picture(page, css) == reference.figure.value, f"lesson {lesson}: not the package's picture"
    readout = page.locator(f".{css} .stn-control-{slider} .widget-readout").inner_text()
    assert float(readout) == pytest.approx(reference.controls[slider].value)


def test_the_dashboards_page_lists_every_lesson(dashboards, browser_page):
    page = browser_page
    page.goto(f"http://127.0.0.1:{dashboards}/")
    page.wait_for_selector(f"text={max(BOARDS)}_explore.ipynb", timeout=60_000)
    listed = sorted(set(re.findall(r"\d\d_explore\.ipynb", page.inner_text("body"))))
    assert listed == [f"{number}_explore.ipynb" for number in sorted(BOARDS)]
    page.screenshot(path=str(ARTIFACTS / "voila-tree.png"))


@pytest.mark.parametrize("lesson", sorted(set(BOARDS) - set(PAGES)))
def test_every_other_dashboard_shows_its_explorers(dashboards, browser_page, lesson):
    """The other lessons' pages render every explorer their code builds (lesson 5's after its live training, lesson
    6's second one after a short training); a screenshot of each is kept for a look."""
    page = browser_page
    page.goto(f"http://127.0.0.1:{dashboards}/voila/render/{lesson}_explore.ipynb")
    assert explorers_on(lesson), f"lesson {lesson}'s dashboard builds no explorer"
    for css in map(css_class, explorers_on(lesson)):
        page.wait_for_selector(f".{css} img.{css}-figure", timeout=180_000)
        assert _picture(page, css)[:8] == b"\x89PNG\r\n\x1a\n"
        time.sleep(0.3)
        page.locator(f".{css}").screenshot(path=str(ARTIFACTS / f"voila-{lesson}-{css}.png"))
    assert "widgets." not in page.inner_text("body")
    if "on_progress" in BOARDS[lesson].code:  # a live explorer followed the training to its second epoch
        page.wait_for_selector(".stn-transformer-explorer-matrices >> text=training: epoch 2", timeout=120_000)
