"""The desktop app driven for real (offscreen): video in, poses on screen, panel, recording, errors."""

import csv
import dataclasses
import threading

import cv2
import numpy as np
import pytest

from pose_app import cli
from pose_app.engine import PROVIDER_ALIASES, available_providers
from pose_app.errors import PoseAppError
from pose_app.export import LONG_CSV_COLUMNS
from pose_app.featuremaps import shrink
from pose_app.gui.capture_worker import CapturedFrame, CaptureWorker, FrameMailbox
from pose_app.gui.main_window import MainWindow
from pose_app.gui.settings import AppSettings, file_store, load_settings_file, read_settings, save_settings_file
from pose_app.skeleton import KEYPOINT_NAMES
from pose_app.sources import Frame, VideoFileSource

WAIT_MS = 60_000  # generous: the CI machine may be busy


@pytest.fixture
def walk(shared_dir):
    return str(shared_dir / "media" / "walk-640x480.mkv")


@pytest.fixture
def make_window(qtbot, tmp_path):
    def make(**settings) -> MainWindow:
        window = MainWindow(file_store(tmp_path / "settings.ini"), AppSettings(**settings))
        qtbot.addWidget(window)
        window.resize(1200, 760)
        window.show()
        qtbot.waitUntil(lambda: window.engine is not None, timeout=WAIT_MS)
        return window

    return make


def wait_for_result(qtbot, window, condition=lambda result: True):
    """The next shown result satisfying `condition`."""
    seen = []
    window.frame_shown.connect(seen.append)
    try:
        qtbot.waitUntil(lambda: any(condition(r) for r in seen), timeout=WAIT_MS)
    finally:
        window.frame_shown.disconnect(seen.append)
    return next(r for r in seen if condition(r))


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
    decoded frames from a video file, reported as live."""

    def __init__(self, path: str, frames: int):
        self._video = VideoFileSource(path)
        self.info = dataclasses.replace(self._video.info, is_live=True, frame_count=None)
        self._left = frames

    def read(self):
        self._left -= 1
        return self._video.read() if self._left >= 0 else None

    def seek(self, frame_index):
        raise PoseAppError("live")

    def close(self):
        self._video.close()


def test_camera_unplugged_mid_stream_is_reported(qtbot, walk):
    mailbox = FrameMailbox()
    worker = CaptureWorker(0, mailbox, opener=lambda spec, **options: UnpluggedCamera(walk, 5))
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
    window = make_window(realtime=False)
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

    window.toggle_mirror()
    mirrored = wait_for_result(qtbot, window, lambda r: r.mirrored)
    assert mirrored.frame.index == base
    # Inference ran on the unmirrored frame: the poses (and their left/right labels) are unchanged.
    np.testing.assert_array_equal(mirrored.poses.keypoints, stepped_back.poses.keypoints)
    height, width = mirrored.view.shape[:2]
    shown = shrink(mirrored.frame.image, (width, height)).astype(np.int16)
    view = mirrored.view.astype(np.int16)
    assert np.abs(view - cv2.flip(shown, 1)).mean() < np.abs(view - shown).mean() / 3


def test_feature_panel_requests_features_only_while_visible(make_window, qtbot, walk):
    window = make_window(realtime=False)
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


def test_recording_csv_and_snapshot(make_window, qtbot, walk, tmp_path):
    window = make_window(realtime=False)
    window.open_source(walk)
    wait_for_result(qtbot, window, lambda r: len(r.poses) >= 1)
    csv_path = tmp_path / "poses.csv"
    window.start_recording(csv_path)
    shown = []
    window.frame_shown.connect(shown.append)
    qtbot.waitUntil(lambda: len(shown) >= 10, timeout=WAIT_MS)
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


def test_settings_persist_and_round_trip_through_a_file(make_window, qtbot, tmp_path):
    window = make_window()
    window.toggle_mirror()
    window.apply_settings(dataclasses.replace(window.settings, channel_count=9, keypoint_threshold=0.55))
    window.close()
    stored = read_settings(file_store(tmp_path / "settings.ini"))
    assert stored.mirror and stored.channel_count == 9 and stored.keypoint_threshold == pytest.approx(0.55)

    saved = tmp_path / "mine.ini"
    save_settings_file(saved, dataclasses.replace(stored, model="posenet-050", realtime=False))
    loaded = load_settings_file(saved)
    assert loaded.model == "posenet-050" and loaded.realtime is False and loaded.mirror is True
    not_settings = tmp_path / "other.ini"
    not_settings.write_text("[something]\nx=1\n")
    with pytest.raises(PoseAppError, match="not a pose-app settings file"):
        load_settings_file(not_settings)


def test_command_line_screenshot_automation(qapp, walk, tmp_path, capsys):
    out = tmp_path / "shot.png"
    settings = str(tmp_path / "settings.ini")
    code = cli.main(["--source", walk, "--panel", "--max-speed", "--screenshot", str(out),
                     "--quit-after-frames", "5", "--settings", settings])
    assert code == 0
    assert "displayed 5 frames" in capsys.readouterr().out
    shot = cv2.imread(str(out))
    assert shot is not None and shot.shape[0] >= 400 and shot.shape[1] >= 800

    code = cli.main(["--source", str(tmp_path / "missing.mp4"), "--quit-after-frames", "3", "--settings", settings])
    assert code == 2
    assert "input not found" in capsys.readouterr().err


def test_keyboard_shortcuts_drive_the_window(make_window, qtbot):
    from PySide6.QtCore import Qt

    from pose_app.gui.main_window import SHORTCUTS

    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.settings.mirror and window.controls.mirror.isChecked()
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
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window()
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(walk)])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.source_spec == walk
    qtbot.waitUntil(lambda: window.source_info is not None and window.source_info.width == 640, timeout=WAIT_MS)
