"""stn-course: Spatial Transformer Networks and deformable convolution from first principles.

One module per concept, each named after the lesson that teaches it:

* :mod:`stn_course.affine`    – lesson 1: 3×3 affine matrices, composition, pixel <-> normalized ``theta``
* :mod:`stn_course.warps`     – lesson 1: forward versus inverse warping, pixel by pixel
* :mod:`stn_course.grids`     – lessons 2–3: sampling grids (affine, projective, thin-plate spline)
* :mod:`stn_course.sampling`  – lesson 2: ``grid_sample`` written from scratch (bilinear, nearest), the one copy of
  unnormalize / reflect / gather that every other module reuses
* :mod:`stn_course.stn`       – lesson 3: the ``SpatialTransformer`` module
* :mod:`stn_course.autograd`  – lesson 4: the hand-derived backward pass as ``autograd.Function``s (``reference``,
  the derivation as written; ``fast``, the same equations vectorized)
* :mod:`stn_course.data`      – lesson 5: real MNIST digits (``mnist``), the paper's distortions (``distortions``),
  datasets and loaders (``datasets``)
* :mod:`stn_course.training`  – lesson 5: fit/evaluate, CNN and ST-CNN builders
* :mod:`stn_course.deform`    – lesson 6: ``deform_conv2d`` and ``DeformConv2d``; :mod:`stn_course.deform_net` –
  lesson 6's experiment (``DeformableCNN``, where its layers read)
* :mod:`stn_course.images` – sample images; :mod:`stn_course.plotting`, :mod:`stn_course.widgets` – figures and
  explorers, one module per lesson (``plotting.lesson01`` …)
* :mod:`stn_course.checks`    – every lesson: ``check(id, fn)`` for the exercises
* :mod:`stn_course.course`    – every lesson: the lesson registry – each lesson declares, in its source's header,
  its checks, figures, explorers, dashboard and claims; everything that iterates over lessons asks it

The torch API mirrors ``torch.nn.functional`` / ``torchvision.ops``: same names, argument order, defaults and
NCHW layout, so ours and theirs can be swapped (``sampling.grid_sample`` ↔ ``F.grid_sample``,
``grids.affine_grid`` ↔ ``F.affine_grid``, ``deform.deform_conv2d`` / ``DeformConv2d`` ↔ ``torchvision.ops``).
``impl=`` has one vocabulary everywhere (:mod:`stn_course.impls`: the names, what ``"auto"`` picks, one rule for the
defaults): ``"reference"`` – the readable version the learner writes; ``"fast"`` – the package's own optimised path;
``"aten"`` – torch's kernels; ``"triton"`` – lesson 7's kernels; ``"auto"`` – Triton where it can run on CUDA, else
the fastest of the others. Every module is imported on first use (``stn_course.sampling``, ``from stn_course
import stn`` work as usual), so that ``import stn_course`` – and ``stn-course --help`` or ``stn-course lessons DIR``
– does not import torch, Matplotlib or ipywidgets (``tests/test_cli_imports.py``).
"""
import importlib

__version__ = "0.1.0"
_LAZY = ("affine", "autograd", "deform", "deform_net", "grids", "impls", "sampling", "stn", "warps",
         "checks", "course", "data", "images", "notebooks", "plotting", "training", "widgets")
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    """``stn_course.NAME`` for a module of ``_LAZY``: imported here, on first use (PEP 562)."""
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
