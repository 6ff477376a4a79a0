"""The window's menus and keys, and the message banner across the top of the video.

`build_actions(window)` makes every menu entry with its keys (SHORTCUTS lists them for the help
dialog and the README) and returns them by name; the slots are the window's.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from pose_app.io.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

# (keys, what they do): the help dialog and README list exactly these.
SHORTCUTS = (
    ("Space", "play / pause"),
    ("Right / Left", "step one frame forward / back (pauses; files only)"),
    ("M", "mirror the view (selfie)"),
    ("F", "show / hide the feature-map panel"),
    ("A", "show / hide the angle plot"),
    ("N / Shift+N", "decoding walk: next / previous step of the paused frame (in the feature-map panel)"),
    ("R", "start / stop recording keypoints"),
    ("S", "snapshot: save the view as PNG"),
    ("Ctrl+O", "open a video or image file"),
    ("F1", "this help"),
    ("Q / Esc", "quit"),
)
VIDEO_FILTER = (
    "Videos and images ("
    + " ".join(f"*{suffix}" for suffix in sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES))
    + ");;All files (*)"
)


class MessageBanner(QFrame):
    """A message across the top of the video with buttons to open a file or a camera."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("MessageBanner { background: #5a2a1e; } QLabel { color: white; }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.open_file = QPushButton("Open video file…")
        self.open_camera = QPushButton("Choose camera…")
        self.dismiss = QPushButton("Dismiss")
        row = QHBoxLayout(self)
        row.addWidget(self.text, 1)
        for button in (self.open_file, self.open_camera, self.dismiss):
            row.addWidget(button)
        self.dismiss.clicked.connect(self.hide)
        self.hide()

    def show_text(self, text: str, offer_sources: bool) -> None:
        self.text.setText(text)
        self.open_file.setVisible(offer_sources)
        self.open_camera.setVisible(offer_sources)
        self.show()


def build_actions(window) -> dict[str, QAction]:
    """The File, View, Record and Help menus of `window` (a MainWindow), by name."""
    def action(text: str, keys: tuple[str, ...], slot, menu) -> QAction:
        item = QAction(text, window)
        item.setShortcuts([QKeySequence(key) for key in keys])
        item.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        item.triggered.connect(slot)
        menu.addAction(item)
        window.addAction(item)
        return item

    file_menu = window.menuBar().addMenu("&File")
    view_menu = window.menuBar().addMenu("&View")
    record_menu = window.menuBar().addMenu("&Record")
    help_menu = window.menuBar().addMenu("&Help")
    actions = {
        "open": action("Open video or image…", ("Ctrl+O",), window.choose_file, file_menu),
        "camera": action("Open camera…", (), window.choose_camera, file_menu),
        "save_settings": action("Save settings to file…", (), window.choose_settings_save, file_menu),
        "load_settings": action("Load settings from file…", (), window.choose_settings_load, file_menu),
        "quit": action("Quit", ("Q", "Esc"), window.close, file_menu),
        "pause": action("Play / pause", ("Space",), window.toggle_pause, view_menu),
        "forward": action("Step forward", ("Right",), lambda: window.step(1), view_menu),
        "back": action("Step back", ("Left",), lambda: window.step(-1), view_menu),
        "mirror_view": action("Mirror the view (selfie)", ("M",), window.toggle_mirror_view, view_menu),
        "panel": action("Feature-map panel", ("F",), window.toggle_panel, view_menu),
        "angles": action("Angle plot", ("A",), lambda: window.angle_dock.setVisible(not window.angle_dock.isVisible()), view_menu),
        "walk_next": action("Decoding walk: next step", ("N",), lambda: window.step_decoding(1), view_menu),
        "walk_back": action("Decoding walk: previous step", ("Shift+N",), lambda: window.step_decoding(-1), view_menu),
        "record": action("Start / stop recording", ("R",), window.toggle_recording, record_menu),
        "record_video": action("Also record annotated video", (), window._record_video_toggled, record_menu),
        "snapshot": action("Snapshot (PNG)", ("S",), window._snapshot_clicked, record_menu),
        "output_dir": action("Output folder…", (), window.choose_output_dir, record_menu),
        "help": action("Keyboard shortcuts", ("F1",), lambda: show_help(window), help_menu),
    }
    actions["record_video"].setCheckable(True)
    actions["record_video"].setChecked(window.settings.record_video)
    return actions


def show_help(parent: QWidget) -> None:
    rows = "".join(f"<tr><td><b>{keys}</b></td><td>{what}</td></tr>" for keys, what in SHORTCUTS)
    QMessageBox.information(parent, "Keyboard shortcuts", f"<table cellpadding='3'>{rows}</table>")
