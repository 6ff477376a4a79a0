"""Frames -> poses in original-frame pixels: engine (preprocess, inference) then decoding."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from pose_app.core.geometry import unmirrored
from pose_app.core.poses import MIN_KEYPOINT_SCORE, FramePoses
from pose_app.core.similarity import object_keypoint_similarity
from pose_app.core.skeleton import FLIP_PERMUTATION, NUM_KEYPOINTS
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.engine import PoseEngine

# Test-time augmentation merges the poses of several views (scales, mirror image) of one frame:
# poses from different views whose OKS reaches this are the same person.
MERGE_MIN_OKS = 0.5
# Keypoints below this score are left out of the OKS that groups poses across views.
MERGE_MIN_KEYPOINT_SCORE = 0.1


@dataclass(frozen=True)
class Augmentation:
    """Test-time augmentation: the frame is also run at `scales` x the resolution, and mirrored."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @property
    def views(self) -> list[tuple[float, bool]]:
        """(scale, mirrored) of every view; the first is the primary view (heatmaps, features)."""
        return [(scale, mirrored) for scale in self.scales for mirrored in ((False, True) if self.flip else (False,))]


def merge_views(views: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Poses of one image seen in several views -> one set of poses (keypoints (P,17,3), scores (P,)).

    Greedy from the best pose: it takes, from every other view, that view's free pose with the
    highest OKS to it if that reaches `MERGE_MIN_OKS`. A group's keypoint positions are their
    score-weighted mean; its keypoint and pose scores are the mean over ALL views (0 where a
    view missed the person), so people every view agrees on rank first.
    """
    keypoints = np.concatenate([k for k, _ in views]).astype(np.float64)
    scores = np.concatenate([s for _, s in views]).astype(np.float64)
    view_of = np.repeat(np.arange(len(views)), [len(s) for _, s in views])
    oks = object_keypoint_similarity(keypoints, keypoints, MERGE_MIN_KEYPOINT_SCORE)
    free = np.ones(len(scores), dtype=bool)
    merged_keypoints, merged_scores = [], []
    for leader in np.argsort(-scores, kind="stable"):
        if not free[leader]:
            continue
        group = [leader]
        for view in set(range(len(views))) - {view_of[leader]}:
            candidates = np.flatnonzero(free & (view_of == view) & (oks[leader] >= MERGE_MIN_OKS))
            if len(candidates):
                group.append(candidates[np.argmax(oks[leader, candidates])])
        free[group] = False
        members = keypoints[group]
        weights = members[:, :, 2:] + 1e-9  # 1e-9: a keypoint all views score 0 still gets a mean
        xy = (members[:, :, :2] * weights).sum(axis=0) / weights.sum(axis=0)
        keypoint_scores = members[:, :, 2].sum(axis=0) / len(views)
        merged_keypoints.append(np.concatenate([xy, keypoint_scores[:, None]], axis=1))
        merged_scores.append(scores[group].sum() / len(views))
    if not merged_scores:
        return np.zeros((0, NUM_KEYPOINTS, 3), np.float32), np.zeros(0, np.float32)
    order = np.argsort(merged_scores, kind="stable")[::-1]
    return (
        np.stack(merged_keypoints)[order].astype(np.float32),
        np.asarray(merged_scores, np.float32)[order],
    )


# A pose with at least this many confident keypoints is a whole person. In videos, when no pose
# of a full-frame pass is whole, the frame is also tried turned (PosePipeline): networks trained
# on upright people see a body lying or upside down as fragments, or not at all. On coco-dev
# (PoseNet 0.75 at 513) no pose reached 12 keypoints in 23 of 78 upright images, and in 74 and
# 70 of the same images turned by 90 and 180 degrees.
WHOLE_POSE_KEYPOINTS = 12
# Poses with this many confident keypoints count as evidence that a view shows people the right
# way up (orientation_evidence). Five: a face and shoulders (a webcam's view) count.
EVIDENCE_POSE_KEYPOINTS = 5


def confident_counts(keypoints: np.ndarray) -> np.ndarray:
    """(P,) number of confident keypoints (score >= MIN_KEYPOINT_SCORE) of poses (P, 17, 3)."""
    return (keypoints[:, :, 2] >= MIN_KEYPOINT_SCORE).sum(axis=1)


def has_whole_pose(keypoints: np.ndarray) -> bool:
    """Some pose of (P, 17, 3) has WHOLE_POSE_KEYPOINTS confident keypoints."""
    return bool((confident_counts(keypoints) >= WHOLE_POSE_KEYPOINTS).any())


def confident_enough(keypoints: np.ndarray) -> np.ndarray:
    """(P,) bool: poses of (P, 17, 3) with EVIDENCE_POSE_KEYPOINTS confident keypoints (a person,
    not a stray ghost)."""
    return confident_counts(keypoints) >= EVIDENCE_POSE_KEYPOINTS


def has_evidence(keypoints: np.ndarray) -> bool:
    """Some pose of (P, 17, 3) is `confident_enough`."""
    return bool(confident_enough(keypoints).any())


def orientation_evidence(keypoints: np.ndarray, scores: np.ndarray) -> float:
    """How strongly a view of a frame shows people the right way up: the summed score of its
    poses with at least EVIDENCE_POSE_KEYPOINTS confident keypoints. On coco-dev the view with
    the most evidence was the upright one for all 78 upright images, and for 70 of the 78 turned
    by 90 degrees (70 by 180)."""
    return float(scores[confident_counts(keypoints) >= EVIDENCE_POSE_KEYPOINTS].sum()) if len(scores) else 0.0


def best_orientation(views: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """Index of the view (keypoints (P, 17, 3), scores (P,)) of one frame seen turned in several
    ways with the most orientation_evidence; the first on a tie. Only that view's poses are kept:
    adding the whole poses of the other views (someone lying among people standing) added as
    many ghosts as people on coco-dev (AP 0.407 instead of 0.412 upright)."""
    evidence = [orientation_evidence(keypoints, scores) for keypoints, scores in views]
    return int(np.argmax(evidence))


def turn_frame(frame_bgr: np.ndarray, quarter_turns: int) -> np.ndarray:
    """The frame turned by `quarter_turns` x 90 degrees counter-clockwise as seen on screen."""
    return np.ascontiguousarray(np.rot90(frame_bgr, quarter_turns % 4))


def unturned(keypoints: np.ndarray, quarter_turns: int, frame_size: tuple[int, int]) -> np.ndarray:
    """Keypoints (..., 3) found in `turn_frame(frame, quarter_turns)` -> the frame's own pixels
    (`frame_size` = (w, h) of the unturned frame)."""
    width, height = frame_size
    x, y = keypoints[..., 0].copy(), keypoints[..., 1].copy()
    back = keypoints.copy()
    turns = quarter_turns % 4
    if turns == 1:  # np.rot90 once: turned (x', y') shows frame pixel (w - 1 - y', x')
        back[..., 0], back[..., 1] = width - 1 - y, x
    elif turns == 2:
        back[..., 0], back[..., 1] = width - 1 - x, height - 1 - y
    elif turns == 3:
        back[..., 0], back[..., 1] = y, height - 1 - x
    return back


class PoseEstimator:
    """Runs the engine on a frame (every view of `augmentation`) and decodes poses in the frame's
    own pixel coordinates."""

    def __init__(
        self,
        engine: PoseEngine,
        resolution: int,
        settings: DecodeSettings = DecodeSettings(),
        mirrored_input: bool = False,
        augmentation: Augmentation = Augmentation(),
    ):
        self.engine = engine
        self.resolution = resolution
        self.settings = settings
        # A mirrored frame shows a person's left side where a right side would be: the network
        # labels by appearance, so swapping labels restores the anatomical ones.
        self.mirrored_input = mirrored_input
        self.augmentation = augmentation

    def _view_poses(self, frame_bgr: np.ndarray, resolution: int, features: Sequence[str] = ()):
        """(keypoints in frame pixels, scores, engine output, decode seconds) of one view."""
        output = self.engine.infer(frame_bgr, resolution, features)
        start = time.perf_counter()
        engine = self.engine
        keypoints, scores = engine.family.decode(
            [output.heads[name] for name in engine.head_outputs], engine.info, self.settings
        )
        keypoints[..., :2] = output.transform.to_frame(keypoints[..., :2])  # decoders return fresh arrays
        return keypoints, scores, output, time.perf_counter() - start

    def estimate(self, frame_bgr: np.ndarray, features: Sequence[str] = (), keep_heads: bool = False) -> FramePoses:
        """Poses of every view merged; heatmaps and features are the primary view's, and with
        `keep_heads` its other heads too (FramePoses.heads, else empty)."""
        views, timings, primary, mirrored_frame = [], {}, None, None
        for scale, mirrored in self.augmentation.views:
            if mirrored and mirrored_frame is None:
                mirrored_frame = cv2.flip(frame_bgr, 1)
            keypoints, scores, output, decode_seconds = self._view_poses(
                mirrored_frame if mirrored else frame_bgr, round(self.resolution * scale),
                features if primary is None else (),
            )
            if mirrored:  # back to the frame's x, and to the labels the frame would have
                keypoints = unmirrored(keypoints, frame_bgr.shape[1])
            primary = primary or output
            views.append((keypoints, scores))
            for stage, seconds in {**output.timings, "decode": decode_seconds}.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        if len(views) > 1:
            start = time.perf_counter()
            keypoints, scores = merge_views(views)
            timings["merge"] = time.perf_counter() - start
        if self.mirrored_input:
            keypoints = keypoints[:, FLIP_PERMUTATION]
        return FramePoses(
            keypoints=keypoints.astype(np.float32, copy=False),
            scores=scores.astype(np.float32, copy=False),
            ids=np.arange(len(scores), dtype=np.int64),
            heatmaps=primary.heatmaps,
            features=primary.features,
            transform=primary.transform,
            timings=timings,
            heads={name: head for name, head in primary.heads.items() if name != "heatmaps"} if keep_heads else {},
        )

    def estimate_turned(
        self, frame_bgr: np.ndarray, quarter_turns: int, resolution: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """One full-frame pass (no augmentation) on the frame turned by `quarter_turns` x 90
        degrees (bodies lying or upside down, which networks trained on upright people miss), at
        `resolution` (default the estimator's): (keypoints (P, 17, 3) in the frame's own pixels,
        scores (P,), seconds per stage)."""
        height, width = frame_bgr.shape[:2]
        keypoints, scores, output, decode_seconds = self._view_poses(
            turn_frame(frame_bgr, quarter_turns), resolution or self.resolution
        )
        if self.mirrored_input:
            keypoints = keypoints[:, FLIP_PERMUTATION]
        timings = {**output.timings, "decode": decode_seconds}
        return unturned(keypoints, quarter_turns, (width, height)), scores, timings
