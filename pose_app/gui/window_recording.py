"""The main window's recording, snapshots and screenshots (R, S; `pose-app --record`,
`--screenshot`). A mixin of MainWindow (main_window.py): the Recording (io/recording.py) is
created here, started and written by the inference thread, and finished here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtWidgets import QFileDialog

from pose_app.draw.render import compose_view
from pose_app.errors import PoseAppError
from pose_app.gui.settings import output_directory
from pose_app.io.output_files import identities, save_png, snapshot_path, write_whole
from pose_app.io.recording import Recording
from pose_app.io.sources import input_files
from pose_app.run.outputs import OUTPUT_KINDS, recording_outputs


class RecordingMixin:
    """Recording and snapshots of MainWindow."""

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
