"""The angles of the last seconds of a live run, per frame and person (no Qt).

The inference worker computes each frame's angles (`FrameAngles`) in its own thread; the angle
dock keeps them in an `AngleHistory` and plots from it. Both live here, away from the pyqtgraph
widget, so that the worker and the settings need no plotting library and the history can be
tested without a display.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from pose_app.analysis.angles import MIN_PRESENCE
from pose_app.core.angles import ANGLE_NAMES, JOINT_ANGLES

DEFAULT_ANGLES = ("left_elbow", "right_elbow", "left_knee", "right_knee")
DEFAULT_WINDOW_S = 10.0
# Follow the motion: how many angles are plotted and the smallest range that is motion.
FOLLOWED_ANGLES = 3
MOVING_RANGE_DEG = 15.0


@dataclass(frozen=True)
class FrameAngles:
    """One frame's angles: ids (P,), degrees (P, A) smoothed (or as detected when not smoothed),
    unsmoothed (P, A) or None, confidence (P, A) (lowest keypoint score) or None, in ANGLE_NAMES
    order."""

    time_s: float
    ids: np.ndarray
    degrees: np.ndarray
    unsmoothed: np.ndarray | None
    confidence: np.ndarray | None = None


class AngleHistory:
    """The frames' angles of the last `window_s` seconds of media time (no Qt)."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S):
        self.window_s = window_s
        self._frames: deque[FrameAngles] = deque()

    def add(self, frame: FrameAngles) -> None:
        if self._frames and frame.time_s < self._frames[-1].time_s:
            self._frames.clear()  # a seek or a loop restart: time went back
        self._frames.append(frame)
        while self._frames and self._frames[0].time_s < frame.time_s - self.window_s:
            self._frames.popleft()

    def clear(self) -> None:
        self._frames.clear()

    def people(self) -> list[int]:
        """The person ids seen in the window, in order of appearance."""
        return list(dict.fromkeys(int(i) for frame in self._frames for i in frame.ids))

    def series(self, person_id: int, angle: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, degrees, unsmoothed degrees) of one person's angle; NaN where missing (also
        on frames without that person, so the curve breaks instead of bridging a gap)."""
        column = ANGLE_NAMES.index(angle)
        times, degrees, raw = [], [], []
        for frame in self._frames:
            rows = np.flatnonzero(frame.ids == person_id)
            times.append(frame.time_s)
            if len(rows):
                degrees.append(frame.degrees[rows[0], column])
                raw.append(frame.degrees[rows[0], column] if frame.unsmoothed is None else frame.unsmoothed[rows[0], column])
            else:
                degrees.append(np.nan)
                raw.append(np.nan)
        return np.asarray(times), np.asarray(degrees, np.float64), np.asarray(raw, np.float64)

    def moving_angles(self, person_id: int, counted_angle: str | None = None, keep: tuple[str, ...] = (),
                      count: int = FOLLOWED_ANGLES) -> tuple[str, ...]:
        """The angles worth plotting for a person: the counted angle first, then the joint angles
        seen in at least MIN_PRESENCE of the window that move most (range from the 5th to the 95th
        percentile of at least MOVING_RANGE_DEG), those of `keep` that still move first (so the
        choice does not flicker). () when nothing moves and nothing is counted."""
        ranges = {}
        for name in JOINT_ANGLES:
            _, degrees, _ = self.series(person_id, name)
            seen = degrees[np.isfinite(degrees)]
            if len(degrees) and len(seen) >= MIN_PRESENCE * len(degrees) and len(seen) > 1:
                low, high = np.percentile(seen, (5.0, 95.0))
                if high - low >= MOVING_RANGE_DEG:
                    ranges[name] = float(high - low)
        ranked = sorted(ranges, key=lambda name: (name not in keep, -ranges[name]))
        chosen = [counted_angle] if counted_angle else []
        chosen += [name for name in ranked if name not in chosen]
        return tuple(chosen[:count])

    def presence(self, person_id: int, angle: str) -> float:
        """The share of the window's frames with the person in which the angle was known (NaN: never in the window)."""
        column = ANGLE_NAMES.index(angle)
        values = [frame.degrees[rows[0], column] for frame in self._frames
                  if len(rows := np.flatnonzero(frame.ids == person_id))]
        return float(np.isfinite(values).mean()) if values else float("nan")
