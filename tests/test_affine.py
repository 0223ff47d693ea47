"""stn_course.affine: builders, composition and inverse properties, pixel <-> theta conversions."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from stn_course import affine
from stn_course.grids import affine_grid
from stn_course.sampling import bilinear_sample

angles = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)
scales = st.floats(0.2, 5.0)
shifts = st.floats(-10, 10)
shears = st.floats(-2, 2)


def _random_affine(angle, s, sh, tx, ty):
    return affine.compose(affine.translation(tx, ty), affine.rotation(angle), affine.shear(sh), affine.scaling(s, 1 / s))


def test_builders_match_closed_forms():
    torch.testing.assert_close(affine.scaling(2.0, 3.0), torch.diag(torch.tensor([2.0, 3.0, 1.0])))
    torch.testing.assert_close(affine.translation(1.0, -2.0)[:2, 2], torch.tensor([1.0, -2.0]))
    c, s = math.cos(0.3), math.sin(0.3)
    torch.testing.assert_close(affine.rotation(0.3), torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]))
    torch.testing.assert_close(affine.rotation(90, degrees=True), affine.rotation(math.pi / 2))
    torch.testing.assert_close(affine.shear(0.5)[0, 1], torch.tensor(0.5))


def test_rotation_turns_points_clockwise_on_screen():
    """y points down: +90° sends the point right of the origin (1, 0) to below it (0, 1)."""
    p = affine.apply(affine.rotation(90, degrees=True), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(p, torch.tensor([[0.0, 1.0]]), atol=1e-6, rtol=0)


def test_composition_order_matters_and_applies_right_to_left():
    point = torch.tensor([[1.0, 0.0]])
    t, r = affine.translation(2.0, 0.0), affine.rotation(90, degrees=True)
    # compose(T, R): rotate first (to (0, 1)), then translate -> (2, 1)
    torch.testing.assert_close(affine.apply(affine.compose(t, r), point), torch.tensor([[2.0, 1.0]]), atol=1e-6, rtol=0)
    # compose(R, T): translate first (to (3, 0)), then rotate -> (0, 3)
    torch.testing.assert_close(affine.apply(affine.compose(r, t), point), torch.tensor([[0.0, 3.0]]), atol=1e-6, rtol=0)


@settings(max_examples=60, deadline=None)
@given(angles, scales, shears, shifts, shifts)
def test_inverse_undoes_the_transform(angle, s, sh, tx, ty):
    m = _random_affine(angle, s, sh, tx, ty).double()
    torch.testing.assert_close(affine.compose(m, affine.invert(m)), torch.eye(3, dtype=torch.float64), atol=1e-9, rtol=0)
    theta = m[:2]
    torch.testing.assert_close(affine.invert(affine.invert(theta)), theta, atol=1e-8, rtol=1e-8)


@settings(max_examples=60, deadline=None)
@given(angles, angles, scales, scales)
def test_rotations_and_scalings_compose_additively_and_multiplicatively(a, b, s, t):
    torch.testing.assert_close(affine.compose(affine.rotation(a), affine.rotation(b)).double(),
                               affine.rotation(a + b).double(), atol=1e-5, rtol=0)
    torch.testing.assert_close(affine.compose(affine.scaling(s), affine.scaling(t)), affine.scaling(s * t))


def test_batched_builders():
    angles_ = torch.tensor([0.0, math.pi / 2, math.pi], dtype=torch.float64)
    r = affine.rotation(angles_)
    assert r.shape == (3, 3, 3) and r.dtype == torch.float64
    torch.testing.assert_close(r[1], affine.rotation(math.pi / 2).double())
    t = affine.translation(torch.tensor([1.0, 2.0]), 0.0)
    assert t.shape == (2, 3, 3)
    assert affine.compose(r[:2], t).shape == (2, 3, 3)
    theta = affine.from_homogeneous(r)
    assert theta.shape == (3, 2, 3)
    torch.testing.assert_close(affine.to_homogeneous(theta), r)


def test_apply_points_and_homogeneous_round_trip():
    pts = torch.tensor([[0.0, 0.0], [2.0, 1.0]])
    torch.testing.assert_close(affine.apply(affine.translation(1.0, 1.0), pts), pts + 1)
    torch.testing.assert_close(affine.apply(affine.translation(1.0, 1.0)[:2], pts), pts + 1)


@pytest.mark.parametrize("align_corners", [False, True])
def test_normalization_matrix_maps_pixel_centres_and_edges(align_corners):
    n = affine.normalization_matrix((4, 8), align_corners, torch.float64)
    corners = torch.tensor([[0.0, 0.0], [7.0, 3.0]], dtype=torch.float64)
    mapped = affine.apply(n, corners)
    if align_corners:  # centres of the end pixels are ±1
        torch.testing.assert_close(mapped, torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=torch.float64))
    else:  # edges are ±1: pixel 0's centre is at -1 + 1/W
        torch.testing.assert_close(mapped, torch.tensor([[-1 + 1 / 8, -1 + 1 / 4], [1 - 1 / 8, 1 - 1 / 4]],
                                                        dtype=torch.float64))


@pytest.mark.parametrize("align_corners", [False, True])
def test_normalization_matches_affine_grid_base_grid(align_corners):
    """Pixel (x, y) -> normalized via the matrix equals the identity grid of F.affine_grid at that pixel."""
    h, w = 5, 7
    grid = F.affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], (1, 1, h, w), align_corners=align_corners)[0]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    pixels = torch.stack([xs, ys], -1).view(-1, 2)
    mapped = affine.apply(affine.normalization_matrix((h, w), align_corners, torch.float64), pixels)
    torch.testing.assert_close(mapped.view(h, w, 2), grid)


@pytest.mark.parametrize("align_corners", [False, True])
def test_pixel_translation_becomes_a_theta_that_shifts_the_image(align_corners):
    """Reading from input pixel (x + 2, y - 1): the output is the input shifted left by 2 and down by 1."""
    x = torch.rand(1, 1, 6, 9, dtype=torch.float64)
    theta = affine.pixel_to_theta(affine.translation(2.0, -1.0).double(), (6, 9), align_corners=align_corners)
    out = bilinear_sample(x, affine_grid(theta[None], x.shape, align_corners), "zeros", align_corners)
    expected = torch.zeros_like(x)
    expected[..., 1:, :-2] = x[..., :-1, 2:]
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


@settings(max_examples=40, deadline=None)
@given(angles, scales, shears, shifts, shifts, st.booleans())
def test_theta_and_pixel_matrices_round_trip(angle, s, sh, tx, ty, align_corners):
    m = _random_affine(angle, s, sh, tx, ty).double()
    theta = affine.pixel_to_theta(m, (12, 20), (7, 9), align_corners)
    torch.testing.assert_close(affine.theta_to_pixel(theta, (12, 20), (7, 9), align_corners), m, atol=1e-9, rtol=1e-9)


def test_pixel_theta_is_consistent_with_sampling_at_pixel_coordinates():
    """The grid of pixel_to_theta(A), unnormalized, equals A applied to the output pixel coordinates."""
    a = affine.compose(affine.translation(3.0, 1.0), affine.rotation(0.4), affine.scaling(1.3, 0.8)).double()
    in_size, out_size = (10, 14), (6, 5)
    for align_corners in (False, True):
        grid = affine_grid(affine.pixel_to_theta(a, in_size, out_size, align_corners)[None], (1, 1) + out_size,
                           align_corners)[0]
        ys, xs = torch.meshgrid(torch.arange(6.0, dtype=torch.float64), torch.arange(5.0, dtype=torch.float64),
                                indexing="ij")
        expected = affine.apply(affine.compose(affine.normalization_matrix(in_size, align_corners, torch.float64), a),
                                torch.stack([xs, ys], -1).view(-1, 2)).view(6, 5, 2)
        torch.testing.assert_close(grid, expected)


def test_one_pixel_axes_with_align_corners():
    """A 1-pixel side has its only centre at 0 in both conventions; the conversions stay finite."""
    x = torch.rand(1, 2, 1, 5, dtype=torch.float64)
    for align_corners in (False, True):
        theta = affine.pixel_to_theta(torch.eye(3, dtype=torch.float64), (1, 5), align_corners=align_corners)
        assert torch.isfinite(theta).all()
        out = bilinear_sample(x, affine_grid(theta[None], x.shape, align_corners), "zeros", align_corners)
        torch.testing.assert_close(out, x)


def test_bad_input_is_rejected_with_clear_messages():
    with pytest.raises(ValueError, match=r"\(N, 3, 3\)"):
        affine.compose(torch.eye(2))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        affine.to_homogeneous(torch.eye(3))
    with pytest.raises(ValueError, match="projective"):
        affine.from_homogeneous(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0.1, 0, 1]]))
    with pytest.raises(TypeError, match="floating-point"):
        affine.invert(torch.eye(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(…, P, 2\)"):
        affine.apply(torch.eye(3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="positive"):
        affine.normalization_matrix((0, 3))
    with pytest.raises(ValueError, match="at least one"):
        affine.compose()
