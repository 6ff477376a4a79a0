"""Joint and segment angles from keypoints, in the image plane (plain numpy), and the angles CSV.

Conventions (docs/angles.md has a drawing of each):

* Everything is measured in the **image plane**, in **degrees**, from keypoints in frame pixels
  (x right, y **down**, as every pose-app coordinate). Nothing is corrected for the camera's view:
  a knee bent towards the camera looks straighter than it is.
* **Joint angles** (`left_elbow`, `right_knee`, ...) are the inner angle at the vertex between the
  two segments that meet there, 0..180: 180 = straight (arm, leg, hip of a person standing
  upright), 90 = a right angle. They carry no sign (flexion and hyperextension look alike).
  elbow: shoulder-elbow-wrist, knee: hip-knee-ankle, hip: shoulder-hip-knee,
  shoulder: hip-shoulder-elbow (0 = arm along the trunk, 180 = arm straight above the head).
* **Segment angles** (`left_forearm`, `trunk`, ...) are the direction of a segment against the
  horizontal: the vector from its proximal to its distal point (trunk: hip midpoint -> shoulder
  midpoint; shoulder and hip lines: right -> left keypoint) measured from the +x image axis
  (pointing right on screen), **counter-clockwise positive as seen on screen**, in (-180, 180].
  Because image y points down, the angle is atan2(-dy, dx): 90 = pointing up on screen (an
  upright trunk), -90 = pointing down (a hanging upper arm), -45 = down and to the right,
  180 = pointing left. Left and right limbs are measured the same way (no mirroring of the
  convention between the sides).
* An angle is **missing** (NaN) unless every keypoint it uses scores at least
  MIN_KEYPOINT_SCORE (0.3, the app's keypoint threshold): no angle is made from a keypoint the
  network did not see. It is also NaN when a segment has zero length. Its **confidence** is the
  lowest score of its keypoints, reported whether or not the angle is missing.
* **Left and right are anatomical**: the keypoints given are the person's own (with
  `--mirrored-input` the pipeline has already swapped back the labels the network gives a
  mirror image by appearance), so there is no mirror special case here. A mirrored (selfie)
  recording of a pose, its labels swapped back, has the same joint angles and each segment angle
  a turned into 180 - a (x -> w - 1 - x reverses every horizontal direction).

The angles CSV (`pose-app angles`, `pose-app process --angles`, the app's recordings) is long, one row per
angle: ANGLE_CSV_COLUMNS, `degrees` empty for a missing angle. `angle_rows` formats one frame;
`AngleCsvWriter` writes a file frame by frame with it. Also here: reading the long keypoint CSV
and the angles CSV back (`read_keypoint_csv`, `read_angle_csv`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from pose_app.decode import MIN_KEYPOINT_SCORE
from pose_app.errors import PoseAppError
from pose_app.formats import DECIMALS, csv_field, number_text, open_for_writing
from pose_app.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS


@dataclass(frozen=True)
class AngleSpec:
    """One angle. kind "joint": the inner angle at points[1] between points[0] and points[2];
    kind "segment": the direction of points[0] -> points[1]. Each point is the mean of the named
    keypoints (one keypoint, or two for a midpoint)."""

    name: str
    kind: str
    points: tuple[tuple[str, ...], ...]
    description: str

    @property
    def keypoints(self) -> tuple[str, ...]:
        """The keypoints the angle uses, each once."""
        return tuple(dict.fromkeys(name for point in self.points for name in point))

    @property
    def group(self) -> str:
        """The name without its side: left_knee and right_knee are both "knee"."""
        return self.name.removeprefix("left_").removeprefix("right_")


def _joints() -> list[AngleSpec]:
    joints = (
        ("elbow", ("shoulder", "elbow", "wrist"), "shoulder-elbow-wrist; 180 = arm straight"),
        ("shoulder", ("hip", "shoulder", "elbow"), "hip-shoulder-elbow; 0 = arm along the trunk, 180 = arm straight up"),
        ("hip", ("shoulder", "hip", "knee"), "shoulder-hip-knee; 180 = trunk and thigh in line"),
        ("knee", ("hip", "knee", "ankle"), "hip-knee-ankle; 180 = leg straight"),
    )
    return [
        AngleSpec(f"{side}_{joint}", "joint", tuple((f"{side}_{part}",) for part in parts), description)
        for joint, parts, description in joints
        for side in ("left", "right")
    ]


def _segments() -> list[AngleSpec]:
    both = ("left", "right")
    specs = [
        AngleSpec("trunk", "segment", (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
                  "hip midpoint -> shoulder midpoint; 90 = upright"),
        AngleSpec("shoulder_line", "segment", (("right_shoulder",), ("left_shoulder",)),
                  "right -> left shoulder; 0 = level, facing the camera; + = left shoulder higher on screen"),
        AngleSpec("hip_line", "segment", (("right_hip",), ("left_hip",)),
                  "right -> left hip; 0 = level, facing the camera; + = left hip higher on screen"),
    ]
    limbs = (
        ("upper_arm", "shoulder", "elbow", "shoulder -> elbow; -90 = hanging"),
        ("forearm", "elbow", "wrist", "elbow -> wrist; -90 = hanging"),
        ("thigh", "hip", "knee", "hip -> knee; -90 = vertical"),
        ("shank", "knee", "ankle", "knee -> ankle; -90 = vertical"),
    )
    specs += [
        AngleSpec(f"{side}_{limb}", "segment", ((f"{side}_{start}",), (f"{side}_{end}",)), description)
        for limb, start, end, description in limbs
        for side in both
    ]
    return specs


ANGLES: dict[str, AngleSpec] = {spec.name: spec for spec in _joints() + _segments()}
ANGLE_NAMES: tuple[str, ...] = tuple(ANGLES)
JOINT_ANGLES: tuple[str, ...] = tuple(name for name, spec in ANGLES.items() if spec.kind == "joint")
SEGMENT_ANGLES: tuple[str, ...] = tuple(name for name, spec in ANGLES.items() if spec.kind == "segment")
ANGLE_CSV_COLUMNS = ("source", "frame", "time_s", "person_id", "angle", "degrees", "confidence")
_MIN_LENGTH = 1e-6  # pixels: a shorter segment has no direction

# Per angle, in ANGLE_NAMES order: three points as pairs of keypoint indices (a single keypoint
# is the pair (k, k)); a segment's direction is point 1 -> point 2 (point 0 repeats point 1).
# And the keypoints whose scores count, padded to 4 by repeating one.
_POINTS = np.zeros((len(ANGLES), 3, 2), np.intp)
_USED = np.zeros((len(ANGLES), 4), np.intp)
for _i, _spec in enumerate(ANGLES.values()):
    _points = _spec.points if _spec.kind == "joint" else (_spec.points[0], *_spec.points)
    for _j, _point in enumerate(_points):
        _POINTS[_i, _j] = [KEYPOINT_INDEX[_point[0]], KEYPOINT_INDEX[_point[-1]]]
    _used = [KEYPOINT_INDEX[name] for name in _spec.keypoints]
    _USED[_i] = (_used * 4)[:4] if len(_used) < 4 else _used
_IS_JOINT = np.array([spec.kind == "joint" for spec in ANGLES.values()])
_ANGLE_INDEX = {name: i for i, name in enumerate(ANGLES)}


def angle_anchors(keypoints: np.ndarray, names: Sequence[str] = ANGLE_NAMES) -> np.ndarray:
    """Where each angle is drawn, (..., len(names), 2) x, y: a joint angle at its vertex, a
    segment angle at the segment's middle."""
    index = np.array([_ANGLE_INDEX[name] for name in names], np.intp)
    xy = np.asarray(keypoints, np.float64)[..., :2]
    points = (xy[..., _POINTS[index][..., 0], :] + xy[..., _POINTS[index][..., 1], :]) / 2  # (..., A, 3, 2)
    return np.where(_IS_JOINT[index][:, None], points[..., 1, :], (points[..., 1, :] + points[..., 2, :]) / 2)


def parse_angle_names(text: str | None, default: Sequence[str] = ANGLE_NAMES) -> tuple[str, ...]:
    """'left_knee,trunk' -> ('left_knee', 'trunk'); None or '' -> default; a name without its
    side stands for both ('knee' -> left_knee, right_knee), 'all', 'joints' and 'segments' for
    those sets. PoseAppError naming the valid names for an unknown one."""
    if not text or not text.strip():
        return tuple(default)
    names: list[str] = []
    groups: dict[str, tuple[str, ...]] = {"all": ANGLE_NAMES, "joints": JOINT_ANGLES, "segments": SEGMENT_ANGLES}
    for spec in ANGLES.values():
        if spec.group != spec.name:
            groups[spec.group] = groups.get(spec.group, ()) + (spec.name,)
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        if part in groups:
            names.extend(groups[part])
        elif part in ANGLES:
            names.append(part)
        else:
            raise PoseAppError(
                f"no angle named {part!r}; angles: {', '.join(ANGLE_NAMES)} (or without left_/right_ for both; "
                "all, joints, segments)"
            )
    return tuple(dict.fromkeys(names))


def compute_angles(
    keypoints: np.ndarray, names: Sequence[str] = ANGLE_NAMES, min_score: float = MIN_KEYPOINT_SCORE
) -> tuple[np.ndarray, np.ndarray]:
    """Angles of poses: keypoints (..., 17, 3) x, y in pixels and score (e.g. (P, 17, 3)) ->
    (degrees, confidence), both (..., len(names)) float64. degrees is NaN where a keypoint of the
    angle scores below min_score (or its score is NaN) or a segment has zero length; confidence is
    the lowest score of the angle's keypoints. Conventions: the module docstring."""
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim < 2 or keypoints.shape[-2:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"expected keypoints of shape (..., {NUM_KEYPOINTS}, 3), got {keypoints.shape}")
    try:
        index = np.array([_ANGLE_INDEX[name] for name in names], np.intp)
    except KeyError as error:
        raise ValueError(f"no angle named {error.args[0]!r}") from None
    xy, scores = keypoints[..., :2], keypoints[..., 2]
    used_scores = scores[..., _USED[index]]  # (..., A, 4)
    confidence = used_scores.min(axis=-1)  # NaN when a score is NaN
    confident = np.all(used_scores >= min_score, axis=-1)  # NaN compares False

    pairs = _POINTS[index]  # (A, 3, 2)
    points = (xy[..., pairs[..., 0], :] + xy[..., pairs[..., 1], :]) / 2  # (..., A, 3, 2)
    first = points[..., 0, :] - points[..., 1, :]
    second = points[..., 2, :] - points[..., 1, :]
    # Joint: the unsigned angle between the two segments from the vertex, via atan2 for accuracy
    # near 0 and 180. Segment: the direction of `second`, y flipped so that counter-clockwise on
    # screen is positive.
    cross = first[..., 0] * second[..., 1] - first[..., 1] * second[..., 0]
    dot = (first * second).sum(axis=-1)
    with np.errstate(invalid="ignore"):
        joint = np.degrees(np.arctan2(np.abs(cross), dot))
        segment = np.degrees(np.arctan2(-second[..., 1], second[..., 0]))
    segment = np.where(segment <= -180.0, segment + 360.0, segment)  # (-180, 180]
    is_joint = _IS_JOINT[index]
    length_first = np.hypot(first[..., 0], first[..., 1])
    length_second = np.hypot(second[..., 0], second[..., 1])
    degenerate = (length_second < _MIN_LENGTH) | (is_joint & (length_first < _MIN_LENGTH))
    degrees = np.where(is_joint, joint, segment)
    valid = confident & ~degenerate & np.isfinite(degrees)
    return np.where(valid, degrees + 0.0, np.nan), confidence  # + 0.0: no -0.0


# ------------------------------------------------------------------------------ angles CSV


def degrees_text(value: float) -> str:
    """An angle as the CSV writes it: 2 decimals, '' when missing, never -0.00 or -180.00."""
    if not math.isfinite(value):
        return ""
    text = f"{value:.2f}"
    return {"-0.00": "0.00", "-180.00": "180.00"}.get(text, text)


def confidence_text(value: float) -> str:
    """A confidence as the CSV writes it: 4 decimals, '' when unknown (a keypoint not in the file)."""
    return f"{value:.4f}" if math.isfinite(value) else ""


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
    as_text = np.vectorize(lambda value, kind: float(number_text(kind, value)), otypes=[np.float64])
    return np.concatenate(
        [as_text(keypoints[..., :2], "pixel"), as_text(keypoints[..., 2:], "score")], axis=-1
    )


def write_angle_csv(table: KeypointTable, out: str | Path, names: Sequence[str] = ANGLE_NAMES) -> AngleCsvWriter:
    """Write the angles CSV of a keypoint table (`read_keypoint_csv`); returns the closed writer
    (its rows and missing counts)."""
    with AngleCsvWriter(out, names) as writer:
        for frame in table.frames:
            writer.write_frame(frame.source, frame.frame, frame.time_s, frame.person_ids, frame.keypoints)
    return writer


class AngleCsvWriter:
    """The angles CSV, written a frame at a time (header on opening, each frame flushed):

        with AngleCsvWriter("walk.angles.csv") as writer:
            writer.write_frame(frame.source, frame.index, frame.time_s, poses.ids, poses.keypoints)
    """

    def __init__(self, path: str | Path, names: Sequence[str] = ANGLE_NAMES) -> None:
        unknown = [name for name in names if name not in ANGLES]
        if unknown:
            raise PoseAppError(f"no angle named {unknown[0]!r}; angles: {', '.join(ANGLE_NAMES)}")
        self.path = Path(path)
        self.names = tuple(names)
        self.rows = 0
        self.missing = 0
        self._file = open_for_writing(self.path)
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
        self._file.close()

    def __enter__(self) -> AngleCsvWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- reading CSVs

_KEYPOINT_COLUMNS = ("source", "frame", "time_s", "person_id", "keypoint", "x", "y", "score")


def csv_kind(header: Sequence[str]) -> str | None:
    """"keypoints" for a header of pose-app's long keypoint CSV, "angles" for the angles CSV,
    None for anything else."""
    columns = set(header)
    if columns.issuperset(ANGLE_CSV_COLUMNS):
        return "angles"
    if columns.issuperset(_KEYPOINT_COLUMNS):
        return "keypoints"
    return None


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a CSV file, the header first; PoseAppError when it cannot be read."""
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
    for _, header in _rows(path):
        kind = csv_kind(header)
        if kind is None:
            break
        return kind
    raise PoseAppError(
        f"{path} is not a pose-app keypoint or angles CSV (expected the columns "
        f"{','.join(_KEYPOINT_COLUMNS)},... or {','.join(ANGLE_CSV_COLUMNS)})"
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
    rows = _rows(path)
    header = next(rows, (1, []))[1]
    if csv_kind(header) != "keypoints":
        raise PoseAppError(
            f"{path} is not a pose-app keypoint CSV (expected the columns {','.join(_KEYPOINT_COLUMNS)},...)"
        )
    column = {name: header.index(name) for name in (*_KEYPOINT_COLUMNS, "x_norm", "y_norm") if name in header}
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
            key = (source, int(row[column["frame"]]))
            person_id = int(row[column["person_id"]])
            keypoint = KEYPOINT_INDEX.get(row[column["keypoint"]])
            if keypoint is None:
                raise ValueError(f"unknown keypoint {row[column['keypoint']]!r}")
            x, y, score = (float(row[column[name]]) for name in ("x", "y", "score"))
            entry = frames.get(key)
            if entry is None:
                entry = frames[key] = [float(row[column["time_s"]]), {}]
            people = entry[1]
            pose = people.get(person_id)
            if pose is None:
                pose = people[person_id] = np.full((NUM_KEYPOINTS, 3), (np.nan, np.nan, 0.0))
            pose[keypoint] = (x, y, score)
            if normalised:
                x_norm, y_norm = float(row[column["x_norm"]]), float(row[column["y_norm"]])
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


def angle_series(table: KeypointTable, names: Sequence[str] = ANGLE_NAMES) -> list[AngleSeries]:
    """The angles of every person in a keypoint table, one series per (source, person_id), in order
    of source, then person_id."""
    collected: dict[tuple[str, int], list[tuple[int, float, np.ndarray]]] = {}
    for frame in table.frames:
        for person_id, pose in zip(frame.person_ids.tolist(), frame.keypoints):
            collected.setdefault((frame.source, person_id), []).append((frame.frame, frame.time_s, pose))
    source_order = {source: i for i, source in enumerate(table.sources)}
    series = []
    for (source, person_id), rows in sorted(collected.items(), key=lambda item: (source_order[item[0][0]], item[0][1])):
        degrees, confidence = compute_angles(np.stack([pose for _, _, pose in rows]), names)
        series.append(AngleSeries(
            source, person_id, tuple(names), np.array([row[0] for row in rows], np.int64),
            np.array([row[1] for row in rows], np.float64), degrees, confidence,
        ))
    return series


def read_angle_csv(path: str | Path, names: Sequence[str] | None = None) -> list[AngleSeries]:
    """Read an angles CSV back as series (one per source and person, in order of source, then
    person_id), with the angles `names` (default: those in the file, in the file's order).
    PoseAppError for a missing file, another kind of CSV, a malformed row, or a name not in it."""
    path = Path(path)
    rows = _rows(path)
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
            frames = people.setdefault((row[column["source"]], int(row[column["person_id"]])), {})
            frame = frames.setdefault(int(row[column["frame"]]), [float(row[column["time_s"]]), {}])
            value, score = row[column["degrees"]], row[column["confidence"]]
            frame[1][name] = (float(value) if value else np.nan, float(score) if score else np.nan)
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


def range_of_motion(degrees: np.ndarray, kind: str = "joint") -> tuple[float, float, float]:
    """(min, max, max - min) of one angle's values, NaNs ignored; NaN x 3 when none is finite.

    For a segment angle ("segment") the values are directions on a circle: the range is the
    smallest arc holding them all, from min counter-clockwise to max. When that arc crosses 180
    (a segment swinging through pointing left), max is given beyond 180 (e.g. 170 -> 190 rather
    than -170) so that max - min stays the angle swept."""
    values = np.asarray(degrees, np.float64).ravel()
    values = np.sort(values[np.isfinite(values)])
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    low, high = float(values[0]), float(values[-1])
    if kind == "segment" and len(values) > 1:
        # The largest gap between neighbours on the circle (the wrap-around gap included) is
        # the part of the circle not swept; the arc starts right after it.
        gaps = np.diff(np.concatenate([values, values[:1] + 360.0]))
        largest = int(np.argmax(gaps))
        if largest != len(values) - 1:  # the swept arc crosses 180
            low = float(values[largest + 1])
            high = float(values[largest]) + 360.0
    return low, high, high - low
