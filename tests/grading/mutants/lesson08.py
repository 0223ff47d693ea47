"""Planted bugs in lesson 08's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
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
