"""A camera stand-in for tests: a generated clip (tests/media.py) read like a webcam."""

from __future__ import annotations

import time
from pathlib import Path

import cv2


class FileAsCamera:
    """A generated clip that behaves like a camera (patch it in for `live_sources.quiet_open`): read()
    returns the clip's frames paced at `fps` of wall-clock time, dropped ones are gone, and
    CAP_PROP_FPS reports `fps`. The real CameraSource and LatestFrameReader run on it."""

    def __init__(self, path: Path, fps: float):
        self._capture = cv2.VideoCapture(str(path))
        self._fps = fps
        self._due: float | None = None

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoCapture's name
        return self._capture.isOpened()

    def set(self, prop: int, value: float) -> bool:
        return False  # like a camera that keeps its own mode

    def get(self, prop: int) -> float:
        return self._fps if prop == cv2.CAP_PROP_FPS else self._capture.get(prop)

    def read(self):
        now = time.monotonic()
        if self._due is not None and now < self._due:
            time.sleep(self._due - now)
        self._due = max(now, self._due or now) + 1 / self._fps
        return self._capture.read()

    def release(self) -> None:
        self._capture.release()
