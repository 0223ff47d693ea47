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


def _through(h: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    uvw = torch.cat([points, torch.ones_like(points[..., :1])], -1) @ h.transpose(1, 2)
    return uvw[..., :2] / uvw[..., 2:]


def test_the_homography_through_more_pairs_and_through_a_horizon():
    """Any P >= 4 exact pairs; a map with H[2, 2] = 0 (the source's origin on the horizon) is found as well; unit
    norm, w > 0 at the first source point; the square to twice itself is diag(2, 2, 1) / 3."""
    from stn_course.data.signs import homography

    square = torch.tensor(SIGN_CORNERS, dtype=torch.float64)[None]
    assert torch.allclose(homography(square, 2 * square)[0], torch.diag(torch.tensor([2.0, 2.0, 1.0],
                                                                                    dtype=torch.float64)) / 3)
    true = torch.tensor([[[1.0, 0.25, -0.5], [0.0, 1.0, 0.0], [1.0, -0.25, 0.0]],  # w = x - y / 4: (0, 0) at infinity
                         [[0.9, 0.1, 0.2], [-0.1, 1.1, 0.0], [0.3, -0.2, 1.0]]], dtype=torch.float64)
    src = torch.tensor([[0.25, -1.0], [0.75, -1.0], [1.0, 0.0], [0.25, 0.0], [0.5, 0.5], [0.8, -0.3]],
                       dtype=torch.float64).expand(2, 6, 2)
    h = homography(src, _through(true, src))
    assert torch.allclose(h, true / true.flatten(1).norm(dim=1)[:, None, None], atol=1e-12)  # w > 0 at src[0]
    assert torch.allclose(_through(h, src), _through(true, src), atol=1e-12)
    assert h.dtype == torch.float64 and homography(src.float(), _through(true, src).float()).dtype == torch.float32
    assert homography(torch.zeros(0, 4, 2), torch.zeros(0, 4, 2)).shape == (0, 3, 3)
    nan = _through(true, src).clone()
    nan[1, 2, 0] = float("nan")
    h = homography(src, nan)  # a NaN point: that map is NaN, the others are untouched
    assert h[1].isnan().all() and torch.allclose(h[0], true[0] / true[0].norm(), atol=1e-12)


def test_the_homography_says_when_the_pairs_do_not_pin_it_down():
    from stn_course.data.signs import homography

    on_a_line = torch.tensor([[[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0], [-1.0, 1.0]]])  # three on the diagonal
    with pytest.raises(ValueError, match="three of the points on a line"):
        homography(on_a_line, 2 * on_a_line)
    with pytest.raises(ValueError, match=r"P >= 4"):
        homography(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2))


def test_rectify_with_a_margin_puts_the_square_on_pixel_edges():
    """A sign that fills an 8-pixel canvas whose every pixel holds its column + 1, rectified into 4 pixels with a
    1-pixel margin: the square covers output pixels 1 and 2 only, its edges on their outer edges. By hand: pixel j's
    centre is at normalized (2j + 1)/4 − 1, the sign's corners at ±(1 − 2/4), so it reads the canvas at twice that –
    pixels 1 and 2 at −0.5 and 0.5, canvas x = ((x + 1) · 8 − 1) / 2 = 1.5 and 5.5 (values 2.5, 6.5); pixels 0 and
    3 at ∓1.5, outside the canvas: zeros."""
    ramp = 1 + torch.arange(8, dtype=torch.float64).expand(1, 1, 8, 8)
    square = torch.tensor(SIGN_CORNERS, dtype=torch.float64)[None]
    out = rectify(ramp, square, 4, 1)
    assert torch.allclose(out[0, 0, 1], torch.tensor([0.0, 2.5, 6.5, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(out[0, 0, :, 1], torch.tensor([0.0, 2.5, 2.5, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(rectify(ramp, square, 8, 0), ramp, atol=1e-12)  # margin 0, the same size: the canvas
    with pytest.raises(ValueError, match="margin"):
        rectify(ramp, square, 4, 2)


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
