"""The feature-map dock: choose a conv block (with its C×H×W, stride and receptive field) and how
channels are picked, or switch to keypoint heatmaps over the frame; shows the picture the
inference worker prepared."""

from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from pose_app.engine import FeatureBlock, ModelInfo, input_transform
from pose_app.gui.image_view import ImageView
from pose_app.gui.settings import AppSettings
from pose_app.skeleton import KEYPOINT_NAMES

MAX_CHANNELS = 64


def block_grid_size(block: FeatureBlock, input_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of a block's activation for a network input of (w, h): SAME convolutions with
    stride s turn n pixels into (n - 1) // s + 1."""
    width, height = input_size
    return (height - 1) // block.stride + 1, (width - 1) // block.stride + 1


def block_label(block: FeatureBlock, input_size: tuple[int, int] | None) -> str:
    """e.g. 'feature_5 — 192×45×60, stride 8, receptive field 75 px'."""
    if input_size is None:
        shape = f"{block.channels}×H×W"
    else:
        height, width = block_grid_size(block, input_size)
        shape = f"{block.channels}×{height}×{width}"
    dilation = f", dilation {block.dilation}" if block.dilation > 1 else ""
    return f"{block.name} — {shape}, stride {block.stride}{dilation}, receptive field {block.receptive_field} px"


# The default block's stride: deep enough for part-like patterns, fine enough to read people.
DEFAULT_BLOCK_STRIDE = 8


def default_block(info: ModelInfo) -> str:
    """The deepest block at stride <= 8 (the first block if none is)."""
    fine = [block for block in info.feature_blocks if block.stride <= DEFAULT_BLOCK_STRIDE]
    return (fine[-1] if fine else info.feature_blocks[0]).name


class FeaturePanel(QWidget):
    """Signal changed() on any choice. The window reads `read(settings)` and `current_block()`."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.mode = QComboBox()
        self.mode.addItem("Feature maps of a block", "features")
        self.mode.addItem("Keypoint heatmaps over the frame", "heatmaps")
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
        self.picture = ImageView("The feature maps appear with the next frame.", smooth=False)
        self.picture.setMinimumSize(240, 200)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        # Room for two lines, so the stretching picture above never squeezes the caption away.
        self.caption.setMinimumHeight(2 * self.caption.fontMetrics().lineSpacing() + 4)
        self._layout()
        for combo in (self.mode, self.block, self.how, self.keypoint):
            combo.currentIndexChanged.connect(self._changed)
        for spin in (self.count, self.start):
            spin.valueChanged.connect(self._changed)

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Show", self.mode)
        form.addRow("Block", self.block)
        channels = QHBoxLayout()
        channels.addWidget(self.how, 1)
        channels.addWidget(QLabel("count"))
        channels.addWidget(self.count)
        channels.addWidget(QLabel("from"))
        channels.addWidget(self.start)
        form.addRow("Channels", channels)
        form.addRow("Keypoint", self.keypoint)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addWidget(self.picture, 1)
        column.addWidget(self.caption)

    def _changed(self) -> None:
        self._enable_for_mode()
        self.changed.emit()

    def _enable_for_mode(self) -> None:
        features = self.mode.currentData() == "features"
        for widget in (self.block, self.how, self.count):
            widget.setEnabled(features)
        self.start.setEnabled(features and self.how.currentData() == "range")
        self.keypoint.setEnabled(not features)

    def set_blocks(self, info: ModelInfo, frame_size: tuple[int, int] | None, resolution: int, selected: str) -> None:
        """List the model's blocks with their shapes for the current frame size and resolution."""
        input_size = None
        if frame_size is not None:
            input_size = input_transform(*frame_size, resolution, info.output_stride).input_size
        names = {block.name for block in info.feature_blocks}
        selected = selected if selected in names else default_block(info)
        self.block.blockSignals(True)
        try:
            self.block.clear()
            for block in info.feature_blocks:
                self.block.addItem(block_label(block, input_size), block.name)
            self.block.setCurrentIndex(self.block.findData(selected))
        finally:
            self.block.blockSignals(False)

    def current_block(self) -> str:
        return self.block.currentData() or ""

    def show_settings(self, settings: AppSettings) -> None:
        """Fill the widgets from `settings` without emitting `changed` (the block only when the
        current model has it)."""
        widgets = (self.mode, self.block, self.how, self.count, self.start, self.keypoint)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.mode.setCurrentIndex(max(0, self.mode.findData(settings.panel_mode)))
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
            settings, panel_mode=self.mode.currentData(), panel_block=self.current_block() or settings.panel_block,
            channel_selection=self.how.currentData(), channel_count=self.count.value(),
            channel_start=self.start.value(), heatmap_keypoint=self.keypoint.currentData(),
        )

    def show_picture(self, picture: np.ndarray | None, caption: str) -> None:
        self.picture.set_image(picture)
        self.caption.setText(caption)
