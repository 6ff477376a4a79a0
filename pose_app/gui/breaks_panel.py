"""The breaks view's controls in the feature-map dock (explain/breaks_view.py draws the view,
explain/breaks.py holds the perturbations): which perturbation, its amount on a slider, the part
a grey box covers, the switch that stands a turned crop upright again, and whose mean score is
drawn thick. The view sweeps the whole range itself; the slider only picks the picture shown and
the amount marked, so moving it never runs a sweep again. The choices are stored with the
settings (the lab section: breaks_kind, breaks_amount, ...; `show_request` restores them).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from pose_app.explain.breaks import DEFAULT_BREAKS, MEAN_GROUPS, OCCLUDED_PARTS, PERTURBATIONS, BreaksRequest


class BreaksControls(QWidget):
    """Signal: changed() when what the view draws changed. `request()` is what it draws."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.kind = QComboBox()
        for perturbation in PERTURBATIONS.values():
            self.kind.addItem(perturbation.label, perturbation.name)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.value = QLabel()
        self.value.setMinimumWidth(64)
        self.part = QComboBox()
        for part in OCCLUDED_PARTS:
            self.part.addItem(part, part)
        self.part.setToolTip("Where the grey box goes: over a body part, or over the crop's centre")
        self.upright = QCheckBox("turn the crop upright")
        self.upright.setToolTip("Run each turned crop stood upright again, as the pipeline's any-orientation does")
        self.mean_of = QComboBox()
        for group in MEAN_GROUPS:
            self.mean_of.addItem(f"mean of {group}", group)
        first, second = QHBoxLayout(), QHBoxLayout()
        first.addWidget(QLabel("Perturb"))
        first.addWidget(self.kind, 1)
        first.addWidget(self.slider, 2)
        first.addWidget(self.value)
        second.addWidget(self.upright)
        second.addWidget(self.part)
        second.addWidget(self.mean_of)
        second.addStretch(1)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.addLayout(first)
        rows.addLayout(second)
        self._set_range(DEFAULT_BREAKS.kind, DEFAULT_BREAKS.amount)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.slider.valueChanged.connect(self._emit)
        for combo in (self.part, self.mean_of):
            combo.currentIndexChanged.connect(self._emit)
        self.upright.toggled.connect(self._emit)
        self._show_state()

    def request(self) -> BreaksRequest:
        kind = self.kind.currentData()
        amount = self.slider.value() / PERTURBATIONS[kind].slider_scale
        return BreaksRequest(kind, amount, self.part.currentData(), self.upright.isChecked(),
                             self.mean_of.currentData())

    def show_request(self, request: BreaksRequest) -> None:
        """Show `request` (the stored choices: AppSettings.breaks_request) without emitting `changed`."""
        if request == self.request():
            return
        widgets = (self.kind, self.slider, self.part, self.upright, self.mean_of)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self._set_range(request.kind, request.amount)
            self.part.setCurrentIndex(max(0, self.part.findData(request.part)))
            self.upright.setChecked(request.upright)
            self.mean_of.setCurrentIndex(max(0, self.mean_of.findData(request.mean_of)))
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._show_state()

    def set_amount(self, amount: float) -> None:
        """Move the slider to `amount` (in the perturbation's unit)."""
        self.slider.setValue(round(amount * PERTURBATIONS[self.kind.currentData()].slider_scale))

    def _set_range(self, kind: str, amount: float) -> None:
        perturbation = PERTURBATIONS[kind]
        self.kind.setCurrentIndex(self.kind.findData(kind))
        scale = perturbation.slider_scale
        self.slider.blockSignals(True)
        self.slider.setRange(round(perturbation.low * scale), round(perturbation.high * scale))
        self.slider.setValue(round(perturbation.clamp(amount) * scale))
        self.slider.blockSignals(False)

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        # A new perturbation opens where the picture shows what it does: its strongest amount,
        # except scale (0.5x: 2x only shows a part of the body) and occlusion (40 %: at 100 % the
        # box hides the whole person).
        self._set_range(kind, {"scale": 0.5, "occlude": 40.0}.get(kind, PERTURBATIONS[kind].high))
        self._emit()

    def _emit(self) -> None:
        self._show_state()
        self.changed.emit()

    def _show_state(self) -> None:
        request = self.request()
        self.value.setText(request.perturbation.text(request.amount))
        self.part.setVisible(request.kind == "occlude")
        self.upright.setVisible(request.kind == "turn")
