"""Set up stn-course with the right PyTorch for this machine: ``python install.py``.

On Linux, ``pip install torch`` from PyPI is the CUDA build (several GB of ``nvidia-*`` wheels and triton), which a
machine without an NVIDIA GPU cannot use. This script looks for an NVIDIA GPU first and then installs:

* an NVIDIA GPU (``nvidia-smi -L`` lists one, or ``/proc/driver/nvidia/gpus`` has one): PyPI's ``torch`` – the
  CUDA build;
* Linux without one: the CPU-only wheel from PyTorch's CPU index (``--extra-index-url
  https://download.pytorch.org/whl/cpu``; pip takes ``2.13.0+cpu`` over PyPI's ``2.13.0``), a few hundred MB;
* macOS and Windows: PyPI's ``torch``, which is already CPU-sized there (Apple's GPUs through MPS on macOS);

then the course itself in editable mode (``pip install -e .``, plus ``--extras``) with the ``lab`` extra (JupyterLab) and, on Linux, the ``gpu`` extra
(triton, for lesson 7: on a GPU, or through Triton's interpreter on the CPU; Triton has no macOS or Windows wheels). ``--dry-run`` prints the
commands and installs nothing; ``--cpu`` / ``--cuda`` override the detection. Only the standard library is used,
so it runs before anything is installed, in the environment of the ``python`` that runs it (make a venv first).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

TORCH = "torch==2.13.0"  # the release the course is tested with (CI installs the same)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ROOT = Path(__file__).resolve().parent


def nvidia_gpu_present(which=shutil.which, run=subprocess.run, proc_gpus=Path("/proc/driver/nvidia/gpus")) -> bool:
    """True when an NVIDIA GPU with a working driver is visible (``nvidia-smi -L`` or the driver's /proc entry)."""
    exe = which("nvidia-smi")
    if exe:
        try:
            listed = run([exe, "-L"], capture_output=True, text=True, timeout=20)
            if listed.returncode == 0 and "GPU" in listed.stdout:
                return True
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        return proc_gpus.is_dir() and any(proc_gpus.iterdir())
    except OSError:
        return False


def plan(target: str, system: str, extras: list[str], python: str = sys.executable,
         editable: bool = True, lab: bool = True) -> list[list[str]]:
    """The pip commands for ``target`` ("cuda" or "cpu") on ``system`` (``platform.system()``); ``editable=False``
    installs a copy of the course (a container image, which then deletes the sources) instead of linking to it;
    ``lab=False`` leaves JupyterLab out (a grading machine opens no notebook in a browser)."""
    pip = [python, "-m", "pip", "install"]
    torch = pip + [TORCH]
    if target == "cpu" and system == "Linux":
        torch += ["--extra-index-url", CPU_INDEX]
    if lab and _has_extra("lab") and "lab" not in extras:  # JupyterLab: the README opens the lessons with it
        extras = [*extras, "lab"]
    if system == "Linux" and _has_extra("gpu") and "gpu" not in extras:
        extras = [*extras, "gpu"]
    course = pip + (["-e"] if editable else []) + [f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)]
    return [torch, course]


def _has_extra(name: str) -> bool:
    text = (ROOT / "pyproject.toml").read_text()
    return f"\n{name} = [" in text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Then: jupyter lab lessons/   (tests: pip install -e \".[test]\" && "
                                            "python -m pytest)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--cpu", action="store_true", help="the CPU-only build, whatever the machine has")
    choice.add_argument("--cuda", action="store_true", help="PyPI's CUDA build, whatever the machine has")
    parser.add_argument("--extras", default="", help="comma-separated extras of the course, e.g. test")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, install nothing")
    parser.add_argument("--no-lab", action="store_true",
                        help="leave JupyterLab out (a grading machine: Gradescope's setup.sh)")
    parser.add_argument("--no-editable", action="store_true",
                        help="install a copy of the course, not a link to this folder (the Dockerfile does)")
    args = parser.parse_args(argv)
    system = platform.system()
    if args.cpu or args.cuda:
        target, why = ("cpu", "--cpu") if args.cpu else ("cuda", "--cuda")
    elif nvidia_gpu_present():
        target, why = "cuda", "an NVIDIA GPU is present"
    else:
        target, why = "cpu", "no NVIDIA GPU found"
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    kind = {"cuda": "PyPI's CUDA build", "cpu": "the CPU-only build" if system == "Linux" else "PyPI's build"}[target]
    print(f"stn-course set-up: {why} -> {TORCH} ({kind}) on {system} {platform.machine()}, Python "
          f"{platform.python_version()} at {sys.executable}")
    if sys.prefix == sys.base_prefix and not os.environ.get("CONDA_PREFIX"):
        print("note: this Python is not a virtual environment; `python -m venv .venv` first keeps the course apart")
    for command in plan(target, system, extras, editable=not args.no_editable, lab=not args.no_lab):
        print("+ " + " ".join(command), flush=True)
        if not args.dry_run:
            done = subprocess.run(command)
            if done.returncode:
                print(f"stn-course set-up: the command above failed (exit {done.returncode})", file=sys.stderr)
                return done.returncode
    if not args.dry_run:
        print("done. Open the course with: jupyter lab lessons/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
