"""Measuring kernels fairly (lesson 7, ``benchmarks/``): interleaved repeats, medians, a synchronised clock, and the
device's copy bandwidth – the yardstick for a memory-bound kernel.

GPU work is asynchronous: a launch returns before the kernel has run, so a timer must wait for the device
(``torch.cuda.synchronize``) before it reads the clock. Things compared are measured side by side in one run, their
repeats interleaved so that a change of clock speed or a noisy neighbour hits all of them alike, and the median
is reported (a mean is dragged by the one repeat the operating system interrupted).
"""
from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable, Iterator

import torch

__all__ = ["synchronize", "time_many", "time_samples", "fixed_threads", "copy_bandwidth"]


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait until the device has finished the work queued so far (nothing to wait for on the CPU)."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` and restore the previous count afterwards: CPU timings
    depend on the thread count (and on what else the machine runs), so a timing without it is not reproducible.

    >>> before = torch.get_num_threads()
    >>> with fixed_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_many(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2, min_time: float = 0.05,
              device: torch.device | str | None = None) -> dict[str, float]:
    """Median seconds per call of each function, measured interleaved so drift hits all of them alike
    (:func:`time_samples`, reduced to its medians).

    >>> times = time_many({"sum": lambda: sum(range(100))}, repeats=3, min_time=0.001)
    >>> list(times), times["sum"] > 0
    (['sum'], True)
    """
    samples = time_samples(fns, repeats=repeats, warmup=warmup, min_time=min_time, device=device)
    return {name: statistics.median(s) for name, s in samples.items()}


def time_samples(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2, min_time: float = 0.05,
                 device: torch.device | str | None = None) -> dict[str, list[float]]:
    """Seconds per call of each function, one sample per round (``repeats`` of them): their spread says how much a
    single median can be trusted.

    Each function first runs ``warmup`` times (compilation, caches, autotuning); then the number of calls that
    takes at least ``min_time`` is found, and ``repeats`` rounds time that many calls of each function in turn.
    On CUDA the clock is read only after the device has finished (``synchronize``).

    >>> samples = time_samples({"sum": lambda: sum(range(100))}, repeats=3, min_time=0.001)
    >>> len(samples["sum"]), min(samples["sum"]) > 0
    (3, True)
    """
    calls = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        synchronize(device)
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < min_time or n == 0:
            fn()
            n += 1
            synchronize(device)
        calls[name] = n
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) / calls[name])
    return samples


def copy_bandwidth(device: torch.device | str = "cpu", megabytes: int = 256, repeats: int = 5) -> float:
    """The device's memory bandwidth as a large copy achieves it, in bytes per second (a copy reads and writes
    every byte: ``2 · size / time``). The ceiling a memory-bound kernel can approach, measured, not from a sheet."""
    n = megabytes * 2**20 // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    seconds = time_many({"copy": lambda: dst.copy_(src)}, repeats=repeats, warmup=2, min_time=0.05,
                        device=src.device)["copy"]
    return 2 * src.numel() * src.element_size() / seconds
