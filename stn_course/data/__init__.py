"""Real MNIST digits and the distorted-MNIST benchmarks of Jaderberg et al. (2015), appendix A.1 (lesson 5).

Three modules, one idea each, everything re-exported here:

* :mod:`~stn_course.data.mnist` – the digits: the embedded 5,000 (no download) or full MNIST from IDX files, split
  with no digit in both train and test;
* :mod:`~stn_course.data.distortions` – the paper's R, RTS, P, E and TC distortions, generated with the package's
  own grids and sampler (the table of parameters is there);
* :mod:`~stn_course.data.datasets` – :class:`DistortedMNIST` (fresh distortions every training epoch, a fixed test
  set, the same bytes for the same seed) and its loaders.
"""
from __future__ import annotations

from .datasets import DistortedMNIST, make_datasets, make_loaders, make_split_datasets
from .distortions import (CANVAS, DISTORTIONS, E_CONTROL, E_JITTER, E_SCALE, P_CORNER_STD, P_SCALE, R_ANGLE,
                          RTS_ANGLE, RTS_SCALE, TC_CLUTTER, TC_CROP, TC_CROP_REGION, distort, ink_boxes,
                          paste_clutter, placement_theta, random_placement)
from .mnist import DIGIT, EMBEDDED_FILE, ENV_VAR, find_mnist_files, load_mnist, load_splits, read_idx, train_test_split_digits

__all__ = [
    "DISTORTIONS", "CANVAS", "ENV_VAR", "read_idx", "find_mnist_files", "load_mnist", "train_test_split_digits",
    "load_splits", "placement_theta", "ink_boxes", "random_placement", "paste_clutter", "distort", "DistortedMNIST",
    "make_datasets", "make_split_datasets", "make_loaders",
]
