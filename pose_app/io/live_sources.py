"""Live sources: local cameras and real-time stream URLs (rtsp://, udp://...), read newest frame
first by a background thread so that a slow consumer never works through a backlog."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2

from pose_app.core.frames import Frame, SourceInfo
from pose_app.errors import PoseAppError
from pose_app.io.frame_source import CameraDescription, ClosingSource, check_frame_step, quiet_open
from pose_app.io.url_check import DEFAULT_PORTS, url_problem


class LatestFrameReader:
    """Reads a live capture in a background thread and keeps only the newest frame, so a slow
    consumer always gets the current picture instead of an ever-growing backlog.

    capture: anything with read() -> (ok, image) and release(), e.g. cv2.VideoCapture.
    frame_step: only every frame_step-th frame the capture delivers (index 0, step, 2 step...)
    is kept; the others are read and dropped.
    """

    def __init__(self, capture: Any, name: str, clock: Callable[[], float] = time.monotonic, frame_step: int = 1):
        check_frame_step(frame_step)
        self._capture = capture
        self._name = name
        self._clock = clock
        self._step = frame_step
        self._condition = threading.Condition()
        self._latest: Frame | None = None
        self._delivered_index = -1
        self._ended = False
        self._stop = False
        self._start_time: float | None = None
        self._thread = threading.Thread(target=self._grab_loop, name=f"capture-{name}", daemon=True)
        self._thread.start()

    def _grab_loop(self) -> None:
        """Runs in the reader thread, which alone touches the capture: it also releases it, so
        release() never runs while read() is still inside the capture."""
        try:
            self._publish_frames()
        finally:
            self._capture.release()

    def _publish_frames(self) -> None:
        index = 0
        while True:
            ok, image = self._capture.read()
            now = self._clock()
            with self._condition:
                if self._stop:
                    return
                if not ok or image is None:
                    self._ended = True
                    self._condition.notify_all()
                    return
                if index % self._step == 0:
                    if self._start_time is None:
                        self._start_time = now
                    self._latest = Frame(image, index, now - self._start_time, self._name)
                    self._condition.notify_all()
            index += 1

    def _has_new_frame(self) -> bool:
        return self._latest is not None and self._latest.index > self._delivered_index

    def read(self, timeout_s: float = 10.0) -> Frame | None:
        """The newest frame not delivered before (waits for one); None when the capture ended."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._has_new_frame() or self._ended, timeout=timeout_s):
                raise PoseAppError(f"{self._name} delivered no frame for {timeout_s:.0f} s")
            if not self._has_new_frame():
                return None
            self._delivered_index = self._latest.index
            return self._latest

    def close(self, wait_s: float = 2.0) -> None:
        """Stop reading. Waits up to wait_s for the reader thread; a thread stuck in a stalled
        read() (a dead network stream) is left to release the capture when that read returns,
        and being a daemon it cannot keep the program from exiting."""
        with self._condition:
            self._stop = True
        self._thread.join(timeout=wait_s)


class LiveCaptureSource(ClosingSource):
    """A capture read with LatestFrameReader (cameras and live stream URLs)."""

    def _start_live(self, capture: cv2.VideoCapture, name: str, frame_step: int) -> None:
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise PoseAppError(f"{name} opened but delivered no frame")
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.info = SourceInfo(
            name=name,
            width=first.shape[1],
            height=first.shape[0],
            fps=fps if 0 < fps < 1000 else None,
            frame_count=None,
            is_live=True,
            is_still=False,
        )
        self._reader = LatestFrameReader(capture, name, frame_step=frame_step)

    def read(self) -> Frame | None:
        return self._reader.read()

    def seek(self, frame_index: int) -> None:
        raise PoseAppError(f"{self.info.name} is live: it cannot seek")

    def close(self) -> None:
        self._reader.close()


# Where a camera that is there but refused to this program is allowed (macOS asks once per
# terminal program; a refusal looks to OpenCV like no camera at all).
_CAMERA_PERMISSION = {
    "darwin": "; on macOS, allow your terminal to use the camera in System Settings > Privacy & Security > "
              "Camera, then start it again",
}


class CameraSource(LiveCaptureSource):
    """A local camera by index, optionally asking for a size and frame rate (the camera may
    choose the nearest it supports; info reports what it delivers). frame_step: deliver only
    every frame_step-th frame the camera delivers."""

    def __init__(
        self,
        index: int,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        backend: int | None = None,
        frame_step: int = 1,
    ):
        check_frame_step(frame_step)
        name = f"camera {index}"
        capture = quiet_open(index, backend)
        if not capture.isOpened():
            capture.release()
            permission = _CAMERA_PERMISSION.get(sys.platform, "")
            raise PoseAppError(f"{name} is not available (no such device, or it is in use){permission}")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height), (cv2.CAP_PROP_FPS, fps)):
            if value:
                capture.set(prop, value)
        self._start_live(capture, name, frame_step)


class LiveUrlSource(LiveCaptureSource):
    """A live network stream (rtsp://, rtmp://, udp://...): newest frame first, never a backlog.
    frame_step: deliver only every frame_step-th frame the stream delivers."""

    def __init__(self, url: str, frame_step: int = 1):
        check_frame_step(frame_step)
        capture = quiet_open(url)
        if not capture.isOpened():
            capture.release()
            problem = url_problem(url)
            if problem is None:
                problem = ("the server answered, but no stream opened there (a wrong path or credentials, or a "
                           "format OpenCV cannot read)") if urlsplit(url).scheme.lower() in DEFAULT_PORTS else (
                           "nothing was received (a wrong address or port, or a format OpenCV cannot read)")
            raise PoseAppError(f"cannot open stream {url}: {problem}")
        self._start_live(capture, url, frame_step)


def _camera_name(index: int) -> str:
    """The device's name from Linux sysfs when there is one."""
    sysfs = Path(f"/sys/class/video4linux/video{index}/name")
    try:
        return sysfs.read_text().strip() or f"Camera {index}"
    except OSError:
        return f"Camera {index}"


def list_cameras(max_index: int = 8) -> list[CameraDescription]:
    """Cameras that open and deliver a frame, among indices 0..max_index-1."""
    cameras = []
    for index in range(max_index):
        capture = quiet_open(index)
        try:
            if not capture.isOpened():
                continue
            ok, image = capture.read()
            if ok and image is not None:
                cameras.append(CameraDescription(index, _camera_name(index), image.shape[1], image.shape[0]))
        finally:
            capture.release()
    return cameras
