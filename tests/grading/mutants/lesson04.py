"""Planted bugs in lesson 04's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
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
]
