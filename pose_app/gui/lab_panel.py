"""The CNN lab's controls in the feature-map dock, and the occlusion run off the GUI thread.

- LabControls: which part of the lab is shown (explain.lab.LAB_PARTS), the kernel editor (3x3 or
  5x5 numbers, presets, colour weights over R, G, B, ReLU, stride, padding), the pooled channel,
  the keypoint, clearing the kept patches, the occlusion button and its progress, and the guided
  tour's steps. `request()` is the explain.lab.LabRequest the inference worker draws.
- OcclusionRunner: explain.lab.occlusion_sensitivity in a background thread; progress(done,
  total), finished(PanelView) or failed(message).
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.errors import PoseAppError, one_line
from pose_app.explain.lab import (
    KERNEL_PRESETS,
    KERNEL_SIZES,
    LAB_PARTS,
    PADDINGS,
    TOUR,
    LabFilter,
    LabRequest,
    TourStep,
    preset_filter,
    resized_pattern,
)
from pose_app.explain.lab_probes import occlusion_sensitivity
from pose_app.explain.lab_view import occlusion_view
from pose_app.inference.engine import PoseEngine

PART_LABELS = {
    "filter": "Your own filter",
    "pool": "Pooling a channel",
    "fc": "The heatmap head: a fully connected layer",
    "patches": "What each channel looks for (top patches)",
    "occlusion": "Which pixels matter (occlusion)",
}
MAX_KERNEL = max(KERNEL_SIZES)


class LabControls(QWidget):
    """Signals: changed() when the lab's request changes (clearing the patches is a new
    patches_epoch); run_occlusion() when its button is pressed; tour_step(TourStep) when the tour
    moves. `tour_widget` (its buttons and caption) is laid out by the dock, under every view."""

    changed = Signal()
    run_occlusion = Signal()
    tour_step = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cell: tuple[int, int] | None = None
        self.patches_epoch = 0
        self.tour_index = -1
        self._build()

    def _build(self) -> None:
        self.part = QComboBox()
        for part in LAB_PARTS:
            self.part.addItem(PART_LABELS[part], part)
        self.preset = QComboBox()
        self.preset.addItem("(typed)", "")
        for name in KERNEL_PRESETS:
            self.preset.addItem(name, name)
        self.size = QComboBox()
        for size in KERNEL_SIZES:
            self.size.addItem(f"{size}×{size}", size)
        self.cells = [[self._number(-99, 99, 0.0) for _ in range(MAX_KERNEL)] for _ in range(MAX_KERNEL)]
        self.colour = [self._number(-9, 9, 1 / 3) for _ in range(3)]
        self.relu = QCheckBox("ReLU")
        self.stride = QComboBox()
        for stride in (1, 2):
            self.stride.addItem(f"stride {stride}", stride)
        self.padding = QComboBox()
        for padding in PADDINGS:
            self.padding.addItem(f"{padding} padding" if padding == "same" else "valid (no padding)", padding)
        self.strongest = QCheckBox("strongest")
        self.strongest.setChecked(True)
        self.channel = QSpinBox()
        self.channel.setRange(0, 2047)
        self.keypoint = QComboBox()
        for index, name in enumerate(KEYPOINT_NAMES):
            self.keypoint.addItem(name, index)
        self.clear_button = QPushButton("Clear patches")
        self.clear_button.clicked.connect(self.clear_patches)
        self.occlude_button = QPushButton("Run occlusion")
        self.occlude_button.clicked.connect(self.run_occlusion.emit)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.tour_back = QPushButton("◀ Tour")
        self.tour_back.clicked.connect(lambda: self.move_tour(-1))
        self.tour_next = QPushButton("Tour ▶")
        self.tour_next.clicked.connect(lambda: self.move_tour(1))
        self.tour_label = QLabel()
        self.tour_label.setWordWrap(True)
        self._layout()
        self.apply_preset("vertical edge")
        for combo in (self.part, self.size, self.stride, self.padding, self.keypoint):
            combo.currentIndexChanged.connect(self._edited)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        for check in (self.relu, self.strongest):
            check.toggled.connect(self._edited)
        self.channel.valueChanged.connect(self._edited)
        for spin in [*self.colour, *(cell for row in self.cells for cell in row)]:
            spin.valueChanged.connect(self._typed)
        self._enable()

    @staticmethod
    def _number(low: float, high: float, value: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(low, high)
        spin.setDecimals(3)
        spin.setSingleStep(0.25)
        spin.setValue(value)
        return spin

    def _layout(self) -> None:
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.addRow("Lab", self.part)
        kernel = QHBoxLayout()
        kernel.addWidget(self.preset, 1)
        kernel.addWidget(self.size)
        self.form.addRow("Filter", kernel)
        self._kernel_row = kernel
        self.grid = QGridLayout()
        self.grid.setSpacing(1)
        for r, row in enumerate(self.cells):
            for c, cell in enumerate(row):
                self.grid.addWidget(cell, r, c)
        self.grid_widget = QWidget()
        self.grid_widget.setLayout(self.grid)
        self.form.addRow("Numbers", self.grid_widget)
        colour = QHBoxLayout()
        for label, spin in zip("RGB", self.colour):
            colour.addWidget(QLabel(label))
            colour.addWidget(spin)
        self.form.addRow("Colour weights", colour)
        self._colour_row = colour
        sliding = QHBoxLayout()
        for widget in (self.relu, self.stride, self.padding):
            sliding.addWidget(widget)
        self.form.addRow("Slide", sliding)
        self._sliding_row = sliding
        channel = QHBoxLayout()
        channel.addWidget(self.strongest)
        channel.addWidget(self.channel, 1)
        channel.addWidget(self.clear_button)
        self.form.addRow("Channel", channel)
        self._channel_row = channel
        self.form.addRow("Keypoint", self.keypoint)
        occlusion = QHBoxLayout()
        occlusion.addWidget(self.occlude_button)
        occlusion.addWidget(self.progress, 1)
        self.form.addRow("Occlusion", occlusion)
        self._occlusion_row = occlusion
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self.form)
        self.tour_widget = QWidget()
        tour = QHBoxLayout()
        tour.setContentsMargins(0, 0, 0, 0)
        tour.addWidget(self.tour_back)
        tour.addWidget(self.tour_next)
        tour_column = QVBoxLayout(self.tour_widget)
        tour_column.setContentsMargins(0, 0, 0, 0)
        tour_column.addLayout(tour)
        tour_column.addWidget(self.tour_label)

    # --- choices ------------------------------------------------------------------------------
    def current_part(self) -> str:
        return self.part.currentData() or "filter"

    def kernel_size(self) -> int:
        return self.size.currentData() or KERNEL_SIZES[0]

    def lab_filter(self) -> LabFilter:
        """The preset chosen (exact: the grid shows its numbers rounded), or the numbers typed."""
        k = self.kernel_size()
        if self.preset.currentData():
            return preset_filter(self.preset.currentData(), k)
        pattern = tuple(self.cells[r][c].value() for r in range(k) for c in range(k))
        return LabFilter(pattern, tuple(spin.value() for spin in self.colour))

    def request(self, block: str) -> LabRequest:
        """The lab's choices; `block`: the dock's block (pooled, and whose patches are kept)."""
        return LabRequest(
            part=self.current_part(), filter=self.lab_filter(), relu=self.relu.isChecked(),
            stride=self.stride.currentData(), padding=self.padding.currentData(), block=block,
            channel=self.channel.value(), pooling_channel_strongest=self.strongest.isChecked(),
            keypoint=self.keypoint.currentData(), cell=self.cell, patches_epoch=self.patches_epoch,
        )

    def _enable(self) -> None:
        part = self.current_part()
        rows = {self._kernel_row: "filter", self.grid_widget: "filter", self._colour_row: "filter",
                self._sliding_row: "filter", self._channel_row: ("pool", "patches"),
                self.keypoint: ("fc", "occlusion"), self._occlusion_row: "occlusion"}
        for row, parts in rows.items():
            self.form.setRowVisible(row, part in parts)
        k = self.kernel_size()
        for r, row in enumerate(self.cells):
            for c, cell in enumerate(row):
                cell.setVisible(r < k and c < k)
        self.strongest.setVisible(part == "pool")
        self.clear_button.setVisible(part == "patches")
        self.channel.setEnabled(part == "patches" or not self.strongest.isChecked())

    def _edited(self) -> None:
        if self.sender() in (self.keypoint, self.part):
            self.cell = None  # the strongest cell of the new heatmap
        if self.sender() is self.size:
            self._resize_kernel()
        self._enable()
        self.changed.emit()

    def _resize_kernel(self) -> None:
        """A new kernel size: the preset at that size, or the typed numbers kept centred."""
        if self.preset.currentData():
            self.apply_preset(self.preset.currentData())
            return
        k = self.kernel_size()
        typed = [[cell.value() for cell in row] for row in self.cells]
        old = KERNEL_SIZES[1] if k == KERNEL_SIZES[0] else KERNEL_SIZES[0]
        pattern = resized_pattern([typed[r][c] for r in range(old) for c in range(old)], k)
        self._set_numbers(np.asarray(pattern).reshape(k, k))

    def _set_numbers(self, pattern: np.ndarray) -> None:
        """Show a k x k pattern in the grid, zeros outside it (no signal)."""
        k = len(pattern)
        for r, row in enumerate(self.cells):
            for c, cell in enumerate(row):
                cell.blockSignals(True)
                cell.setValue(float(pattern[r, c]) if r < k and c < k else 0.0)
                cell.blockSignals(False)

    def _typed(self) -> None:
        """A number typed: the filter is no longer the preset's."""
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(0)
        self.preset.blockSignals(False)
        self.changed.emit()

    def _preset_chosen(self) -> None:
        if self.preset.currentData():
            self.apply_preset(self.preset.currentData())
            self.changed.emit()

    def apply_preset(self, name: str) -> None:
        """Fill the numbers and colour weights from a preset of the current size (no signal)."""
        lab_filter = preset_filter(name, self.kernel_size())
        k = lab_filter.size
        pattern = np.asarray(lab_filter.pattern).reshape(k, k)
        self._set_numbers(pattern)
        spins = [*self.colour, self.preset]
        for spin in spins:
            spin.blockSignals(True)
        try:
            for spin, weight in zip(self.colour, lab_filter.colour):
                spin.setValue(weight)
            self.preset.setCurrentIndex(self.preset.findData(name))
        finally:
            for spin in spins:
                spin.blockSignals(False)

    def set_cell(self, cell: tuple[int, int] | None) -> bool:
        """The heatmap cell whose weighted sum is shown; True when it changed."""
        if cell == self.cell or cell is None:
            return False
        self.cell = cell
        return True

    def clear_patches(self) -> None:
        self.patches_epoch += 1
        self.changed.emit()

    def show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    # --- the guided tour ------------------------------------------------------------------------
    def move_tour(self, delta: int) -> None:
        """Go to the next (delta > 0) or previous step and show it."""
        self.tour_index = max(0, min(len(TOUR) - 1, self.tour_index + delta))
        step = TOUR[self.tour_index]
        self.apply_tour_step(step)
        self.tour_step.emit(step)

    def apply_tour_step(self, step: TourStep) -> None:
        """Set the lab's controls as `step` asks (no signal: the dock asks for the view once)."""
        widgets = (self.part, self.size, self.relu, self.stride, self.padding, self.strongest)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.part.setCurrentIndex(self.part.findData(step.part))
            self.size.setCurrentIndex(0)
            self.relu.setChecked(step.relu)
            self.stride.setCurrentIndex(self.stride.findData(step.stride))
            self.padding.setCurrentIndex(self.padding.findData("same"))
            self.strongest.setChecked(True)
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self.apply_preset(step.preset)
        self.cell = None
        self.tour_label.setText(f"<b>{step.title}</b> ({self.tour_index + 1} of {len(TOUR)}): {step.caption}")
        self._enable()


class OcclusionRunner(QObject):
    """Runs occlusion sensitivity in a background thread (the window stays live, though the
    network now serves two threads); a new run cancels the one in progress."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._cancel = threading.Event()

    def start(self, engine: PoseEngine, image_bgr: np.ndarray, keypoint: int, resolution: int,
              width: int) -> threading.Thread:
        self._cancel.set()
        self._cancel = cancel = threading.Event()
        thread = threading.Thread(target=self._run, args=(engine, image_bgr, keypoint, resolution, width, cancel),
                                  name="occlusion", daemon=True)
        thread.start()
        return thread

    def cancel(self) -> None:
        self._cancel.set()

    def _run(self, engine, image_bgr, keypoint, resolution, width, cancel: threading.Event) -> None:
        try:
            occlusion = occlusion_sensitivity(engine, image_bgr, keypoint, resolution,
                                              progress=lambda done, total: self.progress.emit(done, total),
                                              cancelled=cancel)
            if occlusion is not None and not cancel.is_set():
                self.finished.emit(occlusion_view(image_bgr, occlusion, width))
        except Exception as error:  # noqa: BLE001 - the window must say why
            message = str(error) if isinstance(error, PoseAppError) else f"{type(error).__name__}: {one_line(error)}"
            self.failed.emit(f"occlusion failed: {message}")
