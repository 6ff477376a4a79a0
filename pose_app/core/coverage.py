"""How well an input's people were seen: frames with someone, and frames where someone's legs
were whole. `pose-app process` says it in its summary and the desktop app in its status bar
when a person was lost most of the time, so that a user does not take empty files for a result.

A warning needs evidence both ways: legs are "lost" only when they were seen in some frames
(a webcam at a desk that never shows the legs is not losing them), and nothing is said about
inputs too short to judge.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.skeleton import KEYPOINT_INDEX

LEG_CHAINS = tuple(
    tuple(KEYPOINT_INDEX[f"{side}_{joint}"] for joint in ("hip", "knee", "ankle")) for side in ("left", "right")
)
# A person is "found" in a frame when a pose has at least this many confident keypoints: a
# stray ghost of two or three keypoints is not a person.
FOUND_MIN_KEYPOINTS = 5
# Below these shares the input gets a warning.
MIN_PERSON_SHARE = 0.5
MIN_LEG_SHARE = 0.5
# Legs count as in view when a full leg chain was seen in at least this share of the frames
# with a person (below it, the camera probably never shows them).
LEGS_IN_VIEW_SHARE = 0.05
# Fewer frames than this: too short to judge.
MIN_FRAMES = 10


def full_leg_chain(keypoints: np.ndarray) -> np.ndarray:
    """(P,) bool: poses (P, 17, 3) with hip, knee and ankle of one side all >= MIN_KEYPOINT_SCORE."""
    confident = np.asarray(keypoints)[:, :, 2] >= MIN_KEYPOINT_SCORE
    if not len(confident):
        return np.zeros(0, bool)
    return np.stack([confident[:, list(chain)].all(axis=1) for chain in LEG_CHAINS]).any(axis=0)


@dataclass
class PersonCoverage:
    """Per frame: was someone found, and did someone have a full leg chain. `window`: only the
    last that many frames count (the live app); None: the whole input."""

    window: int | None = None
    _found: deque = field(default_factory=deque, repr=False)
    _legs: deque = field(default_factory=deque, repr=False)

    def add(self, keypoints: np.ndarray) -> None:
        """One frame's poses (P, 17, 3)."""
        keypoints = np.asarray(keypoints).reshape(-1, 17, 3)
        found = keypoints[(keypoints[:, :, 2] >= MIN_KEYPOINT_SCORE).sum(axis=1) >= FOUND_MIN_KEYPOINTS]
        self._found.append(bool(len(found)))
        self._legs.append(bool(full_leg_chain(found).any()))
        if self.window is not None and len(self._found) > self.window:
            self._found.popleft()
            self._legs.popleft()

    @property
    def frames(self) -> int:
        return len(self._found)

    @property
    def person_share(self) -> float:
        """Share of frames with someone found (NaN with no frame)."""
        return sum(self._found) / self.frames if self.frames else float("nan")

    @property
    def leg_share(self) -> float:
        """Share of the frames with someone in which someone had a full leg chain."""
        with_person = sum(self._found)
        return sum(self._legs) / with_person if with_person else float("nan")

    def warning(self) -> str | None:
        """One line when a person was lost most of the time (see the module docstring), else None."""
        if self.frames < MIN_FRAMES:
            return None
        if self.person_share < MIN_PERSON_SHARE:
            return f"a person in only {self.person_share:.0%} of {self.frames} frames"
        if LEGS_IN_VIEW_SHARE <= self.leg_share < MIN_LEG_SHARE:
            return f"legs lost in {1 - self.leg_share:.0%} of the frames with a person"
        return None
