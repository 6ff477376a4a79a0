"""The one place frames become poses: detect, refine, then persistent ids, then smoothing.

`pose-app process`, `eval`, `bench` and the GUI all run frames through a `PosePipeline` built by
`build_pipeline(config)`, the one place a pipeline is assembled from a `PipelineConfig`.

Two modes:
- two-pass (still images, and every frame when tracked crops are off): the full-frame
  multi-person pass finds people, then the crop refiner re-runs the network on each of them;
- tracked crops (videos, streams, cameras): the tracker predicts where each person is in the
  next frame and only crops around those predictions (each track's body box, which keeps
  faded joints for a while) run. The full-frame pass runs again once `redetect_interval_s` of
  media time has passed since the last one, when a crop loses its person, its confidence or
  its person's legs, when no one is tracked, or when the caller needs the full-frame outputs
  (heatmaps or feature maps for the GUI's panel); tracked people that pass misses are looked
  for in crops too. Per-frame cost then grows with the number of people, not with the frame size.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.core.similarity import pose_similarity
from pose_app.inference.config import PipelineConfig
from pose_app.inference.engine import PoseEngine, check_resolution, snap_to_valid_size
from pose_app.inference.estimator import PoseEstimator
from pose_app.inference.refine import CROP_STAGES, CropRefiner, decodings_of
from pose_app.inference.smoothing import PoseSmoother
from pose_app.inference.tracking import PoseTracker, gated_optimal_assignment

# The stages a frame's timings name, in order (tracking adds "track"); test-time augmentation
# adds "merge".
FRAME_STAGES = ("preprocess", "inference", "decode", *CROP_STAGES)
# Media times are rounded (Matroska: to the millisecond): an interval of 10 frames at 30 fps
# must not become 11 because 0.333 < 1/3.
TIME_TOLERANCE_S = 1e-3
# A person followed in a crop is kept (and the next frame is not made a full-frame pass) while
# the crop's pose score is at least this fraction of the full-frame pass's minimum pose score:
# crops score people lower than the full-frame pass that found them (a person at the frame's
# edge: 0.3 on the full-frame pass, 0.15-0.24 in crops), and dropping them at the full-frame
# floor made every other frame a full-frame pass on the shared chair-exercise clip.
FOLLOWED_SCORE_RATIO = 0.5


class PosePipeline:
    """estimator -> refiner -> tracker (ids become track ids) -> smoother (timestamps = frame.time_s).

    Without a tracker, ids stay detection indices and the smoother (which needs ids that
    follow people) is not applied. `redetect_interval_s` > 0 turns on tracked crops (needs a
    refiner and a tracker); 0 runs the full-frame pass on every frame.
    """

    def __init__(
        self,
        estimator: PoseEstimator,
        refiner: CropRefiner | None = None,
        tracker: PoseTracker | None = None,
        smoother: PoseSmoother | None = None,
        redetect_interval_s: float = 0.0,
        config: PipelineConfig | None = None,
    ):
        if smoother is not None and tracker is None:
            # Detection indices change meaning from frame to frame; smoothing over them would
            # blend different people.
            raise ValueError("smoothing needs tracking (ids that follow people)")
        if redetect_interval_s > 0 and (refiner is None or tracker is None):
            raise ValueError("tracked crops need crop refinement and tracking")
        self.estimator = estimator
        self.refiner = refiner
        self.tracker = tracker
        self.smoother = smoother
        self.redetect_interval_s = redetect_interval_s
        self.config = config  # what built this pipeline: its header names these settings
        self._last_full_pass_s: float | None = None  # media time of the last one; None: the next frame needs one
        self.full_passes = 0  # frames that ran the full-frame pass (for tests and statistics)

    def process(self, frame: Frame, features: Sequence[str] = (), full_frame: bool = False) -> FramePoses:
        """Poses of one frame. `features` (feature maps) and `full_frame` (heatmaps, offsets and
        displacements, kept in the result) make this frame run the full-frame pass. Timings gain
        "track" (tracking and smoothing, seconds)."""
        predicted = self._poses_to_follow(frame, features, full_frame)
        poses = self._follow(frame, predicted) if len(predicted) else self._detect(frame, features, full_frame)
        # Every stage on every frame (0 where it did not run): averages over frames stay true.
        poses = replace(poses, timings={**dict.fromkeys(FRAME_STAGES, 0.0), **poses.timings})
        if self.tracker is None:
            return poses
        start = time.perf_counter()
        ids = self.tracker.update(poses.keypoints, poses.scores)
        unsmoothed = poses.keypoints
        keypoints = unsmoothed if self.smoother is None else self.smoother(ids, unsmoothed, frame.time_s)
        timings = dict(poses.timings, track=time.perf_counter() - start)
        return replace(
            poses, keypoints=keypoints, ids=ids, timings=timings,
            unsmoothed_keypoints=None if self.smoother is None else unsmoothed,
        )

    def _poses_to_follow(self, frame: Frame, features: Sequence[str], full_frame: bool) -> np.ndarray:
        """The tracks' predicted poses when this frame can run on crops only, else none."""
        since = None if self._last_full_pass_s is None else frame.time_s - self._last_full_pass_s
        if (
            self.redetect_interval_s > 0
            and not features
            and not full_frame
            and since is not None
            and 0 <= since < self.redetect_interval_s - TIME_TOLERANCE_S
        ):
            return self.tracker.predicted_poses()
        return np.zeros((0,))

    def _detect(self, frame: Frame, features: Sequence[str], keep_heads: bool) -> FramePoses:
        """The full-frame pass (its offsets and displacements kept with `keep_heads`), then each
        pose refined on its crop."""
        poses = self.estimator.estimate(frame.image, features, keep_heads)
        self.full_passes += 1
        self._last_full_pass_s = frame.time_s
        if self.refiner is None or not len(poses):
            return poses
        keypoints, scores, timings = self.refiner.refine(
            frame.image, poses.keypoints, poses.scores, crop_scores=self.redetect_interval_s > 0
        )
        poses = replace(poses, keypoints=keypoints, scores=scores, timings={**poses.timings, **timings})
        return self._keep_missed_tracks(frame, poses) if self.redetect_interval_s > 0 else poses

    def _keep_missed_tracks(self, frame: Frame, poses: FramePoses) -> FramePoses:
        """The full-frame pass's poses plus the tracked people it missed, found again in crops
        around their predictions as between full-frame passes. The full-frame pass misses people
        the crops still see: someone upside down in a backflip, two people who overlap decoded
        as one; without this they vanish until a later full-frame pass finds them again."""
        predicted = self.tracker.predicted_poses()
        if not len(predicted):
            return poses
        similarity = pose_similarity(predicted, poses.keypoints, self.tracker.min_keypoint_score)
        matched = [track for track, _ in gated_optimal_assignment(similarity, self.tracker.min_similarity)]
        missed = np.setdiff1d(np.arange(len(predicted)), matched)
        if not len(missed):
            return poses
        followed = self.refiner.follow(frame.image, predicted[missed], self.tracker.predicted_boxes()[missed])
        keypoints, scores, timings = followed.keypoints, followed.scores, followed.timings
        # The full floor, not FOLLOWED_SCORE_RATIO's: this full-frame pass did not vouch for them.
        new = (scores >= self.estimator.settings.min_pose_score) & ~decodings_of(keypoints, poses.keypoints)
        keypoints = np.concatenate([poses.keypoints, keypoints[new]])
        scores = np.concatenate([poses.scores, scores[new]])
        timings = {stage: poses.timings.get(stage, 0.0) + seconds for stage, seconds in timings.items()}
        return replace(
            poses, keypoints=keypoints, scores=scores, ids=np.arange(len(scores), dtype=np.int64),
            timings={**poses.timings, **timings},
        )

    def _follow(self, frame: Frame, predicted: np.ndarray) -> FramePoses:
        """Crops around the tracks' predicted poses (their body boxes) only. A person lost, or
        found below FOLLOWED_SCORE_RATIO x the minimum pose score (dropped), asks for a full-frame
        pass on the next frame; so does a person whose legs faded (refine.faded_limbs)."""
        followed = self.refiner.follow(frame.image, predicted, self.tracker.predicted_boxes())
        sure = followed.scores >= FOLLOWED_SCORE_RATIO * self.estimator.settings.min_pose_score
        keypoints, scores = followed.keypoints[sure], followed.scores[sure]
        if followed.lost or followed.faded or not sure.all() or not len(scores):
            self._last_full_pass_s = None  # look again on the next frame
        return FramePoses(
            keypoints=keypoints,
            scores=scores,
            ids=np.arange(len(scores), dtype=np.int64),
            heatmaps=None,
            features={},
            transform=None,
            timings=followed.timings,
        )

    @property
    def mode(self) -> str:
        """How frames run: "tracked-crops", "two-pass" or "single-pass"."""
        if self.redetect_interval_s > 0:
            return "tracked-crops"
        return "two-pass" if self.refiner is not None else "single-pass"

    def header(self) -> dict[str, Any]:
        """The settings that shaped the poses, for the header of every recording (process, GUI):
        the config's settings by their names, then what actually ran (the snapped input size,
        the provider, the mode)."""
        engine = self.estimator.engine
        stride = engine.info.output_stride
        settings = self.config.settings() if self.config is not None else {}
        return {
            **settings,
            "model": engine.info.name,
            "provider": engine.provider,
            "provider_notes": list(engine.provider_notes),
            "output_stride": stride,
            "resolution": snap_to_valid_size(self.estimator.resolution, stride),
            "crop_model": self.refiner.engine.info.name if self.refiner is not None else None,
            "crop_input_size": list(self.refiner.input_size) if self.refiner is not None else None,
            "mode": self.mode,
            "mirrored_input": self.estimator.mirrored_input,
            "tracking": self.tracker is not None,
            "smoothed": self.smoother is not None,
        }

    def reset(self) -> None:
        """Forget tracks and filter state: call on a new source or after a seek."""
        self._last_full_pass_s = None
        if self.tracker is not None:
            self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()


def open_engine(config: PipelineConfig) -> PoseEngine:
    """A PoseEngine for the config's model, provider and threads (PoseAppError if it cannot load)."""
    return PoseEngine(config.model, provider=config.provider, threads=config.threads)


def open_crop_engine(config: PipelineConfig, engine: PoseEngine) -> PoseEngine:
    """The engine the crops run: `engine` itself unless the config names another crop_model."""
    if not config.crop_model or config.crop_model == config.model:
        return engine
    return PoseEngine(config.crop_model, provider=config.provider, threads=config.threads)


def check_input_sizes(config: PipelineConfig, output_stride: int, crop_stride: int | None = None) -> None:
    """PoseAppError unless every input size the config asks for (each scale of the full frame,
    the crops) is one the networks take (crops: `crop_stride`, default the full frame's output
    stride): checked once, before any output file is opened."""
    for scale in config.scales:
        check_resolution(round(config.resolution * scale), output_stride)
    if config.refine:
        check_resolution(config.crop_resolution, crop_stride or output_stride)


def build_pipeline(
    config: PipelineConfig,
    *,
    is_still: bool = False,
    engine: PoseEngine | None = None,
    crop_engine: PoseEngine | None = None,
) -> PosePipeline:
    """The pipeline of a config for a source: still images (and image folders) run the two-pass
    mode and are not smoothed (independent pictures); videos, streams and cameras use tracked
    crops. `engine` / `crop_engine`: reuse loaded engines (the config's model and crop_model)."""
    engine = engine or open_engine(config)
    if config.refine:
        crop_engine = crop_engine or open_crop_engine(config, engine)
    check_input_sizes(config, engine.info.output_stride, crop_engine.info.output_stride if config.refine else None)
    estimator = PoseEstimator(engine, config.resolution, config.decode, config.mirrored_input, config.augmentation)
    refiner = CropRefiner(crop_engine, config.crop_settings, mirrored_input=config.mirrored_input) if config.refine else None
    tracker = PoseTracker() if config.track else None
    smoother = (
        PoseSmoother(config.smooth_min_cutoff, config.smooth_beta) if tracker and config.smooth and not is_still else None
    )
    tracked_crops = tracker is not None and refiner is not None and not is_still
    interval = config.redetect_interval_s if tracked_crops else 0.0
    return PosePipeline(estimator, refiner, tracker, smoother, interval, config=config)
