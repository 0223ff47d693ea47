"""Planted bugs in lesson 01's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
    Mutant("rotation_sign", "01.rotation_matrix", "convention",
           "[[c, -s, 0.0], [s, c, 0.0]", "[[c, s, 0.0], [-s, c, 0.0]"),
    Mutant("rotate_about_centre_half_pixel_off", "01.rotate_about", "value",
           "[(width - 1) / 2, (height - 1) / 2]", "[width / 2, height / 2]"),
    Mutant("rotate_about_fixed_point_sign", "01.rotate_about", "convention",
           "turn[:2, 2] = centre - turn[:2, :2] @ centre", "turn[:2, 2] = turn[:2, :2] @ centre - centre"),
    Mutant("forward_mapping", "01.inverse_warp", "convention",
           "back = torch.linalg.inv(motion.to(torch.float64))", "back = motion.to(torch.float64)"),
    Mutant("inverse_warp_drops_last_column", "01.inverse_warp", "value",
           "inside = (sx >= 0) & (sx < w)", "inside = (sx >= 0) & (sx < w - 1)"),
    Mutant("inverse_warp_drops_translation", "01.inverse_warp", "value",
           "ones = torch.ones(h * w, dtype=torch.float64)", "ones = torch.zeros(h * w, dtype=torch.float64)"),
    Mutant("inverse_warp_truncates", "01.inverse_warp", "value",
           "sources = torch.round(targets @ back.T)[:, :2].long()", "sources = (targets @ back.T)[:, :2].long()"),
    Mutant("inverse_warp_adds_half_and_truncates", "01.inverse_warp", "value",
           "sources = torch.round(targets @ back.T)[:, :2].long()", "sources = (targets @ back.T + 0.5)[:, :2].long()"),
    Mutant("normalization_offset", "01.pixel_to_theta", "convention",
           "return 2.0 / n, 1.0 / n - 1.0", "return 2.0 / n, -1.0"),
    Mutant("inverts_singular_n_out", "01.pixel_to_theta", "value",
           "@ axis_map(out_size, denormalize))", "@ torch.linalg.inv(axis_map(out_size, normalize)))"),
    Mutant("pixel_to_theta_wrapper", "01.pixel_to_theta", "banned",
           "    def axis_map(size: tuple[int, int], line) -> torch.Tensor:",
           "    import stn_course.affine as package\n"
           "    return package.pixel_to_theta(matrix, in_size, out_size, align_corners)\n\n"
           "    def axis_map(size: tuple[int, int], line) -> torch.Tensor:"),
    Mutant("turn_theta_motion_sign", "01.turn_theta", "convention",
           "return torch.tensor([[0.0, hp / wp, 0.0], [-wp / hp, 0.0, 0.0]]",
           "return torch.tensor([[0.0, -hp / wp, 0.0], [wp / hp, 0.0, 0.0]]"),
]
