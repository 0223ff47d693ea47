"""Planted bugs in lesson 02's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
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
]
