"""The main window's sources: opening one in a capture thread, retiring the one it replaces,
what the capture thread reports, play / pause / step / seek, the file and camera choosers,
files dropped on the window. A mixin of MainWindow (main_window.py), which holds the state
these methods read (capture, mailbox, source_spec, source_info, the transport widgets).
"""

from __future__ import annotations

import dataclasses
import functools

from PySide6.QtWidgets import QFileDialog

from pose_app.core.coverage import PersonCoverage
from pose_app.core.frames import SourceInfo
from pose_app.gui.camera_dialog import CameraDialog
from pose_app.gui.capture_worker import CaptureWorker
from pose_app.gui.window_menus import VIDEO_FILTER
from pose_app.io.sources import is_camera_index

# The status bar warns when the person was lost over the last this many shown frames (5 s at 30 fps).
COVERAGE_FRAMES = 150


class SourceMixin:
    """Sources of MainWindow."""

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

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        urls = event.mimeData().urls()
        if urls:
            url = urls[0]
            self.open_source(url.toLocalFile() if url.isLocalFile() else url.toString())
