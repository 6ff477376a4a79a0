"""The recording formats: long CSV, wide CSV and JSON (COCO keypoint results with a header).

`DECIMALS` is the one precision table: the rows written while recording (recording.py) and the
rows rewritten by gap filling (gap_fill.py) take their number formats from it. Rows are
formatted in bulk, a frame at a time. Also here: creating the text files they go into.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import numpy as np

from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.errors import PoseAppError
from pose_app.io.output_files import NO_INPUTS, FileIdentity, check_output_path, open_output, write_whole

LONG_CSV_COLUMNS = (
    "source", "frame", "time_s", "person_id", "person_score", "keypoint", "x", "y", "score", "x_norm", "y_norm",
)
# What a keypoint CSV needs to be read back (`pose-app angles`, `plot`): the scores and normalised
# coordinates of LONG_CSV_COLUMNS may be missing from a file another tool wrote.
KEYPOINT_CSV_REQUIRED_COLUMNS = tuple(
    name for name in LONG_CSV_COLUMNS if name not in ("person_score", "x_norm", "y_norm")
)
WIDE_CSV_COLUMNS = ("source", "frame", "time_s", "person_id", "person_score") + tuple(
    f"{name}_{field}" for name in KEYPOINT_NAMES for field in ("x", "y", "score")
)
COORDINATES = (
    "original-frame pixels, x right, y down, (0, 0) = centre of the top-left pixel; "
    "x_norm = x / width, y_norm = y / height"
)
# Decimals written for each kind of number, in every format: hundredths of a pixel, 4 decimals
# for scores (and angle confidences), 6 for normalised coordinates (x / width), milliseconds for
# times, hundredths of a degree for angles.
DECIMALS = {"pixel": 2, "score": 4, "norm": 6, "time": 3, "degrees": 2}
_PERCENT = {kind: f"%.{decimals}f" for kind, decimals in DECIMALS.items()}
_PERSON_PREFIX = "{source},{frame},{time:.%df},{person_id},{person_score:.%df}," % (DECIMALS["time"], DECIMALS["score"])
# One person's 17 long-CSV rows; "\0" stands for the person's prefix so that a whole person is
# formatted with one % operation and one replace instead of 17 formatting calls.
_LONG_PERSON_ROWS = "".join(
    f"\0{name},{_PERCENT['pixel']},{_PERCENT['pixel']},{_PERCENT['score']},{_PERCENT['norm']},{_PERCENT['norm']}\n"
    for name in KEYPOINT_NAMES
)
_WIDE_KEYPOINTS = ",".join([f"{_PERCENT['pixel']},{_PERCENT['pixel']},{_PERCENT['score']}"] * len(KEYPOINT_NAMES)) + "\n"


def number_text(kind: str, value: float) -> str:
    """A number as the CSV files write it (`kind`: a key of DECIMALS)."""
    return _PERCENT[kind] % value


def as_written(kind: str, values: Any) -> np.ndarray:
    """Numbers as the CSV files write them, back as float64 (same shape): the correctly rounded
    decimal text of number_text (not np.round, which can differ in the last digit), formatted in
    one operation for the whole array."""
    values = np.asarray(values, np.float64)
    flat = values.ravel().tolist()
    text = ((_PERCENT[kind] + " ") * len(flat)) % tuple(flat)
    return np.array(text.split(), np.float64).reshape(values.shape)


def rounded(kind: str, values: Any) -> Any:
    """Numbers as the JSON file writes them (`kind`: a key of DECIMALS)."""
    return np.round(values, DECIMALS[kind])


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
    """COCO keypoint-results records of one image's poses: x, y in pixels, the keypoint score in
    the v slot, the pose score as `score` (rounded as DECIMALS says)."""
    keypoints = keypoints.astype(np.float64)
    points = np.concatenate([rounded("pixel", keypoints[..., :2]), rounded("score", keypoints[..., 2:])], axis=-1)
    flat_poses = points.reshape(len(points), points[0].size if len(points) else 0).tolist()
    return [
        {"image_id": int(image_id), "category_id": int(category_id), "keypoints": flat, "score": round(score, DECIMALS["score"])}
        for flat, score in zip(flat_poses, np.asarray(scores, np.float64).tolist())
    ]


def coco_results(frame: Frame, poses: FramePoses, is_still: bool) -> list[dict[str, Any]]:
    """COCO keypoint-results records of one frame, plus person_id, time_s and source."""
    records = coco_keypoint_records(frame.index, poses.keypoints, poses.scores)
    for record, person_id in zip(records, poses.ids.tolist()):
        record.update(person_id=person_id, time_s=round(frame.time_s, DECIMALS["time"]), source=frame.source)
        if is_still:
            record["file_name"] = Path(frame.source).name
    return records


# JSON header keys of earlier releases, by the key that holds the same fact now: the header had
# both the settings `track` and `smooth` and whether they ran, `tracking` and `smoothed`; now
# `track` and `smooth` say whether they ran.
OLD_HEADER_KEYS = {"tracking": "track", "smoothed": "smooth"}


def header_by_current_names(header: dict[str, Any]) -> dict[str, Any]:
    """A JSON header (of this release or an earlier one) by today's names: an old key's value
    (what ran) replaces the setting of its new name, and the old key is dropped."""
    current = {key: value for key, value in header.items() if key not in OLD_HEADER_KEYS}
    for old, new in OLD_HEADER_KEYS.items():
        if old in header:
            current[new] = header[old]
    return current


def json_start(header: dict[str, Any]) -> str:
    """The JSON document up to the opening of its annotations list."""
    return '{"header": ' + json.dumps(header) + ',\n"annotations": ['


def json_records(records: list[dict[str, Any]], first: bool) -> str:
    """Records, one per line, continuing the annotations list (first: none written before)."""
    return ("\n" if first else ",\n") + ",\n".join(json.dumps(record) for record in records)


def json_end(frames_written: int, complete: bool, counts: dict[str, Any] | None = None) -> str:
    """The end of the JSON document after the last record. `counts`: what else the trailer says
    about how the input was read (frames the container announced, images skipped...)."""
    trailer = {"frames_written": frames_written, "complete": complete, **(counts or {})}
    return "\n],\n" + json.dumps(trailer)[1:] + "\n"


# ---------------------------------------------------------------------------- writing files
# Every file goes through output_files (checked, locked, regular files only, never an input).


def check_writable(path: Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> None:
    """PoseAppError unless a file can be written at path (output_files.check_output_path)."""
    check_output_path(path, inputs)


def open_for_writing(path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> IO[str]:
    """A UTF-8 text output written as the run goes (CSV-style newlines), locked while open;
    PoseAppError when it cannot be created (output_files.open_output)."""
    return open_output(path, inputs)


def write_json_file(path: Path, payload: Any, indent: int | None = None) -> None:
    """`payload` as a JSON file written whole (parent folders created); PoseAppError if it cannot
    be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PoseAppError(f"cannot write {path}: {error.strerror or error}") from None
    write_whole(path, json.dumps(payload, indent=indent))


ANGLE_CSV_COLUMNS = ("source", "frame", "time_s", "person_id", "angle", "degrees", "confidence")


def write_whole_text(path: str | Path, text: str, inputs: frozenset[FileIdentity] = NO_INPUTS) -> None:
    """A file written whole: under a temporary name beside it first, then renamed, so a file under
    `path` is always a finished one. PoseAppError when it cannot be written."""
    write_whole(path, text, inputs)
