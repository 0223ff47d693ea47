"""Datasets of distorted digits, fresh distortions every training epoch, and their loaders (lesson 5).

:class:`DistortedMNIST` is a ``torch.utils.data.Dataset``. A training set draws fresh distortions every epoch
(:meth:`DistortedMNIST.set_epoch`, seeded by ``(seed, epoch)``); a test set is generated once from its seed. The
same seed gives the same bytes. Indexing with a list of indices returns a whole batch, which
:func:`make_loaders` uses to skip per-sample collation.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from .._validation import check_choice, check_int
from ..impls import DISTORT
from .distortions import DISTORTIONS, _as_batch, canvas_size, distort
from .mnist import load_splits

__all__ = ["DistortedMNIST", "EpochBatchSampler", "make_datasets", "make_split_datasets", "make_loaders"]




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
                 seed: int = 0, train: bool = True, size: int | None = None, impl: str = DISTORT.default,
                 chunk: int = 1000, cache: bool = True):
        check_choice(kind, DISTORTIONS, "kind")
        DISTORT.check(impl)
        self.source = torch.as_tensor(np.asarray(images))
        if self.source.dtype != torch.uint8 or self.source.ndim != 3:
            raise TypeError(f"images: expected uint8 (N, 28, 28), got {self.source.dtype} {tuple(self.source.shape)}")
        self.labels = torch.as_tensor(np.asarray(labels)).long()
        if len(self.labels) != len(self.source):
            raise ValueError(f"{len(self.source)} images but {len(self.labels)} labels")
        self.kind, self.seed, self.train, self.impl = kind, int(seed), bool(train), impl
        self.size = canvas_size(kind, size)
        self.chunk, self.cache = check_int(chunk, "chunk", minimum=1), bool(cache)
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
                  impl: str = DISTORT.default) -> tuple[DistortedMNIST, DistortedMNIST]:
    """``(train, test)`` :class:`DistortedMNIST` sets of ``kind`` from ``source`` (see :func:`load_splits`).

    ``n_train`` / ``n_test`` keep a class-balanced-by-chance prefix (the splits are sorted by a seeded shuffle), for
    quick experiments. The split itself does not depend on ``seed``; the distortions do.
    """
    check_choice(kind, DISTORTIONS, "kind")
    canvas_size(kind, size)
    x_train, y_train, x_test, y_test = load_splits(source)
    counts = {}
    for name, value, available in (("n_train", n_train, len(x_train)), ("n_test", n_test, len(x_test))):
        if value is not None:
            value = check_int(value, name, minimum=1)
            if value > available:
                raise ValueError(f"{name}: the source has {available} digits in that split, got {name}={value}")
        counts[name] = value
    rng = np.random.default_rng(1234)
    tr, te = rng.permutation(len(x_train)), rng.permutation(len(x_test))
    tr, te = tr[:counts["n_train"]], te[:counts["n_test"]]
    train = DistortedMNIST(x_train[tr], y_train[tr], kind, seed=seed, train=True, size=size, impl=impl)
    test = DistortedMNIST(x_test[te], y_test[te], kind, seed=seed, train=False, size=size, impl=impl)
    return train, test


VALIDATION_SEED_OFFSET = 1_000_003  # a validation set's distortions are drawn apart from the test set's


def make_split_datasets(kind: str, seed: int = 0, validation: float = 0.1, source: str | os.PathLike = "embedded",
                        n_train: int | None = None, n_test: int | None = None, size: int | None = None,
                        impl: str = DISTORT.default) -> tuple[DistortedMNIST, DistortedMNIST, DistortedMNIST]:
    """``(train, validation, test)``: :func:`make_datasets`, with a ``validation`` fraction of the *training digits*
    held out (:func:`stn_course.tuning.validation_split`, seeded by ``seed``) as a fixed distorted set – what every
    choice (a learning rate) is made on, so that the test set is used once, for the final number (lesson 5).

    >>> train, val, test = make_split_datasets("R", seed=0, n_train=100, n_test=10)
    >>> len(train), len(val), len(test), val.train
    (90, 10, 10, False)
    """
    from ..tuning import validation_split

    full, test = make_datasets(kind, seed=seed, source=source, n_train=n_train, n_test=n_test, size=size, impl=impl)
    keep, held = validation_split(len(full.source), validation, seed=seed)
    train = DistortedMNIST(full.source[keep], full.labels[keep], kind, seed=seed, train=True, size=size, impl=impl)
    val = DistortedMNIST(full.source[held], full.labels[held], kind, seed=seed + VALIDATION_SEED_OFFSET,
                         train=False, size=size, impl=impl)
    return train, val, test


class EpochBatchSampler(Sampler):
    """Shuffled batches whose order depends only on ``(seed, epoch)``, not on how often the loader was used.

    Epoch ``e`` yields exactly the batches a fresh ``BatchSampler(RandomSampler(data, generator=seeded(seed)))``
    yields on its ``(e + 1)``-th pass. :meth:`set_epoch` picks the epoch (``training.fit`` calls it); without it,
    every pass moves on to the next epoch, as a plain loader would. So two models trained one after the other on the
    same loaders see the same batches in the same order – the fair comparison of lesson 5.
    """

    def __init__(self, data: Dataset, batch_size: int, seed: int = 0):
        self.data, self.batch_size, self.seed = data, batch_size, int(seed)
        self.epoch = 0
        self._states = [torch.Generator().manual_seed(self.seed).get_state()]  # the generator before each pass

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_int(epoch, "epoch", 0)

    def _sampler(self, epoch: int) -> BatchSampler:
        generator = torch.Generator()
        generator.set_state(self._states[epoch])
        return BatchSampler(RandomSampler(self.data, generator=generator), self.batch_size, drop_last=False)

    def _batches(self, epoch: int):
        while len(self._states) <= epoch:  # run the passes not seen yet once, remembering where each one starts
            sampler = self._sampler(len(self._states) - 1)
            for _ in sampler:
                pass
            self._states.append(sampler.sampler.generator.get_state())
        return iter(self._sampler(epoch))

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(epoch)

    def __len__(self) -> int:
        return (len(self.data) + self.batch_size - 1) // self.batch_size


def make_loaders(train: Dataset, test: Dataset, batch_size: int = 64, seed: int = 0,
                 test_batch_size: int = 500) -> tuple[DataLoader, DataLoader]:
    """DataLoaders over ``(train, test)``; the training order is shuffled by ``(seed, epoch)``
    (:class:`EpochBatchSampler`: reusing the loaders for a second model gives it the same batches).

    Each step fetches a whole batch with one indexing call (``dataset[list_of_indices]``).
    """
    for value, name in ((train, "train"), (test, "test")):
        if not isinstance(value, Dataset):
            raise TypeError(f"{name}: expected a torch.utils.data.Dataset (e.g. a DistortedMNIST), got "
                            f"{type(value).__name__}")
    batch_size, test_batch_size = check_int(batch_size, "batch_size", 1), check_int(test_batch_size, "test_batch_size", 1)
    train_loader = DataLoader(train, batch_size=None, sampler=EpochBatchSampler(train, batch_size, seed))
    test_loader = DataLoader(test, batch_size=None,
                             sampler=BatchSampler(SequentialSampler(test), test_batch_size, drop_last=False))
    return train_loader, test_loader
