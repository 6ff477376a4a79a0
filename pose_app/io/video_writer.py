"""The annotated video: frames with their poses drawn, into a video file or image files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.draw.render import OverlayStyle, draw_poses
from pose_app.errors import PoseAppError
from pose_app.io.formats import check_writable

# The annotated video's codec, by file suffix.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
IMAGE_OUTPUT_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})


def check_video_suffix(path: Path) -> None:
    """PoseAppError unless path's suffix is one the annotated-video writer knows."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_CODECS and suffix not in IMAGE_OUTPUT_SUFFIXES:
        choices = ", ".join(sorted(VIDEO_CODECS) + sorted(IMAGE_OUTPUT_SUFFIXES))
        raise PoseAppError(f"cannot write video {path}: unknown suffix (use one of {choices})")


def fit_into_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """image scaled to fit inside size (w, h), keeping its aspect, centred on black (so image
    lists of mixed sizes can go into one video of fixed size)."""
    width, height = size
    if image.shape[1] == width and image.shape[0] == height:
        return image
    scale = min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))))
    pad_x, pad_y = width - resized.shape[1], height - resized.shape[0]
    return cv2.copyMakeBorder(resized, pad_y // 2, pad_y - pad_y // 2, pad_x // 2, pad_x - pad_x // 2, cv2.BORDER_CONSTANT)


class AnnotatedVideoWriter:
    """Frames with their poses drawn, into a video file of `size` (w, h) at `fps` (or, for an
    image suffix such as .png, images: the path itself for a single still, else
    `<stem>-<frame>.png` per frame)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, style: OverlayStyle, single_image: bool):
        check_writable(path)
        check_video_suffix(path)
        self.path = path
        self._style = style
        self._size = size
        self._single_image = single_image
        self._writer: cv2.VideoWriter | None = None
        suffix = path.suffix.lower()
        if suffix in IMAGE_OUTPUT_SUFFIXES:
            return
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix]), fps, self._size)
        if not self._writer.isOpened():
            self.close()
            raise PoseAppError(f"cannot write video {path}: OpenCV could not open a {suffix} writer")

    def write(self, frame: Frame, poses: FramePoses) -> None:
        canvas = frame.image.copy()
        draw_poses(canvas, poses, self._style)
        if self._writer is not None:
            self._writer.write(fit_into_frame(canvas, self._size))
            return
        path = self.path if self._single_image else self.path.with_name(f"{self.path.stem}-{frame.index:06d}{self.path.suffix}")
        if not cv2.imwrite(str(path), canvas):
            raise PoseAppError(f"cannot write image {path}")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
