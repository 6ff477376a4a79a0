"""The controls dock: preset, model, provider, resolution, decoding thresholds, refinement (the video
crops' model, any orientation) and overlay toggles.

The widget only mirrors an `AppSettings`: `show(settings)` fills it, `read(settings)` returns a
copy with the user's choices, and `changed` fires on every edit.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from pose_app.gui.settings import AppSettings
from pose_app.gui.stream_controls import StreamControls
from pose_app.inference.config import PRESETS
from pose_app.inference.engine import PROVIDER_ALIASES, available_providers
from pose_app.inference.model_files import SHIPPED_MODELS

# Valid for output stride 16 and 8 alike (k * 16 + 1 = 2k * 8 + 1).
RESOLUTIONS = (161, 257, 353, 449, 513, 641, 801)
PRESET_TIP = ("fast: real time on any laptop; balanced: about twice the accuracy of a single pass, "
              "still real time; accurate: best poses, several times slower (for recorded files)")
LOCKED_WHILE_RECORDING = ("Fixed while recording: the recording's header names the settings "
                          "its poses were made with")


def _double_spin(low: float, high: float, step: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(2)
    return spin


class ControlsPanel(QWidget):
    """Signals: changed() on any edit; preset_chosen(name) when a preset is picked (it sets
    several widgets at once); open_model_requested() for "Open model file…"."""

    changed = Signal()
    preset_chosen = Signal(str)
    open_model_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.preset = QComboBox()
        for name in PRESETS:
            self.preset.addItem(name, name)
        self.preset.setToolTip(PRESET_TIP)
        self.refine = QCheckBox("Refine each person on a crop")
        self.refine.setToolTip("Runs the network again on a crop around each person: about twice the accuracy")
        # Named as the setting and its option (--any-orientation, --video-crop-model).
        self.any_orientation = QCheckBox("Any orientation")
        self.any_orientation.setToolTip(
            "--any-orientation: turn crops so each body stands upright for the network, and try frames turned "
            "when only fragments of people are found (planks, floor work, handstands)")
        self.video_crop_model = QComboBox()
        self.video_crop_model.addItem("as crop model", "")
        for name, description in SHIPPED_MODELS.items():
            self.video_crop_model.addItem(name, name)
            self.video_crop_model.setItemData(self.video_crop_model.count() - 1, description,
                                              Qt.ItemDataRole.ToolTipRole)
        self.video_crop_model.setToolTip("--video-crop-model: the network the crops of videos, streams and cameras run")
        self.model = QComboBox()
        for name, description in SHIPPED_MODELS.items():
            self.model.addItem(name, name)
            self.model.setItemData(self.model.count() - 1, description, Qt.ItemDataRole.ToolTipRole)
        self.open_model = QPushButton("Open model file…")
        self.provider = QComboBox()
        usable = available_providers()
        self.provider.addItem("auto (best available)", "auto")
        for alias in PROVIDER_ALIASES:
            self.provider.addItem(alias if alias in usable else f"{alias} (not available here)", alias)
        self.running = QLabel("running: -")
        self.running.setWordWrap(True)
        self.resolution = QComboBox()
        for size in RESOLUTIONS:
            self.resolution.addItem(f"{size} px", size)
        self.max_poses = QSpinBox()
        self.max_poses.setRange(1, 30)
        self.min_pose_score = _double_spin(0.0, 1.0, 0.05)
        self.part_score_threshold = _double_spin(0.0, 1.0, 0.05)
        self.min_keypoint_score = QSlider(Qt.Orientation.Horizontal)
        self.min_keypoint_score.setRange(0, 100)
        self.min_keypoint_score_label = QLabel()
        self.smooth = QCheckBox("Smooth keypoints (One Euro)")
        self.smooth_min_cutoff = _double_spin(0.05, 10.0, 0.1)
        self.smooth_min_cutoff.setSuffix(" Hz")
        self.smooth_min_cutoff.setToolTip("One Euro min cutoff: lower = steadier when still, more lag")
        self.smooth_beta = _double_spin(0.0, 2.0, 0.01)
        self.smooth_beta.setDecimals(3)
        self.smooth_beta.setToolTip("One Euro beta: higher = less lag in fast moves, more jitter")
        self.show_points = QCheckBox("Points")
        self.show_bones = QCheckBox("Bones")
        self.show_ids = QCheckBox("Ids")
        self.show_boxes = QCheckBox("Boxes")
        self.show_angles = QCheckBox("Angles")
        self.show_angles.setToolTip("The angles chosen in the Angles dock, in degrees at the joints")
        self.mirror_view = QCheckBox("Mirror the view (selfie)")
        self.loop = QCheckBox("Loop video files")
        self.max_speed = QCheckBox("Max speed")
        self.max_speed.setToolTip("Process every frame of a file as fast as possible; off: play it at its own frame rate")
        self.stream = StreamControls()
        self._layout()
        self._connect()

    def _layout(self) -> None:
        form = QFormLayout(self)
        form.addRow("Preset", self.preset)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.open_model)
        form.addRow("Model", model_row)
        form.addRow("Provider", self.provider)
        form.addRow("", self.running)
        form.addRow("Input size", self.resolution)
        form.addRow("Max people", self.max_poses)
        form.addRow("Min pose score", self.min_pose_score)
        form.addRow("Part score", self.part_score_threshold)
        form.addRow("", self.refine)
        form.addRow("Video crops", self.video_crop_model)
        form.addRow("", self.any_orientation)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.min_keypoint_score, 1)
        threshold_row.addWidget(self.min_keypoint_score_label)
        form.addRow("Keypoint score ≥", threshold_row)
        toggles = QHBoxLayout()
        for box in (self.show_points, self.show_bones, self.show_ids, self.show_boxes, self.show_angles):
            toggles.addWidget(box)
        form.addRow("Draw", toggles)
        form.addRow("", self.smooth)
        smoothing_row = QHBoxLayout()
        for label, spin in (("min cutoff", self.smooth_min_cutoff), ("beta", self.smooth_beta)):
            smoothing_row.addWidget(QLabel(label))
            smoothing_row.addWidget(spin, 1)
        form.addRow("Smoothing", smoothing_row)
        for box in (self.mirror_view, self.loop, self.max_speed):
            form.addRow("", box)
        form.addRow(self.stream)

    def _connect(self) -> None:
        for combo in (self.model, self.provider, self.resolution, self.video_crop_model):
            combo.currentIndexChanged.connect(self.changed)
        self.preset.currentIndexChanged.connect(lambda: self.preset_chosen.emit(self.preset.currentData()))
        for spin in (self.max_poses, self.min_pose_score, self.part_score_threshold, self.smooth_min_cutoff,
                     self.smooth_beta):
            spin.valueChanged.connect(self.changed)
        self.min_keypoint_score.valueChanged.connect(self._threshold_moved)
        for box in (self.refine, self.any_orientation, self.smooth, self.show_points, self.show_bones, self.show_ids, self.show_boxes, self.show_angles,
                    self.mirror_view, self.loop, self.max_speed):
            box.toggled.connect(self.changed)
        self.open_model.clicked.connect(self.open_model_requested)
        self.stream.changed.connect(self.changed)

    def _threshold_moved(self, value: int) -> None:
        self.min_keypoint_score_label.setText(f"{value / 100:.2f}")
        self.changed.emit()

    def add_model_file(self, path: str) -> None:
        """List a model file and select it."""
        if self.model.findData(path) < 0:
            self.model.addItem(path, path)
        self.model.setCurrentIndex(self.model.findData(path))

    def engine_widgets(self) -> tuple[QWidget, ...]:
        """The widgets whose settings shape the poses (engine, decoding, smoothing)."""
        return (self.preset, self.model, self.open_model, self.provider, self.resolution, self.max_poses,
                self.min_pose_score, self.part_score_threshold, self.refine, self.video_crop_model,
                self.any_orientation, self.smooth, self.smooth_min_cutoff, self.smooth_beta)

    def set_engine_locked(self, locked: bool) -> None:
        """Disable the engine and decoding widgets (while recording) and say why."""
        for widget in self.engine_widgets():
            widget.setEnabled(not locked)
            widget.setToolTip(LOCKED_WHILE_RECORDING if locked else "")

    def set_running(self, text: str) -> None:
        self.running.setText(f"running: {text}")

    def show_settings(self, settings: AppSettings) -> None:
        """Fill the widgets from `settings` without emitting `changed`."""
        widgets = [self.preset, self.model, self.provider, self.resolution, self.max_poses, self.min_pose_score,
                   self.part_score_threshold, self.refine, self.video_crop_model, self.any_orientation,
                   self.min_keypoint_score, self.smooth,
                   self.smooth_min_cutoff, self.smooth_beta, self.show_points,
                   self.show_bones, self.show_ids, self.show_boxes, self.show_angles, self.mirror_view, self.loop,
                   self.max_speed]
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.preset.setCurrentIndex(max(0, self.preset.findData(settings.preset)))
            if self.model.findData(settings.model) < 0:
                self.model.addItem(settings.model, settings.model)
            self.model.setCurrentIndex(self.model.findData(settings.model))
            if self.video_crop_model.findData(settings.video_crop_model) < 0:  # an .onnx path
                self.video_crop_model.addItem(settings.video_crop_model, settings.video_crop_model)
            self.video_crop_model.setCurrentIndex(self.video_crop_model.findData(settings.video_crop_model))
            self.provider.setCurrentIndex(max(0, self.provider.findData(settings.provider)))
            if self.resolution.findData(settings.resolution) < 0:
                self.resolution.addItem(f"{settings.resolution} px", settings.resolution)
            self.resolution.setCurrentIndex(self.resolution.findData(settings.resolution))
            self.max_poses.setValue(settings.max_poses)
            self.min_pose_score.setValue(settings.min_pose_score)
            self.part_score_threshold.setValue(settings.part_score_threshold)
            self.smooth_min_cutoff.setValue(settings.smooth_min_cutoff)
            self.smooth_beta.setValue(settings.smooth_beta)
            self.min_keypoint_score.setValue(round(settings.min_keypoint_score * 100))
            self.min_keypoint_score_label.setText(f"{settings.min_keypoint_score:.2f}")
            for name in ("refine", "any_orientation", "smooth", "show_points", "show_bones", "show_ids", "show_boxes", "show_angles",
                         "mirror_view", "loop", "max_speed"):
                getattr(self, name).setChecked(getattr(settings, name))
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self.stream.show_settings(settings)

    def read(self, settings: AppSettings) -> AppSettings:
        """A copy of `settings` with the values shown in the widgets."""
        settings = self.stream.read(settings)
        return dataclasses.replace(
            settings,
            model=self.model.currentData(), provider=self.provider.currentData(),
            resolution=self.resolution.currentData(), max_poses=self.max_poses.value(),
            min_pose_score=self.min_pose_score.value(), part_score_threshold=self.part_score_threshold.value(),
            refine=self.refine.isChecked(), any_orientation=self.any_orientation.isChecked(),
            video_crop_model=self.video_crop_model.currentData(), min_keypoint_score=self.min_keypoint_score.value() / 100,
            smooth=self.smooth.isChecked(), smooth_min_cutoff=self.smooth_min_cutoff.value(),
            smooth_beta=self.smooth_beta.value(),
            show_points=self.show_points.isChecked(), show_bones=self.show_bones.isChecked(),
            show_ids=self.show_ids.isChecked(), show_boxes=self.show_boxes.isChecked(),
            show_angles=self.show_angles.isChecked(),
            mirror_view=self.mirror_view.isChecked(), loop=self.loop.isChecked(), max_speed=self.max_speed.isChecked(),
        )
