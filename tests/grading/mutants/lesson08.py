"""Planted bugs in lesson 08's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
    Mutant("dlt_denominator_sign", "08.homography", "value",
           "-u * x, -u * y, -u], -1)", "u * x, u * y, u], -1)"),
    Mutant("dlt_fixes_h9_to_one", "08.homography", "value",  # the textbook shortcut: singular where h9 = 0
           "    h = torch.linalg.svd(torch.cat([rows_u, rows_v], 1)).Vh[:, -1]\n",
           "    a = torch.cat([rows_u, rows_v], 1)\n"
           "    h = torch.linalg.lstsq(a[..., :8], -a[..., 8:]).solution[..., 0]\n"
           "    h = torch.cat([h, torch.ones_like(h[:, :1])], 1)\n"),
    Mutant("dlt_calls_the_package", "08.homography", "banned",
           "    x, y = src[..., 0].double(), src[..., 1].double()\n",
           "    from stn_course.data.signs import homography as package\n    return package(src, dst)\n"),
    Mutant("rectify_forwards", "08.rectify", "convention",
           "h = homography(square, corners).to(images.dtype)", "h = homography(corners, square).to(images.dtype)"),
    Mutant("rectify_margin_on_pixel_centres", "08.rectify", "convention",
           "inside = 1 - 2 * margin / out_size", "inside = 1 - (2 * margin + 1) / out_size"),
    Mutant("rectify_border_padding", "08.rectify", "convention",  # smears the canvas's edge past the canvas
           'padding_mode="zeros"', 'padding_mode="border"'),
]
