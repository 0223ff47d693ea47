"""Case-generator building blocks shared by the lesson checks.

Everything draws from a seeded ``numpy.random.Generator`` so a seed reproduces a case exactly. Shapes cover the
edge cases that catch real bugs: 1-pixel images, non-square images, output sizes different from the input,
batch sizes 1 and > 1, coordinates outside [-1, 1], and both ``align_corners`` conventions.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

# (N, C, H, W, H_out, W_out): edge cases first.
SAMPLING_SHAPES = [
    (1, 1, 1, 1, 2, 3),
    (1, 1, 1, 5, 3, 3),
    (2, 3, 4, 7, 5, 6),
    (1, 2, 9, 5, 9, 5),
    (3, 1, 16, 12, 8, 20),
]
# the grader's hidden cases: 1-pixel sides inside larger images, tall and wide, batch 4, larger outputs
HIDDEN_SAMPLING_SHAPES = [
    (2, 1, 1, 9, 3, 5),
    (1, 2, 11, 1, 4, 2),
    (4, 3, 13, 17, 9, 7),
    (2, 1, 23, 8, 17, 29),
]


def tensor(rng: np.random.Generator, *shape: int, dtype: torch.dtype = torch.float64, scale: float = 1.0) -> torch.Tensor:
    """Standard-normal tensor (times ``scale``) drawn from ``rng``."""
    return torch.from_numpy(rng.standard_normal(shape) * scale).to(dtype)


def uniform(rng: np.random.Generator, *shape: int, low: float = -1.0, high: float = 1.0,
            dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform tensor in ``[low, high)``."""
    return torch.from_numpy(rng.uniform(low, high, shape)).to(dtype)


def random_theta(rng: np.random.Generator, n: int, spread: float = 0.6, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Affine ``theta (N, 2, 3)`` near the identity, with enough spread to read outside the image."""
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    return eye + tensor(rng, n, 2, 3, dtype=dtype, scale=spread)


def random_grid(rng: np.random.Generator, n: int, h_out: int, w_out: int, reach: float = 1.6,
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Sampling grid ``(N, H_out, W_out, 2)`` uniform in ``[-reach, reach]`` (outside the image too)."""
    return uniform(rng, n, h_out, w_out, 2, low=-reach, high=reach, dtype=dtype)


def conventions() -> Iterator[bool]:
    """Both ``align_corners`` conventions."""
    yield False
    yield True
