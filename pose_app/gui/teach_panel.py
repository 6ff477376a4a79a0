"""The teaching view's controls in the feature-map dock (explain/teach_view.py draws the view,
explain/teach.py holds the maths): the clicks the learner made, Train (in a background thread,
the loss curve drawn as it falls), and saving and loading a taught point (.npz).

A click on the dock's frame picture (ExplainerView.frame_clicked) while the teaching view is
shown adds the point on the frame shown (FeaturePanel keeps the wiring). Clicks keep their frame,
so Train can run on whichever block the dock shows: the frozen network runs once per clicked
frame for that block, then the 1x1 head is fitted.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from pose_app.errors import PoseAppError, one_line
from pose_app.explain.teach import (
    TaughtPoint,
    TeachClick,
    TeachRequest,
    load_taught,
    samples_for_clicks,
    save_taught,
    teach_point,
)
from pose_app.inference.engine import PoseEngine

PROGRESS_EVERY = 10  # training steps between two redraws of the loss curve


class TeachRunner(QObject):
    """Trains a taught point in a background thread; a new run cancels the one in progress.
    Signals: progress(tuple of losses so far), finished(TaughtPoint), failed(str)."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._cancel = threading.Event()

    def start(self, engine: PoseEngine, clicks: list[TeachClick], name: str, block: str, stride: int,
              resolution: int) -> threading.Thread:
        self._cancel.set()
        self._cancel = cancel = threading.Event()
        thread = threading.Thread(target=self._run, args=(engine, list(clicks), name, block, stride, resolution, cancel),
                                  name="teach", daemon=True)
        thread.start()
        return thread

    def _run(self, engine, clicks, name, block, stride, resolution, cancel: threading.Event) -> None:
        losses: list[float] = []

        def progress(step: int, loss: float) -> bool:
            losses.append(loss)
            if step % PROGRESS_EVERY == 0:
                self.progress.emit(tuple(losses))
            return not cancel.is_set()

        try:
            samples = samples_for_clicks(engine, clicks, block, stride, resolution)
            point = teach_point(samples, name, block, stride, progress=progress)
            if not cancel.is_set():
                self.finished.emit(point)
        except Exception as error:  # noqa: BLE001 - the window must say why
            message = str(error) if isinstance(error, PoseAppError) else f"{type(error).__name__}: {one_line(error)}"
            self.failed.emit(f"training failed: {message}")


class TeachControls(QWidget):
    """The point's name, Train, Undo and Clear for the clicks, Save and Load. Signals: changed()
    when what the view draws changed; train() when Train is pressed; message(str) for the status
    bar. `request()` is what the teaching view draws."""

    changed = Signal()
    train = Signal()
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.clicks: list[TeachClick] = []
        self.point: TaughtPoint | None = None
        self.losses: tuple[float, ...] = ()
        self.training = False
        self.folder = Path.cwd  # where Save and Load start (the window's output folder)
        self.name = QLineEdit("my point")
        self.name.setToolTip("What you teach: a racket tip, the chin, a ball...")
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.train.emit)
        self.undo_button = QPushButton("Undo click")
        self.undo_button.clicked.connect(self.undo)
        self.clear_button = QPushButton("Clear clicks")
        self.clear_button.clicked.connect(self.clear)
        self.save_button = QPushButton("Save point…")
        self.save_button.clicked.connect(self._ask_save)
        self.load_button = QPushButton("Load point…")
        self.load_button.clicked.connect(self._ask_load)
        self.status = QLabel()
        self.status.setWordWrap(True)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        first, second = QHBoxLayout(), QHBoxLayout()
        first.addWidget(QLabel("Point"))
        first.addWidget(self.name, 1)
        first.addWidget(self.train_button)
        for button in (self.undo_button, self.clear_button, self.save_button, self.load_button):
            second.addWidget(button)
        second.addStretch(1)
        rows.addLayout(first)
        rows.addLayout(second)
        rows.addWidget(self.status)
        self._show_state()

    def request(self) -> TeachRequest:
        clicks = tuple((click.frame, *click.point) for click in self.clicks)
        return TeachRequest(clicks, self.point, self.losses, self.training)

    def add_click(self, frame: int, image: np.ndarray, point: tuple[float, float]) -> None:
        """The point clicked on frame `frame`; a second click on the same frame moves it."""
        self.clicks = [click for click in self.clicks if click.frame != frame]
        self.clicks.append(TeachClick(frame, image, (float(point[0]), float(point[1]))))
        self._show_state()
        self.changed.emit()

    def undo(self) -> None:
        if self.clicks:
            self.clicks.pop()
            self._show_state()
            self.changed.emit()

    def clear(self) -> None:
        self.clicks = []
        self._show_state()
        self.changed.emit()

    # --- training (the runner's signals) ------------------------------------------------------
    def training_started(self) -> None:
        self.training, self.losses = True, ()
        self._show_state()
        self.changed.emit()

    def training_progress(self, losses: tuple[float, ...]) -> None:
        if self.training:
            self.losses = losses
            self.changed.emit()

    def training_finished(self, point: TaughtPoint) -> None:
        self.training, self.point, self.losses = False, point, ()
        self._show_state()
        self.changed.emit()
        self.message.emit(f"taught '{point.name}' on {point.block}: loss {point.losses[0]:.3f} → {point.losses[-1]:.3f}")

    def training_failed(self, message: str) -> None:
        self.training = False
        self._show_state()
        self.changed.emit()
        self.message.emit(message)

    # --- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path | None:
        if self.point is None:
            self.message.emit("nothing taught yet: click the point on a few frames and Train")
            return None
        try:
            saved = save_taught(self.point, path)
        except OSError as error:
            self.message.emit(f"cannot write {path}: {error.strerror or error}")
            return None
        self.message.emit(f"Saved {saved}")
        return saved

    def load(self, path: str | Path) -> TaughtPoint | None:
        try:
            point = load_taught(path)
        except PoseAppError as error:
            self.message.emit(str(error))
            return None
        self.point, self.losses, self.training = point, (), False
        self.name.setText(point.name)
        self._show_state()
        self.changed.emit()
        self.message.emit(f"loaded '{point.name}' ({point.block})")
        return point

    def _ask_save(self) -> None:
        name = self.point.name if self.point is not None else self.name.text()
        path, _ = QFileDialog.getSaveFileName(self, "Save the taught point", str(self.folder() / f"{name}.npz"),
                                              "Taught points (*.npz)")
        if path:
            self.save(path)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a taught point", str(self.folder()), "Taught points (*.npz)")
        if path:
            self.load(path)

    def _show_state(self) -> None:
        frames = len(self.clicks)
        taught = f"; taught: '{self.point.name}' on {self.point.block}" if self.point is not None else ""
        self.status.setText(f"{frames} clicks (one per frame; 10-20 is plenty){taught}")
        self.train_button.setEnabled(frames >= 2 and not self.training)
        self.undo_button.setEnabled(bool(frames))
        self.clear_button.setEnabled(bool(frames))
        self.save_button.setEnabled(self.point is not None)
