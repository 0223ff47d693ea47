"""Affine transforms in homogeneous coordinates (lesson 1).

Conventions used throughout the course
--------------------------------------
* A point is a column vector ``(x, y, 1)``: ``x`` runs along the image width (columns), ``y`` along the height
  (rows) and **points down**, exactly as in pixel indexing ``image[y, x]`` and in ``F.affine_grid``.
* Matrices are ``(3, 3)`` (or batched ``(N, 3, 3)``) and act on the left: ``p' = M @ p``. ``compose(A, B)`` is
  ``A @ B``: *B is applied first*.
* ``rotation(angle)`` is ``[[cos, -sin], [sin, cos]]``. Because ``y`` points down, a positive angle turns points
  **clockwise on screen** (the usual counter-clockwise rotation, seen in a y-down image).
* A sampler works backwards: for every *output* pixel it asks where to read in the *input*. The matrix you hand it
  (``theta``) is therefore the inverse of the motion you want to see: ``theta = invert(forward_motion)``.

Pixel and normalized coordinates
--------------------------------
``F.affine_grid``/``F.grid_sample`` speak *normalized* coordinates in ``[-1, 1]``. With ``align_corners=True``,
-1 and +1 are the *centres* of the first and last pixels: ``u = 2 x / (W - 1) - 1``. With ``align_corners=False``
(PyTorch's default), they are the *outer edges* of those pixels: ``u = (2 x + 1) / W - 1``.
:func:`normalization_matrix` builds that map as a matrix, so converting a pixel-space matrix ``A`` (output pixel
-> input pixel) to a ``theta`` is a change of basis: ``theta = N_in @ A @ N_out^{-1}`` (:func:`pixel_to_theta`).
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Sequence, Union

import torch

from ._validation import check_bool, check_float, check_same_device, check_size, check_tensor

Scalar = Union[float, int, torch.Tensor]

__all__ = [
    "scaling",
    "rotation",
    "shear",
    "translation",
    "identity",
    "compose",
    "invert",
    "to_homogeneous",
    "from_homogeneous",
    "apply",
    "normalization_matrix",
    "pixel_to_theta",
    "theta_to_pixel",
    "rotation_about",
]


def _as_tensor(value: Scalar, dtype: torch.dtype | None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if value.ndim > 1:
            raise ValueError(f"expected a scalar or a 1-D tensor of shape (N,), got shape {tuple(value.shape)}")
        return value if dtype is None else value.to(dtype)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number or a tensor of shape (N,), got {type(value).__name__} {value!r}")
    return torch.tensor(float(value), dtype=dtype or torch.get_default_dtype())


def _matrix(rows: list[list[Scalar]], dtype: torch.dtype | None = None) -> torch.Tensor:
    """Stack a 3×3 nested list of scalars / (N,) tensors into (3, 3) or (N, 3, 3)."""
    flat = [_as_tensor(v, dtype) for row in rows for v in row]
    float_dtypes = [t.dtype for t in flat if t.is_floating_point()]
    common = functools.reduce(torch.promote_types, float_dtypes) if float_dtypes else torch.get_default_dtype()
    given = {v.device for row in rows for v in row if isinstance(v, torch.Tensor)}
    if len(given) > 1:
        raise ValueError(f"expected every tensor argument on one device, got {sorted(str(d) for d in given)}")
    device = next(iter(given), torch.device("cpu"))  # the constants (0, 1, scalars) go where the tensors are
    flat = torch.broadcast_tensors(*[t.to(device=device, dtype=common) for t in flat])
    return torch.stack(flat, dim=-1).reshape(*flat[0].shape, 3, 3)


def identity(dtype: torch.dtype | None = None) -> torch.Tensor:
    """The 3×3 identity. ``() -> (3, 3)``"""
    return torch.eye(3, dtype=dtype or torch.get_default_dtype())


def scaling(sx: Scalar, sy: Scalar | None = None) -> torch.Tensor:
    """Scale by ``sx`` along x and ``sy`` along y (``sy`` defaults to ``sx``). Scalars -> (3, 3); (N,) -> (N, 3, 3).

    >>> scaling(2.0, 3.0)
    tensor([[2., 0., 0.],
            [0., 3., 0.],
            [0., 0., 1.]])
    """
    sy = sx if sy is None else sy
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotation(angle: Scalar, degrees: bool = False) -> torch.Tensor:
    """Rotate about the origin by ``angle`` (radians unless ``degrees``). Scalars -> (3, 3); (N,) -> (N, 3, 3).

    ``[[cos a, -sin a], [sin a, cos a]]``: with y pointing down this turns points clockwise on screen.
    """
    a = _as_tensor(angle, None)
    if not a.is_floating_point():
        a = a.to(torch.get_default_dtype())
    if degrees:
        a = a * (math.pi / 180.0)
    c, s = torch.cos(a), torch.sin(a)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def shear(shx: Scalar, shy: Scalar = 0.0) -> torch.Tensor:
    """Shear: ``x' = x + shx * y`` and ``y' = y + shy * x``. Scalars -> (3, 3); (N,) -> (N, 3, 3)."""
    return _matrix([[1, shx, 0], [shy, 1, 0], [0, 0, 1]])


def translation(tx: Scalar, ty: Scalar) -> torch.Tensor:
    """Translate by ``(tx, ty)``. Scalars -> (3, 3); (N,) -> (N, 3, 3)."""
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def compose(*matrices: torch.Tensor) -> torch.Tensor:
    """Compose transforms: ``compose(A, B, C) = A @ B @ C`` – *C is applied first*. Shapes broadcast.

    ``(…, 3, 3)* -> (…, 3, 3)``

    >>> compose(translation(1.0, 0.0), scaling(2.0)) @ torch.tensor([1.0, 1.0, 1.0])
    tensor([3., 2., 1.])
    """
    if not matrices:
        raise ValueError("compose: expected at least one (3, 3) matrix")
    result = matrices[0]
    for m in matrices:
        check_tensor(m, "compose")
        if m.shape[-2:] != (3, 3):
            raise ValueError(f"compose: expected (3, 3) or (N, 3, 3) matrices, got shape {tuple(m.shape)}")
    check_same_device({f"matrices[{i}]": m for i, m in enumerate(matrices)})
    dtype = functools.reduce(torch.promote_types, [m.dtype for m in matrices])
    for m in matrices[1:]:
        result = result.to(dtype) @ m.to(dtype)
    return result.to(dtype)


def to_homogeneous(theta: torch.Tensor) -> torch.Tensor:
    """Append the row ``[0, 0, 1]``. ``(…, 2, 3) -> (…, 3, 3)``"""
    check_tensor(theta, "theta")
    if theta.shape[-2:] != (2, 3):
        raise ValueError(f"theta: expected shape (2, 3) or (N, 2, 3), got {tuple(theta.shape)}")
    last = torch.zeros(*theta.shape[:-2], 1, 3, dtype=theta.dtype, device=theta.device)
    last[..., 0, 2] = 1
    return torch.cat([theta, last], dim=-2)


def from_homogeneous(matrix: torch.Tensor) -> torch.Tensor:
    """Drop the last row of an affine matrix, checking that it is ``[0, 0, 1]``. ``(…, 3, 3) -> (…, 2, 3)``"""
    check_tensor(matrix, "matrix")
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"matrix: expected shape (3, 3) or (N, 3, 3), got {tuple(matrix.shape)}")
    last = torch.tensor([0.0, 0.0, 1.0], dtype=matrix.dtype, device=matrix.device)
    if not torch.allclose(matrix[..., 2, :], last.expand_as(matrix[..., 2, :]), atol=1e-6):
        raise ValueError("matrix: last row must be [0, 0, 1] for an affine transform (this one is projective)")
    return matrix[..., :2, :]


def invert(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse transform. Accepts (3, 3)/(N, 3, 3) homogeneous or (2, 3)/(N, 2, 3) affine; returns the same shape."""
    check_tensor(matrix, "matrix")
    check_float(matrix, "matrix")
    if matrix.shape[-2:] == (2, 3):
        return from_homogeneous(torch.linalg.inv(to_homogeneous(matrix)))
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"matrix: expected shape (…, 3, 3) or (…, 2, 3), got {tuple(matrix.shape)}")
    return torch.linalg.inv(matrix)


def apply(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply a (…, 3, 3) or (…, 2, 3) transform to points. ``points: (…, P, 2) -> (…, P, 2)``

    For a projective (3, 3) matrix the result is divided by the homogeneous coordinate.

    >>> apply(translation(2.0, 1.0), torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    tensor([[2., 1.],
            [3., 2.]])
    """
    check_tensor(matrix, "matrix")
    check_float(matrix, "matrix")
    check_tensor(points, "points")
    check_float(points, "points")
    if points.shape[-1] != 2:
        raise ValueError(f"points: expected shape (…, P, 2) holding (x, y), got {tuple(points.shape)}")
    check_same_device({"matrix": matrix, "points": points})
    m = to_homogeneous(matrix) if matrix.shape[-2:] == (2, 3) else matrix
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"matrix: expected shape (…, 3, 3) or (…, 2, 3), got {tuple(matrix.shape)}")
    ones = torch.ones(*points.shape[:-1], 1, dtype=points.dtype, device=points.device)
    homogeneous = torch.cat([points, ones], dim=-1)
    mapped = homogeneous @ m.to(points.dtype).transpose(-1, -2)
    return mapped[..., :2] / mapped[..., 2:]


def normalization_matrix(
    size: Sequence[int], align_corners: bool = False, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Matrix mapping pixel coordinates (x, y) of an image of ``size = (H, W)`` to normalized [-1, 1] coordinates.

    ``align_corners=True``:  ``u = 2 x / (W - 1) - 1`` (pixel centres at ±1; a 1-pixel side maps to 0).
    ``align_corners=False``: ``u = (2 x + 1) / W - 1`` (pixel edges at ±1).
    ``-> (3, 3)``

    >>> normalization_matrix((4, 4), align_corners=True) @ torch.tensor([3.0, 0.0, 1.0])
    tensor([ 1., -1.,  1.])
    """
    height, width = check_size(size, 2)
    align_corners = check_bool(align_corners, "align_corners")

    def axis(n: int) -> tuple[float, float]:
        if align_corners:
            return (2.0 / (n - 1), -1.0) if n > 1 else (0.0, 0.0)
        return 2.0 / n, 1.0 / n - 1.0

    (ax, bx), (ay, by) = axis(width), axis(height)
    return torch.tensor([[ax, 0.0, bx], [0.0, ay, by], [0.0, 0.0, 1.0]], dtype=dtype or torch.get_default_dtype())


def _denormalization_matrix(size: Sequence[int], align_corners: bool, dtype: torch.dtype) -> torch.Tensor:
    height, width = check_size(size, 2)
    if align_corners and 1 in (height, width):
        # The forward map collapses a 1-pixel axis onto 0; its "inverse" sends 0 back to the only pixel, 0.
        def axis(n: int) -> tuple[float, float]:
            return ((n - 1) / 2.0, (n - 1) / 2.0) if n > 1 else (0.0, 0.0)

        (ax, bx), (ay, by) = axis(width), axis(height)
        return torch.tensor([[ax, 0.0, bx], [0.0, ay, by], [0.0, 0.0, 1.0]], dtype=dtype)
    return torch.linalg.inv(normalization_matrix(size, align_corners, torch.float64)).to(dtype)


def pixel_to_theta(
    matrix: torch.Tensor,
    in_size: Sequence[int],
    out_size: Sequence[int] | None = None,
    align_corners: bool = False,
) -> torch.Tensor:
    """Convert a pixel-space sampling matrix to a normalized ``theta`` for ``affine_grid``.

    ``matrix`` maps *output* pixel coordinates to *input* pixel coordinates (the backward map a sampler needs).
    ``in_size``/``out_size`` are ``(H, W)``; ``out_size`` defaults to ``in_size``.
    ``(…, 3, 3) or (…, 2, 3) -> (…, 2, 3)``

    >>> pixel_to_theta(identity(), (28, 28))  # the identity in pixels is the identity theta
    tensor([[1., 0., 0.],
            [0., 1., 0.]])
    """
    check_tensor(matrix, "matrix")
    check_float(matrix, "matrix")
    m = to_homogeneous(matrix) if matrix.shape[-2:] == (2, 3) else matrix
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"matrix: expected shape (…, 3, 3) or (…, 2, 3), got {tuple(matrix.shape)}")
    out_size = in_size if out_size is None else out_size
    n_in = normalization_matrix(in_size, align_corners, m.dtype).to(m.device)
    d_out = _denormalization_matrix(out_size, align_corners, m.dtype).to(m.device)
    return from_homogeneous(n_in @ m @ d_out)


def theta_to_pixel(
    theta: torch.Tensor,
    in_size: Sequence[int],
    out_size: Sequence[int] | None = None,
    align_corners: bool = False,
) -> torch.Tensor:
    """Inverse of :func:`pixel_to_theta`: the (…, 3, 3) matrix mapping output pixels to input pixels."""
    check_tensor(theta, "theta")
    check_float(theta, "theta")
    out_size = in_size if out_size is None else out_size
    t = to_homogeneous(theta) if theta.shape[-2:] == (2, 3) else theta
    d_in = _denormalization_matrix(in_size, align_corners, t.dtype).to(t.device)
    n_out = normalization_matrix(out_size, align_corners, t.dtype).to(t.device)
    return d_in @ t @ n_out


def rotation_about(angle: Scalar, cx: Scalar, cy: Scalar) -> torch.Tensor:
    """Rotate by ``angle`` (radians) about the point ``(cx, cy)`` instead of the origin: ``T(c) R T(-c)``.

    Move the centre to the origin, rotate, move it back (the rightmost matrix is applied first); the centre stays
    where it is. Scalars -> (3, 3); (N,) -> (N, 3, 3).

    >>> apply(rotation_about(math.pi / 2, 2.0, 1.0), torch.tensor([[2.0, 1.0], [3.0, 1.0]])).round(decimals=5)
    tensor([[2., 1.],
            [2., 2.]])
    """
    return compose(translation(cx, cy), rotation(angle), translation(-cx, -cy))
