"""Checks for lesson 5 – training spatial transformers on distorted MNIST.

Every reference is the package's: :mod:`stn_course.data` (the distortions), :mod:`stn_course.training`; the
questions ``05.chance_level`` (``F.cross_entropy`` of the best constant logits) and ``05.centring_shift`` (the
centre of :func:`stn_course.data.placement_theta`'s digit) are answered with them too."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import paste_clutter, placement_theta
from ..training import stcnn_forward, theta_statistics
from .cases import uniform
from .catalog import exercise
from .properties import KEEPS_INPUTS
from .questions import AnswerCompare
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

# ------------------------------------------------------------------------------------------------ 05.chance_level
# a question whose answer is checked, never shown (predict, then run): the floor lines of the training curves


def _chance_reference(labels: torch.Tensor, classes: int) -> tuple[float, float]:
    """F.cross_entropy of the best input-blind logits – the log of the label shares (−inf for an absent class) – and
    training.error_rate of logits that always pick the most frequent label."""
    n = labels.numel()
    share = torch.bincount(labels, minlength=classes).double() / n
    loss = F.cross_entropy(share.log().expand(n, classes), labels).item()
    majority = torch.zeros(n, classes, dtype=torch.float64)
    majority[:, int(torch.bincount(labels, minlength=classes).argmax())] = 1.0
    return loss, 100.0 * int((majority.argmax(1) != labels).sum()) / n


def _labels(rng: np.random.Generator, n: int, classes: int, skew: float) -> torch.Tensor:
    """``n`` labels in ``[0, classes)``, a share ``skew`` of them the class ``classes // 2`` (not class 0)."""
    labels = rng.integers(0, classes, n)
    labels[: int(skew * n)] = classes // 2
    return torch.from_numpy(rng.permutation(labels))


def _chance_cases(rng: np.random.Generator, setups=((1000, 10, 0.0), (500, 10, 0.3))):
    for n, classes, skew in setups:
        yield Case(f"{n} labels of {classes} classes" + (f", {skew:.0%} of them one class" if skew else ""),
                   (_labels(rng, n, classes, skew), classes))


def _chance_hidden(rng: np.random.Generator):  # other class counts: a copied constant does not score
    yield from _chance_cases(rng, ((300, 3, 0.5), (2000, 100, 0.05), (64, 43, 0.25)))
    yield Case("7 labels of 5 classes, classes 3 and 4 never present",
               (torch.tensor([0, 1, 1, 2, 2, 2, 0]), 5))


register(exercise("05.chance_level", reference=_chance_reference, cases=_chance_cases, hidden_cases=_chance_hidden,
                  compare=AnswerCompare(atol=1e-6),  # worked out, not measured: the loss functions are banned
                  forbidden=("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss",
                             "torch.nn.functional.log_softmax", "stn_course.training.error_rate")))

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

# ------------------------------------------------------------------------------------------------ 05.centring_shift
# "predict, then run" before the learned shift is plotted against the digit's centre: which way θ's shift must go


def _centring_reference(offset: tuple[float, float], canvas: int, out_size: int) -> tuple[float, float]:
    """The digit's centre in the canvas's normalized coordinates, read off the generator's θ (placement_theta
    places a digit of ``out_size`` pixels, unrotated and unscaled, at ``offset``): the point that θ's output centre
    must read, whatever the transformer's A."""
    theta = placement_theta(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64),
                            torch.tensor([offset], dtype=torch.float64), in_size=out_size, out_size=canvas)[0]
    centre = -torch.linalg.solve(theta[:, :2], theta[:, 2])
    return float(centre[0]), float(centre[1])


def _centring_cases(rng: np.random.Generator):
    yield Case("a digit 9 px right of and 6 px above the centre of a 42² canvas, a 28² view", ((9.0, -6.0), 42, 28))
    yield Case("a digit 12 px left of and 5 px below the centre of a 60² canvas, a 40² view", ((-12.0, 5.0), 60, 40))


def _centring_hidden(rng: np.random.Generator):  # other offsets and sizes: a copied pair does not score
    for canvas, out_size in ((42, 28), (60, 40), (33, 50)):
        offset = tuple(float(v) for v in rng.uniform(-canvas / 3, canvas / 3, 2).round(1))
        yield Case(f"a digit at {offset} px in a {canvas}² canvas, a {out_size}² view", (offset, canvas, out_size))


register(exercise("05.centring_shift", reference=_centring_reference, cases=_centring_cases,
                  hidden_cases=_centring_hidden, compare=AnswerCompare(atol=1e-6),
                  forbidden=("stn_course.data.distortions.placement_theta",)))
