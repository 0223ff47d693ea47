"""The explorer of lesson 5: what a spatial transformer does to each test digit – live while it trains, and after.

:class:`LiveTraining` is the part every live explorer shares (lesson 6's uses it too): the status line, the lock that
keeps a redraw from reading the model in the middle of a training step, and the training run in the background
(:func:`stn_course.training.fit_in_background`). See :mod:`stn_course.widgets` for what every explorer returns."""
from __future__ import annotations

import html
import threading
import time
from typing import Any, Callable

import ipywidgets as widgets
import torch

from ..sampling import grid_to_pixels
from .common import _explorer, _matrix_html
from .raster import Canvas

__all__ = ["LiveTraining", "transformer_explorer"]


class LiveTraining:
    """What an explorer needs to watch ``model`` train: a status line (``widget``, CSS class ``stn-training-status``),
    a ``lock`` that :func:`~stn_course.training.fit` holds during every step (an explorer's ``draw`` holds it while it
    reads the model), the ``history`` seen so far, and :meth:`start`, which trains in a thread.

    The status reads ``training: epoch E of N, step S/T, loss L`` while it trains, ``trained: N epochs, test error
    X %`` when done, and ``training failed: Error: message`` (CSS class ``stn-training-failed`` added) if the run
    raised. The picture is redrawn at most every ``refresh_s`` seconds and at the end of every epoch.
    """

    def __init__(self, model: torch.nn.Module, refresh_s: float = 1.0, history: dict | None = None) -> None:
        self.model = model
        self.lock = threading.RLock()
        self.refresh_s = float(refresh_s)
        self.history = history
        self.widget = widgets.HTML("")
        self.text = ""
        self.widget.add_class("stn-training-status")
        self.run = None  # the BackgroundFit of start()
        self._box: widgets.VBox | None = None
        self._epochs: int | None = None
        self._last = 0.0

    def attach(self, box: widgets.VBox) -> None:
        """Put the status line under ``box``'s controls and give the box ``on_progress``, ``start_training``,
        ``training`` (the run, ``None`` before one starts) and ``status`` (the status widget)."""
        self._box = box
        column = getattr(box, "panel", box)  # the controls' column, where the explorer has one
        children = list(column.children)
        at = children.index(box.caption) if box.caption in children else len(children)
        column.children = (*children[:at], self.widget, *children[at:])
        box.on_progress, box.start_training, box.status, box.training = self.on_progress, self.start, self.widget, None

    def set_status(self, text: str, failed: bool = False) -> None:
        """Show ``text`` (plain text, kept in ``self.text``) in the status line."""
        self.text = text
        self.widget.value = f"<b>{html.escape(text)}</b>"
        if failed:
            self.widget.add_class("stn-training-failed")

    def on_progress(self, info: dict[str, Any]) -> None:
        """:func:`stn_course.training.fit`'s callback: remember the history, update the status, redraw now and then."""
        self.history = info.get("history")
        of = f" of {self._epochs}" if self._epochs else ""
        if info.get("epoch_end"):
            tested = self.history.get("test_error") if self.history else None
            after = f", test error {tested[-1]:.1f} %" if tested else f", loss {info['loss']:.3f}"
            self.set_status(f"training: epoch {info['epoch'] + 1}{of} finished{after}")
        else:
            steps = f"/{info['steps']}" if info.get("steps") else ""
            self.set_status(f"training: epoch {info['epoch'] + 1}{of}, step {info['step'] + 1}{steps}, "
                            f"loss {info['loss']:.3f}")
        now = time.perf_counter()
        if info.get("epoch_end") or now - self._last >= self.refresh_s:
            self._last = now
            self._redraw()

    def start(self, train_loader, test_loader=None, *, then: Callable[[Any], None] | None = None, **fit_kwargs):
        """Train the explorer's model in the background (:func:`stn_course.training.fit_in_background` with
        ``fit_kwargs``) and return the run at once; the picture and the status follow it. ``then(run)`` is called
        (in the training thread) after the last redraw. ``-> BackgroundFit`` (``.join()`` re-raises a failure)."""
        from ..training import fit_in_background

        if self._box is None:
            raise RuntimeError("LiveTraining.start: attach it to an explorer first")
        if self.run is not None and not self.run.done:
            raise RuntimeError("this explorer is already watching a training run; wait for it (.training.join())")
        self._epochs = fit_kwargs.get("epochs", 5)
        self.set_status("training: starting")

        def finished(run) -> None:
            if run.error is not None:
                self.set_status(f"training failed: {type(run.error).__name__}: {run.error}", failed=True)
            else:
                self.history = run.history
                epochs = len(run.history["epoch"])
                tested = run.history.get("test_error")
                after = f", test error {tested[-1]:.1f} %" if tested else ""
                self.set_status(f"trained: {epochs} epoch{'s' if epochs != 1 else ''}{after}")
            self._redraw()
            if then is not None:
                then(run)

        self.run = fit_in_background(self.model, train_loader, test_loader, lock=self.lock, on_done=finished,
                                     callback=self.on_progress, **fit_kwargs)
        self._box.training = self.run
        return self.run

    def _redraw(self) -> None:
        if self._box is not None:
            self._box.update()


def transformer_explorer(model: torch.nn.Module, dataset, history: dict | None = None,
                         refresh_s: float = 1.0) -> widgets.VBox:
    """Browse a dataset through an ST-CNN: the input with the predicted sampling grid, the transformer's output,
    the prediction, ``theta`` read as zoom / rotation / where the view looks, and the error curves of its training.

    Live, two ways: ``box.start_training(train_loader, test_loader, **fit_kwargs)`` trains the model in the
    background (:class:`LiveTraining`; the call returns at once with the run, so a notebook cell or a dashboard
    page finishes while the picture follows the training), or pass ``box.on_progress`` to
    :func:`stn_course.training.fit` as its ``callback`` to train in the foreground. Either way the picture is redrawn
    at most every ``refresh_s`` seconds and at the end of every epoch, so it costs training little time, and the
    status line (CSS class ``stn-training-status``) says how far it got. Afterwards it is an explorer like the
    others – also on a model saved with :func:`stn_course.training.save` and loaded with
    :func:`stn_course.training.load` (pass the ``history`` it was saved with to see its error curves). A redraw
    never changes the model: it reads it in ``eval()`` mode between training steps, without gradients, and puts the
    mode back.

    ``model``: an :class:`stn_course.training.STCNN`; ``dataset[i] -> (x (1, S, S), label)``. ``-> VBox`` (CSS class
    ``stn-transformer-explorer``); ``state`` holds ``theta``, ``output``, ``prediction``, ``label``, the training
    ``history`` seen so far, the ``status`` text and the ``layout`` of the picture.
    """
    from ..training import theta_statistics

    if not hasattr(model, "transform"):
        raise TypeError(f"model: expected an ST-CNN with .transform (stn_course.training.STCNN), got "
                        f"{type(model).__name__}")
    style = {"description_width": "80px"}
    controls = {
        "index": widgets.IntSlider(0, min=0, max=len(dataset) - 1, description="test digit", style=style),
        "grid": widgets.Checkbox(True, description="draw grid", style=style),
    }
    live = LiveTraining(model, refresh_s, history)
    align_corners = bool(getattr(getattr(model, "transformer", None), "align_corners", False))

    def draw(v: dict) -> tuple[bytes, str, dict]:
        x, label = dataset[v["index"]]
        x = x.unsqueeze(0)
        with live.lock, torch.no_grad():  # between training steps; the mode it trains in is put back
            was_training = model.training
            model.eval()
            try:
                out, theta, grid = model.transform(x)
                prediction = int(model(x).argmax(1))
            finally:
                model.train(was_training)
        canvas = Canvas(min_side=168)
        pixels = grid_to_pixels(grid[0], x.shape[-2:], align_corners) if v["grid"] else None
        canvas.add(f"input, label {int(label)}", x[0], grid=pixels, max_lines=8)
        canvas.add(f"transformer output -> {prediction}", out[0])
        history = live.history
        if history and history.get("epoch"):
            series = {"train error %": list(history["train_error"])}
            if history.get("test_error"):
                series["test error %"] = list(history["test_error"])
            canvas.add_curves("error along training", series, size=168)
        png = canvas.png()
        html_ = f"<b>prediction: {prediction}</b> (label {int(label)})<br>"
        if theta.shape[1:] == (2, 3):
            zoom, rotation, shift = theta_statistics(theta)
            html_ += (f"zoom {zoom.item():.2f}, rotation {rotation.item():+.1f}°, looks at "
                      f"({shift[0, 0].item():+.2f}, {shift[0, 1].item():+.2f})<br>")
            html_ += _matrix_html("theta", theta[0])
        return png, html_, {"theta": theta[0], "output": out, "prediction": prediction, "label": int(label),
                            "history": history, "status": live.widget.value, "layout": dict(canvas.boxes)}

    box = _explorer("stn-transformer-explorer", controls, draw, columns=2)
    live.attach(box)
    return box
