"""Tests for stn_course.training: models, the fit/evaluate loop, save/load."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from stn_course import data, training


@pytest.fixture(scope="module")
def tiny_r():
    """500 R-rotated training digits, 300 test digits (28×28: the cheapest canvas)."""
    train, test = data.make_datasets("R", seed=0, n_train=500, n_test=300, impl="aten")
    return train, test


def test_error_rate_by_hand():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2, 2, 1])
    assert training.error_rate(logits, labels) == pytest.approx(50.0)
    with pytest.raises(ValueError, match=r"logits \(N, C\)"):
        training.error_rate(logits[0], labels)
    with pytest.raises(ValueError, match="empty"):
        training.error_rate(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_evaluate_matches_a_hand_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(10, 1, 2, 2)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    loader = [(x[:4], y[:4]), (x[4:], y[4:])]  # uneven batches: the mean must weight by examples
    result = training.evaluate(model, loader)
    logits = model(x).double()
    expected_loss = sum(-torch.log_softmax(logits[i], 0)[y[i]].item() for i in range(10)) / 10
    expected_error = 100 * sum(int(logits[i].argmax() != y[i]) for i in range(10)) / 10
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["error"] == pytest.approx(expected_error)
    assert result["n"] == 10
    model.train()
    training.evaluate(model, loader)
    assert model.training  # the mode is restored
    with pytest.raises(ValueError, match="no examples"):
        training.evaluate(model, [])


def test_parameter_counts_are_comparable():
    for size in (28, 42, 60):
        cnn, stcnn = training.baseline_cnn(size), training.st_cnn(size)
        a, b = training.count_parameters(cnn), training.count_parameters(stcnn)
        assert abs(a - b) / b < 0.05, (size, a, b)
        assert cnn(torch.zeros(2, 1, size, size)).shape == (2, 10)
        assert stcnn(torch.zeros(2, 1, size, size)).shape == (2, 10)


def test_batch_norm_gives_both_models_the_same_normalisation_and_matched_sizes():
    """Lesson 5's fair comparison: with batch_norm=True the CNN and the ST-CNN's classifier have a batch norm after
    every layer of the trunk they share, and the parameter counts still match."""
    for size in (42, 60):
        cnn, stcnn = training.baseline_cnn(size, batch_norm=True), training.st_cnn(size, batch_norm=True)
        kinds = lambda m: [type(layer).__name__ for layer in m if "Norm" in type(layer).__name__]  # noqa: E731
        assert kinds(cnn) == kinds(stcnn.classifier) == ["BatchNorm2d", "BatchNorm2d", "BatchNorm1d"]
        assert not any("Norm" in type(m).__name__ for m in training.baseline_cnn(size))  # the default has none
        a, b = training.count_parameters(cnn), training.count_parameters(stcnn)
        assert abs(a - b) / b < 0.02, (size, a, b)
        assert cnn.config["batch_norm"] is stcnn.config["batch_norm"] is True
        cnn.eval()
        assert cnn(torch.zeros(1, 1, size, size)).shape == (1, 10)
        # building does not touch the running statistics (the size probe runs in eval mode)
        assert all(float(m.num_batches_tracked) == 0 for m in cnn.modules() if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(TypeError, match="batch_norm"):
        training.classifier_trunk(28, batch_norm=1)


def test_st_cnn_starts_as_identity_and_impls_agree():
    x = data.distort(data.load_splits()[0][:8], "RTS", torch.Generator().manual_seed(0))
    ref = training.st_cnn(42, impl="fast", seed=3)
    aten = training.st_cnn(42, impl="aten", seed=3)
    # perturb the head away from the identity so the transform matters
    with torch.no_grad():
        for model in (ref, aten):
            g = torch.Generator().manual_seed(1)
            model.transformer.head.weight.copy_(torch.randn(model.transformer.head.weight.shape, generator=g) * 0.05)
    torch.testing.assert_close(aten(x), ref(x), atol=1e-5, rtol=1e-5)
    out_ref, theta_ref, grid_ref = ref.transform(x)
    out_aten, theta_aten, grid_aten = aten.transform(x)
    torch.testing.assert_close(out_aten, out_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grid_aten, grid_ref, atol=1e-6, rtol=1e-6)
    # a fresh ST-CNN's transformer is the identity in pixels: the central 28×28 window of the 42×42 canvas, exactly
    fresh = training.st_cnn(42, seed=0, impl="fast")
    out, theta, grid = fresh.transform(x)
    torch.testing.assert_close(theta, torch.tensor([[2 / 3, 0, 0], [0, 2 / 3, 0]]).expand(8, 2, 3))
    assert torch.equal(out, x[:, :, 7:35, 7:35])
    # start="identity": the identity in normalized coordinates, the whole canvas downsampled onto 28×28
    whole = training.st_cnn(42, seed=0, start="identity")
    out, theta, grid = whole.transform(x)
    torch.testing.assert_close(theta, torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(8, 2, 3))
    expected = F.grid_sample(x, F.affine_grid(theta, (8, 1, 28, 28), align_corners=False), align_corners=False)
    torch.testing.assert_close(out, expected)
    # the two starts coincide when the output is as big as the canvas
    assert torch.equal(training.st_cnn(28, seed=0).transformer.head.bias,
                       training.st_cnn(28, seed=0, start="identity").transformer.head.bias)
    with pytest.raises(ValueError, match="start"):
        training.st_cnn(42, start="centre")


def test_default_out_size_downsamples_at_most_one_and_a_half_times():
    assert [training.default_out_size(s) for s in (28, 42, 60, 90)] == [28, 28, 40, 60]
    assert training.st_cnn(60).transformer.out_size == (40, 40)
    assert training.st_cnn(42).transformer.out_size == (28, 28)
    assert training.st_cnn(60, out_size=28).transformer.out_size == (28, 28)


def test_localisation_features_are_batch_normalised_and_transform_runs_in_eval_mode():
    model = training.st_cnn(60, seed=0)
    norms = [m for m in model.transformer.localisation if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 1
    # with a non-zero head, theta depends on the input through the normalised features
    with torch.no_grad():
        model.transformer.head.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    x = data.distort(data.load_splits()[0][:16], "TC", torch.Generator().manual_seed(0))
    before = norms[0].running_mean.clone()
    model.train()
    _, theta, _ = model.transform(x[:1])  # one image: only possible in eval mode
    assert model.training  # the mode is restored
    torch.testing.assert_close(norms[0].running_mean, before)  # and the statistics untouched
    _, theta, _ = model.transform(x)
    assert theta.flatten(1).std(0).mean() > 1e-3


@pytest.mark.parametrize("transform", ["projective", "tps"])
def test_other_transforms_build_and_run(transform):
    model = training.st_cnn(42, transform=transform, seed=0)
    out = model(torch.rand(3, 1, 42, 42))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert abs(training.count_parameters(model) - training.count_parameters(training.st_cnn(42))) < 1000


def test_fit_on_a_tiny_budget_learns(tiny_r):
    train, test = tiny_r
    train_loader, test_loader = data.make_loaders(train, test, batch_size=32, seed=0)
    model = training.baseline_cnn(28, seed=0)
    before = training.evaluate(model, test_loader)
    history = training.fit(model, train_loader, test_loader, epochs=3, lr=2e-3, progress=False)
    assert set(history) == {"epoch", "loss", "train_error", "test_error", "test_loss", "time", "images_per_s"}
    assert history["epoch"] == [1, 2, 3]
    assert history["loss"][-1] < history["loss"][0] < math.log(10) + 0.1
    assert history["test_error"][-1] < 60 < before["error"]  # chance is 90 %
    assert all(v > 0 for v in history["images_per_s"]) and history["time"] == sorted(history["time"])
    assert train.epoch == 2  # fit asked the dataset for fresh distortions each epoch
    # the numbers in the history are those of evaluate()
    after = training.evaluate(model, test_loader)
    assert after["error"] == pytest.approx(history["test_error"][-1])
    assert after["loss"] == pytest.approx(history["test_loss"][-1], rel=1e-6)


def test_same_seed_same_test_error(tiny_r):
    train, test = tiny_r
    results = []
    for _ in range(2):
        train_loader, test_loader = data.make_loaders(train, test, batch_size=50, seed=4)
        model = training.st_cnn(28, seed=4)
        results.append(training.fit(model, train_loader, test_loader, epochs=1, progress=False, seed=4))
    assert results[0]["loss"] == results[1]["loss"]
    assert results[0]["test_error"] == results[1]["test_error"]


def test_transformer_lr_is_a_separate_param_group(tiny_r):
    """transformer_lr=0 leaves the localisation net and head exactly where they were; the classifier still trains."""
    train, test = tiny_r
    train_loader, _ = data.make_loaders(train, test, batch_size=100, seed=0)
    model = training.st_cnn(28, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    training.fit(model, train_loader, epochs=1, lr=2e-3, transformer_lr=0.0, progress=False)
    after = model.state_dict()
    for name, value in before.items():
        if name.startswith("transformer."):
            assert torch.equal(after[name], value), name
    assert not torch.equal(after["classifier.0.weight"], before["classifier.0.weight"])
    # without it, the transformer's head leaves the identity
    training.fit(model, train_loader, epochs=1, lr=2e-3, progress=False)
    assert not torch.equal(model.state_dict()["transformer.head.weight"], before["transformer.head.weight"])


def test_save_load_round_trip(tmp_path):
    x = torch.rand(4, 1, 42, 42)
    for model in (training.baseline_cnn(42, seed=1), training.st_cnn(42, transform="tps", seed=1),
                  training.baseline_cnn(42, seed=1, batch_norm=True)):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)  # not the freshly-initialised weights
        model.eval()
        path = tmp_path / f"{model.config['model']}.pt"
        training.save(model, path, history={"test_error": [12.5]})
        loaded = training.load(path)
        assert loaded.config == model.config
        assert loaded.extra == {"history": {"test_error": [12.5]}}
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="'cnn', 'stcnn'"):
        training.build_model("resnet", 28)
    with pytest.raises(ValueError, match="no .config"):
        training.save(nn.Linear(2, 2), tmp_path / "x.pt")
    torch.save({"weights": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="checkpoint written by"):
        training.load(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="at least 16"):
        training.classifier_trunk(12)
    with pytest.raises(ValueError, match="epochs"):
        training.fit(training.baseline_cnn(28), [], epochs=-1, progress=False)
