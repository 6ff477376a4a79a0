"""The explainer's widgets in the feature-map dock. Nothing heavy runs here: the inference worker
prepared every picture (compose.compose_panel); these only paint and answer the mouse.

- ExplainerView: the dock's picture. On a block's tile grid a click emits tile_clicked(channel);
  on a picture over the frame, the mouse shows the receptive field of the activation under it
  as a square, with its value (compose.hover_at: a few multiplications).
- StatsChart: every block's activation statistics (mean, share of zeros after ReLU6, max).
- PngExporter: writes teaching PNGs in a background thread and says where.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from pose_app.errors import PoseAppError, one_line
from pose_app.explain.compose import Hover, PanelView, hover_at, region_at
from pose_app.explain.network import BlockStats
from pose_app.gui.image_view import ImageView, fitted_rect
from pose_app.io.output_files import save_png

HOVER_COLOR = QColor(255, 230, 0)


class ExplainerView(ImageView):
    """Signals: tile_clicked(channel) on a tile of a grid; hovered(Hover or None) as the mouse
    moves over a picture of the frame (the square and value are painted here too);
    frame_clicked(x, y) on a picture of the frame, in frame pixels."""

    tile_clicked = Signal(int)
    hovered = Signal(object)
    frame_clicked = Signal(float, float)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None):
        super().__init__(placeholder, smooth=False, parent=parent)
        self.view: PanelView | None = None
        self.hover: Hover | None = None
        self._mouse: tuple[float, float] | None = None  # picture pixels
        self.setMouseTracking(True)

    def set_view(self, view: PanelView | None) -> None:
        """Show a PanelView; the hover follows the new frame's activation at the same point."""
        self.view = view
        self.set_image(None if view is None else view.picture)
        cursor = Qt.CursorShape.ArrowCursor
        if view is not None and view.regions:
            cursor = Qt.CursorShape.PointingHandCursor
        elif view is not None and view.activation is not None:
            cursor = Qt.CursorShape.CrossCursor
        self.setCursor(cursor)
        self._update_hover()

    # --- widget <-> picture pixels ------------------------------------------------------------
    def _picture_rect(self) -> QRectF | None:
        if self.view is None or self.view.picture is None:
            return None
        height, width = self.view.picture.shape[:2]
        return QRectF(fitted_rect(QSize(width, height), self.rect()))

    def picture_point(self, position: QPointF) -> tuple[float, float] | None:
        """Picture pixel (x, y) under a widget point (pixel centres); None outside the picture."""
        rect = self._picture_rect()
        if rect is None or rect.width() <= 0 or not rect.contains(position):
            return None
        height, width = self.view.picture.shape[:2]
        return ((position.x() - rect.x()) * width / rect.width() - 0.5,
                (position.y() - rect.y()) * height / rect.height() - 0.5)

    def widget_point(self, x: float, y: float) -> QPointF:
        """Widget point of picture pixel (x, y) (pixel centres)."""
        rect = self._picture_rect()
        height, width = self.view.picture.shape[:2]
        return QPointF(rect.x() + (x + 0.5) * rect.width() / width, rect.y() + (y + 0.5) * rect.height() / height)

    def hover_rect(self) -> QRectF | None:
        """Where the hovered receptive field is painted (widget pixels)."""
        if self.hover is None or self._picture_rect() is None:
            return None
        x0, y0, x1, y1 = self.hover.picture_box
        return QRectF(self.widget_point(x0, y0), self.widget_point(x1, y1))

    # --- mouse --------------------------------------------------------------------------------
    def _update_hover(self) -> None:
        hover = None
        if self.view is not None and self._mouse is not None:
            hover = hover_at(self.view, self._mouse)
        if hover != self.hover:
            self.hover = hover
            self.hovered.emit(hover)
            self.update()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._mouse = self.picture_point(event.position())
        self._update_hover()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._mouse = None
        self._update_hover()
        super().leaveEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        point = self.picture_point(event.position())
        if event.button() == Qt.MouseButton.LeftButton and point is not None and self.view is not None:
            channel = region_at(self.view, point)
            if channel is not None:
                self.tile_clicked.emit(channel)
                return
            geometry = self.view.geometry
            if geometry is not None and point[1] < geometry.size[1] - 0.5:  # not the band below the frame
                x, y = geometry.to_frame(point).tolist()
                self.frame_clicked.emit(x, y)
        super().mousePressEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        rect = self.hover_rect()
        if rect is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(HOVER_COLOR, 2))
        painter.drawRect(rect)
        centre = self.widget_point(*self.view.geometry.to_picture(self.hover.centre).tolist())
        painter.drawEllipse(centre, 3, 3)
        label = f"{self.hover.value:.3g}"
        metrics = painter.fontMetrics()
        box = QRectF(centre.x() + 6, centre.y() - metrics.height() - 2, metrics.horizontalAdvance(label) + 6,
                     metrics.height() + 2)
        painter.fillRect(box, QColor(0, 0, 0, 170))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        painter.end()


class StatsChart(QWidget):
    """Bars per block for the mean activation, the share of zeros (ReLU6 cut them) and the max.
    Signal block_clicked(name) when a block's bars are clicked."""

    block_clicked = Signal(str)
    ROWS = (("mean", "mean"), ("zero_share", "zeros"), ("max", "max"))
    ROW_COLORS = (QColor(70, 170, 160), QColor(200, 90, 90), QColor(90, 140, 220))

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.stats: dict[str, BlockStats] = {}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 200)
        self.setMouseTracking(True)

    def set_stats(self, stats: dict[str, BlockStats] | None) -> None:
        self.stats = dict(stats or {})
        self.update()

    def _geometry(self) -> tuple[float, float, float, float]:
        """(left, label width, row height, bar slot width)."""
        label_w = self.fontMetrics().horizontalAdvance("zeros 100%") + 6
        row_h = (self.height() - 2 * self.fontMetrics().height()) / len(self.ROWS)
        slot = (self.width() - label_w - 4) / max(1, len(self.stats))
        return 4.0, label_w, row_h, slot

    def block_at(self, x: float) -> str | None:
        left, label_w, _, slot = self._geometry()
        index = int((x - left - label_w) // slot) if slot > 0 else -1
        names = list(self.stats)
        return names[index] if 0 <= index < len(names) and x >= left + label_w else None

    def row_scale(self, key: str) -> float:
        """The value a full bar stands for: 1 for the share of zeros, 6 (ReLU6's ceiling) for the max, the
        largest mean for the means."""
        if key == "zero_share":
            return 1.0
        if key == "max":
            return 6.0
        return max([s.mean for s in self.stats.values()] + [1e-6])

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        painter.setPen(QColor(220, 220, 220))
        if not self.stats:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "The statistics appear with the next frame.")
            return
        left, label_w, row_h, slot = self._geometry()
        text_h = self.fontMetrics().height()
        for row, ((key, label), color) in enumerate(zip(self.ROWS, self.ROW_COLORS)):
            top = text_h + row * row_h
            scale = self.row_scale(key)
            painter.setPen(QColor(220, 220, 220))
            painter.drawText(QRectF(left, top, label_w, row_h), Qt.AlignmentFlag.AlignVCenter, label)
            painter.drawText(QRectF(left, top, label_w, text_h), Qt.AlignmentFlag.AlignLeft,
                             f"{scale:.2g}" if key == "mean" else ("100%" if key == "zero_share" else "6"))
            for n, stats in enumerate(self.stats.values()):
                value = getattr(stats, key)
                height = (row_h - 6) * min(1.0, value / scale)
                bar = QRectF(left + label_w + n * slot + 1, top + row_h - 3 - height, max(1.0, slot - 2), height)
                painter.fillRect(bar, color)
            painter.setPen(QColor(90, 90, 90))
            painter.drawLine(round(left + label_w), round(top + row_h - 3), self.width() - 4, round(top + row_h - 3))
        painter.setPen(QColor(220, 220, 220))
        for n, name in enumerate(self.stats):
            painter.drawText(QRectF(left + label_w + n * slot, self.height() - text_h, slot, text_h),
                             Qt.AlignmentFlag.AlignHCenter, name.rsplit("_", 1)[-1])

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            name = self.block_at(event.pos().x())
            if name is None:
                QToolTip.hideText()
            else:
                s = self.stats[name]
                QToolTip.showText(event.globalPos(), f"{name}: mean {s.mean:.3f}, zeros {s.zero_share:.0%}, "
                                  f"max {s.max:.2f}, {s.dead_channels} channels all zero", self)
            return True
        return super().event(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        name = self.block_at(event.position().x())
        if name is not None and event.button() == Qt.MouseButton.LeftButton:
            self.block_clicked.emit(name)
            return
        super().mousePressEvent(event)


class PngExporter(QObject):
    """Makes and writes a PNG in a background thread (grids of hundreds of channels take a
    while); saved(path) or failed(message) tell the window."""

    saved = Signal(str)
    failed = Signal(str)

    def export(self, make: Callable[[], np.ndarray], path: Path) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(make, Path(path)), name="png-export", daemon=True)
        thread.start()
        return thread

    def _run(self, make: Callable[[], np.ndarray], path: Path) -> None:
        try:
            save_png(make(), path)
        except Exception as error:  # noqa: BLE001 - the window must say why
            path.unlink(missing_ok=True)  # the name reserved for it
            message = str(error) if isinstance(error, PoseAppError) else f"{type(error).__name__}: {one_line(error)}"
            self.failed.emit(f"cannot export {path.name}: {message}")
        else:
            self.saved.emit(str(path))
