"""Frame sources: video files, stream URLs, still images (file, folder, glob) and cameras.

Every source yields `Frame`s (BGR uint8 image, frame index, media time) through the same small
interface, and turns every open/decode problem into a one-line `PoseAppError`.
"""

from __future__ import annotations

import glob
import os
import queue
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pose_app.core.frames import Frame, SourceInfo
from pose_app.errors import PoseAppError, one_line
from pose_app.io.frame_source import ClosingSource, FrameSource, check_frame_step, quiet_open
from pose_app.io.live_sources import CameraSource, LiveUrlSource
from pose_app.io.url_check import url_problem

# We report open/decode failures ourselves in one line; FFmpeg's own log lines (read by OpenCV
# when it first opens a file) would only repeat them. -8 is AV_LOG_QUIET. Users may override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif"}
)
# Network streams that deliver frames in real time: reading them must not fall behind.
LIVE_URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt")
_URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# Decoded frames buffered ahead of the consumer: enough to overlap decode with inference,
# small enough to keep memory flat (a 1080p frame is 6 MB).
DECODE_QUEUE_FRAMES = 8
# A file or URL whose last read failed after waiting this long (seconds) stalled: it did not end.
STALL_S = 5.0
# Frames a container may announce beyond those it holds without the file being called truncated:
# counts estimated from the duration can be a frame or two off.
ANNOUNCED_FRAMES_SLACK = 2
ANNOUNCED_FRAMES_SLACK_SHARE = 0.01


def is_camera_index(spec: str | int) -> bool:
    """Whether an input spec names a camera by its index (0, "1", ...)."""
    return isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit())


def is_url(spec: str) -> bool:
    """Whether an input spec is a URL (scheme://...) rather than a path."""
    return bool(_URL_PATTERN.match(spec))


def is_live_url(spec: str) -> bool:
    """Whether an input spec is a real-time network stream (read newest-frame-first)."""
    return is_url(spec) and spec.split(":", 1)[0].lower() in LIVE_URL_SCHEMES


def read_image(path: str | Path) -> np.ndarray:
    """An image file -> BGR uint8; PoseAppError when missing or not decodable."""
    path = Path(path)
    if not path.is_file():
        raise PoseAppError(f"image not found: {path}")
    # imdecode from bytes also handles non-ASCII paths, which cv2.imread does not on Windows.
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise PoseAppError(f"cannot decode image {path}: not an image or an unsupported format")
    return image


def _media_time_s(capture: cv2.VideoCapture, index: int, fps: float | None) -> float:
    """Time of the frame just read: the container's timestamp, else index / fps."""
    msec = capture.get(cv2.CAP_PROP_POS_MSEC)
    if msec > 0 or index == 0:
        return msec / 1000.0
    return index / fps if fps else 0.0


class VideoFileSource(ClosingSource):
    """A video file (or a non-live URL such as http://.../clip.mp4), decoded in a background
    thread into a bounded queue so decoding overlaps the consumer's work.

    frame_step: deliver every frame_step-th frame (the others are grabbed, not decoded to BGR).
    """

    def __init__(self, path: str | Path, frame_step: int = 1):
        check_frame_step(frame_step)
        self._spec = str(path)
        if not is_url(self._spec) and not Path(self._spec).is_file():
            raise PoseAppError(f"input not found: {self._spec}")
        self._step = frame_step
        self._capture = quiet_open(self._spec)
        if not self._capture.isOpened():
            self._capture.release()
            # A URL: the network first (nothing listening, no such host); the codec only when bytes came.
            problem = url_problem(self._spec) if is_url(self._spec) else None
            raise PoseAppError(
                f"cannot open {self._spec}: {problem or 'not a video, or a format/codec OpenCV cannot read'}"
            )
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._fps = fps if 0 < fps < 1000 else None
        ok, first = self._capture.read()
        if not ok or first is None:
            self._capture.release()
            raise PoseAppError(
                f"no decodable frames in {self._spec} (zero frames, truncated file or unsupported codec)"
            )
        height, width = first.shape[:2]
        self.info = SourceInfo(
            name=self._spec,
            width=width,
            height=height,
            fps=self._fps,
            frame_count=count if count > 0 else None,
            is_live=False,
            is_still=False,
        )
        self._first = Frame(first, 0, _media_time_s(self._capture, 0, self._fps), self._spec)
        self._queue: queue.Queue[Frame | Exception | None] = queue.Queue(DECODE_QUEUE_FRAMES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_index = 0
        self._finished = False
        # Where reading ended: the frames passed (read or skipped) and whether the last read waited
        # STALL_S or more before failing (a stalled network source).
        self._end_position: int | None = None
        self._stalled = False

    def _decode_loop(self, start_index: int, first: Frame | None) -> None:
        """Runs in the decode thread: put frames (then None at the end) into the queue."""
        index = start_index
        try:
            if first is not None:
                self._put(first)
                index += 1
                index += self._skip(self._step - 1)
            while not self._stop.is_set():
                asked = time.monotonic()
                ok, image = self._capture.read()
                if not ok or image is None:
                    self._stalled = time.monotonic() - asked >= STALL_S
                    self._end_position = index
                    break
                self._put(Frame(image, index, _media_time_s(self._capture, index, self._fps), self._spec))
                index += 1
                skipped = self._skip(self._step - 1)
                index += skipped
                if skipped < self._step - 1:
                    self._end_position = index
                    break
        except Exception as error:  # noqa: BLE001 - handed to the consumer thread, re-raised there
            self._put(error)
        self._put(None)

    def _skip(self, count: int) -> int:
        """Advance past frames we do not deliver (grab() skips the colour conversion); returns
        how many there were."""
        for skipped in range(count):
            if not self._capture.grab():
                return skipped
        return count

    def reading_problem(self) -> str | None:
        """Once every frame was read: why reading ended before the end the file announced
        (truncated, or a source that stopped sending), or None when it ended where it should."""
        if self._end_position is None:
            return None
        if self._stalled:
            return f"{self._spec} stopped sending data after frame {self._end_position - 1} (read timed out)"
        announced = self.info.frame_count
        if announced and self._end_position < announced - max(
            ANNOUNCED_FRAMES_SLACK, round(ANNOUNCED_FRAMES_SLACK_SHARE * announced)
        ):
            return f"{self._spec} ended after {self._end_position} of the {announced} frames it announces (truncated?)"
        return None

    @property
    def frames_passed(self) -> int | None:
        """How many of the file's frames were passed (read or skipped) when reading ended."""
        return self._end_position

    def _put(self, item: Frame | Exception | None) -> None:
        """Block while the queue is full, but give up when the source is being closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _start(self) -> None:
        first, self._first = self._first, None
        self._thread = threading.Thread(
            target=self._decode_loop, args=(self._next_index, first), name="video-decode", daemon=True
        )
        self._thread.start()

    def read(self) -> Frame | None:
        if self._finished:
            return None
        if self._thread is None:
            self._start()
        item = self._queue.get()
        if item is None:
            self._finished = True
            return None
        if isinstance(item, Exception):
            self._finished = True
            raise PoseAppError(f"decoding {self._spec} failed: {one_line(item)}")
        return item

    def _stop_thread(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        self._queue = queue.Queue(DECODE_QUEUE_FRAMES)
        self._stop.clear()

    def seek(self, frame_index: int) -> None:
        """Continue from frame_index (0-based) on the next read()."""
        if frame_index < 0:
            raise PoseAppError(f"cannot seek to a negative frame ({frame_index})")
        self._stop_thread()
        self._first = None
        self._finished = False
        self._end_position = None
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
        self._next_index = frame_index

    def close(self) -> None:
        self._stop_thread()
        self._capture.release()
        self._finished = True


class ImageSource(ClosingSource):
    """One image file or a sorted list of them, one frame each (time_s 0.0, index = position
    in the list).

    frame_step: deliver every frame_step-th image. info.frame_count counts every image, as a
    video's counts every frame whatever the step. In a list, an image that cannot be read is
    skipped (`skipped`: (path, why) of each), as long as one can: one bad picture does not cost
    the others.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], frame_step: int = 1):
        check_frame_step(frame_step)
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self._paths = [Path(p) for p in paths]
        if not self._paths:
            raise PoseAppError("no images to read")
        self.skipped: list[tuple[Path, str]] = []
        self._step = frame_step
        self._position = 0  # index in self._paths of the next image to deliver
        first = self._next_readable() if len(self._paths) > 1 else read_image(self._paths[0])
        if first is None:
            raise PoseAppError(f"none of the {len(self._paths)} images in {self._paths[0].parent} can be read ({self.skipped[0][1]})")
        self._pending: np.ndarray | None = first
        name = str(self._paths[0]) if len(self._paths) == 1 else str(self._paths[0].parent)
        self.info = SourceInfo(
            name=name,
            width=first.shape[1],
            height=first.shape[0],
            fps=None,
            frame_count=len(self._paths),
            is_live=False,
            is_still=True,
        )

    def _next_readable(self) -> np.ndarray | None:
        """The image at the current position, moving on (by the step) past those that cannot be
        read; None after the last."""
        while self._position < len(self._paths):
            path = self._paths[self._position]
            try:
                return read_image(path)
            except PoseAppError as error:
                if len(self._paths) == 1:
                    raise
                self.skipped.append((path, str(error)))
                self._position += self._step
        return None

    def read(self) -> Frame | None:
        image = self._pending if self._pending is not None else self._next_readable()
        self._pending = None
        if image is None or self._position >= len(self._paths):
            return None
        frame = Frame(image, self._position, 0.0, str(self._paths[self._position]))
        self._position += self._step
        return frame

    def seek(self, frame_index: int) -> None:
        """Continue from the first delivered image at or after frame_index (keeps the step's
        phase, as frame numbers 0, step, 2 step... do)."""
        if not 0 <= frame_index < len(self._paths):
            raise PoseAppError(f"image index {frame_index} is out of range")
        self._position = -(-frame_index // self._step) * self._step
        self._pending = None

    def close(self) -> None:
        self._pending = None


def _has_glob_magic(spec: str) -> bool:
    return any(char in spec for char in "*?[")


def _sorted_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def input_files(spec: str) -> list[Path]:
    """The files an input reads: the file itself, a folder's images (in reading order), none for
    a camera, a URL or a path that is not there."""
    if is_url(spec) or is_camera_index(spec):
        return []
    path = Path(spec).expanduser()
    try:
        if path.is_dir():
            return _sorted_images(path)
        return [path] if path.exists() else []
    except OSError:
        return []


def expand_inputs(specs: Sequence[str]) -> list[str]:
    """Input arguments -> one entry per source: globs expand to their files (sorted), URLs,
    camera indices, files and image folders stay as given. Missing plain paths are kept so that
    opening them reports the problem for that input. A glob that matches nothing is an error."""
    inputs: list[str] = []
    for spec in specs:
        if is_url(spec) or is_camera_index(spec) or os.path.exists(spec) or not _has_glob_magic(spec):
            inputs.append(spec)
            continue
        matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
        if not matches:
            raise PoseAppError(f"no files match {spec}")
        inputs.extend(matches)
    return inputs


def open_source(spec: str | int, frame_step: int = 1, **camera_options: Any) -> FrameSource:
    """A camera index (0 or "0"), URL, video file, image file or image folder -> its source.

    frame_step: deliver every n-th frame (numbered as the source numbers them). camera_options:
    CameraSource's width, height, fps, backend.
    """
    if is_camera_index(spec):
        return CameraSource(int(spec), frame_step=frame_step, **camera_options)
    if is_live_url(spec):
        return LiveUrlSource(spec, frame_step)
    if is_url(spec):
        return VideoFileSource(spec, frame_step)
    path = Path(spec).expanduser()
    if path.is_dir():
        images = _sorted_images(path)
        if not images:
            raise PoseAppError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
        return ImageSource(images, frame_step)
    if not path.exists():
        raise PoseAppError(f"input not found: {spec}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path, frame_step)
    return VideoFileSource(path, frame_step)
