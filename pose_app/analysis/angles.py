"""Angles over time: one series per person (`angle_series`) and the range of motion of an angle."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pose_app.core.angles import ANGLE_NAMES, compute_angles
from pose_app.io.csv_tables import AngleSeries, KeypointTable


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
