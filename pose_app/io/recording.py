"""Recording poses, the same way in `pose-app process` and the GUI.

`Recording` is the recording service (Qt-free): the files of one source, each written by its
output kind (output_kinds.py: per frame, frame_outputs.py, or when the recording finishes), the
JSON header of the pipeline that makes the rows, the `complete` flag and the gap-fill pass; with
`atomic`, its files are written under temporary names and appear under their own names only when
finished (`temporary_path`). `PoseFileWriter` writes one source's rows to long CSV, wide CSV
and JSON files alone (`pose-app bench`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from pose_app import __version__
from pose_app.core.frames import Frame, SourceInfo, frames_per_second
from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES, SKELETON_EDGES
from pose_app.draw.render import OverlayStyle
from pose_app.errors import PoseAppError
from pose_app.inference.pipeline import PosePipeline
from pose_app.io.angle_csv import keypoints_as_written
from pose_app.io.csv_tables import KeypointTable, PoseFrame
from pose_app.io.formats import COORDINATES, number_text
from pose_app.io.frame_outputs import (
    CSV,
    FRAME_KINDS,
    JSON,
    STILLS_VIDEO_FPS,
    WIDE_CSV,
)
from pose_app.io.output_files import NO_INPUTS, FileIdentity, check_output_path, claim_existing, publish
from pose_app.io.output_kinds import (
    PER_FRAME,
    WHEN_FINISHED,
    FrameSink,
    GapFill,
    OutputKind,
    RecordedPoses,
    SinkContext,
)

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


def json_header(source: SourceInfo, settings: dict[str, Any]) -> dict[str, Any]:
    """The JSON header: the source, the run settings, the schema's fixed facts."""
    return {
        "source": source.name,
        "width": source.width,
        "height": source.height,
        "fps": source.fps,
        "frame_count": source.frame_count,
        **settings,
        "keypoint_names": list(KEYPOINT_NAMES),
        "skeleton_edges": [list(edge) for edge in SKELETON_EDGES],
        "coordinates": COORDINATES,
        "pose_app_version": __version__,
    }


def _close_all(sinks: list[FrameSink], complete: bool, counts: dict[str, Any] | None, discard: bool) -> None:
    """Close every sink, even when one fails (the first failure is raised once all are closed)."""
    failure = None
    for sink in sinks:
        try:
            sink.close(complete, counts, discard)
        except BaseException as error:  # noqa: BLE001 - raised once every file is closed
            failure = failure or error
    if failure is not None:
        raise failure


class PoseFileWriter:
    """Writes one source's poses, frame by frame, to any of these files: long CSV, wide CSV, JSON
    (a file writer: `PoseStreams` in stream.py sends poses over the network).

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
        self.header = json_header(source, settings or {})
        self.frames_written = 0
        context = SinkContext(source, self.header, OverlayStyle(), 1, inputs)
        self._sinks: list[FrameSink] = []
        try:
            for kind, target in ((CSV, csv_path), (WIDE_CSV, wide_csv_path), (JSON, json_path)):
                if target is not None:
                    self._sinks.append(kind.open(target, context))
        except BaseException:
            self.close(complete=False)
            raise

    def write(self, frame: Frame, poses: FramePoses) -> None:
        """Record one frame's poses (any number, including none) and flush."""
        for sink in self._sinks:
            sink.write(frame, poses, poses.keypoints)  # CSV and JSON rows format the keypoints themselves
        self.frames_written += 1

    def close(self, complete: bool = True, counts: dict[str, Any] | None = None) -> None:
        """Finish the JSON (valid even after an interruption; `complete` says whether the whole
        input was processed, `counts` how it was read) and close owned files. Idempotent; every
        file is closed even when one fails (the first failure is raised)."""
        sinks, self._sinks = self._sinks, []
        _close_all(sinks, complete, counts, discard=False)

    def __enter__(self) -> PoseFileWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(complete=exc_type is None)


class Recording:
    """One source's recording, for `pose-app process` and the GUI alike.

    outputs: kind name -> path (or, for a combinable kind such as the CSVs, an open text stream
    shared with other recordings); `kinds`: the table they are looked up in (FRAME_KINDS by
    default; run/outputs.py's OUTPUT_KINDS for every kind). The paths are checked here
    (PoseAppError); `start(pipeline)` opens each per-frame kind's file, with the JSON header of
    `pipeline`, which must be the pipeline that processes every frame written. `finish(complete)`
    closes them (`complete`: false when the source failed or the run was interrupted), the kind
    that `closes_last` (the JSON) last, and then, for a complete recording with `fill_gaps` > 0,
    fills keypoint dropouts of at most that many recorded frames (each kind's `fill_gaps`; the
    files must then be paths). Used as a context manager it finishes on exit, as complete unless
    an exception ends it.

    The kinds written when the recording finishes (repetitions, OpenSim: analysis/finished_outputs.py)
    get the recorded poses as the long CSV holds them (after gap filling, as filled), complete or
    not: `RecordedPoses`, with `height_m` (the TRC in metres). Each is written even when another
    fails; the first failure is raised once all are written.

    `atomic`: the per-frame files (paths only) are written under temporary names beside them
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
        kinds: Mapping[str, OutputKind] = FRAME_KINDS,
        fill_gaps: int = 0,
        draw_style: OverlayStyle | None = None,
        atomic: bool = False,
        height_m: float | None = None,
        inputs: frozenset[FileIdentity] = NO_INPUTS,
    ):
        unknown = set(outputs) - set(kinds)
        if unknown:
            raise ValueError(f"unknown recording outputs {sorted(unknown)}; use {tuple(kinds)}")
        self.height_m = height_m
        self.source = source
        self.outputs = dict(outputs)
        # The recording's kinds in table order: files are opened, filled and written in that order.
        self.kinds = {name: kind for name, kind in kinds.items() if name in self.outputs}
        self.fill_gaps = 0 if source.is_still else fill_gaps  # still images: nothing to interpolate between
        self.header: dict[str, Any] | None = None
        self.frames_written = 0
        self._style = draw_style or OverlayStyle()
        self._inputs = inputs
        for target in self.paths:
            check_output_path(target, inputs)
        for name, kind in self.kinds.items():
            if not hasattr(self.outputs[name], "write"):
                kind.check(Path(self.outputs[name]))
        self._frame_step = 1
        self._sinks: dict[str, FrameSink] = {}
        self._finished_kinds = [name for name, kind in self.kinds.items() if kind.written == WHEN_FINISHED]
        # For the outputs written when finished: the poses as the long CSV holds them, and every
        # processed frame (number, media time), people or not.
        self._table = KeypointTable([]) if self._finished_kinds else None
        self._processed: list[tuple[int, float]] = []
        self._finished = False
        # Locks held on finished outputs that are already there, from start to finish (output_files).
        self._claims: list[int] = []
        # kind -> (temporary path, final path) of an atomic recording's files.
        self._renames: dict[str, tuple[Path, Path]] = {}
        if atomic:
            token = f"{os.getpid()}-{secrets.token_hex(4)}"
            for name, kind in self.kinds.items():
                target = self.outputs[name]
                if kind.renamed_when_atomic(target, source):
                    final = Path(target)
                    self._renames[name] = (temporary_path(final, token), final)
        self._targets = {name: self._renames[name][0] if name in self._renames else target
                         for name, target in self.outputs.items()}

    @property
    def paths(self) -> list[Path]:
        """The files this recording writes (not the shared streams)."""
        return [Path(target) for target in self.outputs.values() if not hasattr(target, "write")]

    @property
    def started(self) -> bool:
        return self.header is not None

    def start(self, pipeline: PosePipeline) -> None:
        """Create the files; the JSON header names `pipeline`'s settings (PosePipeline.header)."""
        settings = pipeline.header() | {"gap_filled_max_frames": self.fill_gaps}
        self._frame_step = pipeline.config.frame_step if pipeline.config is not None else 1
        header = json_header(self.source, settings)
        context = SinkContext(self.source, header, self._style, self._frame_step, self._inputs)
        try:
            self._claim_finished_outputs()
            for name, kind in self.kinds.items():
                if kind.written == PER_FRAME:
                    self._sinks[name] = kind.open(self._targets[name], context)
        except BaseException:
            sinks, self._sinks = list(self._sinks.values()), {}
            with contextlib.suppress(Exception):  # the error that stopped the start is the one to raise
                _close_all(sinks, complete=False, counts=None, discard=True)
            self._release_claims()
            self._remove_temporary_files()
            raise
        self.header = header

    def _claim_finished_outputs(self) -> None:
        """Lock the finished outputs already there (a second run on them stops now, not at the
        end); names only known at the end (per person) are not."""
        for name in self._finished_kinds:
            target = self.outputs[name]
            if self.kinds[name].lockable(target):
                claim = claim_existing(target, self._inputs)
                if claim is not None:
                    self._claims.append(claim)

    def _release_claims(self) -> None:
        claims, self._claims = self._claims, []
        for claim in claims:
            os.close(claim)

    def write(self, frame: Frame, poses: FramePoses) -> None:
        """Record one frame's poses (rows flushed at once; a live video's first frames are held
        until its frame rate is measured)."""
        if self.header is None:
            raise RuntimeError("Recording.write before start")
        written = keypoints_as_written(poses.keypoints)
        for sink in self._sinks.values():
            sink.write(frame, poses, written)
        if self._table is not None:
            self._keep_for_finish(frame, poses.ids, written)
        self.frames_written += 1

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
        measured = frames_per_second([time_s for _, time_s in self._processed])
        return measured if measured is not None else self.source.fps or STILLS_VIDEO_FPS

    def _close_sinks(self, complete: bool, counts: dict[str, Any] | None, discard: bool) -> None:
        """Close every per-frame file, the ones that close last (the JSON) after the others, told
        whether those were written whole. A file that could not be (the video on a full disk) is
        a PoseAppError once every file is closed, and the JSON then says "complete": false."""
        sinks, self._sinks = self._sinks, {}
        last = [name for name in sinks if self.kinds[name].closes_last]
        failure: BaseException | None = None
        for name, sink in sinks.items():
            if name not in last:
                try:
                    sink.close(complete, counts, discard)
                except (PoseAppError, OSError) as error:
                    failure = failure or error
        _close_all([sinks[name] for name in last], complete and failure is None, counts, discard)
        if failure is not None:
            raise failure

    def _fill_gaps(self) -> KeypointTable | None:
        """Each kind's files with short dropouts filled; the filled keypoints when they were read
        back (for the outputs written when finished)."""
        csv_target = self._targets.get(CSV.name)
        fill = GapFill((self.source.width, self.source.height), self._frame_step, self.fill_gaps,
                       None if csv_target is None or hasattr(csv_target, "write") else Path(csv_target), self._inputs)
        for name, kind in self.kinds.items():
            if kind.written == PER_FRAME:
                kind.fill_gaps(self._targets[name], fill)
        return fill.filled_table() if self._table is not None else None

    def _write_finished_outputs(self, filled: KeypointTable | None) -> None:
        """The outputs written when finished, from the recorded poses (`filled`: those poses read
        back from the CSV after gaps were filled in it), each even when another fails."""
        if self._table is None:
            return
        recorded = RecordedPoses(
            filled if filled is not None else self._table, self._processed, self._frame_rate(), self.source.height,
            self.height_m, self._inputs,
        )
        failure: PoseAppError | None = None
        for name in self._finished_kinds:
            try:
                self.kinds[name].write_finished(recorded, Path(self.outputs[name]))
            except PoseAppError as error:
                failure = failure or error
        if failure is not None:
            raise failure

    def finish(self, complete: bool = True, *, discard: bool = False, counts: dict[str, Any] | None = None) -> int:
        """Close the files (the JSON says `complete`, and `counts`: how the input was read), then
        fill gaps if asked and complete, and write the outputs made when finished; an atomic
        recording's files are then renamed to their own names, or deleted with `discard` (a
        cancelled attempt). Returns the frames written. Idempotent; a recording never started
        has no files."""
        if self._finished or self.header is None:
            return self.frames_written
        self._finished = True
        try:
            self._close_sinks(complete, counts, discard)
            filled = None  # the keypoint table after gap filling, when it was filled
            if complete and self.fill_gaps and not discard:
                filled = self._fill_gaps()
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
        """An atomic recording's files under their own names, the JSON (closes_last) last."""
        for name in sorted(self._renames, key=lambda name: self.kinds[name].closes_last):
            temporary, final = self._renames[name]
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
