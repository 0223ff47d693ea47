"""Torch's own versions of what the lessons ask the learner to write (every lesson).

A check's :attr:`~stn_course.checks.model.Check.forbidden` lists the functions that *are* its exercise: the
package's version and, from here, torch's. ``check()`` refuses a function that calls one of them (read from its
code), and the grader makes them raise while the learner's function runs (whatever name or alias it reaches them
by). Names that do not import on this machine (``torchvision`` is optional) are skipped.
"""
from __future__ import annotations

# an entry naming every dispatcher operator (any namespace, any overload) whose name contains the word after it
OPS_MATCHING = "ops-matching:"

# F.grid_sample and every kernel that samples a grid: the 2-D and 3-D samplers (a 3-D one with depth 1 is a 2-D
# one), their backwards, the CPU fallback and cuDNN's, and torch's Python decompositions of them. The grader
# replaces the ATen operators (``torch.ops.aten.*``) at the dispatcher, so every route to them is caught.
GRID_SAMPLE = ("torch.nn.functional.grid_sample", "torch.grid_sampler", "torch.grid_sampler_2d",
               "torch.ops.aten.grid_sampler", "torch.ops.aten.grid_sampler_2d", "torch.ops.aten.grid_sampler_3d",
               "torch.ops.aten.grid_sampler_2d_backward", "torch.ops.aten.grid_sampler_3d_backward",
               "torch.ops.aten._grid_sampler_2d_cpu_fallback", "torch.ops.aten._grid_sampler_2d_cpu_fallback_backward",
               "torch.ops.aten.cudnn_grid_sampler", "torch.ops.aten.cudnn_grid_sampler_backward",
               "torch._decomp.decompositions.grid_sampler_2d", "torch._decomp.decompositions._grid_sampler_2d",
               "ops-matching:grid_sampler",  # every operator of that name, in any namespace, with any overload
               # SciPy's samplers and interpolators compute the same thing
               "scipy.ndimage.map_coordinates", "scipy.ndimage.affine_transform", "scipy.ndimage.geometric_transform",
               "scipy.ndimage._nd_image.geometric_transform", *(f"scipy.interpolate.{name}" for name in (
                   "RegularGridInterpolator", "interpn", "griddata", "interp1d", "make_interp_spline",
                   "InterpolatedUnivariateSpline", "UnivariateSpline", "BSpline", "splrep", "splev",
                   "RectBivariateSpline", "LinearNDInterpolator", "NearestNDInterpolator")),
               "scipy.interpolate._rgi_cython.evaluate_linear_2d")
# the package's own sampling building blocks: a sampler exercise may not be one call to them
PACKAGE_SAMPLERS = ("stn_course.sampling.bilinear_interpolate", "stn_course.sampling.bilinear_corners",
                    "stn_course.sampling.gather_corners", "stn_course.sampling.nearest_sample_np",
                    "stn_course.sampling._gather_np")
# F.affine_grid, its kernels and torch's Python decompositions
AFFINE_GRID = ("torch.nn.functional.affine_grid", "torch.affine_grid_generator",
               "torch.ops.aten.affine_grid_generator", "torch.ops.aten.affine_grid_generator_backward",
               "torch._decomp.decompositions.affine_grid_generator",
               "torch._decomp.decompositions._affine_grid_generator_4d", "ops-matching:affine_grid")
# every convolution: the functions, aten::convolution and each backend kernel under it (slow, dilated, MKL-DNN,
# NNPACK, cuDNN, depthwise, transposed), their backwards; F.unfold / im2col is the lowering of a regular one
CONVOLUTION = ("torch.nn.functional.conv2d", "torch.conv2d", "torch.ops.aten.convolution", "torch.ops.aten.conv2d",
               "torch.nn.functional.unfold", "torch.ops.aten.im2col", "torch.ops.aten.col2im",
               *(f"torch.ops.aten.{op}" for op in (
                   "_convolution", "convolution_overrideable", "_convolution_mode", "conv1d", "conv3d",
                   "mkldnn_convolution", "_slow_conv2d_forward", "_slow_conv2d_backward", "slow_conv_dilated2d",
                   "slow_conv_dilated3d", "thnn_conv2d", "_nnpack_spatial_convolution", "slow_conv3d",
                   "slow_conv3d_forward", "convolution_backward", "convolution_backward_overrideable",
                   "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv_tbc", "cudnn_convolution",
                   "cudnn_convolution_transpose", "_conv_depthwise2d", "conv_depthwise3d", "slow_conv_transpose2d",
                   "slow_conv_transpose3d", "miopen_convolution", "_mps_convolution")),
               # every other operator with "conv" in its name (conv_tbc_backward, mkldnn::_convolution_pointwise,
               # quantized::conv2d …), and NumPy's and SciPy's convolutions
               "ops-matching:conv", "ops-matching:im2col", "ops-matching:col2im",
               "numpy.convolve", "numpy.correlate", "numpy._core.multiarray.correlate",
               # sliding windows are the im2col of a regular convolution, by another name
               "torch.Tensor.unfold", "torch.as_strided", "torch.Tensor.as_strided",
               "numpy.lib.stride_tricks.sliding_window_view", "numpy.lib.stride_tricks.as_strided",
               "numpy._core.multiarray.correlate2", "scipy.signal.convolve", "scipy.signal.correlate",
               "scipy.signal.convolve2d", "scipy.signal.correlate2d", "scipy.signal.fftconvolve",
               "scipy.signal.oaconvolve", "scipy.ndimage.convolve", "scipy.ndimage.correlate",
               "scipy.ndimage.convolve1d", "scipy.ndimage.correlate1d", "scipy.ndimage._nd_image.correlate",
               "scipy.ndimage._nd_image.correlate1d")
DEFORM_CONV = ("torchvision.ops.deform_conv2d", "torch.ops.torchvision.deform_conv2d")
# autograd in every form: an exercise that derives a gradient by hand may not ask autograd for it
AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward",
            "torch.autograd.functional.jacobian", "torch.autograd.functional.vjp", "torch.func.grad",
            "torch.func.vjp", "torch.func.jacrev", "torch.func.jacfwd",
            "torch.autograd.variable.Variable._execution_engine.run_backward", "torch.autograd.graph._engine_run_backward",
            "torch.autograd.forward_ad.make_dual", "torch.autograd.forward_ad.unpack_dual",
            "torch.autograd.forward_ad.dual_level", "torch.autograd.functional.jvp", "torch.autograd.functional.hessian",
            "torch.autograd.functional.vhp", "torch.autograd.functional.hvp", "torch.func.jvp", "torch.func.linearize",
            "torch.func.hessian")

__all__ = ["OPS_MATCHING", "PACKAGE_SAMPLERS", "GRID_SAMPLE", "AFFINE_GRID", "CONVOLUTION", "DEFORM_CONV", "AUTOGRAD"]
