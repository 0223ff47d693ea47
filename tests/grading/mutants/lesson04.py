"""Planted bugs in lesson 04's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
    Mutant("one_sided_differences", "04.numerical_gradient", "value",
           "float(f((flat + step).view_as(x))) - float(f((flat - step).view_as(x)))) / (2 * eps)",
           "float(f((flat + step).view_as(x))) - float(f(flat.view_as(x)))) / eps"),
    Mutant("numerical_gradient_by_autograd", "04.numerical_gradient", "banned",
           "    flat = x.detach().clone().reshape(-1)\n",
           "    xx = x.detach().clone().requires_grad_()\n    return torch.autograd.grad(f(xx), xx)[0]\n"),
    Mutant("best_step_balanced_against_u", "04.best_step", "value",  # eps**order = u: rounding not divided by eps
           "    a = 1 / (order + 1)  #", "    a = 1 / order  #"),
    Mutant("reflection_sign_kept", "04.sampler_backward", "value",
           "sign = torch.where(x < low, -sign, sign)", "sign = torch.where(x < low, sign, sign)"),
    Mutant("scatter_assigns", "04.sampler_backward", "value", "grad_input.scatter_add_(2,", "grad_input.scatter_(2,"),
    Mutant("grad_grid_y_first", "04.sampler_backward", "convention",
           "torch.stack([dv_dx * dx, dv_dy * dy], dim=-1)", "torch.stack([dv_dy * dy, dv_dx * dx], dim=-1)"),
    Mutant("border_counted_inside", "04.sampler_backward", "value",  # the clamp's kink: a point on the border
           "inside = (x > 0) & (x < size - 1)", "inside = (x >= 0) & (x <= size - 1)"),
    Mutant("theta_gradient_rows_swapped", "04.stn_function", "value",
           "grad_theta = grad_grid.reshape(n, h_out * w_out, 2).transpose(1, 2) @ B",
           "grad_theta = (grad_grid.reshape(n, h_out * w_out, 2).transpose(1, 2) @ B).flip(1)"),
    Mutant("sign_from_the_valley", "04.sign_at_identity", "value", 'return "negative"', 'return "positive"'),
    Mutant("sign_a_copied_constant", "04.sign_at_identity", "value",  # right on 0.25, fails the hidden cases
           "if 0 < shift <= one_pixel:", "if False:"),
    Mutant("backward_drops_settings", "04.stn_function", "value",  # defaults in backward: right in one setting
           "sampler_backward(grad_output, input, grid, ctx.padding_mode, ctx.align_corners)",
           "sampler_backward(grad_output, input, grid)"),
    Mutant("theta_gradient_no_constant_column", "04.stn_function", "value",  # b_p = (x_t, y_t, 0): no shift
           "torch.ones(h_out * w_out, dtype=grid.dtype)], 1)", "torch.zeros(h_out * w_out, dtype=grid.dtype)], 1)"),
    Mutant("theta_gradient_other_convention", "04.stn_function", "convention",
           "return ends if ctx.align_corners else ends * (count - 1) / count",
           "return ends if not ctx.align_corners else ends * (count - 1) / count"),
    Mutant("base_grid_one_pixel_linspace", "04.stn_function", "convention",  # linspace(-1, 1, 1) = -1
           "                if count == 1:\n", "                if False:\n"),
    Mutant("blind_spot_in_the_middle", "04.referee_blind_spot", "value",  # g = 0: a kink for odd widths only
           "    if width % 2 == 1:\n", "    if True:\n"),
    Mutant("blind_spot_at_the_kink", "04.referee_blind_spot", "value",  # no straddling: the kink itself
           "    return kink - eps  #", "    return kink  #"),
    Mutant("blind_spot_number_where_nothing_moves", "04.referee_blind_spot", "value",
           "    if width == 1 and align_corners:\n", "    if False:\n"),
]
