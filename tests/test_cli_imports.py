"""``stn-course --help`` and ``stn-course lessons DIR`` import no torch (stn_course/cli.py, stn_course/__init__.py).

Importing torch costs seconds of CPU (3.6 s on this project's machine) that a help text or a copy of the lessons
does not need: the package's modules are imported on first use. (The listing, ``stn-course lessons``, counts the
checks each lesson registers: it loads the check modules, and so torch.) Each test reads, with ``python -X importtime``,
which modules a fresh interpreter really imported (a few hundred ms each).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "nbformat", "matplotlib", "ipywidgets", "numpy")


def imported_modules(args: list[str], cwd: Path) -> tuple[set[str], str]:
    """The top-level names of every module ``python -X importtime ARGS`` imported, and its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)$", done.stderr, flags=re.M)
    assert "stn_course" in names  # the parse saw the imports
    return {name.split(".")[0] for name in names}, done.stdout


@pytest.mark.parametrize("command", [["--help"], ["lessons", "--help"], ["checks", "--help"]])
def test_the_help_and_the_listing_import_no_torch(command, tmp_path):
    modules, out = imported_modules(["-m", "stn_course.cli", *command], tmp_path)
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert "usage: stn-course" in out


def test_copying_the_lessons_imports_no_torch(tmp_path):
    modules, out = imported_modules(["-m", "stn_course.cli", "lessons", "course"], tmp_path)
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    copied = sorted(p.name for p in (tmp_path / "course").glob("*.ipynb"))
    assert copied == sorted(p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")) and len(copied) == 8


def test_the_modules_are_still_reached_from_the_package():
    """The lazy package keeps ``stn_course.sampling``, ``from stn_course import stn`` and ``dir()`` working (the
    subprocess tests above show that ``import stn_course`` alone imports no torch)."""
    import torch

    import stn_course
    from stn_course import stn

    out = stn_course.sampling.grid_sample(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 1, 2))
    assert float(out) == 1.0  # the centre of a constant image is that constant
    assert stn.SpatialTransformer is stn_course.stn.SpatialTransformer
    assert {"affine", "grids", "sampling", "checks", "__version__"} <= set(dir(stn_course))


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    import stn_course

    with pytest.raises(AttributeError, match="'stn_course' has no attribute 'affine_grids'"):
        stn_course.affine_grids  # noqa: B018
