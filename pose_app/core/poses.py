"""The poses of a frame: `FramePoses` (what every stage after the network passes on) and the keypoint
score below which a keypoint counts as not seen."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.core.skeleton import NUM_KEYPOINTS

# Keypoints scoring below this are treated as not seen: not drawn, and ignored by the tracker's
# similarities (and the smoother). Scores are per-keypoint probabilities (sigmoid heatmaps); the
# decoder returns all 17 keypoints of a pose whatever their score, and below about 0.3 they are
# mostly guesses at hidden or out-of-frame joints. It is lower than the part score threshold
# (0.5) that a keypoint needs to start a pose, because keypoints reached along the part tree
# from a confident root are placed well at lower scores.
MIN_KEYPOINT_SCORE = 0.3


@dataclass
class FramePoses:
    """Every pose found in one frame."""

    keypoints: np.ndarray  # (P, 17, 3) x, y, score in original-frame pixels
    scores: np.ndarray  # (P,)
    ids: np.ndarray  # (P,) int64: detection index, or track ids once a tracker has run
    # The full-frame pass's outputs; None (and no features) on frames that ran on tracked crops only.
    heatmaps: np.ndarray | None  # (17, h, w) for the heatmap view
    features: dict[str, np.ndarray]
    transform: FrameTransform | None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    # The full-frame pass's other heads by their output names (PoseNet: offsets, displacement_fwd,
    # displacement_bwd), kept only when the estimator is asked to (PoseEstimator.estimate(
    # keep_heads=True): the GUI's explainer draws and decodes them again); empty otherwise.
    heads: dict[str, np.ndarray] = field(default_factory=dict)
    # The keypoints before smoothing (None when not smoothed): what the filter did to jitter and lag.
    unsmoothed_keypoints: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)


def check_poses(keypoints: np.ndarray, per_pose: np.ndarray, name: str = "scores") -> None:
    """Raise ValueError unless `keypoints` is `(P, 17, 3)` and `per_pose` (named `name`) `(P,)`."""
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(
            f"keypoints must have shape (P, {NUM_KEYPOINTS}, 3), got {keypoints.shape}"
        )
    if per_pose.shape != (keypoints.shape[0],):
        raise ValueError(f"{name} must have shape ({keypoints.shape[0]},), got {per_pose.shape}")
