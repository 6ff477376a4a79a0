"""The main window: wires the source, the workers, the docks and the actions together.

State lives in `AppSettings` (what the user chose), the `CaptureWorker` (the open source), the
`InferenceWorker` (engine, pipeline) and the `Recording` (recorder.py: files, header, video rate);
this class only routes signals between them.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from pose_app.core.coverage import PersonCoverage
from pose_app.core.frames import SourceInfo
from pose_app.errors import PoseAppError
from pose_app.explain.compose import PanelRequest, compose_view
from pose_app.explain.network import save_png
from pose_app.gui.angle_dock import AngleDock
from pose_app.gui.camera_dialog import CameraDialog
from pose_app.gui.capture_worker import CaptureWorker, FrameMailbox
from pose_app.gui.controls import ControlsPanel
from pose_app.gui.feature_panel import FeaturePanel
from pose_app.gui.image_view import ImageView
from pose_app.gui.inference_worker import InferenceWorker, ViewOptions, ViewResult
from pose_app.gui.settings import (
    AppSettings,
    load_settings_file,
    output_directory,
    save_settings_file,
    settings_to_remember,
    write_settings,
)
from pose_app.gui.stats import LatencyMeter, RateMeter
from pose_app.gui.window_size import fitted_size, remember_size, remembered_size
from pose_app.inference.config import PipelineConfig
from pose_app.inference.engine import PoseEngine
from pose_app.io.output_files import identities, write_whole
from pose_app.io.recorder import Recording, snapshot_path
from pose_app.io.sources import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    input_files,
    is_camera_index,
    open_source,
)
from pose_app.io.stream import PoseStreams
from pose_app.run.outputs import OUTPUT_KINDS, recording_outputs

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
STATUS_INTERVAL_MS = 500
# The status bar warns when the person was lost over the last this many shown frames (5 s at 30 fps).
COVERAGE_FRAMES = 150
# On quit, how long (seconds) abandoned sources get to close before the app exits without them
# (their threads are daemons: a stalled stream cannot keep the program alive).
CLOSE_WAIT_S = 1.0


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


class MainWindow(QMainWindow):
    """frame_shown(ViewResult) fires after each processed frame reaches the view;
    message_shown(str) whenever the window shows a problem to the user; source_ended(int) when
    the source reached its end without looping (a still image after its one frame), with the
    index of the last frame it delivered."""

    frame_shown = Signal(object)
    message_shown = Signal(str)
    source_ended = Signal(int)

    def __init__(self, store: QSettings, settings: AppSettings, remembered: AppSettings | None = None):
        """`settings`: what to start with; `remembered`: what `store` held (default: the same), so
        that command-line overrides are not stored on quit (see settings_to_remember)."""
        super().__init__()
        self.setWindowTitle("pose-app")
        self.setAcceptDrops(True)
        self.store = store
        self.settings = settings
        self._started = settings
        self._remembered = remembered or settings
        self.source_opener = open_source  # spec, **camera options -> FrameSource
        self._retiring: set[CaptureWorker] = set()  # stopped workers whose thread has not ended yet
        self._at_end = False  # the file reached its end and the capture paused there
        self.source_spec: str | int | None = None
        self.source_info: SourceInfo | None = None
        self.capture: CaptureWorker | None = None
        self.engine: PoseEngine | None = None
        self.last_result: ViewResult | None = None
        self.recording: Recording | None = None
        self.stopped_by_signal: int | None = None  # SIGINT / SIGTERM closed the window (gui/app.py)
        self._record_pending = False  # --record: start recording at the first frame shown
        self._recorded: list[str] = []  # the files of the recordings finished, for the last words
        self.mailbox = FrameMailbox()
        self.capture_rate, self.display_rate = RateMeter(), RateMeter()
        # Was the person lost in the last few seconds (said in the status bar)?
        self.coverage = PersonCoverage(window=COVERAGE_FRAMES)
        self.latency = LatencyMeter()
        self._build_widgets()
        self._build_actions()
        self.controls.show_settings(settings)
        self.panel.show_settings(settings)
        self.panel.breaks.show_request(settings.breaks_request())
        self.inference = InferenceWorker(self.mailbox, settings.pipeline_config(), self._view_options())
        self.inference.result.connect(self._show_result)
        self.inference.engine_ready.connect(self._engine_ready)
        self.inference.engine_failed.connect(self._engine_failed)
        self.inference.failed.connect(lambda message: self.show_message(message))
        self.inference.recording_failed.connect(self._recording_failed)
        self.inference.start()
        self.streams: PoseStreams | None = None
        self._stream_errors_shown: list[str] = []
        self._restart_streams()
        self.panel_dock.setVisible(settings.panel_visible)
        self.angle_dock.setVisible(settings.angle_dock_visible)
        self._status_timer = QTimer(self, interval=STATUS_INTERVAL_MS, timeout=self._update_status)
        self._status_timer.start()

    # --- construction ----------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.view = ImageView("No source yet: open a video file (Ctrl+O), drop one here, or choose a camera.")
        self.view.resized.connect(lambda _size: self.inference.set_view(self._view_options()))
        self.banner = MessageBanner()
        self.banner.open_file.clicked.connect(self.choose_file)
        self.banner.open_camera.clicked.connect(self.choose_camera)
        self.play_button = QPushButton("Pause")
        self.play_button.clicked.connect(self.toggle_pause)
        self.back_button = QPushButton("◀ Step")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button = QPushButton("Step ▶")
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setMinimumWidth(160)
        self.seek_slider.sliderReleased.connect(lambda: self.seek(self.seek_slider.value()))
        self.seek_slider.actionTriggered.connect(
            lambda _action: QTimer.singleShot(0, lambda: self.seek(self.seek_slider.value()))
        )
        self.position_label = QLabel("-")
        transport = QHBoxLayout()
        for widget in (self.back_button, self.play_button, self.forward_button):
            transport.addWidget(widget)
        transport.addWidget(self.seek_slider, 1)
        transport.addWidget(self.position_label)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.banner)
        column.addWidget(self.view, 1)
        column.addLayout(transport)
        self.setCentralWidget(central)

        self.controls = ControlsPanel()
        self.controls.changed.connect(self._settings_edited)
        self.controls.preset_chosen.connect(lambda preset: self.apply_settings(self.settings.with_preset(preset)))
        self.controls.open_model_requested.connect(self.choose_model_file)
        self.controls_dock = QDockWidget("Controls")
        self.controls_dock.setObjectName("controls")
        self.controls_dock.setWidget(self.controls)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.controls_dock)
        self.panel = FeaturePanel()
        self.panel.changed.connect(self._settings_edited)
        self.panel.request_changed.connect(self._update_panel_request)
        # The breaks view's choices are settings (the lab section), kept on every change.
        self.panel.breaks.changed.connect(
            lambda: setattr(self, "settings", self.settings.with_breaks(self.panel.breaks.request())))
        self.panel.engine = lambda: self.engine
        self.panel.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.panel.output_dir = lambda: output_directory(self.settings.output_dir)
        self.panel.picture.resized.connect(lambda _size: self._update_panel_request())
        self.panel_dock = QDockWidget("Feature maps")
        self.panel_dock.setObjectName("features")
        self.panel_dock.setWidget(self.panel)
        self.panel_dock.visibilityChanged.connect(lambda _visible: self._update_panel_request())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel_dock)
        self.resizeDocks([self.controls_dock, self.panel_dock], [280, 460], Qt.Orientation.Horizontal)
        self.angles = AngleDock()
        self.angles.set_chosen_angles(self.settings.chosen_angles())
        self.angles.set_follow(self.settings.angles_follow_motion)
        self.angles.angles_changed.connect(
            lambda names: self.apply_settings(dataclasses.replace(self.settings, angle_names=",".join(names)))
        )
        self.angles.follow_changed.connect(
            lambda on: self.apply_settings(dataclasses.replace(self.settings, angles_follow_motion=on))
        )
        self.angle_dock = QDockWidget("Angles")
        self.angle_dock.setObjectName("angles")
        self.angle_dock.setWidget(self.angles)
        self.angle_dock.visibilityChanged.connect(lambda _visible: self._angle_dock_toggled())
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.angle_dock)

        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label, 1)

    def _build_actions(self) -> None:
        def action(text: str, keys: tuple[str, ...], slot, menu) -> QAction:
            item = QAction(text, self)
            item.setShortcuts([QKeySequence(key) for key in keys])
            item.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            item.triggered.connect(slot)
            menu.addAction(item)
            self.addAction(item)
            return item

        file_menu = self.menuBar().addMenu("&File")
        view_menu = self.menuBar().addMenu("&View")
        record_menu = self.menuBar().addMenu("&Record")
        help_menu = self.menuBar().addMenu("&Help")
        self.actions_by_name = {
            "open": action("Open video or image…", ("Ctrl+O",), self.choose_file, file_menu),
            "camera": action("Open camera…", (), self.choose_camera, file_menu),
            "save_settings": action("Save settings to file…", (), self.choose_settings_save, file_menu),
            "load_settings": action("Load settings from file…", (), self.choose_settings_load, file_menu),
            "quit": action("Quit", ("Q", "Esc"), self.close, file_menu),
            "pause": action("Play / pause", ("Space",), self.toggle_pause, view_menu),
            "forward": action("Step forward", ("Right",), lambda: self.step(1), view_menu),
            "back": action("Step back", ("Left",), lambda: self.step(-1), view_menu),
            "mirror_view": action("Mirror the view (selfie)", ("M",), self.toggle_mirror_view, view_menu),
            "panel": action("Feature-map panel", ("F",), self.toggle_panel, view_menu),
            "angles": action("Angle plot", ("A",), lambda: self.angle_dock.setVisible(not self.angle_dock.isVisible()), view_menu),
            "walk_next": action("Decoding walk: next step", ("N",), lambda: self.step_decoding(1), view_menu),
            "walk_back": action("Decoding walk: previous step", ("Shift+N",), lambda: self.step_decoding(-1), view_menu),
            "record": action("Start / stop recording", ("R",), self.toggle_recording, record_menu),
            "record_video": action("Also record annotated video", (), self._record_video_toggled, record_menu),
            "snapshot": action("Snapshot (PNG)", ("S",), self._snapshot_clicked, record_menu),
            "output_dir": action("Output folder…", (), self.choose_output_dir, record_menu),
            "help": action("Keyboard shortcuts", ("F1",), self.show_help, help_menu),
        }
        self.actions_by_name["record_video"].setCheckable(True)
        self.actions_by_name["record_video"].setChecked(self.settings.record_video)

    # --- sources ---------------------------------------------------------------------------
    def open_source(self, spec: str | int, camera_options: dict | None = None) -> None:
        """Start reading `spec` (file, folder, URL or camera index) in a capture thread."""
        self._close_source()
        self.banner.hide()
        self.source_spec = spec
        self.mailbox.dropped = 0
        self._clear_pictures(f"Opening {spec}…")
        worker = CaptureWorker(spec, self.mailbox, camera_options=camera_options, loop=self.settings.loop,
                               max_speed=self.settings.max_speed, opener=self.source_opener)
        worker.opened.connect(functools.partial(self._source_opened, worker))
        worker.failed.connect(functools.partial(self._source_failed, worker))
        worker.ended.connect(functools.partial(self._source_ended, worker))
        worker.position.connect(functools.partial(self._source_position, worker))
        self.capture = worker
        worker.start()

    def open_camera(self, index: int) -> None:
        self.open_source(index, self.settings.camera_options())

    def _close_source(self) -> None:
        self.stop_recording()
        if self.capture is not None:
            self._retire(self.capture)
            self.capture = None
        self.mailbox.take(0.0)  # a frame of the old source must not follow the new one's
        self.source_info = None
        self._at_end = False

    def _retire(self, worker: CaptureWorker) -> None:
        """Stop `worker` without waiting for it (opening or reading may hang for many seconds):
        it no longer talks to the window and is kept until its thread ends."""
        for signal in (worker.opened, worker.failed, worker.ended, worker.position):
            signal.disconnect()
        self._retiring.add(worker)
        worker.finished.connect(functools.partial(self._retired, worker))
        worker.stop()
        if not worker.is_running():  # it ended before `finished` was connected
            self._retired(worker)

    def _retired(self, worker: CaptureWorker) -> None:
        """Forget a stopped worker whose thread ended (the connection held it alive too)."""
        if worker in self._retiring:
            self._retiring.discard(worker)
            worker.finished.disconnect()

    def _clear_pictures(self, placeholder: str) -> None:
        """Show `placeholder` instead of a frame of a source that is gone."""
        self.last_result = None
        self.view.set_image(None)
        self.view.set_placeholder(placeholder)
        self.panel.show_picture(None, "")

    def _source_opened(self, worker: CaptureWorker, info: SourceInfo) -> None:
        if worker is not self.capture:
            return
        self.source_info = info
        self.coverage = PersonCoverage(window=COVERAGE_FRAMES)  # a new input starts unjudged
        seekable = not info.is_live and bool(info.frame_count)
        self.seek_slider.setEnabled(seekable)
        self.seek_slider.setRange(0, max(0, (info.frame_count or 1) - 1))
        for button in (self.back_button, self.forward_button):
            button.setEnabled(not info.is_live)
        self._set_play_text()
        fps = f", {info.fps:.1f} fps" if info.fps else ""
        self.setWindowTitle(f"pose-app — {info.name} ({info.width}×{info.height}{fps})")
        self._refresh_blocks()

    def _source_failed(self, worker: CaptureWorker, message: str) -> None:
        if worker is not self.capture:
            return
        self.source_info = None
        self.stop_recording(complete=False)
        if is_camera_index(worker.spec):
            prefix = "No camera: " if worker.info is None else ""  # else it was unplugged mid-stream
            message = f"{prefix}{message}. Open a video file instead, or choose another camera."
        self.show_message(message, offer_sources=True)
        self._clear_pictures("No source. Open a video file (Ctrl+O) or choose a camera.")

    def _source_ended(self, worker: CaptureWorker) -> None:
        if worker is self.capture:
            self._at_end = True
            self._set_play_text()
            info = self.source_info
            still = info is not None and info.is_still
            if not (still and info.frame_count == 1):  # one picture: shown, nothing to repeat
                hint = ("press R to finish the recording" if self.recording is not None
                        else "enable looping to repeat it")
                self.statusBar().showMessage(f"End of the {'pictures' if still else 'video'} ({hint}).", 5000)
            self.source_ended.emit(worker.last_index)

    def _source_position(self, worker: CaptureWorker, index: int) -> None:
        if worker is not self.capture:
            return
        self._at_end = False
        self.capture_rate.tick()
        if not self.seek_slider.isSliderDown():
            self.seek_slider.blockSignals(True)
            self.seek_slider.setValue(index)
            self.seek_slider.blockSignals(False)
        total = self.source_info.frame_count if self.source_info else None
        self.position_label.setText(f"{index + 1} / {total}" if total else f"{index + 1}")

    def toggle_pause(self) -> None:
        """Play / pause; playing after the end of a file starts it again (not while recording:
        a recording holds each frame once)."""
        if self.capture is None:
            return
        restart = self.capture.paused and self._at_end and self.recording is None
        self.capture.set_paused(not self.capture.paused)
        if restart:
            self.capture.seek(0)
        self._set_play_text()

    def _set_play_text(self) -> None:
        paused = self.capture is not None and self.capture.paused
        self.play_button.setText("Play" if paused else "Pause")

    def step(self, frames: int) -> None:
        """Pause and show the frame `frames` away (files and image lists)."""
        if self.capture is None or (self.source_info is not None and self.source_info.is_live):
            return
        self.capture.set_paused(True)
        self._set_play_text()
        self.capture.step(frames)

    def seek(self, frame_index: int) -> None:
        if self.capture is not None and self.source_info is not None and not self.source_info.is_live:
            self.capture.seek(frame_index)

    # --- settings --------------------------------------------------------------------------
    def _settings_edited(self) -> None:
        self.apply_settings(self.panel.read(self.controls.read(self.settings)))

    def apply_settings(self, settings: AppSettings) -> None:
        """Make `settings` current: rebuild the engine only when its part changed. While recording
        the engine part stays as it is (the recording's header describes it)."""
        previous = self.settings
        if self.recording is not None and settings.pipeline_config() != previous.pipeline_config():
            settings = settings.with_pipeline_config(previous.pipeline_config())
            self.statusBar().showMessage("Model and decoding settings stay fixed while recording.", 5000)
        self.settings = settings
        self.controls.show_settings(settings)
        self.panel.show_settings(settings)
        self.panel.breaks.show_request(settings.breaks_request())
        if settings.pipeline_config() != previous.pipeline_config():
            self.inference.set_engine_config(settings.pipeline_config())
        if (settings.model, settings.resolution) != (previous.model, previous.resolution):
            self._refresh_blocks()
        self.inference.set_view(self._view_options())
        self._update_panel_request()
        self._set_capture_modes()
        if settings.stream_config() != previous.stream_config():
            self._restart_streams()

    def _restart_streams(self) -> None:
        """Stop the running streams and start those the settings ask for. An endpoint that
        cannot be used (malformed, unknown host, port in use) is said in the banner and its
        stream switched off in the controls."""
        previous = self.inference.set_streams(None)
        self.streams = None
        if previous is not None:
            previous.close()
        config = self.settings.stream_config()
        if not config.enabled:
            return
        try:
            self.streams = PoseStreams.open(config)
        except PoseAppError as error:
            self.settings = dataclasses.replace(self.settings, stream_osc=False, stream_ws=False)
            self.controls.show_settings(self.settings)
            self.show_message(f"streaming stopped: {error}")
            return
        self._stream_errors_shown = []
        self.inference.set_streams(self.streams)
        exposed = " ".join(f"Warning: {warning}." for warning in config.warnings())
        self.statusBar().showMessage(f"Streaming {self.streams.describe()}. {exposed}".strip(), 15000 if exposed else 5000)

    def _view_options(self) -> ViewOptions:
        ratio = self.view.devicePixelRatioF()
        size = (round(self.view.width() * ratio), round(self.view.height() * ratio))
        return ViewOptions(self.settings.overlay_style(), self.settings.mirror_view, size,
                           angle_series=self.settings.angle_dock_visible)

    def _angle_dock_toggled(self) -> None:
        self.settings = dataclasses.replace(self.settings, angle_dock_visible=self.angle_dock.isVisible())
        self.inference.set_view(self._view_options())

    def panel_request(self) -> PanelRequest | None:
        """What the panel needs from inference; None while it is hidden (no feature outputs)."""
        if not self.panel_dock.isVisible():
            return None
        return self.panel.request(self.settings, max(120, self.panel.picture.width()))

    def _update_panel_request(self) -> None:
        self.settings = dataclasses.replace(self.settings, panel_visible=self.panel_dock.isVisible())
        self.inference.set_panel(self.panel_request())

    def _refresh_blocks(self) -> None:
        if self.engine is None:
            return
        frame_size = (self.source_info.width, self.source_info.height) if self.source_info else None
        self.panel.set_blocks(self.engine.info, frame_size, self.settings.resolution, self.settings.panel_block)
        self.settings = dataclasses.replace(self.settings, panel_block=self.panel.current_block())
        self._update_panel_request()

    def _engine_ready(self, engine: PoseEngine) -> None:
        self.engine = engine
        self.controls.set_running(f"{engine.provider_label} · {engine.info.name}")
        self._refresh_blocks()

    def _engine_failed(self, message: str, running: PipelineConfig | None) -> None:
        """Say why, and show the settings of the engine that keeps running."""
        if running is not None:
            self.settings = self.settings.with_pipeline_config(running)
            self.controls.show_settings(self.settings)
            message += f" — still running {self.engine.provider if self.engine else running.provider}"
        self.show_message(message)

    def toggle_mirror_view(self) -> None:
        self.apply_settings(dataclasses.replace(self.settings, mirror_view=not self.settings.mirror_view))

    def toggle_panel(self) -> None:
        self.panel_dock.setVisible(not self.panel_dock.isVisible())

    def step_decoding(self, steps: int) -> None:
        """Pause, open the panel and walk `steps` through the decoding of the frame shown."""
        if self.capture is not None and not self.capture.paused:
            self.capture.set_paused(True)
            self._set_play_text()
        self.panel_dock.setVisible(True)
        self.panel.step_walk(steps)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video or image", self.settings.output_dir, VIDEO_FILTER)
        if path:
            self.open_source(path)

    def choose_camera(self) -> None:
        dialog = CameraDialog(self)
        if dialog.exec() and (choice := dialog.choice()) is not None:
            self.apply_settings(dataclasses.replace(
                self.settings, camera_width=choice.width, camera_height=choice.height, camera_fps=choice.fps))
            self.open_camera(choice.index)

    def choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open pose-app model", "", "ONNX models (*.onnx)")
        if path:
            self.controls.add_model_file(path)

    def choose_settings_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save settings", "pose-app.ini", "Settings (*.ini)")
        if path:
            self._report_errors(save_settings_file, path, self.settings)

    def choose_settings_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load settings", "", "Settings (*.ini);;All files (*)")
        if path:
            self._report_errors(lambda: self.apply_settings(load_settings_file(path)))

    # --- results ---------------------------------------------------------------------------
    def _show_result(self, result: ViewResult) -> None:
        if self.source_info is None:
            return  # still in flight from a source that failed or is being replaced
        self.last_result = result
        self.view.set_image(result.view)
        if self.panel_dock.isVisible():
            self.panel.show_result(result)
        if result.angles is not None:
            self.angles.add(result.angles)
        self.latency.add(dict(result.stage_seconds, show=time.perf_counter() - result.emitted_at))
        self.display_rate.tick()
        self.coverage.add(result.poses.keypoints)
        if self._record_pending and self.recording is None:
            self._record_pending = False
            self.toggle_recording()
        self.frame_shown.emit(result)

    def dropped_frames(self) -> int:
        """Frames read but never shown: replaced in the mailbox, or skipped by a live source."""
        return self.mailbox.dropped + (self.capture.source_dropped if self.capture else 0)

    def status_text(self) -> str:
        people = len(self.last_result.poses) if self.last_result else 0
        provider = self.engine.provider if self.engine else "-"
        return (f"capture {self.capture_rate.rate():.1f} fps · inference {self.inference.rate.rate():.1f} fps · "
                f"display {self.display_rate.rate():.1f} fps · {self.latency.summary()} · "
                f"dropped {self.dropped_frames()} · people {people} · {provider}"
                + (f" · ⚠ {warning}" if (warning := self.coverage.warning()) else "")
                + (" · ● REC" if self.recording is not None else "")
                + (f" · {self.streams.short_status()}" if self.streams is not None else ""))

    def _update_status(self) -> None:
        self.status_label.setText(self.status_text())
        # Where each stream goes, with its latency percentiles (a WebSocket on port "any": the port chosen).
        self.status_label.setToolTip("\n".join(self.streams.status_lines()) if self.streams is not None else "")
        for error in self.streams.errors if self.streams is not None else ():
            if error not in self._stream_errors_shown:
                self._stream_errors_shown.append(error)
                self.show_message(error)

    def show_message(self, message: str, offer_sources: bool = False) -> None:
        self.banner.show_text(message, offer_sources)
        self.message_shown.emit(message)

    def message_text(self) -> str:
        return self.banner.text.text() if self.banner.isVisible() else ""

    def _report_errors(self, function, *args) -> object:
        try:
            return function(*args)
        except PoseAppError as error:
            self.show_message(str(error))
            return None

    # --- recording and snapshots -----------------------------------------------------------
    def start_recording(self, csv_path: str | Path, json_path: str | Path | None = None,
                        video_path: str | Path | None = None, angles_path: str | Path | None = None,
                        reps_path: str | Path | None = None) -> None:
        """`record` into these files (None: not written), a short form for scripts and tests."""
        self.record({"csv": csv_path, "json": json_path, "video": video_path, "angles": angles_path, "reps": reps_path})

    def record(self, outputs: Mapping[str, str | Path | None]) -> None:
        """Write every processed frame into `outputs` (kind -> path, None: not written; any kind
        of run/outputs.py, the same files as `pose-app process`); the inference thread starts the
        recording with the pipeline that makes its rows."""
        if self.source_info is None:
            raise PoseAppError("open a source before recording")
        self.stop_recording()
        if self.inference.pipeline is None:
            raise PoseAppError("the model is still loading: try again in a moment")
        inputs = identities(input_files(self.source_spec)) if isinstance(self.source_spec, str) else frozenset()
        self.recording = Recording(self.source_info, {kind: Path(path) for kind, path in outputs.items() if path},
                                   kinds=OUTPUT_KINDS, draw_style=self.settings.overlay_style(), inputs=inputs)
        self.inference.start_recording(self.recording)
        self.controls.set_engine_locked(True)
        self._set_capture_modes()

    def stop_recording(self, complete: bool = True) -> int:
        """Stop and close the files (`complete`: False when the source failed); says where they
        are in the status bar; returns the frames written (0 when not recording)."""
        recording = self.inference.stop_recording()
        self.recording = None
        self.controls.set_engine_locked(False)
        self._set_capture_modes()
        if recording is None:
            return 0
        try:
            frames = recording.finish(complete=complete)
        except PoseAppError as error:
            self.show_message(f"the recording could not be finished: {error}")
            return recording.frames_written
        saved = ", ".join(str(path) for path in recording.paths)
        self._recorded.append(saved)
        self.statusBar().showMessage(f"Recorded {frames} frames, saved to {saved}", 10000)
        return frames

    def record_when_ready(self) -> None:
        """Start recording at the first frame shown (`pose-app --record`)."""
        self._record_pending = True

    def close_on_signal(self) -> None:
        """Close as Quit does, after SIGINT or SIGTERM: the recording finished as incomplete."""
        self.stop_recording(complete=False)
        self.close()

    def closing_note(self) -> str:
        """What was saved, for the line printed when a signal closed the app."""
        return f"; recording saved to {'; '.join(self._recorded)}" if self._recorded else ""

    def _recording_failed(self, message: str) -> None:
        """The inference thread stopped the recording (its files are closed)."""
        self.stop_recording(complete=False)
        self.show_message(message)

    def _set_capture_modes(self) -> None:
        """Loop files as the settings say, except while recording: a recording holds each frame
        once (frame numbers and ids restart on a loop), ending with the file like `pose-app process`.
        Pace files as the settings say, except while recording a video of a file: then every
        frame is processed, so the video has them all and plays at the file's own rate."""
        if self.capture is not None:
            recording_video = self.recording is not None and "video" in self.recording.outputs
            self.capture.loop = self.settings.loop and self.recording is None
            self.capture.max_speed = self.settings.max_speed or recording_video

    def toggle_recording(self) -> None:
        if self.recording is not None:
            self.stop_recording()
            return
        outputs = recording_outputs(output_directory(self.settings.output_dir), video=self.settings.record_video)
        self._report_errors(self.record, outputs)

    def choose_output_dir(self) -> None:
        current = str(output_directory(self.settings.output_dir))
        path = QFileDialog.getExistingDirectory(self, "Folder for recordings and snapshots", current)
        if path:
            self.apply_settings(dataclasses.replace(self.settings, output_dir=path))

    def _record_video_toggled(self) -> None:
        checked = self.actions_by_name["record_video"].isChecked()
        self.apply_settings(dataclasses.replace(self.settings, record_video=checked))

    def save_snapshot(self, path: str | Path | None = None) -> Path:
        """PNG of the current view at the frame's full resolution."""
        if self.last_result is None:
            raise PoseAppError("nothing to snapshot yet: no frame has been shown")
        result = self.last_result
        picture = compose_view(result.frame.image, result.poses, self.settings.overlay_style(), mirror=result.mirrored)
        path = Path(path) if path is not None else snapshot_path(output_directory(self.settings.output_dir))
        return save_png(picture, path)

    def _snapshot_clicked(self) -> None:
        path = self._report_errors(self.save_snapshot)
        if path is not None:
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def screenshot(self, path: str | Path) -> None:
        """PNG of the whole window (view, docks, status bar), written through output_files."""
        self._update_status()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not self.grab().save(buffer, "PNG"):
            raise PoseAppError(f"cannot write screenshot {path}: the window could not be encoded as PNG")
        buffer.close()
        write_whole(path, bytes(data.data()))

    # --- help, drag and drop, closing ------------------------------------------------------
    def show_help(self) -> None:
        rows = "".join(f"<tr><td><b>{keys}</b></td><td>{what}</td></tr>" for keys, what in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table cellpadding='3'>{rows}</table>")

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        urls = event.mimeData().urls()
        if urls:
            url = urls[0]
            self.open_source(url.toLocalFile() if url.isLocalFile() else url.toString())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._status_timer.stop()
        self._close_source()
        self.inference.stop()
        self.inference.wait()
        if self.streams is not None:
            self.streams.close()
        deadline = time.monotonic() + CLOSE_WAIT_S
        for worker in list(self._retiring):
            worker.wait(max(0.0, deadline - time.monotonic()))
        try:
            write_settings(self.store, settings_to_remember(self.settings, self._started, self._remembered))
            remember_size(self.store, self.normalGeometry().size() if self.isMaximized() else self.size())
        except PoseAppError as error:  # quitting goes on: the settings are not worth a stuck window
            print(f"pose-app: warning: settings not saved: {error}", file=sys.stderr)
        super().closeEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """The size to open at: the one remembered from the last run, else most of the screen,
        fitted to the screen's available area (gui/window_size.py)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        available = screen.availableGeometry().size() if screen is not None else QSize(1440, 820)
        return fitted_size(available, remembered_size(self.store))
