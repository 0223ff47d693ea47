"""Mutation tests for the lesson 5 checks: the reference passes, known bugs fail."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course.checks import format_result, run_check
from stn_course.checks.lesson05 import CANVAS_PROPERTY

from .check_helpers import get
from stn_course.data import paste_clutter, placement_theta
from stn_course.training import theta_statistics
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


def clutter_flat(canvas, sources, source_index, crop_at, paste_at, crop=6, row_stride=None, reduce="amax",
                 copy=True, include_self=True):
    """The exercise's loop-free version; ``row_stride``, ``include_self`` and ``copy`` plant the colleague's three
    bugs (``reduce="sum"`` another classic)."""
    n, _, s, _ = canvas.shape
    ar = torch.arange(crop)
    rows, cols = (crop_at[..., 0:1] + ar)[..., :, None], (crop_at[..., 1:2] + ar)[..., None, :]
    pieces = sources[:, 0][source_index[..., None, None], rows, cols]
    target = (paste_at[..., 0:1] + ar)[..., :, None] * (row_stride or s) + (paste_at[..., 1:2] + ar)[..., None, :]
    out = canvas.reshape(n, s * s)
    out = out.clone() if copy else out
    out.scatter_reduce_(1, target.reshape(n, -1), pieces.reshape(n, -1), reduce=reduce, include_self=include_self)
    return out.view(n, 1, s, s)


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


def stcnn_batch_scrambled(x, localisation, head, classifier, out_size):  # the colleague's: right for one image
    theta = head(localisation(x).flatten(1)).reshape(2, 3, -1).permute(2, 0, 1)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def stcnn_conventions_mixed(x, localisation, head, classifier, out_size):  # the colleague's: grid True, sampler False
    theta = head(localisation(x).flatten(1)).view(-1, 2, 3)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=True)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def stcnn_no_head(x, localisation, head, classifier, out_size):  # forgets the regression head: identity theta
    theta = torch.eye(2, 3).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def chance_level(train_labels, test_labels, classes):
    """Written out by hand in plain Python: the training shares p, the held-out shares r, −Σ r log p, 1 − r[argmax p]."""
    p = [c / len(train_labels) for c in torch.bincount(train_labels, minlength=classes).tolist()]
    r = [c / len(test_labels) for c in torch.bincount(test_labels, minlength=classes).tolist()]
    loss = -sum(rc * math.log(pc) for rc, pc in zip(r, p) if rc)
    return loss, 100.0 * (1 - r[p.index(max(p))])


def chance_equal_logits(train_labels, test_labels, classes):  # equal logits, not the best constant ones
    return math.log(classes), chance_level(train_labels, test_labels, classes)[1]


def chance_log2(train_labels, test_labels, classes):  # bits, not the natural log of F.cross_entropy
    loss, error = chance_level(train_labels, test_labels, classes)
    return loss / math.log(2), error


def chance_uniform_error(train_labels, test_labels, classes):  # the error of guessing at random
    return chance_level(train_labels, test_labels, classes)[0], 100.0 * (1 - 1 / classes)


def chance_class_zero(train_labels, test_labels, classes):  # always answering class 0 – not the most frequent one
    return (chance_level(train_labels, test_labels, classes)[0],
            100.0 * (1 - (test_labels == 0).float().mean().item()))


def chance_fitted_to_test(train_labels, test_labels, classes):  # the optimistic floor: a constant fitted to the test
    return chance_level(test_labels, test_labels, classes)


def chance_test_majority(train_labels, test_labels, classes):  # the held-out labels' own majority answer
    return chance_level(train_labels, test_labels, classes)[0], chance_level(test_labels, test_labels, classes)[1]


def chance_test_entropy(train_labels, test_labels, classes):  # the held-out entropy with the right error
    return chance_level(test_labels, test_labels, classes)[0], chance_level(train_labels, test_labels, classes)[1]


def chance_training_error(train_labels, test_labels, classes):  # scored on the labels it was trained on
    return chance_level(train_labels, test_labels, classes)[0], chance_level(train_labels, train_labels, classes)[1]


def chance_training_loss(train_labels, test_labels, classes):  # the training loss of the best constant
    return chance_level(train_labels, train_labels, classes)[0], chance_level(train_labels, test_labels, classes)[1]


def chance_last_of_tied(train_labels, test_labels, classes):  # a tie broken to the last tied class
    counts = torch.bincount(train_labels, minlength=classes)
    last = int(torch.nonzero(counts == counts.max())[-1, 0])
    return (chance_level(train_labels, test_labels, classes)[0],
            100.0 * (1 - (test_labels == last).double().mean().item()))


def chance_copied(train_labels, test_labels, classes):  # the lesson's numbers, copied
    return math.log(10), 90.0


def stats(theta):
    """An independent reading (not the package's, which the exercise forbids): det for the zoom, the least-squares
    zoom-and-turn (c, s) = argmin ‖A − [[c, −s], [s, c]]‖² by lstsq for the rotation, the last column for the view."""
    a = theta[:, :, :2]
    zoom = torch.linalg.det(a).abs() ** -0.5
    basis = torch.tensor([[1.0, 0, 0, 1], [0, -1, 1, 0]], dtype=theta.dtype).T  # vec(I), vec(J): A ≈ c I + s J
    cs = torch.linalg.lstsq(basis.expand(len(theta), 4, 2), a.reshape(-1, 4, 1)).solution[..., 0]
    return zoom, -torch.rad2deg(torch.atan2(cs[:, 1], cs[:, 0])), theta[:, :, 2].clone()


def stats_no_sign_flip(theta):
    zoom, rotation, shift = stats(theta)
    return zoom, -rotation, shift


def stats_zoom_det(theta):
    zoom, rotation, shift = stats(theta)
    return 1 / zoom, rotation, shift


def stats_atan_a10(theta):  # uses only A10 / A00: wrong for shears and angles beyond ±90°
    a = theta[:, :, :2]
    zoom, _, shift = stats(theta)
    return zoom, -torch.rad2deg(torch.atan(a[:, 1, 0] / a[:, 0, 0])), shift


def stats_radians(theta):
    zoom, rotation, shift = stats(theta)
    return zoom, rotation * math.pi / 180, shift


# ---------------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("check_id, fn", [
    ("05.rts_theta", placement_theta), ("05.rts_theta", rts_theta),
    ("05.paste_clutter", paste_clutter), ("05.paste_clutter", clutter),
    ("05.stcnn_forward", stcnn_forward),
    ("05.chance_level", chance_level),
    ("05.theta_statistics", theta_statistics), ("05.theta_statistics", stats),
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
    ("05.stcnn_forward", stcnn_batch_scrambled),
    ("05.stcnn_forward", stcnn_conventions_mixed),
    ("05.chance_level", chance_equal_logits),
    ("05.chance_level", chance_log2),
    ("05.chance_level", chance_uniform_error),
    ("05.chance_level", chance_class_zero),
    ("05.chance_level", chance_fitted_to_test),
    ("05.chance_level", chance_test_majority),
    ("05.chance_level", chance_test_entropy),
    ("05.chance_level", chance_training_error),
    ("05.chance_level", chance_training_loss),
    ("05.theta_statistics", stats_no_sign_flip),
    ("05.theta_statistics", stats_zoom_det),
    ("05.theta_statistics", stats_atan_a10),
    ("05.theta_statistics", stats_radians),
])
def test_known_bugs_fail(check_id, bug):
    result = run_check(get(check_id), bug, seed=0)
    assert not result.passed
    assert result.first_failure.message and "which is what this exercise asks you" not in result.first_failure.message


def test_each_of_the_colleague_s_clutter_bugs_fails_alone():
    assert passes("05.paste_clutter", clutter_flat)
    assert fails("05.paste_clutter", lambda c, s, i, a, p, crop=6: clutter_flat(c, s, i, a, p, crop,
                                                                               row_stride=s.shape[-1]))
    assert fails("05.paste_clutter", lambda *args, crop=6: clutter_flat(*args, crop=crop, include_self=False))
    assert fails("05.paste_clutter", lambda *args, crop=6: clutter_flat(*args, crop=crop, reduce="sum"))
    failure = run_check(get("05.paste_clutter"), lambda *args, crop=6: clutter_flat(*args, crop=crop, copy=False),
                        seed=0).first_failure
    assert failure.property == CANVAS_PROPERTY


def test_clutter_names_a_forgotten_canvas_and_strokes_that_add_up_without_a_value():
    from stn_course.checks.lesson05 import ADDED_UP, CANVAS_FORGOTTEN
    forgets = run_check(get("05.paste_clutter"), lambda *args, crop=6: clutter_flat(*args, crop=crop,
                                                                                   include_self=False), seed=0)
    assert CANVAS_FORGOTTEN in forgets.first_failure.message
    results = [run_check(get("05.paste_clutter"), clutter_sum, seed=s, stop_at_first_failure=False) for s in (0, 1)]
    assert any(ADDED_UP in r.message for result in results for r in result.results if not r.passed)
    for bug in (clutter_xy_swapped, clutter_overwrite):  # misplaced or overwritten pieces are not called either
        message = run_check(get("05.paste_clutter"), bug, seed=0).first_failure.message
        assert CANVAS_FORGOTTEN not in message and ADDED_UP not in message, bug.__name__


def test_chance_level_names_the_kind_of_slip():
    from stn_course.checks.lesson05 import CHANCE_SLIPS
    named = {chance_equal_logits: "equal", chance_log2: "bits", chance_uniform_error: "random guess",
             chance_test_majority: "held-out majority", chance_test_entropy: "held-out fit",
             chance_training_error: "training error", chance_training_loss: "training loss",
             chance_last_of_tied: "tie"}
    for bug, slip in named.items():
        assert CHANCE_SLIPS[slip] in run_check(get("05.chance_level"), bug, seed=0).first_failure.message, slip
    assert all(not any(ch.isdigit() for ch in words) for words in CHANCE_SLIPS.values())


def test_chance_level_s_first_case_is_the_text_s_prediction():
    """70/30 in training, 40/60 held out: the natural answers (the coin flip, the held-out majority, the training
    error) all fail there, each with its slip named."""
    from stn_course.checks.lesson05 import CHANCE_SLIPS
    from stn_course.checks.calls import iter_cases
    first = next(iter_cases(get("05.chance_level"), seed=0))
    train, test, classes = first.args
    assert classes == 2 and train.bincount().tolist() == [70, 30] and test.bincount().tolist() == [40, 60]
    coin_flip = lambda tr, te, c: (math.log(2), 50.0)  # noqa: E731
    failure = run_check(get("05.chance_level"), coin_flip, seed=0).first_failure
    assert failure.case.description == first.description
    assert CHANCE_SLIPS["equal"] in failure.message and CHANCE_SLIPS["random guess"] in failure.message


def test_in_place_clutter_fails_because_the_docstring_says_it_returns_a_new_tensor():
    """Right numbers, but the caller's canvas is overwritten: the check probes the inputs after the call."""
    assert fails("05.paste_clutter", clutter_in_place)
    result = run_check(get("05.paste_clutter"), clutter_in_place, seed=0)
    failure = result.first_failure
    assert failure.property == CANVAS_PROPERTY and "argument 1 changed" in failure.message
    shown = format_result(result)  # what the learner reads, "Why:" included: what goes wrong, not the fix
    assert "argument 1 changed" in shown and "clone" not in shown and "copy" not in shown


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


def test_chance_level_never_shows_the_answer_and_a_copied_one_fails_the_hidden_cases():
    for bug in (chance_equal_logits, chance_log2, chance_uniform_error, chance_class_zero, chance_fitted_to_test):
        text = format_result(run_check(get("05.chance_level"), bug, seed=0))
        assert "not this one" in text and "2.30" not in text and "90" not in text and "2.0" not in text
    assert passes("05.chance_level", chance_level, seeds=range(20, 24))
    assert all(run_check(get("05.chance_level"), chance_level, s, hidden=True).passed for s in (0, 1))
    assert not any(run_check(get("05.chance_level"), chance_copied, s, hidden=True).passed for s in (0, 1))


def stats_view_centre_away(theta):  # the inverse-warp trap: where the view looks, pointing away
    zoom, rotation, shift = stats(theta)
    return zoom, rotation, -shift


def stats_view_centre_inverse(theta):  # -A⁻¹ t: where the canvas centre lands in the output, not where the view looks
    zoom, rotation, _ = stats(theta)
    return zoom, rotation, -torch.linalg.solve(theta[:, :, :2], theta[:, :, 2:])[..., 0]


def stats_zoom_column_length(theta):  # the first column's length: right for a zoom-and-turn, wrong under a shear
    _, rotation, shift = stats(theta)
    return 1 / theta[:, :, 0].norm(dim=1), rotation, shift


def test_theta_statistics_reads_where_the_view_looks_not_where_the_canvas_centre_lands():
    """The merged centring question: the third output is θ's last column, pointing towards the digit; the two
    classic slips fail on the visible cases (the ST-CNN's start window, exercise 1's thetas), not only hidden."""
    for bug in (stats_view_centre_away, stats_view_centre_inverse, stats_zoom_column_length):
        failure = run_check(get("05.theta_statistics"), bug, seed=0).first_failure
        assert failure is not None and "uses stn_course" not in failure.message, bug.__name__
    assert all(run_check(get("05.theta_statistics"), theta_statistics, s, hidden=True).passed for s in (0, 1))
    window = torch.tensor([[[28 / 42, 0, 0.3], [0, 28 / 42, -0.2]]], dtype=torch.float64)
    assert torch.equal(theta_statistics(window)[2], torch.tensor([[0.3, -0.2]], dtype=torch.float64))
    turned = placement_theta(torch.tensor([30.0], dtype=torch.float64), torch.ones(1, dtype=torch.float64),
                             torch.zeros(1, 2, dtype=torch.float64))
    assert theta_statistics(turned)[1].item() == pytest.approx(30.0)  # exercise 1's angle reads back as itself


def stcnn_features_data(x, localisation, head, classifier, out_size):
    """The colleague's third bug: ``.data`` on the features – the head learns, the localisation net never does."""
    theta = head(localisation(x).flatten(1).data).view(-1, 2, 3)
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], out_size, out_size), align_corners=False)
    return classifier(F.grid_sample(x, grid, align_corners=False))


def stcnn_colleague(x, localisation, head, classifier, out_size):
    """The lesson's colleague_stcnn_forward, all three bugs (grid and sampler both in the other convention)."""
    n, c = x.shape[:2]
    theta = head(localisation(x).flatten(1).data).reshape(2, 3, -1).permute(2, 0, 1)
    grid = F.affine_grid(theta, (n, c, out_size, out_size), align_corners=True)
    return classifier(F.grid_sample(x, grid, align_corners=True))


def test_stcnn_forward_catches_each_of_the_colleague_s_bugs_and_the_cut_gradient_says_so():
    for bug in (stcnn_colleague, stcnn_batch_scrambled, stcnn_conventions_mixed, stcnn_features_data,
                stcnn_align_corners):
        assert fails("05.stcnn_forward", bug), bug.__name__
        assert not run_check(get("05.stcnn_forward"), bug, seed=1, hidden=True).passed, bug.__name__
    message = run_check(get("05.stcnn_forward"), stcnn_features_data, seed=0).first_failure.message
    assert "gradient w.r.t. argument 1" in message


def test_stcnn_forward_names_a_consistent_but_foreign_convention_on_the_first_case():
    """The trap: grid and sampler agree (both align_corners=True), the identity gives the input back, the colleague's
    test passes – but the package's start θ = out/in · I is the central window only in lesson 3's convention. The
    first visible case is that start, and the message names the kind of slip, not a value."""
    from stn_course.checks.lesson05 import OTHER_CONVENTION
    result = run_check(get("05.stcnn_forward"), stcnn_align_corners, seed=0)
    failure = result.first_failure
    assert "the package's start" in failure.case.description and OTHER_CONVENTION in failure.message
    for bug in (stcnn_conventions_mixed, stcnn_batch_scrambled):  # other slips are not called a convention
        assert OTHER_CONVENTION not in run_check(get("05.stcnn_forward"), bug, seed=0).first_failure.message
    assert passes("05.stcnn_forward", stcnn_by_hand)


def test_stub_reports_not_implemented():
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = run_check(get("05.rts_theta"), stub, seed=0)
    assert not result.passed and "not implemented" in result.first_failure.message


def test_chance_cases_have_one_training_majority_and_only_trained_labels_held_out():
    """The spec promises a finite loss; a tied training majority only in the cases that say so (the text states
    the tie rule, torch.argmax's first). The lesson's own balanced labels give equal logits' numbers."""
    from stn_course.checks.lesson05 import _chance_cases, _chance_hidden, _chance_visible
    for seed in range(4):
        rng = np.random.default_rng(seed)
        for case in [*_chance_cases(rng), *_chance_hidden(rng), *_chance_visible(rng)]:
            train, test, classes = case.args
            counts = torch.bincount(train, minlength=classes)
            assert ((counts == counts.max()).sum() == 1) != ("tie" in case.description), case.description
            assert (counts[test] > 0).all(), case.description
    balanced = torch.arange(10).repeat(40)
    assert chance_level(balanced, balanced[:100], 10) == pytest.approx((math.log(10), 90.0))
