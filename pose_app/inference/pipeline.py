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

Bodies in any orientation: crops are turned so that each body stands upright for the network
(refine.py), and frames are also tried turned by 90, 270 and 180 degrees: a still image always
(the view with the most evidence wins), a video frame when its full-frame pass finds nobody
whole and nobody is being followed whole (one turn per such full-frame pass, at most every
`redetect_interval_s`, so real time holds).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pose_app.core.frames import Frame
from pose_app.core.geometry import torso_angle
from pose_app.core.matching import gated_optimal_assignment
from pose_app.core.poses import MIN_KEYPOINT_SCORE, FramePoses
from pose_app.core.similarity import pose_similarity
from pose_app.inference.config import RETUNABLE_SETTINGS, PipelineConfig
from pose_app.inference.engine import PoseEngine
from pose_app.inference.estimator import PoseEstimator, best_orientation, confident_enough, has_evidence, has_whole_pose
from pose_app.inference.identity import decodings_of, is_fragment_of
from pose_app.inference.quantization import int8_path
from pose_app.inference.refine import CROP_STAGES, CropRefiner
from pose_app.inference.smoothing import PoseSmoother
from pose_app.inference.tracking import PoseTracker

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
# The turns a frame is tried at when its full-frame pass finds only fragments, in quarter turns
# counter-clockwise: lying on either side first (planks, push-ups, floor work), then upside down.
TURNS = (1, 3, 2)
# A video frame is tried turned at most this often (one turn each time): a turned pass costs a
# full-frame pass, and someone lying down is found within a second (three turns).
TURNED_PASS_INTERVAL_S = 0.33


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
        turned_passes: bool = False,
        still: bool = False,
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
        self.turned_passes = turned_passes  # try frames turned (see the module docstring)
        self.still = still  # independent still images: no tracks carried over, every frame tried turned
        self._last_full_pass_s: float | None = None  # media time of the last one; None: the next frame needs one
        self._last_turned_pass_s: float | None = None
        self._turn_order = TURNS  # videos: the order turns are tried in, the last that found people first
        self._turns_tried = len(TURNS)  # of the current round (a full round: wait for the interval)
        self.full_passes = 0  # frames that ran the full-frame pass (for tests and statistics)
        self.turned_pass_count = 0  # turned passes run (for tests and statistics)

    def process(self, frame: Frame, features: Sequence[str] = (), full_frame: bool = False) -> FramePoses:
        """Poses of one frame. `features` (feature maps) and `full_frame` (heatmaps, offsets and
        displacements, kept in the result) make this frame run the full-frame pass. Timings gain
        "track" (tracking and smoothing, seconds)."""
        predicted = self._poses_to_follow(frame, features, full_frame)
        full_passes = self.full_passes
        poses = self._follow(frame, predicted) if len(predicted) else self._detect(frame, features, full_frame)
        # Every stage on every frame (0 where it did not run): averages over frames stay true.
        poses = replace(poses, timings={**dict.fromkeys(FRAME_STAGES, 0.0), **poses.timings})
        if self.tracker is None:
            return poses
        start = time.perf_counter()
        ids = self.tracker.update(poses.keypoints, poses.scores, full_pass=self.full_passes > full_passes)
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
        """The full-frame pass (its offsets and displacements kept with `keep_heads`), the frame
        turned when it finds only fragments, then each pose refined on its crop."""
        poses = self.estimator.estimate(frame.image, features, keep_heads)
        self.full_passes += 1
        self._last_full_pass_s = frame.time_s
        angles = np.full(len(poses), np.nan)
        # A still image is always tried turned (orientation_evidence then picks); a video frame
        # only when its full-frame pass shows nobody whole and no one is being followed whole.
        weak = not has_whole_pose(poses.keypoints) and not self._following_someone_whole()
        if self.turned_passes and (self.still or weak):
            poses, angles = self._add_turned(frame, poses)
        if self.refiner is None:
            return poses
        if not self.still and weak and not has_evidence(poses.keypoints) and self.tracker is not None:
            poses, angles = self._add_whole_frame(frame, poses, angles)
        if len(poses):
            angles, boxes = self._crop_hints(poses.keypoints, angles)
            keypoints, scores, timings = self.refiner.refine(
                frame.image, poses.keypoints, poses.scores, crop_scores=self.redetect_interval_s > 0,
                angles=angles, boxes=boxes,
            )
            poses = replace(poses, keypoints=keypoints, scores=scores, timings={**poses.timings, **timings})
        # Even when this pass found nobody: someone lying on the floor is often invisible to it.
        return poses if self.still or self.tracker is None else self._keep_missed_tracks(frame, poses)

    def _add_whole_frame(self, frame: Frame, poses: FramePoses, angles: np.ndarray) -> tuple[FramePoses, np.ndarray]:
        """The crop network on the whole frame (CropRefiner.whole_frame), when nobody was found
        in a video frame: a person it finds clearly joins, to be followed by crops from the next
        frame on. Clearly: EVIDENCE_POSE_KEYPOINTS confident keypoints, whose mean score reaches
        the pose-score floor (the user may raise it: nobody else vouched for this person). The
        mean of the joints it sees, not of all 17: legs alone on a step score 0.15-0.2 over all
        17, below the default floor, and 0.4-0.5 over the legs; a whole walker 0.55 and 0.7, so a
        floor of 0.99 still shows nobody."""
        keypoints, scores, timings = self.refiner.whole_frame(frame.image)
        seen = keypoints[:, :, 2] >= MIN_KEYPOINT_SCORE
        seen_scores = np.where(seen, keypoints[:, :, 2], 0.0).sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
        found = confident_enough(keypoints) & (seen_scores >= self.estimator.settings.min_pose_score)
        if not found.any():
            return poses, angles
        timings = {stage: poses.timings.get(stage, 0.0) + seconds for stage, seconds in timings.items()}
        poses = replace(
            poses, keypoints=np.concatenate([poses.keypoints, keypoints[found]]),
            scores=np.concatenate([poses.scores, scores[found]]), ids=np.arange(len(poses) + int(found.sum())),
            timings={**poses.timings, **timings},
        )
        return poses, np.concatenate([angles, np.full(int(found.sum()), np.nan)])

    def _following_someone_whole(self) -> bool:
        """A tracked person was last seen whole: a weak full-frame pass is then that person seen
        badly upright, and the crops following them (turned upright) do better."""
        return self.tracker is not None and has_whole_pose(self.tracker.predicted_poses())

    def _add_turned(self, frame: Frame, poses: FramePoses) -> tuple[FramePoses, np.ndarray]:
        """The poses of the view with the most evidence (`best_orientation`) among `poses` and the
        frame turned, and for each the turn its crop should start from (radians; NaN: found
        upright). A still image is tried at every turn of TURNS. A video frame at one turn: the
        three turns on three weak frames in a row (someone who just lay down is found within
        three frames), then, if none found anyone, a new round at most every
        TURNED_PASS_INTERVAL_S."""
        if self.still:
            turns = TURNS
        else:
            if self._turns_tried == len(TURNS):
                since = None if self._last_turned_pass_s is None else frame.time_s - self._last_turned_pass_s
                if since is not None and 0 <= since < TURNED_PASS_INTERVAL_S - TIME_TOLERANCE_S:
                    return poses, np.full(len(poses), np.nan)
                self._turns_tried = 0
            # The turn that last found people first (someone lying stays lying), then the others.
            turns = (self._turn_order[self._turns_tried],)
            self._turns_tried += 1
            self._last_turned_pass_s = frame.time_s
        timings = dict(poses.timings)

        def turned(quarter_turns: int, resolution: int | None = None):
            found, found_scores, turned_timings = self.estimator.estimate_turned(frame.image, quarter_turns, resolution)
            self.turned_pass_count += 1
            for stage, seconds in turned_timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            return found, found_scores, quarter_turns

        if self.still:
            # Every orientation probed at half the resolution (the four probes cost about one
            # full pass); a turn that wins the probes is then run at full resolution and must
            # also beat the upright view there: about 2x a single pass instead of 4x. A probe
            # alone misjudged upright pictures (at 129 px, fast's half: coco-dev AP 0.281
            # against 0.305 without turns).
            probe = self.estimator.engine.family.probe_resolution(self.estimator.engine.info, self.estimator.resolution)
            probes = [turned(0, probe)] + [turned(quarter_turns, probe) for quarter_turns in turns]
            winner = probes[best_orientation([(k, s) for k, s, _ in probes])][2]
            views = [(poses.keypoints, poses.scores, 0)] + ([turned(winner)] if winner else [])
        else:
            views = [(poses.keypoints, poses.scores, 0), turned(turns[0])]
        keypoints, scores, quarter_turns = views[best_orientation([(k, s) for k, s, _ in views])]
        if not self.still and quarter_turns == turns[0]:
            # The turn that found people goes first, and the next weak frame starts a new round.
            self._turn_order = (quarter_turns, *(turn for turn in self._turn_order if turn != quarter_turns))
            self._turns_tried = len(TURNS)
        angles = np.full(len(scores), quarter_turns * np.pi / 2 if quarter_turns else np.nan)
        ids = np.arange(len(scores), dtype=np.int64)
        return replace(poses, keypoints=keypoints, scores=scores, ids=ids, timings=timings), angles

    def _crop_hints(self, keypoints: np.ndarray, hints: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """How each pose's crop is cut: its turn, and the box it holds (None: the pose's own).
        The turn is that of the followed track the pose matches (its crops saw it whole; a
        full-frame pass may see a body lying on the floor only as a garbled fragment), else its
        own torso's, else the turn of the view that found it (`hints`, NaN: upright); NaN where
        none is known (the refiner then keeps the crop upright). A pose that is a fragment of its
        track's body (`is_fragment_of`: legs the track saw missing) gets the crop of the track's
        body box: around the fragment alone, a plank's legs fell outside the crop on every frame
        of `accurate` (full pass every frame; plank clip leg chain 0.11 -> 0.83 with the box)."""
        angles = np.array([np.nan if (a := torso_angle(pose, MIN_KEYPOINT_SCORE)) is None else a for pose in keypoints])
        angles = np.where(np.isfinite(angles), angles, hints)
        boxes = None
        if self.tracker is not None and len(keypoints):
            predicted, track_angles = self.tracker.predicted_poses(), self.tracker.predicted_angles()
            if len(predicted):
                track_boxes, boxes = self.tracker.predicted_boxes(), np.full((len(keypoints), 4), np.nan)
                similarity = pose_similarity(keypoints, predicted, self.tracker.min_keypoint_score)
                for pose, track in gated_optimal_assignment(similarity, self.tracker.min_similarity):
                    if np.isfinite(track_angles[track]):
                        angles[pose] = track_angles[track]
                    if is_fragment_of(keypoints[pose], predicted[track], track_boxes[track]):
                        boxes[pose] = track_boxes[track]
        return angles, boxes

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
        followed = self.refiner.follow(
            frame.image, predicted[missed], self.tracker.predicted_boxes()[missed], self.tracker.predicted_angles()[missed]
        )
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
        """Crops around the tracks' predicted poses (their body boxes, turned upright) only. A
        person lost, or found below FOLLOWED_SCORE_RATIO x the minimum pose score (dropped), asks
        for a full-frame pass on the next frame; so does a person who lost joints the last
        full-frame pass saw (identity.lost_joints): tracked crops are never left worse than it."""
        tracker = self.tracker
        followed = self.refiner.follow(
            frame.image, predicted, tracker.predicted_boxes(), tracker.predicted_angles(),
            tracker.predicted_full_pass_joints(),
        )
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
        the config's settings by their names, then what actually ran under the same names (the
        snapped input size, the provider, the mode; `track` and `smooth`: whether tracking and
        smoothing ran, so `smooth` is false for a still image). Files from before this release
        also have `tracking` and `smoothed` (io/formats.py: header_by_current_names)."""
        engine = self.estimator.engine
        stride = engine.info.output_stride
        settings = self.config.settings() if self.config is not None else {}
        return {
            **settings,
            "model": engine.info.name,
            "provider": engine.provider,
            "provider_notes": list(engine.provider_notes),
            "output_stride": stride,
            "resolution": max(engine.frame_transform(*(self.estimator.resolution,) * 3).input_size),
            "int8_path": int8_path(engine.info.properties),
            "crop_model": self.refiner.engine.info.name if self.refiner is not None else None,
            "crop_int8_path": int8_path(self.refiner.engine.info.properties) if self.refiner is not None else None,
            "crop_input_size": list(self.refiner.input_size) if self.refiner is not None else None,
            "mode": self.mode,
            "mirrored_input": self.estimator.mirrored_input,
            "track": self.tracker is not None,
            "smooth": self.smoother is not None,
        }

    def retune(self, config: PipelineConfig) -> tuple[str, ...]:
        """Take `config` in place of the config this pipeline runs when it differs only in
        settings a running pipeline can change (RETUNABLE_SETTINGS: decoding, the One Euro
        filter's parameters): tracks and filter state carry on, and the header names `config`.
        Returns the settings that differ and need a new pipeline (build_pipeline), sorted, and
        then changes nothing; empty when `config` was taken."""
        if self.config is None:  # not built from a config: nothing says what it runs
            return tuple(sorted(config.settings()))
        running, wanted = self.config.settings(), config.settings()
        rebuild = tuple(sorted(
            name for name, value in wanted.items() if value != running.get(name) and name not in RETUNABLE_SETTINGS
        ))
        if rebuild:
            return rebuild
        self.estimator.settings = config.decode
        if self.smoother is not None:
            self.smoother.retune(config.smooth_min_cutoff, config.smooth_beta)
        self.config = config
        return ()

    def reset(self) -> None:
        """Forget tracks and filter state: call on a new source or after a seek."""
        self._last_full_pass_s = None
        self._last_turned_pass_s = None
        self._turn_order = TURNS
        self._turns_tried = len(TURNS)
        if self.tracker is not None:
            self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()


def open_engine(config: PipelineConfig) -> PoseEngine:
    """A PoseEngine for the config's model, provider and threads (PoseAppError if it cannot load)."""
    return PoseEngine(config.model, provider=config.provider, threads=config.threads)


# Crop engines opened by build_pipeline, by (model, provider, threads): a crop model other than
# the full frame's is loaded once per process, not again for every input or settings change.
_CROP_ENGINES: dict[tuple[str, str, int], PoseEngine] = {}
MAX_CACHED_CROP_ENGINES = 3


def crop_model_of(config: PipelineConfig, is_still: bool) -> str:
    """The model name the crops run for a still image or a video ("": the full frame's engine)."""
    return config.crop_model if is_still else (config.video_crop_model or config.crop_model)


def open_crop_engine(config: PipelineConfig, engine: PoseEngine, is_still: bool = False) -> PoseEngine:
    """The engine the crops run: `engine` itself unless the config names another crop model
    for this kind of source (crop_model for stills, video_crop_model for videos)."""
    model = crop_model_of(config, is_still)
    if not model or model == config.model:
        return engine
    key = (model, config.provider, config.threads)
    if key not in _CROP_ENGINES:
        if len(_CROP_ENGINES) >= MAX_CACHED_CROP_ENGINES:
            del _CROP_ENGINES[next(iter(_CROP_ENGINES))]
        _CROP_ENGINES[key] = PoseEngine(model, provider=config.provider, threads=config.threads)
    return _CROP_ENGINES[key]


def check_input_sizes(config: PipelineConfig, engine: PoseEngine, crop_engine: PoseEngine | None = None) -> None:
    """PoseAppError unless every input size the config asks for (each scale of the full frame,
    the crops) is one the networks take (crops: `crop_engine`'s, default `engine`'s): checked
    once, before any output file is opened."""
    for scale in config.scales:
        engine.family.check_resolution(engine.info, round(config.resolution * scale))
    if config.refine:
        crop_engine = crop_engine or engine
        crop_engine.family.check_resolution(crop_engine.info, config.crop_resolution)


def build_pipeline(
    config: PipelineConfig,
    *,
    is_still: bool = False,
    engine: PoseEngine | None = None,
    crop_engine: PoseEngine | None = None,
) -> PosePipeline:
    """The pipeline of a config for a source: still images (and image folders) run the two-pass
    mode and are not smoothed (independent pictures); videos, streams and cameras use tracked
    crops. `engine` / `crop_engine`: reuse loaded engines (the config's model and the crop model
    of this kind of source, `crop_model_of`)."""
    engine = engine or open_engine(config)
    if config.refine:
        crop_engine = crop_engine or open_crop_engine(config, engine, is_still)
    check_input_sizes(config, engine, crop_engine if config.refine else None)
    estimator = PoseEstimator(engine, config.resolution, config.decode, config.mirrored_input, config.augmentation)
    refiner = CropRefiner(crop_engine, config.crop_settings, mirrored_input=config.mirrored_input) if config.refine else None
    tracker = PoseTracker() if config.track else None
    smoother = (
        PoseSmoother(config.smooth_min_cutoff, config.smooth_beta) if tracker and config.smooth and not is_still else None
    )
    tracked_crops = tracker is not None and refiner is not None and not is_still
    interval = config.redetect_interval_s if tracked_crops else 0.0
    return PosePipeline(
        estimator, refiner, tracker, smoother, interval, config=config, turned_passes=config.any_orientation, still=is_still
    )
