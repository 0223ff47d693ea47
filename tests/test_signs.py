"""The colour-sign generator of lesson 8 (stn_course.data.signs) and colour input for the models."""
from __future__ import annotations

import pytest
import torch

from stn_course import training
from stn_course.data.signs import CLASSES, COLOURS, SIGN_CORNERS, make_signs, rectify, sign_datasets


def test_shapes_range_dtype_and_balanced_classes():
    images, labels, corners = make_signs(30, seed=3)
    assert images.shape == (30, 3, 40, 40) and images.dtype == torch.float32
    assert labels.shape == (30,) and labels.dtype == torch.int64
    assert corners.shape == (30, 4, 2)
    assert 0 <= images.min() and images.max() <= 1
    assert torch.bincount(labels, minlength=len(CLASSES)).tolist() == [3] * len(CLASSES)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_ones():
    a, b = make_signs(8, seed=5), make_signs(8, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], make_signs(8, seed=6)[0])


def test_every_sign_stays_inside_the_canvas():
    _, _, corners = make_signs(500, seed=0)
    assert corners.abs().max() < 1.0


def test_a_clean_upright_sign_has_its_colour_in_the_middle_of_its_body():
    # class 7 (red octagon, bar) filling the canvas: a point between the bar and the rim is pure red
    images, labels, _ = make_signs(10, seed=0, clutter=False, angle=0.0, perspective=0.0, scale=(1.0, 1.0))
    k = int((labels == 7).nonzero()[0])
    pixel = images[k, :, 6, 20]  # x = centre, y = 6/40 from the top: inside the octagon, above the bar
    assert torch.allclose(pixel, torch.tensor(COLOURS["red"]), atol=1e-6)
    assert torch.allclose(images[k, :, 20, 20], torch.tensor(0.97), atol=1e-6)  # the white bar


def test_rectify_by_the_true_corners_undoes_the_distortion():
    # the same signs, drawn upright filling the canvas and distorted (no clutter): rectifying the distorted ones by
    # their corners gives back the upright ones, up to the blur of resampling
    labels = torch.arange(10)
    from stn_course.data.signs import render_signs

    square = torch.tensor(SIGN_CORNERS, dtype=torch.float64).expand(10, 4, 2)
    upright = render_signs(labels, square, torch.Generator().manual_seed(0), size=40, clutter=False)
    _, _, corners = make_signs(10, seed=4)
    distorted = render_signs(labels, corners, torch.Generator().manual_seed(0), size=120, clutter=False)
    back = rectify(distorted, corners, 40)
    assert (back - upright).abs().mean() < 0.03
    assert (distorted[:, :, ::3, ::3] - upright).abs().mean() > 0.1  # (the distortion was not nothing)


def test_sign_datasets_are_the_seeded_draws():
    train, test = sign_datasets(20, 10, seed=0)
    assert torch.equal(train.tensors[0], make_signs(20, seed=0)[0])
    assert torch.equal(test.tensors[1], make_signs(10, seed=1)[1])


@pytest.mark.parametrize("model", ["cnn", "stcnn"])
def test_colour_input_models_take_rgb_and_keep_about_the_same_size(model):
    build = {"cnn": lambda: training.baseline_cnn(40, seed=0, batch_norm=True),
             "stcnn": lambda: training.st_cnn(40, "projective", seed=0, batch_norm=True)}[model]
    grey = build()
    colour = training.colour_input(build())
    assert colour(torch.rand(2, 3, 40, 40)).shape == (2, 10)
    extra = training.count_parameters(colour) - training.count_parameters(grey)
    assert extra == (2 * 16 * 25 if model == "cnn" else 2 * 16 * 25 + 2 * 8 * 25)


def test_the_benchmark_readme_states_what_the_committed_sweep_measured():
    """benchmarks/README.md's sign_quality section quotes benchmarks/sign_quality.json (lesson 8 reads the json)."""
    import json
    from pathlib import Path

    from stn_course import tuning

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sweep = json.loads((bench / "sign_quality.json").read_text())
    section = (bench / "README.md").read_text().split("<!-- BEGIN sign_quality -->")[1].split("<!-- END")[0]
    for name, model in (("CNN", "cnn"), ("ST-CNN (projective)", "stcnn")):
        assert f"{name} **{tuning.format_mean_spread(sweep['chosen'][model]['test_errors'])} %**" in section
    assert len(sweep["runs"]) == 8 * len(sweep["seeds"])  # 4 settings per model, every seed


def test_the_sign_sweep_chooses_on_validation_and_writes_nothing_without_write(monkeypatch, tmp_path):
    """benchmarks/sign_quality.py on a tiny configuration (one epoch on 60 signs, in process): each model's chosen
    setting is the one with the lowest validation error; the test errors of the others play no part."""
    import importlib.util
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))
    spec = importlib.util.spec_from_file_location("_bench_sign_quality", bench / "sign_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "N_TRAIN", 60)
    monkeypatch.setattr(module, "N_TEST", 20)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "never.json")
    module.datasets.cache_clear()

    class InProcess:  # the pool, without processes: the monkeypatched sizes hold
        def __init__(self, *_):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *_):
            return False

        def map(self, fn, jobs):
            return [fn(job) for job in jobs]

    monkeypatch.setattr(module, "ProcessPoolExecutor", InProcess)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # run() asks for one thread: not in this process
    result = module.main(["--seeds", "0", "--epochs", "1", "--jobs", "1"])
    assert len(result["runs"]) == 8 and not (tmp_path / "never.json").exists()
    for model in ("cnn", "stcnn"):
        mine = [r for r in result["runs"] if r["model"] == model]
        best = min(mine, key=lambda r: r["val_error"])
        assert result["chosen"][model]["val_errors"] == [best["val_error"]]
