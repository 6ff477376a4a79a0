"""Frame sources: real video decode, image folders, errors, and the live-capture frame logic."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from conftest import MEDIA, requires_shared
from pose_app.errors import PoseAppError
from pose_app.sources import (
    CameraSource,
    ImageSource,
    LatestFrameReader,
    VideoFileSource,
    expand_inputs,
    is_live_url,
    open_source,
)

WALK = MEDIA / "walk-640x480.mkv"  # 89 frames, 30 fps, 640x480
SKIERS = MEDIA / "skiers-multi-person.jpg"


@requires_shared
def test_video_file_decodes_every_frame_with_container_times():
    with open_source(str(WALK)) as source:
        assert isinstance(source, VideoFileSource)
        info = source.info
        frames = list(source)
    assert (info.width, info.height, info.fps, info.frame_count) == (640, 480, 30.0, 89)
    assert not info.is_live and not info.is_still
    assert len(frames) == 89
    assert [f.index for f in frames] == list(range(89))
    assert frames[0].image.shape == (480, 640, 3) and frames[0].image.dtype == np.uint8
    times = np.array([f.time_s for f in frames])
    # The mkv stores millisecond timestamps: within 1 ms of index / fps, strictly increasing.
    np.testing.assert_allclose(times, np.arange(89) / 30.0, atol=0.0011)
    assert np.all(np.diff(times) > 0)
    # Decoding in the background thread gives exactly what a plain VideoCapture gives.
    capture = cv2.VideoCapture(str(WALK))
    for _ in range(41):
        ok, expected = capture.read()
    capture.release()
    np.testing.assert_array_equal(frames[40].image, expected)


@requires_shared
def test_frame_step_and_seek():
    with VideoFileSource(WALK, frame_step=10) as source:
        indices = [f.index for f in source]
        assert indices == list(range(0, 89, 10))
        source.seek(45)
        frame = source.read()
        assert frame.index == 45 and frame.time_s == pytest.approx(1.5, abs=0.002)
        assert source.read().index == 55


@requires_shared
def test_close_while_decoder_thread_is_blocked_on_a_full_queue():
    source = open_source(str(WALK))
    source.read()
    time.sleep(0.2)  # the decode thread fills its bounded queue and waits
    source.close()
    assert not any(t.name == "video-decode" for t in threading.enumerate())
    assert source.read() is None


@requires_shared
def test_single_image_and_image_folder(tmp_path):
    with open_source(str(SKIERS)) as source:
        assert isinstance(source, ImageSource)
        assert source.info.is_still and source.info.frame_count == 1
        frame = source.read()
        assert frame.image.shape == (480, 854, 3) and frame.time_s == 0.0 and frame.index == 0
        assert source.read() is None
    # A folder of real images of two sizes: sorted by name, non-images ignored.
    image = cv2.imread(str(SKIERS))
    cv2.imwrite(str(tmp_path / "b.png"), image)
    cv2.imwrite(str(tmp_path / "a.jpg"), cv2.resize(image, (427, 240)))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(str(tmp_path)) as source:
        frames = list(source)
    assert [f.source for f in frames] == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]
    assert [f.image.shape[:2] for f in frames] == [(240, 427), (480, 854)]
    assert (source.info.width, source.info.height) == (427, 240)


@requires_shared
def test_expand_inputs_globs_and_keeps_other_specs(tmp_path):
    for name in ("x2.jpg", "x1.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    expanded = expand_inputs([str(tmp_path / "x*.jpg"), str(WALK), "0", "rtsp://cam/live", "missing.mp4"])
    assert expanded == [str(tmp_path / "x1.jpg"), str(tmp_path / "x2.jpg"), str(WALK), "0", "rtsp://cam/live", "missing.mp4"]
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


@requires_shared
def test_truncated_video_and_zero_frame_video(tmp_path):
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(WALK.read_bytes()[:3000])  # the header survives, no frame does
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


class FakeCapture:
    """A camera stand-in: frame k is filled with the value k; read() blocks until the test
    releases the next frame, like a camera waiting for its next exposure."""

    def __init__(self, frames: int):
        self.frames = frames
        self.produced = 0
        self.allowed = threading.Semaphore(0)
        self.released = False

    def read(self):
        self.allowed.acquire()
        if self.produced >= self.frames:
            return False, None
        image = np.full((4, 6, 3), self.produced, np.uint8)
        self.produced += 1
        return True, image

    def release(self):
        self.released = True


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
    _wait_until(lambda: capture.produced == 3)
    time.sleep(0.05)
    frame = reader.read()
    assert frame.index == 2 and frame.image[0, 0, 0] == 2
    assert frame.time_s == pytest.approx(1.0)  # seconds since the first frame, from the clock
    # Nothing new yet: read() waits for the next frame instead of repeating frame 2.
    threading.Timer(0.1, capture.allowed.release).start()
    frame = reader.read()
    assert frame.index == 3 and frame.image[0, 0, 0] == 3
    # The capture ends: read() returns None.
    for _ in range(4):
        capture.allowed.release()
    _wait_until(lambda: capture.produced == 6)
    assert reader.read().index == 5
    assert reader.read() is None
    reader.close()
    assert capture.released


def test_latest_frame_reader_times_out_with_a_clear_error():
    capture = FakeCapture(frames=1)
    reader = LatestFrameReader(capture, "silent camera")
    with pytest.raises(PoseAppError, match="silent camera delivered no frame"):
        reader.read(timeout_s=0.1)
    capture.allowed.release()
    capture.allowed.release()
    reader.close()
