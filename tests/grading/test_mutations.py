"""The grader's mutation suite: planted student bugs across lessons 1–7 – wrong values, wrong conventions, missing
and NaN gradients, banned calls, shortcuts that hide from the code scan – each loses points on the exercise it
breaks and only there; the solutions score 100 %, the untouched lessons 0 with "not implemented".

All submissions are graded in one sandboxed batch (``--jobs 2``), like a classroom's folder.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from stn_course import course
from stn_course.checks import all_checks

from .helpers import LESSONS, SOLUTIONS, exercise, grade, patched, solution, write_submission


@dataclass(frozen=True)
class Mutant:
    name: str
    target: str  # the check id it must fail
    kind: str  # value, convention, gradient, nan-gradient, banned, hidden-shortcut, type
    find: str
    replace: str


MUTANTS = [
    # lesson 1
    Mutant("rotation_sign", "01.rotation_matrix", "convention",
           "[[c, -s, 0.0], [s, c, 0.0]", "[[c, s, 0.0], [-s, c, 0.0]"),
    Mutant("apply_drops_translation", "01.apply_affine", "value",
           "torch.cat([points, ones], dim=-1)", "torch.cat([points, 0 * ones], dim=-1)"),
    Mutant("quarter_turn_counter_clockwise", "01.quarter_turn", "convention",
           "return (cx + cy, cy - cx)", "return (cx - cy, cy + cx)"),
    Mutant("rotate_about_order", "01.rotate_about", "convention",
           "translation_matrix(cx, cy) @ rotation_matrix(angle) @ translation_matrix(-cx, -cy)",
           "translation_matrix(-cx, -cy) @ rotation_matrix(angle) @ translation_matrix(cx, cy)"),
    Mutant("forward_mapping", "01.inverse_warp", "convention",
           "back = torch.linalg.inv(motion.to(torch.float64))", "back = motion.to(torch.float64)"),
    Mutant("inverse_warp_drops_last_column", "01.inverse_warp", "value",
           "inside = (sx >= 0) & (sx < w)", "inside = (sx >= 0) & (sx < w - 1)"),
    Mutant("normalization_offset", "01.normalization_matrix", "convention",
           "return 2.0 / n, 1.0 / n - 1.0", "return 2.0 / n, -1.0"),
    Mutant("inverts_singular_n_out", "01.pixel_to_theta", "value",
           "@ denormalization(out_size))", "@ torch.linalg.inv(normalization_matrix(out_size, align_corners)))"),
    Mutant("pixel_to_theta_wrapper", "01.pixel_to_theta", "banned",
           "    n_in = normalization_matrix(in_size, align_corners)\n",
           "    import stn_course.affine as package\n"
           "    return package.pixel_to_theta(matrix, in_size, out_size, align_corners)\n"),
    Mutant("corner_source_in_normalized_units", "01.corner_source", "value",
           "return to_pixels(a * u + b * v + tx, width), to_pixels(c * u + d * v + ty, height)",
           "return a * u + b * v + tx, c * u + d * v + ty"),
    Mutant("turn_theta_motion_sign", "01.turn_theta", "convention",
           "return torch.tensor([[0.0, hp / wp, 0.0], [-wp / hp, 0.0, 0.0]]",
           "return torch.tensor([[0.0, -hp / wp, 0.0], [wp / hp, 0.0, 0.0]]"),
    # lesson 2
    Mutant("lerp_truncates", "02.lerp_1d", "value", "left = torch.floor(x)", "left = torch.trunc(x)"),
    Mutant("unnormalize_w_not_w_minus_1", "02.unnormalize", "convention",
           "return (coord + 1) / 2 * (size - 1)", "return (coord + 1) / 2 * size"),
    Mutant("affine_grid_corner_convention", "02.affine_grid", "convention",
           "return ends if align_corners else ends * (steps - 1) / steps", "return ends"),
    Mutant("affine_grid_y_first", "02.affine_grid", "convention",
           "torch.stack([xs, ys, torch.ones_like(xs)]", "torch.stack([ys, xs, torch.ones_like(xs)]"),
    Mutant("numpy_sampler_clips", "02.bilinear_sample_np", "value",
           "valid = (xn >= 0) & (xn < w) & (yn >= 0) & (yn < h)", "valid = np.ones_like(xn, dtype=bool)"),
    Mutant("sampler_detaches_grid", "02.bilinear_sample", "gradient",
           "x = unnormalize(grid[..., 0], w, align_corners).reshape(n, -1)",
           "x = unnormalize(grid.detach()[..., 0], w, align_corners).reshape(n, -1)"),
    Mutant("sampler_strict_border", "02.bilinear_sample", "value",
           "valid = (xn >= 0) & (xn <= w - 1)", "valid = (xn > 0) & (xn <= w - 1)"),
    Mutant("reflection_edges_swapped", "02.bilinear_sample", "convention",
           "edge = 0.0 if align_corners else 0.5", "edge = 0.5 if align_corners else 0.0"),
    Mutant("sampler_calls_torch", "02.bilinear_sample", "banned",
           "    _, h_out, w_out, _ = grid.shape\n",
           "    return F.grid_sample(input, grid, padding_mode=padding_mode, align_corners=align_corners)\n"),
    Mutant("sampler_hides_torch_call", "02.bilinear_sample", "hidden-shortcut",
           "    _, h_out, w_out, _ = grid.shape\n",
           "    hidden = getattr(__import__('torch.nn.functional', fromlist=['x']), 'grid' + '_sample')\n"
           "    return hidden(input, grid, padding_mode=padding_mode, align_corners=align_corners)\n"),
    Mutant("blog_error_forgets_the_column", "02.blog_identity_error", "value",
           "return float(width + 1)", "return float(width)"),
    Mutant("fade_band_half_pixel", "02.zeros_fade_band", "value",
           "return normalize(0.0), normalize(-1.0)", "return normalize(-0.5), normalize(-1.0)"),
    # lesson 3
    Mutant("window_from_item", "03.attention_window", "gradient",
           "    x0, x1, y0, y1 = boxes.unbind(1)\n",
           "    return torch.tensor([[(b[1] - b[0]).item() / width, (b[0] + b[1] + 1).item() / width - 1, "
           "(b[2] + b[3] + 1).item() / height - 1] for b in boxes], dtype=boxes.dtype)\n"),
    Mutant("window_half_pixel", "03.attention_window", "convention",
           "(x0 + x1 + 1) / width - 1", "(x0 + x1) / width - 1"),
    Mutant("default_head_shows_all", "03.default_head_view", "value", 'return "tiny"', 'return "all"'),
    Mutant("stretch_ratio_of_the_ws", "03.perspective_stretch", "value",
           "return ((1 + pi31) / (1 - pi31)) ** 2", "return ((1 + pi31) / (1 - pi31))"),
    Mutant("tps_kernel_nan_gradient", "03.tps_kernel", "nan-gradient",
           "safe = torch.where(positive, r2, torch.ones_like(r2))", "safe = r2"),
    Mutant("projective_no_divide", "03.projective_grid", "value",
           "return (uvw[..., :2] / uvw[..., 2:3])", "return (uvw[..., :2])"),
    Mutant("projective_colleague_transposed", "03.projective_grid", "value",
           "uvw = points @ H.transpose(1, 2)  # (N, P, 3)", "uvw = points @ H  # (N, P, 3)"),
    Mutant("start_params_transposed", "03.start_params", "convention",
           '"affine": [1, 0, 0, 0, 1, 0]', '"affine": [1, 0, 0, 1, 0, 0]'),
    Mutant("start_params_zoom_factor", "03.start_params", "value",
           "scale = out_size / in_size", "scale = in_size / out_size"),
    Mutant("tps_solve_with_source", "03.tps_coefficients", "value",
           "p = target_points.double()", "p = source_points[0].double()"),
    Mutant("tps_grid_one_convention", "03.tps_grid", "convention",
           "pixels = base_grid(h_out, w_out, align_corners, torch.float64)",
           "pixels = base_grid(h_out, w_out, True, torch.float64)"),
    # lesson 4
    Mutant("one_sided_differences", "04.numerical_gradient", "value",
           "float(f((flat + step).view_as(x))) - float(f((flat - step).view_as(x)))) / (2 * eps)",
           "float(f((flat + step).view_as(x))) - float(f(flat.view_as(x)))) / eps"),
    Mutant("numerical_gradient_by_autograd", "04.numerical_gradient", "banned",
           "    flat = x.detach().clone().reshape(-1)\n",
           "    xx = x.detach().clone().requires_grad_()\n    return torch.autograd.grad(f(xx), xx)[0]\n"),
    Mutant("reflection_sign_kept", "04.source_coordinates_grad", "value",
           "sign = torch.where(x < low, -sign, sign)", "sign = torch.where(x < low, sign, sign)"),
    Mutant("scatter_assigns", "04.grad_input", "value", "result.scatter_add_(2,", "result.scatter_(2,"),
    Mutant("grad_grid_y_first", "04.grad_grid", "convention",
           "torch.stack([dv_dx * dx, dv_dy * dy], dim=-1)", "torch.stack([dv_dy * dy, dv_dx * dx], dim=-1)"),
    Mutant("theta_gradient_rows_swapped", "04.theta_gradient", "value",
           "return dgrid.reshape(n, h_out * w_out, 2).transpose(1, 2) @ B",
           "return (dgrid.reshape(n, h_out * w_out, 2).transpose(1, 2) @ B).flip(1)"),
    Mutant("best_step_one_sided_balance", "04.best_step", "value",
           "return math.log10(unit_roundoff ** (1 / 3))", "return math.log10(unit_roundoff ** (1 / 2))"),
    Mutant("best_step_copied_constant", "04.best_step", "value",  # fails the second visible case and the hidden ones
           "return math.log10(unit_roundoff ** (1 / 3))", "return -5.3"),
    Mutant("sign_from_the_valley", "04.sign_at_identity", "value", 'return "negative"', 'return "positive"'),
    Mutant("sign_a_copied_constant", "04.sign_at_identity", "value",  # right on 0.25, fails the hidden cases
           "if 0 < shift <= one_pixel:", "if False:"),
    Mutant("backward_gradients_swapped", "04.sampler_function", "value",
           "return grad_input(grad_output, input, grid, *settings), grad_grid(grad_output, input, grid, *settings)",
           "return grad_grid(grad_output, input, grid, *settings), grad_input(grad_output, input, grid, *settings)"),
    Mutant("backward_drops_settings", "04.sampler_function", "value",  # the lesson's colleague: defaults in backward
           "settings = (ctx.padding_mode, ctx.align_corners)", "settings = ()"),
    Mutant("theta_gradient_other_convention", "04.theta_gradient", "convention",
           "grid = grids.affine_grid(theta, size, align_corners)",
           "grid = grids.affine_grid(theta, size, not align_corners)"),
    # lesson 5
    Mutant("rts_rotates_forwards", "05.rts_theta", "convention",
           "torch.stack([k * cos, k * sin], -1), torch.stack([-k * sin, k * cos], -1)",
           "torch.stack([k * cos, -k * sin], -1), torch.stack([k * sin, k * cos], -1)"),
    Mutant("clutter_adds_up", "05.paste_clutter", "value", 'reduce="amax")', 'reduce="sum")'),
    Mutant("clutter_flat_index_source_width", "05.paste_clutter", "value",
           ") * s + paste_at[", ") * sources.shape[-1] + paste_at["),
    Mutant("chance_equal_logits", "05.chance_level", "value",
           "return float(-(share * share.log()).sum()),", "return float(np.log(classes)),"),
    Mutant("centring_shift_points_away", "05.centring_shift", "convention",
           "return 2 * dx / canvas, 2 * dy / canvas", "return -2 * dx / canvas, -2 * dy / canvas"),
    Mutant("stcnn_other_convention", "05.stcnn_forward", "convention",
           "classifier(F.grid_sample(x, grid, align_corners=False))",
           "classifier(F.grid_sample(x, grid, align_corners=True))"),
    Mutant("rotation_not_negated", "05.theta_statistics", "convention",
           "rotation = -torch.rad2deg(", "rotation = torch.rad2deg("),
    # lesson 6
    Mutant("positions_ignore_dilation", "06.regular_sampling_positions", "value",
           "(rows + i * dh)", "(rows + i)"),
    Mutant("pixels_sampler_clamps", "06.bilinear_sample_pixels", "value",
           "out = out + values * (weight * inside).unsqueeze(1)", "out = out + values * weight.unsqueeze(1)"),
    Mutant("conv_flips_kernel", "06.conv2d_by_sampling", "convention",
           "pos[k, :, :, 1].expand(n, h_out, w_out))\n"
           "            out = out + torch.einsum(\"oc,nchw->nohw\", weight[:, :, i, j], samples)",
           "pos[k, :, :, 1].expand(n, h_out, w_out))\n"
           "            out = out + torch.einsum(\"oc,nchw->nohw\", weight[:, :, kh - 1 - i, kw - 1 - j], samples)"),
    Mutant("offsets_dx_first", "06.pack_offsets", "convention",
           "torch.stack([dy, dx], dim=3)", "torch.stack([dx, dy], dim=3)"),
    Mutant("deform_ignores_mask", "06.deform_conv2d", "value",
           "samples = samples * mask.reshape(n * groups, k_taps, h_out, w_out)[:, k:k + 1]", "samples = samples"),
    Mutant("deform_wraps_package", "06.deform_conv2d", "banned",
           "    n, c_in, h, w = input.shape\n",
           "    import stn_course.deform as package\n"
           "    return package.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask)\n"),
    Mutant("affine_offsets_x_first", "06.offsets_from_affine", "convention",
           "return pack_offsets((new_y - y).unsqueeze(1), (new_x - x).unsqueeze(1))",
           "return pack_offsets((new_x - x).unsqueeze(1), (new_y - y).unsqueeze(1))"),
    Mutant("blocked_reads_as_asked", "06.blocked_reads", "value",
           "return channels.view(k_taps, 2)", "return channels.view(2, k_taps).T.contiguous()"),
    Mutant("dilation_offsets_times_d", "06.dilation_offsets", "value",
           "dy, dx = (dilation - 1) * (i - centre), (dilation - 1) * (j - centre)",
           "dy, dx = dilation * (i - centre), dilation * (j - centre)"),
    # lesson 7
    Mutant("bytes_grid_read_once", "07.sampler_bytes", "value",
           "elements = grid + (grid + image + output)", "elements = grid + image + output"),
    Mutant("share_grid_crosses_once", "07.saved_share", "value",
           "return 2 / (channels + 2)", "return 1 / (channels + 1)"),
    Mutant("tiles_column_major", "07.program_pixels", "convention",
           "return offsets // w_out, offsets % w_out, offsets < h_out * w_out",
           "return offsets % h_out, offsets // h_out, offsets < h_out * w_out"),
    Mutant("tiles_mask_one_lane_late", "07.program_pixels", "value",
           "return offsets // w_out, offsets % w_out, offsets < h_out * w_out",
           "return offsets // w_out, offsets % w_out, offsets <= h_out * w_out"),
    Mutant("source_corner_convention", "07.source_pixels", "convention",
           "xt, yt = (2 * j + 1) / w_out - 1, (2 * i + 1) / h_out - 1",
           "xt, yt = 2 * j / w_out - 1, 2 * i / h_out - 1"),
    Mutant("source_makes_the_grid", "07.source_pixels", "banned",
           "    (h, w), (h_out, w_out) = in_size, out_size\n",
           "    (h, w), (h_out, w_out) = in_size, out_size\n"
           "    g = F.affine_grid(theta[None], (1, 1, h_out, w_out), align_corners=align_corners)[0][rows, cols]\n"
           "    return ((g[..., 0] + 1) * w - 1) / 2, ((g[..., 1] + 1) * h - 1) / 2\n"),
    Mutant("kernel_weights_swapped", "07.fused_affine_sample", "value",
           "        fx = x - x0f\n", "        fx = x0f + 1.0 - x\n"),
    Mutant("kernel_one_channel_for_all", "07.fused_affine_sample", "value",
           "image = inp + (n * C + c) * H * W", "image = inp + n * C * H * W"),
    Mutant("launcher_calls_the_package", "07.fused_affine_sample", "banned",
           "    input, theta = input.contiguous(), theta.reshape(-1, 6).contiguous().to(input.dtype)\n",
           "    return package_affine_sample(input, theta, (input.shape[0], input.shape[1], *out_size))\n"),
    # lessons 5–7: what the text states (issue 21) – gradient flow, dtypes, types, masks
    Mutant("stcnn_theta_under_no_grad", "05.stcnn_forward", "gradient",
           "    theta = head(localisation(x).flatten(1)).view(-1, 2, 3)\n",
           "    with torch.no_grad():\n        theta = head(localisation(x).flatten(1)).view(-1, 2, 3)\n"),
    Mutant("deform_offsets_detached", "06.deform_conv2d", "gradient",
           "pairs = offset.reshape(n * groups, k_taps, 2, h_out, w_out)",
           "pairs = offset.detach().reshape(n * groups, k_taps, 2, h_out, w_out)"),
    Mutant("pixels_sampler_detaches_y", "06.bilinear_sample_pixels", "gradient",
           "    y0, x0 = torch.floor(y), torch.floor(x)\n",
           "    y = y.detach()\n    y0, x0 = torch.floor(y), torch.floor(x)\n"),
    Mutant("kernel_computes_in_float32", "07.fused_affine_sample", "value",
           "theta.reshape(-1, 6).contiguous().to(input.dtype)", "theta.reshape(-1, 6).contiguous().to(torch.float32)"),
    Mutant("kernel_store_without_mask", "07.fused_affine_sample", "memory",
           "tl.store(out + (n * C + c) * H_out * W_out + offsets, value, mask=live)",
           "tl.store(out + (n * C + c) * H_out * W_out + offsets, value)"),
    Mutant("bytes_as_float", "07.sampler_bytes", "type",
           "return int(elements * element_size)", "return elements * element_size * 1.0"),
    Mutant("nondeterminism_blames_theta_partials", "07.nondeterminism_source", "value", 'return "b"', 'return "c"'),
    Mutant("input_gradient_without_atomics", "07.affine_input_gradient", "value",
           "tl.atomic_add(image, w00 * g, mask=live & m00)",
           "tl.store(image, tl.load(image, mask=live & m00, other=0.0) + w00 * g, mask=live & m00)"),
    Mutant("input_gradient_corner_weights_swapped", "07.affine_input_gradient", "value",
           "tl.atomic_add(image + 1, w10 * g, mask=live & m10)", "tl.atomic_add(image + 1, w01 * g, mask=live & m10)"),
    Mutant("address_never_wraps", "07.kernel_address", "value",
           "return (exact + 2**31) % 2**32 - 2**31", "return exact"),
    Mutant("coalescing_all_coalesced", "07.coalescing", "value", 'statement = "b"', 'statement = "a"'),
    Mutant("waves_only_the_last_one", "07.wave_efficiency", "value",
           "return programs / (waves * slots)", "return (programs - (waves - 1) * slots) / slots"),
    Mutant("fusion_bound_forward_only", "07.fusion_bound", "value",
           "for backward in (False, True))", "for backward in (False,))"),
    # lesson 8
    Mutant("pairs_ignore_the_scale", "08.point_pairs", "value",
           "free = unknowns - 1 if up_to_scale else unknowns", "free = unknowns"),
    Mutant("dlt_denominator_sign", "08.homography", "value",
           "-u * x, -u * y], -1)", "u * x, u * y], -1)"),
    Mutant("dlt_calls_the_package", "08.homography", "banned",
           "    x, y = src[..., 0].double(), src[..., 1].double()\n",
           "    from stn_course.data.signs import homography as package\n    return package(src, dst)\n"),
    Mutant("rectify_forwards", "08.rectify", "convention",
           "h = homography(square, corners).to(images.dtype)", "h = homography(corners, square).to(images.dtype)"),
    Mutant("start_view_centre_at_half_the_size", "08.start_view", "value",
           "centre, half_width = (in_size - 1) / 2, (out_size - 1) / 2",
           "centre, half_width = in_size / 2, out_size / 2"),
]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mutants")
    for mutant in MUTANTS:
        name, nb = solution(mutant.target[:2])
        write_submission(folder, f"mutant-{mutant.name}", name, patched(nb, mutant.find, mutant.replace))
    for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):
        write_submission(folder, f"solution-{path.stem[:2]}", path.name, path.read_text())
    for path in sorted(LESSONS.glob("[0-9][0-9]_*.ipynb")):
        write_submission(folder, f"lesson-{path.stem[:2]}", path.name, path.read_text())
    return grade([folder], jobs=2)


def test_the_suite_is_broad():
    assert len(MUTANTS) >= 30
    assert {m.target[:2] for m in MUTANTS} == set(course.numbers()), "every lesson needs planted bugs here"
    assert {"value", "convention", "gradient", "nan-gradient", "banned", "hidden-shortcut"} <= {m.kind for m in MUTANTS}
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_a_planted_bug_loses_points_on_its_exercise_and_only_there(graded, mutant):
    result = graded[f"mutant-{mutant.name}"]
    assert result.error is None  # (a Verify cell that asserts on the planted bug may fail: it costs nothing)
    broken = exercise(result, mutant.target)
    assert broken.score < broken.max_score, f"{mutant.name} kept full marks on {mutant.target}: {broken.feedback}"
    others = {e.id: (e.status, e.feedback) for e in result.exercises if e.id != mutant.target and e.score < e.max_score}
    assert not others, f"{mutant.name} also lost points on {others}"
    if mutant.kind in ("banned", "hidden-shortcut"):
        assert broken.status == "banned call" and broken.score == 0
        assert "write it yourself" in broken.feedback or "asks you to write" in broken.feedback
    if mutant.kind in ("gradient", "nan-gradient"):
        assert "gradient" in broken.feedback
    if mutant.kind == "memory":  # a clear message, not a dead process
        assert "every load and store needs mask=" in broken.feedback


@pytest.mark.parametrize("lesson", course.numbers())
def test_the_solutions_score_full_marks(graded, lesson):
    result = graded[f"solution-{lesson}"]
    assert result.error is None and result.cells == []
    assert result.score == result.max_score == sum(c.points for c in all_checks() if c.lesson == lesson)
    assert all(e.status == "passed" and e.hidden[1] >= 1 for e in result.exercises)


@pytest.mark.parametrize("lesson", course.numbers())
def test_untouched_lessons_score_zero_with_not_implemented(graded, lesson):
    result = graded[f"lesson-{lesson}"]
    assert result.error is None and result.score == 0 and result.max_score > 0
    for e in result.exercises:
        assert e.status == "missing" and "not implemented" in e.feedback, (e.id, e.feedback)
