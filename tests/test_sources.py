"""Frame sources: real video decode, image folders, errors, and the live-capture frame logic.

The videos and images are generated from the photo in tests/data (tests/media.py)."""

from __future__ import annotations

import socket
import threading
import time

import cv2
import numpy as np
import pytest
from cameras import FileAsCamera
from support import http_server

from pose_app.errors import PoseAppError, one_line
from pose_app.io import live_sources, url_check
from pose_app.io.live_sources import CameraSource, LatestFrameReader
from pose_app.io.sources import (
    ImageSource,
    VideoFileSource,
    expand_inputs,
    is_live_url,
    open_source,
)
from pose_app.io.url_check import url_problem
from pose_app.run.runner import expected_frames


def test_video_file_decodes_every_frame_with_container_times(walk_clip):
    with open_source(str(walk_clip)) as source:
        assert isinstance(source, VideoFileSource)
        info = source.info
        frames = list(source)
    assert (info.width, info.height, info.fps, info.frame_count) == (640, 480, 30.0, 60)
    assert not info.is_live and not info.is_still
    assert len(frames) == 60
    assert [f.index for f in frames] == list(range(60))
    assert frames[0].image.shape == (480, 640, 3) and frames[0].image.dtype == np.uint8
    times = np.array([f.time_s for f in frames])
    # The mkv stores millisecond timestamps: within 1 ms of index / fps, strictly increasing.
    np.testing.assert_allclose(times, np.arange(60) / 30.0, atol=0.0011)
    assert np.all(np.diff(times) > 0)
    # Decoding in the background thread gives exactly what a plain VideoCapture gives.
    capture = cv2.VideoCapture(str(walk_clip))
    for _ in range(41):
        ok, expected = capture.read()
    capture.release()
    np.testing.assert_array_equal(frames[40].image, expected)
    # And that is frame 40 as it was written (up to JPEG loss), not one of its neighbours:
    # the walker moves 4 px a frame.
    error = {i: np.abs(frames[40].image.astype(np.int16) - walk_clip.render(i)).mean() for i in (39, 40, 41)}
    assert error[40] < 3 and error[40] < min(error[39], error[41]) / 2, error


def test_frame_step_and_seek(walk_clip):
    with VideoFileSource(walk_clip.path, frame_step=10) as source:
        indices = [f.index for f in source]
        assert indices == list(range(0, 60, 10))
        source.seek(45)
        frame = source.read()
        assert frame.index == 45 and frame.time_s == pytest.approx(1.5, abs=0.002)
        assert source.read().index == 55


def test_close_while_decoder_thread_is_blocked_on_a_full_queue(walk_clip):
    source = open_source(str(walk_clip))
    source.read()
    _wait_until(source._queue.full)  # the decode thread filled its bounded queue and waits
    source.close()
    assert not any(t.name == "video-decode" for t in threading.enumerate())
    assert source.read() is None


def test_single_image_and_image_folder(tmp_path, group_image):
    with open_source(str(group_image)) as source:
        assert isinstance(source, ImageSource)
        assert source.info.is_still and source.info.frame_count == 1
        frame = source.read()
        assert frame.image.shape == (480, 854, 3) and frame.time_s == 0.0 and frame.index == 0
        assert source.read() is None
    # A folder of real images of two sizes: sorted by name, non-images ignored.
    image = cv2.imread(str(group_image))
    cv2.imwrite(str(tmp_path / "b.png"), image)
    cv2.imwrite(str(tmp_path / "a.jpg"), cv2.resize(image, (427, 240)))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(str(tmp_path)) as source:
        frames = list(source)
    assert [f.source for f in frames] == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]
    assert [f.image.shape[:2] for f in frames] == [(240, 427), (480, 854)]
    assert (source.info.width, source.info.height) == (427, 240)


def test_image_folder_with_a_step_counts_every_image_like_a_video(tmp_path):
    for number in range(5):
        cv2.imwrite(str(tmp_path / f"{number}.png"), np.full((8, 12, 3), 50 * number, np.uint8))
    with open_source(str(tmp_path), frame_step=2) as source:
        frames = list(source)
        info = source.info
        # frame_count is the folder's size (as a video's is its length), so the progress total
        # divides by the step once: 5 images, step 2 -> 3 frames.
        assert info.frame_count == 5 and expected_frames(info, 0.0, None, 2) == len(frames) == 3
        assert [f.index for f in frames] == [0, 2, 4]
        assert [int(f.image[0, 0, 0]) for f in frames] == [0, 100, 200]
        source.seek(3)  # on to the next delivered image at or after 3
        assert source.read().index == 4 and source.read() is None
    for step in (0, -1):
        with pytest.raises(PoseAppError, match="frame step must be >= 1"):
            open_source(str(tmp_path), frame_step=step)


def test_one_line_keeps_the_first_non_empty_line():
    multi_line = cv2.error("\nOpenCV(5.0.0) cap.cpp:1: error: (-2:Unspecified error) read failed\n  in read\n")
    assert one_line(multi_line) == "OpenCV(5.0.0) cap.cpp:1: error: (-2:Unspecified error) read failed"
    assert one_line(ValueError("")) == "ValueError"


class FailingRead:
    """A real capture whose read() fails the way OpenCV does: a cv2.error over several lines."""

    def __init__(self, capture):
        self._capture = capture

    def read(self):
        raise cv2.error("OpenCV(5.0.0) cap_ffmpeg.cpp:1: error: (-2) decoder failed\n  at frame 1\n")

    def __getattr__(self, name):
        return getattr(self._capture, name)


def test_a_decode_thread_error_is_a_one_line_error(tmp_path):
    path = tmp_path / "small.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for value in range(3):
        writer.write(np.full((24, 32, 3), 60 * value, np.uint8))
    writer.release()
    with open_source(str(path)) as source:
        source._capture = FailingRead(source._capture)  # frame 0 was read at open; frame 1 fails
        assert source.read().index == 0
        with pytest.raises(PoseAppError) as error:
            source.read()
    assert str(error.value) == f"decoding {path} failed: OpenCV(5.0.0) cap_ffmpeg.cpp:1: error: (-2) decoder failed"


def test_expand_inputs_globs_and_keeps_other_specs(tmp_path, walk_clip):
    walk = str(walk_clip)
    for name in ("x2.jpg", "x1.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    expanded = expand_inputs([str(tmp_path / "x*.jpg"), walk, "0", "rtsp://cam/live", "missing.mp4"])
    assert expanded == [str(tmp_path / "x1.jpg"), str(tmp_path / "x2.jpg"), walk, "0", "rtsp://cam/live", "missing.mp4"]
    with pytest.raises(PoseAppError, match="no files match"):
        expand_inputs([str(tmp_path / "*.mp4")])


def test_live_url_detection():
    assert is_live_url("rtsp://192.168.0.2:554/stream")
    assert not is_live_url("http://example.org/clip.mp4")
    assert not is_live_url("/videos/clip.mp4")


def test_missing_corrupt_and_truncated_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(PoseAppError, match="input not found"):
        open_source(str(tmp_path / "nothing.mp4"))
    corrupt = tmp_path / "random.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(PoseAppError, match="cannot open .*random.mp4"):
        open_source(str(corrupt))
    with pytest.raises(PoseAppError, match="cannot decode image"):
        open_source(str(corrupt.rename(tmp_path / "random.png")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PoseAppError, match="no images"):
        open_source(str(tmp_path / "empty"))


def test_truncated_video_and_zero_frame_video(tmp_path, walk_clip):
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(walk_clip.path.read_bytes()[:3000])  # the header survives, no frame does
    with pytest.raises(PoseAppError, match="no decodable frames"):
        open_source(str(truncated))
    empty = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    writer.release()  # a container with zero frames
    with pytest.raises(PoseAppError, match=r"empty\.mp4"):
        open_source(str(empty))


def test_unavailable_camera_is_a_clear_error():
    with pytest.raises(PoseAppError, match="camera 99 is not available"):
        CameraSource(99)
    with pytest.raises(PoseAppError, match="camera 99"):
        open_source("99")


def test_on_macos_an_unavailable_camera_says_where_the_permission_is(monkeypatch):
    # macOS answers a terminal it did not allow as if there were no camera.
    monkeypatch.setattr(live_sources.sys, "platform", "darwin")
    with pytest.raises(PoseAppError, match=r"camera 99 is not available .*Privacy & Security > Camera") as error:
        CameraSource(99)
    assert "\n" not in str(error.value)


def test_a_camera_delivers_every_nth_frame_with_the_cameras_frame_numbers(walk_clip, monkeypatch):
    monkeypatch.setattr(live_sources, "quiet_open", lambda spec, backend=None: FileAsCamera(walk_clip.path, fps=60))
    with open_source(0, frame_step=4) as source:
        assert isinstance(source, CameraSource) and source.info.is_live
        indices = [frame.index for frame in iter(source.read, None)]
    # 59 frames after the one the camera opened with; a slow reader may miss some, never a step.
    assert len(indices) >= 5 and indices == sorted(set(indices))
    assert all(index % 4 == 0 for index in indices), indices


class FakeCapture:
    """A camera stand-in: frame k is filled with the value k; read() blocks until the test
    releases the next frame, like a camera waiting for its next exposure. It counts read()
    calls (a call that has started proves the reader published the frame before it) and
    records whether release() ever came while a read() was in progress."""

    def __init__(self, frames: int):
        self.frames = frames
        self.produced = 0
        self.read_calls = 0
        self.reading = False
        self.allowed = threading.Semaphore(0)
        self.release_calls = 0
        self.released_during_read = False

    def read(self):
        self.read_calls += 1
        self.reading = True
        try:
            self.allowed.acquire()
            if self.produced >= self.frames:
                return False, None
            image = np.full((4, 6, 3), self.produced, np.uint8)
            self.produced += 1
            return True, image
        finally:
            self.reading = False

    def release(self):
        self.released_during_read |= self.reading
        self.release_calls += 1


def _wait_until(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_latest_frame_reader_skips_stale_frames_and_never_repeats():
    capture = FakeCapture(frames=6)
    clock_values = iter(np.arange(100.0, 200.0, 0.5))
    reader = LatestFrameReader(capture, "fake camera", clock=lambda: next(clock_values))
    # Three frames arrive while the consumer is busy: it gets only the newest.
    for _ in range(3):
        capture.allowed.release()
    _wait_until(lambda: capture.read_calls == 4)  # frames 0-2 read and published
    frame = reader.read()
    assert frame.index == 2 and frame.image[0, 0, 0] == 2
    assert frame.time_s == pytest.approx(1.0)  # seconds since the first frame, from the clock
    # Nothing new yet: read() waits for the next frame instead of repeating frame 2.
    threading.Timer(0.1, capture.allowed.release).start()
    frame = reader.read()
    assert frame.index == 3 and frame.image[0, 0, 0] == 3
    # The capture ends (the 7th read fails): read() returns None.
    for _ in range(3):
        capture.allowed.release()
    _wait_until(lambda: capture.read_calls == 7)  # frames 4 and 5 published
    assert reader.read().index == 5
    assert reader.read() is None
    reader.close()
    assert capture.release_calls == 1 and not capture.released_during_read


def test_closing_during_a_stalled_read_releases_only_when_the_read_returns():
    capture = FakeCapture(frames=5)
    reader = LatestFrameReader(capture, "stalled stream")
    _wait_until(lambda: capture.reading)  # the reader thread is inside read(), which hangs
    reader.close(wait_s=0.05)  # returns although the read has not
    assert capture.release_calls == 0  # releasing under a running read() is undefined in OpenCV
    capture.allowed.release()  # the stalled read finally returns
    _wait_until(lambda: capture.release_calls == 1)
    assert not capture.released_during_read
    _wait_until(lambda: not any(t.name == "capture-stalled stream" for t in threading.enumerate()))


def test_latest_frame_reader_times_out_with_a_clear_error():
    capture = FakeCapture(frames=1)
    reader = LatestFrameReader(capture, "silent camera")
    with pytest.raises(PoseAppError, match="silent camera delivered no frame"):
        reader.read(timeout_s=0.1)
    capture.allowed.release()
    capture.allowed.release()
    reader.close()


# --- URLs that do not open: the network's reason, the codec only when bytes came --------------


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_a_url_where_nothing_listens_says_the_server_could_not_be_reached(scheme):
    port = free_loopback_port()
    url = f"{scheme}://127.0.0.1:{port}/x.mp4"
    with pytest.raises(PoseAppError) as error:
        open_source(url)
    assert str(error.value).endswith(
        f"{url}: the server could not be reached: connection refused by 127.0.0.1:{port} (nothing listens on that port)")
    assert "codec" not in str(error.value)


def test_a_url_the_server_does_not_have_gives_its_answer_and_bytes_that_are_no_video_the_codec(tmp_path):
    (tmp_path / "notes.mp4").write_bytes(b"this is not a video" * 100)
    with http_server(tmp_path) as base:
        with pytest.raises(PoseAppError, match=r"x\.mp4: the server answered 404 File not found$"):
            open_source(f"{base}/x.mp4")
        with pytest.raises(PoseAppError, match=r"notes\.mp4: not a video, or a format/codec OpenCV cannot read$"):
            open_source(f"{base}/notes.mp4")


def test_a_host_that_is_not_found_and_a_server_that_does_not_answer(monkeypatch):
    # Checked on the network check alone: no name is looked up, no packet leaves this machine.
    def no_such_host(host, port, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(url_check.socket, "getaddrinfo", no_such_host)
    assert url_problem("rtsp://camera.invalid/live") == "host not found: camera.invalid (Name or service not known)"
    monkeypatch.undo()

    def silent(address, timeout):
        raise TimeoutError

    monkeypatch.setattr(url_check.socket, "create_connection", silent)
    assert url_problem("http://127.0.0.1:8/clip.mp4", timeout_s=2) == (
        "the server could not be reached: no answer from 127.0.0.1:8 within 2 s (timeout)")
    assert url_problem("udp://127.0.0.1:8") is None  # connectionless: nothing to ask
