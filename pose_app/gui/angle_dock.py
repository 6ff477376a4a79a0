"""The angle dock: the chosen joint and segment angles of one person over the last seconds, live,
and a repetition counter for that person.

`AngleHistory` (no Qt) keeps the angles the inference worker computed for each frame (smoothed,
and unsmoothed when the keypoints were smoothed); `AngleDock` plots one person's chosen angles
with pyqtgraph, redrawing at most `REDRAW_HZ` times a second so that the video keeps its frame
rate. Showing the raw curve under the smoothed one shows what the One Euro filter does to
jitter (the raw curve's wiggles) and lag (the smoothed curve trailing behind).

The counter (`RepCounter`, analysis/reps.py: the rules of `pose-app reps`) is fed every frame's
angles and shows the number of repetitions since its reset, with the last one's depth and tempo.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pose_app.analysis.reps import RepCounter
from pose_app.core.angles import ANGLE_NAMES
from pose_app.draw.render import person_color

DEFAULT_ANGLES = ("left_elbow", "right_elbow", "left_knee", "right_knee")
DEFAULT_WINDOW_S = 10.0
REDRAW_HZ = 10
# The counter's angle choices: the clearest periodic joint angle, or a joint (the side seen best).
REP_ANGLES = (("auto: clearest motion", None), ("knee", "knee"), ("hip", "hip"), ("elbow", "elbow"),
              ("shoulder", "shoulder"), ("trunk", "trunk"))
# Curve colours: one per chosen angle, the raw curve the same colour, dashed and fainter.
_PALETTE = ((230, 80, 60), (60, 140, 230), (60, 180, 90), (220, 160, 30), (160, 90, 200), (40, 190, 190))


@dataclass(frozen=True)
class FrameAngles:
    """One frame's angles: ids (P,), degrees (P, A) smoothed (or as detected when not smoothed),
    unsmoothed (P, A) or None, confidence (P, A) (lowest keypoint score) or None, in ANGLE_NAMES
    order."""

    time_s: float
    ids: np.ndarray
    degrees: np.ndarray
    unsmoothed: np.ndarray | None
    confidence: np.ndarray | None = None


class AngleHistory:
    """The frames' angles of the last `window_s` seconds of media time (no Qt)."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S):
        self.window_s = window_s
        self._frames: deque[FrameAngles] = deque()

    def add(self, frame: FrameAngles) -> None:
        if self._frames and frame.time_s < self._frames[-1].time_s:
            self._frames.clear()  # a seek or a loop restart: time went back
        self._frames.append(frame)
        while self._frames and self._frames[0].time_s < frame.time_s - self.window_s:
            self._frames.popleft()

    def clear(self) -> None:
        self._frames.clear()

    def people(self) -> list[int]:
        """The person ids seen in the window, in order of appearance."""
        return list(dict.fromkeys(int(i) for frame in self._frames for i in frame.ids))

    def series(self, person_id: int, angle: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, degrees, unsmoothed degrees) of one person's angle; NaN where missing (also
        on frames without that person, so the curve breaks instead of bridging a gap)."""
        column = ANGLE_NAMES.index(angle)
        times, degrees, raw = [], [], []
        for frame in self._frames:
            rows = np.flatnonzero(frame.ids == person_id)
            times.append(frame.time_s)
            if len(rows):
                degrees.append(frame.degrees[rows[0], column])
                raw.append(frame.degrees[rows[0], column] if frame.unsmoothed is None else frame.unsmoothed[rows[0], column])
            else:
                degrees.append(np.nan)
                raw.append(np.nan)
        return np.asarray(times), np.asarray(degrees, np.float64), np.asarray(raw, np.float64)


class AngleDock(QWidget):
    """Person, angles, window length, raw curve on/off, and the plot. Signals: angles_changed
    (the chosen angles, for the overlay that draws them at the joints)."""

    angles_changed = Signal(tuple)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.history = AngleHistory()
        self.person = QComboBox()
        self.person.setToolTip("Whose angles to plot: the first person in view, or a track id")
        self.person.addItem("first in view", -1)
        self.angle_list = QListWidget()
        for name in ANGLE_NAMES:
            item = QListWidgetItem(name.replace("_", " "))
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setCheckState(Qt.CheckState.Checked if name in DEFAULT_ANGLES else Qt.CheckState.Unchecked)
            self.angle_list.addItem(item)
        self.angle_list.setMaximumHeight(110)
        self.window = QDoubleSpinBox()
        self.window.setRange(1.0, 120.0)
        self.window.setValue(DEFAULT_WINDOW_S)
        self.window.setSuffix(" s")
        self.show_raw = QCheckBox("Also the unsmoothed curve (dashed)")
        self.show_raw.setToolTip("Shows what smoothing does: less jitter, a little lag")
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("left", "degrees")
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.addLegend(offset=(5, 5))
        self._curves: dict[tuple[str, bool], pg.PlotDataItem] = {}
        self._dirty = False
        self.reps = RepCounter()
        self.rep_angle = QComboBox()
        self.rep_angle.setToolTip("The angle repetitions are counted on (rules: docs/reps.md)")
        for label, angle in REP_ANGLES:
            self.rep_angle.addItem(label, angle)
        self.rep_count = QLabel("0")
        self.rep_count.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.rep_count.font()
        font.setPointSize(40)
        font.setBold(True)
        self.rep_count.setFont(font)
        self.rep_last = QLabel("no repetition yet")
        self.rep_last.setWordWrap(True)
        self.rep_reset = QPushButton("Reset")
        self.rep_reset.setToolTip("Count from zero again (e.g. after getting into position)")
        counter = QGroupBox("Repetitions")
        column = QVBoxLayout(counter)
        column.addWidget(self.rep_angle)
        column.addWidget(self.rep_count)
        column.addWidget(self.rep_last)
        column.addWidget(self.rep_reset)
        counter.setMaximumWidth(220)
        form = QFormLayout()
        form.addRow("Person", self.person)
        form.addRow("Angles", self.angle_list)
        form.addRow("Last", self.window)
        form.addRow("", self.show_raw)
        choices = QWidget()
        choices.setLayout(form)
        choices.setMaximumWidth(320)
        layout = QHBoxLayout(self)  # choices beside the plot: a bottom dock is wide and low
        layout.addWidget(choices)
        layout.addWidget(self.plot, 1)
        layout.addWidget(counter)
        self._timer = QTimer(self, interval=1000 // REDRAW_HZ, timeout=self._redraw)
        self._timer.start()
        self.angle_list.itemChanged.connect(self._angles_edited)
        self.window.valueChanged.connect(self._window_edited)
        self.rep_reset.clicked.connect(self.reset_reps)
        self.rep_angle.currentIndexChanged.connect(self._rep_angle_edited)
        for widget in (self.person, self.show_raw):
            signal = widget.currentIndexChanged if isinstance(widget, QComboBox) else widget.toggled
            signal.connect(self._mark_dirty)

    def set_chosen_angles(self, names: tuple[str, ...]) -> None:
        """Tick exactly `names` (without emitting angles_changed)."""
        self.angle_list.blockSignals(True)
        try:
            for row in range(self.angle_list.count()):
                item = self.angle_list.item(row)
                checked = item.data(Qt.ItemDataRole.UserRole) in names
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        finally:
            self.angle_list.blockSignals(False)
        self._dirty = True

    def chosen_angles(self) -> tuple[str, ...]:
        items = (self.angle_list.item(row) for row in range(self.angle_list.count()))
        return tuple(item.data(Qt.ItemDataRole.UserRole) for item in items if item.checkState() == Qt.CheckState.Checked)

    def add(self, frame: FrameAngles) -> None:
        """A processed frame's angles (GUI thread; cheap: the plot is redrawn by the timer)."""
        self.history.add(frame)
        if frame.confidence is not None:
            self.reps.add(frame.time_s, frame.ids, frame.degrees, frame.confidence)
        self._dirty = True

    def clear(self) -> None:
        self.history.clear()
        self.reps.reset()
        self._dirty = True

    def reset_reps(self) -> None:
        """Count from zero again."""
        self.reps.reset()
        self._dirty = True

    def _rep_angle_edited(self) -> None:
        self.reps.set_angle(self.rep_angle.currentData())
        self._dirty = True

    def shown_reps(self) -> tuple[int, str]:
        """(count, the line under it) of the person shown, as the counter displays them."""
        person = self.shown_person()
        analysis = None if person is None else self.reps.analysis(person)
        if analysis is None:
            return 0, "waiting for the angle" if person is not None else "nobody in view"
        name = analysis.angle.replace("_", " ")
        if not analysis.reps:
            return 0, f"on {name}: no repetition yet"
        last = analysis.reps[-1]
        return len(analysis.reps), (f"on {name}; last: {last.depth_deg:.0f}° at the turn, range {last.range_deg:.0f}°, "
                                    f"{last.down_s:.1f} s out, {last.up_s:.1f} s back")

    def shown_person(self) -> int | None:
        """The person plotted: the chosen id, or the first one in the window."""
        chosen = self.person.currentData()
        people = self.history.people()
        if chosen is not None and chosen >= 0:
            return chosen
        return people[0] if people else None

    def _angles_edited(self) -> None:
        self.angles_changed.emit(self.chosen_angles())
        self._mark_dirty()

    def _window_edited(self, value: float) -> None:
        self.history.window_s = value
        self._mark_dirty()

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _update_people(self) -> None:
        listed = {self.person.itemData(row) for row in range(self.person.count())}
        for person_id in self.history.people():
            if person_id not in listed:
                self.person.addItem(f"id {person_id}", person_id)

    def plotted(self, angle: str, raw: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """(times, degrees) of the curve the plot shows for an angle (its unsmoothed curve with
        `raw`), or None when that curve is not drawn."""
        curve = self._curves.get((angle, raw))
        return None if curve is None else curve.getData()

    def _redraw(self) -> None:
        if not self._dirty or not self.isVisible():
            return
        self._dirty = False
        self._update_people()
        count, line = self.shown_reps()
        self.rep_count.setText(str(count))
        self.rep_last.setText(line)
        person = self.shown_person()
        wanted = {(angle, raw) for angle in self.chosen_angles() for raw in (False, True) if not raw or self.show_raw.isChecked()}
        for key in set(self._curves) - wanted:
            self.plot.removeItem(self._curves.pop(key))
        for number, angle in enumerate(self.chosen_angles()):
            colour = _PALETTE[number % len(_PALETTE)] if person is None else _mix(_PALETTE[number % len(_PALETTE)], person)
            times, degrees, raw = (np.zeros(0),) * 3 if person is None else self.history.series(person, angle)
            for is_raw, values in ((False, degrees), (True, raw)):
                if (angle, is_raw) not in wanted:
                    continue
                curve = self._curves.get((angle, is_raw))
                if curve is None:
                    pen = pg.mkPen(colour, width=1 if is_raw else 2, style=Qt.PenStyle.DashLine if is_raw else Qt.PenStyle.SolidLine)
                    curve = self.plot.plot(pen=pen, name=None if is_raw else angle.replace("_", " "), connect="finite")
                    self._curves[(angle, is_raw)] = curve
                curve.setData(times, values, connect="finite")


def _mix(colour: tuple[int, int, int], person_id: int) -> tuple[int, int, int]:
    """An angle's colour tinted a little towards the person's overlay colour (BGR), so the plot
    reads as that person's without losing the angles' distinct colours."""
    blue, green, red = person_color(person_id)
    return tuple(int(0.8 * c + 0.2 * p) for c, p in zip(colour, (red, green, blue)))
