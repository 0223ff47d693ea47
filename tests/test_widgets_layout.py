"""How the explorers look (issue #25): text drawn with a real font, pictures at their natural size, labels that fit,
sliders with room per step, and the numbers to watch beside the controls.

No browser: widths are estimated from the widgets' own layout and style with DejaVu Sans, the font the front end
uses on Debian's Chromium (`fc-match system-ui`), at its 13 px (``--jp-widgets-font-size``); tests/browser/ measures
the same things in Chromium. Each test costs well under a second, except the one building every explorer (~2 s).
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import ipywidgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from stn_course import widgets  # noqa: E402
from stn_course.widgets import raster  # noqa: E402

from .test_widgets import _explorers_as_built_by_the_lessons  # noqa: E402

DEJAVU = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")  # the TTF Matplotlib ships
FRONT_END_PX = 13  # --jp-widgets-font-size
LABEL_MARGIN = 8  # .widget-label's margin-right (2 × --jp-widgets-inline-margin)
READOUT = 72  # a slider readout's min-width (--jp-widgets-inline-width-tiny)
HANDLE = 16  # the slider track's margins: half a handle on each side
CHECKBOX = 30  # the box itself and its margin, before a checkbox's description
VOILA_WIDTH_AT_1280 = 1246  # the content width of a Voilà page in a 1280-px window (measured by the tester)


@pytest.fixture(scope="module")
def explorers() -> list:
    return list(_explorers_as_built_by_the_lessons()) + [widgets.sign_explorer()]


def picture(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def px(css: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)px", css)
    assert match, f"expected a width in px, got {css!r}"
    return float(match.group(1))


def text_width(text: str) -> float:
    return ImageFont.truetype(DEJAVU, FRONT_END_PX).getlength(text)


# -- text in the pictures ---------------------------------------------------------------------------------------------


def test_the_canvas_writes_its_titles_in_dejavu_sans_like_an_independent_rendering():
    """The title strip is pixel for pixel what Pillow draws with Matplotlib's DejaVu Sans TTF at the title size:
    anti-aliased (grey levels between ink and paper), not the bitmap font magnified by the browser."""
    face = raster.font(raster.TITLE_SIZE)
    assert isinstance(face, ImageFont.FreeTypeFont) and face.getname() == ("DejaVu Sans", "Book")
    assert face.size == raster.TITLE_SIZE >= 14  # read from the back of a lecture room at natural size
    canvas = raster.Canvas(min_side=200).add("θ output", np.full((10, 10, 3), 255, dtype=np.uint8))
    rendered = picture(canvas.png())
    _, top, width, _, _ = canvas.boxes["θ output"]
    reference = Image.new("RGB", (width, top), raster.BACKGROUND)
    ImageDraw.Draw(reference).text((0, 2), "θ output", fill=(0, 0, 0),
                                   font=ImageFont.truetype(DEJAVU, raster.TITLE_SIZE))
    assert (rendered[:top] == np.asarray(reference)).all()
    assert len(np.unique(rendered[:top])) > 10  # anti-aliased: many grey levels (a bitmap font has 2)
    ink_rows = np.nonzero((rendered[:top] < 128).any(axis=(1, 2)))[0]
    assert ink_rows.max() - ink_rows.min() >= raster.TITLE_SIZE * 0.6  # "θ" and "p" span most of the size


def test_a_title_wider_than_its_panel_wraps_and_stays_in_its_column():
    """The readers' case: lesson 2's output title ("bilinear, padding_mode='reflection'") is wider than its 240-px
    panel; it wraps onto a second line instead of running under the next panel."""
    long_title = "bilinear, padding_mode='reflection'"
    assert text_width(long_title) * raster.TITLE_SIZE / FRONT_END_PX > 240
    canvas = raster.Canvas().add(long_title, np.zeros((40, 40, 3), dtype=np.uint8)).add("next", np.zeros((40, 40, 3),
                                                                                                       dtype=np.uint8))
    rendered = picture(canvas.png())
    x0, top, w0, _, _ = canvas.boxes[long_title]
    x1 = canvas.boxes["next"][0]
    single = raster.Canvas().add("short", np.zeros((40, 40, 3), dtype=np.uint8))
    single.png()
    assert top > single.boxes["short"][1]  # two lines of title
    ink = np.nonzero((rendered[:top, :x1] < 128).any(axis=(0, 2)))[0]
    assert ink.max() < x0 + w0 and (rendered[:top, x0 + w0:x1] == 255).all()  # nothing in the gap


def test_the_error_chart_labels_are_dejavu_text_inside_the_panel():
    canvas = raster.Canvas(min_side=168).add_curves("error along training", {"train error %": [80.0, 40.0],
                                                                             "test error %": [75.0, 45.0]}, size=168)
    chart = picture(canvas.png())[canvas.boxes["error along training"][1]:]
    assert len(np.unique(chart)) > 20  # anti-aliased text and curves
    blue, red = np.array(raster.CURVE_COLOURS[0]), np.array(raster.CURVE_COLOURS[1])
    legend = chart[-2 * round(raster.LABEL_SIZE * raster.LINE_SPACING) - 6:]
    assert (np.abs(legend - blue).sum(-1) < 60).any() and (np.abs(legend - red).sum(-1) < 60).any()


# -- pictures at their natural size -----------------------------------------------------------------------------------


def test_every_explorer_shows_its_png_at_its_natural_width(explorers):
    for box in explorers:
        width, height = Image.open(io.BytesIO(box.figure.value)).size
        assert box.figure.layout.width == f"{width}px", box._dom_classes
        assert box.figure.layout.max_width == "100%" and box.figure.layout.height == "auto"
        assert widgets.png_size(box.figure.value) == (width, height)


def test_the_natural_width_follows_a_picture_that_grows():
    """Lesson 1's input panel grows a margin when the grid leaves the image: the Image widget follows."""
    box = widgets.affine_explorer(size=64)
    before = box.figure.layout.width
    box.controls["scale"].value = 2 ** -1.5
    assert box.state["margin"] > 0 and box.figure.layout.width != before
    assert box.figure.layout.width == f"{Image.open(io.BytesIO(box.figure.value)).size[0]}px"


def test_png_size_refuses_what_is_not_a_png():
    with pytest.raises(ValueError, match="PNG"):
        widgets.png_size(b"GIF89a" + bytes(20))


def test_matplotlib_pictures_are_rendered_at_a_readable_dpi():
    """Lesson 4's figure (5.2 in wide) at 100 dpi: ~500 px, its 10-point text 14 px high (it was 72 dpi: 10 px)."""
    box = widgets.descent_explorer(size=24)  # the default dpi
    assert widgets.common.FIGURE_DPI >= 96 and widgets.png_size(box.figure.value)[0] > 450


# -- labels, sliders and the layout -----------------------------------------------------------------------------------


def test_every_description_fits_its_label(explorers):
    """No ellipsis: each label's text (DejaVu 13 px) fits its description_width; a checkbox's description (drawn
    after the box) fits what the control's width leaves it."""
    for box in explorers:
        for name, control in box.controls.items():
            label = px(control.style.description_width)
            if isinstance(control, ipywidgets.Checkbox):
                assert text_width(control.description) <= px(control.layout.width) - label - CHECKBOX, name
            else:
                assert text_width(control.description) + 2 <= label, (box._dom_classes[-1], name)


def test_every_slider_has_room_for_its_steps(explorers):
    """A 72-step slider (rotation in 5° steps) had ~1.7 px per step in ipywidgets' 300-px default width; now every
    slider's track gives each step at least 2.5 px (estimated from the widths the front end's CSS gives)."""
    checked = 0
    for box in explorers:
        for name, control in box.controls.items():
            if not isinstance(control, (ipywidgets.FloatSlider, ipywidgets.IntSlider, ipywidgets.FloatLogSlider)):
                continue
            track = px(control.layout.width) - px(control.style.description_width) - LABEL_MARGIN - READOUT - HANDLE
            steps = round((control.max - control.min) / control.step)
            assert track / steps >= 2.5, (box._dom_classes[-1], name, track, steps)
            checked += 1
    assert checked >= 15


def test_the_numbers_to_watch_sit_beside_the_controls_and_the_picture_fits_beside_them(explorers):
    """The caption (θ, the counts) is in the controls' column, right under them; the picture beside that column in a
    row that wraps (a narrow screen stacks them); at 1280 px the lessons' pictures fit beside the controls."""
    for box in explorers:
        (row,) = [child for child in box.children if box.figure in getattr(child, "children", ())]
        panel, figure = row.children
        assert figure is box.figure and panel is box.panel and panel.children[-1] is box.caption
        assert row.layout.flex_flow == "row wrap"
        rows = [r for r in panel.children if isinstance(r, ipywidgets.HBox)]  # (a live explorer adds a status line)
        assert {c for r in rows for c in r.children} == set(box.controls.values())
        controls = max(sum(px(c.layout.width) for c in r.children) for r in rows)
        width = widgets.png_size(box.figure.value)[0]
        assert controls + 16 + width <= VOILA_WIDTH_AT_1280, (box._dom_classes[-1], controls, width)
