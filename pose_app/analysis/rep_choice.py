"""Which angle repetitions are counted on, and the repetitions of every person in a keypoint
table (numpy and scipy, no Qt).

`choose_angle` picks, of the angles present in at least MIN_PRESENCE of a person's frames, the
one moving most regularly (joint angles before segment angles) and says why in one line;
`session_reps` / `rep_records` make the rows of the repetitions CSV (io/reps_csv.py) from a
keypoint table with analysis/reps.py's `find_reps`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import correlate

from pose_app.analysis.angles import MIN_PRESENCE, analyse_people, percent
from pose_app.analysis.reps import (
    CLEAR_RANGE_DEG,
    MIN_FRAMES,
    RANGE_PERCENTILES,
    RepAnalysis,
    RepSettings,
    find_reps,
    frame_interval,
    presence,
    series_parts,
)
from pose_app.core.angles import ANGLE_NAMES, ANGLES, JOINT_ANGLES, parse_angle_names
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import AngleSeries, KeypointTable
from pose_app.io.reps_csv import RepRecord, write_reps_csv


@dataclass(frozen=True)
class AngleScore:
    """How well an angle can be counted on: its presence (share of the person's frames it passes
    the confidence gate in), its range (5th to 95th percentile of the smoothed angle, degrees) and
    its regularity (0..1, `regularity`)."""

    angle: str
    presence: float
    range_deg: float
    regularity: float

    def motion(self, min_amplitude_deg: float) -> float:
        """How clearly it moves back and forth, whatever its presence: regularity times the range
        over CLEAR_RANGE_DEG when narrower; 0 below the smallest range of a repetition."""
        if not self.range_deg >= min_amplitude_deg:
            return 0.0
        return self.regularity * min(self.range_deg / CLEAR_RANGE_DEG, 1.0)

    def score(self, min_amplitude_deg: float) -> float:
        """The choice's score: presence times motion; 0 when present in fewer than MIN_PRESENCE."""
        return self.presence * self.motion(min_amplitude_deg) if self.presence >= MIN_PRESENCE else 0.0

    def describe(self) -> str:
        return f"present in {percent(self.presence)} of frames, range {self.range_deg:.0f}°, regularity {self.regularity:.2f}"


def regularity(times: np.ndarray, degrees: np.ndarray, confidence: np.ndarray, angle: str,
               settings: RepSettings = RepSettings()) -> tuple[float, float]:
    """How regularly an angle moves: (regularity 0..1, range in degrees). The regularity is the
    autocorrelation peak of its longest smoothed part at a lag of min_duration_s to half the part:
    near 1 for a motion that repeats itself or moves smoothly, near 0 for jitter. (0, range) when
    it cannot tell."""
    step = frame_interval(times)
    if not math.isfinite(step):
        return 0.0, 0.0
    parts = series_parts(np.asarray(times, np.float64), np.asarray(degrees, np.float64), np.asarray(confidence, np.float64),
                   settings, ANGLES[angle].kind, step)
    if not parts:
        return 0.0, 0.0
    values = max((values for _, values in parts), key=len)
    span = float(np.subtract(*np.percentile(values, RANGE_PERCENTILES[::-1])))
    shortest = max(math.ceil(settings.min_duration_s / step), 1)
    centred = values - values.mean()
    if len(values) < 2 * shortest + 2 or not np.any(centred):
        return 0.0, span
    lags = np.arange(len(values))
    # Unbiased autocorrelation: each lag divided by how many pairs it has.
    acf = correlate(centred, centred, mode="full", method="fft")[len(values) - 1:] / (len(values) - lags)
    peak = float(acf[shortest:len(values) // 2 + 1].max() / acf[0])
    return max(peak, 0.0), span


def angle_scores(series: AngleSeries, candidates: Sequence[str], settings: RepSettings = RepSettings()) -> list[AngleScore]:
    """The AngleScore of each candidate (names in `series`) seen in at least one frame."""
    scores = []
    for name in candidates:
        column = series.names.index(name)
        degrees, confidence = series.degrees[:, column], series.confidence[:, column]
        seen = presence(degrees, confidence, settings.min_confidence)
        if seen > 0:
            scores.append(AngleScore(name, seen, *reversed(regularity(series.time_s, degrees, confidence, name, settings))))
    return scores


@dataclass(frozen=True)
class AngleChoice:
    """The angle to count on (None: no candidate seen in any frame), whether it is present in
    enough frames to be counted on (`usable`), and why, in one line."""

    angle: str | None
    usable: bool
    reason: str


def choose_angle(series: AngleSeries, candidates: Sequence[str], settings: RepSettings = RepSettings()) -> AngleChoice:
    """The candidate to count on: of those present in at least MIN_PRESENCE of the frames, the
    joint angles that move (a segment's direction also changes when the person turns or the
    camera tilts), else the segment angles that move, else those that do not; the best
    AngleScore.score (equal to 2 decimals: the wider range). An angle present in fewer frames is
    never chosen; when every candidate is, the most present one comes back not `usable`."""
    scores = angle_scores(series, candidates, settings)
    if not scores:
        return AngleChoice(None, False, "")
    least = settings.min_amplitude_deg
    usable = [score for score in scores if score.presence >= MIN_PRESENCE]
    if not usable:
        best = max(scores, key=lambda score: score.presence)
        return AngleChoice(best.angle, False, f"{best.angle}: present in {percent(best.presence)} of frames "
                                              f"(at least {percent(MIN_PRESENCE)} needed); no repetitions counted")
    joints = [score for score in usable if score.angle in JOINT_ANGLES]
    segments = [score for score in usable if score.angle not in JOINT_ANGLES]
    pool = next(group for group in (
        [s for s in joints if s.score(least) > 0], [s for s in segments if s.score(least) > 0], joints, segments,
    ) if group)
    ranked = sorted(pool, key=lambda score: (round(score.score(least), 2), score.range_deg), reverse=True)
    best = ranked[0]
    if len(candidates) == 1:
        return AngleChoice(best.angle, True, f"{best.angle} (asked for): {best.describe()}")
    reason = f"{best.angle}: {best.describe()}"
    if len(ranked) > 1:
        reason += f"; next {ranked[1].angle}: regularity {ranked[1].regularity:.2f}, range {ranked[1].range_deg:.0f}°"
    # Say so when a thinly seen angle moved more clearly: the count may not be the exercise's.
    joint = best.angle in JOINT_ANGLES
    hidden = max((score for score in scores if score.presence < MIN_PRESENCE and (score.angle in JOINT_ANGLES) == joint),
                 key=lambda score: score.motion(least), default=None)
    if hidden is not None and hidden.motion(least) > best.motion(least):
        reason += (f"; {hidden.angle} moves more clearly but is present in only {percent(hidden.presence)} of frames")
    return AngleChoice(best.angle, True, reason)


def pick_angle(series: AngleSeries, candidates: Sequence[str], settings: RepSettings = RepSettings()) -> str | None:
    """The angle `choose_angle` counts on, None when none is present in enough frames."""
    choice = choose_angle(series, candidates, settings)
    return choice.angle if choice.usable else None


def angle_candidates(angle: str | None) -> tuple[str, ...]:
    """The angles `--angle` names: None -> every angle (choose_angle prefers joints); a joint
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
        RepRecord(series.source, series.person_id, number, analysis.angle, side_of(analysis.angle), analysis.direction,
                  rep.start_s, rep.turn_s, rep.end_s, rep.rest_deg, rep.turn_deg, rep.range_deg, rep.out_s, rep.back_s,
                  rep.confidence)
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
    """One person's repetitions on the angle `choose_angle` picks among `candidates` (angles in
    `series`), with the choice's reason; no repetitions and a `note` when that angle is present
    in too few frames. PoseAppError when the person has too few frames or none of the angles is
    ever seen."""
    if len(series.frames) < MIN_FRAMES:
        raise PoseAppError(
            f"person {series.person_id} of {series.source} is in {len(series.frames)} frames: "
            f"too few to count repetitions (at least {MIN_FRAMES})"
        )
    choice = choose_angle(series, candidates, settings)
    if choice.angle is None:
        raise PoseAppError(_never_seen(series, candidates))
    column = series.names.index(choice.angle)
    analysis = find_reps(series.time_s, series.degrees[:, column], series.confidence[:, column], choice.angle, settings)
    if not choice.usable:
        return dataclasses.replace(analysis, reps=[], note=choice.reason)
    return dataclasses.replace(analysis, choice=choice.reason)


def session_reps(
    table: KeypointTable, angle: str | None = None, person: int | None = None,
    settings: RepSettings = RepSettings(), skip_unusable: bool = False,
) -> tuple[list[tuple[AngleSeries, RepAnalysis]], list[str]]:
    """The repetitions of every person in a keypoint table (or of `person`), on `angle`
    (angle_candidates). Returns ([(series, analysis)] in source and person order, notes on people
    skipped). A person with too few frames or without the angle is an error when named by
    `person` or when nobody else is left; otherwise, with `skip_unusable`, a note."""
    candidates = angle_candidates(angle)
    return analyse_people(table, candidates, lambda item: analyse_person(item, candidates, settings), person,
                          skip_unusable, "repetitions to count")


def write_session_reps(table: KeypointTable, path: str, settings: RepSettings = RepSettings()) -> list[RepRecord]:
    """A recording's repetitions CSV (`Recording` calls it when the recording is finished): every
    person with enough frames, each on the angle `choose_angle` picks, as `pose-app reps` on the
    recording's CSV writes it; an empty table (header only) when nobody qualifies."""
    try:
        results, _ = session_reps(table, settings=settings, skip_unusable=True)
    except PoseAppError:
        results = []
    records = [record for series, analysis in results for record in rep_records(series, analysis)]
    write_reps_csv(records, path)
    return records
