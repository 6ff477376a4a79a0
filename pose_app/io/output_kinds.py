"""Output kinds: one object per kind of file a recording can write.

An `OutputKind` holds everything the rest of the program needs to know about one kind: its name
(the key of a plan and an item of `--formats`), its command-line option and help, its file name
under `--out-dir` and in the app's recordings, and whether it is written per frame (`open` gives
a `FrameSink` when the recording starts) or when the recording finishes (`write_finished`, from
the recorded poses: `RecordedPoses`). `Recording` (recording.py) drives both kinds the same way
for every kind; it never names one.

The kinds written per frame are defined in io/frame_outputs.py; those written when a recording
finishes (repetitions, OpenSim) in analysis/finished_outputs.py, a layer up, since they analyse
the poses. run/outputs.py registers them all in `OUTPUT_KINDS`, the one table that `process`, its
`--out-dir` and `--skip-done`, the app's recordings and the docs' option list read (docs/development.md:
Adding an output kind).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from pose_app.core.frames import Frame, SourceInfo
from pose_app.core.poses import FramePoses
from pose_app.draw.render import OverlayStyle
from pose_app.io.csv_tables import KeypointTable, read_keypoint_csv
from pose_app.io.output_files import FileIdentity

# When a kind's file is written.
PER_FRAME = "per frame"
WHEN_FINISHED = "when finished"

Target = str | Path | IO[str]  # a path, or (kinds that allow it) an open stream shared by several recordings


@dataclass(frozen=True)
class SinkContext:
    """What a per-frame sink is opened with: the recording's source, its JSON header, how its
    annotated pictures are drawn, its frame step and the run's input files (never written)."""

    source: SourceInfo
    header: dict[str, Any]
    style: OverlayStyle
    frame_step: int
    inputs: frozenset[FileIdentity]


class FrameSink(Protocol):
    """One open per-frame output of a recording."""

    def write(self, frame: Frame, poses: FramePoses, written: np.ndarray) -> None:
        """Add one processed frame (any number of poses, none included); `written`: its
        keypoints as the long CSV holds them (angle_csv.keypoints_as_written)."""

    def close(self, complete: bool, counts: dict[str, Any] | None, discard: bool) -> None:
        """Finish and close the file (idempotent). `complete`: the whole input was processed and
        every other file was written whole; `counts`: how the input was read; `discard`: the
        recording is cancelled, so nothing held back need still be written."""


@dataclass(frozen=True)
class RecordedPoses:
    """What the files written when a recording finishes are made from."""

    table: KeypointTable  # the poses as the long CSV holds them (after gap filling, as filled)
    processed: Sequence[tuple[int, float]]  # every processed frame (number, time_s), people or not
    rate: float  # processed frames per second of media time
    frame_height: int
    height_m: float | None  # the person's height (`--height-m`), for outputs in metres
    inputs: frozenset[FileIdentity]


class GapFill:
    """A finished recording's gap-filling pass (gap_fill.py), as each kind's `fill_gaps` gets it.
    `filled_table()` reads the filled long CSV back, once, for the outputs made from it."""

    def __init__(self, frame_size: tuple[int, int], frame_step: int, max_gap_frames: int,
                 csv_path: Path | None, inputs: frozenset[FileIdentity]) -> None:
        self.frame_size = frame_size
        self.frame_step = frame_step
        self.max_gap_frames = max_gap_frames
        self.inputs = inputs
        self._csv_path = csv_path  # the recording's long CSV (its temporary name while atomic), if any
        self._table: KeypointTable | None = None

    def filled_table(self) -> KeypointTable | None:
        """The filled keypoints as the long CSV holds them; None without a long CSV."""
        if self._table is None and self._csv_path is not None:
            self._table = read_keypoint_csv(self._csv_path)
        return self._table


@dataclass(frozen=True)
class OutputKind:
    """One kind of output file. Subclasses write it: `open` (per frame) or `write_finished`.

    name: the plan key and `--formats` item ("wide_csv"; `--wide-csv`, `wide-csv`).
    help: the option's help in `pose-app process`.
    file_name: its name under `--out-dir`, `{stem}` the input's name.
    written: PER_FRAME or WHEN_FINISHED.
    app_suffix: the app's recording file, pose-<date>-<time><app_suffix>; None: the app does not write it.
    app_optional: the app writes it only when its setting asks (the annotated video).
    combinable: several inputs may write one file of this kind (a CSV's `source` column tells them apart).
    closes_last: its trailer says whether the recording is complete (the JSON): closed after every
        other file and, when atomic, renamed last, so that it marks a finished input (`--skip-done`).
    """

    name: str
    help: str
    file_name: str
    written: str = PER_FRAME
    app_suffix: str | None = None
    app_optional: bool = False
    combinable: bool = False
    closes_last: bool = False

    @property
    def option(self) -> str:
        """The command-line option of `pose-app process`: --csv, --wide-csv, ..."""
        return "--" + self.name.replace("_", "-")

    @property
    def format_name(self) -> str:
        """Its item in `--formats`: csv, wide-csv, ..."""
        return self.name.replace("_", "-")

    def check(self, path: Path) -> None:
        """PoseAppError when `path` cannot hold this kind (checked before anything is opened)."""

    def file_name_for(self, single_image: bool) -> str:
        """Its `--out-dir` name for an input (`single_image`: the input is one still image)."""
        return self.file_name

    def extra_paths(self, path: Path, image_count: int) -> list[Path]:
        """Further files it writes beside `path` for an input of `image_count` images (an image
        list's annotated pictures), each checked as an output."""
        return []

    def is_written(self, path: Path) -> bool:
        """Whether a finished recording's file is there (`--skip-done`)."""
        return path.exists()

    def lockable(self, target: Target) -> bool:
        """Whether its file is known from the start, so an existing one is locked from the
        recording's start to its finish (not so for names only known at the end)."""
        return True

    def renamed_when_atomic(self, target: Target, source: SourceInfo) -> bool:
        """Whether an atomic recording writes it under a temporary name and renames it when
        finished (files written whole when finished are already written that way)."""
        return self.written == PER_FRAME and not hasattr(target, "write")

    def open(self, target: Target, context: SinkContext) -> FrameSink:
        """The open sink of a per-frame kind (its file created, its header written)."""
        raise NotImplementedError(f"{self.name} is not written per frame")

    def fill_gaps(self, target: Path, fill: GapFill) -> None:
        """Rewrite its finished file with short keypoint dropouts filled (`--fill-gaps`), when it
        holds keypoints or something made from them; the kinds are called in table order."""

    def write_finished(self, recorded: RecordedPoses, target: Path) -> None:
        """Write the file of a kind written when the recording finishes (whole, under a
        temporary name first)."""
        raise NotImplementedError(f"{self.name} is not written when a recording finishes")
