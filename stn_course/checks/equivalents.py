"""Torch's own versions of what the lessons ask the learner to write (every lesson).

A check's :attr:`~stn_course.checks.registry.Check.forbidden` lists the functions that *are* its exercise: the
package's version and, from here, torch's. ``check()`` refuses a function that calls one of them (read from its
code), and the grader makes them raise while the learner's function runs (whatever name or alias it reaches them
by). Names that do not import on this machine (``torchvision`` is optional) are skipped.
"""
from __future__ import annotations

# F.grid_sample and the kernels under it (all reach aten::grid_sampler_2d)
GRID_SAMPLE = ("torch.nn.functional.grid_sample", "torch.grid_sampler", "torch.grid_sampler_2d",
               "torch.ops.aten.grid_sampler", "torch.ops.aten.grid_sampler_2d")
# F.affine_grid and its kernel
AFFINE_GRID = ("torch.nn.functional.affine_grid", "torch.affine_grid_generator",
               "torch.ops.aten.affine_grid_generator")
# every convolution reaches aten::convolution; F.unfold is the im2col of a regular convolution
CONVOLUTION = ("torch.nn.functional.conv2d", "torch.conv2d", "torch.ops.aten.convolution", "torch.ops.aten.conv2d",
               "torch.nn.functional.unfold", "torch.ops.aten.im2col")
DEFORM_CONV = ("torchvision.ops.deform_conv2d", "torch.ops.torchvision.deform_conv2d")
# autograd in every form: an exercise that derives a gradient by hand may not ask autograd for it
AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward",
            "torch.autograd.functional.jacobian", "torch.autograd.functional.vjp", "torch.func.grad",
            "torch.func.vjp", "torch.func.jacrev", "torch.func.jacfwd")

__all__ = ["GRID_SAMPLE", "AFFINE_GRID", "CONVOLUTION", "DEFORM_CONV", "AUTOGRAD"]
