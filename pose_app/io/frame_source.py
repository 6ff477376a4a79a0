"""What every frame source is: the small interface the frame loop reads (`FrameSource`) and the
plumbing the concrete sources share (io/sources.py: files and images; io/live_sources.py:
cameras and live stream URLs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2

from pose_app.core.frames import Frame, SourceInfo
from pose_app.errors import PoseAppError


@dataclass(frozen=True)
class CameraDescription:
    index: int
    name: str
    width: int
    height: int


class FrameSource(Protocol):
    """Iterate frames with read() until None; a context manager; errors are PoseAppError."""

    info: SourceInfo

    def read(self) -> Frame | None: ...

    def seek(self, frame_index: int) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc: object) -> None: ...


class ClosingSource:
    """Context-manager and iterator plumbing shared by the concrete sources."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]

    def __iter__(self):
        while (frame := self.read()) is not None:  # type: ignore[attr-defined]
            yield frame


def check_frame_step(frame_step: int) -> None:
    if frame_step < 1:
        raise PoseAppError(f"frame step must be >= 1, got {frame_step}")


def quiet_open(spec: str | int, backend: int | None = None) -> cv2.VideoCapture:
    """cv2.VideoCapture without OpenCV's multi-line warnings: we report failures ourselves."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(spec, backend) if backend is not None else cv2.VideoCapture(spec)
    finally:
        cv2.utils.logging.setLogLevel(previous)
