"""Angles over time: one series per person (`angle_series`) and the range of motion of an angle."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from pose_app.core.angles import ANGLE_NAMES, compute_angles
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import AngleSeries, KeypointTable

# A person in fewer of the video's frames than this, or an angle seen in fewer of the person's
# frames: too little data for a result to be trusted (repetitions, holds and ranges of motion
# say so; repetitions are never counted on such an angle).
MIN_PRESENCE = 0.5

T = TypeVar("T")  # what an analysis of one person gives (analyse_people)


def percent(share: float) -> str:
    """A share 0..1 as the files and messages write it: "17 %" (whole percents; "<1 %" for a
    share too small to round to one, so that a seen angle never reads as 0 %)."""
    if 0 < share < 0.005:
        return "<1 %"
    return f"{share * 100:.0f} %"


def counted(count: int, noun: str) -> str:
    """ "1 repetition", "3 repetitions", "no repetitions" (nouns with a plain plural)."""
    return f"no {noun}s" if count == 0 else f"{count} {noun}" if count == 1 else f"{count} {noun}s"


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


def angle_presence(series: AngleSeries, min_confidence: float = MIN_KEYPOINT_SCORE) -> np.ndarray:
    """(A,) the share of the person's frames in which each angle of the series was seen (it
    exists and its confidence is at least min_confidence)."""
    with np.errstate(invalid="ignore"):
        seen = np.isfinite(series.degrees) & (series.confidence >= min_confidence)
    return seen.mean(axis=0) if len(seen) else np.zeros(len(series.names))


def source_frames(table: KeypointTable | Sequence[AngleSeries]) -> dict[str, int]:
    """How many frames each source has from its first to its last frame in the table (or the
    series of an angles CSV), at its frame step (`--every`): frames in which nobody was found are
    not in a keypoint or angles CSV, so they are counted from the frame numbers."""
    numbers: dict[str, set[int]] = {}
    if isinstance(table, KeypointTable):
        for frame in table.frames:
            numbers.setdefault(frame.source, set()).add(int(frame.frame))
    else:
        for item in table:
            numbers.setdefault(item.source, set()).update(int(number) for number in item.frames)
    counts = {}
    for source, frames in numbers.items():
        ordered = np.array(sorted(frames))
        step = int(np.min(np.diff(ordered))) if len(ordered) > 1 else 1
        counts[source] = int((ordered[-1] - ordered[0]) // step + 1)
    return counts


def person_share(series: AngleSeries, frames_in_source: int) -> float:
    """The share of its source's frames a person is in."""
    return min(len(series.frames) / frames_in_source, 1.0) if frames_in_source else 0.0


def coverage_warnings(table: KeypointTable | Sequence[AngleSeries], series: list[AngleSeries],
                      min_presence: float = MIN_PRESENCE) -> list[str]:
    """One line per person whose data is too thin to trust: in fewer than `min_presence` of their
    video's frames, or with angles seen in some but fewer than `min_presence` of their own frames
    (an angle never seen is the camera's framing, not a loss, and is not listed)."""
    totals = source_frames(table)
    several = len(totals) > 1
    lines = []
    for item in series:
        parts = []
        share = person_share(item, totals.get(item.source, 0))
        if share < min_presence:
            parts.append(f"in only {len(item.frames)} of {totals.get(item.source, 0)} frames ({percent(share)})")
        thin = [(name, value) for name, value in zip(item.names, angle_presence(item)) if 0 < value < min_presence]
        if thin:
            listed = ", ".join(f"{name} {percent(value)}" for name, value in thin)
            parts.append(f"{listed} of their frames")
        if parts:
            who = f"person {item.person_id}" + (f" of {item.source}" if several else "")
            lines.append(f"{who}: {'; '.join(parts)} (fewer than {percent(min_presence)}: too few to trust)")
    return lines


def analyse_people(table: KeypointTable, names: Sequence[str], analyse: Callable[[AngleSeries], T],
                   person: int | None = None, skip_unusable: bool = False, finding: str = "repetitions to count",
                   ) -> tuple[list[tuple[AngleSeries, T]], list[str]]:
    """`analyse` (an analysis with a `note`; PoseAppError for a person it cannot analyse) on every
    person of a keypoint table (or on `person`), with the angles `names`. Returns ([(series,
    analysis)] in source and person order, notes on people skipped). A person `analyse` refuses
    is an error when named by `person` or when nobody else is left; otherwise, with
    `skip_unusable`, a note. A person in fewer than MIN_PRESENCE of the video's frames gets that
    in their analysis's `note` (what was found while they were out of view is not there)."""
    everyone = angle_series(table, names)
    if person is not None:
        present = sorted({item.person_id for item in everyone})
        everyone = [item for item in everyone if item.person_id == person]
        if not everyone:
            raise PoseAppError(f"there is no person_id {person} (the file has {', '.join(map(str, present)) or 'nobody'})")
    if not everyone:
        raise PoseAppError(f"the file holds no poses: no {finding}")
    results, notes = [], []
    for item in everyone:
        try:
            results.append((item, analyse(item)))
        except PoseAppError as error:
            if person is not None or not skip_unusable:
                raise
            notes.append(f"skipped {error}")
    if not results:
        raise PoseAppError(notes[0].removeprefix("skipped ") if len(notes) == 1 else "; ".join(notes))
    totals = source_frames(table)
    for item, analysis in results:
        share = person_share(item, totals.get(item.source, 0))
        if share < MIN_PRESENCE:
            thin = f"person in only {percent(share)} of the video's frames"
            analysis.note = f"{analysis.note}; {thin}" if analysis.note else thin
    return results, notes


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
