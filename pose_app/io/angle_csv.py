"""The angles CSV, written: one row per angle of each person in each frame (ANGLE_CSV_COLUMNS,
`degrees` empty for a missing angle). `angle_rows` formats one frame; `AngleCsvWriter` writes a
file frame by frame with it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from pose_app.core.angles import ANGLE_NAMES, ANGLES, compute_angles
from pose_app.core.skeleton import NUM_KEYPOINTS
from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import KeypointTable
from pose_app.io.formats import (
    ANGLE_CSV_COLUMNS,
    DECIMALS,
    as_written,
    csv_field,
    number_text,
    open_for_writing,
)
from pose_app.io.output_files import NO_INPUTS, FileIdentity, replacing


def degrees_text(value: float) -> str:
    """An angle as the CSV writes it: 2 decimals, '' when missing, never -0.00 or -180.00."""
    if not math.isfinite(value):
        return ""
    text = number_text("degrees", value)
    zero, half_turn = number_text("degrees", 0.0), number_text("degrees", 180.0)
    return {f"-{zero}": zero, f"-{half_turn}": half_turn}.get(text, text)


def confidence_text(value: float) -> str:
    """A confidence as the CSV writes it: 4 decimals, '' when unknown (a keypoint not in the file)."""
    return number_text("score", value) if math.isfinite(value) else ""


def angle_rows(
    source: str,
    frame: int,
    time_s: float,
    person_ids: Sequence[int] | np.ndarray,
    keypoints: np.ndarray,
    names: Sequence[str] = ANGLE_NAMES,
) -> str:
    """The angles-CSV text of one frame: for each person, in increasing person_id, one line per
    angle in `names` order (ANGLE_CSV_COLUMNS; time with 3 decimals as in the keypoint CSV,
    degrees 2, confidence 4). keypoints (P, 17, 3) in frame pixels with scores, person_ids (P,).
    The one formatter of angle rows: `pose-app angles` writes what it returns."""
    return _angle_rows(source, frame, time_s, person_ids, keypoints, names)[0]


def _angle_rows(
    source: str, frame: int, time_s: float, person_ids: Sequence[int] | np.ndarray, keypoints: np.ndarray,
    names: Sequence[str],
) -> tuple[str, int]:
    """angle_rows' text and how many of its angles are missing."""
    ids = np.asarray(person_ids).astype(np.int64).reshape(-1)
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    if len(ids) != len(keypoints):
        raise ValueError(f"{len(ids)} person ids for {len(keypoints)} poses")
    order = np.argsort(ids, kind="stable")
    degrees, confidence = compute_angles(keypoints[order], names)
    prefix = f"{csv_field(source)},{int(frame)},{float(time_s):.{DECIMALS['time']}f},"
    text = "".join(
        f"{prefix}{person_id},{name},{degrees_text(value)},{confidence_text(score)}\n"
        for person_id, person_degrees, person_confidence in zip(ids[order].tolist(), degrees.tolist(), confidence.tolist())
        for name, value, score in zip(names, person_degrees, person_confidence)
    )
    return text, int(np.isnan(degrees).sum())


def keypoints_as_written(keypoints: np.ndarray) -> np.ndarray:
    """Keypoints (P, 17, 3) as the long keypoint CSV holds them (x, y to 2 decimals, scores to
    4): angles computed from these equal `pose-app angles` on that CSV, to the last digit."""
    return np.concatenate([as_written("pixel", keypoints[..., :2]), as_written("score", keypoints[..., 2:])], axis=-1)


def write_angle_csv(
    table: KeypointTable, out: str | Path, names: Sequence[str] = ANGLE_NAMES, inputs: frozenset[FileIdentity] = NO_INPUTS,
) -> AngleCsvWriter:
    """Write the angles CSV of a keypoint table (`read_keypoint_csv`) whole (output_files.replacing:
    a file under its name is a finished one, or the one there before); returns the closed writer
    (its rows and missing counts)."""
    with replacing(out, inputs) as stream:
        writer = AngleCsvWriter(out, names, stream=stream)
        for frame in table.frames:
            writer.write_frame(frame.source, frame.frame, frame.time_s, frame.person_ids, frame.keypoints)
    return writer


class AngleCsvWriter:
    """The angles CSV, written a frame at a time (header on opening, each frame flushed):

        with AngleCsvWriter("walk.angles.csv") as writer:
            writer.write_frame(frame.source, frame.index, frame.time_s, poses.ids, poses.keypoints)
    """

    def __init__(self, path: str | Path, names: Sequence[str] = ANGLE_NAMES,
                 inputs: frozenset[FileIdentity] = NO_INPUTS, stream: IO[str] | None = None) -> None:
        """`stream`: write into this open stream (not closed here) instead of opening `path`."""
        unknown = [name for name in names if name not in ANGLES]
        if unknown:
            raise PoseAppError(f"no angle named {unknown[0]!r}; angles: {', '.join(ANGLE_NAMES)}")
        self.path = Path(path)
        self.names = tuple(names)
        self.rows = 0
        self.missing = 0
        self._owned = stream is None
        self._file = open_for_writing(self.path, inputs) if stream is None else stream
        self._file.write(",".join(ANGLE_CSV_COLUMNS) + "\n")
        self._file.flush()

    def write_frame(
        self, source: str, frame: int, time_s: float, person_ids: Sequence[int] | np.ndarray, keypoints: np.ndarray
    ) -> None:
        text, missing = _angle_rows(source, frame, time_s, person_ids, keypoints, self.names)
        self._file.write(text)
        self._file.flush()
        self.rows += text.count("\n")
        self.missing += missing

    def close(self) -> None:
        if self._owned:
            self._file.close()

    def __enter__(self) -> AngleCsvWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
