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
from pathlib import Path

import nbformat

from . import course
from .course import Dashboard

__all__ = ["Dashboard", "dashboards", "write_dashboards", "voila_command", "serve", "free_port"]


_SETUP = "import matplotlib\nmatplotlib.use('Agg')\nfrom stn_course import widgets\n"


def dashboards() -> dict[str, Dashboard]:
    """Every lesson's dashboard, by lesson number: declared in the lesson's header, its "Try this" list read from
    the lesson's Explore section (:mod:`stn_course.course`)."""
    return {lesson.number: lesson.dashboard for lesson in course.lessons() if lesson.dashboard is not None}


def write_dashboards(folder: Path, lessons: list[str] | None = None) -> list[Path]:
    """Write the dashboards of ``lessons`` (default: all) as notebooks ``NN_explore.ipynb`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    boards = dashboards()
    for lesson in lessons or sorted(boards):
        if lesson not in boards:
            raise ValueError(f"lesson {lesson!r}: expected one of {', '.join(sorted(boards))}")
        board = boards[lesson]
        nb = nbformat.v4.new_notebook()
        nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {board.title}\n\n{board.text}"),
                    nbformat.v4.new_code_cell(_SETUP + board.code)]
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
