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


def test_lesson5_sweep_chose_on_validation_and_its_numbers_are_quoted_everywhere():
    """benchmarks/lr_sweep.json (written by lr_sweep.py): every model had the same number of configurations and
    seeds; each chosen configuration is the lowest mean *validation* error (recomputed here, the test errors play no
    part); the reported numbers are the chosen configurations' test errors; the lesson trains in the sweep's
    budget and reads the json (no learning rate of its own); benchmarks/README.md holds the sweep's tables and the
    README quotes the same mean ± sd."""
    import json

    from stn_course import tuning

    results = json.loads((BENCHMARKS / "lr_sweep.json").read_text())
    configs = results["configurations"]
    assert len(configs["cnn"]) == len(configs["stcnn"]) >= 2  # the same tuning budget
    assert results["validation"] > 0 and results["batch_norm"] is True
    for kind, r in results["kinds"].items():
        for name in ("cnn", "stcnn"):
            m = r[name]
            assert set(m["val"]) == set(m["test"]) == set(configs[name])
            assert all(len(v) == len(results["seeds"]) for v in (*m["val"].values(), *m["test"].values()))
            assert m["chosen"] == tuning.select_by_validation({k: m["val"][k] for k in configs[name]}), (kind, name)
            assert m["test_at_chosen"] == m["test"][m["chosen"]]
    lesson = (BENCHMARKS.parent / "solutions" / "src" / "05_training_stn.py").read_text()
    assert f"EPOCHS = {results['epochs']} if FAST" in lesson
    assert "lr_sweep.json" in lesson and "LR = {" not in lesson
    bench = _load("lr_sweep")
    readme = (BENCHMARKS / "README.md").read_text()
    assert bench.result_table(results) in readme and bench.sweep_table(results) in readme
    main_readme = (BENCHMARKS.parent / "README.md").read_text()
    for kind, r in results["kinds"].items():
        for name in ("cnn", "stcnn"):
            assert tuning.format_mean_spread(r[name]["test_at_chosen"]) in main_readme, (kind, name)


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
