"""Checks for lesson 5 – training spatial transformers on distorted MNIST.

Every reference is the package's: :mod:`stn_course.data` (the distortions), :mod:`stn_course.training`; the
question ``05.chance_level`` (``F.cross_entropy`` of the best constant logits) is answered with them too."""
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
from .properties import KEEPS_INPUTS, Property
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


CANVAS_CHANGED = ("after the call, a tensor the caller passed in is no longer what it was: call your function "
                  "twice with the same canvas and the second call starts from the first one's clutter")


# its own name: the shared diagnosis of INPUTS_MODIFIED (shown as "Why:") names the fix, which is the exercise
CANVAS_PROPERTY = "the caller's canvas kept"


def _clutter_keeps_canvas(fn, case: Case) -> str | None:
    """KEEPS_INPUTS, diagnosed by what goes wrong rather than by the fix (finding the fix is the exercise)."""
    found = KEEPS_INPUTS.test(fn, case)
    return None if found is None else CANVAS_CHANGED + found[found.rindex(" ("):]


# "a function of its arguments" (the lesson's text): writing into `canvas` in place fails (probed in the notebook)
register(exercise("05.paste_clutter", reference=paste_clutter, cases=_clutter_cases, hidden_cases=_clutter_hidden,
                  forbidden=('stn_course.data.distortions.paste_clutter',),
                  properties=(Property(CANVAS_PROPERTY, _clutter_keeps_canvas),)))

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
# a question whose answer is checked, never shown (predict, then run): the floor lines of the validation curves


def _chance_reference(train_labels: torch.Tensor, test_labels: torch.Tensor, classes: int) -> tuple[float, float]:
    """F.cross_entropy on ``test_labels`` of the input-blind logits that minimise it on ``train_labels`` – the log of
    the training label shares (−inf for a class absent there) – and training.error_rate of logits that always pick
    the most frequent training label."""
    counts = torch.bincount(train_labels, minlength=classes)
    logits = (counts.double() / train_labels.numel()).log()
    loss = F.cross_entropy(logits.expand(test_labels.numel(), classes), test_labels).item()
    answer = torch.zeros(test_labels.numel(), classes, dtype=torch.float64)
    answer[:, int(counts.argmax())] = 1.0
    return loss, 100.0 * int((answer.argmax(1) != test_labels).sum()) / test_labels.numel()


def _labels(rng: np.random.Generator, n: int, classes: int, skew: float, favourite: int,
            allowed: np.ndarray | None = None) -> torch.Tensor:
    """``n`` labels drawn from ``allowed`` (default: all classes), a share ``skew`` of them ``favourite``."""
    allowed = np.arange(classes) if allowed is None else allowed
    labels = allowed[rng.integers(0, len(allowed), n)]
    labels[: int(skew * n)] = favourite
    return torch.from_numpy(rng.permutation(labels))


def _one_majority(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """``labels`` with ties for the most frequent label broken (one more of the first of them, in place of another
    label), so that the input-blind model's answer is unique."""
    counts = torch.bincount(labels, minlength=classes)
    top = torch.nonzero(counts == counts.max())[:, 0]
    labels = labels.clone()
    if len(top) > 1:
        labels[torch.nonzero(labels != top[0])[0, 0]] = top[0]
    return labels


def _chance_pair(rng: np.random.Generator, n: int, m: int, classes: int, skews: tuple[float, float]):
    """Training labels favouring ``classes // 2``, held-out ones favouring the next class (other shares, another
    majority); the held-out labels use only classes that occur in training."""
    train = _one_majority(_labels(rng, n, classes, skews[0], classes // 2), classes)
    seen = np.flatnonzero(np.bincount(train.numpy(), minlength=classes))
    test = _labels(rng, m, classes, skews[1], int(seen[(np.searchsorted(seen, classes // 2) + 1) % len(seen)]), seen)
    return train, test


def _chance_cases(rng: np.random.Generator,
                  setups=((1000, 300, 10, (0.0, 0.0)), (500, 200, 10, (0.3, 0.0)), (400, 400, 10, (0.1, 0.25)))):
    for n, m, classes, skews in setups:
        train, test = _chance_pair(rng, n, m, classes, skews)
        yield Case(f"{n} training and {m} held-out labels of {classes} classes"
                   + (", their shares differ" if any(skews) else ""), (train, test, classes))


def _chance_hidden(rng: np.random.Generator):  # other class counts: a copied constant does not score
    yield from _chance_cases(rng, ((300, 90, 3, (0.5, 0.2)), (2000, 500, 100, (0.05, 0.1)),
                                   (64, 40, 43, (0.25, 0.0))))
    yield Case("7 training and 4 held-out labels of 5 classes, classes 3 and 4 never present",
               (torch.tensor([0, 1, 1, 2, 2, 2, 0]), torch.tensor([0, 0, 1, 2]), 5))


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
    yield Case("a zoom-and-turn, shifted", (torch.tensor([similarity(2.0, 30.0, (0.2, -0.1))],
                                                                     dtype=torch.float64),))
    yield Case("two zoom-and-turns, each beyond a quarter turn",
               (torch.tensor([similarity(0.8, 135.0, (0, 0)), similarity(1.3, -170.0, (0.5, 0.5))],
                             dtype=torch.float64),))
    yield Case("a reflection (negative determinant) and a shear",
               (torch.tensor([[[-1.0, 0, 0.1], [0, 1, 0]], [[1.0, 0.5, 0], [0, 1, 0]]], dtype=torch.float64),))
    yield Case("8 random affine thetas", (torch.eye(2, 3, dtype=torch.float64)
                                         + uniform(rng, 8, 2, 3, low=-0.5, high=0.5),))
    yield from _theta_stats_views()


def _theta_stats_views():
    """Views whose picture one can draw: exercise 1's generator thetas (the content turns by +angle) and the ST-CNN's
    start, a 28² window of a 42² canvas moved off the centre (it looks where its last column says, not at -A⁻¹ t)."""
    angle, scale = torch.tensor([30.0, -120.0], dtype=torch.float64), torch.tensor([0.8, 1.1], dtype=torch.float64)
    yield Case("exercise 1's theta for two digits placed off the centre",
               (placement_theta(angle, scale, torch.tensor([[6.0, -4.0], [-3.0, 5.0]], dtype=torch.float64)),))
    window = torch.tensor([[28 / 42, 0, 0.3], [0, 28 / 42, -0.2]], dtype=torch.float64)
    yield Case("a 28² window of a 42² canvas, off the centre", (window[None],))


def _theta_stats_hidden(rng: np.random.Generator):  # many thetas far from the identity, a float32 batch
    yield Case("30 random affine thetas", (uniform(rng, 30, 2, 3, low=-2, high=2),))
    yield Case("exercise 1's thetas of 6 random RTS placements", (placement_theta(
        uniform(rng, 6, low=-180, high=180), uniform(rng, 6, low=0.7, high=1.2), uniform(rng, 6, 2, low=-6, high=6)),))
    yield Case("float32 thetas", (torch.eye(2, 3) + uniform(rng, 5, 2, 3, low=-0.3, high=0.3, dtype=torch.float32),))


register(exercise("05.theta_statistics", reference=theta_statistics, cases=_theta_stats_cases,
                  hidden_cases=_theta_stats_hidden, forbidden=('stn_course.training.theta_statistics',)))
