"""The feature-map dock: the network made visible. The network strip on top (click a block to
show it); below, one view at a time (compose.PANEL_MODES): a block's channels as tiles (click one
to inspect it over the frame, where hovering shows a cell's receptive field and value; the first
conv's tiles show each 3x3 RGB filter beside its map), keypoint heatmaps, the offset and
displacement fields as arrows, every block's activation statistics, the decoding walk of a
paused frame (N / Shift+N), the CNN lab (gui/lab_panel.py; its guided tour moves through
these views), teaching the network a new point (gui/teach_panel.py: clicks on the frame mark
it) and what breaks it (gui/breaks_panel.py: a perturbation and its slider). "Save view" and "Save all channels" write PNGs for teaching (gui/panel_exports.py).

The inference worker prepares every picture (PanelView); this widget paints it and keeps the
transient choices (the inspected channel, the walk's step) that `request` adds to the settings.
Each view (explain/panel.py: PanelViewKind) says which of the dock's controls it uses and which
layers of the strip it shows; this widget only maps those names to its widgets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pose_app.core.skeleton import KEYPOINT_NAMES, PART_TREE_EDGES
from pose_app.explain.compose import PANEL_VIEWS, PanelRequest, PanelView
from pose_app.explain.network import block_label, default_block, network_layers
from pose_app.explain.panel import view_kind, view_opened_by
from pose_app.explain.panel_fields import WalkView
from pose_app.gui.breaks_panel import BreaksControls
from pose_app.gui.explainer import ExplainerView, StatsChart
from pose_app.gui.lab_actions import LabActions
from pose_app.gui.lab_panel import LabControls, OcclusionRunner
from pose_app.gui.network_strip import NetworkStrip, layer_details
from pose_app.gui.panel_exports import PanelExports
from pose_app.gui.settings import AppSettings
from pose_app.gui.teach_panel import TeachControls, TeachRunner
from pose_app.inference.engine import PoseEngine
from pose_app.inference.families.posenet import input_transform
from pose_app.inference.model_info import ModelInfo

MAX_CHANNELS = 64


class FeaturePanel(LabActions, QWidget):
    """Signals: changed() on any choice that changes what inference prepares; request_changed()
    when only the lab's transient choices did (no setting changed); message(str) for the status
    bar (exports). The window reads `read(settings)`, `request(settings, width)` and
    `current_block()`, hands every result to `show_result`, and sets `engine` (the running
    PoseEngine, for occlusion runs)."""

    changed = Signal()
    request_changed = Signal()
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.info: ModelInfo | None = None
        self.channel: int | None = None  # the inspected channel of the block (None: the tiles)
        self.walk_frame: int | None = None  # the frame the walk's step belongs to
        self.walk_step = 0
        self.last_result = None  # the ViewResult shown last (exports read it)
        self.output_dir: Callable[[], Path] = Path.cwd  # where exports go (the window's output folder)
        self.engine: Callable[[], PoseEngine | None] = lambda: None
        self.resolution = 0  # the network input size occlusion runs at (the settings')
        self.occlusion_result: PanelView | None = None  # shown in the lab's occlusion part once run
        self.exports = PanelExports(self)
        self._build()
        for combo in (self.mode, self.block, self.how, self.keypoint, self.edge):
            combo.currentIndexChanged.connect(self._changed)
        for spin in (self.count, self.start):
            spin.valueChanged.connect(self._changed)

    def _build(self) -> None:
        self.strip = NetworkStrip()
        self.strip.clicked.connect(self.select_layer)
        self.layer_line = QLabel()
        self.layer_line.setWordWrap(True)
        self.mode = QComboBox()
        for view in PANEL_VIEWS:
            self.mode.addItem(view.label, view.name)
        self.block = QComboBox()
        self.how = QComboBox()
        self.how.addItem("strongest (mean activation)", "strongest")
        self.how.addItem("fixed range", "range")
        self.count = QSpinBox()
        self.count.setRange(1, MAX_CHANNELS)
        self.start = QSpinBox()
        self.start.setRange(0, 1023)
        self.keypoint = QComboBox()
        self.keypoint.addItem("all keypoints (max)", -1)
        for index, name in enumerate(KEYPOINT_NAMES):
            self.keypoint.addItem(name, index)
        self.edge = QComboBox()
        self.edge.addItem("all edges", -1)
        for index, (parent, child) in enumerate(PART_TREE_EDGES):
            self.edge.addItem(f"{KEYPOINT_NAMES[parent]} → {KEYPOINT_NAMES[child]}", index)
        self.picture = ExplainerView("The feature maps appear with the next frame.")
        self.picture.setMinimumSize(240, 200)
        self.picture.tile_clicked.connect(self.inspect_channel)
        self.picture.hovered.connect(self._hovered)
        self.picture.frame_clicked.connect(self._frame_clicked)
        self.chart = StatsChart()
        self.chart.block_clicked.connect(self.select_layer)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.picture)
        self.stack.addWidget(self.chart)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        # Room for two lines, so the stretching picture above never squeezes the caption away.
        self.caption.setMinimumHeight(2 * self.caption.fontMetrics().lineSpacing() + 4)
        self.hover_label = QLabel()
        self.hover_label.setWordWrap(True)
        self.back = QPushButton("◀ All channels")
        self.back.clicked.connect(lambda: self.inspect_channel(None))
        self.walk_back = QPushButton("◀ Step")
        self.walk_back.clicked.connect(lambda: self.step_walk(-1))
        self.walk_next = QPushButton("Step ▶")
        self.walk_next.clicked.connect(lambda: self.step_walk(1))
        self.walk_label = QLabel()
        self.save_view_button = QPushButton("Save view (PNG)")
        self.save_view_button.clicked.connect(self.save_view)
        self.save_channels_button = QPushButton("Save all channels (PNG)")
        self.save_channels_button.clicked.connect(self.save_channels)
        self.lab = LabControls()
        self.lab.changed.connect(self._lab_changed)
        self.lab.run_occlusion.connect(self.run_occlusion)
        self.lab.tour_step.connect(self._tour_step)
        self.occlusion = OcclusionRunner(self)
        self.occlusion.progress.connect(self.lab.show_progress)
        self.occlusion.finished.connect(self._occlusion_done)
        self.occlusion.failed.connect(self.message.emit)
        self.teach = TeachControls()
        self.teach.folder = lambda: self.output_dir()
        self.teach.changed.connect(self.request_changed.emit)
        self.teach.message.connect(self.message.emit)
        self.teach.train.connect(self.train_point)
        self.teacher = TeachRunner(self)
        self.teacher.progress.connect(self.teach.training_progress)
        self.teacher.finished.connect(self.teach.training_finished)
        self.teacher.failed.connect(self.teach.training_failed)
        self.breaks = BreaksControls()
        self.breaks.changed.connect(self.request_changed.emit)
        self._layout()

    def _layout(self) -> None:
        self.form = QFormLayout()
        self.form.addRow("Show", self.mode)
        self.form.addRow("Block", self.block)
        channels = QHBoxLayout()
        channels.addWidget(self.how, 1)
        channels.addWidget(QLabel("count"))
        channels.addWidget(self.count)
        channels.addWidget(QLabel("from"))
        channels.addWidget(self.start)
        self.form.addRow("Channels", channels)
        self._channels_row = channels
        self.form.addRow("Keypoint", self.keypoint)
        self.form.addRow("Edge", self.edge)
        buttons = QHBoxLayout()
        for widget in (self.back, self.walk_back, self.walk_label, self.walk_next):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        exports = QHBoxLayout()
        exports.addWidget(self.save_view_button)
        exports.addWidget(self.save_channels_button)
        exports.addStretch(1)
        column = QVBoxLayout(self)
        column.addWidget(self.strip)
        column.addWidget(self.layer_line)
        column.addLayout(self.form)
        column.addWidget(self.lab)
        column.addWidget(self.lab.tour_widget)
        column.addWidget(self.teach)
        column.addWidget(self.breaks)
        column.addWidget(self.stack, 1)
        column.addLayout(buttons)
        column.addWidget(self.caption)
        column.addWidget(self.hover_label)
        column.addLayout(exports)
        self._enable_for_mode()

    # --- choices ------------------------------------------------------------------------------
    def current_mode(self) -> str:
        return self.mode.currentData() or PANEL_VIEWS[0].name

    def current_block(self) -> str:
        return self.block.currentData() or ""

    def _changed(self) -> None:
        sender = self.sender()
        if sender in (self.mode, self.block):
            self.channel = None
        self._enable_for_mode()
        self.changed.emit()

    def _shown(self) -> PanelRequest:
        """The view chosen now and the choices its controls depend on (no settings needed)."""
        block = self.current_block()
        return PanelRequest(mode=self.current_mode(), block=block, channel=self.channel,
                            blocks=tuple(b.name for b in self.info.feature_blocks) if self.info else (),
                            lab=self.lab.request(block))

    def _controls(self) -> frozenset[str]:
        """The controls the current view uses (explain.panel.CONTROLS)."""
        shown = self._shown()
        return shown.kind.controls(shown)

    def _view_controls(self, view: PanelView) -> frozenset[str]:
        """The controls of the view that drew `view` (a result may still come from the previous view)."""
        return view_kind(view.mode).controls(self._shown())

    def _enable_for_mode(self) -> None:
        controls = self._controls()
        lab = "lab" in controls
        self.lab.setVisible(lab)
        self.lab.tour_widget.setVisible(lab or self.lab.tour_index >= 0)
        self.teach.setVisible("teach" in controls)
        self.breaks.setVisible("breaks" in controls)
        self.form.setRowVisible(self.block, "block" in controls)
        self.form.setRowVisible(self._channels_row, "channels" in controls)
        self.start.setEnabled(self.how.currentData() == "range")
        self.form.setRowVisible(self.keypoint, "keypoint" in controls)
        self.form.setRowVisible(self.edge, "edge" in controls)
        self.back.setVisible("back" in controls)
        for widget in (self.walk_back, self.walk_label, self.walk_next):
            widget.setVisible("steps" in controls)
        self.hover_label.setVisible("hover" in controls)
        self.stack.setCurrentWidget(self.chart if "chart" in controls else self.picture)
        self._show_selection()

    def _show_selection(self) -> None:
        """Outline in the strip what the view shows, and describe it in one line."""
        shown = self._shown()
        names = shown.kind.layers(shown)
        self.strip.set_selected(names)
        cards = [card for card in self.strip.layers() if card.name in names]
        if len(cards) == 1:
            self.layer_line.setText(f"{layer_details(cards[0])}<br><i>{cards[0].caption}</i>")
        elif shown.kind.note:
            self.layer_line.setText(shown.kind.note)
        else:
            self.layer_line.setText(" + ".join(card.name for card in cards))

    def select_layer(self, name: str) -> None:
        """Show the layer `name` (a feature block, or a head; the input shows the first conv)."""
        names = tuple(block.name for block in self.info.feature_blocks) if self.info else ()
        if name == "image" and names:
            name = names[0]
        mode = view_opened_by(name, names)
        if mode is None:
            return
        for widget in (self.mode, self.block):
            widget.blockSignals(True)
        try:
            self.mode.setCurrentIndex(self.mode.findData(mode))
            if name in names:
                self.block.setCurrentIndex(self.block.findData(name))
        finally:
            for widget in (self.mode, self.block):
                widget.blockSignals(False)
        self.channel = None
        self._enable_for_mode()
        self.changed.emit()

    def inspect_channel(self, channel: int | None) -> None:
        """Show one channel of the block over the frame (None: back to the tiles); from a view
        that links to channels (the taught head's weight bars), in the block's own view."""
        if channel is not None and "channels" not in self._controls():
            blocks = tuple(block.name for block in self.info.feature_blocks) if self.info else ()
            block_view = view_opened_by(self.current_block(), blocks)
            if block_view is None:
                return
            self.mode.blockSignals(True)
            self.mode.setCurrentIndex(self.mode.findData(block_view))
            self.mode.blockSignals(False)
        self.channel = channel
        self._enable_for_mode()
        self.changed.emit()

    def step_walk(self, delta: int) -> None:
        """One step forward (delta > 0) or back through the decoding of the frame shown last: the
        first press on a new frame starts at the walk's first step (back: the one before the
        final poses)."""
        result = self.last_result
        if result is None:
            return
        if "steps" not in self._controls():
            self.mode.blockSignals(True)
            self.mode.setCurrentIndex(self.mode.findData(WalkView.name))
            self.mode.blockSignals(False)
            self.channel = None
        view = result.panel_view
        walking = view is not None and "steps" in self._view_controls(view)
        steps = view.steps if walking else 0
        if self.walk_frame != result.frame.index or not walking:
            self.walk_frame = result.frame.index
            self.walk_step = 0 if delta > 0 else max(0, steps - 2)
        else:
            self.walk_step = max(0, min(view.step_index + delta, max(0, steps - 1)))
        self._enable_for_mode()
        self.changed.emit()

    def set_blocks(self, info: ModelInfo, frame_size: tuple[int, int] | None, resolution: int, selected: str) -> None:
        """List the model's blocks with their shapes for the current frame size and resolution,
        and draw the network for that input (a square one until a source is open)."""
        self.info = info
        width, height = frame_size or (resolution, resolution)
        input_size = input_transform(width, height, resolution, info.output_stride).input_size
        self.strip.set_layers(network_layers(info, input_size))
        names = {block.name for block in info.feature_blocks}
        selected = selected if selected in names else default_block(info)
        self.block.blockSignals(True)
        try:
            self.block.clear()
            for block in info.feature_blocks:
                self.block.addItem(block_label(block, input_size if frame_size else None), block.name)
            self.block.setCurrentIndex(self.block.findData(selected))
        finally:
            self.block.blockSignals(False)
        self._enable_for_mode()

    def show_settings(self, settings: AppSettings) -> None:
        """Fill the widgets from `settings` without emitting `changed` (the block only when the
        current model has it)."""
        self.resolution = settings.resolution
        widgets = (self.mode, self.block, self.how, self.count, self.start, self.keypoint)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.mode.setCurrentIndex(max(0, self.mode.findData(settings.panel_view)))
            if (block := self.block.findData(settings.panel_block)) >= 0:
                self.block.setCurrentIndex(block)
            self.how.setCurrentIndex(max(0, self.how.findData(settings.channel_selection)))
            self.count.setValue(settings.channel_count)
            self.start.setValue(settings.channel_start)
            self.keypoint.setCurrentIndex(max(0, self.keypoint.findData(settings.heatmap_keypoint)))
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._enable_for_mode()

    def read(self, settings: AppSettings) -> AppSettings:
        return dataclasses.replace(
            settings, panel_view=self.current_mode(), panel_block=self.current_block() or settings.panel_block,
            channel_selection=self.how.currentData(), channel_count=self.count.value(),
            channel_start=self.start.value(), heatmap_keypoint=self.keypoint.currentData(),
        )

    def request(self, settings: AppSettings, width: int) -> PanelRequest:
        """What inference prepares for the panel: the settings' choices plus the inspected
        channel, the edge, the walk's step and (for the statistics) every block."""
        edge = self.edge.currentData()
        return dataclasses.replace(
            settings.panel_request(self.current_block(), width), mode=self.current_mode(), height=self.picture.height(),
            channel=self.channel if "channels" in self._controls() else None,
            edge=None if edge is None or edge < 0 else edge, min_score=settings.part_score_threshold,
            blocks=tuple(block.name for block in self.info.feature_blocks) if self.info else (),
            walk_frame=self.walk_frame, walk_step=self.walk_step, lab=self.lab.request(self.current_block()),
            teach=self.teach.request(), breaks=self.breaks.request(),
        )

    # --- results ------------------------------------------------------------------------------
    def show_result(self, result) -> None:
        """Paint a ViewResult's panel view (None: the placeholder)."""
        self.last_result = result
        view = result.panel_view if result is not None else None
        if view is not None and self._showing_occlusion():
            view = self.occlusion_result
        if view is not None and view is self.picture.view:  # the same picture again (compare, between frames it adds)
            return
        if view is not None and view.stats is not None:  # the statistics: a chart, no picture
            self.chart.set_stats(view.stats)
        self.picture.set_view(view if view is None or view.picture is not None else None)
        self.caption.setText(view.caption if view is not None else "")
        if view is not None and "steps" in self._view_controls(view):
            if result.frame.index == self.walk_frame:
                self.walk_step = max(0, view.step_index)
            self.walk_label.setText(f"step {view.step_index + 1} / {view.steps}")
        self.save_channels_button.setEnabled(self.exports.layer_values() is not None or (
            view is not None and view.all_channels is not None))

    def show_picture(self, picture: np.ndarray | None, caption: str) -> None:
        """A plain picture with no view (None clears the panel: no source)."""
        self.last_result = None
        self.picture.set_view(None if picture is None else PanelView(picture, caption))
        self.chart.set_stats(None)
        self.caption.setText(caption)

    def _hovered(self, hover) -> None:
        self.hover_label.setText(hover.text() if hover is not None else "")
        if hover is not None and "cell" in self._controls() and self.lab.set_cell(hover.cell):
            self.request_changed.emit()

    # --- exports (gui/panel_exports.py) -----------------------------------------------------------
    def save_view(self) -> Path | None:
        """Write the view as a PNG to the output folder (PanelExports.save_view)."""
        return self.exports.save_view("chart" in self._controls())

    def save_channels(self) -> Path | None:
        """Write every channel of the layer shown as one PNG (PanelExports.save_channels)."""
        return self.exports.save_channels()
