"""The spatial transformer module: localisation net -> grid generator -> sampler (lesson 3).

``SpatialTransformer(localisation, transform="affine", out_size=None, align_corners=False, impl="fast")``
wraps the three parts of Jaderberg et al. (2015):

1. the **localisation network** – any ``nn.Module`` you pass that maps the input ``(N, C, H, W)`` to a feature
   vector ``(N, F)`` – followed by a linear **regression head** ``F -> n_params`` that this module owns;
2. the **grid generator** – turns the parameters into a sampling grid (:func:`transform_to_grid`);
3. the **sampler** – reads the input at the grid (bilinear, ``F.grid_sample`` semantics).

Transforms (parameters -> what the grid generator sees):

=============  ========  ===================================================================================
``transform``  params    meaning
=============  ========  ===================================================================================
``affine``     6         ``theta (2, 3)`` row-major
``attention``  3         ``(s, t_x, t_y)``: ``theta = [[s, 0, t_x], [0, s, t_y]]`` – isotropic zoom + shift
``rotation``   1         ``(angle)`` in radians: ``theta = [[cos, -sin, 0], [sin, cos, 0]]``
``rts``        4         ``(angle, s, t_x, t_y)``: rotation, isotropic scale and translation
``projective`` 8         a homography ``H (3, 3)`` row-major with ``H[2, 2] = 1`` fixed
``tps``        2 K       the ``K`` source control points ``(x, y)`` of a thin-plate spline (``K = 16``, 4×4)
=============  ========  ===================================================================================

**Identity initialisation.** The head starts with zero weights and the identity as its bias, for every transform
type, so a fresh transformer passes its input through unchanged (up to ``out_size``) whatever the localisation
network computes. Start from random weights instead and the first grids are random warps: the classifier behind
sees garbage and the gradients that reach θ are noise – training often never recovers.

**Feature size of the localisation net.** The head needs ``F``. Pass ``loc_features=F`` explicitly, or
``input_size=(C, H, W)`` to find it by a dry run of ``localisation`` on a zero batch (at construction, so the head
exists before you build the optimizer); with neither, ``F`` is taken from the ``out_features`` of the last
``nn.Linear`` inside ``localisation``. If none of those works, the constructor raises a ``ValueError`` saying so.

``impl`` (the package's one vocabulary, :data:`stn_course.impls.SPATIAL_TRANSFORMER`): ``"reference"`` – the
readable grid generator and sampler of lessons 2–3 (:func:`stn_course.grids.affine_grid`,
:func:`stn_course.sampling.bilinear_sample`), differentiated by autograd; ``"fast"`` (the default) – the same
numbers with the hand-derived backward of lesson 4 (:mod:`stn_course.autograd`, its fast path); ``"aten"`` –
``F.affine_grid`` / ``F.grid_sample``; ``"triton"`` – lesson 7's fused kernel (:mod:`stn_course.gpu.affine`:
``theta`` and the input straight to the output, the grid never written) for the affine family, on CUDA (an explicit
request without CUDA or triton is an error); ``"auto"`` – ``"triton"`` where it can run on a CUDA input of the
affine family, else ``"aten"`` (the package's one rule, :mod:`stn_course.impls`). For ``projective`` and ``tps``
the grid always comes from :mod:`stn_course.grids` (torch has no equivalent), and ``"triton"`` refuses them. All
give the same numbers – gradients included, also at the identity start where every sampling point sits on a kink
(``head.bias.grad`` equals ``impl="aten"``'s to rounding: ``tests/test_kinks.py``). The module works under ``torch.compile`` (``impl="aten"`` with ``fullgraph=True``);
TorchScript is not supported.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_bool, check_choice, check_float_tensor, check_int, check_pair, check_size, check_tensor
from .autograd import AffineGridFunction, BilinearSampleFunction
from .grids import affine_grid, projective_grid, tps_control_points, tps_grid
from .impls import SPATIAL_TRANSFORMER
from .sampling import PADDING_MODES, bilinear_sample

__all__ = ["TRANSFORMS", "AFFINE_FAMILY", "SpatialTransformer", "num_params", "identity_params", "box_to_attention",
           "box_to_params", "window_to_params", "window_params", "params_to_matrix", "transform_to_grid", "small_localisation_net"]

TRANSFORMS = ("affine", "attention", "rotation", "rts", "projective", "tps")
AFFINE_FAMILY = ("affine", "attention", "rotation", "rts")  # what impl="triton" fuses (theta is a 2×3 matrix)


def _tps_grid_size(tps_grid_size: object) -> tuple[int, int]:
    return check_pair(tps_grid_size, "tps_grid_size", "(rows, cols)", minimum=2)


def num_params(transform: str, tps_grid_size: tuple[int, int] = (4, 4)) -> int:
    """Number of parameters the regression head outputs for ``transform``.

    >>> num_params("attention"), num_params("tps")
    (3, 32)
    """
    check_choice(transform, TRANSFORMS, "transform")
    if transform == "tps":
        rows, cols = _tps_grid_size(tps_grid_size)
        return 2 * rows * cols
    return {"affine": 6, "attention": 3, "rotation": 1, "rts": 4, "projective": 8}[transform]


def identity_params(transform: str, tps_grid_size: tuple[int, int] = (4, 4), dtype=None, device=None) -> torch.Tensor:
    """The parameter vector of the identity transform. ``-> (n_params,)``"""
    check_choice(transform, TRANSFORMS, "transform")
    if transform == "tps":
        return tps_control_points(*_tps_grid_size(tps_grid_size), dtype=dtype, device=device).reshape(-1)
    values = {"affine": [1, 0, 0, 0, 1, 0], "attention": [1, 0, 0], "rotation": [0], "rts": [0, 1, 0, 0],
              "projective": [1, 0, 0, 0, 1, 0, 0, 0]}[transform]
    return torch.tensor(values, dtype=dtype or torch.get_default_dtype(), device=device)


def window_params(transform: str, scale: float, tps_grid_size: tuple[int, int] = (4, 4), dtype=None,
                  device=None) -> torch.Tensor:
    """The parameter vector of the transform that reads a centred window ``scale`` times the input's extent
    (``scale = 1``: the identity; ``scale = out / in``: one output pixel per input pixel). ``-> (n_params,)``"""
    check_choice(transform, TRANSFORMS, "transform")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale:
        raise ValueError(f"scale: expected a positive number, got {scale!r}")
    if transform == "rotation" and scale != 1:
        raise ValueError("scale: the 'rotation' transform has no scale parameter; use 'rts' or 'affine'")
    # every identity is 1s where a scale goes and 0s elsewhere (the angle of rts, shifts, shears, H's last row),
    # except tps, whose control points scale towards the centre: scaling the whole vector is right for all
    return identity_params(transform, tps_grid_size, dtype=dtype, device=device) * scale


def box_to_attention(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The attention parameters ``(s, t_x, t_y)`` (``align_corners=False``) of the window whose edges are
    ``boxes (N, 4) = (x0, x1, y0, y1)`` in pixel coordinates of a ``height × width`` image (pixel centres at the
    integers, the image's edges at ``-1/2`` and ``W - 1/2``); the window has the image's aspect ratio, so ``s`` is
    read from its width. Differentiable in ``boxes``. ``-> (N, 3)``

    >>> box_to_attention(torch.tensor([[-0.5, 63.5, -0.5, 63.5], [15.5, 47.5, -0.5, 31.5]]), 64, 64).tolist()
    [[1.0, 0.0, 0.0], [0.5, 0.0, -0.5]]
    """
    check_float_tensor(boxes, "boxes")
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (N, 4) = (x0, x1, y0, y1), got {tuple(boxes.shape)}")
    x0, x1, y0, y1 = boxes.unbind(1)
    # pixel p -> normalized (2p + 1) / W - 1 (align_corners=False); the window's centre is t, its half-width s
    return torch.stack([(x1 - x0) / width, (x0 + x1 + 1) / width - 1, (y0 + y1 + 1) / height - 1], dim=1)


def window_to_params(transform: str, scale_x: torch.Tensor, scale_y: torch.Tensor, t_x: torch.Tensor,
                     t_y: torch.Tensor, tps_grid_size: tuple[int, int] = (4, 4)) -> torch.Tensor:
    """The parameters ``(N, n_params)`` of the transform that reads the normalized window
    ``[t_x - scale_x, t_x + scale_x] × [t_y - scale_y, t_y + scale_y]`` (all ``(N,)``). ``affine``, ``projective`` and
    ``tps`` read it exactly; ``attention`` and ``rts`` have one scale, ``scale_x`` (``scale_y`` is not used);
    ``rotation`` has neither scale nor shift (``ValueError``). Differentiable in every argument."""
    check_choice(transform, TRANSFORMS, "transform")
    if transform == "rotation":
        raise ValueError("transform: 'rotation' can neither zoom nor shift; use 'rts' or 'affine'")
    zero = torch.zeros_like(scale_x)
    if transform == "affine":
        return torch.stack([scale_x, zero, t_x, zero, scale_y, t_y], 1)
    if transform == "attention":
        return torch.stack([scale_x, t_x, t_y], 1)
    if transform == "rts":
        return torch.stack([zero, scale_x, t_x, t_y], 1)
    if transform == "projective":
        return torch.stack([scale_x, zero, t_x, zero, scale_y, t_y, zero, zero], 1)
    # tps: the source points are the targets moved by that affine map (a TPS through an affine motion is that motion)
    targets = tps_control_points(*_tps_grid_size(tps_grid_size), dtype=scale_x.dtype, device=scale_x.device)
    scale, shift = torch.stack([scale_x, scale_y], 1), torch.stack([t_x, t_y], 1)
    return (targets[None] * scale[:, None] + shift[:, None]).reshape(scale_x.shape[0], -1)


def box_to_params(transform: str, boxes: torch.Tensor, height: int, width: int,
                  tps_grid_size: tuple[int, int] = (4, 4), align_corners: bool = False) -> torch.Tensor:
    """The parameters ``(N, n_params)`` that make a transformer of ``transform`` read the pixels ``boxes (N, 4) =
    (x0, x1, y0, y1)`` cover: the first and last column, the first and last row, inclusive (pixel centres at the
    integers) of a ``height × width`` image. With ``align_corners=False`` the box's edges lie half a pixel outside
    those centres and map to the window's edges ``t ∓ s``; with ``True`` ``∓1`` are the first and last pixel
    *centres*, of the input and of the output alike, so the box's first and last centres map to ``t ∓ s`` (a
    one-pixel box has ``s = 0``; every side needs at least 2 pixels). ``affine``, ``projective`` and ``tps`` read any
    box exactly; ``attention`` and ``rts`` read a window of the image's shape whose scale comes from the box's
    columns (x0, x1). Differentiable in ``boxes``. ``-> (N, n_params)``

    >>> box_to_params("attention", torch.tensor([[16.0, 31.0, 16.0, 31.0]]), 48, 48).tolist()  # the central 16²
    [[0.3333333432674408, 0.0, 0.0]]
    >>> box_to_params("attention", torch.tensor([[0.0, 47.0, 0.0, 47.0]]), 48, 48, align_corners=True).tolist()
    [[1.0, 0.0, 0.0]]
    """
    check_float_tensor(boxes, "boxes")
    minimum = 2 if align_corners else 1
    height = check_int(height, "height", minimum=minimum)
    width = check_int(width, "width", minimum=minimum)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (N, 4) = (x0, x1, y0, y1), got {tuple(boxes.shape)}")
    x0, x1, y0, y1 = boxes.unbind(1)
    if align_corners:  # pixel p -> 2p / (W - 1) - 1: the first and last centres are the window's ends
        return window_to_params(transform, (x1 - x0) / (width - 1), (y1 - y0) / (height - 1),
                                (x0 + x1) / (width - 1) - 1, (y0 + y1) / (height - 1) - 1, tps_grid_size)
    edges = torch.stack([x0 - 0.5, x1 + 0.5, y0 - 0.5, y1 + 0.5], 1)  # a pixel spans its centre ± 1/2
    scale_x, t_x, t_y = box_to_attention(edges, height, width).unbind(1)
    return window_to_params(transform, scale_x, (edges[:, 3] - edges[:, 2]) / height, t_x, t_y, tps_grid_size)


def params_to_matrix(params: torch.Tensor, transform: str, tps_grid_size: tuple[int, int] = (4, 4)) -> torch.Tensor:
    """Parameters ``(N, n_params)`` -> the natural form: ``theta (N, 2, 3)`` for the affine family,
    ``H (N, 3, 3)`` for ``projective``, control points ``(N, K, 2)`` for ``tps``."""
    check_choice(transform, TRANSFORMS, "transform")
    check_tensor(params, "params")
    expected = num_params(transform, tps_grid_size)
    if params.ndim != 2 or params.shape[1] != expected:
        raise ValueError(f"params: expected shape (N, {expected}) for transform={transform!r}, "
                         f"got {tuple(params.shape)}")
    n = params.shape[0]
    zero = torch.zeros_like(params[:, 0])
    if transform == "affine":
        return params.view(n, 2, 3)
    if transform == "attention":
        s, tx, ty = params.unbind(1)
        return torch.stack([s, zero, tx, zero, s, ty], 1).view(n, 2, 3)
    if transform in ("rotation", "rts"):
        if transform == "rotation":
            angle, s, tx, ty = params[:, 0], 1 + zero, zero, zero
        else:
            angle, s, tx, ty = params.unbind(1)
        c, si = s * torch.cos(angle), s * torch.sin(angle)
        return torch.stack([c, -si, tx, si, c, ty], 1).view(n, 2, 3)
    if transform == "projective":
        return torch.cat([params, 1 + zero[:, None]], 1).view(n, 3, 3)
    return params.view(n, -1, 2)


def transform_to_grid(params: torch.Tensor, transform: str, size: Sequence[int], align_corners: bool = False,
                      impl: str = SPATIAL_TRANSFORMER.default, tps_grid_size: tuple[int, int] = (4, 4)):
    """Grid generator: parameters ``(N, n_params)`` -> ``(matrix, grid)`` with ``grid: (N, H_out, W_out, 2)``.

    ``size = (N, C, H_out, W_out)``; ``matrix`` as in :func:`params_to_matrix`. ``impl`` as for
    :class:`SpatialTransformer` (every path makes the same grid; ``"triton"`` and ``"auto"`` make ``"aten"``'s, for
    pictures: the fused kernel never writes one).

    >>> matrix, grid = transform_to_grid(torch.tensor([[1.0, 0.0, 0.0]]), "attention", (1, 1, 4, 6))
    >>> matrix.shape, grid.shape
    (torch.Size([1, 2, 3]), torch.Size([1, 4, 6, 2]))
    """
    SPATIAL_TRANSFORMER.check(impl)
    # the grid itself, for pictures: the fused path has none, so "triton" and "auto" make auto's fallback's
    impl = SPATIAL_TRANSFORMER.fallback if impl in ("triton", "auto") else impl
    matrix = params_to_matrix(params, transform, tps_grid_size)
    if transform == "projective":
        grid = projective_grid(matrix, size, align_corners)
    elif transform == "tps":
        target = tps_control_points(*_tps_grid_size(tps_grid_size), dtype=torch.float64, device=params.device)
        grid = tps_grid(matrix, size, align_corners, target_points=target)
    elif impl == "aten" and min(size) > 0:  # F.affine_grid refuses empty sizes, whose grid is empty anyway
        grid = F.affine_grid(matrix, list(size), align_corners=align_corners)
    elif impl in ("reference", "aten"):
        grid = affine_grid(matrix, tuple(size), align_corners)
    else:
        grid = AffineGridFunction.apply(matrix, tuple(size), align_corners)
    return matrix, grid


def _last_linear_features(module: nn.Module) -> int | None:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


class SpatialTransformer(nn.Module):
    """A spatial transformer: ``(N, C, H, W) -> (N, C, H_out, W_out)``.

    Args:
        localisation: module mapping the input ``(N, C, H, W)`` to features ``(N, F)`` (any shape that flattens to
            ``F`` per sample).
        transform: one of :data:`TRANSFORMS` (see the module docstring).
        out_size: ``(H_out, W_out)`` or an int for a square output; ``None`` keeps the input size. A smaller
            output with ``attention`` is a learned crop/zoom.
        align_corners: the grid convention, as in ``F.grid_sample``.
        impl: ``"reference"`` (the readable sampler, autograd), ``"fast"`` (the hand-derived backward, the
            default), ``"aten"`` (torch's kernels), ``"triton"`` (lesson 7's fused kernel, affine family) or
            ``"auto"``; see the module docstring and :mod:`stn_course.impls`.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
        loc_features: ``F``; see the module docstring for how it is found when omitted.
        input_size: ``(C, H, W)`` of one sample, to find ``F`` by a dry run.
        tps_grid_size: ``(rows, cols)`` of the thin-plate-spline control points (4×4 = 16 by default).

    ``forward(x, return_params=False)`` returns the output, or ``(output, matrix, grid)`` with ``matrix`` from
    :func:`params_to_matrix` and ``grid: (N, H_out, W_out, 2)``, for visualisation.

    >>> stn = SpatialTransformer(small_localisation_net(1, 32, 28), "attention", out_size=14)
    >>> stn(torch.rand(5, 1, 28, 28)).shape
    torch.Size([5, 1, 14, 14])
    """

    def __init__(self, localisation: nn.Module, transform: str = "affine",
                 out_size: int | Sequence[int] | None = None, align_corners: bool = False,
                 impl: str = SPATIAL_TRANSFORMER.default,
                 padding_mode: str = "zeros", loc_features: int | None = None,
                 input_size: Sequence[int] | None = None, tps_grid_size: Sequence[int] = (4, 4)) -> None:
        super().__init__()
        if not isinstance(localisation, nn.Module):
            raise TypeError(f"localisation: expected an nn.Module mapping (N, C, H, W) to (N, F), "
                            f"got {type(localisation).__name__}")
        check_choice(transform, TRANSFORMS, "transform")
        SPATIAL_TRANSFORMER.check(impl)
        check_choice(padding_mode, PADDING_MODES, "padding_mode")
        if impl == "triton" and transform not in AFFINE_FAMILY:
            raise ValueError(f"impl='triton' fuses the affine family ({', '.join(AFFINE_FAMILY)}), not "
                             f"transform={transform!r}: use impl='fast' or 'aten' for it")
        self.localisation = localisation
        self.transform = transform
        self.out_size = self._parse_out_size(out_size)
        self.align_corners = check_bool(align_corners, "align_corners")
        self.impl = impl
        self.padding_mode = padding_mode
        self.tps_grid_size = _tps_grid_size(tps_grid_size)
        features = self._find_features(loc_features, input_size)
        self.loc_features = features
        ref = next(localisation.parameters(), None)
        factory = {"dtype": ref.dtype, "device": ref.device} if ref is not None else {}
        self.head = nn.Linear(features, num_params(transform, self.tps_grid_size), **factory)
        self.reset_head()

    @staticmethod
    def _parse_out_size(out_size) -> tuple[int, int] | None:
        if out_size is None:
            return None
        return check_pair(out_size, "out_size", "(H_out, W_out)")

    def _find_features(self, loc_features, input_size) -> int:
        if loc_features is not None:
            return check_int(loc_features, "loc_features", minimum=1)
        if input_size is not None:
            input_size = check_size(input_size, 3, "input_size")
            ref = next(self.localisation.parameters(), None)
            kwargs = {"dtype": ref.dtype, "device": ref.device} if ref is not None else {}
            was_training = self.localisation.training
            self.localisation.eval()
            with torch.no_grad():
                features = self.localisation(torch.zeros(2, *input_size, **kwargs))
            self.localisation.train(was_training)
            return int(features.reshape(2, -1).shape[1])
        features = _last_linear_features(self.localisation)
        if features is None:
            raise ValueError("cannot tell the localisation network's feature size F: it has no nn.Linear; pass "
                             "loc_features=F or input_size=(C, H, W) for a dry run")
        return features

    def reset_head(self, scale: float = 1.0) -> None:
        """Zero weights and the identity bias: the transformer starts as the identity, the same for every input.

        ``scale < 1`` starts it at a centred window of that fraction of the input instead (:func:`window_params`),
        e.g. ``out / in`` to read the input's own pixels when the output is smaller than the input.
        """
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.copy_(window_params(self.transform, scale, self.tps_grid_size, self.head.bias.dtype,
                                               self.head.bias.device))

    def params(self, x: torch.Tensor) -> torch.Tensor:
        """Localisation net + regression head: ``(N, C, H, W) -> (N, n_params)``."""
        if x.device != self.head.weight.device:
            raise ValueError(f"x is on {x.device} but the transformer's parameters are on {self.head.weight.device}: "
                             "move one to the other (model.to(x.device))")
        features = self.localisation(x)
        features = features.flatten(1) if features.ndim > 1 else features.reshape(x.shape[0], -1)
        if features.shape[1] != self.loc_features:
            raise ValueError(f"localisation returned {features.shape[1]} features per sample but the head expects "
                             f"loc_features={self.loc_features}")
        return self.head(features)

    def resolved_impl(self, x: torch.Tensor) -> str:
        """The implementation a call on ``x`` uses: ``"auto"`` is ``"triton"`` for a CUDA input of the affine
        family when Triton can run there, ``"aten"`` otherwise (:meth:`stn_course.impls.ImplSet.resolve`)."""
        return SPATIAL_TRANSFORMER.resolve(self.impl, x, triton_fits=self.transform in AFFINE_FAMILY)

    def forward(self, x: torch.Tensor, return_params: bool = False):
        check_float_tensor(x, "x", 4, "(N, C, H, W)")
        n, c, h, w = x.shape
        h_out, w_out = self.out_size or (h, w)
        params = self.params(x)
        impl = self.resolved_impl(x)
        if impl == "triton":
            from .gpu.affine import affine_sample

            matrix = params_to_matrix(params.to(x.dtype), self.transform, self.tps_grid_size)
            out = affine_sample(x, matrix, (n, c, h_out, w_out), self.padding_mode, self.align_corners)
            if not return_params:
                return out
            with torch.no_grad():  # the fused kernel never makes a grid; one for pictures
                _, grid = transform_to_grid(params.to(x.dtype), self.transform, (n, c, h_out, w_out),
                                            self.align_corners, "aten", self.tps_grid_size)
            return out, matrix, grid
        matrix, grid = transform_to_grid(params.to(x.dtype), self.transform, (n, c, h_out, w_out),
                                         self.align_corners, impl, self.tps_grid_size)
        if impl == "aten":
            out = F.grid_sample(x, grid, mode="bilinear", padding_mode=self.padding_mode,
                                align_corners=self.align_corners)
        elif impl == "reference":
            out = bilinear_sample(x, grid, self.padding_mode, self.align_corners)
        else:
            out = BilinearSampleFunction.apply(x, grid, self.padding_mode, self.align_corners)
        return (out, matrix, grid) if return_params else out

    def extra_repr(self) -> str:
        return (f"transform={self.transform!r}, out_size={self.out_size}, align_corners={self.align_corners}, "
                f"impl={self.impl!r}, padding_mode={self.padding_mode!r}, loc_features={self.loc_features}")


def small_localisation_net(in_channels: int = 1, hidden: int = 32, input_size: int = 28) -> nn.Module:
    """A small conv localisation network ``(N, C, S, S) -> (N, hidden)`` (two conv+pool blocks, one linear layer).

    A handy default for MNIST-sized inputs in lesson 3; any module will do (lesson 5's ST-CNN uses
    :func:`stn_course.training.st_cnn_localisation_net`, with batch norm).

    >>> small_localisation_net(1, 32, 28)(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 32])
    """
    in_channels, hidden = check_int(in_channels, "in_channels", 1), check_int(hidden, "hidden", 1)
    input_size = check_int(input_size, "input_size", 4)
    side = input_size // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(8, 10, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(10 * side * side, hidden), nn.ReLU(),
    )
