"""Choosing a webcam: the cameras OpenCV can open (index and name), and a size / frame rate.

Looking for cameras opens up to eight devices, which can take seconds: it runs in a daemon thread
(as capture does: a hung camera driver cannot keep the program alive) while the dialog says so.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
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

from pose_app.io.frame_source import CameraDescription
from pose_app.io.live_sources import list_cameras

# (width, height); (0, 0) keeps the camera's default.
CAMERA_SIZES = ((0, 0), (640, 480), (1280, 720), (1920, 1080))
CAMERA_RATES = (0, 15, 30, 60)


@dataclass(frozen=True)
class CameraChoice:
    index: int
    width: int
    height: int
    fps: int


class CameraSearch(QObject):
    """Runs `list_cameras` in a daemon thread; found(list[CameraDescription]) when it is done."""

    found = Signal(object)

    def start(self) -> None:
        # The thread holds this object until it has emitted, whatever happens to the dialog.
        threading.Thread(target=self._search, name="camera-search", daemon=True).start()

    def _search(self) -> None:
        try:
            cameras = list_cameras()
        except Exception:  # noqa: BLE001 - a camera backend that fails while probing: none found
            cameras = []
        self.found.emit(cameras)


class CameraDialog(QDialog):
    """Lists cameras (looked for in the background); accept() with one selected gives `choice()`."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open camera")
        self.cameras: list[CameraDescription] = []
        self.status = QLabel("Looking for cameras…")
        self.list = QListWidget()
        self.size = QComboBox()
        for width, height in CAMERA_SIZES:
            self.size.addItem("camera default" if not width else f"{width}×{height}", (width, height))
        self.rate = QComboBox()
        for fps in CAMERA_RATES:
            self.rate.addItem("camera default" if not fps else f"{fps} fps", fps)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(False)
        column = QVBoxLayout(self)
        column.addWidget(self.status)
        column.addWidget(self.list)
        form = QFormLayout()
        form.addRow("Resolution", self.size)
        form.addRow("Frame rate", self.rate)
        column.addLayout(form)
        column.addWidget(self.buttons)
        self._search = CameraSearch()
        self._search.found.connect(self._show_cameras)
        self._search.start()

    def _show_cameras(self, cameras: list[CameraDescription]) -> None:
        self.cameras = cameras
        for camera in cameras:
            item = QListWidgetItem(f"{camera.index}: {camera.name} ({camera.width}×{camera.height})")
            item.setData(Qt.ItemDataRole.UserRole, camera.index)
            self.list.addItem(item)
        if cameras:
            self.list.setCurrentRow(0)
            self.status.hide()
        else:
            self.status.setText("No camera found: none of the indices 0–7 opens and delivers a frame.\n"
                                "Connect a camera, close programs that use it, or open a video file.")
        self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(bool(cameras))

    def choice(self) -> CameraChoice | None:
        item = self.list.currentItem()
        if item is None:
            return None
        width, height = self.size.currentData()
        return CameraChoice(item.data(Qt.ItemDataRole.UserRole), width, height, self.rate.currentData())
