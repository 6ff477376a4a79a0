"""The main window: wires the source, the workers, the docks and the actions together.

State lives in `AppSettings` (what the user chose), the `CaptureWorker` (the open source), the
`InferenceWorker` (engine, pipeline) and the `Recording` (recording.py: files, header, video rate);
this class only routes signals between them. Its sources and transport are in window_sources.py,
recording and snapshots in window_recording.py, menus, keys and the banner in window_menus.py.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from pose_app.core.coverage import PersonCoverage
from pose_app.core.frames import SourceInfo
from pose_app.errors import PoseAppError
from pose_app.explain.compose import PanelRequest
from pose_app.gui.angle_dock import AngleDock
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
from pose_app.gui.window_menus import SHORTCUTS, MessageBanner, build_actions
from pose_app.gui.window_recording import RecordingMixin
from pose_app.gui.window_size import fitted_size, remember_size, remembered_size
from pose_app.gui.window_sources import COVERAGE_FRAMES, SourceMixin
from pose_app.inference.config import PipelineConfig
from pose_app.inference.engine import PoseEngine
from pose_app.io.recording import Recording
from pose_app.io.sources import open_source
from pose_app.io.stream import PoseStreams

__all__ = ["SHORTCUTS", "MainWindow"]

STATUS_INTERVAL_MS = 500
# On quit, how long (seconds) abandoned sources get to close before the app exits without them
# (their threads are daemons: a stalled stream cannot keep the program alive).
CLOSE_WAIT_S = 1.0


class MainWindow(SourceMixin, RecordingMixin, QMainWindow):
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
        self.actions_by_name = build_actions(self)
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
