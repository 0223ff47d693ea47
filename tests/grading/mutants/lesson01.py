"""Planted bugs in lesson 01's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
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
]
