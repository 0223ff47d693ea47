"""stn-course: Spatial Transformer Networks and deformable convolution from first principles.

One module per concept, each named after the lesson that teaches it:

* :mod:`stn_course.affine`   – lesson 1: 3×3 affine matrices, composition, pixel <-> normalized ``theta``
* :mod:`stn_course.grids`    – lessons 2–3: sampling grids (``affine_grid`` and friends)
* :mod:`stn_course.sampling` – lesson 2: bilinear / nearest sampling (``grid_sample`` semantics)
* :mod:`stn_course.checks`   – every lesson: ``check(id, fn)`` for the exercises

The torch API mirrors ``torch.nn.functional`` / ``torchvision.ops``: same names, argument order, defaults and
NCHW layout, so ours and theirs can be swapped.
"""
from . import affine, grids, sampling

__version__ = "0.1.0"
__all__ = ["affine", "grids", "sampling", "__version__"]
