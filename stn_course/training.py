"""Training CNNs and ST-CNNs on distorted MNIST: models, a small fit/evaluate loop, save/load (lesson 5).

Models (Jaderberg et al. 2015, Sec. 4.1, scaled down to train in seconds on a laptop CPU):

* :func:`baseline_cnn` – conv(5×5) → ReLU → max-pool → conv(5×5) → ReLU → max-pool → FC → ReLU → FC(10), on the
  raw canvas. Its hidden width is chosen so that its parameter count matches the ST-CNN's on the same input
  (``hidden=None``), as the paper compares models of similar size.
* :func:`st_cnn` – a :class:`~stn_course.stn.SpatialTransformer` (small localisation net on a 2× max-pooled input,
  regression head with zero weights, starting at a centred window of the canvas at its own resolution) that samples
  a ``out_size × out_size`` view of the canvas (28 for the 28×28 and 42×42 canvases, 40 for the 60×60 one:
  :func:`default_out_size`),
  followed by the same classifier trunk. ``transform="affine"`` by default; ``"projective"``, ``"tps"``… selectable.

``batch_norm=True`` (both builders) adds batch norm to the classifier trunk, so that lesson 5's comparison gives both
models the same normalisation (:mod:`stn_course.tuning` has the rest of a fair comparison: the validation split and
the choice on it).

:func:`fit` trains with Adam and cross-entropy, shows ``tqdm`` progress bars (``tqdm.auto``: widgets in Jupyter,
text in a terminal; ``progress=False`` to silence), calls ``set_epoch`` on datasets that draw fresh distortions,
evaluates after every epoch and returns a history ``dict`` of lists; :func:`fit_in_background` runs it in a thread
and returns a :class:`BackgroundFit` handle at once (lessons 5 and 6's live dashboards). :func:`save` / :func:`load`
store the weights together with the builder's configuration, so ``load(path)`` rebuilds the model.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_choice, check_float_tensor, check_int, check_module, check_tensor

__all__ = [
    "MODELS",
    "seed_everything",
    "count_parameters",
    "classifier_trunk",
    "st_cnn_localisation_net",
    "baseline_cnn",
    "default_out_size",
    "STARTS",
    "st_cnn",
    "STCNN",
    "build_model",
    "colour_input",
    "error_rate",
    "theta_statistics",
    "stcnn_forward",
    "evaluate",
    "fit",
    "BackgroundFit",
    "fit_in_background",
    "save",
    "load",
]

MODELS = ("cnn", "stcnn")
DIGIT_SIZE = 28  # MNIST digits are 28×28


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (model initialisation, dropout)."""
    torch.manual_seed(int(seed))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    check_module(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _flat_size(module: nn.Module, in_size: int) -> int:
    with torch.no_grad():
        return module(torch.zeros(1, 1, in_size, in_size)).shape[1]


def classifier_trunk(in_size: int, hidden: int = 64, channels: tuple[int, int] = (16, 32),
                     num_classes: int = 10, batch_norm: bool = False) -> nn.Sequential:
    """conv5 → ReLU → pool2 → conv5 → ReLU → pool2 → FC(hidden) → ReLU → FC(classes).

    ``batch_norm=True`` puts a batch norm after each convolution and after the hidden FC (before their ReLUs) –
    lesson 5's fair comparison gives the CNN and the ST-CNN's classifier the same normalisation.
    ``(N, 1, in_size, in_size) -> (N, num_classes)`` logits.
    """
    in_size, hidden = check_int(in_size, "in_size", minimum=1), check_int(hidden, "hidden", minimum=1)
    if in_size < 16:
        raise ValueError(f"in_size: the classifier needs inputs of at least 16×16 pixels, got {in_size}")
    if not isinstance(batch_norm, bool):
        raise TypeError(f"batch_norm: expected a bool, got {type(batch_norm).__name__}")

    def norm(layer: nn.Module, n: int) -> list[nn.Module]:
        if not batch_norm:
            return [layer]
        return [layer, nn.BatchNorm2d(n) if isinstance(layer, nn.Conv2d) else nn.BatchNorm1d(n)]

    features = nn.Sequential(
        *norm(nn.Conv2d(1, channels[0], 5), channels[0]), nn.ReLU(), nn.MaxPool2d(2),
        *norm(nn.Conv2d(channels[0], channels[1], 5), channels[1]), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    )
    features.eval()  # batch norm: _flat_size runs one example
    n = _flat_size(features, in_size)
    features.train()
    return nn.Sequential(*features, *norm(nn.Linear(n, hidden), hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def st_cnn_localisation_net(in_size: int, features: int = 32) -> nn.Sequential:
    """The localisation network's body: pool2 → conv5(8) → ReLU → pool2 → conv5(16) → ReLU → FC(features) →
    BatchNorm → ReLU.

    ``(N, 1, in_size, in_size) -> (N, features)``; the :class:`~stn_course.stn.SpatialTransformer` adds the regression
    head that turns these features into transformation parameters (starting at the identity).

    Why the batch norm: on a big, mostly empty canvas (cluttered 60×60) the features barely differ between inputs –
    most of what they see is background – so the head mostly learns a constant transform, and with Adam the ReLU
    features soon die altogether: θ ends up the same for every image. Normalising each feature over the batch
    removes what all inputs share and keeps what tells them apart (where the digit is), so θ varies with the input.
    ``benchmarks/train_quality.py`` prints θ's spread over test inputs for every run (``benchmarks/NOTES.md`` has
    the history, with commands).
    """
    in_size, features = check_int(in_size, "in_size", minimum=1), check_int(features, "features", minimum=1)
    body = nn.Sequential(
        nn.MaxPool2d(2), nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(), nn.Flatten(),
    )
    n = _flat_size(body, in_size)
    return nn.Sequential(*body, nn.Linear(n, features), nn.BatchNorm1d(features), nn.ReLU())


class STCNN(nn.Module):
    """Spatial transformer followed by a classifier. ``(N, 1, S, S) -> (N, 10)`` logits.

    ``transformer(x)`` gives the transformer's output ``(N, 1, out_size, out_size)``; :meth:`transform` also returns
    its parameters (``theta (N, 2, 3)`` for the affine transform) and the sampling grid, for pictures.
    """

    def __init__(self, transformer: nn.Module, classifier: nn.Module):
        super().__init__()
        check_module(transformer, "transformer")
        check_module(classifier, "classifier")
        self.transformer = transformer
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.transformer(x))

    @torch.no_grad()
    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x (N, 1, S, S) -> (output (N, 1, s, s), params, grid (N, s, s, 2))``, as at test time (eval mode: batch
        norm uses its running statistics and does not update them; the previous mode is restored)."""
        was_training = self.training
        self.eval()
        try:
            return self.transformer(x, return_params=True)
        finally:
            self.train(was_training)


def _match_hidden(in_size: int, target: int, batch_norm: bool = False) -> int:
    """Hidden width of :func:`classifier_trunk` on ``in_size`` whose parameter count is closest to ``target``."""
    one = count_parameters(classifier_trunk(in_size, hidden=1, batch_norm=batch_norm))
    two = count_parameters(classifier_trunk(in_size, hidden=2, batch_norm=batch_norm))
    per_unit = two - one
    return max(1, round((target - (one - per_unit)) / per_unit))


def default_out_size(in_size: int) -> int:
    """The transformer's output size for an ``in_size`` canvas: downsample at most 1.5× and never below MNIST's
    28 pixels (28 → 28, 42 → 28, 60 → 40).

    A 28² view of the 60×60 cluttered canvas either shrinks a digit to ~9 pixels (the whole canvas,
    ``start="identity"``) or shows less than a quarter of the canvas (a window at full resolution); with 40² a
    digit keeps ~13 pixels, or the window covers the middle 2/3 of each side (``benchmarks/NOTES.md`` compares
    the two on TC, with the command).

    >>> default_out_size(28), default_out_size(42), default_out_size(60)
    (28, 28, 40)
    """
    in_size = check_int(in_size, "in_size", minimum=1)
    return min(in_size, max(DIGIT_SIZE, round(in_size * 2 / 3)))


STARTS = ("pixels", "identity")


def st_cnn(in_size: int, transform: str = "affine", out_size: int | None = None, hidden: int = 64,
           impl: str = "aten", seed: int | None = None, start: str = "pixels", batch_norm: bool = False) -> STCNN:
    """ST-CNN for ``in_size × in_size`` canvases: transformer to ``out_size²`` (default
    :func:`default_out_size`), then :func:`classifier_trunk`.

    ``start`` is the transform the regression head starts at (zero weights, so the same for every input):

    * ``"pixels"`` (default): the identity *in pixels* – it reads a centred window of the canvas at one input
      pixel per output pixel. The classifier sees digits at their own resolution from the first step, and a digit
      off the centre is cut: the transformer has every reason to move.
    * ``"identity"``: the identity in normalized coordinates – the whole canvas, downsampled to ``out_size²``.

    They coincide when ``out_size == in_size``. ``benchmarks/NOTES.md`` compares the two starts on TC and RTS,
    with the commands (``benchmarks/train_quality.py --start``). ``batch_norm``: see :func:`classifier_trunk`.
    """
    in_size = check_int(in_size, "in_size", minimum=1)
    from .stn import SpatialTransformer

    check_choice(start, STARTS, "start")
    if out_size is None:
        out_size = default_out_size(in_size)
    if seed is not None:
        seed_everything(seed)
    transformer = SpatialTransformer(st_cnn_localisation_net(in_size), transform=transform, out_size=(out_size, out_size),
                                     align_corners=False, impl=impl)
    if start == "pixels":
        transformer.reset_head(scale=out_size / in_size)
    model = STCNN(transformer, classifier_trunk(out_size, hidden=hidden, batch_norm=batch_norm))
    model.config = {"model": "stcnn", "in_size": in_size, "transform": transform, "out_size": out_size,
                    "hidden": hidden, "impl": impl, "start": start, "batch_norm": batch_norm}
    return model


def baseline_cnn(in_size: int, hidden: int | None = None, seed: int | None = None,
                 batch_norm: bool = False) -> nn.Sequential:
    """Baseline CNN on the raw ``in_size × in_size`` canvas. ``(N, 1, S, S) -> (N, 10)``.

    ``hidden=None`` picks the hidden width that matches the parameter count of ``st_cnn(in_size,
    batch_norm=batch_norm)``; ``batch_norm``: see :func:`classifier_trunk`.
    """
    in_size = check_int(in_size, "in_size", minimum=1)
    if hidden is None:
        hidden = _match_hidden(in_size, count_parameters(st_cnn(in_size, batch_norm=batch_norm)), batch_norm)
    if seed is not None:
        seed_everything(seed)
    model = classifier_trunk(in_size, hidden=hidden, batch_norm=batch_norm)
    model.config = {"model": "cnn", "in_size": in_size, "hidden": hidden, "batch_norm": batch_norm}
    return model


def build_model(model: str, in_size: int, seed: int | None = None, **config: Any) -> nn.Module:
    """``build_model("cnn" | "stcnn", in_size, **config)`` – the builder behind :func:`load`."""
    check_choice(model, MODELS, "model")
    if model == "cnn":
        return baseline_cnn(in_size, seed=seed, **config)
    return st_cnn(in_size, seed=seed, **config)


def colour_input(model: nn.Module, channels: int = 3) -> nn.Module:
    """Let a CNN or ST-CNN built for grey images read ``channels``-channel ones (lesson 8's colour signs), in place.

    The convolutions that read the input – the classifier's first, and an ST-CNN's localisation net's first – get
    ``channels`` input channels (fresh weights from torch's global generator); an ST-CNN's transformer samples every
    channel with the same grid, so nothing else changes. Both models gain ``(channels - 1) · 25`` weights per output
    channel of those convolutions. ``load`` does not rebuild the change. Returns ``model``.
    """
    check_module(model)
    channels = check_int(channels, "channels", minimum=1)
    transformer = getattr(model, "transformer", None)
    parts = [transformer.localisation, model.classifier] if transformer is not None else [model]
    for part in parts:
        index = next(i for i, m in enumerate(part) if isinstance(m, nn.Conv2d))
        conv = part[index]
        part[index] = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
    if isinstance(getattr(model, "config", None), dict):
        model.config["in_channels"] = channels
    return model


# ----------------------------------------------------------------------------------------------------------------
# Training and evaluation
# ----------------------------------------------------------------------------------------------------------------


def error_rate(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Classification error in percent: ``100 · mean(argmax(logits) != labels)``. ``(N, C), (N,) -> float``"""
    check_tensor(logits, "logits")
    check_tensor(labels, "labels")
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError("error_rate of an empty batch is undefined")
    return 100.0 * (logits.argmax(1) != labels).float().mean().item()


def theta_statistics(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read an affine ``theta (N, 2, 3)`` (output -> input, as the sampler uses it) as zoom, rotation and shift.

    ``-> (zoom (N,), rotation (N,) in degrees, shift (N, 2))``:

    * ``zoom = 1 / sqrt(|det A|)`` with ``A = theta[:, :, :2]``: how much the output magnifies the input
      (``> 1`` zooms in: the grid covers a smaller region of the input);
    * ``rotation = -atan2(A[1, 0] - A[0, 1], A[0, 0] + A[1, 1])``: the angle of the rotation closest to ``A``,
      sign-flipped because the sampler reads backwards – it is how far the *content* turns in the output
      (positive = clockwise on screen, y down), so a transformer undoing a digit rotated by ``a`` shows ``≈ -a``;
    * ``shift = theta[:, :, 2]``: the normalized input point that the output's centre reads.
    """
    check_tensor(theta, "theta")
    if theta.ndim != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta: expected shape (N, 2, 3), got {tuple(theta.shape)}")
    a = theta[:, :, :2]
    det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    zoom = det.abs().rsqrt()
    rotation = -torch.rad2deg(torch.atan2(a[:, 1, 0] - a[:, 0, 1], a[:, 0, 0] + a[:, 1, 1]))
    return zoom, rotation, theta[:, :, 2].clone()


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: str | torch.device | None = None) -> dict[str, float]:
    """Mean cross-entropy and error (percent) of ``model`` over ``loader``. ``-> {"loss", "error", "n"}``"""
    check_module(model)
    device = _device(model, device)
    was_training = model.training
    model.eval()
    total_loss, wrong, n = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        wrong += (logits.argmax(1) != y).sum().item()
        n += len(y)
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no examples")
    return {"loss": total_loss / n, "error": 100.0 * wrong / n, "n": n}


def _progress(iterable, progress: bool, **kwargs):
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def fit(model: nn.Module, train_loader: Iterable, test_loader: Iterable | None = None, epochs: int = 5,
        lr: float = 1e-3, weight_decay: float = 0.0, device: str | torch.device | None = None, seed: int = 0,
        progress: bool = True, desc: str | None = None, lr_decay: float | None = None,
        transformer_lr: float | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
        lock: contextlib.AbstractContextManager | None = None,
        held_out_name: str = "held-out") -> dict[str, list[float]]:
    """Train ``model`` with Adam on cross-entropy; evaluate on ``test_loader`` after every epoch.

    Calls ``set_epoch(e)`` on the training set (fresh distortions every epoch), on ``train_loader`` and on its sampler
    (the batch order of :func:`~stn_course.data.make_loaders` depends on the epoch only) when they have one.
    ``lr_decay``: multiply the learning rate by this factor each epoch (cosine-free, simple).
    ``transformer_lr``: a separate learning rate for ``model.transformer`` (localisation net and regression head) when
    the model has one – common STN practice is a smaller one than the classifier's, so the transformer moves slowly
    while the classifier adapts to what it shows (``0`` freezes the transformer: its parameters and its batch-norm
    statistics).
    Returns the history, one entry per epoch: ``epoch``, ``loss`` (mean training loss), ``train_error`` (percent,
    on the fly), ``test_error`` and ``test_loss`` (if a test loader is given), ``time`` (cumulative seconds of
    training, without evaluation) and ``images_per_s`` (training throughput of that epoch).
    ``callback(info)`` is called after every training step (``info``: ``epoch`` from 0, ``step`` within it,
    ``steps`` per epoch when the loader has a length, ``loss`` of the step, ``history`` so far, ``model``) and once
    more at the end of each epoch with ``epoch_end=True`` – what a live explorer listens to
    (:func:`stn_course.widgets.transformer_explorer`).
    ``lock`` (e.g. a ``threading.RLock``) is held during every training step and every evaluation, never during
    ``callback``: another thread that holds it may read the model – and switch it to ``eval()`` and back – between
    steps (:func:`fit_in_background`).
    ``held_out_name``: what the progress bar calls the loader it scores on (``"<held_out_name> err"``): ``"held-out"``
    by default, ``"validation"`` or ``"test"`` where the caller knows which it is.
    """
    check_module(model)
    epochs = check_int(epochs, "epochs", minimum=0)
    for value, name in ((lr, "lr"), (weight_decay, "weight_decay")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a function of one argument (a dict), got {type(callback).__name__}")
    device = _device(model, device)
    model.to(device)
    seed_everything(seed)
    lock = contextlib.nullcontext() if lock is None else lock
    transformer = getattr(model, "transformer", None)
    if transformer_lr is not None and isinstance(transformer, nn.Module):
        own = {id(p) for p in transformer.parameters()}
        groups = [{"params": [p for p in model.parameters() if id(p) not in own]},
                  {"params": list(transformer.parameters()), "lr": transformer_lr}]
    else:
        groups = [{"params": list(model.parameters())}]
    optimizer = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    history: dict[str, list[float]] = {k: [] for k in
                                       ("epoch", "loss", "train_error", "test_error", "test_loss", "time",
                                        "images_per_s")}
    dataset = getattr(train_loader, "dataset", None)
    elapsed = 0.0
    bar = _progress(range(epochs), progress, desc=desc or type(model).__name__, unit="epoch")
    for epoch in bar:
        for owner in (dataset, train_loader, getattr(train_loader, "sampler", None)):
            if hasattr(owner, "set_epoch"):
                owner.set_epoch(epoch)
        total, wrong, n = 0.0, 0, 0
        steps = len(train_loader) if hasattr(train_loader, "__len__") else None
        start = time.perf_counter()
        for step, (x, y) in enumerate(train_loader):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with lock:
                model.train()
                if transformer_lr == 0 and isinstance(transformer, nn.Module):
                    transformer.eval()  # frozen: no batch-norm statistics updates either
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            total += loss.item() * len(y)
            wrong += (logits.argmax(1) != y).sum().item()
            n += len(y)
            if callback is not None:
                callback({"epoch": epoch, "step": step, "steps": steps, "loss": loss.item(), "history": history,
                          "model": model})
        seconds = time.perf_counter() - start
        elapsed += seconds
        if lr_decay is not None:
            for group in optimizer.param_groups:
                group["lr"] *= lr_decay
        history["epoch"].append(epoch + 1)
        history["loss"].append(total / max(n, 1))
        history["train_error"].append(100.0 * wrong / max(n, 1))
        history["time"].append(elapsed)
        history["images_per_s"].append(n / seconds if seconds > 0 else math.inf)
        if test_loader is not None:
            with lock:
                result = evaluate(model, test_loader, device)
            history["test_error"].append(result["error"])
            history["test_loss"].append(result["loss"])
        if callback is not None:
            callback({"epoch": epoch, "step": steps, "steps": steps, "loss": history["loss"][-1], "history": history,
                      "model": model, "epoch_end": True})
        if progress:
            post = {"loss": f"{history['loss'][-1]:.3f}", "train err": f"{history['train_error'][-1]:.1f}%"}
            if test_loader is not None:
                post[f"{held_out_name} err"] = f"{history['test_error'][-1]:.1f}%"  # the loader fit scores on
            bar.set_postfix(post)
    return history


class BackgroundFit:
    """A :func:`fit` running in a daemon thread – the handle :func:`fit_in_background` returns.

    ``done`` (the thread has finished), ``history`` (the history so far: the same dict :func:`fit` fills, complete
    once done), ``progress`` (the last ``info`` the callback saw, or ``None``), ``error`` (the exception that ended
    the run, or ``None``), ``lock`` (held by the training thread during every step and evaluation: hold it to read
    the model), ``thread``. :meth:`join` waits and returns the history, re-raising the run's exception.
    """

    def __init__(self, lock: contextlib.AbstractContextManager) -> None:
        if not (hasattr(lock, "__enter__") and hasattr(lock, "__exit__")):
            raise TypeError(f"lock: expected a lock (a context manager such as threading.RLock()), got "
                            f"{type(lock).__name__} {lock!r}"[:200])
        self.lock = lock
        self.history: dict[str, list[float]] | None = None
        self.progress: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    def join(self, timeout: float | None = None) -> dict[str, list[float]]:
        """Wait for the run (at most ``timeout`` seconds; ``TimeoutError`` if it is still running) and return its
        history; an exception raised in the training thread (or by ``on_done``) is raised here."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"the training run is still going after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.history

    def __repr__(self) -> str:
        state = "failed" if self.error is not None else "done" if self.done else "running"
        epochs = len(self.history["epoch"]) if self.history else 0
        return f"BackgroundFit({state}, {epochs} epoch(s) finished)"


def fit_in_background(model: nn.Module, train_loader: Iterable, test_loader: Iterable | None = None, *,
                      lock: contextlib.AbstractContextManager | None = None,
                      on_done: Callable[[BackgroundFit], None] | None = None,
                      **fit_kwargs: Any) -> BackgroundFit:
    """Start :func:`fit` in a daemon thread and return at once: a live explorer shows the training while a notebook
    cell – or a Voilà page – has already finished (lessons 5 and 6's dashboards).

    ``fit_kwargs`` go to :func:`fit` (``progress`` defaults to ``False``: a progress bar started from a thread has
    no cell to draw in; ``callback`` is called in the training thread). ``lock``: held during every step and
    evaluation (default: a new ``threading.RLock``, ``run.lock``); whoever reads the model from another thread – a
    slider's redraw – holds it too, so a picture never sees half a step nor changes the mode a step runs in.
    ``on_done(run)`` is called in the training thread when the run ends, finished or failed (``run.error``).
    ``-> BackgroundFit``; ``run.join()`` returns the history or raises what the run raised – nothing is swallowed.

    >>> run = fit_in_background(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), [(torch.ones(3, 1, 2, 2),
    ...                         torch.tensor([0, 1, 0]))], epochs=2)
    >>> run.join()["epoch"], run.done
    ([1, 2], True)
    """
    check_module(model)
    callback = fit_kwargs.pop("callback", None)
    for function, name in ((callback, "callback"), (on_done, "on_done")):
        if function is not None and not callable(function):
            raise TypeError(f"{name}: expected a function, got {type(function).__name__}")
    run = BackgroundFit(threading.RLock() if lock is None else lock)
    fit_kwargs.setdefault("progress", False)

    def follow(info: dict[str, Any]) -> None:
        run.history, run.progress = info["history"], info
        if callback is not None:
            callback(info)

    def train() -> None:
        try:
            run.history = fit(model, train_loader, test_loader, callback=follow, lock=run.lock, **fit_kwargs)
        except BaseException as error:  # kept for join() and on_done, which report it
            run.error = error
        if on_done is not None:
            try:
                on_done(run)
            except BaseException as error:
                run.error = run.error or error

    run.thread = threading.Thread(target=train, name="stn-course-fit", daemon=True)
    run.thread.start()
    return run


# ----------------------------------------------------------------------------------------------------------------
# Save / load
# ----------------------------------------------------------------------------------------------------------------


def save(model: nn.Module, path: str | os.PathLike, **extra: Any) -> None:
    """Save ``{"config": model.config, "state_dict": ..., **extra}`` (e.g. the history) to ``path``."""
    check_module(model)
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError("save: the model has no .config; build it with baseline_cnn / st_cnn / build_model")
    torch.save({"config": dict(config), "state_dict": model.state_dict(), **extra}, path)


def load(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> nn.Module:
    """Rebuild the model saved by :func:`save` and load its weights (``model.extra`` holds the extra entries)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or os.PathLike), got {type(path).__name__}")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or "config" not in checkpoint or "state_dict" not in checkpoint:
        raise ValueError(f"{path}: expected a checkpoint written by stn_course.training.save "
                         f"(a dict with 'config' and 'state_dict')")
    config = dict(checkpoint["config"])
    model = build_model(config.pop("model"), config.pop("in_size"), **config)
    model.load_state_dict(checkpoint["state_dict"])
    model.extra = {k: v for k, v in checkpoint.items() if k not in ("config", "state_dict")}
    model.eval()
    return model


def stcnn_forward(x: torch.Tensor, localisation: nn.Module, head: nn.Linear, classifier: nn.Module,
                  out_size: int, align_corners: bool = False) -> torch.Tensor:
    """An ST-CNN's forward pass from its parts (lesson 5): localise, regress θ with ``head`` (six outputs: the two
    rows of θ), sample an ``out_size × out_size`` output (``"aten"``, ``align_corners=False``, the
    :class:`~stn_course.stn.SpatialTransformer`'s default; ``True`` gives the other convention's ST-CNN, which lesson
    5's check names as a slip), classify it.

    The :class:`~stn_course.stn.SpatialTransformer` that does it gets copies of ``head``'s weights.
    ``x: (N, C, H, W) -> classifier's output``

    >>> head = nn.Linear(4, 6)
    >>> loc, classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), nn.Sequential(nn.Flatten(), nn.Linear(25, 10))
    >>> stcnn_forward(torch.rand(3, 1, 8, 8), loc, head, classifier, out_size=5).shape
    torch.Size([3, 10])
    """
    from .stn import SpatialTransformer

    check_float_tensor(x, "x", 4, "(N, C, H, W)")
    transformer = SpatialTransformer(localisation, "affine", out_size=out_size, align_corners=align_corners,
                                     impl="aten", loc_features=head.in_features)
    with torch.no_grad():
        transformer.head.weight.copy_(head.weight)
        transformer.head.bias.copy_(head.bias)
    return classifier(transformer(x))
