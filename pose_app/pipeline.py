"""The one place frames become poses: estimate, then persistent ids, then temporal smoothing.

`pose-app process`, the GUI and `pose-app bench` all run frames through `PosePipeline`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from pose_app.estimator import FramePoses, PoseEstimator
from pose_app.smoothing import PoseSmoother
from pose_app.sources import Frame
from pose_app.tracking import PoseTracker


class PosePipeline:
    """estimator -> tracker (ids become track ids) -> smoother (timestamps = frame.time_s).

    Without a tracker, ids stay detection indices and the smoother (which needs ids that
    follow people) is not applied.
    """

    def __init__(
        self,
        estimator: PoseEstimator,
        tracker: PoseTracker | None = None,
        smoother: PoseSmoother | None = None,
    ):
        if smoother is not None and tracker is None:
            # Detection indices change meaning from frame to frame; smoothing over them would
            # blend different people.
            raise ValueError("smoothing needs tracking (ids that follow people)")
        self.estimator = estimator
        self.tracker = tracker
        self.smoother = smoother

    def process(self, frame: Frame, features: Sequence[str] = ()) -> FramePoses:
        """Poses of one frame; timings gain "track" (tracking and smoothing, seconds)."""
        poses = self.estimator.estimate(frame.image, features)
        if self.tracker is None:
            return poses
        start = time.perf_counter()
        ids = self.tracker.update(poses.keypoints, poses.scores)
        keypoints = poses.keypoints
        if self.smoother is not None:
            keypoints = self.smoother(ids, keypoints, frame.time_s)
        timings = dict(poses.timings, track=time.perf_counter() - start)
        return replace(poses, keypoints=keypoints, ids=ids, timings=timings)

    def settings_header(self) -> dict[str, Any]:
        """The settings that shape the poses, for the header of every recording (process, GUI)."""
        engine = self.estimator.engine
        header: dict[str, Any] = {
            "model": engine.info.name,
            "provider": engine.provider,
            "provider_notes": list(engine.provider_notes),
            "resolution": self.estimator.resolution,
            "output_stride": engine.info.output_stride,
            "decode": asdict(self.estimator.settings),
            "mirrored_input": self.estimator.mirrored_input,
            "tracking": self.tracker is not None,
            "smoothed": self.smoother is not None,
        }
        if self.smoother is not None:
            header["smoothing"] = {
                "filter": "one_euro", "min_cutoff": self.smoother.min_cutoff, "beta": self.smoother.beta
            }
        return header

    def reset(self) -> None:
        """Forget tracks and filter state: call on a new source or after a seek."""
        if self.tracker is not None:
            self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()
