"""Counting repetitions live, a frame at a time, with the rules of analysis/reps.py (no Qt)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from pose_app.analysis.rep_choice import AngleChoice, angle_candidates, choose_angle
from pose_app.analysis.reps import MIN_FRAMES, RepAnalysis, RepSettings, find_reps
from pose_app.core.angles import ANGLE_NAMES
from pose_app.io.csv_tables import AngleSeries


class _CountedPerson:
    """One person the live counter follows: their frames, kept in arrays that grow by doubling
    (cheap appends), and the state of their count (the angle chosen, the direction kept)."""

    def __init__(self, angles: int):
        self.size = 0
        self.times = np.zeros(64)
        self.degrees = np.zeros((64, angles))
        self.confidence = np.zeros((64, angles))
        self.analysed_at = -1  # self.size when last analysed
        self.analysis: RepAnalysis | None = None
        self.choice: AngleChoice | None = None
        self.chosen_at = -math.inf  # media time the angle was last chosen
        self.direction = "auto"  # kept once a repetition is counted, so the count never jumps back
        self.rest_reason = ""

    def append(self, time_s: float, degrees: np.ndarray, confidence: np.ndarray) -> None:
        if self.size == len(self.times):
            self.times = np.resize(self.times, 2 * self.size)
            self.degrees = np.resize(self.degrees, (2 * self.size, self.degrees.shape[1]))
            self.confidence = np.resize(self.confidence, (2 * self.size, self.confidence.shape[1]))
        self.times[self.size] = time_s
        self.degrees[self.size] = degrees
        self.confidence[self.size] = confidence
        self.size += 1

    def series(self, person_id: int, names: tuple[str, ...]) -> AngleSeries:
        return AngleSeries("", person_id, names, np.arange(self.size), self.times[:self.size],
                           self.degrees[:self.size], self.confidence[:self.size])


class RepCounter:
    """Live repetition counts per person, fed one frame's angles at a time (no Qt): the same rules
    as `find_reps` on everything seen since the last reset, so at the end of a recording it
    counts what `pose-app reps` counts on its CSV. angle: as `--angle` (None: `choose_angle` on
    what was seen so far, chosen again every RECHOOSE_S of media time until a repetition is
    counted on it; then the angle and the direction are kept until a reset, so the count never
    jumps back). The analysis runs when asked for (`analysis`), not per frame."""

    RECHOOSE_S = 2.0

    def __init__(self, angle: str | None = None, settings: RepSettings = RepSettings(), names: Sequence[str] = ANGLE_NAMES):
        self.settings = settings
        self.names = tuple(names)
        self._people: dict[int, _CountedPerson] = {}
        self._last_time = -math.inf
        self.set_angle(angle)

    def set_angle(self, angle: str | None) -> None:
        """Count on another angle (as `--angle`) from now on, over the frames already seen too."""
        self.candidates = angle_candidates(angle)
        for person in self._people.values():
            person.choice, person.analysed_at, person.chosen_at, person.direction = None, -1, -math.inf, "auto"

    def add(self, time_s: float, person_ids: Sequence[int] | np.ndarray, degrees: np.ndarray, confidence: np.ndarray) -> None:
        """One frame: person_ids (P,), degrees and confidence (P, len(names)). Time going back (a
        seek, a loop) starts the count again."""
        if time_s < self._last_time:
            self.reset()
        self._last_time = time_s
        degrees, confidence = np.asarray(degrees, np.float64), np.asarray(confidence, np.float64)
        for row, person_id in enumerate(np.asarray(person_ids).tolist()):
            person = self._people.get(person_id)
            if person is None:
                person = self._people[person_id] = _CountedPerson(len(self.names))
            person.append(time_s, degrees[row], confidence[row])

    def reset(self) -> None:
        self._people.clear()
        self._last_time = -math.inf

    def people(self) -> list[int]:
        return list(self._people)

    def series(self, person_id: int) -> AngleSeries | None:
        """Everything seen of a person since the last reset (None: never seen)."""
        person = self._people.get(person_id)
        return None if person is None else person.series(person_id, self.names)

    def analysis(self, person_id: int) -> RepAnalysis | None:
        """The person's repetitions so far (None before MIN_FRAMES frames or while no candidate
        is seen). An angle present in too few frames gives an analysis without repetitions and
        with its `note`."""
        person = self._people.get(person_id)
        if person is None or person.size < MIN_FRAMES:
            return None
        if person.analysed_at == person.size:
            return person.analysis
        series = person.series(person_id, self.names)
        counted = person.analysis is not None and person.analysis.reps
        if person.choice is None or (not counted and series.time_s[-1] - person.chosen_at >= self.RECHOOSE_S):
            person.choice = choose_angle(series, self.candidates, self.settings)
            person.chosen_at = float(series.time_s[-1])
        choice = person.choice
        if choice.angle is None:
            person.analysis = None
        else:
            column = self.names.index(choice.angle)
            settings = self.settings if person.direction == "auto" else dataclasses.replace(self.settings, direction=person.direction)
            analysis = find_reps(series.time_s, series.degrees[:, column], series.confidence[:, column], choice.angle, settings)
            if person.direction != "auto":
                analysis.rest_reason = person.rest_reason
            if not choice.usable:
                analysis = dataclasses.replace(analysis, reps=[], note=choice.reason)
            else:
                analysis.choice = choice.reason
                if analysis.reps and person.direction == "auto" and self.settings.direction == "auto":
                    person.direction, person.rest_reason = analysis.direction, analysis.rest_reason
            person.analysis = analysis
        person.analysed_at = person.size
        return person.analysis

    def count(self, person_id: int) -> int:
        analysis = self.analysis(person_id)
        return 0 if analysis is None else len(analysis.reps)
