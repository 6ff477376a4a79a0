"""The angle dock: the chosen joint and segment angles of one person over the last seconds, live,
and a counter of that person's repetitions or hold time.

`AngleHistory` (analysis/angle_history.py, no Qt) keeps the angles the inference worker computed
for each frame (smoothed, and unsmoothed when the keypoints were smoothed); `AngleDock` plots one person's chosen angles
with pyqtgraph, redrawing at most `REDRAW_HZ` times a second so that the video keeps its frame
rate. Showing the raw curve under the smoothed one shows what the One Euro filter does to
jitter (the raw curve's wiggles) and lag (the smoothed curve trailing behind).

With *Follow the motion* (the default) the plotted angles are the counted angle and the joints
that moved most in the plotted window (`moving_angles`), so a squat shows its knees rather than
whatever was ticked last. The y range is that of the curves shown (`y_range`), the legend is a
line above the plot (never over the curves), and an angle seen in too few frames of the window
says so there.

The counter (`RepCounter`, analysis/reps.py: the rules of `pose-app reps`) is fed every frame's
angles and shows the number of repetitions since its reset, with the last one's turning point
and tempo; in *hold time* mode it shows the running hold (analysis/holds.py: the rules of
`pose-app holds`) and how straight the body line is.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QTextDocumentFragment
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from pose_app.analysis.angle_history import DEFAULT_ANGLES, DEFAULT_WINDOW_S, AngleHistory, FrameAngles
from pose_app.analysis.angles import MIN_PRESENCE, counted, percent
from pose_app.analysis.holds import HoldAnalysis, HoldSettings, find_holds
from pose_app.analysis.rep_counter import RepCounter
from pose_app.analysis.reps import RepAnalysis
from pose_app.core.angles import ANGLE_NAMES, ANGLES
from pose_app.draw.render import person_color

REDRAW_HZ = 10
# The counter's angle choices: the angle `choose_angle` picks, or a joint (the side that moves more clearly).
REP_ANGLES = (("auto: the angle that moves", None), ("knee", "knee"), ("hip", "hip"), ("elbow", "elbow"),
              ("shoulder", "shoulder"), ("body line", "body_line"), ("trunk", "trunk"))
COUNTER_MODES = (("repetitions", "reps"), ("hold time", "hold"))
# Follow the motion: how often (media seconds) the choice of plotted angles is looked at again
# (how many and what counts as motion: analysis/angle_history.py).
FOLLOW_EVERY_S = 1.0
# The y range: never narrower than this, so that jitter on a still joint does not fill the plot.
MIN_Y_SPAN_DEG = 30.0
JOINT_TOP_DEG = 185.0
# The angle list shows all its rows, in this many columns.
LIST_COLUMNS = 3
# Curve colours: one per chosen angle, the raw curve the same colour, dashed and fainter.
_PALETTE = ((230, 80, 60), (60, 140, 230), (60, 180, 90), (220, 160, 30), (160, 90, 200), (40, 190, 190))


def y_range(curves: list[np.ndarray], joints_only: bool) -> tuple[float, float] | None:
    """The y range that shows the whole motion of the curves: their extremes, padded by a tenth,
    at least MIN_Y_SPAN_DEG wide (centred), within 0..JOINT_TOP_DEG for joint angles (a little
    above 180, so that a straight joint's curve is not drawn on the frame). None: nothing to show."""
    values = np.concatenate([curve[np.isfinite(curve)] for curve in curves]) if curves else np.zeros(0)
    if not len(values):
        return None
    low, high = float(values.min()), float(values.max())
    pad = max(0.1 * (high - low), 2.0)
    low, high = low - pad, high + pad
    if high - low < MIN_Y_SPAN_DEG:
        middle = (low + high) / 2
        low, high = middle - MIN_Y_SPAN_DEG / 2, middle + MIN_Y_SPAN_DEG / 2
    if joints_only:  # shift rather than cut, so the span stays
        if low < 0:
            low, high = 0.0, high - low
        if high > JOINT_TOP_DEG:
            low, high = max(low - (high - JOINT_TOP_DEG), 0.0), JOINT_TOP_DEG
    return low, high


class AngleDock(QWidget):
    """Person, angles (or follow the motion), window length, raw curve on/off, the plot with its
    legend line, and the counter. Signals: angles_changed (the chosen angles, for the overlay
    that draws them at the joints and the settings), follow_changed (Follow the motion on/off)."""

    angles_changed = Signal(tuple)
    follow_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.history = AngleHistory()
        self.person = QComboBox()
        self.person.setToolTip("Whose angles to plot: the first person in view, or a track id")
        self.person.addItem("first in view", -1)
        self.follow = QCheckBox("Follow the motion")
        self.follow.setChecked(True)
        self.follow.setToolTip("Plot the counted angle and the joints that moved most in the last seconds "
                               "(ticking an angle yourself turns this off)")
        self.angle_list = QListWidget()
        for name in ANGLE_NAMES:
            item = QListWidgetItem(name.replace("_", " "))
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setCheckState(Qt.CheckState.Checked if name in DEFAULT_ANGLES else Qt.CheckState.Unchecked)
            self.angle_list.addItem(item)
        # Every row visible: the items flow down and wrap into LIST_COLUMNS columns, and the list
        # is exactly as tall as its rows (a fixed height that cut its last row was unreadable).
        self.angle_list.setFlow(QListView.Flow.TopToBottom)
        self.angle_list.setWrapping(True)
        self.angle_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.angle_list.setUniformItemSizes(True)
        self.angle_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.angle_list.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._fit_angle_list()
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
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.enableAutoRange(x=False, y=False)
        # The legend is a line of coloured names above the plot: inside it, it covered the curves.
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self._curves: dict[tuple[str, bool], pg.PlotDataItem] = {}
        self._dirty = False
        self._followed_at = -np.inf  # media time the followed angles were last chosen
        self.reps = RepCounter()
        self.hold_settings = HoldSettings()
        self._hold_cache: tuple[tuple[int, int], HoldAnalysis | None] = ((-1, -1), None)
        self.rep_angle = QComboBox()
        self.rep_angle.setToolTip("The angle repetitions are counted on (rules: docs/reps.md)")
        for label, angle in REP_ANGLES:
            self.rep_angle.addItem(label, angle)
        self.counter_mode = QComboBox()
        self.counter_mode.setToolTip("Count repetitions, or time a hold (plank, wall sit...: docs/reps.md, Holds)")
        for label, mode in COUNTER_MODES:
            self.counter_mode.addItem(label, mode)
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
        counter = QGroupBox("Counter")
        column = QVBoxLayout(counter)
        column.addWidget(self.counter_mode)
        column.addWidget(self.rep_angle)
        column.addWidget(self.rep_count)
        column.addWidget(self.rep_last)
        column.addWidget(self.rep_reset)
        column.addStretch(1)
        counter.setMaximumWidth(240)
        form = QFormLayout()
        form.addRow("Person", self.person)
        form.addRow("", self.follow)
        form.addRow("Angles", self.angle_list)
        form.addRow("Last", self.window)
        form.addRow("", self.show_raw)
        choices = QWidget()
        choices.setLayout(form)
        plotted = QVBoxLayout()
        plotted.setContentsMargins(0, 0, 0, 0)
        plotted.addWidget(self.legend)
        plotted.addWidget(self.plot, 1)
        layout = QHBoxLayout(self)  # choices beside the plot: a bottom dock is wide and low
        layout.addWidget(choices)
        layout.addLayout(plotted, 1)
        layout.addWidget(counter)
        self._timer = QTimer(self, interval=1000 // REDRAW_HZ, timeout=self._redraw)
        self._timer.start()
        self.angle_list.itemChanged.connect(self._angles_edited)
        self.window.valueChanged.connect(self._window_edited)
        self.rep_reset.clicked.connect(self.reset_reps)
        self.rep_angle.currentIndexChanged.connect(self._rep_angle_edited)
        self.counter_mode.currentIndexChanged.connect(self._counter_mode_edited)
        self.follow.toggled.connect(self._follow_edited)
        for widget in (self.person, self.show_raw):
            signal = widget.currentIndexChanged if isinstance(widget, QComboBox) else widget.toggled
            signal.connect(self._mark_dirty)

    def _fit_angle_list(self) -> None:
        """Every item in a cell wide enough for the longest name and its check box, the list's
        size that of all its rows in LIST_COLUMNS columns."""
        metrics = self.angle_list.fontMetrics()
        items = [self.angle_list.item(row) for row in range(self.angle_list.count())]
        indicator = self.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth)
        cell = QSize(max(metrics.horizontalAdvance(item.text()) for item in items) + indicator + 20,
                     max(self.angle_list.sizeHintForRow(0), metrics.height() + 4))
        self.angle_list.setGridSize(cell)
        rows = -(-len(items) // LIST_COLUMNS)
        frame = 2 * self.angle_list.frameWidth()
        self.angle_list.setFixedHeight(rows * cell.height() + frame + 2)
        self.angle_list.setFixedWidth(LIST_COLUMNS * cell.width() + frame + 2)

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

    def set_follow(self, on: bool) -> None:
        """Follow the motion on or off (without emitting follow_changed)."""
        self.follow.blockSignals(True)
        self.follow.setChecked(on)
        self.follow.blockSignals(False)
        self._followed_at = -np.inf
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
        self._followed_at = -np.inf
        self._dirty = True

    def reset_reps(self) -> None:
        """Count from zero again (repetitions and holds)."""
        self.reps.reset()
        self._dirty = True

    def _rep_angle_edited(self) -> None:
        self.reps.set_angle(self.rep_angle.currentData())
        self._followed_at = -np.inf
        self._dirty = True

    def _counter_mode_edited(self) -> None:
        self.rep_angle.setEnabled(self.counter_mode.currentData() == "reps")
        self._dirty = True

    def shown_reps(self) -> tuple[int, str]:
        """(count, the line under it) of the person shown, as the counter displays them."""
        person = self.shown_person()
        analysis = None if person is None else self.reps.analysis(person)
        if analysis is None:
            return 0, "waiting for the angle" if person is not None else "nobody in view"
        name = analysis.angle.replace("_", " ")
        if analysis.note:
            return len(analysis.reps), f"⚠ {analysis.note}"
        if not analysis.reps:
            return 0, f"on {name}: no repetition yet"
        last = analysis.reps[-1]
        return len(analysis.reps), (f"{counted(len(analysis.reps), 'repetition')} on {name}; last: "
                                    f"{last.rest_deg:.0f}° to {last.turn_deg:.0f}° (range {last.range_deg:.0f}°), "
                                    f"{last.out_s:.1f} s out, {last.back_s:.1f} s back")

    def hold_analysis(self) -> HoldAnalysis | None:
        """The holds of the person shown since the last reset (a hold still going on included)."""
        person = self.shown_person()
        series = None if person is None else self.reps.series(person)
        if series is None or len(series.time_s) < 2:
            return None
        key = (person, len(series.time_s))
        if self._hold_cache[0] != key:
            self._hold_cache = (key, find_holds(series, self.hold_settings, open_end=True))
        return self._hold_cache[1]

    def shown_hold(self) -> tuple[str, str]:
        """(the big number, the line under it) in hold time mode: the running hold's seconds, else the last one's."""
        analysis = self.hold_analysis()
        if analysis is None:
            return "0.0 s", "waiting for the person" if self.shown_person() is None else "waiting for the angles"
        if not analysis.holds:
            return "0.0 s", "not holding still"
        hold = analysis.holds[-1]
        line = hold.body_line
        body = (f"body line {line.mean_deg:.0f} ± {line.sd_deg:.0f}°" if line.side
                else "body line not seen (shoulder, hip and ankle of one side)")
        if line.side and line.seen < MIN_PRESENCE:
            body += f" ⚠ seen in {percent(line.seen)} of the hold"
        breaks = f", {counted(len(hold.breaks), 'break')}" if hold.breaks else ""
        if hold.ongoing:
            return f"{hold.held_s:.1f} s", f"holding{breaks}; {body}"
        return f"{hold.held_s:.1f} s", f"last hold{breaks}; {body}"

    def shown_person(self) -> int | None:
        """The person plotted: the chosen id, or the first one in the window."""
        chosen = self.person.currentData()
        people = self.history.people()
        if chosen is not None and chosen >= 0:
            return chosen
        return people[0] if people else None

    def _angles_edited(self) -> None:
        if self.follow.isChecked():  # the user chose: stop choosing for them
            self.set_follow(False)
            self.follow_changed.emit(False)
        self.angles_changed.emit(self.chosen_angles())
        self._mark_dirty()

    def _follow_edited(self, on: bool) -> None:
        self._followed_at = -np.inf
        self.follow_changed.emit(on)
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

    def _follow_motion(self, person: int | None, analysis: RepAnalysis | None) -> None:
        """With Follow the motion on, at most every FOLLOW_EVERY_S of media time: plot the counted
        angle and the joints that move most (ticked in the list, and said to the overlay)."""
        if not self.follow.isChecked() or person is None:
            return
        times, _, _ = self.history.series(person, ANGLE_NAMES[0])
        if not len(times) or times[-1] - self._followed_at < FOLLOW_EVERY_S:
            return
        self._followed_at = float(times[-1])
        counted_angle = analysis.angle if analysis is not None and not analysis.note else None
        followed = self.history.moving_angles(person, counted_angle, keep=self.chosen_angles())
        if followed and set(followed) != set(self.chosen_angles()):
            self.set_chosen_angles(followed)
            self.angles_changed.emit(self.chosen_angles())

    def _redraw(self) -> None:
        if not self._dirty or not self.isVisible():
            return
        self._dirty = False
        self._update_people()
        person = self.shown_person()
        analysis = None if person is None else self.reps.analysis(person)
        if self.counter_mode.currentData() == "hold":
            number, line = self.shown_hold()
        else:
            count, line = self.shown_reps()
            number = str(count)
        self.rep_count.setText(number)
        self.rep_last.setText(line)
        self._follow_motion(person, analysis)
        chosen = self.chosen_angles()
        wanted = {(angle, raw) for angle in chosen for raw in (False, True) if not raw or self.show_raw.isChecked()}
        for key in set(self._curves) - wanted:
            self.plot.removeItem(self._curves.pop(key))
        shown, names, end = [], [], None
        for number, angle in enumerate(chosen):
            colour = _PALETTE[number % len(_PALETTE)] if person is None else _mix(_PALETTE[number % len(_PALETTE)], person)
            times, degrees, raw = (np.zeros(0),) * 3 if person is None else self.history.series(person, angle)
            if len(times):
                end = times[-1] if end is None else max(end, times[-1])
            for is_raw, values in ((False, degrees), (True, raw)):
                if (angle, is_raw) not in wanted:
                    continue
                curve = self._curves.get((angle, is_raw))
                if curve is None:
                    curve = self.plot.plot(connect="finite")
                    self._curves[(angle, is_raw)] = curve
                # The pen every time: an angle's colour is its place in the list, which following changes.
                curve.setPen(pg.mkPen(colour, width=1 if is_raw else 2,
                                      style=Qt.PenStyle.DashLine if is_raw else Qt.PenStyle.SolidLine))
                curve.setData(times, values, connect="finite")
                shown.append(values)
            seen = np.nan if person is None else self.history.presence(person, angle)
            thin = f" ⚠ seen in {percent(seen)}" if np.isfinite(seen) and seen < MIN_PRESENCE else ""
            names.append(f'<span style="color: rgb{colour}">━━</span> {angle.replace("_", " ")}{thin}')
        self.legend.setText("&nbsp;&nbsp;&nbsp;".join(names) if names else "no angle chosen")
        limits = y_range(shown, all(ANGLES[angle].kind == "joint" for angle in chosen))
        if limits is not None:
            self.plot.setYRange(*limits, padding=0)
        if end is not None:
            self.plot.setXRange(end - self.history.window_s, end, padding=0)

    def y_limits(self) -> tuple[float, float]:
        """The plot's y range as drawn."""
        low, high = self.plot.getViewBox().viewRange()[1]
        return float(low), float(high)

    def legend_text(self) -> str:
        """The legend line as plain text."""
        return QTextDocumentFragment.fromHtml(self.legend.text()).toPlainText()


def _mix(colour: tuple[int, int, int], person_id: int) -> tuple[int, int, int]:
    """An angle's colour tinted a little towards the person's overlay colour (BGR), so the plot
    reads as that person's without losing the angles' distinct colours."""
    blue, green, red = person_color(person_id)
    return tuple(int(0.8 * c + 0.2 * p) for c, p in zip(colour, (red, green, blue)))
