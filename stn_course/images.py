"""Sample images as tensors (lessons 1–2 and every figure after them).

Real photographs and drawings come from the sample data Matplotlib ships (``matplotlib.get_data_path()/sample_data``),
so the course needs no download: :func:`sample_image` loads one as a float tensor ``(1, C, H, W)`` in ``[0, 1]``,
optionally resized and/or converted to grayscale. :func:`checkerboard` and :func:`grid_image` are small synthetic
images whose straight edges make every distortion (and every off-by-one) easy to see.
"""
from __future__ import annotations

import functools
import os
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ._validation import check_int, check_pair

__all__ = ["IMAGES", "list_images", "image_path", "sample_image", "checkerboard", "grid_image"]

#: Short name -> file in Matplotlib's ``sample_data`` folder.
IMAGES = {
    "grace_hopper": "grace_hopper.jpg",  # 600 × 512 RGB photograph
    "present": "Minduka_Present_Blue_Pack.png",  # 128 × 128 RGBA drawing
    "logo": "logo2.png",  # 130 × 542 RGBA, the Matplotlib logo (very non-square)
}

Size = Union[int, Sequence[int]]


def list_images() -> list[str]:
    """Names accepted by :func:`sample_image`."""
    return sorted(IMAGES)


def image_path(name: str) -> str:
    """Path of the sample image ``name`` inside Matplotlib's data folder."""
    if name not in IMAGES:
        raise ValueError(f"unknown sample image {name!r}; expected one of {', '.join(map(repr, list_images()))}")
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "sample_data", IMAGES[name])


@functools.lru_cache(maxsize=None)
def _load(name: str) -> np.ndarray:
    """The image as a read-only float32 array ``(H, W, 3)`` in [0, 1]; transparency is composited onto white."""
    import matplotlib.image

    path = image_path(name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"sample image {name!r} not found at {path}; is matplotlib fully installed?")
    array = matplotlib.image.imread(path)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.shape[-1] == 4:
        rgb, alpha = array[..., :3], array[..., 3:]
        array = rgb * alpha + (1.0 - alpha)
    array = np.ascontiguousarray(array[..., :3])
    array.setflags(write=False)
    return array


def _parse_size(size: Size | None, height: int, width: int) -> tuple[int, int] | None:
    """``None`` keeps the size; an int sets the longer side (keeping the aspect ratio); ``(H, W)`` is exact."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        if size <= 0:
            raise ValueError(f"size: expected a positive int or (H, W), got {size}")
        scale = int(size) / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))
    return check_pair(size, "size")


def sample_image(
    name: str = "grace_hopper",
    size: Size | None = None,
    gray: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A real image as a float tensor ``(1, C, H, W)`` in ``[0, 1]`` (``C = 3``, or 1 with ``gray=True``).

    ``size``: ``None`` keeps the original; an int sets the longer side, keeping the aspect ratio; ``(H, W)`` resizes
    exactly. Downsizing is antialiased (area averaging), so small images stay clean. Grayscale uses the ITU-R
    BT.601 luma weights ``0.299 R + 0.587 G + 0.114 B``.
    """
    array = _load(name)
    image = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
    target = _parse_size(size, image.shape[-2], image.shape[-1])
    if target is not None and target != tuple(image.shape[-2:]):
        image = F.interpolate(image, size=target, mode="bilinear", align_corners=False, antialias=True)
        image = image.clamp(0.0, 1.0)
    if gray:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        image = (image * weights).sum(1, keepdim=True)
    return image.to(dtype=dtype, device=device)


def checkerboard(
    height: int = 8,
    width: int | None = None,
    square: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A black-and-white checkerboard ``(1, 1, H, W)`` with ``square``-pixel squares; pixel (0, 0) is white (1)."""
    height, width = check_pair((height, height if width is None else width), "checkerboard size", "(height, width)")
    square = check_int(square, "square", minimum=1)
    ys = torch.arange(height, device=device).view(-1, 1) // square
    xs = torch.arange(width, device=device).view(1, -1) // square
    return ((xs + ys) % 2 == 0).to(dtype).view(1, 1, height, width)


def grid_image(
    height: int = 64,
    width: int | None = None,
    spacing: int = 8,
    thickness: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Graph paper: dark lines every ``spacing`` pixels on a white background, ``(1, 1, H, W)``.

    The first and last rows and columns are always lines, so an image that loses its border shows it at once.
    """
    height, width = check_pair((height, height if width is None else width), "grid_image size", "(height, width)")
    spacing, thickness = check_int(spacing, "spacing", minimum=1), check_int(thickness, "thickness", minimum=1)
    ys = torch.arange(height, device=device)
    xs = torch.arange(width, device=device)
    on_y = ((ys % spacing) < thickness) | (ys >= height - thickness)
    on_x = ((xs % spacing) < thickness) | (xs >= width - thickness)
    lines = on_y.view(-1, 1) | on_x.view(1, -1)
    return (1.0 - 0.85 * lines.to(dtype)).view(1, 1, height, width)
