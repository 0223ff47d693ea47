"""Checks for lesson 5 – training spatial transformers on distorted MNIST.

Every reference is the package's: :mod:`stn_course.data` (the distortions), :mod:`stn_course.training`; the
question ``05.chance_level`` (``F.cross_entropy`` of the best constant logits) is answered with them too."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import paste_clutter, placement_theta
from ..training import stcnn_forward, theta_statistics
from .cases import uniform
from .catalog import exercise
from .comparison import compare
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


CANVAS_FORGOTTEN = ("where a piece lands, your canvas lost what it held: a piece's dark pixels erased the ink under "
                    "them – laid like a transparency, which of the two values must show?")
ADDED_UP = ("some of your values are larger than any value of the canvas and the sources: where strokes meet, "
            "yours add up instead of showing the stronger one")


@dataclass(frozen=True)
class _ClutterCompare:
    """The default comparison, with two slips named by what they do (never a value): a canvas forgotten under the
    pieces (the package's clutter on an empty canvas wherever a piece lands), and strokes that add up."""

    rtol: float
    atol: float

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = compare(expected, actual, self.rtol, self.atol)
        if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
            return ok, error, message
        canvas, sources, index, crop_at, paste_at = case.args
        crop = case.kwargs.get("crop", 6)
        found = []
        with torch.no_grad():
            got = actual.detach().to(expected.dtype)
            covered = paste_clutter(torch.zeros_like(canvas), torch.ones_like(sources), index, crop_at, paste_at,
                                    crop) > 0
            forgotten = torch.where(covered, paste_clutter(torch.zeros_like(canvas), sources, index, crop_at,
                                                           paste_at, crop), canvas)
            if torch.allclose(got, forgotten, rtol=self.rtol, atol=self.atol):
                found.append(CANVAS_FORGOTTEN)
            if got.max() > max(canvas.max(), sources.max()) + self.atol:
                found.append(ADDED_UP)
        return False, error, "; ".join([message, *found])


# "a function of its arguments" (the lesson's text): writing into `canvas` in place fails (probed in the notebook)
register(exercise("05.paste_clutter", reference=paste_clutter, cases=_clutter_cases, hidden_cases=_clutter_hidden,
                  compare=_ClutterCompare(rtol=0, atol=1e-7),
                  forbidden=('stn_course.data.distortions.paste_clutter',),
                  properties=(Property(CANVAS_PROPERTY, _clutter_keeps_canvas),)))

# ------------------------------------------------------------------------------------------------ 05.stcnn_forward


def _stcnn_hidden(rng: np.random.Generator):  # a larger batch, an output larger than the input, other starts
    return _stcnn_cases(rng, ((6, 28, 40), (2, 16, 5)), starts=((3, 60, 40), (2, 9, 5)))


def _stcnn_parts(rng: np.random.Generator, s: int, out: int):
    localisation = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear((s // 2) ** 2, 8), nn.Tanh())
    return localisation, nn.Linear(8, 6), nn.Sequential(nn.Flatten(), nn.Linear(out * out, 10))


def _stcnn_starts(rng: np.random.Generator, shapes):
    """The package's ST-CNN before training: zero head weights, θ = out/in · I for every image – in the contract's
    convention the view is the input's central out × out pixels, exactly; the other convention blurs it."""
    for n, s, out in shapes:
        x = uniform(rng, n, 1, s, s, low=0, high=1, dtype=torch.float32)
        localisation, head, classifier = _stcnn_parts(rng, s, out)
        with torch.no_grad():
            head.weight.zero_()
            head.bias.copy_(torch.tensor([out / s, 0, 0, 0, out / s, 0]))
        yield Case(f"x (N={n}, 1, {s}, {s}), out_size={out}, the package's start: zero head weights, "
                   f"θ = {out}/{s} · I (which pixels does the classifier see?)", (x, localisation, head, classifier, out))


def _stcnn_cases(rng: np.random.Generator, shapes=((1, 20, 20), (3, 42, 28), (2, 30, 16)), starts=((1, 42, 28),)):
    yield from _stcnn_starts(rng, starts)
    for n, s, out in shapes:
        x = uniform(rng, n, 1, s, s, low=0, high=1, dtype=torch.float32)
        localisation, head, classifier = _stcnn_parts(rng, s, out)
        with torch.no_grad():
            head.weight.copy_(uniform(rng, 6, 8, low=-0.3, high=0.3, dtype=torch.float32))
            head.bias.copy_(torch.tensor([0.8, 0.1, 0.05, -0.15, 0.9, -0.1]))
        yield Case(f"x (N={n}, 1, {s}, {s}), out_size={out}, a head away from the identity"
                   + (" (several images: does each get its own θ?)" if n > 1 else ""),
                   (x, localisation, head, classifier, out))


OTHER_CONVENTION = ("your grid and sampler agree with each other, but in the other align_corners convention than "
                    "the contract's (lesson 3's SpatialTransformer, its defaults): the same θ reads other points – "
                    "at the package's start θ = out/in · I, does your view show the input's central pixels exactly?")


@dataclass(frozen=True)
class _StcnnCompare:
    """The default comparison, with the slip of a consistent but foreign convention named (never a value)."""

    rtol: float
    atol: float

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = compare(expected, actual, self.rtol, self.atol)
        if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
            return ok, error, message
        with torch.no_grad():
            other = stcnn_forward(*case.args, align_corners=True)
        if torch.allclose(actual.detach().to(other.dtype), other, rtol=self.rtol, atol=self.atol):
            message = f"{message}; {OTHER_CONVENTION}"
        return False, error, message


# the header's grad_args [0]: dL/dx has two paths, through the sampler and through θ (the localisation net and the
# head) – a θ computed under torch.no_grad() or detached, a transformer that can never learn, gets the second wrong
register(exercise("05.stcnn_forward", reference=stcnn_forward, cases=_stcnn_cases, hidden_cases=_stcnn_hidden,
                  compare=_StcnnCompare(rtol=1e-5, atol=1e-5),
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


def _chance_visible(rng: np.random.Generator):
    """The lesson's prediction first (two classes, 70/30 in training, 40/60 held out: the input-blind model scores
    worse than a coin flip there), then the generated cases."""
    train = torch.tensor([0] * 70 + [1] * 30)[torch.from_numpy(rng.permutation(100))]
    test = torch.tensor([0] * 40 + [1] * 60)[torch.from_numpy(rng.permutation(100))]
    yield Case("the prediction in the text: 2 classes, training labels 70 % class 0, held-out labels 40 % class 0",
               (train, test, 2))
    yield from _chance_cases(rng)
    yield Case("a tie: classes 0, 1 and 2 equally frequent in training (torch.argmax's rule: the first of them)",
               (torch.tensor([2, 1, 0, 0, 1, 2]), torch.tensor([0, 0, 0, 1, 2]), 3))


def _chance_hidden(rng: np.random.Generator):  # other class counts: a copied constant does not score
    yield from _chance_cases(rng, ((300, 90, 3, (0.5, 0.2)), (2000, 500, 100, (0.05, 0.1)),
                                   (64, 40, 43, (0.25, 0.0))))
    yield Case("7 training and 4 held-out labels of 5 classes, classes 3 and 4 never present",
               (torch.tensor([0, 1, 1, 2, 2, 2, 0]), torch.tensor([0, 0, 1, 2]), 5))
    yield Case("a tie between classes 1 and 3 in training, class 0 never held out",
               (torch.tensor([3, 1, 2, 1, 3, 0, 2, 3, 1]), torch.tensor([3, 3, 1, 2, 2, 3]), 4))


# The classic first answers, each named by what it assumed (never by a value): the loss and the error separately.
CHANCE_SLIPS = {
    "equal": "your loss is what equal probabilities score – but training chooses the constant output too: which "
             "constant has the lowest average training loss when the training labels are not balanced?",
    "held-out fit": "your loss is what a constant fitted to the held-out labels would score – the model was trained "
                    "on the training labels and never saw these",
    "bits": "your loss is in bits: cross-entropy here uses the natural log",
    "training loss": "your loss is what the model scores on its own training labels – it is scored on the held-out "
                     "ones, whose shares differ",
    "random guess": "your error is that of guessing at random – the model answers its largest probability, the same "
                    "answer for every input",
    "held-out majority": "your error has the model answer the held-out labels' most frequent class – which class "
                         "does a model trained on the training labels answer?",
    "tie": "where several classes tie for the most frequent training label, your model answers another of them "
           "than the first – the text's rule is torch.argmax's, the first (lowest) of the tied classes",
    "training error": "your error is the model's error on its training labels – it is scored on the held-out ones: "
                      "how often is its one answer wrong there?",
}


@dataclass(frozen=True)
class _ChanceCompare(AnswerCompare):
    """:class:`AnswerCompare` (the answer is never shown), with the kind of slip of each wrong part named."""

    def __call__(self, expected, actual, case: Case) -> tuple[bool, float, str]:
        ok, error, message = super().__call__(expected, actual, case)
        if ok or not isinstance(actual, (tuple, list)) or len(actual) != 2:
            return ok, error, message
        try:
            loss, err = float(actual[0]), float(actual[1])
        except (TypeError, ValueError):
            return ok, error, message
        train, test, classes = case.args
        fitted_to_test = _chance_reference(test, test, classes)
        close = lambda a, b: abs(a - b) <= max(self.atol, 1e-9)  # noqa: E731
        found = []
        if not close(loss, expected[0]):
            slips = {"equal": math.log(classes), "held-out fit": fitted_to_test[0],
                     "bits": expected[0] / math.log(2), "training loss": _chance_reference(train, train, classes)[0]}
            found += [CHANCE_SLIPS[k] for k, v in slips.items() if close(loss, v)]
        if not close(err, expected[1]):
            slips = {"random guess": 100.0 * (1 - 1 / classes), "held-out majority": fitted_to_test[1],
                     "training error": _chance_reference(train, train, classes)[1]}
            found += [CHANCE_SLIPS[k] for k, v in slips.items() if close(err, v)]
            counts = torch.bincount(train, minlength=classes)
            tied = torch.nonzero(counts == counts.max())[1:, 0]  # the tied classes after the first
            if any(close(err, 100.0 * float((test != c).double().mean())) for c in tied):
                found.append(CHANCE_SLIPS["tie"])
        return False, error, "; ".join([message, *found])


register(exercise("05.chance_level", reference=_chance_reference, cases=_chance_visible, hidden_cases=_chance_hidden,
                  compare=_ChanceCompare(atol=1e-6),  # worked out, not measured: the loss functions are banned
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
