"""The whole network as a row of blocks: input, first conv, the depthwise-separable blocks and the
four heads, each drawn to scale for the current input (width grows with log2 of its channels,
height with its H), labelled with its channels, stride or dilation and receptive field, with a
dashed line where the resolution halves. Clicking a block selects it; its tooltip explains it.

The layout is a plain function (`strip_layout`), so tests can click a block where it is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from pose_app.explain.network import CONCEPTS, LayerCard

# Short names under the blocks.
HEAD_SHORT = {"heatmaps": "hm", "offsets": "off", "displacement_fwd": "fw", "displacement_bwd": "bw"}
# Fill colours by kind (RGB).
KIND_COLORS = {"input": (150, 150, 150), "conv": (90, 140, 220), "depthwise-separable": (70, 170, 160),
               "head": (230, 150, 60)}
GAP = 3  # pixels between columns
BASE_WIDTH = 7  # pixels every column gets, plus its share for log2(channels)
TEXT_ROWS_BELOW = 3  # name, stride / dilation, receptive field
LEGEND = ("Each block is one layer's output for the current input: width grows with log2 of its channels, "
          "height with its rows (H). Above: channels. Below: the block (in = input, 0 = first conv, 1-13 = "
          "depthwise-separable blocks, hm / off / fw / bw = heads), s2 where the resolution halves (dashed red "
          "line) or d2 / d4 for dilation, and the receptive field in input pixels. Click a block to show it.")


def short_name(card: LayerCard) -> str:
    if card.kind == "input":
        return "in"
    if card.kind == "head":
        return HEAD_SHORT.get(card.name, card.name[:3])
    return str(card.block)


def stride_mark(card: LayerCard) -> str:
    """'s2' where the layer halves the resolution, 'd2', 'd4' where its taps are dilated."""
    if card.halves_resolution:
        return f"s{card.stride}"
    return f"d{card.dilation}" if card.dilation > 1 else ""


def layer_details(card: LayerCard) -> str:
    """One line: name, C×H×W, kernel, stride, dilation, receptive field."""
    c, h, w = card.shape
    if card.kind == "input":
        return f"input image · {c}×{h}×{w} (the frame letterboxed for the network)"
    kernel = {"conv": "3×3 conv", "depthwise-separable": "depthwise 3×3 + pointwise 1×1", "head": "1×1 conv head"}
    dilation = f" · dilation {card.dilation}" if card.dilation > 1 else ""
    return (f"{card.name} · {c}×{h}×{w} · {kernel.get(card.kind, card.kind)} · stride {card.stride} "
            f"(one cell every {card.output_stride} input px){dilation} · receptive field {card.receptive_field} px")


def layer_tooltip(card: LayerCard) -> str:
    """Details, the plain-language caption and the ideas the layer illustrates."""
    concepts = "".join(f"<li>{CONCEPTS[key]}</li>" for key in card.concepts if key in CONCEPTS)
    return (f"<b>{layer_details(card)}</b><br>{card.caption}"
            + (f"<ul style='margin-left:12px'>{concepts}</ul>" if concepts else ""))


@dataclass(frozen=True)
class Column:
    """Where one layer is drawn: its column (the click target) and its block inside it."""

    name: str
    column: QRectF
    block: QRectF


def strip_layout(cards: list[LayerCard], width: int, height: int, text_height: int) -> list[Column]:
    """Columns left to right filling `width`: each BASE_WIDTH plus a share of the rest in
    proportion to log2(channels + 1); blocks centred on one axis, their heights in proportion to
    their H (the tallest fills the room between a text row above and TEXT_ROWS_BELOW rows below,
    none under 4 px)."""
    if not cards:
        return []
    weights = [math.log2(card.channels + 1) for card in cards]
    room = max(0.0, width - GAP * (len(cards) - 1) - BASE_WIDTH * len(cards))
    per_weight = room / sum(weights)
    top, bottom = text_height + 2, height - TEXT_ROWS_BELOW * text_height - 2
    tallest = max(card.shape[1] for card in cards)
    centre = (top + bottom) / 2
    columns, x = [], 0.0
    for card, weight in zip(cards, weights):
        column_w = BASE_WIDTH + weight * per_weight
        block_h = max(4.0, (bottom - top) * card.shape[1] / tallest)
        columns.append(Column(card.name, QRectF(x, 0, column_w, height),
                              QRectF(x + 1, centre - block_h / 2, column_w - 2, block_h)))
        x += column_w + GAP
    return columns


class NetworkStrip(QWidget):
    """Signal clicked(name) when a block is clicked. `set_layers` with explain.network_layers;
    `set_selected` outlines the layers the panel shows."""

    clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._cards: list[LayerCard] = []
        self._selected: set[str] = set()
        self._font = QFont(self.font())
        self._font.setPointSizeF(max(6.5, self.font().pointSizeF() * 0.75))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_layers(self, cards: list[LayerCard]) -> None:
        self._cards = list(cards)
        self.update()

    def layers(self) -> list[LayerCard]:
        return list(self._cards)

    def set_selected(self, names: set[str]) -> None:
        if names != self._selected:
            self._selected = set(names)
            self.update()

    def selected(self) -> set[str]:
        return set(self._selected)

    def _text_height(self) -> int:
        from PySide6.QtGui import QFontMetrics

        return QFontMetrics(self._font).height()

    def columns(self) -> list[Column]:
        return strip_layout(self._cards, self.width(), self.height(), self._text_height())

    def layer_at(self, x: float, y: float) -> LayerCard | None:
        for card, column in zip(self._cards, self.columns()):
            if column.column.contains(x, y):
                return card
        return None

    def block_rect(self, name: str) -> QRect:
        """Where the layer's block is drawn (widget pixels; empty when not shown)."""
        for column in self.columns():
            if column.name == name:
                return column.block.toAlignedRect()
        return QRect()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            card = self.layer_at(event.position().x(), event.position().y())
            if card is not None:
                self.clicked.emit(card.name)
                return
        super().mousePressEvent(event)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            card = self.layer_at(event.pos().x(), event.pos().y())
            QToolTip.showText(event.globalPos(), LEGEND if card is None else layer_tooltip(card), self)
            return True
        return super().event(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        if not self._cards:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The network appears once a model is loaded.")
            return
        painter.setFont(self._font)
        text_h = self._text_height()
        text_color = self.palette().windowText().color()
        below = self.height() - TEXT_ROWS_BELOW * text_h
        for card, column in zip(self._cards, self.columns()):
            selected = card.name in self._selected
            if selected:
                painter.fillRect(column.column, QColor(255, 210, 80, 70))
            if card.halves_resolution:  # where the resolution halves: a dashed line before the block
                painter.setPen(QPen(QColor(200, 80, 80), 1, Qt.PenStyle.DashLine))
                x = column.column.left() - GAP / 2
                painter.drawLine(round(x), text_h, round(x), below)
            r, g, b = KIND_COLORS.get(card.kind, (120, 120, 120))
            painter.fillRect(column.block, QColor(r, g, b))
            painter.setPen(QPen(QColor(255, 210, 80) if selected else QColor(40, 40, 40), 2 if selected else 1))
            painter.drawRect(column.block)
            painter.setPen(text_color)
            centred = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter
            x, w = column.column.left(), column.column.width()
            painter.drawText(QRectF(x - 4, 0, w + 8, text_h), centred, str(card.channels))
            rows = (short_name(card), stride_mark(card), str(card.receptive_field))
            for n, text in enumerate(rows):
                if n == 1 and card.halves_resolution:
                    painter.setPen(QColor(200, 80, 80))
                painter.drawText(QRectF(x - 4, below + n * text_h, w + 8, text_h), centred, text)
                painter.setPen(text_color)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(440, 9 * self._text_height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(len(self._cards) * (BASE_WIDTH + GAP) + 40, 9 * self._text_height())
