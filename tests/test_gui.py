"""The desktop app driven for real (offscreen): video in, poses on screen, panel, recording, errors.

The video is the generated walker clip (tests/media.py): one person, 60 frames, 640x480 @ 30 fps."""

import csv
import dataclasses
import json
import re
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from support import GUI_WAIT_MS, http_server, wait_for_result

from pose_app.cli import main as cli
from pose_app.core.frames import Frame
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.draw.featuremaps import shrink
from pose_app.errors import PoseAppError
from pose_app.gui.capture_worker import CapturedFrame, CaptureWorker, FrameMailbox
from pose_app.gui.settings import (
    AppSettings,
    file_store,
    load_settings_file,
    output_directory,
    read_settings,
    save_settings_file,
    settings_to_remember,
)
from pose_app.inference.engine import PROVIDER_ALIASES, available_providers
from pose_app.io.formats import LONG_CSV_COLUMNS
from pose_app.io.sources import VideoFileSource, open_source

WAIT_MS = GUI_WAIT_MS


@pytest.fixture
def walk(walk_clip):
    return str(walk_clip)


def wait_for_message(qtbot, window, *parts):
    qtbot.waitUntil(lambda: all(part in window.message_text() for part in parts), timeout=WAIT_MS)
    return window.message_text()


def test_mailbox_keeps_the_newest_frame_and_counts_drops():
    mailbox = FrameMailbox()
    frames = [CapturedFrame(Frame(np.zeros((2, 2, 3), np.uint8), i, i / 30, "t"), 0, 0.0) for i in range(3)]
    for item in frames:
        mailbox.put(item)
    assert mailbox.dropped == 2
    assert mailbox.take(0.0).frame.index == 2
    assert mailbox.take(0.0) is None
    # Every-frame mode: the producer waits until the consumer took the previous frame.
    mailbox.put(frames[0])
    producer = threading.Thread(target=mailbox.put, args=(frames[1],), kwargs={"wait_until_taken": True})
    producer.start()
    producer.join(0.2)
    assert producer.is_alive()
    assert mailbox.take(1.0).frame.index == 0
    producer.join(2.0)
    assert mailbox.take(1.0).frame.index == 1 and mailbox.dropped == 2


class UnpluggedCamera:
    """A live source that stops after a few frames, like a webcam pulled out mid-stream: real
    decoded frames from a video file, reported as live and numbered `indices` (a camera's
    numbers jump over frames it skipped). With a `gate`, it waits for it before delivering
    the frame at position `gate_at` (len(indices): before reporting it was unplugged)."""

    def __init__(self, path: str, indices, gate: threading.Event | None = None, gate_at: int = -1):
        self._video = VideoFileSource(path)
        self.info = dataclasses.replace(self._video.info, is_live=True, frame_count=None)
        self._indices = list(indices)
        self._gate, self._gate_at = gate, gate_at
        self._position = 0

    def read(self):
        if self._gate is not None and self._position == self._gate_at:
            self._gate.wait(WAIT_MS / 1000)
        if self._position >= len(self._indices):
            return None
        frame = dataclasses.replace(self._video.read(), index=self._indices[self._position])
        self._position += 1
        return frame

    def seek(self, frame_index):
        raise PoseAppError("live")

    def close(self):
        self._video.close()


class EndlessCamera:
    """A live source that never ends: the video's frames over and over, about 30 a second,
    numbered on."""

    def __init__(self, path: str):
        self._video = VideoFileSource(path)
        self.info = dataclasses.replace(self._video.info, is_live=True, frame_count=None)
        self._index = 0

    def read(self):
        time.sleep(1 / 30)
        frame = self._video.read()
        if frame is None:
            self._video.seek(0)
            frame = self._video.read()
        self._index += 1
        return dataclasses.replace(frame, index=self._index - 1)

    def seek(self, frame_index):
        raise PoseAppError("live")

    def close(self):
        self._video.close()


def test_camera_unplugged_mid_stream_is_reported(qtbot, walk):
    mailbox = FrameMailbox()
    worker = CaptureWorker(0, mailbox, opener=lambda spec, **options: UnpluggedCamera(walk, range(5)))
    opened = []
    worker.opened.connect(opened.append)
    with qtbot.waitSignal(worker.failed, timeout=WAIT_MS) as failed:
        worker.start()
    worker.wait()
    assert failed.args == [f"{walk} stopped delivering frames (unplugged?)"]
    assert opened and opened[0].is_live and worker.frames_read == 5
    assert mailbox.take(0.0).frame.index == 4  # the newest frame; the four before it were dropped
    assert mailbox.dropped == 4


def test_video_poses_step_and_mirror(make_window, qtbot, walk):
    window = make_window(max_speed=True)
    window.open_source(walk)
    result = wait_for_result(qtbot, window, lambda r: len(r.poses) >= 1)
    visible = result.poses.keypoints[result.poses.keypoints[..., 2] >= 0.3]
    assert len(visible) >= 5
    assert (visible[:, 0] >= 0).all() and (visible[:, 0] < 640).all()
    assert (visible[:, 1] >= 0).all() and (visible[:, 1] < 480).all()
    assert window.view.has_image() and "people 1" in window.status_text()

    window.toggle_pause()
    # Frames read before the pause are still shown; then the picture stands still.
    qtbot.waitUntil(lambda: window.last_result.frame.index == window.capture.last_index, timeout=WAIT_MS)
    base = window.last_result.frame.index
    window.step(1)
    wait_for_result(qtbot, window, lambda r: r.frame.index == base + 1)
    window.step(-1)
    stepped_back = wait_for_result(qtbot, window, lambda r: r.frame.index == base)
    assert not stepped_back.mirrored and window.capture.paused

    window.seek(40)
    wait_for_result(qtbot, window, lambda r: r.frame.index == 40)
    window.seek(base)
    wait_for_result(qtbot, window, lambda r: r.frame.index == base)

    window.toggle_mirror_view()
    mirrored = wait_for_result(qtbot, window, lambda r: r.mirrored)
    assert mirrored.frame.index == base
    # Inference ran on the unmirrored frame: the poses (and their left/right labels) are unchanged.
    np.testing.assert_array_equal(mirrored.poses.keypoints, stepped_back.poses.keypoints)
    height, width = mirrored.view.shape[:2]
    shown = shrink(mirrored.frame.image, (width, height)).astype(np.int16)
    view = mirrored.view.astype(np.int16)
    assert np.abs(view - cv2.flip(shown, 1)).mean() < np.abs(view - shown).mean() / 3


def test_feature_panel_requests_features_only_while_visible(make_window, qtbot, walk):
    window = make_window(max_speed=True)
    window.open_source(walk)
    hidden = wait_for_result(qtbot, window)
    assert hidden.features_requested == () and hidden.poses.features == {} and hidden.panel is None

    window.toggle_panel()
    block = window.panel.current_block()
    shown = wait_for_result(qtbot, window, lambda r: r.panel is not None)
    assert shown.features_requested == (block,)
    assert set(shown.poses.features) == {block}
    channels, grid_h, grid_w = shown.poses.features[block].shape
    assert f"{channels}×{grid_h}×{grid_w}" in window.panel.block.currentText()
    assert "16 strongest" in shown.panel_caption and window.panel.picture.has_image()

    window.panel.mode.setCurrentIndex(window.panel.mode.findData("heatmaps"))
    heatmaps = wait_for_result(qtbot, window, lambda r: r.panel is not None and r.features_requested == ())
    assert heatmaps.poses.features == {} and heatmaps.panel.shape[1] <= 640
    assert heatmaps.panel_caption == "heatmap: all keypoints (max)"

    window.toggle_panel()
    closed = wait_for_result(qtbot, window, lambda r: r.panel is None)
    assert closed.features_requested == () and closed.poses.features == {}


def test_recording_csv_and_snapshot(make_window, qtbot, walk, walk_clip, tmp_path):
    window = make_window(max_speed=True)
    window.open_source(walk)
    wait_for_result(qtbot, window, lambda r: len(r.poses) >= 1)
    csv_path = tmp_path / "poses.csv"
    window.start_recording(csv_path)
    # The recording starts with the next frame the inference thread takes (by the pipeline whose
    # header it writes), so count the frames it wrote, not those shown (a loaded machine has
    # several in flight).
    qtbot.waitUntil(lambda: window.recording.frames_written >= 10, timeout=WAIT_MS)
    frames_written = window.stop_recording()
    assert frames_written >= 10

    with csv_path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert tuple(rows[0]) == LONG_CSV_COLUMNS
    records = [dict(zip(LONG_CSV_COLUMNS, row)) for row in rows[1:]]
    assert len(records) % len(KEYPOINT_NAMES) == 0 and len(records) >= 5 * len(KEYPOINT_NAMES)
    assert {r["keypoint"] for r in records} == set(KEYPOINT_NAMES)
    assert {r["source"] for r in records} == {walk}
    confident = [r for r in records if float(r["score"]) >= 0.3]
    assert confident
    assert all(0 <= float(r["x"]) < 640 and 0 <= float(r["y"]) < 480 for r in confident)
    assert all(abs(float(r["x_norm"]) * 640 - float(r["x"])) < 1.5 for r in confident)
    # Each on the walker's photo where the clip's script put it in that frame (8 px of slack).
    boxes = {int(r["frame"]): walk_clip.actors[0].box(int(r["frame"])) for r in confident}
    for r in confident:
        x0, y0, x1, y1 = boxes[int(r["frame"])]
        assert x0 - 8 <= float(r["x"]) <= x1 + 8 and y0 - 8 <= float(r["y"]) <= y1 + 8, r

    snapshot = window.save_snapshot(tmp_path / "view.png")
    assert cv2.imread(str(snapshot)).shape == (480, 640, 3)
    with pytest.raises(PoseAppError, match="cannot write"):
        window.save_snapshot(tmp_path / "no-such-folder" / "view.png")


def test_errors_are_shown_in_the_window(make_window, qtbot, tmp_path):
    window = make_window()
    with pytest.raises(PoseAppError, match="open a source"):
        window.start_recording(tmp_path / "x.csv")

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    window.open_source(str(bad))
    wait_for_message(qtbot, window, "broken.mp4")
    assert window.banner.open_file.isVisible()

    window.open_source(str(tmp_path / "missing.mkv"))
    wait_for_message(qtbot, window, "input not found", "missing.mkv")

    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    window.open_source(f"http://127.0.0.1:{port}/x.mp4")
    message = wait_for_message(qtbot, window, "the server could not be reached", f"connection refused by 127.0.0.1:{port}")
    assert "codec" not in message

    window.open_camera(99)
    message = wait_for_message(qtbot, window, "No camera", "camera 99")
    assert "Open a video file" in message and window.banner.open_file.isVisible()

    # tensorrt on this CPU machine; on others, whichever provider this onnxruntime lacks.
    missing = next(alias for alias in PROVIDER_ALIASES if alias not in available_providers())
    running = window.engine.provider
    window.controls.provider.setCurrentIndex(window.controls.provider.findData(missing))
    message = wait_for_message(qtbot, window, f"'{missing}'", "not available")
    assert f"still running {running}" in message
    assert window.engine.provider == running and window.settings.provider == "auto"
    assert window.controls.provider.currentData() == "auto"
    assert window.isVisible()

    # Every engine setting of the failed request goes back to what runs (decoding included).
    window.banner.hide()
    window.apply_settings(dataclasses.replace(window.settings, provider=missing, max_poses=3, smooth=False))
    wait_for_message(qtbot, window, f"'{missing}'", "not available")
    defaults = AppSettings()
    assert window.settings.pipeline_config() == defaults.pipeline_config()
    assert window.controls.max_poses.value() == defaults.max_poses and window.controls.smooth.isChecked()


def test_an_unexpected_engine_error_is_shown_and_the_engine_keeps_running(make_window, qtbot, walk, monkeypatch):
    window = make_window(max_speed=True)
    window.open_source(walk)
    wait_for_result(qtbot, window)

    def lost_device(*args, **kwargs):
        raise RuntimeError("device lost")

    monkeypatch.setattr("pose_app.gui.inference_worker.open_engine", lost_device)
    window.apply_settings(dataclasses.replace(window.settings, threads=1))
    message = wait_for_message(qtbot, window, "RuntimeError: device lost")
    assert "still running" in message and window.settings.threads == 0
    wait_for_result(qtbot, window)  # frames are still processed


def test_settings_persist_and_round_trip_through_a_file(make_window, qtbot, tmp_path):
    window = make_window()
    window.toggle_mirror_view()
    window.apply_settings(dataclasses.replace(window.settings, channel_count=9, min_keypoint_score=0.55))
    window.close()
    stored = read_settings(file_store(tmp_path / "settings.ini"))
    assert stored.mirror_view and stored.channel_count == 9 and stored.min_keypoint_score == pytest.approx(0.55)

    saved = tmp_path / "mine.ini"
    save_settings_file(saved, dataclasses.replace(stored, model="posenet-050", max_speed=True))
    loaded = load_settings_file(saved)
    assert loaded.model == "posenet-050" and loaded.max_speed is True and loaded.mirror_view is True
    not_settings = tmp_path / "other.ini"
    not_settings.write_text("[something]\nx=1\n")
    with pytest.raises(PoseAppError, match="not a pose-app settings file"):
        load_settings_file(not_settings)


def test_loading_a_settings_file_selects_its_feature_block(make_window, qtbot, tmp_path):
    window = make_window(panel_visible=True)
    first_block = window.engine.info.feature_blocks[0].name
    assert window.panel.current_block() != first_block  # the default is a deeper block
    saved = tmp_path / "block.ini"
    save_settings_file(saved, dataclasses.replace(window.settings, panel_block=first_block, channel_count=5))
    window.apply_settings(load_settings_file(saved))
    assert window.panel.current_block() == first_block and window.panel.count.value() == 5
    assert window.panel_request().block == first_block


def test_command_line_overrides_are_for_one_run():
    remembered = AppSettings()
    started = dataclasses.replace(remembered, resolution=257, max_speed=True)  # --resolution 257 --max-speed
    current = dataclasses.replace(started, max_speed=False, mirror_view=True)  # the user then changed these
    stored = settings_to_remember(current, started, remembered)
    assert stored.resolution == remembered.resolution  # untouched override: not remembered
    assert stored.max_speed is False and stored.mirror_view is True  # the user's own changes are


def test_command_line_screenshot_automation(qapp, walk, tmp_path, capsys):
    out = tmp_path / "shot.png"
    settings = str(tmp_path / "settings.ini")
    code = cli.main(["--source", walk, "--panel", "--max-speed", "--resolution", "257",
                     "--screenshot", str(out), "--quit-after-frames", "5", "--settings", settings])
    assert code == 0
    assert "displayed 5 frames" in capsys.readouterr().out
    shot = cv2.imread(str(out))
    assert shot is not None and shot.shape[0] >= 400 and shot.shape[1] >= 800
    # The options applied to that run only: the settings file keeps its own values.
    stored = read_settings(file_store(settings))
    defaults = AppSettings()
    assert (stored.resolution, stored.max_speed, stored.panel_visible) == (
        defaults.resolution, defaults.max_speed, defaults.panel_visible)

    code = cli.main(["--source", str(tmp_path / "missing.mp4"), "--quit-after-frames", "3", "--settings", settings])
    assert code == 2
    assert "input not found" in capsys.readouterr().err


def unattended(tmp_path, source: str, frames: int, *, loop: bool = True, every_frame: bool = False) -> list[str]:
    """The command line of an unattended run on `source`, its settings file looping or not;
    `every_frame`: --max-speed (no frame of a file dropped)."""
    settings = tmp_path / f"settings-{'loop' if loop else 'once'}.ini"
    save_settings_file(settings, AppSettings(loop=loop))
    return ["--source", source, "--quit-after-frames", str(frames), "--screenshot", str(tmp_path / "shot.png"),
            "--settings", str(settings), "--preset", "fast", *(["--max-speed"] if every_frame else [])]


def assert_unattended_run_ended(code: int, out: str, tmp_path, report: str) -> None:
    assert code == 0
    assert report in out, out
    shot = cv2.imread(str(tmp_path / "shot.png"))
    assert shot is not None and shot.shape[0] >= 400


def test_an_unattended_run_on_a_still_image_ends_after_its_one_frame(qapp, walk_clip, tmp_path, capsys):
    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), walk_clip.render(0))
    code = cli.main(unattended(tmp_path, str(image), 5))
    assert_unattended_run_ended(code, capsys.readouterr().out, tmp_path, "pose-app: displayed 1 frame (the source ended)")


@pytest.mark.parametrize(("loop", "report"), [(False, "displayed 3 frames (the source ended)"),
                                               (True, "displayed 5 frames in")])
def test_an_unattended_run_on_a_folder_of_images_ends(qapp, walk_clip, tmp_path, capsys, loop, report):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index:02d}.png"), walk_clip.render(10 * index))
    code = cli.main(unattended(tmp_path, str(folder), 5, loop=loop, every_frame=True))
    assert_unattended_run_ended(code, capsys.readouterr().out, tmp_path, report)


@pytest.mark.parametrize("served", [False, True], ids=["file", "http"])
def test_an_unattended_run_on_a_video_that_ends_sooner_ends_with_it(qapp, walk_clip, tmp_path, capsys, served):
    """60 frames asked of a 60-frame video played at its frame rate (so some are dropped), not
    looping: the run ends when its last frame is shown, from a file or a URL read like one."""
    with http_server(walk_clip.path.parent) as base:
        source = f"{base}/{walk_clip.path.name}" if served else str(walk_clip)
        code = cli.main(unattended(tmp_path, source, walk_clip.frame_count, loop=False))
    out = capsys.readouterr().out
    shown = int(re.search(r"displayed (\d+) frames?", out).group(1))
    if shown < walk_clip.frame_count:
        assert_unattended_run_ended(code, out, tmp_path, f"displayed {shown} frames (the source ended)")
    else:  # a fast machine showed every frame
        assert_unattended_run_ended(code, out, tmp_path, f"displayed {shown} frames in")


def test_an_unattended_run_on_a_live_stream_ends(make_window, qtbot, walk, tmp_path):
    """A live stream: done after N frames; one that stops sooner ends the run with its message."""
    from pose_app.gui.app import Automation

    window = make_window()
    window.source_opener = lambda spec, **options: EndlessCamera(walk)
    automation = Automation(window, 3, str(tmp_path / "live.png"))
    window.open_source("rtsp://camera/live")
    qtbot.waitUntil(lambda: automation.done, timeout=WAIT_MS)
    assert automation.error is None and len(automation.shown_at) == 3
    assert (tmp_path / "live.png").stat().st_size > 0

    window = make_window()
    window.source_opener = lambda spec, **options: UnpluggedCamera(walk, range(2))
    automation = Automation(window, 30, None)
    window.open_source("rtsp://camera/live")
    qtbot.waitUntil(lambda: automation.error is not None, timeout=WAIT_MS)
    assert "stopped delivering frames" in automation.error and not automation.done


def test_keyboard_shortcuts_drive_the_window(make_window, qtbot):
    from PySide6.QtCore import Qt

    from pose_app.gui.main_window import SHORTCUTS

    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.settings.mirror_view and window.controls.mirror_view.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_F)
    qtbot.waitUntil(window.panel_dock.isVisible, timeout=5000)
    assert window.panel_request() is not None
    qtbot.keyClick(window, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: not window.panel_dock.isVisible(), timeout=5000)
    assert window.panel_request() is None
    # The help lists every key the actions answer to.
    listed = " ".join(keys for keys, _ in SHORTCUTS)
    for action in window.actions_by_name.values():
        for key in action.shortcuts():
            name = key.toString().replace("Escape", "Esc")
            assert name in listed, f"{name} missing from the help"
    qtbot.keyClick(window, Qt.Key.Key_Q)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)


def test_dropping_a_file_opens_it(make_window, qtbot, walk):
    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    window = make_window()
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(walk)])
    # As Qt delivers a drag: the window must accept the drag-enter, or the drop never comes.
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted() and enter.dropAction() == Qt.DropAction.CopyAction
    text_only = QMimeData()
    text_only.setText("not a file")
    refused = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, text_only, Qt.MouseButton.NoButton,
                              Qt.KeyboardModifier.NoModifier)
    refused.ignore()
    QApplication.sendEvent(window, refused)
    assert not refused.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert window.source_spec == walk
    qtbot.waitUntil(lambda: window.source_info is not None and window.source_info.width == 640, timeout=WAIT_MS)


class CountingVideo(VideoFileSource):
    """A video file that remembers where it was asked to seek."""

    def __init__(self, path: str):
        super().__init__(path)
        self.seeks: list[int] = []

    def seek(self, frame_index: int) -> None:
        self.seeks.append(frame_index)
        super().seek(frame_index)


def test_a_slider_drag_seeks_only_to_its_last_position(qtbot, walk):
    mailbox = FrameMailbox()
    video = CountingVideo(walk)
    worker = CaptureWorker(walk, mailbox, opener=lambda spec, **options: video)
    worker.set_paused(True)
    for index in range(10, 40):  # drag moves queued faster than the capture thread seeks
        worker.seek(index)
    worker.step(1)
    with qtbot.waitSignal(worker.position, timeout=WAIT_MS, check_params_cb=lambda index: index == 40):
        worker.start()
    worker.stop()
    assert worker.wait(WAIT_MS / 1000)
    assert video.seeks == [39]


def test_live_frames_skipped_while_paused_are_not_counted_as_dropped(qtbot, walk):
    gate = threading.Event()
    worker = CaptureWorker(0, FrameMailbox(),
                           opener=lambda spec, **options: UnpluggedCamera(walk, [0, 1, 2, 50, 53], gate, 3))
    positions = []
    worker.position.connect(positions.append)
    worker.start()
    qtbot.waitUntil(lambda: positions == [0, 1, 2], timeout=WAIT_MS)
    worker.set_paused(True)  # the camera runs on (frames 3..49) while the user looks at frame 2
    worker.set_paused(False)
    with qtbot.waitSignal(worker.failed, timeout=WAIT_MS):
        gate.set()
    assert positions == [0, 1, 2, 50, 53]
    assert worker.source_dropped == 2  # 51 and 52: skipped while playing


def test_a_stalled_source_never_blocks_the_window(make_window, qtbot, walk, tmp_path):
    window = make_window(max_speed=True)
    answer = threading.Event()

    def hanging_open(spec, **options):
        answer.wait(WAIT_MS / 1000)  # a stream that does not answer
        raise PoseAppError(f"{spec} did not answer")

    window.source_opener = hanging_open
    window.open_source("rtsp://stalled")
    stalled = window.capture
    # Switching sources returns at once: the GUI thread does not wait for the hung open.
    window.source_opener = open_source
    window.open_source(walk)
    assert stalled.is_running()
    result = wait_for_result(qtbot, window)
    assert result.frame.source == walk and stalled.is_running()
    answer.set()
    assert stalled.wait(WAIT_MS / 1000)
    qtbot.waitUntil(lambda: window.source_info is not None, timeout=WAIT_MS)
    assert window.message_text() == ""  # the abandoned source's failure is not reported

    # Quitting while a source hangs in read() does not wait for it either.
    data = threading.Event()
    window.source_opener = lambda spec, **options: UnpluggedCamera(walk, range(3), data, 3)
    window.open_source(0)
    qtbot.waitUntil(lambda: window.capture.frames_read == 3, timeout=WAIT_MS)
    hanging = window.capture
    window.close()
    assert not window.isVisible() and hanging.is_running()
    data.set()
    assert hanging.wait(WAIT_MS / 1000)


def test_paused_changes_redraw_the_frame_and_recording_fixes_the_engine(make_window, qtbot, walk, tmp_path):
    window = make_window(max_speed=True)
    window.open_source(walk)
    wait_for_result(qtbot, window, lambda r: r.frame.index >= 10 and len(r.poses) >= 1)
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.last_result.frame.index == window.capture.last_index, timeout=WAIT_MS)
    paused = window.last_result

    # Recording: the engine controls are locked, and opening the panel computes the feature
    # outputs alone: the poses (smoothed over the frames before) and their ids stay as they are.
    window.start_recording(tmp_path / "paused.csv")
    assert not window.controls.resolution.isEnabled() and not window.controls.min_pose_score.isEnabled()
    assert "recording" in window.controls.model.toolTip()
    window.apply_settings(dataclasses.replace(window.settings, resolution=257))
    assert window.settings.resolution == AppSettings().resolution
    window.toggle_panel()
    with_panel = wait_for_result(qtbot, window, lambda r: r.panel is not None)
    assert with_panel.frame.index == paused.frame.index and with_panel.poses.features
    np.testing.assert_array_equal(with_panel.poses.keypoints, paused.poses.keypoints)
    np.testing.assert_array_equal(with_panel.poses.ids, paused.poses.ids)
    assert window.stop_recording() == 0
    assert window.controls.resolution.isEnabled() and window.controls.resolution.toolTip() == ""

    # Paused, a decoding change shows the same frame decoded anew, by the same pipeline.
    pipeline = window.inference.pipeline
    window.apply_settings(dataclasses.replace(window.settings, min_pose_score=0.99))
    strict = wait_for_result(qtbot, window, lambda r: len(r.poses) == 0)
    assert strict.frame.index == paused.frame.index and window.inference.pipeline is pipeline
    window.apply_settings(dataclasses.replace(window.settings, resolution=257))
    # A new pipeline starts with the full-frame pass: the frame at the new input size.
    resized = wait_for_result(
        qtbot, window, lambda r: r.poses.transform is not None and max(r.poses.transform.input_size) == 257
    )
    assert resized.frame.index == paused.frame.index and window.inference.pipeline is not pipeline


def test_recordings_and_snapshots_never_overwrite(make_window, qtbot, walk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert output_directory("") == tmp_path
    out = tmp_path / "out"
    out.mkdir()
    window = make_window(max_speed=True, output_dir=str(out))
    window.open_source(walk)
    wait_for_result(qtbot, window)
    for _ in range(4):  # R, R, R, R within a second or two: two recordings
        window.toggle_recording()
    assert "saved to" in window.statusBar().currentMessage()
    assert len(list(out.glob("pose-*.json"))) == len(list(out.glob("pose-*.angles.csv"))) == 2
    assert len(list(out.glob("pose-*.reps.csv"))) == 2
    assert len(list(out.glob("pose-*.csv"))) == 6  # keypoints, angles and repetitions
    snapshots = {window.save_snapshot(), window.save_snapshot()}
    assert len(snapshots) == 2 and all(path.parent == out and path.is_file() for path in snapshots)


def test_a_camera_failure_ends_the_recording_as_incomplete(make_window, qtbot, walk, tmp_path):
    window = make_window()
    unplug = threading.Event()
    window.source_opener = lambda spec, **options: UnpluggedCamera(walk, range(5), unplug, 5)
    window.open_source(0)
    wait_for_result(qtbot, window)
    window.start_recording(tmp_path / "cam.csv", tmp_path / "cam.json")
    unplug.set()
    wait_for_message(qtbot, window, "stopped delivering frames")
    assert window.recording is None and "saved to" in window.statusBar().currentMessage()
    recording = json.loads((tmp_path / "cam.json").read_text())
    assert recording["complete"] is False
    assert not window.view.has_image() and window.last_result is None  # the placeholder shows


def test_a_video_recording_of_a_file_holds_every_frame(make_window, qtbot, walk, tmp_path):
    window = make_window(loop=False)  # real-time playback
    shown = []
    window.frame_shown.connect(lambda result: shown.append(result.frame.index))
    window.open_source(walk)
    qtbot.waitUntil(lambda: window.source_info is not None, timeout=WAIT_MS)
    video_path = tmp_path / "walk.mp4"
    window.start_recording(tmp_path / "walk.csv", None, video_path)
    assert window.capture.max_speed  # every frame while recording a video
    last = window.source_info.frame_count - 1
    qtbot.waitUntil(lambda: window.capture.paused and shown[-1:] == [last], timeout=WAIT_MS)
    frames = window.stop_recording()
    assert not window.capture.max_speed
    video = cv2.VideoCapture(str(video_path))
    try:
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(window.source_info.fps, abs=0.01)
    finally:
        video.release()

    # Play after the end of the file (looping off): it starts again from the beginning.
    del shown[:]
    window.toggle_pause()
    qtbot.waitUntil(lambda: 0 in shown, timeout=WAIT_MS)
    assert shown[0] == 0


def test_a_setting_changed_just_before_recording_is_the_one_the_header_names(make_window, qtbot, walk, tmp_path):
    """The input size changed and R pressed at once, before the inference thread applied the
    change: the header names the pipeline that made the rows, and every row comes from it."""
    window = make_window(max_speed=True, loop=False, redetect_interval_s=0.0)  # a full pass on every frame
    window.open_source(walk)
    wait_for_result(qtbot, window, lambda r: r.frame.index >= 5)
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.last_result.frame.index == window.capture.last_index, timeout=WAIT_MS)
    results = []
    window.frame_shown.connect(results.append)
    window.apply_settings(dataclasses.replace(window.settings, resolution=257))
    window.start_recording(tmp_path / "r.csv", tmp_path / "r.json")  # no event processed in between
    window.toggle_pause()
    qtbot.waitUntil(lambda: len(results) >= 10, timeout=WAIT_MS)
    window.stop_recording()
    document = json.loads((tmp_path / "r.json").read_text())
    recorded = {annotation["image_id"] for annotation in document["annotations"]}
    assert len(recorded) >= 5
    input_sizes = {max(r.poses.transform.input_size) for r in results if r.frame.index in recorded}
    assert input_sizes == {document["header"]["resolution"]} == {257}


def test_the_camera_dialog_looks_for_cameras_without_freezing_the_window(qtbot, monkeypatch):
    from pose_app.gui import camera_dialog
    from pose_app.io.frame_source import CameraDescription

    probing = threading.Event()

    def slow_probe(max_index: int = 8):
        probing.wait(WAIT_MS / 1000)  # opening eight devices can take seconds
        return [CameraDescription(2, "Desk camera", 1280, 720)]

    monkeypatch.setattr(camera_dialog, "list_cameras", slow_probe)
    started = time.monotonic()
    dialog = camera_dialog.CameraDialog()
    qtbot.addWidget(dialog)
    assert time.monotonic() - started < 1.0  # the GUI thread did not wait for the probe
    open_button = dialog.buttons.button(dialog.buttons.StandardButton.Open)
    assert "Looking for cameras" in dialog.status.text() and not open_button.isEnabled()
    probing.set()
    qtbot.waitUntil(lambda: dialog.list.count() == 1, timeout=WAIT_MS)
    assert dialog.list.item(0).text() == "2: Desk camera (1280×720)" and open_button.isEnabled()
    assert dialog.status.isHidden() and dialog.choice().index == 2


def test_the_camera_dialog_says_when_no_camera_is_found(qtbot, monkeypatch):
    from pose_app.gui import camera_dialog

    monkeypatch.setattr(camera_dialog, "list_cameras", lambda max_index=8: [])
    dialog = camera_dialog.CameraDialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "No camera found" in dialog.status.text(), timeout=WAIT_MS)
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Open).isEnabled() and dialog.choice() is None


def test_mirror_view_is_a_display_setting_and_an_old_mirror_value_is_kept(make_window, tmp_path):
    old = tmp_path / "old.ini"
    old.write_text("[pose-app]\nmirror=true\n")  # stored by a version that called it "mirror"
    assert load_settings_file(old).mirror_view is True
    window = make_window()
    assert window.controls.mirror_view.text() == "Mirror the view (selfie)"
    assert not hasattr(window.settings, "mirror")


def test_a_recording_that_cannot_be_written_stops_and_says_why(make_window, qtbot, walk, tmp_path, monkeypatch):
    from pose_app.io.recording import Recording

    window = make_window(max_speed=True)
    window.open_source(walk)
    wait_for_result(qtbot, window)
    write = Recording.write
    written = []

    def disk_fills_up(self, frame, poses):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(frame.index)
        write(self, frame, poses)

    monkeypatch.setattr(Recording, "write", disk_fills_up)
    window.start_recording(tmp_path / "full.csv", tmp_path / "full.json")
    wait_for_message(qtbot, window, "recording stopped", "No space left on device")
    assert window.recording is None and window.controls.resolution.isEnabled()
    document = json.loads((tmp_path / "full.json").read_text())
    assert document["complete"] is False and document["frames_written"] == 3
    wait_for_result(qtbot, window)  # frames are still processed and shown
