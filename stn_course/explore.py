"""Code-free dashboards of the lessons' explorers, served with Voilà (every lesson): ``stn-course explore [LESSON]``.

For a classroom where learners should not see code: each lesson's explorer on a page of its own – a title, what
the picture shows, a few things to try – rendered by Voilà, which runs the notebook and shows only its outputs.
Lesson 5's page trains a small spatial transformer while its explorer watches. The pages are notebooks written
to a temporary folder (:func:`write_dashboards`); :func:`serve` starts Voilà on 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["DASHBOARDS", "write_dashboards", "voila_command", "serve", "free_port"]


@dataclass(frozen=True)
class Dashboard:
    title: str
    text: str
    code: str


_SETUP = "import matplotlib\nmatplotlib.use('Agg')\nfrom stn_course import widgets\n"

DASHBOARDS = {
    "01": Dashboard(
        "Lesson 1 – affine transforms",
        "Rotate, scale, shear and move the picture about its centre. The left panel shows where each output pixel "
        "reads in the input (the sampling grid; the square marks the first output pixel), the right one the result; "
        "below, the motion **M** in pixels and the **θ** a spatial transformer uses.\n\n"
        "Try this: rotate by 90° – on this non-square image θ is not a rotation matrix; scale by 2 – θ's scale is "
        "1/2; move right by 10 pixels – θ's shift is negative; toggle `align_corners` – θ changes, the picture does "
        "not.",
        _SETUP + "widgets.affine_explorer(size=64)"),
    "02": Dashboard(
        "Lesson 2 – sampling grids and bilinear interpolation",
        "Zoom and rotate a small photo and compare the samplers and the padding modes.\n\n"
        "Try this: zoom below 1 and switch `padding_mode` – the frame around the picture changes; zoom to 3 – "
        "`nearest` shows blocks, `bilinear` ramps.",
        _SETUP + "widgets.sampling_explorer()"),
    "03": Dashboard(
        "Lesson 3 – projective and thin-plate-spline warps",
        "Bend a photo with a homography (`projective`: the sliders set its perspective row) or a thin-plate spline "
        "(`tps`: how far the 16 control points move, and in which random directions).\n\n"
        "Try this: `tps` with the first slider at 0 gives the photo itself; `projective` at 0.5 shows perspective, "
        "and black where the grid leaves the photo.",
        _SETUP + "from stn_course.images import sample_image\n"
                 "widgets.warp_explorer(sample_image('grace_hopper', size=(64, 64)).float())"),
    "04": Dashboard(
        "Lesson 4 – gradient descent through the sampler",
        "Align a shifted or rotated copy of a photo by gradient descent on one parameter, with the hand-derived "
        "backward of lesson 4: the loss along the parameter and the steps descent takes.\n\n"
        "Try this: a step size of 3 overshoots; a rotation of 0.8 started at 0 stops in a local minimum.",
        _SETUP + "widgets.descent_explorer(size=40)"),
    "05": Dashboard(
        "Lesson 5 – a spatial transformer learning",
        "A small ST-CNN trains on rotated, scaled and moved digits for two epochs while the explorer watches: a test "
        "digit with the grid the transformer predicts, what the classifier sees, and the error curves. Move the "
        "slider while it trains, and after.\n\n"
        "Try this: at the start every digit gets the same grid; by the end the grid turns and moves with the digit.",
        _SETUP + "from IPython.display import display\nfrom stn_course import data, training\n"
                 "train, test = data.make_datasets('RTS', n_train=2000, n_test=200, seed=0, impl='aten')\n"
                 "model = training.st_cnn(42, seed=0)\n"
                 "live = widgets.transformer_explorer(model, test)\n"
                 "display(live)\n"
                 "training.fit(model, *data.make_loaders(train, test, batch_size=64), epochs=2, lr=3e-3,\n"
                 "             transformer_lr=7.5e-4, progress=False, callback=live.on_progress)\n"
                 "None"),
    "06": Dashboard(
        "Lesson 6 – deformable convolution: the offset layout",
        "A 3×3 deformable convolution whose offsets come from one rotation and scale about a location, packed in "
        "torchvision's layout or in one of two popular wrong ones.\n\n"
        "Try this: torchvision's layout reads where it means to (distance 0); the two bugs move the taps; with "
        "rotation 0 and scale 1 all three agree – the identity cannot catch a layout bug.\n\n"
        "Below it, a small network with two deformable layers, trained here for one epoch (the lesson trains "
        "longer): pick a test digit and an output location, and see the 81 pixels it reads, next to a plain "
        "convolution's.",
        _SETUP + "from IPython.display import display\nfrom stn_course import data, deform, training\n"
                 "display(widgets.offset_layout_explorer())\n"
                 "train, test = data.make_datasets('RTS', n_train=1000, n_test=100, seed=0, impl='aten')\n"
                 "net = deform.DeformableCNN(in_size=42)\n"
                 "training.fit(net, *data.make_loaders(train, test, batch_size=64), epochs=1, lr=3e-3, progress=False)\n"
                 "widgets.deformable_explorer(net, test)"),
    "07": Dashboard(
        "Lesson 7 – the GPU path: programs, reads and bytes",
        "The fused affine kernel cuts the output into programs of `BLOCK` pixels. Pick one: the left panel shows the "
        "output pixels it computes, the right one the input pixels it reads (darker red: more of its corner reads "
        "land there – in the backward, that many atomic additions to one address); below, the bytes one forward "
        "pass moves with and without the sampling grid.\n\n"
        "Try this: `BLOCK` 256 – three programs, the last one partly masked; zoom 4 – a program piles more than 20 "
        "additions onto one input pixel; channels 64 – fusing hardly saves anything, channels 1 – more than half.",
        _SETUP + "from stn_course.images import sample_image\n"
                 "widgets.kernel_explorer(sample_image('grace_hopper', size=32, gray=True))"),
}


def write_dashboards(folder: Path, lessons: list[str] | None = None) -> list[Path]:
    """Write the dashboards of ``lessons`` (default: all) as notebooks ``NN_explore.ipynb`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for lesson in lessons or sorted(DASHBOARDS):
        if lesson not in DASHBOARDS:
            raise ValueError(f"lesson {lesson!r}: expected one of {', '.join(sorted(DASHBOARDS))}")
        board = DASHBOARDS[lesson]
        nb = nbformat.v4.new_notebook()
        nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {board.title}\n\n{board.text}"),
                    nbformat.v4.new_code_cell(board.code)]
        path = folder / f"{lesson}_explore.ipynb"
        nbformat.write(nb, path)
        written.append(path)
    return written


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((ip, 0))
        return probe.getsockname()[1]


def voila_command(target: Path, port: int, ip: str = "127.0.0.1", token: str = "") -> list[str]:
    """The command that serves ``target`` (a dashboard notebook, or their folder) with Voilà, sources hidden."""
    return [sys.executable, "-m", "voila", str(target), "--no-browser", f"--port={port}", f"--Voila.ip={ip}",
            "--Voila.port_retries=0", "--strip_sources=True", "--show_tracebacks=False", f"--token={token}"]


def serve(lessons: list[str] | None = None, port: int | None = None, ip: str = "127.0.0.1",
          token: str = "") -> int:
    """Serve the dashboards until interrupted; prints the address to open. ``-> Voilà's exit status``."""
    if _missing("voila"):
        print("stn-course explore needs Voilà: pip install 'stn-course[explore]' (or pip install voila)",
              file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="stn-course-explore-"))
    try:
        pages = write_dashboards(folder, lessons)
        port = port or free_port(ip)
        target = pages[0] if len(pages) == 1 else folder
        query = f"?token={token}" if token else ""
        where = "" if len(pages) == 1 else " (a page per lesson)"
        print(f"Serving the explorers{where} at http://{ip}:{port}/{query} – open it in a browser; Ctrl+C stops.",
              flush=True)
        if ip not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: listening on {ip}: anyone who can reach this machine can open the dashboards", flush=True)
        process = subprocess.Popen(voila_command(target, port, ip, token))
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            try:
                return process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                return process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None
