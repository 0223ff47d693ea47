"""Checks for lesson 5 – training spatial transformers on distorted MNIST.

Every reference is the package's: :mod:`stn_course.data` (the distortions), :mod:`stn_course.training`."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from ..data import paste_clutter, placement_theta
from ..training import error_rate, stcnn_forward, theta_statistics
from .cases import uniform
from .catalog import exercise
from .properties import KEEPS_INPUTS
from .registry import Case, register

# ------------------------------------------------------------------------------------------------ 05.rts_theta


def _rts_cases(rng: np.random.Generator):
    fixed = [  # (angles, scales, shifts, in_size, out_size)
        ([0.0], [1.0], [[0.0, 0.0]], 28, 28),
        ([90.0, -90.0], [1.0, 1.0], [[0.0, 0.0], [0.0, 0.0]], 28, 28),
        ([45.0], [0.7], [[5.0, -3.0]], 28, 42),
        ([-30.0, 10.0, 0.0], [1.2, 0.9, 1.0], [[-7.5, 2.0], [0.0, 9.0], [4.0, 4.0]], 28, 60),
    ]
    for angles, scales, shifts, n_in, n_out in fixed:
        yield Case(f"angles {angles}°, scales {scales}, shifts {shifts} px, digit {n_in}² -> canvas {n_out}²",
                   (torch.tensor(angles, dtype=torch.float64), torch.tensor(scales, dtype=torch.float64),
                    torch.tensor(shifts, dtype=torch.float64), n_in, n_out))
    yield from _random_rts(rng, ((5, 28, 42), (4, 7, 13)))


def _random_rts(rng: np.random.Generator, draws, angle: float = 45.0):
    for n, n_in, n_out in draws:
        yield Case(f"{n} random RTS draws, digit {n_in}² -> canvas {n_out}² (odd sizes)",
                   (uniform(rng, n, low=-angle, high=angle), uniform(rng, n, low=0.7, high=1.2),
                    uniform(rng, n, 2, low=-6, high=6), n_in, n_out))


def _rts_hidden(rng: np.random.Generator):  # larger batches, any angle, a canvas smaller than the digit
    return _random_rts(rng, ((12, 28, 60), (3, 29, 17), (6, 1, 9)), angle=180.0)


register(exercise("05.rts_theta", reference=placement_theta, cases=_rts_cases, hidden_cases=_rts_hidden,
                  forbidden=('stn_course.data.distortions.placement_theta',)))

# ------------------------------------------------------------------------------------------------ 05.paste_clutter


CLUTTER_SHAPES = [  # (N, K, canvas S, M sources, source H = W, crop)
    (1, 1, 4, 1, 3, 1),
    (1, 2, 6, 2, 5, 3),
    (3, 4, 12, 5, 10, 6),
    (2, 8, 20, 3, 28, 6),
]


def _clutter_hidden(rng: np.random.Generator):  # many pieces, crops as large as the source, a larger batch
    return _clutter_cases(rng, [(5, 12, 30, 7, 9, 9), (4, 3, 8, 2, 8, 8), (1, 16, 60, 10, 28, 8)])


def _clutter_cases(rng: np.random.Generator, shapes=CLUTTER_SHAPES):
    for n, k, s, m, h, crop in shapes:
        canvas = uniform(rng, n, 1, s, s, low=0, high=0.6, dtype=torch.float32)
        sources = uniform(rng, m, 1, h, h, low=0, high=1, dtype=torch.float32)
        index = torch.from_numpy(rng.integers(0, m, (n, k)))
        crop_at = torch.from_numpy(rng.integers(0, h - crop + 1, (n, k, 2)))
        paste_at = torch.from_numpy(rng.integers(0, s - crop + 1, (n, k, 2)))
        paste_at[0, 0] = torch.tensor([0, s - crop])  # touch the top-right corner
        if k > 1:
            paste_at[0, 1] = paste_at[0, 0]  # two pieces on the same spot: max, not sum
        yield Case(f"canvas (N={n}, 1, {s}, {s}), {k} pieces of {crop}×{crop} from {m} sources of {h}×{h} "
                   f"(overlapping pieces, one at the canvas corner)",
                   (canvas, sources, index, crop_at, paste_at), {"crop": crop})


# its docstring says "returns a new tensor": writing into `canvas` in place fails (KEEPS_INPUTS, in the notebook)
register(exercise("05.paste_clutter", reference=paste_clutter, cases=_clutter_cases, hidden_cases=_clutter_hidden,
                  forbidden=('stn_course.data.distortions.paste_clutter',), properties=(KEEPS_INPUTS,)))

# ------------------------------------------------------------------------------------------------ 05.stcnn_forward


def _stcnn_hidden(rng: np.random.Generator):  # a larger batch, an output larger than the input
    return _stcnn_cases(rng, ((6, 28, 40), (2, 16, 5)))


def _stcnn_cases(rng: np.random.Generator, shapes=((1, 20, 20), (3, 42, 28), (2, 30, 16))):
    for n, s, out in shapes:
        x = uniform(rng, n, 1, s, s, low=0, high=1, dtype=torch.float32)
        localisation = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear((s // 2) ** 2, 8), nn.Tanh())
        head = nn.Linear(8, 6)
        with torch.no_grad():
            head.weight.copy_(uniform(rng, 6, 8, low=-0.3, high=0.3, dtype=torch.float32))
            head.bias.copy_(torch.tensor([0.8, 0.1, 0.05, -0.15, 0.9, -0.1]))
        classifier = nn.Sequential(nn.Flatten(), nn.Linear(out * out, 10))
        yield Case(f"x (N={n}, 1, {s}, {s}), out_size={out}, a head away from the identity",
                   (x, localisation, head, classifier, out))


# the header's grad_args [0]: dL/dx has two paths, through the sampler and through θ (the localisation net and the
# head) – a θ computed under torch.no_grad() or detached, a transformer that can never learn, gets the second wrong
register(exercise("05.stcnn_forward", reference=stcnn_forward, cases=_stcnn_cases, hidden_cases=_stcnn_hidden,
                  forbidden=('stn_course.stn.SpatialTransformer', 'stn_course.stn.transform_to_grid',
                  'stn_course.training.STCNN', 'stn_course.training.stcnn_forward')))

# ------------------------------------------------------------------------------------------------ 05.error_rate


def _error_cases(rng: np.random.Generator):
    yield Case("one example, classified right", (torch.tensor([[0.1, 2.0]]), torch.tensor([1])))
    yield Case("one example, classified wrong", (torch.tensor([[0.1, 2.0]]), torch.tensor([0])))
    yield from _random_logits(rng, ((7, 3), (64, 10), (1000, 10)))


def _random_logits(rng: np.random.Generator, sizes, dtype: torch.dtype = torch.float32):
    for n, c in sizes:
        logits = uniform(rng, n, c, low=-3, high=3, dtype=dtype)
        labels = torch.from_numpy(rng.integers(0, c, n))
        yield Case(f"logits ({n}, {c}) in {dtype}, random labels", (logits, labels))


def _error_hidden(rng: np.random.Generator):  # one class, many classes, float64 logits
    yield Case("logits (5, 1): one class, never wrong", (torch.zeros(5, 1), torch.zeros(5, dtype=torch.long)))
    yield from _random_logits(rng, ((333, 100), (2, 2)))
    yield from _random_logits(rng, ((40, 4),), dtype=torch.float64)


def _exact_error_rate(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The error in percent, exactly: a count of mistakes over ``n``, in float64 (``training.error_rate`` rounds
    the mean in float32, which only one spelling of a correct answer reproduces bit for bit)."""
    error_rate(logits, labels)  # its checks of the shapes
    return 100.0 * int((logits.argmax(1) != labels).sum()) / labels.numel()


def _compare_percent(expected: float, actual, case: Case) -> tuple[bool, float, str]:
    """A Python number within 1e-4 percentage points of the exact error: far below one example's share (100 / n ≥
    0.1 here), far above float32's rounding of a mean (≈ 1e-5), so every correct spelling passes."""
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        kind = "a tensor" if isinstance(actual, torch.Tensor) else type(actual).__name__
        return False, math.inf, f"expected a Python float (percent), got {kind}: convert with .item() or float(...)"
    error = abs(float(actual) - expected)
    if error <= 1e-4:
        return True, error, ""
    return False, error, f"expected {expected:.6g} %, got {float(actual):.6g}"


register(exercise("05.error_rate", reference=_exact_error_rate, cases=_error_cases, hidden_cases=_error_hidden,
                  compare=_compare_percent, forbidden=('stn_course.training.error_rate',)))

# ------------------------------------------------------------------------------------------------ 05.theta_statistics


def _theta_stats_cases(rng: np.random.Generator):
    def similarity(zoom, degrees, shift):
        rad = math.radians(degrees)
        k = 1 / zoom
        # sampling theta of content turned by `degrees`: k R(-a)
        return [[k * math.cos(rad), k * math.sin(rad), shift[0]], [-k * math.sin(rad), k * math.cos(rad), shift[1]]]

    yield Case("the identity", (torch.tensor([[[1.0, 0, 0], [0, 1, 0]]], dtype=torch.float64),))
    yield Case("zoom 2, content turned +30°, shifted", (torch.tensor([similarity(2.0, 30.0, (0.2, -0.1))],
                                                                     dtype=torch.float64),))
    yield Case("content turned 135° and -170° (beyond ±90°)",
               (torch.tensor([similarity(0.8, 135.0, (0, 0)), similarity(1.3, -170.0, (0.5, 0.5))],
                             dtype=torch.float64),))
    yield Case("a reflection (negative determinant) and a shear",
               (torch.tensor([[[-1.0, 0, 0.1], [0, 1, 0]], [[1.0, 0.5, 0], [0, 1, 0]]], dtype=torch.float64),))
    yield Case("8 random affine thetas", (torch.eye(2, 3, dtype=torch.float64)
                                         + uniform(rng, 8, 2, 3, low=-0.5, high=0.5),))


def _theta_stats_hidden(rng: np.random.Generator):  # many thetas far from the identity, a float32 batch
    yield Case("30 random affine thetas", (uniform(rng, 30, 2, 3, low=-2, high=2),))
    yield Case("float32 thetas", (torch.eye(2, 3) + uniform(rng, 5, 2, 3, low=-0.3, high=0.3, dtype=torch.float32),))


register(exercise("05.theta_statistics", reference=theta_statistics, cases=_theta_stats_cases,
                  hidden_cases=_theta_stats_hidden, forbidden=('stn_course.training.theta_statistics',)))
