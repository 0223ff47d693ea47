"""Lessons 5 and 6's live explorers and dashboards: training in the background (stn_course.training.
fit_in_background, stn_course.widgets.lesson05.LiveTraining) while the picture and the status line follow it.

Every test but the last trains a few steps on a few hundred digits (seconds); the last runs lesson 5's dashboard
code as the page runs it, to the end (about a minute of CPU), and checks what its text promises."""
from __future__ import annotations

import re
import threading

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from stn_course import data, deform_net, explore, training, widgets  # noqa: E402
from stn_course.data.datasets import _derive_seed  # noqa: E402
from stn_course.data.distortions import DISTORTIONS  # noqa: E402


@pytest.fixture(scope="module")
def rts():
    return data.make_datasets("RTS", n_train=128, n_test=32, seed=0, impl="aten")


class Gate:
    """A loader that waits at its first batch until ``open()``: so a test can look at a run that has surely not
    ended. ``fail_at``: raise ``ValueError`` at that step instead of yielding it."""

    def __init__(self, loader, fail_at: int | None = None) -> None:
        self.loader, self.fail_at = loader, fail_at
        self.event = threading.Event()
        self.dataset, self.sampler = loader.dataset, getattr(loader, "sampler", None)

    def open(self) -> None:
        self.event.set()

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        assert self.event.wait(timeout=60), "the test never opened the gate"
        for step, batch in enumerate(self.loader):
            if step == self.fail_at:
                raise ValueError(f"a broken batch at step {step}")
            yield batch


def test_start_training_returns_at_once_and_the_explorer_follows_every_step(rts):
    train, test = rts
    model = training.st_cnn(42, seed=0, batch_norm=True)
    box = widgets.transformer_explorer(model, test, refresh_s=0.0)  # redraw at every step
    assert "stn-training-status" in box.status._dom_classes and box.status.value == "" and box.training is None
    statuses = []
    box.status.observe(lambda change: statuses.append(change["new"]), names="value")
    gate_train, test_loader = data.make_loaders(train, test, batch_size=32)
    gate = Gate(gate_train)
    renders = box.state["renders"]
    run = box.start_training(gate, test_loader, epochs=2, lr=2e-3, transformer_lr=5e-4)
    assert box.training is run and not run.done and run.history is None  # it returned before the first step
    assert box.status.value == "<b>training: starting</b>"
    with pytest.raises(RuntimeError, match="already watching"):
        box.start_training(gate, test_loader, epochs=1)
    gate.open()
    history = run.join(timeout=120)
    assert run.done and run.error is None and history["epoch"] == [1, 2]
    steps = len(gate)
    # every step and every epoch's end redrew the picture, and the final state once more
    assert box.state["renders"] == renders + 2 * (steps + 1) + 1
    assert statuses[1] == f"<b>training: epoch 1 of 2, step 1/{steps}, loss {statuses[1].split('loss ')[1]}"
    assert f"<b>training: epoch 2 of 2, step {steps}/{steps}," in statuses[2 * steps + 1]
    assert statuses[-1] == f"<b>trained: 2 epochs, test error {history['test_error'][-1]:.1f} %</b>"
    assert box.state["history"] is history and box.state["status"] == statuses[-1]


def test_redraws_while_it_trains_change_nothing_in_the_training(rts):
    """The slider's redraws (in eval mode, without gradients, between steps) and the training thread share the model:
    the run must end with exactly the weights and batch-norm statistics of the same run without an explorer."""
    train, test = rts
    alone = training.st_cnn(42, seed=0, batch_norm=True)
    expected = training.fit(alone, *data.make_loaders(train, test, batch_size=32), epochs=2, lr=2e-3,
                            transformer_lr=5e-4, progress=False)
    model = training.st_cnn(42, seed=0, batch_norm=True)
    box = widgets.transformer_explorer(model, test, refresh_s=0.0)
    run = box.start_training(*data.make_loaders(train, test, batch_size=32), epochs=2, lr=2e-3, transformer_lr=5e-4)
    moves = 0
    while not run.done:
        box.controls["index"].value = (box.controls["index"].value + 1) % len(test)
        moves += 1
    history = run.join()
    assert moves > 0
    assert history["loss"] == expected["loss"] and history["test_error"] == expected["test_error"]
    for (name, a), (_, b) in zip(alone.state_dict().items(), model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert model.training  # fit leaves it in train mode; no redraw left it in eval


def test_a_failure_in_training_is_shown_and_raised_not_swallowed(rts):
    train, test = rts
    model = training.st_cnn(42, seed=0)
    box = widgets.transformer_explorer(model, test)
    gate = Gate(data.make_loaders(train, test, batch_size=32)[0], fail_at=2)
    gate.open()
    run = box.start_training(gate, epochs=1)
    with pytest.raises(ValueError, match="a broken batch at step 2"):
        run.join(timeout=60)
    assert isinstance(run.error, ValueError) and run.done
    assert box.status.value == "<b>training failed: ValueError: a broken batch at step 2</b>"
    assert "stn-training-failed" in box.status._dom_classes
    assert box.state["status"] == box.status.value  # redrawn after the failure


def test_fit_in_background_hands_back_what_fit_returns_and_checks_its_arguments(rts):
    train, test = rts
    loaders = data.make_loaders(train, test, batch_size=64)
    foreground = training.fit(training.baseline_cnn(42, hidden=8, seed=0), *loaders, epochs=1, progress=False)
    seen, ended = [], []
    run = training.fit_in_background(training.baseline_cnn(42, hidden=8, seed=0), *loaders, epochs=1,
                                     callback=seen.append, on_done=ended.append)
    assert run.join(timeout=60)["test_error"] == foreground["test_error"]
    assert ended == [run] and len(seen) == len(loaders[0]) + 1 and seen[-1]["epoch_end"]
    assert run.progress is seen[-1] and "done, 1 epoch" in repr(run)
    with pytest.raises(TypeError, match="on_done: expected a function"):
        training.fit_in_background(training.baseline_cnn(42, hidden=8), *loaders, on_done="print")
    with pytest.raises(TypeError, match="model"):
        training.fit_in_background("not a model", *loaders)
    gate = Gate(loaders[0])
    pending = training.fit_in_background(training.baseline_cnn(42, hidden=8), gate, epochs=1)
    with pytest.raises(TimeoutError, match="still going"):
        pending.join(timeout=0.01)
    gate.open()
    pending.join(timeout=60)


def test_the_deformable_explorer_trains_live_then_shows_a_digit_it_classifies_correctly():
    train, test = data.make_datasets("RTS", n_train=128, n_test=24, seed=0, impl="aten")
    training.seed_everything(0)
    net = deform_net.DeformableCNN(in_size=42)
    box = widgets.deformable_explorer(net, test, refresh_s=0.0)
    gate = Gate(data.make_loaders(train, test, batch_size=32)[0])
    run = box.start_training(gate, data.make_loaders(train, test)[1], epochs=1, lr=3e-3)
    assert not run.done and box.controls["index"].value == 0
    gate.open()
    run.join(timeout=120)
    found = widgets.first_correct(net, test)
    net.eval()
    with torch.no_grad():  # the reference: every prediction at once
        x, labels = test[list(range(len(test)))]
        right = (net(x).argmax(1) == labels).nonzero().flatten().tolist()
    assert right and found == right[0]
    assert box.controls["index"].value == found and box.state["prediction"] == box.state["label"]
    assert box.status.value.endswith(f"; showing test digit {found}, the first it classifies correctly</b>")
    assert box.status.value.startswith("<b>trained: 1 epoch, test error")


def test_the_deformable_explorer_leaves_a_moved_slider_alone():
    train, test = data.make_datasets("RTS", n_train=64, n_test=8, seed=0, impl="aten")
    net = deform_net.DeformableCNN(in_size=42)
    box = widgets.deformable_explorer(net, test)
    gate = Gate(data.make_loaders(train, test, batch_size=32)[0])
    run = box.start_training(gate, epochs=1)
    box.controls["index"].value = 5  # the learner moves on while it trains
    gate.open()
    run.join(timeout=120)
    assert box.controls["index"].value == 5 and box.status.value == "<b>trained: 1 epoch</b>"


def _true_digit_centres(test: data.DistortedMNIST) -> torch.Tensor:
    """Where each digit of an RTS test set sits (normalized canvas coordinates ``(N, 2)``): the distortions drawn
    again with the generator the set was drawn with, now returning their ``theta``."""
    generator = torch.Generator().manual_seed(_derive_seed(test.seed, 0, DISTORTIONS.index(test.kind), 0))
    images, thetas = [], []
    for start in range(0, len(test.source), test.chunk):
        out, theta = data.distort(test.source[start:start + test.chunk], test.kind, generator, test.size,
                                  return_params=True, impl=test.impl)
        images.append((out * 255).round().to(torch.uint8))
        thetas.append(theta)
    assert torch.equal(torch.cat(images), test.images)  # the very digits the page shows
    theta = torch.cat(thetas)
    return -torch.linalg.solve(theta[:, :, :2], theta[:, :, 2])  # the canvas point the digit's centre lands on


def test_lesson_5s_dashboard_trains_in_the_background_until_the_grid_moves_with_the_digit():
    """The page's own code, run as Voilà runs it: the cell returns while training has not ended; when it has, the
    transformer's shift follows every test digit's centre (an untrained one reads the same window for all)."""
    board = explore.dashboards()["05"]
    for words in ("3 epochs on 4,000 digits", "trained: 3 epochs, test error",
                  "by the end the grid moves with the digit", "the rotation in θ stays small"):
        assert words in " ".join(board.intro.split()), words
    namespace: dict = {}
    exec(compile(explore._SETUP + board.code, "<dashboard 05>", "exec"), namespace)
    live, model, train, test = (namespace[k] for k in ("live", "model", "train", "test"))
    run = live.training
    assert not run.done  # the cell has returned; the page is already showing the explorer
    centres = _true_digit_centres(test)
    history = run.join(timeout=900)
    assert history["epoch"] == [1, 2, 3] and len(train) == 4000
    assert live.status.value == f"<b>trained: 3 epochs, test error {history['test_error'][-1]:.1f} %</b>"
    x, _ = test[list(range(len(test)))]
    model.eval()
    with torch.no_grad():
        _, theta, _ = model.transform(x)
    zoom, rotation, shift = training.theta_statistics(theta)
    for axis in (0, 1):
        assert np.corrcoef(shift[:, axis], centres[:, axis])[0, 1] > 0.8, axis
    assert shift.std(0).min() > 0.1  # normalized units: ≥ 2 px on the 42-px canvas, digit to digit
    assert rotation.abs().mean() < 10  # as the text says: it has not learned to turn yet


@pytest.mark.parametrize("lesson", ["05", "06"])
def test_a_live_dashboards_text_gives_the_epochs_and_digits_its_code_trains(lesson):
    """"N epochs on M digits" in the page's text is what its code asks for (no n_train: every training digit)."""
    board = explore.dashboards()[lesson]
    intro, code = " ".join(board.intro.split()), board.code
    epochs, digits = re.search(r"(\d+) epochs on ([\d,]+) digits", intro).groups()
    assert f"epochs={epochs}," in code and "start_training(" in code
    assert "n_train" not in code and int(digits.replace(",", "")) == len(data.load_splits()[0])
    assert f"trained: {epochs} epochs, test error" in intro and explore.is_live(board)
