"""The answers of the lessons' inline questions that a computation can back (the rest is reasoning)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stn_course import affine
from stn_course.deform import deform_conv2d, pack_offsets


def test_lesson01_a_translation_right_gives_a_negative_theta_shift_of_20_over_w():
    h, w = 48, 64
    theta = affine.pixel_to_theta(affine.invert(affine.translation(10.0, 0.0).double()), (h, w), align_corners=False)
    assert math.isclose(theta[0, 2].item(), -20 / w, rel_tol=1e-12) and abs(theta[1, 2].item()) < 1e-12


def test_lesson01_a_quarter_turn_on_a_non_square_image_scales_the_off_diagonal_by_the_aspect_ratio():
    h, w = 48, 64
    c = ((w - 1) / 2, (h - 1) / 2)
    motion = affine.compose(affine.translation(*c), affine.rotation(90.0, degrees=True),
                            affine.translation(-c[0], -c[1])).double()
    theta = affine.pixel_to_theta(affine.invert(motion), (h, w), align_corners=False)
    off = sorted([abs(theta[0, 1].item()), abs(theta[1, 0].item())])
    assert math.isclose(off[0], h / w, rel_tol=1e-6) and math.isclose(off[1], w / h, rel_tol=1e-6)
    assert abs(theta[0, 0].item()) < 1e-6 and abs(theta[1, 1].item()) < 1e-6
    # toggling align_corners changes theta, not the pixels it reads
    image = torch.rand(1, 1, h, w, dtype=torch.float64)
    thetas, outputs = [], []
    for ac in (False, True):
        thetas.append(affine.pixel_to_theta(affine.invert(motion), (h, w), align_corners=ac))
        grid = F.affine_grid(thetas[-1][None], (1, 1, h, w), align_corners=ac)
        outputs.append(F.grid_sample(image, grid, mode="bilinear", align_corners=ac))
    assert not torch.allclose(thetas[0], thetas[1])
    torch.testing.assert_close(outputs[0], outputs[1])


def test_lesson06_offsets_i_minus_1_j_minus_1_make_a_dilated_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 11, 10, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    i, j = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
    dy = (i - 1).reshape(1, 1, 9, 1, 1).expand(2, 1, 9, 11, 10).double()
    dx = (j - 1).reshape(1, 1, 9, 1, 1).expand(2, 1, 9, 11, 10).double()
    deformable = deform_conv2d(x, pack_offsets(dy, dx), weight, padding=1)
    torch.testing.assert_close(deformable, F.conv2d(x, weight, padding=2, dilation=2))


def test_every_lesson_asks_inline_questions_with_folded_answers():
    import re
    from pathlib import Path

    for source in sorted((Path(__file__).resolve().parents[1] / "solutions" / "src").glob("0*.py")):
        text = source.read_text()
        section = text.split("# ### Questions", 1)[1].split("# ## Takeaways", 1)[0]
        questions = re.findall(r"^# \*\*\d+\.\*\* ", section, re.M)
        answers = re.findall(r"<details><summary>Answer</summary>", section)
        assert len(questions) >= 2 and len(answers) == len(questions), source.name
