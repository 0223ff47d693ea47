"""stn_course.images: Matplotlib's sample images as tensors, and the synthetic test images."""
from __future__ import annotations

import os

import matplotlib
import matplotlib.image
import numpy as np
import pytest
import torch

from stn_course.images import IMAGES, checkerboard, grid_image, image_path, list_images, sample_image


def _raw(name):
    return matplotlib.image.imread(os.path.join(matplotlib.get_data_path(), "sample_data", IMAGES[name]))


def test_list_images_names_every_file_and_the_files_exist():
    assert list_images() == sorted(["grace_hopper", "present", "logo"])
    for name in list_images():
        assert os.path.exists(image_path(name))


def test_unknown_name_raises_a_clear_error():
    with pytest.raises(ValueError, match="unknown sample image 'lena'.*'grace_hopper'"):
        sample_image("lena")


def test_photo_matches_the_file_exactly():
    image = sample_image("grace_hopper")
    raw = _raw("grace_hopper")  # (600, 512, 3) uint8
    assert image.shape == (1, 3, 600, 512) and image.dtype == torch.float32
    expected = torch.from_numpy(raw.astype(np.float32) / 255.0).permute(2, 0, 1)
    torch.testing.assert_close(image[0], expected, rtol=0, atol=0)


def test_transparency_is_composited_onto_white():
    raw = _raw("present")  # (128, 128, 4) float RGBA
    image = sample_image("present")[0].permute(1, 2, 0).numpy()
    alpha = raw[..., 3:]
    np.testing.assert_allclose(image, raw[..., :3] * alpha + (1 - alpha), atol=1e-6)
    transparent = alpha[..., 0] == 0
    assert transparent.any() and np.all(image[transparent] == 1.0)


def test_int_size_sets_the_longer_side_and_keeps_the_aspect_ratio():
    assert sample_image("logo", size=64).shape == (1, 3, round(130 * 64 / 542), 64)  # 130 × 542 -> 15 × 64
    assert sample_image("grace_hopper", size=60).shape == (1, 3, 60, round(512 * 60 / 600))


def test_exact_size_and_values_stay_in_range_with_the_mean_preserved():
    small = sample_image("grace_hopper", size=(30, 20))
    assert small.shape == (1, 3, 30, 20)
    assert small.min() >= 0 and small.max() <= 1
    # antialiased downsizing averages: the mean colour barely moves
    torch.testing.assert_close(small.mean((2, 3)), sample_image("grace_hopper").mean((2, 3)), rtol=0, atol=0.01)


def test_gray_uses_the_bt601_weights():
    rgb = sample_image("present", size=32)
    gray = sample_image("present", size=32, gray=True)
    assert gray.shape == (1, 1, 32, 32)
    expected = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    torch.testing.assert_close(gray[:, 0], expected, rtol=0, atol=1e-6)


def test_dtype_and_device_are_honoured():
    image = sample_image("logo", size=16, dtype=torch.float64, device="cpu")
    assert image.dtype == torch.float64 and image.device.type == "cpu"


@pytest.mark.parametrize("size, error", [(0, ValueError), ((10, -1), ValueError), ("big", TypeError)])
def test_bad_sizes_raise(size, error):
    with pytest.raises(error, match="size"):
        sample_image(size=size)


def test_checkerboard_values():
    board = checkerboard(3, 5, square=2)
    assert board.shape == (1, 1, 3, 5)
    ys, xs = np.mgrid[0:3, 0:5]
    expected = ((xs // 2 + ys // 2) % 2 == 0).astype(np.float32)
    np.testing.assert_array_equal(board[0, 0].numpy(), expected)
    assert checkerboard(1)[0, 0, 0, 0] == 1.0
    with pytest.raises(ValueError, match="positive"):
        checkerboard(0)


def test_grid_image_has_lines_on_every_border():
    paper = grid_image(10, 13, spacing=4)[0, 0]
    dark = paper < 0.5
    assert dark[0].all() and dark[-1].all() and dark[:, 0].all() and dark[:, -1].all()
    assert dark[4].all() and dark[:, 8].all()  # every `spacing` pixels
    assert not dark[1, 1] and not dark[2, 5]
    np.testing.assert_allclose(np.unique(paper.numpy()), [0.15, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        grid_image(8, spacing=0)
