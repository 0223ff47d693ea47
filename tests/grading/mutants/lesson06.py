"""Planted bugs in lesson 06's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
    Mutant("conv_positions_ignore_dilation", "06.conv2d_by_sampling", "value",
           "y = (rows + i * dh)[:, None]", "y = (rows + i)[:, None]"),
    Mutant("conv_padding_added", "06.conv2d_by_sampling", "convention",
           "cols = torch.arange(w_out, dtype=input.dtype) * sw - pw",
           "cols = torch.arange(w_out, dtype=input.dtype) * sw + pw"),
    Mutant("conv_flips_kernel", "06.conv2d_by_sampling", "convention",
           "0 outside = zero padding\n"
           "            out = out + torch.einsum(\"oc,nchw->nohw\", weight[:, :, i, j], samples)",
           "0 outside = zero padding\n"
           "            out = out + torch.einsum(\"oc,nchw->nohw\", weight[:, :, kh - 1 - i, kw - 1 - j], samples)"),
    Mutant("conv_positions_from_package", "06.conv2d_by_sampling", "banned",
           "    rows = torch.arange(h_out, dtype=input.dtype) * sh - ph",
           "    from stn_course.deform import regular_sampling_positions as _positions\n"
           "    rows = _positions(h_out, 1, (1, 1), stride, padding, (1, 1))[0, :, 0, 0].to(input.dtype)"),
    Mutant("deform_ignores_mask", "06.deform_conv2d", "value",
           "samples = samples * mask.reshape(n * groups, k_taps, h_out, w_out)[:, k:k + 1]", "samples = samples"),
    Mutant("deform_wraps_package", "06.deform_conv2d", "banned",
           "    n, c_in, h, w = input.shape\n",
           "    import stn_course.deform as package\n"
           "    return package.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask)\n"),
    Mutant("deform_offsets_detached", "06.deform_conv2d", "gradient",
           "pairs = offset.reshape(n * groups, k_taps, 2, h_out, w_out)",
           "pairs = offset.detach().reshape(n * groups, k_taps, 2, h_out, w_out)"),
    Mutant("affine_offsets_dx_first", "06.offsets_from_affine", "convention",
           "torch.stack([dy, dx], dim=2).flatten(1, 2)", "torch.stack([dx, dy], dim=2).flatten(1, 2)"),
    Mutant("affine_offsets_blocked", "06.offsets_from_affine", "convention",
           "torch.stack([dy, dx], dim=2).flatten(1, 2)", "torch.cat([dy, dx], dim=1)"),
    Mutant("affine_matrix_on_yx", "06.offsets_from_affine", "convention",
           "new_x = a[:, 0, 0] * x + a[:, 0, 1] * y + a[:, 0, 2]",
           "new_x = a[:, 0, 0] * y + a[:, 0, 1] * x + a[:, 0, 2]"),
    Mutant("affine_absolute_positions", "06.offsets_from_affine", "value",
           "dy, dx = new_y - y, new_x - x", "dy, dx = new_y, new_x"),
    Mutant("blocked_dilation_offsets_times_d", "06.blocked_dilation", "value",
           "dy, dx = (dilation - 1) * (i - centre), (dilation - 1) * (j - centre)  # the offsets meant",
           "dy, dx = dilation * (i - centre), dilation * (j - centre)  # the offsets meant"),
    Mutant("blocked_dilation_read_as_meant", "06.blocked_dilation", "value",
           "return channels.view(-1, 2)", "return channels.view(2, -1).T.contiguous()"),
]
