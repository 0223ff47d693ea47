"""Planted bugs in lesson 03's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
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
]
