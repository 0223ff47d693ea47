"""Code-free dashboards of the lessons' explorers, served with Voilà (every lesson): ``stn-course explore [LESSON]``.

For a classroom where learners should not see code: each lesson's explorer on a page of its own – a title, what
the picture shows, a few things to try – rendered by Voilà, which runs the notebook and shows only its outputs.
Lesson 5's page trains a small spatial transformer while its explorer watches. The pages are notebooks written
to a temporary folder (:func:`write_dashboards`); :func:`serve` starts Voilà on 127.0.0.1 unless told otherwise.

What a page costs its visitor, and what it asks of the network:

* **Preheated kernels.** Starting a kernel and importing torch, Matplotlib and ipywidgets takes seconds of CPU, so
  Voilà keeps one kernel per page started and its notebook run (``--preheat_kernel``): a page opens with its
  explorer already built. A page that trains (:func:`is_live`) must not train before anyone watches: its kernel
  builds the explorer and stops where training starts (:func:`wait_for_visitor`, :func:`code_cells`) until the
  page is opened.
* **Nothing leaves 127.0.0.1.** Only the widget managers' lab extensions are loaded (:data:`LAB_EXTENSIONS`; the
  others installed with JupyterLab – jupytext's, nbgrader's – fail to load in Voilà and log errors), and the page
  template (:data:`TEMPLATE`, written next to the pages) drops the Font Awesome links to a CDN that Voilà's
  templates add (Voilà's own bundle already carries Font Awesome); the list of pages is Voilà's plain one.
* **Ctrl+C** (or SIGTERM) stops Voilà and its kernels and exits 0 with one line (:func:`serve`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from . import course
from .course import Dashboard

__all__ = ["Dashboard", "dashboards", "is_live", "code_cells", "wait_for_visitor", "write_dashboards",
           "write_template", "voila_command", "serve", "free_port", "TEMPLATE", "LAB_EXTENSIONS"]


_SETUP = "import matplotlib\nmatplotlib.use('Agg')\nfrom stn_course import widgets\n"
#: the first lines of a live page's last cell: a preheated kernel waits here until someone opens the page
_WAIT = "from stn_course.explore import wait_for_visitor\nwait_for_visitor()\n"
#: the page template's name (Voilà's ``--template``); written by :func:`write_template`
TEMPLATE = "stn-course"
#: the only lab extensions a page loads (``VoilaConfiguration.extension_allowlist``): ipywidgets' and Voilà's
#: widget managers (Voilà keeps the one that matches the installed ipywidgets)
LAB_EXTENSIONS = ("@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8",
                  "@voila-dashboards/widgets-manager7")
_TEMPLATE_FILES = {
    "conf.json": json.dumps({"base_template": "lab"}),
    # a notebook page: Voilà's lab template with every line that names a CDN dropped from its CSS block (the two
    # Font Awesome links; Voilà's bundle carries Font Awesome)
    "index.html.j2": "{%- extends 'voila/templates/lab/index.html.j2' -%}\n"
                     "{%- block notebook_css -%}\n"
                     "{%- for line in super().splitlines() if '://cdn.' not in line %}\n{{ line }}{% endfor %}\n"
                     "{%- endblock notebook_css -%}\n",
    # the other pages (the list of dashboards, errors): Voilà's base/page.html and lab/page.html in one, less the
    # Font Awesome 4 link to a CDN that base/page.html has outside any block, with the notebook pages' empty icon
    # (no /favicon.ico request answered 404)
    "page.html": """<!DOCTYPE HTML>
<html>
  <head>
    <meta charset="utf-8">
    <title>{% block title %} Voilà {% endblock %}</title>
    <meta http-equiv="X-UA-Compatible" content="IE=edge" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    <link rel="icon" href="data:;base64,=">
    {% block stylesheets %}
    {% if include_css %}
      {{ include_css("static/index.css") }}
      {% if theme == 'dark' %}{{ include_css("static/theme-dark.css") }}
      {% elif theme == 'light' %}{{ include_css("static/theme-light.css") }}
      {% else %}{{ include_lab_theme(theme) }}{% endif %}
    {% endif %}
    {% endblock %}
    {% block meta %}{% endblock %}
  </head>
  <body data-base-url="{{ base_url }}voila/" data-voila="voila">
    <noscript><div id='noscript'>Voilà requires JavaScript. Please enable it to proceed.</div></noscript>
    <div>{% block body %}{% endblock %}</div>
    {% block scripts %}{% endblock %}
  </body>
</html>
""",
}


def dashboards() -> dict[str, Dashboard]:
    """Every lesson's dashboard, by lesson number: declared in the lesson's header, its "Try this" list read from
    the lesson's Explore section (:mod:`stn_course.course`)."""
    return {lesson.number: lesson.dashboard for lesson in course.lessons() if lesson.dashboard is not None}


#: a top-level line that starts training: on a live page, where its preheated kernel stops until a visitor comes
_TRAINING_STARTS = re.compile(r"^\S.*(\.start_training\(|training\.fit\()", re.M)


def is_live(board: Dashboard) -> bool:
    """Whether a page trains a model while it is watched: a top-level line of its code calls ``.start_training(``
    or ``training.fit(`` (lessons 5 and 6)."""
    return _TRAINING_STARTS.search(board.code) is not None


def code_cells(board: Dashboard) -> list[str]:
    """The page's code cells: the imports, then its code. A live page's code is split where training starts: a
    preheated kernel runs the first part (data, model, the explorer on screen) and waits at
    :func:`wait_for_visitor` until the page is opened, so the visitor sees the explorer at once and the whole run."""
    found = _TRAINING_STARTS.search(board.code)
    if found is None:
        return [_SETUP, board.code]
    return [_SETUP, board.code[:found.start()], _WAIT + board.code[found.start():]]


def wait_for_visitor() -> None:
    """In a kernel Voilà preheats: wait until its page is opened (``voila.utils.wait_for_request``); elsewhere
    return at once. If the server shuts down first, the kernel exits quietly: the rest of the page has no one to
    run for, and letting the cell go on would print a traceback into the terminal (its reply finds the sockets
    closed) – what Ctrl+C used to show."""
    if os.environ.get("VOILA_PREHEAT") != "True":
        return
    import threading

    from voila.utils import wait_for_request

    hook = threading.excepthook
    threading.excepthook = lambda args: None  # the server closing the socket mid-wait: handled below
    try:
        wait_for_request()
    finally:
        threading.excepthook = hook
    if not os.environ.get("SERVER_SOFTWARE", "").startswith("voila/"):  # set from the request, when there is one
        os._exit(0)


def write_dashboards(folder: Path, lessons: list[str] | None = None) -> list[Path]:
    """Write the dashboards of ``lessons`` (default: all) as notebooks ``NN_explore.ipynb`` in ``folder``: a
    markdown cell (title, intro, "Try this") and :func:`code_cells`."""
    import nbformat  # here, not above: `stn-course --help` lists the dashboards without importing nbformat

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
                    *map(nbformat.v4.new_code_cell, code_cells(board))]
        path = folder / f"{lesson}_explore.ipynb"
        nbformat.write(nb, path)
        written.append(path)
    return written


def write_template(data_dir: Path) -> Path:
    """Write the pages' Voilà template (:data:`TEMPLATE`) under ``data_dir`` (a Jupyter data folder: Voilà finds it
    when ``data_dir`` is on ``JUPYTER_PATH``). ``-> the template's folder``."""
    folder = Path(data_dir) / "voila" / "templates" / TEMPLATE
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in _TEMPLATE_FILES.items():
        (folder / name).write_text(text)
    return folder


def free_port(ip: str = "127.0.0.1") -> int:
    """A TCP port on ``ip`` that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((ip, 0))
        return probe.getsockname()[1]


def voila_command(target: Path, port: int, ip: str = "127.0.0.1", token: str = "") -> list[str]:
    """The command that serves ``target`` (a dashboard notebook, or their folder) with Voilà: sources hidden, the
    page template :data:`TEMPLATE` (run it with :func:`write_template`'s folder on ``JUPYTER_PATH``), only
    :data:`LAB_EXTENSIONS`, a preheated kernel per page."""
    return [sys.executable, "-m", "voila", str(target), "--no-browser", f"--port={port}", f"--Voila.ip={ip}",
            "--Voila.port_retries=0", "--strip_sources=True", "--show_tracebacks=False", f"--token={token}",
            f"--template={TEMPLATE}", "--preheat_kernel=True", "--VoilaConfiguration.classic_tree=True",
            *(f"--VoilaConfiguration.extension_allowlist={name}" for name in LAB_EXTENSIONS)]


def serve(lessons: list[str] | None = None, port: int | None = None, ip: str = "127.0.0.1",
          token: str = "") -> int:
    """Serve the dashboards until interrupted; prints the address to open. Ctrl+C (SIGINT) or SIGTERM stops Voilà
    and its kernels and returns 0 – stopping is how a dashboard session ends, not a failure. ``-> exit status``
    (Voilà's, if it ends by itself; 2 without Voilà)."""
    if _missing("voila"):
        print("stn-course explore needs Voilà: pip install 'stn-course[explore]' (or pip install voila)",
              file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="stn-course-explore-"))
    try:
        pages = write_dashboards(folder / "pages", lessons)
        write_template(folder / "share")
        port = port or free_port(ip)
        target = pages[0] if len(pages) == 1 else folder / "pages"
        query = f"?token={token}" if token else ""
        where = "" if len(pages) == 1 else " (a page per lesson)"
        print(f"Serving the explorers{where} at http://{ip}:{port}/{query} – open it in a browser; Ctrl+C stops.",
              flush=True)
        if ip not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: listening on {ip}: anyone who can reach this machine can open the dashboards", flush=True)
        jupyter_path = os.pathsep.join(filter(None, [str(folder / "share"), os.environ.get("JUPYTER_PATH")]))
        # its own session: a terminal's Ctrl+C reaches this process only, which shuts Voilà down in order; its
        # log (and its kernels') comes through a pipe, so that what they print while shutting down can be dropped
        process = subprocess.Popen(voila_command(target, port, ip, token), start_new_session=True,
                                   env={**os.environ, "JUPYTER_PATH": jupyter_path}, stderr=subprocess.PIPE)
        return _wait_or_stop(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_or_stop(process: subprocess.Popen) -> int:
    """Relay Voilà's log; on SIGINT or SIGTERM stop it (SIGTERM: it shuts its kernels down; SIGKILL to its process
    group after 15 s), drop what it and its kernels print meanwhile (a kernel stopped mid-cell prints a traceback
    of its closed sockets) and return 0 with one line on stderr."""
    import threading

    stopping = threading.Event()

    def relay() -> None:
        for line in iter(process.stderr.readline, b""):
            if not stopping.is_set():
                sys.stderr.write(line.decode(errors="replace"))
                sys.stderr.flush()

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    threading.Thread(target=relay, name="voila-log", daemon=True).start()
    # SIGINT too: a server started in the background of a script inherits SIGINT ignored, and Ctrl+C must stop it
    previous = signal.signal(signal.SIGTERM, interrupted), signal.signal(signal.SIGINT, interrupted)
    try:
        return process.wait()
    except KeyboardInterrupt:
        stopping.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C while stopping changes nothing
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        print("stn-course explore: stopped (Voilà and its kernels shut down).", file=sys.stderr, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None
