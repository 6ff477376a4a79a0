"""Repetitions of an exercise, found in one angle over time (numpy and scipy, no Qt).

What a repetition is (docs/reps.md has the picture in words):

* The angle series of one person (analysis/angles.py `angle_series`) is **gated** on confidence:
  a sample counts only when the angle exists and its confidence (lowest keypoint score) is at
  least `min_confidence`. The share of the person's frames that pass is the angle's
  **presence**; an angle present in fewer than MIN_PRESENCE of them is never counted on (what
  it would count is a guess), and the analysis says so instead of a bare 0.
* Gaps of at most `max_gap_s` are bridged by linear interpolation; a longer gap splits the
  series, and no repetition spans it. Each part is resampled on the series' own frame interval
  and **smoothed** with a Savitzky-Golay filter over `smooth_s` (it keeps the depth of a
  turning point better than a moving average).
* The **rest level** is found from the data, whatever the joint: a squat rests with a straight
  knee and bends it, a sit-to-stand rests seated with a bent knee and straightens it, a curl
  rests with a hanging (open) elbow, a raise with a closed shoulder. The rest is the end of the
  angle's range (its 5th to 95th percentile) where the series starts and ends; when those
  differ, the end it stays near longest; the person's position at the start breaks a tie.
  "down" means the angle falls from its rest level during a repetition, "up" that it rises.
  `direction` overrides this.
* **Hysteresis**: in a repetition the angle moves away from its rest level past the *enter*
  threshold and back past the *return* threshold. Automatic thresholds (the default) sit at
  ENTER_FRACTION and RETURN_FRACTION of the way from the rest end of the range to the other;
  wobbles that do not cross both, such as getting into position, are no repetition.
* A repetition **starts** when the smoothed angle leaves its rest level (the rest stretch
  before it) by REST_EDGE of its range, **turns** in the middle of the time it spends within
  REST_EDGE of its turning point, and **ends** when it is back within REST_EDGE of the rest
  stretch after it; times are interpolated between frames. `out_s` is start to turn, `back_s`
  turn to end, the same words in both directions. It must last at least `min_duration_s` and
  move at least `min_amplitude_deg`.

`find_reps` does this for one angle; analysis/rep_choice.py picks the angle to count on
(`choose_angle`: present in most frames, moving most regularly; it says why in one line) and
makes the rows of the repetitions CSV from a keypoint table (`session_reps`, `rep_records`);
analysis/rep_counter.py's `RepCounter` counts live, a frame at a time, with the same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from pose_app.core.angles import ANGLES
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.errors import PoseAppError

# Fractions of a repetition's range (rest level to turning point).
REST_EDGE = 0.05
# Automatic thresholds, as fractions of the angle's range from its rest level: a repetition must
# reach ENTER_FRACTION of the way to the other end and come back to within RETURN_FRACTION.
ENTER_FRACTION = 0.6
RETURN_FRACTION = 0.3
RANGE_PERCENTILES = (5.0, 95.0)
# The rest level of a stretch: the median of the smoothed angle there rather than its extreme, so
# that neither the noise left on a long rest nor a stretch at its end moves it (the turning point
# is the extreme).
REST_PERCENTILE = 50.0
# Where the series starts and ends: its first and last EDGE_S seconds. "Near" an end of the
# range: within REST_BAND of the range from it (how long the person stays there).
EDGE_S = 1.0
REST_BAND = 0.25
# The range from which an angle's motion counts as fully visible when choosing the clearest one:
# wider motions are compared by their regularity alone (a flailing forearm moves widely, too).
CLEAR_RANGE_DEG = 30.0
# Fewer frames of a person than this: too few to find repetitions in.
MIN_FRAMES = 15
DIRECTIONS = ("auto", "down", "up")
_SAVGOL_ORDER = 2


@dataclass(frozen=True)
class RepSettings:
    """How repetitions are found (the module docstring). thresholds: (low, high) degrees, None
    for automatic ones; direction: "auto" (the rest level found from the data), "down" (the
    angle falls from its rest level during a repetition) or "up" (it rises)."""

    smooth_s: float = 0.3
    thresholds: tuple[float, float] | None = None
    direction: str = "auto"
    min_duration_s: float = 0.4
    min_amplitude_deg: float = 15.0
    min_confidence: float = MIN_KEYPOINT_SCORE
    max_gap_s: float = 0.5


@dataclass(frozen=True)
class Rep:
    """One repetition: media seconds and degrees of the smoothed angle (RepRecord's fields).
    start_s: it leaves the rest level; turn_s: its turning point; end_s: back at rest;
    rest_deg: the rest level; turn_deg: the turning point (the depth of a squat, the height of a
    raise)."""

    start_s: float
    turn_s: float
    end_s: float
    rest_deg: float
    turn_deg: float
    confidence: float

    @property
    def range_deg(self) -> float:
        return abs(self.rest_deg - self.turn_deg)

    @property
    def out_s(self) -> float:
        """The way out: from leaving the rest level to the turning point."""
        return self.turn_s - self.start_s

    @property
    def back_s(self) -> float:
        """The way back: from the turning point to the rest level."""
        return self.end_s - self.turn_s


@dataclass
class RepAnalysis:
    """The repetitions of one angle and what they were found on: the smoothed angle on a regular
    grid (times, degrees; NaN between parts split by long gaps), the direction ("down" or "up")
    and why (`rest_reason`), the (low, high) thresholds in degrees, the angle's presence (share
    of the person's frames it was seen in), the one line saying why this angle was counted on
    (`choice`, empty when not chosen) and a warning (`note`, empty when none) when the data is
    too thin to count on."""

    angle: str
    direction: str
    rest_reason: str
    thresholds: tuple[float, float]
    times: np.ndarray
    smoothed: np.ndarray
    reps: list[Rep]
    presence: float = math.nan
    choice: str = ""
    note: str = ""


# The most samples a part of an angle series is resampled to (an hour at 1000 frames/s is 3.6 million).
MAX_RESAMPLED = 10_000_000


def frame_interval(times: np.ndarray) -> float:
    """The series' frame interval, seconds (NaN with fewer than two frames): the mean of the
    single steps (those within half a median step of the median: not a gap), refined to the whole
    span over the number of such steps in it, so that times rounded to milliseconds (as the CSV
    writes them: 33 and 34 ms steps at 30 frames/s) give the true rate."""
    times = np.asarray(times, np.float64)
    steps = np.diff(times)
    steps = steps[steps > 0]
    if not len(steps):
        return math.nan
    median = float(np.median(steps))
    single = float(steps[np.abs(steps - median) <= median / 2].mean())
    span = float(times[-1] - times[0])
    return span / max(round(span / single), 1)


def gated(degrees: np.ndarray, confidence: np.ndarray, min_confidence: float) -> np.ndarray:
    """(T,) bool: the samples that count (the angle exists and is confident enough)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(degrees) & (np.asarray(confidence, np.float64) >= min_confidence)


def presence(degrees: np.ndarray, confidence: np.ndarray, min_confidence: float = MIN_KEYPOINT_SCORE) -> float:
    """The share of the frames (0..1) in which the angle counts (`gated`); NaN with no frame."""
    valid = gated(np.asarray(degrees, np.float64), confidence, min_confidence)
    return float(valid.mean()) if len(valid) else math.nan


def series_parts(times: np.ndarray, degrees: np.ndarray, confidence: np.ndarray, settings: RepSettings, kind: str,
           step: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The gated series cut at gaps longer than max_gap_s, each part resampled every `step`
    seconds (short gaps interpolated) and smoothed: [(times, degrees)]."""
    valid = gated(degrees, confidence, settings.min_confidence)
    times, values = times[valid], degrees[valid]
    if kind == "segment" and len(values):
        values = np.degrees(np.unwrap(np.radians(values)))  # a segment crossing +-180 stays continuous
    cuts = np.flatnonzero(np.diff(times) > settings.max_gap_s + 1e-9) + 1
    parts = []
    for part_times, part_values in zip(np.split(times, cuts), np.split(values, cuts)):
        if len(part_times) < 2:
            continue
        count = math.floor((part_times[-1] - part_times[0]) / step + 1e-6) + 1
        if count > MAX_RESAMPLED:  # times a few nanoseconds apart in a CSV, not a recording
            raise PoseAppError(f"the times of the angle series are too dense to resample ({count} samples at {step:g} s)")
        grid = part_times[0] + step * np.arange(count)
        smoothed = smooth(np.interp(grid, part_times, part_values), step, settings.smooth_s)
        if kind == "joint":  # the filter's polynomial may overshoot a sharp turn past 0 or 180
            smoothed = np.clip(smoothed, 0.0, 180.0)
        parts.append((grid, smoothed))
    return parts


def smooth(values: np.ndarray, step: float, smooth_s: float) -> np.ndarray:
    """Savitzky-Golay (quadratic) over about smooth_s seconds of samples `step` apart."""
    window = min(round(smooth_s / step) | 1, len(values) if len(values) % 2 else len(values) - 1)
    if window <= _SAVGOL_ORDER:
        return values
    return savgol_filter(values, window, _SAVGOL_ORDER, mode="interp")


def rest_side(parts: list[tuple[np.ndarray, np.ndarray]], low: float, high: float) -> tuple[str, str]:
    """(direction, why) from where the person rests: the end of the range [low, high] the series
    starts and ends near; when those differ, the end it stays near longest; else where it starts.
    Rest at the high end: "down" (a repetition falls from it), at the low end: "up"."""
    middle = (low + high) / 2
    first_times, first = parts[0]
    last_times, last = parts[-1]
    starts_high = float(np.mean(first[first_times <= first_times[0] + EDGE_S])) >= middle
    ends_high = float(np.mean(last[last_times >= last_times[-1] - EDGE_S])) >= middle
    if starts_high == ends_high:
        return ("down" if starts_high else "up"), "where it starts and ends"
    every = np.concatenate([values for _, values in parts])
    band = REST_BAND * (high - low)
    near_high, near_low = int(np.count_nonzero(every >= high - band)), int(np.count_nonzero(every <= low + band))
    if near_high != near_low:
        return ("down" if near_high > near_low else "up"), "where it stays longest"
    return ("down" if starts_high else "up"), "where it starts"


def _thresholds(values: np.ndarray, direction: str) -> tuple[float, float]:
    """Automatic (low, high) degrees from the angle's range and the direction."""
    bottom, top = (float(v) for v in np.percentile(values, RANGE_PERCENTILES))
    span = top - bottom
    if direction == "down":  # rest at the top
        return top - ENTER_FRACTION * span, top - RETURN_FRACTION * span
    return bottom + RETURN_FRACTION * span, bottom + ENTER_FRACTION * span


def _stretch(mask: np.ndarray, index: int, forward: bool) -> tuple[int, int]:
    """(first, last) of the run of True in `mask` nearest `index` on one side (after it when
    `forward`, ending before it otherwise); (-1, -1) when there is none."""
    if forward:
        hits = np.flatnonzero(mask[index:])
        if not len(hits):
            return -1, -1
        first = index + int(hits[0])
        misses = np.flatnonzero(~mask[first:])
        return first, (first + int(misses[0]) - 1) if len(misses) else len(mask) - 1
    hits = np.flatnonzero(mask[:index])
    if not len(hits):
        return -1, -1
    last = int(hits[-1])
    misses = np.flatnonzero(~mask[:last])
    return (int(misses[-1]) + 1) if len(misses) else 0, last


def _run_around(mask: np.ndarray, index: int) -> tuple[int, int]:
    """(first, last) of the run of True in `mask` that holds `index` (which must be True)."""
    before = np.flatnonzero(~mask[:index])
    after = np.flatnonzero(~mask[index:])
    return (int(before[-1]) + 1) if len(before) else 0, (index + int(after[0]) - 1) if len(after) else len(mask) - 1


def _crossing(times: np.ndarray, values: np.ndarray, a: int, b: int, level: float) -> float:
    """The time between samples a and b (neighbours) where the line through them meets `level`."""
    if values[a] == values[b]:
        return float(times[a])
    fraction = (level - values[a]) / (values[b] - values[a])
    return float(times[a] + min(max(fraction, 0.0), 1.0) * (times[b] - times[a]))


def _dips(times: np.ndarray, values: np.ndarray, low: float, high: float) -> list[tuple[float, float, float, float, float]]:
    """The dips of one smoothed part: below `low` from a stretch above `high` and back above it.
    [(start_s, turn_s, end_s, turning value, rest value)]."""
    state = np.where(values >= high, 1, np.where(values <= low, -1, 0))
    marked = np.flatnonzero(state)
    if not len(marked):
        return []
    labels = state[marked]
    run_starts = np.r_[0, np.flatnonzero(np.diff(labels)) + 1]
    above = values >= high
    dips = []
    for k in range(1, len(run_starts) - 1):
        if labels[run_starts[k]] != -1:
            continue  # runs alternate, so a low run has high runs on both sides
        descent = int(marked[run_starts[k]])
        back = int(marked[run_starts[k + 1]])
        before, after = _stretch(above, descent, forward=False), _stretch(above, back, forward=True)
        deepest = descent + int(np.argmin(values[descent:back]))
        bottom = float(values[deepest])
        top_before = float(np.percentile(values[before[0]:before[1] + 1], REST_PERCENTILE))
        top_after = float(np.percentile(values[after[0]:after[1] + 1], REST_PERCENTILE))
        # Start: the last sample before the turning point still within REST_EDGE of the rest
        # level before; end: the first after it within REST_EDGE of the rest level after.
        level = top_before - REST_EDGE * (top_before - bottom)
        i = before[0] + int(np.flatnonzero(values[before[0]:deepest + 1] >= level)[-1])
        start = _crossing(times, values, i, i + 1, level)
        level = top_after - REST_EDGE * (top_after - bottom)
        j = deepest + int(np.flatnonzero(values[deepest:after[1] + 1] >= level)[0])
        end = _crossing(times, values, j - 1, j, level)
        near = values <= bottom + REST_EDGE * (min(top_before, top_after) - bottom)
        first, last = _run_around(near, deepest)
        turn_s = (float(times[first]) + float(times[last])) / 2
        dips.append((start, turn_s, end, bottom, max(top_before, top_after)))
    return dips


def find_reps(
    times: np.ndarray, degrees: np.ndarray, confidence: np.ndarray, angle: str, settings: RepSettings = RepSettings(),
) -> RepAnalysis:
    """The repetitions of one angle series (times in seconds, degrees with NaN where missing,
    confidence per frame), with the rules of the module docstring."""
    times = np.asarray(times, np.float64)
    degrees = np.asarray(degrees, np.float64)
    confidence = np.asarray(confidence, np.float64)
    if settings.direction not in DIRECTIONS:
        raise PoseAppError(f"direction {settings.direction!r}: use one of {', '.join(DIRECTIONS)}")
    seen = presence(degrees, confidence, settings.min_confidence)
    step = frame_interval(times)
    parts = series_parts(times, degrees, confidence, settings, ANGLES[angle].kind, step) if math.isfinite(step) else []
    if not parts:
        return RepAnalysis(angle, settings.direction, "", (math.nan, math.nan), np.zeros(0), np.zeros(0), [], seen)
    every = np.concatenate([values for _, values in parts])
    rough = tuple(float(v) for v in np.percentile(every, RANGE_PERCENTILES))
    if settings.direction == "auto":
        direction, reason = rest_side(parts, *rough)
    else:
        direction, reason = settings.direction, "set by --direction"
    low, high = settings.thresholds or _thresholds(every, direction)
    sign = 1.0 if direction == "down" else -1.0
    # Work on sign * angle, in which every repetition is a dip.
    dip_low, dip_high = (low, high) if sign > 0 else (-high, -low)
    reps = []
    for part_times, part_values in parts:
        for start, turn_s, end, turn, rest in _dips(part_times, sign * part_values, dip_low, dip_high):
            inside = (times >= start) & (times <= end) & np.isfinite(confidence)
            rep = Rep(start, turn_s, end, sign * rest, sign * turn,
                      float(confidence[inside].mean()) if inside.any() else math.nan)
            if rep.end_s - rep.start_s >= settings.min_duration_s and rep.range_deg >= settings.min_amplitude_deg:
                reps.append(rep)
    grid_times = np.concatenate([np.r_[t, np.nan] for t, _ in parts])[:-1]
    grid_values = np.concatenate([np.r_[v, np.nan] for _, v in parts])[:-1]
    return RepAnalysis(angle, direction, reason, (float(low), float(high)), grid_times, grid_values, reps, seen)
