"""The distorted-MNIST benchmarks of Jaderberg et al. (2015), appendix A.1 (lesson 5).

Distortions (:data:`DISTORTIONS`)
--------------------------------
All are generated with the package's own grids (:func:`stn_course.grids.affine_grid` and the projective / TPS
grids) and sampler (:func:`stn_course.sampling.bilinear_sample`), a whole batch per call. Parameters follow the
paper's appendix; where the paper leaves a choice open, ours is stated:

========  ======  ==================================================================================================
kind      canvas  distortion
========  ======  ==================================================================================================
``R``     28×28   rotation uniform in ±90° about the image centre (no translation, as in the paper).
``RTS``   42×42   rotation uniform in ±45°, scale uniform in [0.7, 1.2], random placement in the 42×42 canvas.
                  *Ours:* the placement range is computed per digit from its ink bounding box so the whole digit
                  stays inside the canvas.
``P``     28×28   projective: scale uniform in [0.75, 1.0], then each of the 4 image corners moved by Gaussian noise
                  (std ``0.1`` in normalized units ≈ 1.4 px; *ours*) and the homography through the 4 corners applied.
``E``     28×28   elastic: scale uniform in [0.75, 1.0], then a thin-plate-spline warp whose 16 control points on a
                  4×4 grid are each moved by uniform noise in ±``0.1`` normalized units (≈ ±1.4 px; *ours*).
``TC``    60×60   translated & cluttered (DeepMind's mnist-cluttered recipe): the digit is placed at a random
                  integer position (whole digit inside), then 8 random 6×6 crops of random digits of the same split
                  (never the test digits for a training set) are pasted at random positions (combined with ``max``). *Ours:* crops are taken from the central
                  20×20 region of the source digit so that most of them carry ink.
========  ======  ==================================================================================================
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import grids
from .._validation import check_choice, check_int, check_ndim, check_tensor
from ..impls import DISTORT
from ..sampling import bilinear_sample
from ..stn import params_to_matrix
from .mnist import DIGIT

__all__ = ["DISTORTIONS", "CANVAS", "canvas_size", "placement_theta", "ink_boxes", "random_placement", "paste_clutter",
           "distort"]

DISTORTIONS = ("R", "RTS", "P", "E", "TC")
CANVAS = {"R": 28, "RTS": 42, "P": 28, "E": 28, "TC": 60}

# Parameters of the generators (see the module docstring).
R_ANGLE = 90.0
RTS_ANGLE, RTS_SCALE = 45.0, (0.7, 1.2)
P_SCALE, P_CORNER_STD = (0.75, 1.0), 0.1
E_SCALE, E_CONTROL, E_JITTER = (0.75, 1.0), 4, 0.1
TC_CLUTTER, TC_CROP, TC_CROP_REGION = 8, 6, (4, 24)




def placement_theta(angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, in_size: int = DIGIT,
                    out_size: int = 42) -> torch.Tensor:
    """Sampling ``theta`` that rotates, scales and places an ``in_size`` digit in an ``out_size`` canvas.

    ``angle: (N,)`` degrees (positive = clockwise on screen, y points down), ``scale: (N,)``, ``shift: (N, 2)``
    pixels ``(dx, dy)`` of the digit centre from the canvas centre ``-> theta (N, 2, 3)`` for
    ``affine_grid(theta, (N, C, out_size, out_size), align_corners=False)``.

    The digit moves forward as ``u = s R(a) v + t`` (pixel offsets ``v`` from the digit centre, ``u`` from the
    canvas centre); the sampler needs the inverse, in normalized units (``u = p * out_size / 2``,
    ``v = q * in_size / 2``): ``q = A (p - 2 t / out_size)`` with ``A = out_size / (in_size s) R(-a)`` – lesson 3's
    ``rts`` transform (:func:`stn_course.stn.params_to_matrix`) with angle ``-a`` and scale ``out_size / (in_size s)``.
    """
    k = out_size / (in_size * scale)
    zero = torch.zeros_like(k)
    rts = torch.stack([-torch.deg2rad(angle), k, zero, zero], 1)  # (angle, scale, t_x, t_y)
    a = params_to_matrix(rts, "rts")[:, :, :2].contiguous()  # k R(-a)
    t = 2 * shift / out_size
    return torch.cat([a, -(a @ t.unsqueeze(-1))], -1)


def ink_boxes(images: torch.Tensor) -> torch.Tensor:
    """Ink bounding box of each digit as pixel-edge offsets from the image centre.

    ``images: (N, 1, H, W)`` ``-> (N, 4)`` = ``(x_min, x_max, y_min, y_max)``; an empty image gives zeros.
    """
    check_tensor(images, "images")
    check_ndim(images, 4, "images", "(N, 1, H, W)")
    n, _, h, w = images.shape
    ink = images[:, 0] > 0
    cols, rows = ink.any(1), ink.any(2)  # (N, W), (N, H)
    ar_w = torch.arange(w, device=images.device)
    ar_h = torch.arange(h, device=images.device)
    big = max(h, w) + 1
    x_min = torch.where(cols, ar_w, big).min(1).values
    x_max = torch.where(cols, ar_w, -1).max(1).values + 1
    y_min = torch.where(rows, ar_h, big).min(1).values
    y_max = torch.where(rows, ar_h, -1).max(1).values + 1
    box = torch.stack([x_min - w / 2, x_max - w / 2, y_min - h / 2, y_max - h / 2], 1).to(images.dtype)
    empty = ~ink.flatten(1).any(1)
    return torch.where(empty[:, None], torch.zeros_like(box), box)


def random_placement(boxes: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor, out_size: int,
                     generator: torch.Generator | None = None, margin: float = 1.5,
                     integer: bool = False) -> torch.Tensor:
    """Uniform random shift ``(N, 2)`` that keeps each rotated, scaled ink box inside the canvas.

    ``boxes: (N, 4)`` from :func:`ink_boxes`; ``margin`` pixels are kept free for the bilinear spread. A digit too big
    to fit is centred as well as it can be.
    """
    rad = torch.deg2rad(angle)
    cos, sin = torch.cos(rad), torch.sin(rad)
    xs = boxes[:, [0, 1, 1, 0]] * scale[:, None]
    ys = boxes[:, [2, 2, 3, 3]] * scale[:, None]
    rx, ry = cos[:, None] * xs - sin[:, None] * ys, sin[:, None] * xs + cos[:, None] * ys  # u = s R(a) v
    half = out_size / 2 - margin
    shifts = []
    for coord in (rx, ry):
        low, high = -half - coord.min(1).values, half - coord.max(1).values
        if integer:
            low, high = torch.ceil(low), torch.floor(high)
        u = torch.rand(len(boxes), generator=generator, dtype=torch.float64).to(boxes.dtype).to(boxes.device)
        if integer:  # each integer in [low, high] equally likely
            shift = torch.minimum(low + torch.floor(u * (high - low + 1)), high)
            shift = torch.where(low <= high, shift, torch.round((low + high) / 2))
        else:
            shift = torch.where(low <= high, low + u * (high - low), (low + high) / 2)
        shifts.append(shift)
    return torch.stack(shifts, 1)


def paste_clutter(canvas: torch.Tensor, sources: torch.Tensor, source_index: torch.Tensor, crop_at: torch.Tensor,
                  paste_at: torch.Tensor, crop: int = TC_CROP) -> torch.Tensor:
    """Paste ``crop × crop`` pieces of other digits onto ``canvas``, combining with ``max`` (DeepMind's clutter).

    ``canvas: (N, 1, S, S)``, ``sources: (M, 1, H, W)``, ``source_index: (N, K)`` long (which source digit each
    piece comes from), ``crop_at: (N, K, 2)`` long ``(row, col)`` of the crop's top-left corner in the source,
    ``paste_at: (N, K, 2)`` long ``(row, col)`` of its top-left corner on the canvas ``-> (N, 1, S, S)`` (new tensor).
    """
    check_tensor(canvas, "canvas")
    check_ndim(canvas, 4, "canvas", "(N, 1, S, S)")
    check_tensor(sources, "sources")
    check_ndim(sources, 4, "sources", "(M, 1, H, W)")
    for value, name in ((source_index, "source_index"), (crop_at, "crop_at"), (paste_at, "paste_at")):
        check_tensor(value, name)
        if value.dtype != torch.int64:
            raise TypeError(f"{name}: expected an int64 (long) tensor, got dtype {value.dtype}")
    n, _, s, _ = canvas.shape
    k = source_index.shape[1]
    ar = torch.arange(crop, device=canvas.device)
    rows = (crop_at[..., 0:1] + ar)[..., :, None]  # (N, K, crop, 1)
    cols = (crop_at[..., 1:2] + ar)[..., None, :]  # (N, K, 1, crop)
    pieces = sources[:, 0][source_index[..., None, None], rows, cols]  # (N, K, crop, crop)
    target = (paste_at[..., 0:1] + ar)[..., :, None] * s + (paste_at[..., 1:2] + ar)[..., None, :]
    out = canvas.reshape(n, s * s).clone()
    out.scatter_reduce_(1, target.reshape(n, k * crop * crop), pieces.reshape(n, -1).to(out.dtype), reduce="amax")
    return out.view(n, 1, s, s)


def _as_batch(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` / float ``(N, [1,] 28, 28)`` -> float ``(N, 1, 28, 28)`` in [0, 1]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    check_tensor(images, "images")
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images: expected shape (N, 28, 28) or (N, 1, 28, 28), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 255
    if not images.is_floating_point():
        raise TypeError(f"images: expected uint8 (0..255) or a float tensor in [0, 1], got dtype {images.dtype}")
    if images.numel() and not bool(((images >= 0) & (images <= 1)).all()):
        low, high = images.min().item(), images.max().item()
        raise ValueError(f"images: expected float values in [0, 1], got values in [{low:g}, {high:g}]"
                         + ("; pass uint8 digits (0..255) or divide by 255" if high > 1 else ""))
    return images


def canvas_size(kind: str, size: int | None = None) -> int:
    """The canvas side for ``kind``: ``size`` if given (validated), else :data:`CANVAS` ``[kind]``.

    ``RTS`` and ``TC`` place the whole digit inside the canvas, so they need ``size >= 28`` (and ``TC`` room for its
    6×6 clutter crops); the others warp the 28×28 digit onto any positive size.
    """
    check_choice(kind, DISTORTIONS, "kind")
    if size is None:
        return CANVAS[kind]
    s = check_int(size, "size", minimum=1)
    if kind in ("RTS", "TC") and s < DIGIT:
        raise ValueError(f"size: the {kind} distortion places the whole 28×28 digit inside the canvas, so it needs "
                         f"size >= 28, got {s}")
    return s


def _uniform(n: int, low: float, high: float, generator, dtype, device) -> torch.Tensor:
    return (low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)).to(dtype).to(device)


def _homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """3×3 homographies ``H`` with ``H (src, 1) ~ (dst, 1)`` for 4 point pairs. ``(N, 4, 2), (N, 4, 2) -> (N, 3, 3)``"""
    n = src.shape[0]
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)  # (N, 8, 8)
    b = torch.cat([u, v], 1)
    h = torch.linalg.solve(a.double(), b.double()).to(src.dtype)
    return torch.cat([h, torch.ones(n, 1, dtype=src.dtype, device=src.device)], 1).view(n, 3, 3)


def _projective_grid(images: torch.Tensor, size: int, generator) -> torch.Tensor:
    n, dtype, device = images.shape[0], images.dtype, images.device
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=dtype, device=device)
    scale = _uniform(n, *P_SCALE, generator, dtype, device)
    noise = (torch.randn(n, 4, 2, generator=generator, dtype=torch.float64) * P_CORNER_STD).to(dtype).to(device)
    moved = corners * scale[:, None, None] + noise  # where the image corners land in the output
    h = _homography(moved, corners.expand(n, 4, 2))  # output -> input, what the sampler needs
    return grids.projective_grid(h, (n, 1, size, size), align_corners=False)


def _elastic_grid(images: torch.Tensor, size: int, generator) -> torch.Tensor:
    n, dtype, device = images.shape[0], images.dtype, images.device
    control = grids.tps_control_points(E_CONTROL, E_CONTROL, dtype=dtype, device=device)  # (16, 2) target points
    scale = _uniform(n, *E_SCALE, generator, dtype, device)
    jitter = (torch.rand(n, E_CONTROL ** 2, 2, generator=generator, dtype=torch.float64) * 2 - 1) * E_JITTER
    # the output pixel at control point c reads the input at (c + jitter) / scale
    source = (control + jitter.to(dtype).to(device)) / scale[:, None, None]
    return grids.tps_grid(source, (n, 1, size, size), align_corners=False)


def distort(images: torch.Tensor | np.ndarray, kind: str, generator: torch.Generator | None = None,
            size: int | None = None, clutter_sources: torch.Tensor | np.ndarray | None = None,
            return_params: bool = False, impl: str = DISTORT.default):
    """Apply a random distortion of ``kind`` (one of :data:`DISTORTIONS`) to a batch of digits.

    ``images``: uint8 ``(N, 28, 28)`` (0..255) or float ``(N, [1,] 28, 28)`` in [0, 1]
    ``-> (N, 1, S, S)`` float in [0, 1] with ``S = size or CANVAS[kind]``.

    Randomness comes only from ``generator`` (a CPU ``torch.Generator``), so the same seed gives the same bytes.
    ``clutter_sources`` (``TC`` only) are the digits clutter is cropped from (default: the batch itself; a piece never
    comes from the digit it is pasted on when the sources are the batch). ``return_params=True`` also returns the
    sampling ``theta (N, 2, 3)`` for the affine kinds (``R``, ``RTS``, ``TC``), else ``None``.

    ``impl="reference"`` samples with the package's :func:`~stn_course.sampling.bilinear_sample`; ``"aten"`` hands
    the same grid to ``F.grid_sample`` (identical semantics, ~50× faster on CPU; equal to ~1e-6).
    """
    check_choice(kind, DISTORTIONS, "kind")
    DISTORT.check(impl)
    x = _as_batch(images)
    n, dtype, device = x.shape[0], x.dtype, x.device
    s = canvas_size(kind, size)
    theta = None
    if kind in ("R", "RTS", "TC"):
        if kind == "R":
            angle = _uniform(n, -R_ANGLE, R_ANGLE, generator, dtype, device)
            scale = torch.ones(n, dtype=dtype, device=device)
            shift = torch.zeros(n, 2, dtype=dtype, device=device)
        elif kind == "RTS":
            angle = _uniform(n, -RTS_ANGLE, RTS_ANGLE, generator, dtype, device)
            scale = _uniform(n, *RTS_SCALE, generator, dtype, device)
            shift = random_placement(ink_boxes(x), angle, scale, s, generator)
        else:
            angle = torch.zeros(n, dtype=dtype, device=device)
            scale = torch.ones(n, dtype=dtype, device=device)
            shift = random_placement(ink_boxes(x), angle, scale, s, generator, margin=0.0, integer=True)
            if (s - DIGIT) % 2:  # odd canvas: integer pixel positions sit half a pixel off the centre
                shift = shift + 0.5
        theta = placement_theta(angle, scale, shift, DIGIT, s)
        grid = grids.affine_grid(theta, (n, 1, s, s), align_corners=False)
    elif kind == "P":
        grid = _projective_grid(x, s, generator)
    else:
        grid = _elastic_grid(x, s, generator)
    if impl == "reference":
        out = bilinear_sample(x, grid, padding_mode="zeros", align_corners=False)
    else:
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if kind == "TC":
        pool = x if clutter_sources is None else _as_batch(clutter_sources).to(dtype).to(device)
        m = pool.shape[0]
        if m < 2 and clutter_sources is None:
            raise ValueError("TC clutter needs at least 2 digits in the batch (or clutter_sources)")
        k = TC_CLUTTER
        if clutter_sources is None:  # never the digit itself: an offset in 1..m-1
            offset = torch.randint(1, m, (n, k), generator=generator)
            index = (torch.arange(n)[:, None] + offset) % m
        else:
            index = torch.randint(0, m, (n, k), generator=generator)
        low, high = TC_CROP_REGION
        crop_at = torch.randint(low, high - TC_CROP + 1, (n, k, 2), generator=generator)
        paste_at = torch.randint(0, s - TC_CROP + 1, (n, k, 2), generator=generator)
        out = paste_clutter(out, pool, index.to(device), crop_at.to(device), paste_at.to(device), TC_CROP)
    out = out.clamp(0, 1)
    return (out, theta) if return_params else out
