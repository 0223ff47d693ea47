"""A fair comparison's bookkeeping: a validation split, choosing on it, and mean ± spread over seeds (lesson 5).

Lesson 5 compares a CNN with an ST-CNN. A comparison is fair only if both models get the same tuning budget and
every choice (a learning rate, a transformer learning rate) is made on data the final number never sees:

* :func:`validation_split` – seeded, disjoint train / validation indices of a training set;
* :func:`select_by_validation` – the setting with the lowest mean validation error (the test set is not involved);
* :func:`mean_spread`, :func:`format_mean_spread` – report a result over seeds as "mean ± sample sd".

``benchmarks/lr_sweep.py`` and ``benchmarks/train_quality.py`` use these; so does lesson 8's colour-sign experiment.
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Mapping, Sequence

import torch

from ._validation import check_int

__all__ = ["validation_split", "select_by_validation", "mean_spread", "format_mean_spread"]


def validation_split(n: int, fraction: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, validation)`` of a seeded random split of ``range(n)``.

    Disjoint, each sorted (``int64``), together ``range(n)``; ``len(validation) = round(n * fraction)``, at least 1
    (and at most ``n - 1``, so both parts are non-empty). The same ``(n, fraction, seed)`` gives the same split on
    every machine (torch's CPU generator, seeded locally: the global random state is untouched).

    >>> train, val = validation_split(10, 0.2, seed=0)
    >>> len(train), len(val), sorted(train.tolist() + val.tolist()) == list(range(10))
    (8, 2, True)
    >>> bool((validation_split(10, 0.2, seed=0)[1] == val).all())
    True
    """
    n = check_int(n, "n", minimum=2)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction: expected a number strictly between 0 and 1, got {fraction!r}")
    seed = check_int(seed, "seed")
    n_val = min(n - 1, max(1, round(n * fraction)))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    return order[n_val:].sort().values, order[:n_val].sort().values


def select_by_validation(results: Mapping[Any, Sequence[float]]) -> Any:
    """The key (e.g. a learning rate, or an ``(lr, transformer_lr)`` pair) whose values – validation errors, one per
    seed – have the lowest mean; ties go to the first key in the mapping's order. NaN means count as worst.

    >>> select_by_validation({1e-3: [10.0, 12.0], 2e-3: [9.0, 11.0], 5e-3: [9.5, 10.5]})
    0.002
    >>> select_by_validation({"a": [1.0], "b": [1.0]})
    'a'
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results: expected a non-empty mapping {setting: [validation error per seed]}")
    best_key, best = None, math.inf
    for key, values in results.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"results[{key!r}]: expected a non-empty sequence of numbers, got {values!r}")
        mean = statistics.fmean(float(v) for v in values)
        if math.isnan(mean):
            mean = math.inf
        if best_key is None or mean < best:
            best_key, best = key, mean
    return best_key


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, sample standard deviation)`` of ``values``; the spread of a single value is 0.

    >>> mean_spread([1.0, 2.0, 3.0])
    (2.0, 1.0)
    >>> mean_spread([4.0])
    (4.0, 0.0)
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_spread: expected at least one value")
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def format_mean_spread(values: Sequence[float], digits: int = 1) -> str:
    """``"mean ± sd"`` with ``digits`` decimals.

    >>> format_mean_spread([12.0, 12.6, 12.3])
    '12.3 ± 0.3'
    >>> format_mean_spread([5.0], digits=2)
    '5.00 ± 0.00'
    """
    digits = check_int(digits, "digits", minimum=0)
    mean, spread = mean_spread(values)
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"
