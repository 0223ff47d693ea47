"""Planted bugs in lesson 08's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
    Mutant("pins_down_not_all_on_a_line", "08.pins_down", "value",  # misses "all but one on a line"
           "general |= (dets.abs() > 1e-9).all(-1)", "general |= (dets.abs() > 1e-9).any(-1)"),
    Mutant("pins_down_first_four_only", "08.pins_down", "value",
           "for four in combinations(range(src.shape[1]), 4):", "for four in [(0, 1, 2, 3)]:"),
    Mutant("dlt_denominator_sign", "08.homography", "value",
           "-u * x, -u * y, -u], -1)", "u * x, u * y, u], -1)"),
    Mutant("dlt_fixes_h9_to_one", "08.homography", "value",  # the textbook shortcut: singular where h9 = 0
           "    h = torch.linalg.svd(torch.cat([rows_u, rows_v], 1)).Vh[:, -1].view(-1, 3, 3)\n",
           "    a = torch.cat([rows_u, rows_v], 1)\n"
           "    h = torch.linalg.lstsq(a[..., :8], -a[..., 8:]).solution[..., 0]\n"
           "    h = torch.cat([h, torch.ones_like(h[:, :1])], 1).view(-1, 3, 3)\n"),
    Mutant("dlt_unnormalised", "08.homography", "value",  # the textbook DLT in pixels: noisy pairs fitted badly
           "    t_src, src_n = normalising(src.double())\n    t_dst, dst_n = normalising(dst.double())\n",
           "    t_src = t_dst = torch.eye(3, dtype=torch.float64).expand(src.shape[0], 3, 3)\n"
           "    src_n, dst_n = src.double(), dst.double()\n"),
    Mutant("dlt_calls_the_package", "08.homography", "banned",
           "    def normalising(points):",
           "    from stn_course.data.signs import homography as package\n    return package(src, dst)\n\n"
           "    def normalising(points):"),
    Mutant("rectify_forwards", "08.rectify", "convention",
           "h = homography(square, corners).to(images.dtype)", "h = homography(corners, square).to(images.dtype)"),
    Mutant("rectify_margin_on_pixel_centres", "08.rectify", "convention",
           "inside = 1 - 2 * margin / out_size", "inside = 1 - (2 * margin + 1) / out_size"),
    Mutant("rectify_border_padding", "08.rectify", "convention",  # smears the canvas's edge past the canvas
           'padding_mode="zeros"', 'padding_mode="border"'),
]
