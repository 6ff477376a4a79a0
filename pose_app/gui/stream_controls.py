"""The Controls dock's Stream section: OSC and WebSocket on or off, where to, and what to send.

Like the rest of the dock it only mirrors an `AppSettings` (stream_osc, osc_host, osc_port,
osc_format, osc_pixels, stream_ws, ws_host, ws_port, stream_angles): `show_settings` fills it,
`read` returns a copy with the user's choices, `changed` fires on every finished edit.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLineEdit, QSpinBox, QWidget

from pose_app.gui.settings import AppSettings
from pose_app.io.pose_messages import OSC_FORMATS

FORMAT_TIPS = {
    "bundle": "one OSC bundle per frame: /pose/frame, /pose/<id>/score, /pose/<id>/<keypoint> (x, y, score)",
    "array": "one /poses message per frame: frame, time, size, people, then per person id, score, 17 x (x, y, score)",
}


def _port_spin(value: int, any_port: bool = False) -> QSpinBox:
    """A port; with `any_port`, 0 (shown as "any") lets the system choose a free one (the status
    bar says which)."""
    spin = QSpinBox()
    spin.setRange(0 if any_port else 1, 65535)
    if any_port:
        spin.setSpecialValueText("any")
    spin.setValue(value)
    return spin


class StreamControls(QGroupBox):
    """Signal: changed() when a stream setting was edited (host fields: when editing finished)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Stream", parent)
        self.stream_osc = QCheckBox("OSC to")
        self.stream_osc.setToolTip("Send every processed frame's poses over UDP (TouchDesigner, Max, Processing...)")
        self.osc_host = QLineEdit()
        self.osc_port = _port_spin(9000)
        self.osc_format = QComboBox()
        for name in OSC_FORMATS:
            self.osc_format.addItem(name, name)
            self.osc_format.setItemData(self.osc_format.count() - 1, FORMAT_TIPS[name], Qt.ItemDataRole.ToolTipRole)
        self.osc_pixels = QCheckBox("Pixels")
        self.osc_pixels.setToolTip("OSC x, y in original-frame pixels; off: 0..1 of the frame's width and height")
        self.stream_ws = QCheckBox("WebSocket on")
        self.stream_ws.setToolTip("Serve one JSON message per frame to every connected client (browsers, p5.js)")
        self.ws_host = QLineEdit()
        self.ws_port = _port_spin(8765, any_port=True)
        self.stream_angles = QCheckBox("Send angles")
        self.stream_angles.setToolTip("Joint and segment angles in degrees, as the angles CSV has them")
        form = QFormLayout(self)
        for box, host, port in ((self.stream_osc, self.osc_host, self.osc_port),
                                (self.stream_ws, self.ws_host, self.ws_port)):
            row = QHBoxLayout()
            row.addWidget(host, 1)
            row.addWidget(port)
            form.addRow(box, row)
        options = QHBoxLayout()
        for widget in (self.osc_format, self.osc_pixels, self.stream_angles):
            options.addWidget(widget)
        form.addRow("Send", options)
        for box in (self.stream_osc, self.osc_pixels, self.stream_ws, self.stream_angles):
            box.toggled.connect(self.changed)
        for spin in (self.osc_port, self.ws_port):
            spin.valueChanged.connect(self.changed)
        for line in (self.osc_host, self.ws_host):
            line.editingFinished.connect(self.changed)
        self.osc_format.currentIndexChanged.connect(self.changed)

    def _widgets(self) -> tuple[QWidget, ...]:
        return (self.stream_osc, self.osc_host, self.osc_port, self.osc_format, self.osc_pixels, self.stream_ws,
                self.ws_host, self.ws_port, self.stream_angles)

    def show_settings(self, settings: AppSettings) -> None:
        """Fill the widgets from `settings` without emitting `changed`."""
        for widget in self._widgets():
            widget.blockSignals(True)
        try:
            for name in ("stream_osc", "osc_pixels", "stream_ws", "stream_angles"):
                getattr(self, name).setChecked(getattr(settings, name))
            self.osc_host.setText(settings.osc_host)
            self.ws_host.setText(settings.ws_host)
            self.osc_port.setValue(settings.osc_port)
            self.ws_port.setValue(settings.ws_port)
            self.osc_format.setCurrentIndex(max(0, self.osc_format.findData(settings.osc_format)))
        finally:
            for widget in self._widgets():
                widget.blockSignals(False)

    def read(self, settings: AppSettings) -> AppSettings:
        """A copy of `settings` with the stream values shown in the widgets."""
        return dataclasses.replace(
            settings,
            stream_osc=self.stream_osc.isChecked(), osc_host=self.osc_host.text().strip(),
            osc_port=self.osc_port.value(), osc_format=self.osc_format.currentData(),
            osc_pixels=self.osc_pixels.isChecked(), stream_ws=self.stream_ws.isChecked(),
            ws_host=self.ws_host.text().strip(), ws_port=self.ws_port.value(),
            stream_angles=self.stream_angles.isChecked(),
        )
