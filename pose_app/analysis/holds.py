"""Holds of an isometric exercise (plank, side plank, wall sit, bridge, single-leg stance): when
the person kept still, for how long, with what breaks, and how straight the body line
(shoulder-hip-ankle) stayed (numpy and scipy, no Qt).

What a hold is (docs/reps.md, "Holds"):

* The **watched angles** are the joint angles elbow, shoulder, hip, knee and body line, each on
  the side seen in more frames (the far side of a side view is often a guess), and the trunk's
  direction (lying propped on an elbow and a side plank differ in it more than in any joint).
  Angles do not change when the camera zooms or pans, which keypoint positions would.
* Each is **gated** on confidence as for repetitions, cleaned of one-frame glitches (a running
  median over MEDIAN_FRAMES frames: a keypoint jumping to the other leg for a frame is not a
  movement), bridged over gaps of at most `max_gap_s` and smoothed over SMOOTH_S.
* A frame is **still** when at least MIN_STILL_ANGLES watched angles known there stay within
  `tolerance_deg` over STILL_WINDOW_S around it and at most one known angle in OUTLIER_SHARE
  does not (a keypoint going wrong at the frame's edge moves one chain; leaving a position moves
  several joints). Still stretches of at least STILL_RUN_S are the cores of holds; the median
  of every watched angle over a core's first and last STILL_WINDOW_S are its opening and
  closing **positions** (a sagging hold drifts from one to the other), leaving out an angle
  that moved there (the one the leeway let through is no part of the position).
* A hold **starts** at the first frame before its core from which the known watched angles stay
  within half the tolerance of its opening position, and **ends** likewise after it, by its
  closing position: the moments the position is reached and left, not those the window first
  and last sees stillness.
* Two holds in the same position (the first's closing and the second's opening within the
  tolerance, every watched angle known in both) separated by at most
  `max_break_s` (a moment out of position, or the person lost) are one hold with a **break**.
  A hold lasts at least `min_hold_s`.

`find_holds` does this for one person's angle series, `session_holds` / `hold_records` make the
rows of the holds CSV (io/holds_csv.py) from a keypoint table.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter, minimum_filter1d

from pose_app.analysis.angles import MIN_PRESENCE, analyse_people, percent
from pose_app.analysis.reps import MAX_RESAMPLED, MIN_FRAMES, frame_interval, gated, smooth
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import AngleSeries, KeypointTable
from pose_app.io.holds_csv import HoldRecord

HOLD_GROUPS = ("elbow", "shoulder", "hip", "knee", "body_line")
# The trunk's direction too: lying propped on an elbow and a side plank differ in the joints by
# little (the shoulder), but the trunk rises by 20-30 degrees.
HOLD_SEGMENTS = ("trunk",)
HOLD_ANGLES = tuple(f"{side}_{group}" for group in HOLD_GROUPS for side in ("left", "right")) + HOLD_SEGMENTS
MEDIAN_FRAMES = 5
SMOOTH_S = 0.3
STILL_WINDOW_S = 1.0
MIN_STILL_ANGLES = 2
STILL_RUN_S = 0.5
OUTLIER_SHARE = 4


@dataclass(frozen=True)
class HoldSettings:
    """How holds are found (the module docstring)."""

    min_hold_s: float = 2.0
    tolerance_deg: float = 10.0
    max_break_s: float = 1.0
    min_confidence: float = MIN_KEYPOINT_SCORE
    max_gap_s: float = 0.5


@dataclass(frozen=True)
class BodyLine:
    """The body line (shoulder-hip-ankle, 180 = straight) over a hold: the side measured ('' when
    neither was seen), its mean, sample standard deviation and minimum in degrees (NaN when not
    seen), and the share of the hold's frames (breaks excluded) it was seen in."""

    side: str
    mean_deg: float
    sd_deg: float
    min_deg: float
    seen: float


@dataclass(frozen=True)
class Hold:
    """One hold: media seconds it started and ended, its breaks [(start_s, end_s)], its body
    line, and whether it was still going on at the end of the series (`ongoing`)."""

    start_s: float
    end_s: float
    breaks: tuple[tuple[float, float], ...]
    body_line: BodyLine
    ongoing: bool = False

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def break_s(self) -> float:
        return float(sum(end - start for start, end in self.breaks))

    @property
    def held_s(self) -> float:
        return self.duration_s - self.break_s


@dataclass
class HoldAnalysis:
    """One person's holds and what they were found on: the watched angles (best side of each
    joint), the regular time grid, the cleaned body line on it (NaN where not seen; `body_line_side`
    the side drawn), the still frames, and a warning (`note`, empty when none) when the data is
    too thin to trust."""

    angles: tuple[str, ...]
    times: np.ndarray
    body_line: np.ndarray
    body_line_side: str
    still: np.ndarray
    holds: list[Hold]
    note: str = ""


def _on_grid(times: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """A regular grid from the first to the last time, and each time's index on it."""
    count = math.floor((times[-1] - times[0]) / step + 0.5) + 1
    if count > MAX_RESAMPLED:
        raise PoseAppError(f"the times of the angle series are too dense to resample ({count} samples at {step:g} s)")
    grid = times[0] + step * np.arange(count)
    return grid, np.clip(np.round((times - times[0]) / step).astype(np.int64), 0, count - 1)


def _cleaned(values: np.ndarray, step: float, max_gap_s: float) -> np.ndarray:
    """A watched angle on the grid (NaN where not gated in): one-frame glitches removed, gaps of
    at most max_gap_s interpolated, smoothed; NaN in longer gaps."""
    known = np.flatnonzero(np.isfinite(values))
    cleaned = np.full(len(values), np.nan)
    if len(known) < 2:
        return cleaned
    # The median over the known samples in order: a glitch is one sample, whatever the gap around it.
    filtered = median_filter(values[known], size=min(MEDIAN_FRAMES, len(known)), mode="nearest")
    cleaned[known] = filtered
    between = np.arange(known[0], known[-1] + 1)
    after = np.searchsorted(known, between)  # the next known index at or after each frame
    gap = (known[after] - known[np.maximum(after - 1, 0)]) * step
    bridged = between[(gap <= max_gap_s + 1e-9) & np.isnan(cleaned[between])]
    cleaned[bridged] = np.interp(bridged, known, filtered)
    finite = np.isfinite(cleaned)
    edges = np.flatnonzero(np.diff(np.r_[0, finite.astype(np.int8), 0]))
    for first, stop in zip(edges[::2], edges[1::2]):  # each stretch without a gap, smoothed on its own
        cleaned[first:stop] = smooth(cleaned[first:stop], step, SMOOTH_S)
    return cleaned


def _moving_range(values: np.ndarray, frames: int) -> np.ndarray:
    """Per frame, max - min of the finite values within `frames` centred on it (NaN: none known)."""
    finite = np.isfinite(values)
    high = maximum_filter1d(np.where(finite, values, -np.inf), frames, mode="nearest")
    low = minimum_filter1d(np.where(finite, values, np.inf), frames, mode="nearest")
    spread = high - low
    return np.where(np.isfinite(spread), spread, np.nan)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of each run of True."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return [(int(first), int(stop) - 1) for first, stop in zip(edges[::2], edges[1::2])]


def _agree(frame: np.ndarray, position: np.ndarray, tolerance: float) -> bool:
    """Every watched angle of `frame` within `tolerance` of `position` where both are known, with
    at least one known. No leeway here, unlike stillness: a glitch lasts a frame or two, but a
    hold of another position (arms overhead, then down) differs in one joint for good."""
    known = np.isfinite(frame) & np.isfinite(position)
    return bool(known.any()) and bool(np.all(np.abs(frame[known] - position[known]) <= tolerance))


def _position(angles: np.ndarray, known: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The median of each watched angle over frames start..stop-1 (NaN where never known there)."""
    position = np.full(len(angles), np.nan)
    seen = known[:, start:stop].any(axis=1)
    position[seen] = np.nanmedian(angles[seen, start:stop], axis=1)
    return position


def _body_line(values: dict[str, np.ndarray], seen: dict[str, np.ndarray], spans: list[tuple[int, int]]) -> BodyLine:
    """The body line over the frames of `spans` (a hold without its breaks), on the side seen in
    more of them; `seen`: the frames it passed the confidence gate in (not bridged over a gap)."""
    frames = np.concatenate([np.arange(first, last + 1) for first, last in spans])
    best = max(("left", "right"), key=lambda side: int(seen[side][frames].sum()))
    measured = frames[seen[best][frames] & np.isfinite(values[best][frames])]
    if not len(measured):
        return BodyLine("", math.nan, math.nan, math.nan, 0.0)
    line = values[best][measured]
    return BodyLine(best, float(line.mean()), float(line.std(ddof=1)) if len(line) > 1 else 0.0, float(line.min()),
                    len(measured) / len(frames))


def find_holds(series: AngleSeries, settings: HoldSettings = HoldSettings(), open_end: bool = False) -> HoldAnalysis:
    """The holds of one person's angle series (which must hold HOLD_ANGLES), by the rules of the
    module docstring. open_end: also keep a hold shorter than min_hold_s that is still going on
    at the end of the series (the live counter's running hold)."""
    times = np.asarray(series.time_s, np.float64)
    step = frame_interval(times)
    empty = HoldAnalysis((), np.zeros(0), np.zeros(0), "", np.zeros(0, bool), [])
    if not math.isfinite(step):
        return empty
    grid, index = _on_grid(times, step)
    cleaned, presence, seen = {}, {}, {}
    for name in HOLD_ANGLES:
        column = series.names.index(name)
        valid = gated(series.degrees[:, column], series.confidence[:, column], settings.min_confidence)
        values = np.full(len(grid), np.nan)
        values[index[valid]] = series.degrees[valid, column]
        if name in HOLD_SEGMENTS and valid.any():  # a direction near +-180 (lying head left) stays continuous
            values[index[valid]] = np.degrees(np.unwrap(np.radians(series.degrees[valid, column])))
        presence[name] = float(valid.mean()) if len(valid) else 0.0
        seen[name] = np.isfinite(values)
        cleaned[name] = _cleaned(values, step, settings.max_gap_s)
    watched = []
    for group in HOLD_GROUPS:
        left, right = f"left_{group}", f"right_{group}"
        best = left if presence[left] >= presence[right] else right
        if presence[best] > 0:
            watched.append(best)
    watched += [name for name in HOLD_SEGMENTS if presence[name] > 0]
    body = {side: cleaned[f"{side}_body_line"] for side in ("left", "right")}
    body_seen = {side: seen[f"{side}_body_line"] for side in ("left", "right")}
    seen_side = "left" if presence["left_body_line"] >= presence["right_body_line"] else "right"
    if not watched:
        return HoldAnalysis((), grid, body[seen_side], seen_side, np.zeros(len(grid), bool), [])
    angles = np.stack([cleaned[name] for name in watched])  # (W, T)
    window = max(round(STILL_WINDOW_S / step) | 1, 1)
    spread = np.stack([_moving_range(row, window) for row in angles])
    known = np.isfinite(angles)
    with np.errstate(invalid="ignore"):
        moving = known & ~(spread <= settings.tolerance_deg)
    # One angle in four may move: a keypoint going wrong at the frame's edge moves one chain,
    # whereas leaving a position moves several joints.
    still = ((known.sum(axis=0) - moving.sum(axis=0)) >= min(MIN_STILL_ANGLES, len(watched))) & (
        moving.sum(axis=0) <= known.sum(axis=0) // OUTLIER_SHARE)

    shortest = max(round(STILL_RUN_S / step), 1)
    spans = []  # [(first, last, opening position, closing position)]
    for first, last in _runs(still):
        if last - first + 1 < shortest:
            continue
        # The position where the hold begins and where it ends (a sagging hold drifts between
        # them), without the angle the stillness let move there: a keypoint going wrong is no
        # part of the position.
        head, tail = slice(first, min(first + window, last + 1)), slice(max(last + 1 - window, first), last + 1)
        opening = _position(angles, known & ~moving[:, head].any(axis=1, keepdims=True), head.start, head.stop)
        closing = _position(angles, known & ~moving[:, tail].any(axis=1, keepdims=True), tail.start, tail.stop)
        half = settings.tolerance_deg / 2
        while first > 0 and _agree(angles[:, first - 1], opening, half):
            first -= 1
        while last < len(grid) - 1 and _agree(angles[:, last + 1], closing, half):
            last += 1
        if spans and first <= spans[-1][1] + 1:  # grown into (or up to) the previous one: the same position
            previous = spans.pop()
            first, opening = previous[0], previous[2]
        spans.append((first, last, opening, closing))

    holds_spans: list[list[tuple[int, int]]] = []
    closings: list[np.ndarray] = []

    def joins(number: int, first: int, opening: np.ndarray) -> bool:
        """Whether a span starting at `first` in `opening` position continues hold `number` after a break."""
        gap_s = (first - holds_spans[number][-1][1]) * step
        return gap_s <= settings.max_break_s + 1e-9 and _agree(opening, closings[number], settings.tolerance_deg)

    for first, last, opening, closing in spans:
        if holds_spans and joins(-1, first, opening):
            holds_spans[-1].append((first, last))
            closings[-1] = closing
            continue
        # A still moment too short to be a hold (kneeling for a second in a plank) is part of
        # the break between two spans of the same position.
        shortest_hold = (holds_spans[-1][-1][1] - holds_spans[-1][0][0]) * step < settings.min_hold_s if holds_spans else False
        if len(holds_spans) > 1 and shortest_hold and joins(-2, first, opening):
            holds_spans.pop()
            closings.pop()
            holds_spans[-1].append((first, last))
            closings[-1] = closing
            continue
        holds_spans.append([(first, last)])
        closings.append(closing)

    holds = []
    for parts in holds_spans:
        start_s, end_s = float(grid[parts[0][0]]), float(grid[parts[-1][1]])
        ongoing = parts[-1][1] == len(grid) - 1
        if end_s - start_s < settings.min_hold_s and not (open_end and ongoing):
            continue
        breaks = tuple((float(grid[a[1]]), float(grid[b[0]])) for a, b in itertools.pairwise(parts))
        holds.append(Hold(start_s, end_s, breaks, _body_line(body, body_seen, parts), ongoing))
    # The body line drawn: the side the holds measured most (else the side seen in more frames).
    measured = [hold.body_line.side for hold in holds if hold.body_line.side]
    drawn_side = max(("left", "right"), key=measured.count) if measured else seen_side
    return HoldAnalysis(tuple(watched), grid, body[drawn_side], drawn_side, still, holds)


def hold_records(series: AngleSeries, analysis: HoldAnalysis) -> list[HoldRecord]:
    """The holds CSV rows of one person's analysis, numbered from 1."""
    return [
        HoldRecord(series.source, series.person_id, number, hold.start_s, hold.end_s, hold.duration_s, hold.held_s,
                   len(hold.breaks), hold.break_s, hold.body_line.side, hold.body_line.mean_deg, hold.body_line.sd_deg,
                   hold.body_line.min_deg, hold.body_line.seen)
        for number, hold in enumerate(analysis.holds, start=1)
    ]


def hold_notes(hold: Hold) -> list[str]:
    """Warnings about one hold's data: the body line seen in too few of its frames."""
    if hold.body_line.seen < MIN_PRESENCE:
        return [f"body line seen in only {percent(hold.body_line.seen)} of the hold"
                + ("" if hold.body_line.side else " (shoulder, hip and ankle of one side never all seen)")]
    return []


def session_holds(
    table: KeypointTable, person: int | None = None, settings: HoldSettings = HoldSettings(), skip_unusable: bool = False,
) -> tuple[list[tuple[AngleSeries, HoldAnalysis]], list[str]]:
    """The holds of every person in a keypoint table (or of `person`). Returns ([(series,
    analysis)] in source and person order, notes on people skipped). A person in fewer than
    MIN_FRAMES frames is an error when named by `person` or when nobody else is left; otherwise,
    with `skip_unusable`, a note. A person in few of the video's frames gets a `note`."""
    def analyse(item: AngleSeries) -> HoldAnalysis:
        if len(item.frames) < MIN_FRAMES:
            raise PoseAppError(f"person {item.person_id} of {item.source} is in {len(item.frames)} frames: "
                               f"too few to find holds (at least {MIN_FRAMES})")
        return find_holds(item, settings)

    return analyse_people(table, HOLD_ANGLES, analyse, person, skip_unusable, "holds to find")
