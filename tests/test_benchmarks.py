"""The benchmarks' own guards: a benchmark of two things that no longer compute the same result must fail."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from stn_course.deform import deform_conv2d

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_deform_fails_when_parity_breaks(monkeypatch, capsys):
    bench = _load("bench_deform")
    monkeypatch.setattr(bench, "SIZES", [(1, 2, 3, 5)])
    # stand-ins for torchvision (not a dependency of the course): the package's reference path is torchvision's
    # contract; a planted (dx, dy) swap of the offsets must be caught before any timing is reported
    reference = lambda *a, **k: deform_conv2d(*a, **k, impl="reference")  # noqa: E731

    def swapped(input, offset, weight, bias=None, padding=0, mask=None):
        pairs = offset.view(offset.shape[0], -1, 2, *offset.shape[2:]).flip(2).reshape(offset.shape)
        return deform_conv2d(input, pairs, weight, bias, padding=padding, mask=mask, impl="reference")

    threads = torch.get_num_threads()
    try:
        monkeypatch.setattr(bench, "load_torchvision", lambda: (reference, "stand-in"))
        assert bench.main(["--repeats", "1", "--threads", "1"]) == 0
        monkeypatch.setattr(bench, "load_torchvision", lambda: (swapped, "stand-in"))
        assert bench.main(["--repeats", "1", "--threads", "1"]) == 1
        assert "PARITY BROKEN" in capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)


def test_lesson5_uses_the_sweeps_learning_rates_and_quotes_its_table():
    """Lesson 5's learning rates are the sweep's choices under the lesson's budget, the ratios it quotes are the
    sweep's (every seed), and the table in the lesson is the one in benchmarks/README.md (both written by lr_sweep.py)."""
    import json
    import re

    results = json.loads((BENCHMARKS / "lr_sweep.json").read_text())
    lesson = (BENCHMARKS.parent / "solutions" / "src" / "05_training_stn.py").read_text()
    namespace: dict = {}
    for name in ("LR", "TRANSFORMER_FRACTION", "SWEEP_RATIOS"):
        exec(re.search(rf"^{name} = .*$", lesson, re.M).group(0), namespace)
    assert results["epochs"] == 6 and "EPOCHS = 6 if FAST" in lesson and "EPOCHS_TC = 6 if FAST" in lesson
    assert namespace["TRANSFORMER_FRACTION"] == results["transformer_fraction"]
    for kind, r in results["kinds"].items():
        assert namespace["LR"][kind] == r["chosen"], kind
        assert namespace["SWEEP_RATIOS"][kind] == tuple(round(ratio, 2) for ratio in r["ratios"]), kind
    bench = _load("lr_sweep")
    tables = bench.sweep_table(results) + "\n\n" + bench.ratio_table(results)
    readme = (BENCHMARKS / "README.md").read_text()
    assert tables in readme
    block = lesson.split("# <!-- BEGIN lr_sweep -->\n", 1)[1].split("# <!-- END lr_sweep -->", 1)[0]
    assert tables.replace("\n", "\n# ").replace("# \n", "#\n") in block


@pytest.mark.triton
def test_bench_gpu_runs_every_code_path_and_fails_when_parity_breaks(monkeypatch, capsys):
    """--smoke runs each table once at tiny sizes (the fused kernels through Triton's interpreter on a CPU); a fused
    kernel that no longer matches torch stops the run before anything is reported."""
    bench = _load("bench_gpu")
    assert bench.main(["--smoke", "--no-compile"]) == 0
    out = capsys.readouterr().out
    assert "Bytes moved" in out and "Affine sampling on" in out and "Deformable convolution 3×3" in out
    assert "| (1024, 1, 60, 60) | 88 | 67% | 29 | 3.00× |" in out  # the bytes model at the size
    monkeypatch.setattr(bench, "fused_sample", lambda x, theta: bench.aten_sample(x, theta.flip(1)))  # rows swapped
    assert bench.main(["--smoke", "--no-compile"]) == 1
    assert "PARITY BROKEN" in capsys.readouterr().err
