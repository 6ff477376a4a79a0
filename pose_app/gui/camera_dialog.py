"""Choosing a webcam: the cameras OpenCV can open (index and name), and a size / frame rate."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pose_app.sources import CameraDescription, list_cameras

# (width, height); (0, 0) keeps the camera's default.
CAMERA_SIZES = ((0, 0), (640, 480), (1280, 720), (1920, 1080))
CAMERA_RATES = (0, 15, 30, 60)


@dataclass(frozen=True)
class CameraChoice:
    index: int
    width: int
    height: int
    fps: int


class CameraDialog(QDialog):
    """Lists cameras (probing takes a moment); accept() with one selected gives `choice()`."""

    def __init__(self, parent: QWidget | None = None, cameras: list[CameraDescription] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open camera")
        self.cameras = list_cameras() if cameras is None else cameras
        self.list = QListWidget()
        for camera in self.cameras:
            item = QListWidgetItem(f"{camera.index}: {camera.name} ({camera.width}×{camera.height})")
            item.setData(Qt.ItemDataRole.UserRole, camera.index)
            self.list.addItem(item)
        if self.cameras:
            self.list.setCurrentRow(0)
        self.size = QComboBox()
        for width, height in CAMERA_SIZES:
            self.size.addItem("camera default" if not width else f"{width}×{height}", (width, height))
        self.rate = QComboBox()
        for fps in CAMERA_RATES:
            self.rate.addItem("camera default" if not fps else f"{fps} fps", fps)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(bool(self.cameras))
        column = QVBoxLayout(self)
        if not self.cameras:
            column.addWidget(QLabel("No camera found: none of the indices 0–7 opens and delivers a frame.\n"
                                    "Connect a camera, close programs that use it, or open a video file."))
        column.addWidget(self.list)
        form = QFormLayout()
        form.addRow("Resolution", self.size)
        form.addRow("Frame rate", self.rate)
        column.addLayout(form)
        column.addWidget(buttons)

    def choice(self) -> CameraChoice | None:
        item = self.list.currentItem()
        if item is None:
            return None
        width, height = self.size.currentData()
        return CameraChoice(item.data(Qt.ItemDataRole.UserRole), width, height, self.rate.currentData())
