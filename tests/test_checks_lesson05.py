"""Mutation tests for the lesson 5 checks: the reference passes, known bugs fail."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stn_course.checks import run_check

from .check_helpers import get
from stn_course.data import paste_clutter, placement_theta
from stn_course.training import error_rate, theta_statistics
from .check_helpers import fails, passes


# ---------------------------------------------------------------------------------------------------- learners


def rts_theta(angle, scale, shift, in_size=28, out_size=42):
    rad = torch.deg2rad(angle)
    c, s = torch.cos(rad), torch.sin(rad)
    k = out_size / (in_size * scale)
    a = torch.stack([torch.stack([k * c, k * s], -1), torch.stack([-k * s, k * c], -1)], -2)
    t = 2 * shift / out_size
    return torch.cat([a, -(a @ t[..., None])], -1)


def rts_forward_rotation(angle, scale, shift, in_size=28, out_size=42):  # R(a) instead of R(-a)
    return rts_theta(-angle, scale, shift, in_size, out_size)


def rts_no_size_ratio(angle, scale, shift, in_size=28, out_size=42):  # forgets out_size / in_size
    return rts_theta(angle, scale * out_size / in_size, shift, in_size, out_size)


def rts_shift_not_rotated(angle, scale, shift, in_size=28, out_size=42):  # last column -2t/S, not -A 2t/S
    theta = rts_theta(angle, scale, torch.zeros_like(shift), in_size, out_size)
    return torch.cat([theta[..., :2], (-2 * shift / out_size)[..., None]], -1)


def rts_pixel_shift(angle, scale, shift, in_size=28, out_size=42):  # shift left in pixels
    theta = rts_theta(angle, scale, torch.zeros_like(shift), in_size, out_size)
    return torch.cat([theta[..., :2], -(theta[..., :2] @ shift[..., None])], -1)


def clutter(canvas, sources, source_index, crop_at, paste_at, crop=6):
    out = canvas.clone()
    for i in range(canvas.shape[0]):
        for j in range(source_index.shape[1]):
            r, c = crop_at[i, j].tolist()
            pr, pc = paste_at[i, j].tolist()
            piece = sources[source_index[i, j], 0, r:r + crop, c:c + crop]
            out[i, 0, pr:pr + crop, pc:pc + crop] = torch.maximum(out[i, 0, pr:pr + crop, pc:pc + crop], piece)
    return out


def clutter_sum(canvas, sources, source_index, crop_at, paste_at, crop=6):
    out = canvas.clone()
    for i in range(canvas.shape[0]):
        for j in range(source_index.shape[1]):
            r, c = crop_at[i, j].tolist()
            pr, pc = paste_at[i, j].tolist()
            out[i, 0, pr:pr + crop, pc:pc + crop] += sources[source_index[i, j], 0, r:r + crop, c:c + crop]
    return out


def clutter_xy_swapped(canvas, sources, source_index, crop_at, paste_at, crop=6):
    return clutter(canvas, sources, source_index, crop_at, paste_at.flip(-1), crop)


def clutter_overwrite(canvas, sources, source_index, crop_at, paste_at, crop=6):
    out = canvas.clone()
    for i in range(canvas.shape[0]):
        for j in range(source_index.shape[1]):
            r, c = crop_at[i, j].tolist()
            pr, pc = paste_at[i, j].tolist()
            out[i, 0, pr:pr + crop, pc:pc + crop] = sources[source_index[i, j], 0, r:r + crop, c:c + crop]
    return out


def clutter_in_place(canvas, sources, source_index, crop_at, paste_at, crop=6):
    out = clutter(canvas, sources, source_index, crop_at, paste_at, crop)
    canvas.copy_(out)
    return canvas


def stcnn_forward(x, localisation, head, classifier, out_size):
    theta = head(localisation(x).flatten(1)).view(-1, 2, 3)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def stcnn_column_major(x, localisation, head, classifier, out_size):
    theta = head(localisation(x).flatten(1)).view(-1, 3, 2).transpose(1, 2)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def stcnn_align_corners(x, localisation, head, classifier, out_size):
    theta = head(localisation(x).flatten(1)).view(-1, 2, 3)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=True)
    return classifier(F.grid_sample(x, grid, align_corners=True))


def stcnn_no_head(x, localisation, head, classifier, out_size):  # forgets the regression head: identity theta
    theta = torch.eye(2, 3).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def error_fraction(logits, labels):
    return error_rate(logits, labels) / 100


def accuracy_percent(logits, labels):
    return 100 - error_rate(logits, labels)


def error_argmax_dim0(logits, labels):
    return 100.0 * (logits.argmax(0)[: len(labels)] != labels).float().mean().item()


def stats_no_sign_flip(theta):
    zoom, rotation, shift = theta_statistics(theta)
    return zoom, -rotation, shift


def stats_zoom_det(theta):
    zoom, rotation, shift = theta_statistics(theta)
    return 1 / zoom, rotation, shift


def stats_atan_a10(theta):  # uses only A10 / A00: wrong for shears and angles beyond ±90°
    a = theta[:, :, :2]
    zoom, _, shift = theta_statistics(theta)
    return zoom, -torch.rad2deg(torch.atan(a[:, 1, 0] / a[:, 0, 0])), shift


def stats_radians(theta):
    zoom, rotation, shift = theta_statistics(theta)
    return zoom, rotation * math.pi / 180, shift


# ---------------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("check_id, fn", [
    ("05.rts_theta", placement_theta), ("05.rts_theta", rts_theta),
    ("05.paste_clutter", paste_clutter), ("05.paste_clutter", clutter),
    ("05.stcnn_forward", stcnn_forward),
    ("05.error_rate", error_rate),
    ("05.theta_statistics", theta_statistics),
])
def test_reference_and_correct_learners_pass(check_id, fn):
    assert passes(check_id, fn)


@pytest.mark.parametrize("check_id, bug", [
    ("05.rts_theta", rts_forward_rotation),
    ("05.rts_theta", rts_no_size_ratio),
    ("05.rts_theta", rts_shift_not_rotated),
    ("05.rts_theta", rts_pixel_shift),
    ("05.paste_clutter", clutter_sum),
    ("05.paste_clutter", clutter_xy_swapped),
    ("05.paste_clutter", clutter_overwrite),
    ("05.stcnn_forward", stcnn_column_major),
    ("05.stcnn_forward", stcnn_align_corners),
    ("05.stcnn_forward", stcnn_no_head),
    ("05.error_rate", error_fraction),
    ("05.error_rate", accuracy_percent),
    ("05.error_rate", error_argmax_dim0),
    ("05.theta_statistics", stats_no_sign_flip),
    ("05.theta_statistics", stats_zoom_det),
    ("05.theta_statistics", stats_atan_a10),
    ("05.theta_statistics", stats_radians),
])
def test_known_bugs_fail(check_id, bug):
    result = run_check(get(check_id), bug, seed=0)
    assert not result.passed
    assert result.first_failure.message


def test_in_place_clutter_fails_because_the_docstring_says_it_returns_a_new_tensor():
    """Right numbers, but the caller's canvas is overwritten: the check probes the inputs after the call."""
    assert fails("05.paste_clutter", clutter_in_place)
    failure = run_check(get("05.paste_clutter"), clutter_in_place, seed=0).first_failure
    assert failure.property == "input modified" and "argument 1 changed" in failure.message


def stcnn_theta_without_grad(x, localisation, head, classifier, out_size):
    """A transformer that can never learn: θ computed under no_grad (the values are right)."""
    with torch.no_grad():
        theta = head(localisation(x).flatten(1)).view(-1, 2, 3)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def stcnn_grid_detached(x, localisation, head, classifier, out_size):
    theta = head(localisation(x).flatten(1)).view(-1, 2, 3)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False).detach()
    return classifier(F.grid_sample(x, grid, align_corners=False))


def stcnn_by_hand(x, localisation, head, classifier, out_size):
    """Written differently: θ by matmul with the head's weights, the grid from pixel centres by hand."""
    theta = (localisation(x).flatten(1) @ head.weight.T + head.bias).reshape(x.shape[0], 2, 3)
    centres = (2 * torch.arange(out_size, dtype=x.dtype) + 1) / out_size - 1
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    base = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)
    grid = (base @ theta.transpose(1, 2)).reshape(x.shape[0], out_size, out_size, 2)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def test_stcnn_forward_needs_the_gradient_through_theta():
    assert passes("05.stcnn_forward", stcnn_by_hand)
    for bug in (stcnn_theta_without_grad, stcnn_grid_detached):
        assert fails("05.stcnn_forward", bug), bug.__name__
        message = run_check(get("05.stcnn_forward"), bug, seed=0).first_failure.message
        assert "gradient w.r.t. argument 1" in message


@pytest.mark.parametrize("spelling", [
    lambda logits, labels: 100.0 * (logits.argmax(1) != labels).sum().item() / len(labels),
    lambda logits, labels: 100.0 * (logits.argmax(1) != labels).float().mean().item(),
    lambda logits, labels: ((logits.argmax(1) != labels).float().mean() * 100).item(),
    lambda logits, labels: (logits.argmax(1) != labels).double().mean().item() * 100,
    lambda logits, labels: 100 * (1 - (logits.argmax(1) == labels).float().mean().item()),
    lambda logits, labels: float(sum(int(p != t) for p, t in zip(logits.argmax(1), labels)) * 100 / len(labels)),
], ids=["count over n", "float32 mean", "float32 tensor times 100", "float64 mean", "one minus accuracy", "loop"])
def test_every_correct_spelling_of_the_error_rate_passes(spelling):
    assert passes("05.error_rate", spelling)
    assert passes("05.error_rate", spelling, seeds=range(20, 30))


def test_the_error_rate_is_a_python_float_to_a_fraction_of_one_example():
    assert fails("05.error_rate", lambda logits, labels: 100 * (logits.argmax(1) != labels).float().mean())
    one_example_off = lambda logits, labels: error_rate(logits, labels) + 100 / len(labels)  # noqa: E731
    assert fails("05.error_rate", one_example_off)


def test_stub_reports_not_implemented():
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = run_check(get("05.rts_theta"), stub, seed=0)
    assert not result.passed and "not implemented" in result.first_failure.message
