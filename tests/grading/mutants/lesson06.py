"""Planted bugs in lesson 06's solution: each must lose points on its target exercise only."""
from . import Mutant

MUTANTS = [
    Mutant("positions_ignore_dilation", "06.regular_sampling_positions", "value",
           "(rows + i * dh)", "(rows + i)"),
    Mutant("pixels_sampler_clamps", "06.bilinear_sample_pixels", "value",
           "out = out + values * (weight * inside).unsqueeze(1)", "out = out + values * weight.unsqueeze(1)"),
    Mutant("conv_flips_kernel", "06.conv2d_by_sampling", "convention",
           "pos[k, :, :, 1].expand(n, h_out, w_out))\n"
           "            out = out + torch.einsum(\"oc,nchw->nohw\", weight[:, :, i, j], samples)",
           "pos[k, :, :, 1].expand(n, h_out, w_out))\n"
           "            out = out + torch.einsum(\"oc,nchw->nohw\", weight[:, :, kh - 1 - i, kw - 1 - j], samples)"),
    Mutant("offsets_dx_first", "06.pack_offsets", "convention",
           "torch.stack([dy, dx], dim=3)", "torch.stack([dx, dy], dim=3)"),
    Mutant("deform_ignores_mask", "06.deform_conv2d", "value",
           "samples = samples * mask.reshape(n * groups, k_taps, h_out, w_out)[:, k:k + 1]", "samples = samples"),
    Mutant("deform_wraps_package", "06.deform_conv2d", "banned",
           "    n, c_in, h, w = input.shape\n",
           "    import stn_course.deform as package\n"
           "    return package.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask)\n"),
    Mutant("affine_offsets_x_first", "06.offsets_from_affine", "convention",
           "return pack_offsets((new_y - y).unsqueeze(1), (new_x - x).unsqueeze(1))",
           "return pack_offsets((new_x - x).unsqueeze(1), (new_y - y).unsqueeze(1))"),
    Mutant("blocked_reads_as_asked", "06.blocked_reads", "value",
           "return channels.view(k_taps, 2)", "return channels.view(2, k_taps).T.contiguous()"),
    Mutant("dilation_offsets_times_d", "06.dilation_offsets", "value",
           "dy, dx = (dilation - 1) * (i - centre), (dilation - 1) * (j - centre)",
           "dy, dx = dilation * (i - centre), dilation * (j - centre)"),
    Mutant("deform_offsets_detached", "06.deform_conv2d", "gradient",
           "pairs = offset.reshape(n * groups, k_taps, 2, h_out, w_out)",
           "pairs = offset.detach().reshape(n * groups, k_taps, 2, h_out, w_out)"),
    Mutant("pixels_sampler_detaches_y", "06.bilinear_sample_pixels", "gradient",
           "    y0, x0 = torch.floor(y), torch.floor(x)\n",
           "    y = y.detach()\n    y0, x0 = torch.floor(y), torch.floor(x)\n"),
]
