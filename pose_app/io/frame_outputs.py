"""The output kinds written as a recording goes, frame by frame: long CSV, wide CSV, JSON,
annotated video and angles CSV (output_kinds.py says what a kind is). Each frame's rows are
formatted in bulk (formats.py), written in one call and flushed, so memory stays flat on long
videos and an interrupted run leaves whole lines. `FRAME_KINDS` is their table, in the order
`--formats` lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from pose_app.core.frames import Frame, SourceInfo, frames_per_second
from pose_app.core.poses import FramePoses
from pose_app.io.angle_csv import AngleCsvWriter, write_angle_csv
from pose_app.io.formats import (
    LONG_CSV_COLUMNS,
    WIDE_CSV_COLUMNS,
    coco_results,
    json_end,
    json_records,
    json_start,
    long_csv_rows,
    open_for_writing,
    wide_csv_rows,
)
from pose_app.io.gap_fill import fill_gaps_in_files
from pose_app.io.output_files import FileIdentity
from pose_app.io.output_kinds import GapFill, OutputKind, SinkContext, Target
from pose_app.io.video_writer import (
    IMAGE_OUTPUT_SUFFIXES,
    AnnotatedVideoWriter,
    check_video_suffix,
    frame_image_path,
)

# Frame rate of an annotated video made from still images (a slideshow).
STILLS_VIDEO_FPS = 1.0
# A live source's frames come at the rate they are processed, not at the camera's: its video's
# frame rate is measured over the recording's first second (or first frames), whose video frames
# are held back until then.
LIVE_RATE_WINDOW_S = 1.0
LIVE_RATE_FRAMES = 20


def _open_text(target: Target, inputs: frozenset[FileIdentity]) -> tuple[IO[str], bool]:
    """(stream, owned): a path is opened for writing (owned); an open stream is shared."""
    if hasattr(target, "write"):
        return target, False  # type: ignore[return-value]
    return open_for_writing(target, inputs), True


# ---------------------------------------------------------------------------- CSV and JSON


class _CsvSink:
    """A keypoint CSV: the header line only when the stream is empty (a shared stream gets one)."""

    def __init__(self, target: Target, context: SinkContext, columns: tuple[str, ...], rows: Callable) -> None:
        self._stream, self._owned = _open_text(target, context.inputs)
        self._rows = rows
        if self._stream.tell() == 0:
            self._stream.write(",".join(columns) + "\n")
            self._stream.flush()

    def write(self, frame: Frame, poses: FramePoses, written: np.ndarray) -> None:
        if len(poses.scores):
            self._stream.write(self._rows(frame, poses))
            self._stream.flush()

    def close(self, complete: bool = True, counts: dict[str, Any] | None = None, discard: bool = False) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and self._owned:
            stream.close()


@dataclass(frozen=True)
class CsvKind(OutputKind):
    """A keypoint CSV: `columns`, and `rows(frame, poses)` formatting one frame's lines."""

    columns: tuple[str, ...] = ()
    rows: Callable[[Frame, FramePoses], str] = long_csv_rows
    filler: str = ""  # its fill_gaps_in_files argument

    def open(self, target: Target, context: SinkContext) -> _CsvSink:
        return _CsvSink(target, context, self.columns, self.rows)

    def fill_gaps(self, target: Path, fill: GapFill) -> None:
        fill_gaps_in_files(**{self.filler: target}, frame_size=fill.frame_size, frame_step=fill.frame_step,
                           max_gap_frames=fill.max_gap_frames)


class _JsonSink:
    """The JSON document: its header at once, each frame's records as they come, and a trailer
    that keeps it valid even after an interruption and says whether it is complete."""

    def __init__(self, target: Target, context: SinkContext) -> None:
        self._stream, self._owned = _open_text(target, context.inputs)
        self._is_still = context.source.is_still
        self._first_record = True
        self._frames = 0
        try:
            self._stream.write(json_start(context.header))
            self._stream.flush()
        except BaseException:
            self.close(complete=False)
            raise

    def write(self, frame: Frame, poses: FramePoses, written: np.ndarray) -> None:
        if len(poses.scores):
            self._stream.write(json_records(coco_results(frame, poses, self._is_still), self._first_record))
            self._stream.flush()
            self._first_record = False
        self._frames += 1

    def close(self, complete: bool = True, counts: dict[str, Any] | None = None, discard: bool = False) -> None:
        """The trailer (frames written, `complete`, `counts`), then the file closed, even when
        the trailer could not be written (that failure is raised)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.write(json_end(self._frames, complete, counts))
            stream.flush()
        finally:
            if self._owned:
                stream.close()


@dataclass(frozen=True)
class JsonKind(OutputKind):
    def open(self, target: Target, context: SinkContext) -> _JsonSink:
        return _JsonSink(target, context)

    def fill_gaps(self, target: Path, fill: GapFill) -> None:
        fill_gaps_in_files(json_path=target, frame_size=fill.frame_size, frame_step=fill.frame_step,
                           max_gap_frames=fill.max_gap_frames)


# ---------------------------------------------------------------------------- annotated video


def writes_image_list(target: Target, source: SourceInfo) -> bool:
    """Whether an annotated-video target is a list of pictures (`<name>-<frame>.png`), one per
    frame: an image suffix, for any source but a single still image."""
    single_image = source.is_still and source.frame_count == 1
    return Path(target).suffix.lower() in IMAGE_OUTPUT_SUFFIXES and not single_image


class _VideoSink:
    """The annotated video. Its frame rate: STILLS_VIDEO_FPS for still images; a file's own
    frame rate over the frame step, as every frame is processed; for a live source, the rate its
    frames were processed at in media time, measured over LIVE_RATE_WINDOW_S (those frames held
    back until then)."""

    def __init__(self, target: Target, context: SinkContext) -> None:
        self._path = Path(target)
        self._context = context
        self._video: AnnotatedVideoWriter | None = None
        self._held: list[tuple[Frame, FramePoses]] = []  # live video frames while the rate is measured
        source = context.source
        if not source.is_live:
            rate = STILLS_VIDEO_FPS if source.is_still or not source.fps else source.fps / context.frame_step
            self._open(rate)

    def _open(self, fps: float) -> None:
        source = self._context.source
        single_image = source.is_still and source.frame_count == 1
        self._video = AnnotatedVideoWriter(
            self._path, (source.width, source.height), fps, self._context.style, single_image, self._context.inputs,
        )

    def _measured_fps(self) -> float:
        """A live source's: the held frames per second of media time."""
        measured = frames_per_second([frame.time_s for frame, _ in self._held])
        return measured if measured is not None else self._context.source.fps or STILLS_VIDEO_FPS

    def _write_held_frames(self) -> None:
        self._open(self._measured_fps())
        held, self._held = self._held, []
        for frame, poses in held:
            self._video.write(frame, poses)

    def write(self, frame: Frame, poses: FramePoses, written: np.ndarray) -> None:
        if self._video is not None:
            self._video.write(frame, poses)
            return
        self._held.append((frame, poses))
        span = frame.time_s - self._held[0][0].time_s
        if len(self._held) >= LIVE_RATE_FRAMES or span >= LIVE_RATE_WINDOW_S:
            self._write_held_frames()

    def close(self, complete: bool = True, counts: dict[str, Any] | None = None, discard: bool = False) -> None:
        """The held frames written (unless discarded), then the video finished: PoseAppError when
        it could not be written whole; the writer is closed either way."""
        try:
            if self._held and not discard:
                self._write_held_frames()
        finally:
            video, self._video = self._video, None
            self._held = []
            if video is not None:
                video.close()


@dataclass(frozen=True)
class VideoKind(OutputKind):
    """The annotated video: a video file, or (image suffix) pictures; `still_file_name`: its
    `--out-dir` name for a single still image (a picture, never a video of one frame)."""

    still_file_name: str = ""

    def check(self, path: Path) -> None:
        check_video_suffix(path)

    def file_name_for(self, single_image: bool) -> str:
        return self.still_file_name if single_image else self.file_name

    def extra_paths(self, path: Path, image_count: int) -> list[Path]:
        if path.suffix.lower() not in IMAGE_OUTPUT_SUFFIXES:
            return []
        return [frame_image_path(path, index) for index in range(image_count)]

    def is_written(self, path: Path) -> bool:
        # An image list's pictures are not looked for: a finished input's JSON says it is done.
        return path.suffix.lower() in IMAGE_OUTPUT_SUFFIXES or path.exists()

    def renamed_when_atomic(self, target: Target, source: SourceInfo) -> bool:
        # Each picture of an image list is written whole under its own name.
        return super().renamed_when_atomic(target, source) and not writes_image_list(target, source)

    def open(self, target: Target, context: SinkContext) -> _VideoSink:
        return _VideoSink(target, context)


# ---------------------------------------------------------------------------- angles


class _AngleSink:
    def __init__(self, target: Target, context: SinkContext) -> None:
        self._writer: AngleCsvWriter | None = AngleCsvWriter(target, inputs=context.inputs)

    def write(self, frame: Frame, poses: FramePoses, written: np.ndarray) -> None:
        self._writer.write_frame(frame.source, frame.index, frame.time_s, poses.ids, written)

    def close(self, complete: bool = True, counts: dict[str, Any] | None = None, discard: bool = False) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


@dataclass(frozen=True)
class AnglesKind(OutputKind):
    def open(self, target: Target, context: SinkContext) -> _AngleSink:
        return _AngleSink(target, context)

    def fill_gaps(self, target: Path, fill: GapFill) -> None:
        # The angles of the filled keypoints, as `pose-app angles` on the filled CSV gives them.
        filled = fill.filled_table()
        if filled is not None:
            write_angle_csv(filled, target, inputs=fill.inputs)


CSV = CsvKind(
    "csv", "long CSV: one row per keypoint", "{stem}.csv", app_suffix=".csv", combinable=True,
    columns=LONG_CSV_COLUMNS, rows=long_csv_rows, filler="csv_path",
)
WIDE_CSV = CsvKind(
    "wide_csv", "wide CSV: one row per person per frame", "{stem}.wide.csv", combinable=True,
    columns=WIDE_CSV_COLUMNS, rows=wide_csv_rows, filler="wide_csv_path",
)
JSON = JsonKind(
    "json", "JSON: header + COCO-results keypoint records", "{stem}.json", app_suffix=".json", closes_last=True,
)
# The video gets its own suffix under --out-dir so it can never be its input.
VIDEO = VideoKind(
    "video", "annotated video with skeletons (.mp4, .avi, .mkv; .png for images)", "{stem}.annotated.mp4",
    app_suffix=".mp4", app_optional=True, still_file_name="{stem}.annotated.png",
)
ANGLES = AnglesKind(
    "angles", "joint and segment angles CSV, one row per angle (as `pose-app angles` on the long CSV gives them)",
    "{stem}.angles.csv", app_suffix=".angles.csv",
)
FRAME_KINDS: dict[str, OutputKind] = {kind.name: kind for kind in (CSV, WIDE_CSV, JSON, VIDEO, ANGLES)}
