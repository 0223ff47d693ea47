"""Procedural colour traffic signs under projective distortion and clutter – no download (lesson 8).

In the spirit of the German traffic-sign benchmark (GTSRB) of the spatial-transformer literature: ten classes of
signs that differ in **shape** (circle, triangle, octagon, diamond, square), **colour** (red, blue, yellow) and
**symbol** (a horizontal or vertical bar, a dot, a cross), so that a classifier needs all three cues
(:data:`CLASSES`). Classes 0–3 differ only in colour and in the bar's direction; 0 and 7 only in the shape.

How one image is made (everything from one ``torch.Generator``, so the same seed gives the same bytes):

1. The sign lives on its own plane, the square ``[-1, 1]²`` of *sign coordinates*. Its 4 corners are placed in the
   canvas (normalized coordinates, ``[-1, 1]²``, ``align_corners=False``): a square of half-side
   ``s ~ U(SCALE)`` turned by ``a ~ U(±ANGLE)`` about a random centre that keeps the square inside the canvas, then
   each corner moved by Gaussian noise of std ``PERSPECTIVE`` (a slanted view of the plane).
2. The homography ``H`` that maps the sign's corners to those 4 points (:func:`homography`, the null vector of
   the direct linear transform's 8×9 system) says where each point of the sign lands. The renderer goes backwards,
   as every sampler does: each canvas sub-pixel (2×2 per pixel, averaged) asks ``H⁻¹`` where it is on the sign's
   plane, and the sign is drawn there *analytically* – no raster of the sign is resampled, so edges stay sharp at
   any scale.
3. Behind the sign: a smooth random two-colour gradient and :data:`CLUTTER` random coloured blobs (ellipses and
   bars, some in the signs' own red and blue), then a per-image brightness and contrast jitter and a little noise.

:func:`make_signs` returns images ``(N, 3, S, S)`` float in ``[0, 1]``, labels ``(N,)`` and where the sign's
corners landed ``(N, 4, 2)`` (normalized canvas coordinates, in the order of :data:`SIGN_CORNERS`); that is all
:func:`rectify` needs to cut out the sign seen straight on – the "oracle" a spatial transformer must learn to be.

>>> images, labels, corners = make_signs(4, seed=0)
>>> tuple(images.shape), tuple(labels.shape), tuple(corners.shape)
((4, 3, 40, 40), (4,), (4, 4, 2))
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .. import grids
from .._validation import check_float_tensor, check_int

__all__ = ["CLASSES", "COLOURS", "SIGN_CORNERS", "CANVAS", "SCALE", "ANGLE", "PERSPECTIVE", "CLUTTER", "homography",
           "sign_corners", "render_signs", "make_signs", "rectify", "sign_datasets"]

COLOURS = {"red": (0.85, 0.1, 0.1), "blue": (0.1, 0.25, 0.8), "yellow": (0.95, 0.8, 0.1)}
# class -> (shape, colour, symbol); symbols are white, drawn inside the shape
CLASSES = (
    ("circle", "red", "hbar"), ("circle", "red", "vbar"), ("circle", "blue", "hbar"), ("circle", "blue", "vbar"),
    ("triangle", "red", "dot"), ("triangle", "yellow", "dot"), ("triangle", "red", "cross"),
    ("octagon", "red", "hbar"), ("diamond", "yellow", "cross"), ("square", "blue", "dot"),
)
SHAPES = ("circle", "triangle", "octagon", "diamond", "square")
SYMBOLS = ("hbar", "vbar", "dot", "cross")
# the sign's corners in sign coordinates: top-left, top-right, bottom-right, bottom-left (x right, y down)
SIGN_CORNERS = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))
CANVAS = 40  # pixels per side
SCALE = (0.25, 0.55)  # the sign's half-side, in normalized canvas units (10 to 22 pixels wide on a 40 canvas)
ANGLE = 20.0  # in-plane rotation, uniform in ± degrees (small: the bars' direction is part of the class)
PERSPECTIVE = 0.06  # std of each corner's displacement, normalized units (≈ 1.2 px on a 40 canvas)
CLUTTER = 6  # blobs behind the sign


def homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The homography through ``P >= 4`` point pairs: ``H (x, y, 1)ᵀ ~ (u, v, 1)ᵀ`` for every pair, up to scale.

    ``src, dst: (N, P, 2)`` point pairs of one homography ``-> H (N, 3, 3)`` in ``src``'s dtype (solved in float64),
    scaled to unit Frobenius norm with ``w > 0`` at the first source point (the side of the horizon the points are
    on). Each pair gives two equations, linear and homogeneous in the 9 entries of ``H``:
    ``h₁x + h₂y + h₃ − u (h₇x + h₈y + h₉) = 0`` and the same with ``v`` and ``h₄ h₅ h₆``; ``H`` spans the null
    space of that ``(2P, 9)`` system, found as the right singular vector of its smallest singular value (the direct
    linear transform). No entry is fixed to 1, so a map with ``H[2, 2] = 0`` – one that sends the source's origin to
    infinity – is found too. The system is set up in *normalized* coordinates (Hartley's normalisation): each
    point set is moved so that its centroid is the origin and scaled so that its mean distance from it is ``√2``;
    the solution is mapped back, ``H = T_dst⁻¹ Ĥ T_src``. Exact pairs give the same ``H`` either way; for noisy
    pairs (pixel coordinates, far from the origin) the smallest singular vector of the raw system minimises an
    algebraic error dominated by the entries of size ``x u`` and depends on where the origin is – normalised, it
    does not, and its transfer error is close to the best. Raises ``ValueError`` where the pairs do not pin ``H``
    down (three of 4 points on a line); a map with a NaN or infinite coordinate comes back NaN.

    >>> square = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]])
    >>> torch.allclose(homography(square, 2 * square), torch.diag(torch.tensor([2.0, 2.0, 1.0]))[None] / 3)
    True
    """
    check_float_tensor(src, "src", 3, "(N, P, 2)")
    check_float_tensor(dst, "dst", 3, "(N, P, 2)")
    if src.shape[1] < 4 or src.shape[2] != 2 or dst.shape != src.shape:
        raise ValueError(f"expected src and dst of the same shape (N, P, 2) with P >= 4 point pairs, got "
                         f"{tuple(src.shape)} and {tuple(dst.shape)}")
    dtype, src, dst = src.dtype, src.double(), dst.double()
    finite = torch.cat([src, dst], 1).flatten(1).isfinite().all(1)  # a NaN or infinite point gives a NaN H
    safe = torch.tensor(SIGN_CORNERS, dtype=torch.float64).repeat(1, src.shape[1] // 4 + 1, 1)[:, :src.shape[1]]
    t_src = _normalising(torch.where(finite[:, None, None], src, safe))
    t_dst = _normalising(torch.where(finite[:, None, None], dst, safe))
    points = lambda t, p: p * t[:, None, [0, 1], [0, 1]] + t[:, None, :2, 2]  # x' = s x + t (no turn, no shear)
    x, y = points(t_src, torch.where(finite[:, None, None], src, safe)).unbind(-1)
    u, v = points(t_dst, torch.where(finite[:, None, None], dst, safe)).unbind(-1)
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y, -u], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y, -v], -1)
    _, singular, vh = torch.linalg.svd(torch.cat([rows_u, rows_v], 1))
    if bool(((singular[:, 7] <= 1e-9 * singular[:, 0]) & finite).any()):
        raise ValueError("homography: these point pairs do not pin down one homography (are three of the points on "
                         "a line?): expected P >= 4 pairs of which 4 are in general position")
    h = torch.linalg.solve(t_dst, vh[:, -1].view(-1, 3, 3) @ t_src)  # back to the pairs' own coordinates
    h = h / h.flatten(1).norm(dim=1)[:, None, None]
    w = h[:, 2, 0] * src[:, 0, 0] + h[:, 2, 1] * src[:, 0, 1] + h[:, 2, 2]  # the first source point's w
    h = h * torch.where(w < 0, -1.0, 1.0).to(h)[:, None, None]
    return torch.where(finite[:, None, None], h, torch.nan).to(dtype)


def _normalising(points: torch.Tensor) -> torch.Tensor:
    """Hartley's normalisation of ``points (N, P, 2)``: the similarity ``T (N, 3, 3)`` that moves their centroid to
    the origin and scales their mean distance from it to ``√2`` (scale 1 where all points coincide)."""
    centre = points.mean(1)
    spread = (points - centre[:, None]).norm(dim=-1).mean(1)
    scale = torch.where(spread > 0, math.sqrt(2) / spread.clamp_min(1e-300), 1.0)
    t = torch.zeros(points.shape[0], 3, 3, dtype=points.dtype)
    t[:, 0, 0] = t[:, 1, 1] = scale
    t[:, :2, 2] = -scale[:, None] * centre
    t[:, 2, 2] = 1.0
    return t


def _uniform(shape, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def sign_corners(n: int, generator: torch.Generator, scale=SCALE, angle: float = ANGLE,
                 perspective: float = PERSPECTIVE) -> torch.Tensor:
    """Random places of ``n`` signs in the canvas: where the sign's 4 corners land, ``(N, 4, 2)`` float64 in
    normalized canvas coordinates (the order of :data:`SIGN_CORNERS`)."""
    n = check_int(n, "n", minimum=0)
    half = _uniform(n, *scale, generator)
    turn = torch.deg2rad(_uniform(n, -angle, angle, generator))
    reach = half * math.sqrt(2) * torch.cos(torch.pi / 4 - turn.abs()) + 2 * perspective  # the square's extent
    centre = _uniform((n, 2), -1, 1, generator) * (1 - reach)[:, None].clamp(min=0)
    c, s = torch.cos(turn), torch.sin(turn)
    rotation = torch.stack([c, -s, s, c], 1).view(n, 1, 2, 2)
    square = torch.tensor(SIGN_CORNERS, dtype=torch.float64)
    placed = (rotation @ square.view(1, 4, 2, 1)).squeeze(-1) * half[:, None, None] + centre[:, None, :]
    return placed + perspective * torch.randn(n, 4, 2, generator=generator, dtype=torch.float64)


def _shape_mask(shape: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if shape == "circle":
        return x * x + y * y <= 0.9 ** 2
    if shape == "triangle":  # apex up
        return (y <= 0.75) & (x.abs() <= 0.95 * (y + 0.85) / 1.6)
    if shape == "octagon":
        return (x.abs() <= 0.9) & (y.abs() <= 0.9) & (x.abs() + y.abs() <= 1.3)
    if shape == "diamond":
        return x.abs() + y.abs() <= 0.95
    return (x.abs() <= 0.8) & (y.abs() <= 0.8)


def _symbol_mask(symbol: str, shape: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if shape == "triangle":
        y = y - 0.25  # the triangle's centre of mass is low
    if symbol == "hbar":
        return (x.abs() <= 0.55) & (y.abs() <= 0.15)
    if symbol == "vbar":
        return (x.abs() <= 0.15) & (y.abs() <= 0.55)
    if symbol == "dot":
        return x * x + y * y <= 0.25 ** 2
    return ((x.abs() <= 0.4) & (y.abs() <= 0.1)) | ((x.abs() <= 0.1) & (y.abs() <= 0.4))


def _draw_sign(labels: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The signs at sign-plane ``points (N, P, 2)``: colour ``(N, P, 3)`` and coverage ``(N, P)`` (0 or 1)."""
    x, y = points[..., 0], points[..., 1]
    colour = torch.zeros(*points.shape[:2], 3, dtype=points.dtype)
    cover = torch.zeros(points.shape[:2], dtype=points.dtype)
    for k, (shape, paint, symbol) in enumerate(CLASSES):
        rows = labels == k
        if not rows.any():
            continue
        xs, ys = x[rows], y[rows]
        body = _shape_mask(shape, xs, ys)
        mark = body & _symbol_mask(symbol, shape, xs, ys)
        rgb = torch.tensor(COLOURS[paint], dtype=points.dtype).expand(*xs.shape, 3).clone()
        rgb[mark] = 0.97
        colour[rows] = rgb
        cover[rows] = body.to(points.dtype)
    return colour, cover


def _background(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Smooth two-colour gradients with :data:`CLUTTER` coloured ellipses and bars. ``-> (N, 3, S, S)`` float64"""
    lin = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    direction = torch.rand(n, generator=generator, dtype=torch.float64) * 2 * torch.pi
    ramp = (xx * torch.cos(direction)[:, None, None] + yy * torch.sin(direction)[:, None, None] + 1.5) / 3
    a, b = (_uniform((n, 3, 1, 1), 0.2, 0.8, generator) for _ in range(2))
    image = a + (b - a) * ramp[:, None]
    for _ in range(CLUTTER):
        centre = _uniform((n, 2, 1, 1), -1.1, 1.1, generator)
        radii = _uniform((n, 2, 1, 1), 0.05, 0.45, generator)
        dx, dy = (xx - centre[:, 0]) / radii[:, 0], (yy - centre[:, 1]) / radii[:, 1]
        ellipse = dx * dx + dy * dy <= 1
        bar = (dx.abs() <= 1) & (dy.abs() <= 0.25)
        use_bar = torch.rand(n, 1, 1, generator=generator) < 0.5
        mask = torch.where(use_bar, bar, ellipse)[:, None]
        paint = torch.rand(n, 3, 1, 1, generator=generator, dtype=torch.float64)
        signish = torch.rand(n, generator=generator) < 0.3  # some blobs in the signs' own colours
        pick = torch.randint(0, 2, (n,), generator=generator)
        own = torch.tensor([COLOURS["red"], COLOURS["blue"]], dtype=torch.float64)[pick].view(n, 3, 1, 1)
        paint = torch.where(signish.view(n, 1, 1, 1), own, paint)
        image = torch.where(mask, paint, image)
    return image


def render_signs(labels: torch.Tensor, corners: torch.Tensor, generator: torch.Generator, size: int = CANVAS,
                 clutter: bool = True) -> torch.Tensor:
    """Draw signs of ``labels (N,)`` whose corners land at ``corners (N, 4, 2)`` on ``size²`` canvases.

    ``-> (N, 3, size, size)`` float32 in ``[0, 1]``; ``clutter=False``: a plain grey background, no jitter, no noise.
    """
    size = check_int(size, "size", minimum=2)
    n = labels.shape[0]
    square = torch.tensor(SIGN_CORNERS, dtype=torch.float64).expand(n, 4, 2)
    to_sign = homography(corners.double(), square)  # canvas -> sign plane: what the renderer asks
    sub = 2 * size  # 2×2 sub-pixels per pixel
    lin = (torch.arange(sub, dtype=torch.float64) + 0.5) / sub * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    canvas = torch.stack([xx, yy, torch.ones_like(xx)], -1).view(1, -1, 3)
    uvw = canvas @ to_sign.transpose(1, 2)  # (N, P, 3)
    depth = uvw[..., 2:]
    points = uvw[..., :2] / torch.where(depth.abs() < 1e-9, torch.full_like(depth, 1e-9), depth)
    colour, cover = _draw_sign(labels, points)
    cover = cover * (depth[..., 0] > 0)
    colour = colour.view(n, sub, sub, 3).permute(0, 3, 1, 2)
    cover = cover.view(n, 1, sub, sub)
    colour, cover = F.avg_pool2d(colour * cover, 2), F.avg_pool2d(cover, 2)
    if clutter:
        back = _background(n, size, generator)
    else:
        back = torch.full((n, 3, size, size), 0.5, dtype=torch.float64)
    image = colour + (1 - cover) * back
    if clutter:
        contrast = _uniform((n, 1, 1, 1), 0.7, 1.2, generator)
        brightness = _uniform((n, 1, 1, 1), -0.15, 0.15, generator)
        noise = 0.03 * torch.randn(image.shape, generator=generator, dtype=torch.float64)
        image = (image - 0.5) * contrast + 0.5 + brightness + noise
    return image.clamp(0, 1).float()


def make_signs(n: int, seed: int = 0, size: int = CANVAS, clutter: bool = True, scale=SCALE, angle: float = ANGLE,
               perspective: float = PERSPECTIVE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` random signs, balanced over the classes: ``(images (N, 3, S, S) float32 in [0, 1], labels (N,) int64,
    corners (N, 4, 2) float64)``. The same ``seed`` gives the same bytes; ``scale``, ``angle`` and
    ``perspective`` as :data:`SCALE`, :data:`ANGLE`, :data:`PERSPECTIVE` (``perspective=0`` and ``angle=0``: upright,
    square signs)."""
    n = check_int(n, "n", minimum=0)
    generator = torch.Generator().manual_seed(int(seed))
    labels = torch.arange(n) % len(CLASSES)
    labels = labels[torch.randperm(n, generator=generator)]
    corners = sign_corners(n, generator, scale, angle, perspective)
    return render_signs(labels, corners, generator, size, clutter), labels, corners


def rectify(images: torch.Tensor, corners: torch.Tensor, out_size: int, margin: int = 0) -> torch.Tensor:
    """The signs seen straight on: ``images (N, C, S, S)``, where their corners landed ``corners (N, 4, 2)``
    -> ``(N, C, out_size, out_size)``, the sign's square filling the output but for a border of ``margin`` output
    pixels on every side (what lies around the sign in the canvas).

    The sampler reads backwards: output pixel ``p`` (normalized, ``align_corners=False``) reads the canvas at
    ``H p`` with ``H`` the homography from where the sign's corners are in the *output* to where they are in the
    canvas – not the other way round. The square's edges sit on pixel edges, ``margin`` pixels in: its corners are at
    ``±(1 − 2 margin / out_size)`` in the output's normalized coordinates.
    """
    check_float_tensor(images, "images", 4, "(N, C, H, W)")
    out_size = check_int(out_size, "out_size", minimum=1)
    margin = check_int(margin, "margin", minimum=0)
    if 2 * margin >= out_size:
        raise ValueError(f"rectify: expected a margin of fewer than half the output's {out_size} pixels, got {margin}")
    inside = 1 - 2 * margin / out_size  # the square's half-side in the output's normalized coordinates
    square = inside * torch.tensor(SIGN_CORNERS, dtype=corners.dtype, device=corners.device).expand_as(corners)
    h = homography(square, corners).to(images.dtype)
    grid = grids.projective_grid(h, (images.shape[0], images.shape[1], out_size, out_size), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def sign_datasets(n_train: int, n_test: int, seed: int = 0, **options) -> tuple[TensorDataset, TensorDataset]:
    """A training and a test set of signs (disjoint seeds): ``TensorDataset(images, labels)`` each, fixed once
    drawn. ``options`` as for :func:`make_signs`."""
    train = make_signs(n_train, seed=2 * int(seed), **options)
    test = make_signs(n_test, seed=2 * int(seed) + 1, **options)
    return TensorDataset(*train[:2]), TensorDataset(*test[:2])
