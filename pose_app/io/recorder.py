"""Recording poses, the same way in `pose-app process` and the GUI.

`PoseStreamWriter` streams one source's rows to long CSV, wide CSV and JSON: each frame's rows are
formatted in bulk (formats.py), written in one call and flushed, so memory stays flat on long
videos and an interrupted run leaves whole lines.

`Recording` is the recording service built on it (Qt-free): the files of one source, the JSON
header of the pipeline that makes the rows, the annotated video and its frame rate, the
`complete` flag and the gap-fill pass, and the files written whole once it is finished (the
repetitions CSV, OpenSim's TRC and MOT); with `atomic`, its files are written under temporary
names and appear under their own names only when finished (`temporary_path`). `recording_outputs`
and `snapshot_path` name the app's files.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from pose_app import __version__
from pose_app.core.frames import Frame, SourceInfo
from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES, SKELETON_EDGES
from pose_app.draw.render import OverlayStyle
from pose_app.errors import PoseAppError
from pose_app.inference.pipeline import PosePipeline
from pose_app.io.angle_csv import AngleCsvWriter, keypoints_as_written, write_angle_csv
from pose_app.io.csv_tables import KeypointTable, PoseFrame, read_keypoint_csv
from pose_app.io.formats import (
    COORDINATES,
    LONG_CSV_COLUMNS,
    WIDE_CSV_COLUMNS,
    coco_results,
    json_end,
    json_records,
    json_start,
    long_csv_rows,
    number_text,
    open_for_writing,
    wide_csv_rows,
)
from pose_app.io.gap_fill import fill_gaps_in_files
from pose_app.io.opensim import PERSON_FIELD, write_opensim_files
from pose_app.io.output_files import NO_INPUTS, FileIdentity, check_output_path, claim_existing, publish
from pose_app.io.video_writer import IMAGE_OUTPUT_SUFFIXES, AnnotatedVideoWriter, check_video_suffix

OUTPUT_KINDS = ("csv", "wide_csv", "json", "video", "angles", "reps", "trc", "mot")
# Outputs written whole from the recorded poses when the recording is finished (each file
# under a temporary name, then renamed), never while it runs.
FINISHED_KINDS = ("reps", "trc", "mot")
# Frame rate of an annotated video made from still images (a slideshow).
STILLS_VIDEO_FPS = 1.0
# A live source's frames come at the rate they are processed, not at the camera's: its video's
# frame rate is measured over the recording's first second (or first frames), whose video frames
# are held back until then.
LIVE_RATE_WINDOW_S = 1.0
LIVE_RATE_FRAMES = 20
# The app's recordings: <folder>/pose-YYYYmmdd-HHMMSS.csv, .json, .angles.csv, .reps.csv and
# (optionally) .mp4.
RECORDING_PREFIX = "pose"
RECORDING_SUFFIXES = {"csv": ".csv", "json": ".json", "video": ".mp4", "angles": ".angles.csv", "reps": ".reps.csv"}
SNAPSHOT_PREFIX = "pose-snapshot"
# An atomic recording's files while they are written: .<stem>.pose-app-<token><suffix> beside
# the final file (same folder, so the rename is atomic; same suffix, so the video writer picks the
# same codec), the token unique to one attempt.
TEMPORARY_MARK = ".pose-app-"


def temporary_path(path: Path, token: str) -> Path:
    """Where an atomic recording writes `path` until it is finished."""
    return path.with_name(f".{path.stem}{TEMPORARY_MARK}{token}{path.suffix}")


def temporary_paths(path: Path) -> list[Path]:
    """Every temporary file of `path` left in its folder (by any attempt: a dead one's too)."""
    import glob

    pattern = glob.escape(str(path.with_name(f".{path.stem}{TEMPORARY_MARK}"))) + f"*{glob.escape(path.suffix)}"
    return [Path(name) for name in glob.glob(pattern)]


def unused_stem(directory: Path, prefix: str, suffixes: tuple[str, ...]) -> Path:
    """<directory>/<prefix>-YYYYmmdd-HHMMSS, with -2, -3, ... appended while a file with that
    stem and any of `suffixes` exists: files made within one second never overwrite each other."""
    stem = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    for number in itertools.count(1):
        candidate = directory / (stem if number == 1 else f"{stem}-{number}")
        if not any(Path(f"{candidate}{suffix}").exists() for suffix in suffixes):
            return candidate
    raise AssertionError("unreachable")


def recording_outputs(directory: Path, video: bool) -> dict[str, Path]:
    """The files of a new recording in `directory` (kind -> path): CSV and JSON, and the
    annotated video with `video`; none of them exists yet."""
    stem = unused_stem(directory, RECORDING_PREFIX, tuple(RECORDING_SUFFIXES.values()))
    return {kind: Path(f"{stem}{suffix}") for kind, suffix in RECORDING_SUFFIXES.items() if video or kind != "video"}


def snapshot_path(directory: Path) -> Path:
    """A new snapshot's path in `directory`: pose-snapshot-YYYYmmdd-HHMMSS.png, never taken."""
    return Path(f"{unused_stem(directory, SNAPSHOT_PREFIX, ('.png',))}.png")


def _open_text(target: str | Path | IO[str], inputs: frozenset[FileIdentity]) -> tuple[IO[str], bool]:
    """(stream, owned): a path is opened for writing (owned); an open stream is shared."""
    if hasattr(target, "write"):
        return target, False  # type: ignore[return-value]
    return open_for_writing(target, inputs), True


class PoseStreamWriter:
    """Streams one source's poses to any of: long CSV, wide CSV, JSON.

    csv_path / wide_csv_path may be open text streams shared by several recorders (one CSV for
    several inputs, told apart by the `source` column); the header line is written only when
    the stream is empty. `settings`: the run settings for the JSON header (model, provider,
    resolution, output_stride, smoothed, tracking, ...). Unwritable paths raise PoseAppError here,
    and so does a path that is one of `inputs`.
    """

    def __init__(
        self,
        source: SourceInfo,
        *,
        csv_path: str | Path | IO[str] | None = None,
        wide_csv_path: str | Path | IO[str] | None = None,
        json_path: str | Path | None = None,
        settings: dict[str, Any] | None = None,
        inputs: frozenset[FileIdentity] = NO_INPUTS,
    ):
        self.source = source
        self._inputs = inputs
        self.header = self._json_header(settings or {})
        self.frames_written = 0
        self._streams: list[tuple[IO[str], bool]] = []
        self._csv = self._wide = self._json = None
        self._first_record = True
        try:
            self._csv = self._open_csv(csv_path, LONG_CSV_COLUMNS)
            self._wide = self._open_csv(wide_csv_path, WIDE_CSV_COLUMNS)
            if json_path is not None:
                self._json = self._open_stream(json_path)
                self._json.write(json_start(self.header))
                self._json.flush()
        except BaseException:
            self.close(complete=False)
            raise

    def _open_stream(self, target: str | Path | IO[str]) -> IO[str]:
        stream, owned = _open_text(target, self._inputs)
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

    def _json_header(self, settings: dict[str, Any]) -> dict[str, Any]:
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
                self._json.write(json_records(coco_results(frame, poses, self.source.is_still), self._first_record))
                self._json.flush()
                self._first_record = False
        self.frames_written += 1

    def close(self, complete: bool = True, counts: dict[str, Any] | None = None) -> None:
        """Finish the JSON (valid even after an interruption; `complete` says whether the whole
        input was processed, `counts` how it was read) and close owned files. Idempotent; every
        file is closed even when one fails (the first failure is raised)."""
        streams, self._streams = self._streams, []
        json_file, self._json = self._json, None
        self._csv = self._wide = None
        failure = None
        if json_file is not None:
            try:
                json_file.write(json_end(self.frames_written, complete, counts))
                json_file.flush()
            except BaseException as error:  # noqa: BLE001 - raised once every file is closed
                failure = error
        for stream, owned in streams:
            if owned:
                try:
                    stream.close()
                except BaseException as error:  # noqa: BLE001 - raised once every file is closed
                    failure = failure or error
        if failure is not None:
            raise failure

    def __enter__(self) -> PoseStreamWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(complete=exc_type is None)


class Recording:
    """One source's recording, for `pose-app process` and the GUI alike.

    outputs: kind (one of OUTPUT_KINDS) -> path; csv and wide_csv may also be open text streams
    shared with other recordings. The paths are checked here (PoseAppError); `start(pipeline)`
    creates the files, with the JSON header of `pipeline`, which must be the pipeline that
    processes every frame written. `finish(complete)` closes them (`complete`: false when the
    source failed or the run was interrupted) and then, for a complete recording with
    `fill_gaps` > 0, fills keypoint dropouts of at most that many recorded frames
    (gap_fill.py; the files must then be paths). Used as a context manager it finishes on exit,
    as complete unless an exception ends it.

    The annotated video's frame rate: STILLS_VIDEO_FPS for still images; a file's own frame
    rate (over the pipeline's frame step), as every frame is processed; for a live source, the
    rate frames were processed at in its media time, measured over LIVE_RATE_WINDOW_S.

    The repetitions CSV ("reps") is written by `reps_writer(table, path)` (the analysis layer's
    `write_session_reps`, passed in by the caller: this layer cannot import it) and the TRC / MOT
    files by io/opensim.py (`height_m`: TRC in metres), all from the recorded poses as the long
    CSV holds them (after gap filling, as filled), when the recording finishes, complete or not.

    `atomic`: the files (paths only) are written under temporary names beside them
    (`temporary_path`) and renamed to their own names when `finish` publishes them, the JSON
    last, so a file under its own name is always a finished one (complete or not, as its JSON
    says); `finish(discard=True)` deletes them instead. An attempt that dies leaves only its
    temporary files, which a later attempt never appends to. Not atomic (the default): rows go
    straight into the files, so an interrupted recording keeps every row written. An image
    list's annotated pictures (`<name>-<frame>.png`) are always written under their own names.

    Every file goes through io/output_files.py: `inputs` (the identities of the input files) are
    never written, devices never, symlinks are written through, each file is locked while it is
    written (a second recording on it fails with one line) and finished outputs already there
    are locked from `start` to `finish`.
    """

    def __init__(
        self,
        source: SourceInfo,
        outputs: Mapping[str, str | Path | IO[str]],
        *,
        fill_gaps: int = 0,
        draw_style: OverlayStyle | None = None,
        atomic: bool = False,
        reps_writer: Callable[[KeypointTable, Path], object] | None = None,
        height_m: float | None = None,
        inputs: frozenset[FileIdentity] = NO_INPUTS,
    ):
        unknown = set(outputs) - set(OUTPUT_KINDS)
        if unknown:
            raise ValueError(f"unknown recording outputs {sorted(unknown)}; use {OUTPUT_KINDS}")
        if "reps" in outputs and reps_writer is None:
            raise ValueError("a recording with a reps output needs the reps_writer that finds them")
        self._reps_writer = reps_writer
        self.height_m = height_m
        self.source = source
        self.outputs = dict(outputs)
        self.fill_gaps = 0 if source.is_still else fill_gaps  # still images: nothing to interpolate between
        self.header: dict[str, Any] | None = None
        self._style = draw_style or OverlayStyle()
        self._inputs = inputs
        for target in self.paths:
            check_output_path(target, inputs)
        if "video" in self.outputs:
            check_video_suffix(Path(self.outputs["video"]))
        self._frame_step = 1
        self._rows: PoseStreamWriter | None = None
        self._angles: AngleCsvWriter | None = None
        self._video: AnnotatedVideoWriter | None = None
        self._held: list[tuple[Frame, FramePoses]] = []  # live video frames while the rate is measured
        # For the outputs written when finished: the poses as the long CSV holds them, and every
        # processed frame (number, media time), people or not.
        self._table = KeypointTable([]) if any(kind in self.outputs for kind in FINISHED_KINDS) else None
        self._processed: list[tuple[int, float]] = []
        self._finished = False
        # Locks held on finished outputs that are already there, from start to finish (output_files).
        self._claims: list[int] = []
        # kind -> (temporary path, final path) of an atomic recording's files.
        self._renames: dict[str, tuple[Path, Path]] = {}
        if atomic:
            token = f"{os.getpid()}-{secrets.token_hex(4)}"
            for kind, target in self.outputs.items():
                if hasattr(target, "write") or kind in FINISHED_KINDS or (kind == "video" and self._writes_image_list):
                    continue
                final = Path(target)
                self._renames[kind] = (temporary_path(final, token), final)
        self._targets = {kind: self._renames[kind][0] if kind in self._renames else target for kind, target in self.outputs.items()}

    @property
    def _writes_image_list(self) -> bool:
        target = self.outputs.get("video")
        single_image = self.source.is_still and self.source.frame_count == 1
        return target is not None and Path(target).suffix.lower() in IMAGE_OUTPUT_SUFFIXES and not single_image

    @property
    def paths(self) -> list[Path]:
        """The files this recording writes (not the shared streams)."""
        return [Path(target) for target in self.outputs.values() if not hasattr(target, "write")]

    @property
    def started(self) -> bool:
        return self.header is not None

    @property
    def frames_written(self) -> int:
        return self._rows.frames_written if self._rows is not None else 0

    def start(self, pipeline: PosePipeline) -> None:
        """Create the files; the JSON header names `pipeline`'s settings (PosePipeline.header)."""
        settings = pipeline.header() | {"gap_filled_max_frames": self.fill_gaps}
        self._frame_step = pipeline.config.frame_step if pipeline.config is not None else 1
        try:
            self._claim_finished_outputs()
            self._rows = PoseStreamWriter(
                self.source, csv_path=self._targets.get("csv"), wide_csv_path=self._targets.get("wide_csv"),
                json_path=self._targets.get("json"), settings=settings, inputs=self._inputs,
            )
        except BaseException:
            self._release_claims()
            self._remove_temporary_files()
            raise
        self.header = self._rows.header
        if "angles" in self.outputs:
            try:
                self._angles = AngleCsvWriter(self._targets["angles"], inputs=self._inputs)
            except BaseException:
                self._rows.close(complete=False)
                self._release_claims()
                self._remove_temporary_files()
                raise
        if "video" in self.outputs and not self.source.is_live:
            try:
                self._open_video(self._recorded_video_fps())
            except BaseException:
                self._rows.close(complete=False)
                if self._angles is not None:
                    self._angles.close()
                self._release_claims()
                self._remove_temporary_files()
                raise

    def _claim_finished_outputs(self) -> None:
        """Lock the finished outputs already there (a second run on them stops now, not at the
        end); per-person names ({person}) are only known at the end."""
        for kind in FINISHED_KINDS:
            target = self.outputs.get(kind)
            if target is not None and PERSON_FIELD not in str(target):
                claim = claim_existing(target, self._inputs)
                if claim is not None:
                    self._claims.append(claim)

    def _release_claims(self) -> None:
        claims, self._claims = self._claims, []
        for claim in claims:
            os.close(claim)

    def _recorded_video_fps(self) -> float:
        """A still image list's or a file's video frame rate (all its frames are processed)."""
        if self.source.is_still or not self.source.fps:
            return STILLS_VIDEO_FPS
        return self.source.fps / self._frame_step

    def _measured_video_fps(self) -> float:
        """A live source's: the held frames per second of media time."""
        times = [frame.time_s for frame, _ in self._held]
        if len(times) > 1 and times[-1] > times[0]:
            return (len(times) - 1) / (times[-1] - times[0])
        return self.source.fps or STILLS_VIDEO_FPS

    def _open_video(self, fps: float) -> None:
        single_image = self.source.is_still and self.source.frame_count == 1
        size = (self.source.width, self.source.height)
        self._video = AnnotatedVideoWriter(Path(self._targets["video"]), size, fps, self._style, single_image, self._inputs)

    def _write_held_frames(self) -> None:
        self._open_video(self._measured_video_fps())
        held, self._held = self._held, []
        for frame, poses in held:
            self._video.write(frame, poses)

    def write(self, frame: Frame, poses: FramePoses) -> None:
        """Record one frame's poses (rows flushed at once; a live video's first frames are held
        until its frame rate is measured)."""
        if self._rows is None:
            raise RuntimeError("Recording.write before start")
        self._rows.write(frame, poses)
        written = keypoints_as_written(poses.keypoints) if self._angles is not None or self._table is not None else None
        if self._angles is not None:
            self._angles.write_frame(frame.source, frame.index, frame.time_s, poses.ids, written)
        if self._table is not None:
            self._keep_for_finish(frame, poses.ids, written)
        if self._video is not None:
            self._video.write(frame, poses)
        elif "video" in self.outputs:
            self._held.append((frame, poses))
            span = frame.time_s - self._held[0][0].time_s
            if len(self._held) >= LIVE_RATE_FRAMES or span >= LIVE_RATE_WINDOW_S:
                self._write_held_frames()

    def _keep_for_finish(self, frame: Frame, ids: np.ndarray, keypoints: np.ndarray) -> None:
        time_s = float(number_text("time", frame.time_s))  # as the long CSV holds it
        self._processed.append((frame.index, time_s))
        if len(ids):
            order = np.argsort(ids, kind="stable")
            self._table.frames.append(PoseFrame(frame.source, frame.index, time_s, ids[order].astype(np.int64), keypoints[order]))

    def _frame_rate(self) -> float:
        """Processed frames per second of media time: a file's own rate over the frame step, a
        live source's measured one."""
        if not self.source.is_live and self.source.fps:
            return self.source.fps / self._frame_step
        times = [time_s for _, time_s in self._processed]
        if len(times) > 1 and times[-1] > times[0]:
            return (len(times) - 1) / (times[-1] - times[0])
        return self.source.fps or STILLS_VIDEO_FPS

    def _write_finished_outputs(self, filled: KeypointTable | None) -> None:
        """The reps CSV, TRC and MOT files from the recorded poses (`filled`: those poses read
        back from the CSV after gaps were filled in it)."""
        if self._table is None:
            return
        table = filled if filled is not None else self._table
        if "reps" in self.outputs:
            self._reps_writer(table, Path(self.outputs["reps"]))
        if "trc" in self.outputs or "mot" in self.outputs:  # last: a TRC that cannot be scaled is an error
            write_opensim_files(
                table, self._processed, trc=self.outputs.get("trc"), mot=self.outputs.get("mot"),
                rate=self._frame_rate(), frame_height=self.source.height, height_m=self.height_m,
            )

    def finish(self, complete: bool = True, *, discard: bool = False, counts: dict[str, Any] | None = None) -> int:
        """Close the files (the JSON says `complete`, and `counts`: how the input was read), then
        fill gaps if asked and complete; an atomic recording's files are then renamed to their own
        names, or deleted with `discard` (a cancelled attempt). Returns the frames written.
        Idempotent; a recording never started has no files. A file that could not be written
        whole (the video on a full disk) is a PoseAppError once every file is closed, and the JSON
        then says "complete": false."""
        if self._finished or self._rows is None:
            return self.frames_written
        self._finished = True
        try:
            failure: BaseException | None = None
            try:
                if self._held and not discard:
                    self._write_held_frames()
            except PoseAppError as error:
                failure = error
            for closing in (self._video, self._angles):
                if closing is not None:
                    try:
                        closing.close()
                    except PoseAppError as error:
                        failure = failure or error
            self._rows.close(complete=complete and failure is None, counts=counts)
            if failure is not None:
                raise failure
            filled = None  # the keypoint table after gap filling, when it was filled
            if complete and self.fill_gaps and not discard:
                fill_gaps_in_files(
                    csv_path=self._targets.get("csv"),
                    wide_csv_path=self._targets.get("wide_csv"),
                    json_path=self._targets.get("json"),
                    frame_size=(self.source.width, self.source.height),
                    frame_step=self._frame_step,
                    max_gap_frames=self.fill_gaps,
                )
                if "csv" in self._targets and (self._angles is not None or self._table is not None):
                    # The filled keypoints, read back once for every output made from them.
                    filled = read_keypoint_csv(self._targets["csv"])
                if self._angles is not None and filled is not None:
                    # The angles of the filled keypoints, as `pose-app angles` on that CSV gives them.
                    write_angle_csv(filled, self._targets["angles"], inputs=self._inputs)
            if not discard:
                self._release_claims()  # written whole now, each under its own lock
                self._write_finished_outputs(filled)
        except BaseException:
            self._remove_temporary_files()
            raise
        finally:
            self._release_claims()
        if discard:
            self._remove_temporary_files()
        else:
            self._publish()
        return self.frames_written

    def _publish(self) -> None:
        """An atomic recording's files under their own names, the JSON last."""
        for kind in sorted(self._renames, key=lambda kind: kind == "json"):
            temporary, final = self._renames[kind]
            publish(temporary, final, self._inputs)
        self._renames = {}

    def _remove_temporary_files(self) -> None:
        for temporary, _ in self._renames.values():
            temporary.unlink(missing_ok=True)
        self._renames = {}

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.finish(complete=exc_type is None)
