"""Reading pose-app's CSV files back: the long keypoint CSV (`read_keypoint_csv`) and the angles
CSV (`read_angle_csv`), through one row reader that turns every problem into a one-line error."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pose_app.core.angles import ANGLES
from pose_app.core.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS
from pose_app.errors import PoseAppError
from pose_app.io.formats import ANGLE_CSV_COLUMNS, KEYPOINT_CSV_REQUIRED_COLUMNS

# Frame numbers and person ids: whole numbers from 0 that numpy's int64 holds.
LARGEST_ID = 2**63 - 1
# Pixel coordinates and times a real recording can have (a 1e308 or 1e400 is a broken file).
LARGEST_COORDINATE = 1e7
LARGEST_TIME_S = 1e9


def whole_number(text: str, name: str, highest: int = LARGEST_ID) -> int:
    """A CSV field that must be a whole number from 0 to `highest`; ValueError saying which and why."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a whole number") from None
    if not 0 <= value <= highest:
        raise ValueError(f"{name} {text!r} is out of range (0 to {highest})")
    return value


def finite_number(text: str, name: str, low: float, high: float) -> float:
    """A CSV field that must be a finite number from `low` to `high`; ValueError saying which and why."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} {text!r} is not a finite number from {low:g} to {high:g}")
    return value


def csv_kind(header: Sequence[str]) -> str | None:
    """"keypoints" for a header of pose-app's long keypoint CSV, "angles" for the angles CSV,
    None for anything else."""
    columns = set(header)
    if columns.issuperset(ANGLE_CSV_COLUMNS):
        return "angles"
    if columns.issuperset(KEYPOINT_CSV_REQUIRED_COLUMNS):
        return "keypoints"
    return None


def read_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a CSV file, the header first (the one CSV reader of every
    pose-app CSV: keypoints, angles, the gap-fill rewrite); PoseAppError when it cannot be read."""
    if not path.exists():
        raise PoseAppError(f"{path}: no such file")
    if path.is_dir():
        raise PoseAppError(f"{path} is a directory, not a CSV file")
    try:
        with open(path, encoding="utf-8", newline="") as file:
            for number, row in enumerate(csv.reader(file), start=1):
                yield number, row
    except UnicodeDecodeError:
        raise PoseAppError(f"{path} is not a pose-app CSV (not UTF-8 text)") from None
    except csv.Error as error:
        raise PoseAppError(f"{path} is not a pose-app CSV ({error})") from None
    except OSError as error:
        raise PoseAppError(f"cannot read {path}: {error.strerror or error}") from None


def read_csv_kind(path: str | Path) -> str:
    """"keypoints" or "angles" from a CSV file's header; PoseAppError for any other file."""
    path = Path(path)
    for _, header in read_rows(path):
        kind = csv_kind(header)
        if kind is None:
            break
        return kind
    raise PoseAppError(
        f"{path} is not a pose-app keypoint or angles CSV (expected the columns "
        f"{','.join(KEYPOINT_CSV_REQUIRED_COLUMNS)},... or {','.join(ANGLE_CSV_COLUMNS)})"
    )


@dataclass
class PoseFrame:
    """One frame's poses read from a keypoint CSV."""

    source: str
    frame: int
    time_s: float
    person_ids: np.ndarray  # (P,) int64, increasing
    keypoints: np.ndarray  # (P, 17, 3) x, y, score; a keypoint missing from the file: NaN, NaN, 0


@dataclass
class KeypointTable:
    """A long keypoint CSV read back: its frames ordered by source (in order of first appearance)
    then frame number, and each source's frame size (width, height) as x / x_norm and
    y / y_norm tell it (None when the file has no normalised columns)."""

    frames: list[PoseFrame]
    frame_sizes: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(frame.source for frame in self.frames))


def read_keypoint_csv(path: str | Path) -> KeypointTable:
    """Read pose-app's long keypoint CSV (`pose-app process --csv`, the app's recording).
    PoseAppError (one line) for a missing file, another kind of CSV or a malformed row."""
    path = Path(path)
    rows = read_rows(path)
    header = next(rows, (1, []))[1]
    if csv_kind(header) != "keypoints":
        raise PoseAppError(
            f"{path} is not a pose-app keypoint CSV (expected the columns {','.join(KEYPOINT_CSV_REQUIRED_COLUMNS)},...)"
        )
    column = {name: header.index(name) for name in (*KEYPOINT_CSV_REQUIRED_COLUMNS, "x_norm", "y_norm") if name in header}
    normalised = "x_norm" in column and "y_norm" in column
    width = len(header)
    # (source, frame) -> [time_s, {person_id: (17, 3)}], in order of first appearance.
    frames: dict[tuple[str, int], list] = {}
    # Per source, widths x / x_norm and heights y / y_norm where the normalised value is large
    # enough for the 2-decimal pixels and 6-decimal fractions to give the size to a pixel.
    sizes: dict[str, tuple[list[float], list[float]]] = {}
    for number, row in rows:
        if not row:
            continue
        try:
            if len(row) != width:
                raise ValueError(f"{len(row)} fields, the header has {width}")
            source = row[column["source"]]
            key = (source, whole_number(row[column["frame"]], "frame"))
            person_id = whole_number(row[column["person_id"]], "person_id")
            keypoint = KEYPOINT_INDEX.get(row[column["keypoint"]])
            if keypoint is None:
                raise ValueError(f"unknown keypoint {row[column['keypoint']]!r}")
            x, y = (finite_number(row[column[name]], name, -LARGEST_COORDINATE, LARGEST_COORDINATE) for name in ("x", "y"))
            score = finite_number(row[column["score"]], "score", 0.0, 1.0)
            time_s = finite_number(row[column["time_s"]], "time_s", -LARGEST_TIME_S, LARGEST_TIME_S)
            entry = frames.get(key)
            if entry is None:
                entry = frames[key] = [time_s, {}]
            people = entry[1]
            pose = people.get(person_id)
            if pose is None:
                pose = people[person_id] = np.full((NUM_KEYPOINTS, 3), (np.nan, np.nan, 0.0))
            pose[keypoint] = (x, y, score)
            if normalised:
                x_norm, y_norm = (
                    finite_number(row[column[name]], name, -LARGEST_COORDINATE, LARGEST_COORDINATE) for name in ("x_norm", "y_norm")
                )
                widths, heights = sizes.setdefault(source, ([], []))
                if abs(x_norm) >= 0.05:
                    widths.append(x / x_norm)
                if abs(y_norm) >= 0.05:
                    heights.append(y / y_norm)
        except (ValueError, IndexError) as error:
            raise PoseAppError(f"{path}, line {number}: not a pose-app keypoint row ({error})") from None
    source_order = {source: i for i, source in enumerate(dict.fromkeys(source for source, _ in frames))}
    table = KeypointTable([])
    for (source, frame), (time_s, people) in sorted(frames.items(), key=lambda item: (source_order[item[0][0]], item[0][1])):
        ids = sorted(people)
        table.frames.append(PoseFrame(source, frame, time_s, np.array(ids, np.int64), np.stack([people[i] for i in ids])))
    for source in source_order:
        widths, heights = sizes.get(source, ([], []))
        table.frame_sizes[source] = (
            (int(round(float(np.median(widths)))), int(round(float(np.median(heights))))) if widths and heights else None
        )
    return table


@dataclass
class AngleSeries:
    """One person's angles over time in one source: row t of degrees / confidence is frames[t]."""

    source: str
    person_id: int
    names: tuple[str, ...]
    frames: np.ndarray  # (T,) int64, increasing
    time_s: np.ndarray  # (T,)
    degrees: np.ndarray  # (T, A), NaN = missing
    confidence: np.ndarray  # (T, A)


def read_angle_csv(path: str | Path, names: Sequence[str] | None = None) -> list[AngleSeries]:
    """Read an angles CSV back as series (one per source and person, in order of source, then
    person_id), with the angles `names` (default: those in the file, in the file's order).
    PoseAppError for a missing file, another kind of CSV, a malformed row, or a name not in it."""
    path = Path(path)
    rows = read_rows(path)
    header = next(rows, (1, []))[1]
    if csv_kind(header) != "angles":
        raise PoseAppError(f"{path} is not a pose-app angles CSV (expected the columns {','.join(ANGLE_CSV_COLUMNS)})")
    column = {name: header.index(name) for name in ANGLE_CSV_COLUMNS}
    width = len(header)
    # (source, person_id) -> {frame: [time_s, {angle: (degrees, confidence)}]}
    people: dict[tuple[str, int], dict[int, list]] = {}
    present: dict[str, None] = {}
    for number, row in rows:
        if not row:
            continue
        try:
            if len(row) != width:
                raise ValueError(f"{len(row)} fields, the header has {width}")
            name = row[column["angle"]]
            if name not in ANGLES:
                raise ValueError(f"unknown angle {name!r}")
            present.setdefault(name)
            frames = people.setdefault((row[column["source"]], whole_number(row[column["person_id"]], "person_id")), {})
            time_s = finite_number(row[column["time_s"]], "time_s", -LARGEST_TIME_S, LARGEST_TIME_S)
            frame = frames.setdefault(whole_number(row[column["frame"]], "frame"), [time_s, {}])
            value, score = row[column["degrees"]], row[column["confidence"]]
            frame[1][name] = (
                finite_number(value, "degrees", -360.0, 360.0) if value else np.nan,
                finite_number(score, "confidence", 0.0, 1.0) if score else np.nan,
            )
        except (ValueError, IndexError) as error:
            raise PoseAppError(f"{path}, line {number}: not a pose-app angles row ({error})") from None
    names = tuple(present) if names is None else tuple(names)
    absent = [name for name in names if name not in present]
    if absent and people:
        raise PoseAppError(f"{path} has no angle {absent[0]!r} (it has {', '.join(present)})")
    source_order = {source: i for i, source in enumerate(dict.fromkeys(source for source, _ in people))}
    series = []
    for (source, person_id), frames in sorted(people.items(), key=lambda item: (source_order[item[0][0]], item[0][1])):
        numbers = sorted(frames)
        values = np.array(
            [[frames[n][1].get(name, (np.nan, np.nan)) for name in names] for n in numbers], np.float64
        ).reshape(len(numbers), len(names), 2)
        series.append(AngleSeries(
            source, person_id, names, np.array(numbers, np.int64),
            np.array([frames[n][0] for n in numbers], np.float64), values[..., 0], values[..., 1],
        ))
    return series
