"""The install routes, proven from a clean environment (issue #25, acceptance 1 and 2): no clone on the path.

1. **The container image without Docker.** This project's machines reach the package registries but no Docker
   daemon or base image, so the image's own install steps – ``docker/install.sh``, which the ``Dockerfile`` runs –
   run here in a fresh venv on a copy of what the ``Dockerfile`` copies (read from its ``COPY`` lines); the copy
   is deleted, the lessons go to a home folder by the ``Dockerfile``'s ``RUN`` after ``USER``, and its ``CMD``
   (JupyterLab, as an unprivileged user when the tests run as root) serves them. Through JupyterLab's REST API the
   test lists the lessons, opens lesson 1 and runs code in its kernel, which imports the course from the venv.
2. **The wheel.** ``pip wheel`` builds the package once; into an empty venv go the CPU build of torch and the wheel
   (with its ``lab`` extra: "a Jupyter of your own"), as the README says; from an empty folder outside the clone
   ``stn-course lessons ./course`` copies the lessons and ``jupyter nbconvert --execute`` runs lesson 1 – the
   student version, so every exercise reports "not implemented yet" and the run goes on to the end.

Both install torch and JupyterLab (from the registries; a few minutes): they carry the ``install`` marker, and CI
runs them in a background step beside the main run (``.ci/run``).
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import nbformat
import pytest

from stn_course import course

from .test_container import _instructions

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("course_install", ROOT / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)
LESSON = "01_affine_transforms"  # the cheapest lesson to run
UNPRIVILEGED = 65534  # nobody: JupyterLab runs as a user, as in the image (no --allow-root)
INSTALL_TIMEOUT = 900


def clean_env(venv: Path, **extra: str) -> dict[str, str]:
    """The environment of a command run "in" ``venv``: its bin first on PATH, no PYTHONPATH (nothing of the clone),
    no retries on an index this machine cannot reach (PyTorch's CPU index: pip then takes the registry's torch)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PIP_RETRIES="0", VIRTUAL_ENV=str(venv),
               MPLBACKEND="Agg", **extra)
    return env


def run(command: list[str], env: dict[str, str], cwd: Path, timeout: float = INSTALL_TIMEOUT) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def runs_unprivileged(command: list[str]) -> bool:
    """Whether ``command`` runs as uid :data:`UNPRIVILEGED` (as root, to pick an interpreter that user can run)."""
    try:
        done = subprocess.run(command, capture_output=True, user=UNPRIVILEGED, group=UNPRIVILEGED, extra_groups=[],
                              timeout=60)
    except OSError:  # not even executable by that user
        return False
    return done.returncode == 0


def base_python() -> str:
    """This Python version's interpreter to make the venvs with. As root, one the unprivileged user can run too:
    pyenv's lives under /root (mode 0700), Debian's ``/usr/bin/python3.X`` does not."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}"):
        if os.geteuid() != 0 or runs_unprivileged([candidate, "-c", "import venv, ensurepip"]):
            return candidate
    pytest.fail(f"no Python {version} with venv that uid {UNPRIVILEGED} can run: tried {sys.executable} and "
                f"/usr/bin/python{version} (Debian: apt-get install python{version}-venv)")


def fresh_venv(folder: Path) -> Path:
    """An empty venv (no system site-packages) of this interpreter's Python version."""
    subprocess.run([base_python(), "-m", "venv", str(folder)], check=True, timeout=120)
    return folder


def copy_context(target: Path) -> Path:
    """What the ``Dockerfile``'s ``COPY`` lines put in the image, under ``target`` instead of their destination
    folder (one destination for every line: asserted), without ``__pycache__`` (``.dockerignore``)."""
    copies = [args.split() for op, args in _instructions() if op == "COPY"]
    destinations = {Path(parts[-1]) for parts in copies}
    base = min(destinations, key=lambda p: len(p.parts))
    assert all(base == d or base in d.parents for d in destinations), destinations
    for *sources, destination in copies:
        into = target / Path(destination).relative_to(base)
        for source in sources:
            origin = ROOT / source
            to = into / origin.name if destination.endswith("/") else into
            to.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, to, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(origin, to)
    return target


@pytest.fixture(scope="module")
def workspace():
    """A world-readable scratch folder (pytest's own is private to root: the unprivileged server reads the venv),
    removed afterwards by a detached ``rm -rf``: two venvs of tens of thousands of files (torch alone: ~15,000),
    which a disk that discards on every unlink (this project's machines) took 5.5 minutes to delete, and nothing
    waits for it."""
    folder = Path(tempfile.mkdtemp(prefix="stn-install-routes-"))
    folder.chmod(0o755)
    yield folder
    subprocess.Popen(["rm", "-rf", str(folder)], start_new_session=True, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)


# --- acceptance 1: the image's install steps in a fresh venv, then JupyterLab on the lessons ----------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_command(home: Path, port: int, token: str, venv: Path) -> list[str]:
    """The ``Dockerfile``'s ``CMD`` with this machine's venv, home folder and a free port on 127.0.0.1."""
    cmd = json.loads([args for op, args in _instructions() if op == "CMD"][-1])
    assert cmd[:2] == ["jupyter", "lab"]
    replaced = {"--ip": "127.0.0.1", "--port": str(port), "--ServerApp.root_dir": str(home)}
    out = [str(venv / "bin" / "jupyter")]
    for arg in cmd[1:]:
        name = arg.split("=", 1)[0]
        out.append(f"{name}={replaced[name]}" if name in replaced else arg)
    assert set(replaced) <= {a.split("=", 1)[0] for a in cmd}, cmd
    return out + [f"--IdentityProvider.token={token}"]


def api(base: str, token: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def wait_for_server(base: str, token: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"JupyterLab exited ({server.returncode}):\n{log.read_text()[-3000:]}"
        try:
            api(base, token, "/api/status")
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


async def kernel_output(base: str, token: str, kernel_id: str, code: str, timeout: float = 120) -> str:
    """Run ``code`` in the kernel through the server's websocket (the channel JupyterLab's notebook uses); its
    stdout, or an AssertionError with the traceback."""
    from tornado.websocket import websocket_connect

    url = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels?token={token}"
    socket_ = await websocket_connect(url)
    msg_id = uuid.uuid4().hex
    socket_.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": uuid.uuid4().hex,
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        raw = await asyncio.wait_for(socket_.read_message(), deadline - time.monotonic())
        assert raw is not None, "the kernel's websocket closed"
        message = json.loads(raw)
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            raise AssertionError("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            socket_.close()
            return "".join(out)


@pytest.fixture(scope="module")
def image_venv(workspace) -> Path:
    """A fresh venv set up by the image's install steps (``docker/install.sh``) from a copy of the image's
    context, which is then deleted as the ``Dockerfile`` deletes it."""
    venv = fresh_venv(workspace / "image-venv")
    context = copy_context(workspace / "image-context")
    hub = dict(a.split("=", 1) for op, a in _instructions() if op == "ARG" and "=" in a)["JUPYTERHUB_VERSION"]
    run(["sh", str(context / "docker" / "install.sh"), str(context)],
        clean_env(venv, JUPYTERHUB_VERSION=hub), workspace)
    shutil.rmtree(context)
    return venv


def test_the_image_install_steps_serve_the_lessons_in_jupyterlab(image_venv, workspace):
    venv = image_venv
    assert (venv / "bin" / "jupyterhub-singleuser").exists()  # what a JupyterHub starts in the image
    home = workspace / "home" / "jovyan"
    home.mkdir(parents=True)
    as_root = os.geteuid() == 0
    user = {"user": UNPRIVILEGED, "group": UNPRIVILEGED, "extra_groups": []} if as_root else {}
    if as_root:
        os.chown(home, UNPRIVILEGED, UNPRIVILEGED)
    env = clean_env(venv, HOME=str(home), USER="jovyan")
    ops = _instructions()
    after_user = [args for op, args in ops[[op for op, _ in ops].index("USER"):] if op == "RUN"]
    assert after_user == ["stn-course lessons lessons"]  # the image's lessons step, run as the learner
    for step in after_user:
        subprocess.run(["sh", "-c", step], env=env, cwd=home, check=True, timeout=120, **user)

    port, token = free_port(), uuid.uuid4().hex
    base = f"http://127.0.0.1:{port}"
    log = workspace / "jupyterlab.log"
    with open(log, "w") as sink:
        server = subprocess.Popen(image_command(home, port, token, venv), env=env, cwd=home, stdout=sink,
                                  stderr=subprocess.STDOUT, start_new_session=True, **user)
    try:
        wait_for_server(base, token, server, log)
        root = {item["name"] for item in api(base, token, "/api/contents")["content"]}
        assert "lessons" in root and "solutions" not in root, root
        listed = sorted(item["name"] for item in api(base, token, "/api/contents/lessons")["content"])
        assert listed == sorted(p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")) and len(listed) == 8
        opened = api(base, token, f"/api/contents/lessons/{LESSON}.ipynb")
        assert opened["type"] == "notebook" and opened["content"]["metadata"]["stn_course"]["lesson"] == "01"
        assert "raise NotImplementedError" in json.dumps(opened["content"])  # the student version
        session = api(base, token, "/api/sessions", "POST", {
            "path": f"lessons/{LESSON}.ipynb", "type": "notebook", "name": f"{LESSON}.ipynb",
            "kernel": {"name": "python3"}})
        probe = ("import os, sys, stn_course, torch; print(stn_course.__file__); print(sys.executable); "
                 "print(os.getcwd()); print(torch.__version__)")
        shown = asyncio.run(kernel_output(base, token, session["kernel"]["id"], probe)).split()
        package, python, cwd, torch_version = shown
        assert Path(package).is_relative_to(venv / "lib") and not Path(package).is_relative_to(ROOT), package
        assert Path(python).parent == venv / "bin", python
        assert Path(cwd) == home / "lessons"  # the kernel runs beside the lesson it opened
        assert torch_version == install.TORCH.split("==")[1] or torch_version.startswith(install.TORCH.split("==")[1] + "+")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --- acceptance 2: the wheel in an empty venv, the lessons copied out, lesson 1 run there -------------------------

@pytest.fixture(scope="module")
def wheel(workspace) -> Path:
    """The package's wheel, built once from a copy of the image's context (the build writes nothing in the clone)."""
    context = copy_context(workspace / "wheel-context")
    dist = workspace / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(context)],
        {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, workspace)
    (built,) = dist.glob("stn_course-*.whl")
    return built


def test_the_wheel_ships_the_lessons_and_their_manifest(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("stn_course/lessons_data/")}
    assert shipped == {p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")}
    assert {"stn_course/lessons.json", "stn_course/py.typed", "stn_course/data/mnist_5000.npz"} <= names
    assert not any(n.startswith(("solutions/", "tests/")) or "/solutions/" in n for n in names)


def test_the_wheel_in_an_empty_venv_runs_a_lesson_outside_the_clone(wheel, workspace):
    venv = fresh_venv(workspace / "wheel-venv")
    env = clean_env(venv)
    python = str(venv / "bin" / "python")
    # the README: the CPU build of torch first (as install.py), then the course – with JupyterLab, to run a lesson
    run([python, "-m", "pip", "install", install.TORCH, "--extra-index-url", install.CPU_INDEX], env, workspace)
    run([python, "-m", "pip", "install", f"{wheel}[lab]"], env, workspace)
    empty = workspace / "learner"
    empty.mkdir()
    copied = run([str(venv / "bin" / "stn-course"), "lessons", "./course"], env, empty)
    assert copied.startswith("copied 8 lessons") and sorted(p.name for p in (empty / "course").iterdir()) == sorted(
        p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))

    lesson = empty / "course" / f"{LESSON}.ipynb"
    nb = nbformat.read(lesson, as_version=4)  # one cell appended: where the kernel found the course
    nb.cells.append(nbformat.v4.new_code_cell("import sys, stn_course; print(stn_course.__file__, sys.executable)"))
    nbformat.write(nb, lesson)
    budget = course.get(LESSON[:2]).budget_s
    run([str(venv / "bin" / "jupyter"), "nbconvert", "--to", "notebook", "--execute", str(lesson),
         "--output", "executed.ipynb", f"--ExecutePreprocessor.timeout={budget}"],
        clean_env(venv, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"), empty / "course", timeout=budget * 3)

    done = nbformat.read(empty / "course" / "executed.ipynb", as_version=4)
    code = [c for c in done.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "a cell did not run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for c in code for o in c.outputs)
    reported = set(re.findall(r"⏳ \[([0-9]{2}\.[\w.]+)\][^\n]*not implemented yet", text))
    assert reported == {e.id for e in course.get(LESSON[:2]).exercises}  # every stub reported, the run went on
    assert "❌" not in text and "✅" not in text  # nothing passed or failed: the student version, untouched
    package, python_used = code[-1].outputs[-1]["text"].split()
    assert Path(package).is_relative_to(venv / "lib") and Path(python_used).parent == venv / "bin"
