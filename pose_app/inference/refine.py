"""Crop refinement: the network run again, top-down, on a crop around each person.

The full-frame (bottom-up) pass sees a person 100 px tall in a 640 px frame as ~55 input pixels,
a few heatmap cells: it finds the person but places the joints coarsely. Running the same
network on a crop around each found person, at a fixed crop size, gives that person most of the
input and so the resolution their joints need (PoseNet's heatmaps were trained on people of
every size). The crop network may be another family's (MoveNet, trained on single people in
fitness video): the family sizes the crops and decodes them (families/).

Crops are turned so that the body stands upright for the network (the direction from the hip
centre to the shoulder centre, `upright_angle`): both networks were trained on upright people
and lose a body lying in a plank or upside down in a handstand; the keypoints are turned back.

preprocess (person box -> crop geometry -> one batch of crops) -> inference (one onnxruntime
run for all crops of a frame) -> postprocess (decode each crop, map back to frame pixels, keep
the crop pose that matches the first-pass pose best by OKS or box overlap).

Where a crop lies and how it is cut: crops.py; which poses are one person (rules the pipeline
applies too): identity.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from pose_app.core.geometry import unmirrored
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.similarity import object_keypoint_similarity
from pose_app.core.skeleton import FLIP_PERMUTATION
from pose_app.inference.crops import (
    CropSettings,
    CropTransform,
    box_corners,
    crop_batch,
    crop_transform,
    turned_box,
    upright_angle,
)
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.engine import PoseEngine
from pose_app.inference.identity import best_match, duplicate_mask, lost_joints

# The stages crop refinement reports in a frame's timings (seconds).
CROP_STAGES = ("crop_preprocess", "crop_inference", "crop_decode")


def average_views(keypoints: np.ndarray, other: np.ndarray) -> np.ndarray:
    """One pose (17, 3) from two views' poses of a person: score-weighted mean positions, mean scores."""
    weights = np.stack([keypoints[:, 2], other[:, 2]]) + 1e-9  # 1e-9: both 0 still get a mean
    xy = (np.stack([keypoints[:, :2], other[:, :2]]) * weights[:, :, None]).sum(axis=0) / weights.sum(axis=0)[:, None]
    return np.concatenate([xy, (keypoints[:, 2:] + other[:, 2:]) / 2.0], axis=1).astype(np.float32)


# A refined keypoint keeps the first pass's position when the crop sees it with less than this
# fraction of the first pass's score (a joint cut off by the crop's edge, or hidden in it).
MIN_CROP_SCORE_RATIO = 0.5


def merge_refined(first_pass: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """Poses (P, 17, 3) with each keypoint from the crop, except where the crop's score is below
    MIN_CROP_SCORE_RATIO x the first pass's (coco-dev AP, balanced preset: 0.411 vs 0.401 taking
    every crop keypoint, 0.38 taking the higher-scored one)."""
    keep_first = refined[:, :, 2] < MIN_CROP_SCORE_RATIO * first_pass[:, :, 2]
    return np.where(keep_first[:, :, None], first_pass, refined)


class CropRefiner:
    """Refines poses found in a frame by running a network on a crop around each of them.

    `refine(frame, keypoints, scores)` returns the same poses (same order and pose scores) with
    the keypoints of each crop's best-matching pose. A pose whose crop finds nothing that
    matches it keeps its first-pass keypoints. The crop network's family decides the crops'
    shape and size and decodes them (PoseNet: several people per crop, the one matching the
    person kept; MoveNet: the one person nearest the crop's centre).
    """

    def __init__(
        self, engine: PoseEngine, settings: CropSettings = CropSettings(), decode=None, mirrored_input: bool = False
    ):
        family = engine.family
        self.engine = engine
        self.settings = replace(
            settings,
            aspect=family.crop_aspect or settings.aspect,
            expand=family.crop_expand or settings.expand,
        )
        self.mirrored_input = mirrored_input  # swap left/right labels, as PoseEstimator does
        self.input_size = family.crop_input_size(engine.info, self.settings.resolution, self.settings.aspect)
        # Inside a crop the person fills the input: other people only reach in from its edges.
        self.decode = decode or DecodeSettings(max_poses=5, min_pose_score=0.0)

    def crops_for(
        self, frame_shape: tuple[int, ...], keypoints: np.ndarray, boxes: np.ndarray | None = None,
        angles: np.ndarray | None = None,
    ) -> list[CropTransform]:
        """The crop around each pose `keypoints (P, 17, 3)` of a frame of this shape: around its
        body box from `boxes (P, 4)` when given (tracked crops), else its confident keypoints;
        turned by `angles (P,)` (radians, see CropTransform) when given, else upright for the
        pose's own torso (`upright_angle`, when the settings turn crops)."""
        frame_size = (frame_shape[1], frame_shape[0])
        transforms = []
        for index, pose in enumerate(keypoints):
            angle = self._angle(pose, None if angles is None else angles[index])
            box = None if boxes is None or not np.isfinite(boxes[index]).all() else boxes[index:index + 1]
            max_zoom = float("inf") if box is None else self.settings.tracked_max_zoom
            if box is not None:
                points = box_corners(box)[0]
            else:
                confident = pose[:, 2] >= MIN_KEYPOINT_SCORE  # as keypoint_boxes picks them, in float64
                points = pose[confident if confident.any() else slice(None), :2].astype(np.float64)
            box = turned_box(points, angle) if angle else np.concatenate([points.min(axis=0), points.max(axis=0)])
            transforms.append(crop_transform(box, frame_size, self.input_size, self.settings, max_zoom, angle))
        return transforms

    def _angle(self, pose: np.ndarray, given: float | None) -> float:
        if not self.settings.upright:
            return 0.0
        if given is not None and np.isfinite(given):
            return 0.0 if abs(np.degrees(given)) < self.settings.upright_min_degrees else float(given)
        return upright_angle(pose, self.settings.upright_min_degrees) or 0.0

    def run_crops(
        self, frame_bgr: np.ndarray, transforms: list[CropTransform]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, float]]:
        """Each crop's candidate poses (keypoints (K, 17, 3) in frame pixels, scores (K,)), and
        seconds per stage. All crops (and their mirror images) run as one batch."""
        engine, family = self.engine, self.engine.family
        start = time.perf_counter()
        batch = crop_batch(frame_bgr, transforms, self.settings.flip, family.pad_value)
        prepared = time.perf_counter()
        heads = engine.run(batch)[: len(engine.head_outputs)]
        inferred = time.perf_counter()
        views = 2 if self.settings.flip else 1
        candidates = []
        for index, transform in enumerate(transforms):
            keypoints, scores = family.decode([head[index * views] for head in heads], engine.info, self.decode)
            if self.settings.flip and len(keypoints):
                flipped, _ = family.decode([head[index * views + 1] for head in heads], engine.info, self.decode)
                keypoints = self._merge_with_mirror(keypoints, flipped)
            keypoints[..., :2] = transform.to_frame(keypoints[..., :2])
            if self.mirrored_input:
                keypoints = keypoints[:, FLIP_PERMUTATION]
            distinct = ~duplicate_mask(keypoints)
            candidates.append((keypoints[distinct], scores[distinct]))
        timings = {
            "crop_preprocess": prepared - start,
            "crop_inference": inferred - prepared,
            "crop_decode": time.perf_counter() - inferred,
        }
        return candidates, timings

    def _merge_with_mirror(self, keypoints: np.ndarray, flipped: np.ndarray) -> np.ndarray:
        """Each crop pose merged with the mirror view's pose that matches it best (crop pixels)."""
        if not len(flipped):
            return keypoints
        restored = unmirrored(flipped, self.input_size[0])
        best = object_keypoint_similarity(keypoints, restored, MIN_KEYPOINT_SCORE).argmax(axis=1)
        return np.stack([average_views(keypoints[i], restored[j]) for i, j in enumerate(best)])

    def crop_poses(
        self, frame_bgr: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray | None = None,
        angles: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
        """Run a crop around each of the first `max_crops` poses `keypoints (P, 17, 3)` (around
        their `boxes (P, 4)` and turned by `angles (P,)` when given, see crops_for); return
        for each of them the crop pose that matches it best (keypoints (P', 17, 3), its own score
        (P',), found (P',) bool: False where nothing in the crop matched, keypoints then unchanged)
        and the seconds per stage."""
        poses = keypoints[: self.settings.max_crops]
        if not len(poses):
            return poses.copy(), np.zeros(0, np.float32), np.zeros(0, bool), {}
        count = len(poses)
        transforms = self.crops_for(
            frame_bgr.shape, poses, None if boxes is None else boxes[:count], None if angles is None else angles[:count]
        )
        candidates, timings = self.run_crops(frame_bgr, transforms)
        refined, scores, found = poses.copy(), np.zeros(len(poses), np.float32), np.zeros(len(poses), bool)
        for index, (crop_keypoints, crop_scores) in enumerate(candidates):
            best = best_match(poses[index], crop_keypoints)
            if best is not None:
                refined[index], scores[index], found[index] = crop_keypoints[best], crop_scores[best], True
        return refined, scores, found, timings

    def whole_frame(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """A single-person crop network (MoveNet) run on the whole frame, as one crop around it:
        (keypoints (P, 17, 3) frame pixels, scores (P,), seconds per stage); no poses for a
        multi-person network (its full-frame pass already looked). It finds people the full-frame
        pass cannot: legs alone on a step, a body filling the frame."""
        if self.engine.family.multi_person:
            return np.zeros((0, 17, 3), np.float32), np.zeros(0, np.float32), {}
        height, width = frame_bgr.shape[:2]
        whole = replace(self.settings, expand=1.0, min_height_fraction=0.0)
        transform = crop_transform(np.array([0.0, 0.0, width - 1.0, height - 1.0]), (width, height), self.input_size, whole)
        candidates, timings = self.run_crops(frame_bgr, [transform])
        keypoints, scores = candidates[0]
        return keypoints, scores, timings

    def refine(
        self, frame_bgr: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, crop_scores: bool = False,
        angles: np.ndarray | None = None, boxes: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Two-pass mode: (keypoints (P, 17, 3) with each refined pose's keypoints replaced by its
        crop's best match (merge_refined for a multi-person crop network), scores (P,), seconds
        per stage). Scores stay the first pass's unless
        `crop_scores` (videos, so that frames which ran only crops report scores on the same
        scale): for still images the first pass's rank better (coco-dev AP 0.39 vs 0.32).
        `boxes (P, 4)`: a box each crop must also hold (a track's body box), NaN rows for none."""
        crop_keypoints, found_scores, found, timings = self.crop_poses(frame_bgr, keypoints, boxes, angles)
        refined, rescored = keypoints.copy(), scores.copy()
        if self.engine.family.multi_person:
            refined[: len(crop_keypoints)] = merge_refined(keypoints[: len(crop_keypoints)], crop_keypoints)
        else:
            # A single-person network's crop pose replaces every joint: MoveNet's joints beat
            # PoseNet's where they disagree (coco-dev AP, Lightning crops: 0.389 replacing, 0.378
            # keeping first-pass joints the crop scores low), and in video a full-frame pass
            # then sees the joints the crops in between see (tracking loss 7.4 % vs 11.4 % on
            # two-people-1080p, fewer full passes).
            refined[: len(crop_keypoints)][found] = crop_keypoints[found]
        if crop_scores:
            rescored[: len(found)][found] = found_scores[found]
        return refined, rescored, timings

    def follow(
        self, frame_bgr: np.ndarray, predicted: np.ndarray, boxes: np.ndarray | None = None,
        angles: np.ndarray | None = None, reference_joints: np.ndarray | None = None,
    ) -> Followed:
        """Tracked mode: the poses found in crops around where `predicted (T, 17, 3)` says people
        are now (crops around their body `boxes (T, 4)` and turned by `angles (T,)` when given),
        best score first, and whether a full-frame pass should look again (see Followed): a
        person lost, or one that lost joints of `reference_joints (T, 17)` (default: those
        confident in `predicted`)."""
        keypoints, scores, found, timings = self.crop_poses(frame_bgr, predicted, boxes, angles)
        if reference_joints is None:
            reference_joints = predicted[:, :, 2] >= MIN_KEYPOINT_SCORE
        faded = bool(lost_joints(reference_joints[: len(found)][found], keypoints[found]).any())
        keypoints, scores = keypoints[found], scores[found]
        order = np.argsort(-scores, kind="stable")
        keypoints, scores = keypoints[order], scores[order]
        duplicate = duplicate_mask(keypoints)
        lost = not found.all() or duplicate.any()
        return Followed(keypoints[~duplicate], scores[~duplicate], lost, faded, timings)


@dataclass(frozen=True)
class Followed:
    """What tracked crops found (CropRefiner.follow)."""

    keypoints: np.ndarray  # (P, 17, 3) frame pixels, best pose score first
    scores: np.ndarray  # (P,) the crops' pose scores
    lost: bool  # a crop found no pose matching its person, or two crops found the same person
    faded: bool  # a crop's person lost joints it had on the last full-frame pass (lost_joints)
    timings: dict[str, float]  # seconds per crop stage
