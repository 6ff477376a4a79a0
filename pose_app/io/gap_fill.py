"""Filling short keypoint dropouts offline: in a table of keypoints, and in a finished recording.

Recordings are streamed, so gaps can only be filled once one is finished: `fill_gaps_in_files`
rewrites its files in place with the same schema and formatting (formats.DECIMALS), changing
only the x, y (and x_norm, y_norm) of filled keypoints. Their scores stay as detected, so filled
points still read as low-confidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.io.csv_tables import read_rows
from pose_app.io.formats import (
    LONG_CSV_COLUMNS,
    WIDE_CSV_COLUMNS,
    csv_field,
    json_end,
    json_records,
    json_start,
    number_text,
    rounded,
)
from pose_app.io.output_files import replacing


def _last_true_index(flags: np.ndarray) -> np.ndarray:
    """For each position, the index of the last True at or before it (-1 if none)."""
    return np.maximum.accumulate(np.where(flags, np.arange(len(flags)), -1))


def _next_true_index(flags: np.ndarray) -> np.ndarray:
    """For each position, the index of the first True at or after it (-1 if none)."""
    reversed_index = _last_true_index(flags[::-1])[::-1]
    return np.where(reversed_index >= 0, len(flags) - 1 - reversed_index, -1)


def fill_gaps(
    track_ids: np.ndarray,
    frames: np.ndarray,
    keypoints: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    scores: np.ndarray,
    max_gap_frames: int = 5,
    min_keypoint_score: float = MIN_KEYPOINT_SCORE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offline gap filling over a long table, one row per (track id, frame, keypoint index).

    A keypoint that drops below `min_keypoint_score` for at most `max_gap_frames` frames
    between two confident sightings of the same keypoint of the same track gets x, y linearly
    interpolated (in frame number) between them. Rows may come in any order; longer gaps,
    leading and trailing dropouts are left as they are. Scores are not changed, so a filled
    keypoint still reads as low-confidence.

    Returns (x, y, filled): new x and y columns, and a bool column marking interpolated rows.
    """
    order = np.lexsort((frames, keypoints, track_ids))  # runs of one keypoint of one track
    track_sorted, keypoint_sorted = track_ids[order], keypoints[order]
    starts_run = np.ones(len(order), dtype=bool)
    starts_run[1:] = (track_sorted[1:] != track_sorted[:-1]) | (
        keypoint_sorted[1:] != keypoint_sorted[:-1]
    )
    run = np.cumsum(starts_run)
    frame = frames[order].astype(np.float64)
    confident = scores[order] >= min_keypoint_score
    before, after = _last_true_index(confident), _next_true_index(confident)
    fill = (~confident) & (before >= 0) & (after >= 0)
    fill &= (run[before] == run) & (run[after] == run)
    fill &= frame[after] - frame[before] - 1 <= max_gap_frames
    weight = (frame[fill] - frame[before[fill]]) / (frame[after[fill]] - frame[before[fill]])
    columns = []
    for values in (x, y):
        sorted_values = values[order].astype(np.float64)
        start, end = sorted_values[before[fill]], sorted_values[after[fill]]
        sorted_values[fill] = (1 - weight) * start + weight * end
        column = np.empty_like(values)
        column[order] = sorted_values
        columns.append(column)
    filled = np.empty(len(order), dtype=bool)
    filled[order] = fill
    return columns[0], columns[1], filled


def fill_gaps_in_files(
    *,
    csv_path: Path | None = None,
    wide_csv_path: Path | None = None,
    json_path: Path | None = None,
    frame_size: tuple[int, int],
    frame_step: int,
    max_gap_frames: int,
) -> None:
    """Interpolate short keypoint dropouts (see fill_gaps) in one finished recording's files,
    which hold one source each. frame_size: (width, height) of its frames; frame_step: the step
    between recorded frame numbers, so that max_gap_frames counts recorded frames. Each file is
    replaced whole (output_files.replacing): an interruption leaves it as it was."""
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


def _csv_rows(path: Path) -> Iterator[list[str]]:
    """The data rows (header skipped) of a CSV file the recorder wrote."""
    rows = read_rows(path)
    next(rows, None)
    return (row for _, row in rows)


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
    with replacing(path) as stream:
        stream.write(",".join(LONG_CSV_COLUMNS) + "\n")
        for number, row in enumerate(_csv_rows(path)):
            record, keypoint = divmod(number, count)
            if filled[record, keypoint]:
                new_x, new_y = keypoints[record, keypoint, :2]
                row[x], row[y] = number_text("pixel", new_x), number_text("pixel", new_y)
                row[x_norm], row[y_norm] = number_text("norm", new_x / width), number_text("norm", new_y / height)
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
    with replacing(path) as stream:
        stream.write(",".join(WIDE_CSV_COLUMNS) + "\n")
        for record, row in enumerate(_csv_rows(path)):
            for keypoint in np.flatnonzero(filled[record]):
                column = first + 3 * keypoint
                row[column], row[column + 1] = (number_text("pixel", value) for value in keypoints[record, keypoint, :2])
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
            record["keypoints"][3 * keypoint : 3 * keypoint + 2] = rounded("pixel", points[keypoint, :2]).tolist()
    with replacing(path) as stream:
        stream.write(json_start(document["header"]))
        if annotations:
            stream.write(json_records(annotations, first=True))
        trailer = {key: value for key, value in document.items() if key not in ("header", "annotations")}
        stream.write(json_end(trailer.pop("frames_written"), trailer.pop("complete"), trailer))
