"""The annotated video: frames with their poses drawn, into a video file or image files.

A video file must stay playable whatever stops the program (a kill, a crash, a power cut): a
plain MP4 keeps its index (the moov box) for the very end and is unplayable without it. So the
MP4 family (.mp4, .m4v, .mov) is written as fragmented MP4: FFmpeg's Smooth Streaming muxer
(`ismv`) puts an empty index up front and then self-contained fragments, one per keyframe, which
players open up to the last fragment written. Matroska (.mkv) and AVI (.avi) can be read without
their index. OpenCV's writer picks FFmpeg's muxer by the file name's suffix and has no option to
ask for fragments, so it writes through a hard link named `.ismv` made beside the file for the
moment it opens it (`_container_alias`).

OpenCV's writer does not report failed writes, so once closed the file is opened again and its
frames counted: fewer than were written (a full disk, a quota, an I/O error) is a PoseAppError.
The file goes through output_files like every output: checked, locked, never an input.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import cv2
import numpy as np

from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.draw.render import OverlayStyle, draw_poses
from pose_app.errors import PoseAppError
from pose_app.io.output_files import (
    NO_INPUTS,
    FileIdentity,
    check_output_path,
    open_output_fd,
    write_whole,
    written_path,
)

# The annotated video's codec, by file suffix.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
IMAGE_OUTPUT_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
# The FFmpeg muxer's suffix, where it is not the file's own: fragmented MP4 (see the docstring).
CONTAINER_SUFFIXES = {".mp4": ".ismv", ".m4v": ".ismv", ".mov": ".ismv"}


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


def frame_image_path(path: Path, frame_index: int) -> Path:
    """Where an image list's annotated picture of frame `frame_index` goes (`--video x.png`)."""
    return path.with_name(f"{path.stem}-{frame_index:06d}{path.suffix}")


def frames_in_video(path: str | Path) -> int:
    """How many frames a video file holds as FFmpeg reads it (0 when it cannot be opened)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))) if capture.isOpened() else 0
    finally:
        capture.release()


def _container_alias(target: Path) -> Path | None:
    """A second name of `target` ending in its container's suffix, for OpenCV to open (None when
    the target's own suffix already names it, or the folder allows no links: then the file is
    written in the container its suffix names)."""
    container = CONTAINER_SUFFIXES.get(target.suffix.lower())
    if container is None:
        return None
    alias = target.with_name(f".{target.stem}.pose-app-{os.getpid()}-{secrets.token_hex(4)}{container}")
    # A hard link names the very file checked and locked; a symlink (in the same folder) where a
    # filesystem has no hard links.
    for make_link, source in ((os.link, target), (os.symlink, target.name)):
        try:
            make_link(source, alias)
            return alias
        except (OSError, NotImplementedError):
            continue
    return None


class AnnotatedVideoWriter:
    """Frames with their poses drawn, into a video file of `size` (w, h) at `fps` (or, for an
    image suffix such as .png, images: the path itself for a single still, else
    `<stem>-<frame>.png` per frame). `inputs`: the run's input files, which it never writes."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, style: OverlayStyle, single_image: bool,
                 inputs: frozenset[FileIdentity] = NO_INPUTS):
        check_video_suffix(path)
        check_output_path(path, inputs)
        self.path = path
        self.frames_written = 0
        self._inputs = inputs
        self._style = style
        self._size = size
        self._single_image = single_image
        self._writer: cv2.VideoWriter | None = None
        self._lock: int | None = None
        suffix = path.suffix.lower()
        if suffix in IMAGE_OUTPUT_SUFFIXES:
            return
        self._lock = open_output_fd(path, inputs)  # held until closed: no second run writes it meanwhile
        target = written_path(path)
        alias = _container_alias(target)
        try:
            self._writer = cv2.VideoWriter(str(alias or target), cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix]), fps, self._size)
        finally:
            if alias is not None:
                with contextlib.suppress(OSError):
                    os.unlink(alias)
        if not self._writer.isOpened():
            self._writer.release()
            self._writer = None
            self._release_lock()
            raise PoseAppError(f"cannot write video {path}: OpenCV could not open a {suffix} writer")

    def write(self, frame: Frame, poses: FramePoses) -> None:
        canvas = frame.image.copy()
        draw_poses(canvas, poses, self._style)
        if self._writer is not None:
            self._writer.write(fit_into_frame(canvas, self._size))
            self.frames_written += 1
            return
        path = self.path if self._single_image else frame_image_path(self.path, frame.index)
        ok, data = cv2.imencode(path.suffix, canvas)
        if not ok:
            raise PoseAppError(f"cannot encode image {path}")
        write_whole(path, data.tobytes(), self._inputs)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file; PoseAppError when it holds fewer frames than were written to it."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        try:
            if self.frames_written:
                held = frames_in_video(written_path(self.path))
                if held < self.frames_written:
                    raise PoseAppError(
                        f"writing the annotated video {self.path} failed: it holds {held} of the {self.frames_written} "
                        "frames written (disk full?)"
                    )
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
