"""Repetitions of an exercise, found in one angle over time (numpy and scipy, no Qt).

What a repetition is (docs/reps.md has the picture in words):

* The angle series of one person (analysis/angles.py `angle_series`) is **gated** on confidence:
  a sample counts only when the angle exists and its confidence (lowest keypoint score) is at
  least `min_confidence`. Gaps of at most `max_gap_s` are bridged by linear interpolation; a
  longer gap splits the series, and no repetition spans it.
* Each part is resampled on the series' own frame interval and **smoothed** with a
  Savitzky-Golay filter over `smooth_s` (it keeps the depth of a turning point better than a
  moving average).
* **Hysteresis**: in a repetition the angle moves away from its rest level past the *enter*
  threshold and back past the *return* threshold. The direction is "down" for knee, hip and
  elbow (flexion closes the inner angle), "up" for the shoulder (a raise opens it), and for a
  segment angle the side of its range the series starts on is its rest level. Automatic
  thresholds (the default) sit at ENTER_FRACTION and RETURN_FRACTION of the way from the rest
  level to the other end of the angle's range (its 5th to 95th percentile); wobbles that do not
  cross both, such as getting into position, are no repetition.
* A repetition **starts** when the smoothed angle leaves its rest level (the extreme of the
  rest stretch before it) by REST_EDGE of its range, **ends** when it is back within REST_EDGE
  of the rest stretch after it, and its **bottom** is the middle of the time it spends within
  REST_EDGE of its turning point; times are interpolated between frames. It must last at least
  `min_duration_s` and move at least `min_amplitude_deg`.

`find_reps` does this for one angle, `choose_angle` picks the angle with the clearest periodic
motion, `session_reps` / `rep_records` make the rows of the repetitions CSV (io/reps_csv.py) from a
keypoint table, and `RepCounter` counts live, a frame at a time, with the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import correlate, savgol_filter

from pose_app.analysis.angles import angle_series
from pose_app.core.angles import ANGLE_NAMES, ANGLES, JOINT_ANGLES, parse_angle_names
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import AngleSeries, KeypointTable
from pose_app.io.reps_csv import RepRecord, write_reps_csv

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
# The range from which an angle's motion counts as fully visible when choosing the clearest one:
# wider motions are compared by their regularity alone (a flailing forearm moves widely, too).
CLEAR_RANGE_DEG = 30.0
# Fewer frames of a person than this: too few to find repetitions in.
MIN_FRAMES = 15
# Joint angles whose repetitions open the angle (a raise); the others close it (flexion).
OPENING_JOINTS = ("shoulder",)
DIRECTIONS = ("auto", "down", "up")
_SAVGOL_ORDER = 2


@dataclass(frozen=True)
class RepSettings:
    """How repetitions are found (the module docstring). thresholds: (low, high) degrees, None
    for automatic ones; direction: "auto", "down" (the angle decreases during a repetition) or
    "up" (it increases)."""

    smooth_s: float = 0.3
    thresholds: tuple[float, float] | None = None
    direction: str = "auto"
    min_duration_s: float = 0.4
    min_amplitude_deg: float = 15.0
    min_confidence: float = MIN_KEYPOINT_SCORE
    max_gap_s: float = 0.5


@dataclass(frozen=True)
class Rep:
    """One repetition: media seconds and degrees of the smoothed angle (RepRecord's fields)."""

    start_s: float
    bottom_s: float
    end_s: float
    min_deg: float
    max_deg: float
    confidence: float

    @property
    def range_deg(self) -> float:
        return self.max_deg - self.min_deg

    @property
    def down_s(self) -> float:
        return self.bottom_s - self.start_s

    @property
    def up_s(self) -> float:
        return self.end_s - self.bottom_s

    @property
    def depth_deg(self) -> float:
        """The turning point: the smallest angle of a closing repetition, the largest of an opening one."""
        return self.min_deg if self._closing else self.max_deg

    _closing: bool = field(default=True, repr=False, compare=False)


@dataclass
class RepAnalysis:
    """The repetitions of one angle and what they were found on: the smoothed angle on a regular
    grid (times, degrees; NaN between parts split by long gaps), the direction and the (low, high)
    thresholds in degrees."""

    angle: str
    direction: str
    thresholds: tuple[float, float]
    times: np.ndarray
    smoothed: np.ndarray
    reps: list[Rep]


# The most samples a part of an angle series is resampled to (an hour at 1000 frames/s is 3.6 million).
MAX_RESAMPLED = 10_000_000


def frame_interval(times: np.ndarray) -> float:
    """The series' frame interval, seconds (NaN with fewer than two frames): the median step,
    refined to the whole span over the number of such steps in it, so that times rounded to
    milliseconds (as the CSV writes them) give the true rate."""
    times = np.asarray(times, np.float64)
    steps = np.diff(times)
    steps = steps[steps > 0]
    if not len(steps):
        return math.nan
    span = float(times[-1] - times[0])
    return span / max(round(span / float(np.median(steps))), 1)


def _parts(times: np.ndarray, degrees: np.ndarray, confidence: np.ndarray, settings: RepSettings, kind: str,
           step: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The gated series cut at gaps longer than max_gap_s, each part resampled every `step`
    seconds (short gaps interpolated) and smoothed: [(times, degrees)]."""
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(degrees) & (confidence >= settings.min_confidence)
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
        smoothed = _smooth(np.interp(grid, part_times, part_values), step, settings.smooth_s)
        if kind == "joint":  # the filter's polynomial may overshoot a sharp turn past 0 or 180
            smoothed = np.clip(smoothed, 0.0, 180.0)
        parts.append((grid, smoothed))
    return parts


def _smooth(values: np.ndarray, step: float, smooth_s: float) -> np.ndarray:
    window = min(round(smooth_s / step) | 1, len(values) if len(values) % 2 else len(values) - 1)
    if window <= _SAVGOL_ORDER:
        return values
    return savgol_filter(values, window, _SAVGOL_ORDER, mode="interp")


def _direction(angle: str, settings: RepSettings, parts: list[tuple[np.ndarray, np.ndarray]], low: float, high: float) -> str:
    """"down" or "up": as set, else by the angle (joints), else the side the series starts on."""
    if settings.direction != "auto":
        return settings.direction
    spec = ANGLES[angle]
    if spec.kind == "joint":
        return "up" if spec.group in OPENING_JOINTS else "down"
    times, values = parts[0]
    opening = values[times <= times[0] + 1.0]
    return "down" if float(np.mean(opening)) >= (low + high) / 2 else "up"


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
    [(start_s, bottom_s, end_s, bottom value, top value)]."""
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
        bottom_s = (float(times[first]) + float(times[last])) / 2
        dips.append((start, bottom_s, end, bottom, max(top_before, top_after)))
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
    step = frame_interval(times)
    parts = _parts(times, degrees, confidence, settings, ANGLES[angle].kind, step) if math.isfinite(step) else []
    if not parts:
        return RepAnalysis(angle, settings.direction, (math.nan, math.nan), np.zeros(0), np.zeros(0), [])
    every = np.concatenate([values for _, values in parts])
    rough = tuple(float(v) for v in np.percentile(every, RANGE_PERCENTILES))
    direction = _direction(angle, settings, parts, *rough)
    low, high = settings.thresholds or _thresholds(every, direction)
    sign = 1.0 if direction == "down" else -1.0
    # Work on sign * angle, in which every repetition is a dip.
    dip_low, dip_high = (low, high) if sign > 0 else (-high, -low)
    reps = []
    for part_times, part_values in parts:
        for start, bottom_s, end, bottom, top in _dips(part_times, sign * part_values, dip_low, dip_high):
            extremes = sorted((sign * bottom, sign * top))
            inside = (times >= start) & (times <= end) & np.isfinite(confidence)
            rep = Rep(start, bottom_s, end, extremes[0], extremes[1],
                      float(confidence[inside].mean()) if inside.any() else math.nan, _closing=sign > 0)
            if rep.end_s - rep.start_s >= settings.min_duration_s and rep.range_deg >= settings.min_amplitude_deg:
                reps.append(rep)
    grid_times = np.concatenate([np.r_[t, np.nan] for t, _ in parts])[:-1]
    grid_values = np.concatenate([np.r_[v, np.nan] for _, v in parts])[:-1]
    return RepAnalysis(angle, direction, (float(low), float(high)), grid_times, grid_values, reps)


def periodicity(times: np.ndarray, degrees: np.ndarray, confidence: np.ndarray, angle: str,
                settings: RepSettings = RepSettings()) -> tuple[float, float]:
    """How clearly an angle moves back and forth: (score 0..1, range in degrees). The score is the
    autocorrelation peak of its longest smoothed part at a lag of min_duration_s to half the part,
    times the share of the series that part covers, times the angle's mean confidence (an angle
    the network sees better), times its range (5th to 95th percentile) over CLEAR_RANGE_DEG when
    narrower; 0 when it cannot tell or the range is below min_amplitude_deg."""
    step = frame_interval(times)
    if not math.isfinite(step):
        return 0.0, 0.0
    parts = _parts(np.asarray(times, np.float64), np.asarray(degrees, np.float64), np.asarray(confidence, np.float64),
                   settings, ANGLES[angle].kind, step)
    if not parts:
        return 0.0, 0.0
    part_times, values = max(parts, key=lambda part: len(part[0]))
    shortest = max(math.ceil(settings.min_duration_s / step), 1)
    centred = values - values.mean()
    if len(values) < 2 * shortest + 2 or not np.any(centred):
        return 0.0, 0.0
    lags = np.arange(len(values))
    # Unbiased autocorrelation: each lag divided by how many pairs it has.
    acf = correlate(centred, centred, mode="full", method="fft")[len(values) - 1:] / (len(values) - lags)
    peak = float(acf[shortest:len(values) // 2 + 1].max() / acf[0])
    span = float(np.subtract(*np.percentile(values, RANGE_PERCENTILES[::-1])))
    if span < settings.min_amplitude_deg:
        return 0.0, span
    coverage = (part_times[-1] - part_times[0]) / max(float(times[-1] - times[0]), step)
    seen = np.isfinite(degrees) & np.isfinite(confidence)
    clarity = float(np.mean(confidence[seen])) if seen.any() else 0.0
    return max(peak, 0.0) * coverage * clarity * min(span / CLEAR_RANGE_DEG, 1.0), span


def choose_angle(series: AngleSeries, candidates: Sequence[str], settings: RepSettings = RepSettings()) -> str | None:
    """The candidate (names in `series`) with the clearest periodic motion (`periodicity`; scores
    equal to 2 decimals: the wider range); None when no candidate moves back and forth at all."""
    scores = {
        name: periodicity(series.time_s, series.degrees[:, series.names.index(name)],
                          series.confidence[:, series.names.index(name)], name, settings)
        for name in candidates
    }
    best = max(scores, key=lambda name: (round(scores[name][0], 2), scores[name][1]), default=None)
    return best if best is not None and scores[best][0] > 0 else None


def pick_angle(series: AngleSeries, candidates: Sequence[str], settings: RepSettings = RepSettings()) -> str | None:
    """The angle to count on among `candidates`: of those ever seen, the joint angles if any (a
    segment's direction also changes when the person turns or the camera tilts), else the segment
    angles; the one with the clearest periodic motion (the first when none moves back and forth).
    None when no candidate is ever seen."""
    seen = [name for name in candidates if np.isfinite(series.degrees[:, series.names.index(name)]).any()]
    pool = [name for name in seen if name in JOINT_ANGLES] or seen
    if len(pool) <= 1:
        return pool[0] if pool else None
    return choose_angle(series, pool, settings) or pool[0]


def angle_candidates(angle: str | None) -> tuple[str, ...]:
    """The angles `--angle` names: None -> every angle (pick_angle prefers joints); a joint
    without its side -> both sides; an angle's name -> itself. PoseAppError for an unknown name or
    several."""
    if angle is None:
        return ANGLE_NAMES
    if "," in angle or angle in ("all", "joints", "segments"):
        raise PoseAppError(f"--angle takes one angle (e.g. knee or left_knee), not {angle!r}")
    return parse_angle_names(angle)


def side_of(angle: str) -> str:
    """"left", "right" or "" (an angle of both sides, such as the trunk)."""
    return next((side for side in ("left", "right") if angle.startswith(f"{side}_")), "")


def rep_records(series: AngleSeries, analysis: RepAnalysis) -> list[RepRecord]:
    """The repetitions CSV rows of one person's analysis, numbered from 1."""
    return [
        RepRecord(series.source, series.person_id, number, analysis.angle, side_of(analysis.angle), rep.start_s,
                  rep.bottom_s, rep.end_s, rep.min_deg, rep.max_deg, rep.range_deg, rep.down_s, rep.up_s, rep.confidence)
        for number, rep in enumerate(analysis.reps, start=1)
    ]


def _never_seen(series: AngleSeries, candidates: Sequence[str]) -> str:
    if len(candidates) > 2:
        needed = "the keypoints of any angle"
    else:
        needed = " or ".join(", ".join(ANGLES[name].keypoints) for name in candidates)
    return (f"person {series.person_id} of {series.source}: no frame has {needed} all scored "
            f"{MIN_KEYPOINT_SCORE} or more, so there is no angle to count repetitions on")


def analyse_person(series: AngleSeries, candidates: Sequence[str], settings: RepSettings = RepSettings()) -> RepAnalysis:
    """One person's repetitions on the clearest of `candidates` (angles in `series`).
    PoseAppError when the person has too few frames or none of the angles is ever seen."""
    if len(series.frames) < MIN_FRAMES:
        raise PoseAppError(
            f"person {series.person_id} of {series.source} is in {len(series.frames)} frames: "
            f"too few to count repetitions (at least {MIN_FRAMES})"
        )
    angle = pick_angle(series, candidates, settings)
    if angle is None:
        raise PoseAppError(_never_seen(series, candidates))
    column = series.names.index(angle)
    return find_reps(series.time_s, series.degrees[:, column], series.confidence[:, column], angle, settings)


def session_reps(
    table: KeypointTable, angle: str | None = None, person: int | None = None,
    settings: RepSettings = RepSettings(), skip_unusable: bool = False,
) -> tuple[list[tuple[AngleSeries, RepAnalysis]], list[str]]:
    """The repetitions of every person in a keypoint table (or of `person`), on `angle`
    (angle_candidates). Returns ([(series, analysis)] in source and person order, notes on people
    skipped). A person with too few frames or without the angle is an error when named by
    `person` or when nobody else is left; otherwise, with `skip_unusable`, a note."""
    candidates = angle_candidates(angle)
    everyone = angle_series(table, candidates)
    if person is not None:
        present = sorted({item.person_id for item in everyone})
        everyone = [item for item in everyone if item.person_id == person]
        if not everyone:
            raise PoseAppError(f"there is no person_id {person} (the file has {', '.join(map(str, present)) or 'nobody'})")
    if not everyone:
        raise PoseAppError("the file holds no poses: no repetitions to count")
    results, notes = [], []
    for item in everyone:
        try:
            results.append((item, analyse_person(item, candidates, settings)))
        except PoseAppError as error:
            if person is not None or not skip_unusable:
                raise
            notes.append(f"skipped {error}")
    if not results:
        raise PoseAppError(notes[0].removeprefix("skipped ") if len(notes) == 1 else "; ".join(notes))
    return results, notes


def write_session_reps(table: KeypointTable, path: str, settings: RepSettings = RepSettings()) -> list[RepRecord]:
    """A recording's repetitions CSV (`Recording` calls it when the recording is finished): every
    person with enough frames, each on their clearest joint angle, as `pose-app reps` on the
    recording's CSV writes it; an empty table (header only) when nobody qualifies."""
    try:
        results, _ = session_reps(table, settings=settings, skip_unusable=True)
    except PoseAppError:
        results = []
    records = [record for series, analysis in results for record in rep_records(series, analysis)]
    write_reps_csv(records, path)
    return records


class _Track:
    """One person's frames, kept in arrays that grow by doubling (cheap appends)."""

    def __init__(self, angles: int):
        self.size = 0
        self.times = np.zeros(64)
        self.degrees = np.zeros((64, angles))
        self.confidence = np.zeros((64, angles))
        self.analysed_at = -1  # self.size when last analysed
        self.analysis: RepAnalysis | None = None
        self.angle: str | None = None
        self.chosen_at = -math.inf  # media time the angle was last chosen

    def append(self, time_s: float, degrees: np.ndarray, confidence: np.ndarray) -> None:
        if self.size == len(self.times):
            self.times = np.resize(self.times, 2 * self.size)
            self.degrees = np.resize(self.degrees, (2 * self.size, self.degrees.shape[1]))
            self.confidence = np.resize(self.confidence, (2 * self.size, self.confidence.shape[1]))
        self.times[self.size] = time_s
        self.degrees[self.size] = degrees
        self.confidence[self.size] = confidence
        self.size += 1


class RepCounter:
    """Live repetition counts per person, fed one frame's angles at a time (no Qt): the same rules
    as `find_reps` on everything seen since the last reset, so at the end of a recording it
    counts what `pose-app reps` counts on its CSV. angle: as `--angle` (None: `pick_angle` on what
    was seen so far, chosen again every RECHOOSE_S of media time until a repetition is counted on
    it, then kept until a reset, so the count never jumps back). The analysis runs when asked for
    (`analysis`), not per frame."""

    RECHOOSE_S = 2.0

    def __init__(self, angle: str | None = None, settings: RepSettings = RepSettings(), names: Sequence[str] = ANGLE_NAMES):
        self.settings = settings
        self.names = tuple(names)
        self._tracks: dict[int, _Track] = {}
        self._last_time = -math.inf
        self.set_angle(angle)

    def set_angle(self, angle: str | None) -> None:
        """Count on another angle (as `--angle`) from now on, over the frames already seen too."""
        self.candidates = angle_candidates(angle)
        for track in self._tracks.values():
            track.angle, track.analysed_at, track.chosen_at = None, -1, -math.inf

    def add(self, time_s: float, person_ids: Sequence[int] | np.ndarray, degrees: np.ndarray, confidence: np.ndarray) -> None:
        """One frame: person_ids (P,), degrees and confidence (P, len(names)). Time going back (a
        seek, a loop) starts the count again."""
        if time_s < self._last_time:
            self.reset()
        self._last_time = time_s
        degrees, confidence = np.asarray(degrees, np.float64), np.asarray(confidence, np.float64)
        for row, person_id in enumerate(np.asarray(person_ids).tolist()):
            track = self._tracks.get(person_id)
            if track is None:
                track = self._tracks[person_id] = _Track(len(self.names))
            track.append(time_s, degrees[row], confidence[row])

    def reset(self) -> None:
        self._tracks.clear()
        self._last_time = -math.inf

    def people(self) -> list[int]:
        return list(self._tracks)

    def analysis(self, person_id: int) -> RepAnalysis | None:
        """The person's repetitions so far (None before MIN_FRAMES frames or without the angle)."""
        track = self._tracks.get(person_id)
        if track is None or track.size < MIN_FRAMES:
            return None
        if track.analysed_at == track.size:
            return track.analysis
        times = track.times[:track.size]
        degrees, confidence = track.degrees[:track.size], track.confidence[:track.size]
        counted = track.analysis is not None and track.analysis.reps
        if track.angle is None or (not counted and times[-1] - track.chosen_at >= self.RECHOOSE_S):
            series = AngleSeries("", person_id, self.names, np.arange(track.size), times, degrees, confidence)
            track.angle = pick_angle(series, self.candidates, self.settings)
            track.chosen_at = float(times[-1])
        if track.angle is None:
            track.analysis = None
        else:
            column = self.names.index(track.angle)
            track.analysis = find_reps(times, degrees[:, column], confidence[:, column], track.angle, self.settings)
        track.analysed_at = track.size
        return track.analysis

    def count(self, person_id: int) -> int:
        analysis = self.analysis(person_id)
        return 0 if analysis is None else len(analysis.reps)
