"""Recording poses: long CSV, wide CSV, JSON (COCO results + header) and annotated video.

One writer for `pose-app process` and the GUI's recordings, so both produce the same schema.
Everything is streamed: each frame's rows are formatted in bulk, written in one call and
flushed, so memory stays flat on long videos and an interrupted run leaves whole lines.
`fill_gaps_in_files` rewrites a finished recording with short keypoint dropouts filled.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import cv2
import numpy as np

from pose_app import __version__
from pose_app.errors import PoseAppError
from pose_app.render import OverlayStyle, draw_poses
from pose_app.skeleton import KEYPOINT_NAMES, SKELETON_EDGES
from pose_app.smoothing import fill_gaps
from pose_app.sources import Frame, SourceInfo

if TYPE_CHECKING:
    from pose_app.estimator import FramePoses

LONG_CSV_COLUMNS = (
    "source", "frame", "time_s", "person_id", "person_score", "keypoint", "x", "y", "score", "x_norm", "y_norm",
)
WIDE_CSV_COLUMNS = ("source", "frame", "time_s", "person_id", "person_score") + tuple(
    f"{name}_{field}" for name in KEYPOINT_NAMES for field in ("x", "y", "score")
)
COORDINATES = (
    "original-frame pixels, x right, y down, (0, 0) = centre of the top-left pixel; "
    "x_norm = x / width, y_norm = y / height"
)
# Fixed precision: hundredths of a pixel, 4 decimals for scores, milliseconds for time.
_PERSON_PREFIX = "{source},{frame},{time:.3f},{person_id},{person_score:.4f},"
# One person's 17 long-CSV rows; "\0" stands for the person's prefix so that a whole person is
# formatted with one % operation and one replace instead of 17 formatting calls.
_LONG_PERSON_ROWS = "".join(f"\0{name},%.2f,%.2f,%.4f,%.6f,%.6f\n" for name in KEYPOINT_NAMES)
_WIDE_KEYPOINTS = ",".join(["%.2f,%.2f,%.4f"] * len(KEYPOINT_NAMES)) + "\n"
# The annotated video's codec, by file suffix.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
IMAGE_OUTPUT_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
# Frame rate of an annotated video made from still images (a slideshow).
STILLS_VIDEO_FPS = 1.0


def csv_field(text: str) -> str:
    """A CSV field, quoted as the csv module does (RFC 4180) when it needs quoting."""
    if any(char in text for char in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _person_prefixes(frame: Frame, poses: FramePoses) -> list[str]:
    source = csv_field(frame.source)
    return [
        _PERSON_PREFIX.format(source=source, frame=frame.index, time=frame.time_s, person_id=int(pid), person_score=float(score))
        for pid, score in zip(poses.ids, poses.scores)
    ]


def long_csv_rows(frame: Frame, poses: FramePoses) -> str:
    """The long-CSV text (17 lines per person) of one frame."""
    height, width = frame.image.shape[:2]
    keypoints = poses.keypoints.astype(np.float64)
    # Columns x, y, score, x_norm, y_norm for every person and keypoint: (P, 17, 5).
    values = np.concatenate([keypoints, keypoints[..., :2] / (width, height)], axis=-1)
    return "".join(
        (_LONG_PERSON_ROWS % tuple(person.ravel().tolist())).replace("\0", prefix)
        for prefix, person in zip(_person_prefixes(frame, poses), values)
    )


def wide_csv_rows(frame: Frame, poses: FramePoses) -> str:
    """The wide-CSV text (one line per person) of one frame."""
    keypoints = poses.keypoints.astype(np.float64)
    return "".join(
        prefix + _WIDE_KEYPOINTS % tuple(person.ravel().tolist())
        for prefix, person in zip(_person_prefixes(frame, poses), keypoints)
    )


def coco_keypoint_records(
    image_id: int, keypoints: np.ndarray, scores: np.ndarray, category_id: int = 1
) -> list[dict[str, Any]]:
    """COCO keypoint-results records of one image's poses: x, y to 0.01 px, the keypoint score
    (4 decimals) in the v slot, the pose score as `score`."""
    keypoints = keypoints.astype(np.float64)
    rounded = np.concatenate([np.round(keypoints[..., :2], 2), np.round(keypoints[..., 2:], 4)], axis=-1)
    flat_poses = rounded.reshape(len(rounded), rounded[0].size if len(rounded) else 0).tolist()
    return [
        {"image_id": int(image_id), "category_id": int(category_id), "keypoints": flat, "score": round(score, 4)}
        for flat, score in zip(flat_poses, np.asarray(scores, np.float64).tolist())
    ]


def coco_results(frame: Frame, poses: FramePoses, is_still: bool) -> list[dict[str, Any]]:
    """COCO keypoint-results records of one frame, plus person_id, time_s and source."""
    records = coco_keypoint_records(frame.index, poses.keypoints, poses.scores)
    for record, person_id in zip(records, poses.ids.tolist()):
        record.update(person_id=person_id, time_s=round(frame.time_s, 3), source=frame.source)
        if is_still:
            record["file_name"] = Path(frame.source).name
    return records


def json_start(header: dict[str, Any]) -> str:
    """The JSON document up to the opening of its annotations list."""
    return '{"header": ' + json.dumps(header) + ',\n"annotations": ['


def json_records(records: list[dict[str, Any]], first: bool) -> str:
    """Records, one per line, continuing the annotations list (first: none written before)."""
    return ("\n" if first else ",\n") + ",\n".join(json.dumps(record) for record in records)


def json_end(frames_written: int, complete: bool) -> str:
    """The end of the JSON document after the last record."""
    trailer = {"frames_written": frames_written, "complete": complete}
    return "\n],\n" + json.dumps(trailer)[1:] + "\n"


def check_writable(path: Path) -> None:
    """PoseAppError unless a file can be created at path (its folder exists and is writable)."""
    folder = path.parent
    if path.is_dir():
        raise PoseAppError(f"cannot write {path}: it is a directory")
    if not folder.is_dir():
        raise PoseAppError(f"cannot write {path}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PoseAppError(f"cannot write {path}: permission denied")


def open_for_writing(path: str | Path) -> IO[str]:
    """A new UTF-8 text file (CSV-style newlines); PoseAppError when it cannot be created."""
    path = Path(path)
    check_writable(path)
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as error:
        raise PoseAppError(f"cannot write {path}: {error.strerror}") from None


def write_json_file(path: Path, payload: Any, indent: int | None = None) -> None:
    """`payload` as a JSON file (parent folders created); PoseAppError if it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=indent), encoding="utf-8")
    except OSError as error:
        raise PoseAppError(f"cannot write {path}: {error.strerror or error}") from None


def _open_text(target: str | Path | IO[str]) -> tuple[IO[str], bool]:
    """(stream, owned): a path is opened for writing (owned); an open stream is shared."""
    if hasattr(target, "write"):
        return target, False  # type: ignore[return-value]
    return open_for_writing(target), True


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
    """Frames with their poses drawn, into a video file (or, for an image suffix such as .png,
    one image: the path itself for a single still, else `<stem>-<frame>.png` per frame)."""

    def __init__(self, path: Path, source: SourceInfo, fps: float, style: OverlayStyle, single_image: bool):
        check_writable(path)
        check_video_suffix(path)
        self.path = path
        self._style = style
        self._size = (source.width, source.height)
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


class PoseRecorder:
    """Streams one source's poses to any of: long CSV, wide CSV, JSON, annotated video.

    csv_path / wide_csv_path may be open text streams shared by several recorders (one CSV for
    several inputs, told apart by the `source` column); the header line is written only when
    the stream is empty. `header`: run settings for the JSON header (model, provider,
    resolution, output_stride, smoothed, tracking, ...). `video_fps`: the annotated video's
    frame rate (default: the source's, 1 for stills). Unwritable paths raise PoseAppError here.
    """

    def __init__(
        self,
        source: SourceInfo,
        *,
        csv_path: str | Path | IO[str] | None = None,
        wide_csv_path: str | Path | IO[str] | None = None,
        json_path: str | Path | None = None,
        video_path: str | Path | None = None,
        header: dict[str, Any] | None = None,
        draw_style: OverlayStyle | None = None,
        video_fps: float | None = None,
    ):
        self.source = source
        self.frames_written = 0
        self._streams: list[tuple[IO[str], bool]] = []
        self._csv = self._wide = self._json = None
        self._video: AnnotatedVideoWriter | None = None
        self._first_record = True
        try:
            self._csv = self._open_csv(csv_path, LONG_CSV_COLUMNS)
            self._wide = self._open_csv(wide_csv_path, WIDE_CSV_COLUMNS)
            if json_path is not None:
                self._json = self._open_stream(json_path)
                self._write_json_start(header or {})
            if video_path is not None:
                fps = video_fps or (STILLS_VIDEO_FPS if source.is_still else source.fps) or STILLS_VIDEO_FPS
                single_image = source.is_still and source.frame_count == 1
                self._video = AnnotatedVideoWriter(Path(video_path), source, fps, draw_style or OverlayStyle(), single_image)
        except BaseException:
            self.close(complete=False)
            raise

    def _open_stream(self, target: str | Path | IO[str]) -> IO[str]:
        stream, owned = _open_text(target)
        self._streams.append((stream, owned))
        return stream

    def _open_csv(self, target: str | Path | IO[str] | None, columns: tuple[str, ...]) -> IO[str] | None:
        if target is None:
            return None
        stream = self._open_stream(target)
        if stream.tell() == 0:
            stream.write(",".join(columns) + "\n")
            stream.flush()
        return stream

    def json_header(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The JSON header: the source, the run settings, the schema's fixed facts."""
        info = self.source
        return {
            "source": info.name,
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "frame_count": info.frame_count,
            **settings,
            "keypoint_names": list(KEYPOINT_NAMES),
            "skeleton_edges": [list(edge) for edge in SKELETON_EDGES],
            "coordinates": COORDINATES,
            "pose_app_version": __version__,
        }

    def _write_json_start(self, settings: dict[str, Any]) -> None:
        assert self._json is not None
        self._json.write(json_start(self.json_header(settings)))
        self._json.flush()

    def write(self, frame: Frame, poses: FramePoses) -> None:
        """Record one frame's poses (any number, including none) and flush."""
        if len(poses.scores):
            if self._csv is not None:
                self._csv.write(long_csv_rows(frame, poses))
                self._csv.flush()
            if self._wide is not None:
                self._wide.write(wide_csv_rows(frame, poses))
                self._wide.flush()
            if self._json is not None:
                self._write_json_records(coco_results(frame, poses, self.source.is_still))
        if self._video is not None:
            self._video.write(frame, poses)
        self.frames_written += 1

    def _write_json_records(self, records: list[dict[str, Any]]) -> None:
        assert self._json is not None
        self._json.write(json_records(records, self._first_record))
        self._json.flush()
        self._first_record = False

    def close(self, complete: bool = True) -> None:
        """Finish the JSON (valid even after an interruption; `complete` says whether the whole
        input was processed), release the video writer, close owned files. Idempotent."""
        if self._json is not None:
            self._json.write(json_end(self.frames_written, complete))
            self._json.flush()
            self._json = None
        if self._video is not None:
            self._video.close()
            self._video = None
        for stream, owned in self._streams:
            if owned:
                stream.close()
        self._streams = []
        self._csv = self._wide = None

    def __enter__(self) -> PoseRecorder:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(complete=exc_type is None)


# ---------------------------------------------------------------------------- offline gap filling
# The recorder streams, so gaps can only be filled once a recording is finished: these rewrite
# its files in place with the same schema and formatting, changing only the x, y (and x_norm,
# y_norm) of filled keypoints. Their scores stay as detected, so filled points still read as
# low-confidence.


def fill_gaps_in_files(
    *,
    csv_path: Path | None = None,
    wide_csv_path: Path | None = None,
    json_path: Path | None = None,
    frame_size: tuple[int, int],
    frame_step: int,
    max_gap_frames: int,
) -> None:
    """Interpolate short keypoint dropouts (see smoothing.fill_gaps) in one finished recording's
    files, which hold one source each. frame_size: (width, height) of its frames;
    frame_step: the step between recorded frame numbers, so that max_gap_frames counts
    recorded frames. Each file is replaced atomically: an interruption leaves it as it was."""
    if csv_path is not None:
        _fill_long_csv(Path(csv_path), frame_size, frame_step, max_gap_frames)
    if wide_csv_path is not None:
        _fill_wide_csv(Path(wide_csv_path), frame_step, max_gap_frames)
    if json_path is not None:
        _fill_json(Path(json_path), frame_step, max_gap_frames)


def _filled_keypoints(
    person_ids: np.ndarray, frames: np.ndarray, keypoints: np.ndarray, max_gap_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """P person records (ids (P,), recorded-frame numbers (P,), keypoints (P, 17, 3)) ->
    (keypoints with dropouts' x, y interpolated, filled mask (P, 17))."""
    count = len(KEYPOINT_NAMES)
    x, y, filled = fill_gaps(
        np.repeat(person_ids, count),
        np.repeat(frames, count),
        np.tile(np.arange(count), len(person_ids)),
        *(keypoints[..., channel].ravel() for channel in range(3)),
        max_gap_frames=max_gap_frames,
    )
    result = keypoints.copy()
    result[..., 0], result[..., 1] = x.reshape(-1, count), y.reshape(-1, count)
    return result, filled.reshape(-1, count)


@contextmanager
def _replacing(path: Path) -> Iterator[IO[str]]:
    """A new file beside path that replaces it (os.replace: atomic) only once fully written."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            yield stream
        shutil.copymode(path, temporary)  # mkstemp makes it private; keep the original's mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _csv_rows(path: Path) -> Iterator[list[str]]:
    """The data rows (header skipped) of a CSV file the recorder wrote."""
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader, None)
        yield from reader


def _csv_line(row: list[str]) -> str:
    """A row written back as the recorder writes it: only `source` (first) can need quoting."""
    return ",".join([csv_field(row[0]), *row[1:]]) + "\n"


def _fill_long_csv(path: Path, frame_size: tuple[int, int], frame_step: int, max_gap_frames: int) -> None:
    frame, person, x, y, score, x_norm, y_norm = (
        LONG_CSV_COLUMNS.index(name) for name in ("frame", "person_id", "x", "y", "score", "x_norm", "y_norm")
    )
    count = len(KEYPOINT_NAMES)
    # The recorder writes each person as 17 consecutive rows in KEYPOINT_NAMES order.
    table = np.array(
        [(row[frame], row[person], row[x], row[y], row[score]) for row in _csv_rows(path)], dtype=np.float64
    ).reshape(-1, count, 5)
    keypoints, filled = _filled_keypoints(table[:, 0, 1], table[:, 0, 0] // frame_step, table[..., 2:], max_gap_frames)
    width, height = frame_size
    with _replacing(path) as stream:
        stream.write(",".join(LONG_CSV_COLUMNS) + "\n")
        for number, row in enumerate(_csv_rows(path)):
            record, keypoint = divmod(number, count)
            if filled[record, keypoint]:
                new_x, new_y = keypoints[record, keypoint, :2]
                row[x], row[y] = f"{new_x:.2f}", f"{new_y:.2f}"
                row[x_norm], row[y_norm] = f"{new_x / width:.6f}", f"{new_y / height:.6f}"
            stream.write(_csv_line(row))


def _fill_wide_csv(path: Path, frame_step: int, max_gap_frames: int) -> None:
    frame, person = WIDE_CSV_COLUMNS.index("frame"), WIDE_CSV_COLUMNS.index("person_id")
    first = WIDE_CSV_COLUMNS.index(f"{KEYPOINT_NAMES[0]}_x")  # then x, y, score per keypoint
    count = len(KEYPOINT_NAMES)
    table = np.array([[row[frame], row[person], *row[first:]] for row in _csv_rows(path)], dtype=np.float64)
    table = table.reshape(-1, 2 + 3 * count)
    keypoints, filled = _filled_keypoints(
        table[:, 1], table[:, 0] // frame_step, table[:, 2:].reshape(-1, count, 3), max_gap_frames
    )
    with _replacing(path) as stream:
        stream.write(",".join(WIDE_CSV_COLUMNS) + "\n")
        for record, row in enumerate(_csv_rows(path)):
            for keypoint in np.flatnonzero(filled[record]):
                column = first + 3 * keypoint
                row[column], row[column + 1] = (f"{value:.2f}" for value in keypoints[record, keypoint, :2])
            stream.write(_csv_line(row))


def _fill_json(path: Path, frame_step: int, max_gap_frames: int) -> None:
    with open(path, encoding="utf-8") as file:
        document = json.load(file)
    annotations = document["annotations"]
    keypoints, filled = _filled_keypoints(
        np.array([record["person_id"] for record in annotations]),
        np.array([record["image_id"] for record in annotations]) // frame_step,
        np.array([record["keypoints"] for record in annotations], dtype=np.float64).reshape(-1, len(KEYPOINT_NAMES), 3),
        max_gap_frames,
    )
    for record, points, mask in zip(annotations, keypoints, filled):
        # Only filled values change, so every other number is written back exactly as read.
        for keypoint in np.flatnonzero(mask):
            record["keypoints"][3 * keypoint : 3 * keypoint + 2] = np.round(points[keypoint, :2], 2).tolist()
    with _replacing(path) as stream:
        stream.write(json_start(document["header"]))
        if annotations:
            stream.write(json_records(annotations, first=True))
        stream.write(json_end(document["frames_written"], document["complete"]))
