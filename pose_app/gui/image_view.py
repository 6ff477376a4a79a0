"""A widget that paints a BGR numpy image scaled to fit, keeping its aspect ratio."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget


def bgra_to_qimage(image_bgra: np.ndarray) -> QImage:
    """Wrap a contiguous BGRA uint8 array without copying; the caller keeps the array alive.

    BGRA bytes are Qt's native 32-bit layout (Format_RGB32 on little-endian machines), which
    the raster painter blits without converting on every paint.
    """
    height, width = image_bgra.shape[:2]
    return QImage(image_bgra.data, width, height, image_bgra.strides[0], QImage.Format.Format_RGB32)


def fitted_rect(image_size: QSize, area: QRect) -> QRect:
    """The largest rectangle with the image's aspect ratio centred in `area`."""
    scaled = image_size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    return QRect(area.x() + (area.width() - scaled.width()) // 2,
                 area.y() + (area.height() - scaled.height()) // 2, scaled.width(), scaled.height())


class ImageView(QWidget):
    """Shows the latest image. smooth=False scales with nearest neighbour (feature tiles stay
    crisp blocks, one per activation). Emits resized(QSize) so producers can size images to fit."""

    resized = Signal(QSize)

    def __init__(self, placeholder: str = "", *, smooth: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self._placeholder = placeholder
        self._smooth = smooth
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_image(self, image_bgr: np.ndarray | None) -> None:
        """Show a BGR image (converted once here, not at every paint); None clears the view."""
        self._array = None if image_bgr is None else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2BGRA)
        self._image = None if self._array is None else bgra_to_qimage(self._array)
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def has_image(self) -> bool:
        return self._image is not None

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        if self._image is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        painter.drawImage(fitted_rect(self._image.size(), self.rect()), self._image)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.resized.emit(event.size())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(640, 480)
