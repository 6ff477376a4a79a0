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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import cv2
import numpy as np

from pose_app.core.geometry import torso_angle, unmirrored
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.similarity import (
    object_keypoint_similarity,
    pose_similarity,
)
from pose_app.core.skeleton import FLIP_PERMUTATION
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.engine import PoseEngine
from pose_app.inference.families.posenet import PAD_VALUE, snap_to_valid_size
from pose_app.inference.preprocess import as_bgr

# The stages crop refinement reports in a frame's timings (seconds).
CROP_STAGES = ("crop_preprocess", "crop_inference", "crop_decode")


@dataclass(frozen=True)
class CropSettings:
    """How crops around people are cut and run.

    - ``resolution``: network input height of a crop (snapped to k*stride+1); the width follows
      from ``aspect``.
    - ``expand``: the crop is this much larger than the box of the pose's confident keypoints
      (1.25 measured best on coco-dev: below 1.1 limbs are cut, above 1.5 people get small again).
    - ``aspect``: width / height of every crop. A fixed, standing-person shape: a half-visible
      body (only shoulders and hips found) still gets room for its limbs.
    - ``min_height_fraction``: a crop is at least this fraction of the frame's longer side tall,
      so a pose with only a face found does not become a 10x zoom on the face.
    - ``max_crops``: only the best-scoring poses of a frame are refined (bounds the cost).
    - ``flip``: also run each crop mirrored and average the two (test-time augmentation).
    - ``tracked_max_zoom``: tracked crops (videos) enlarge the frame at most this much (input
      pixels per frame pixel). A small person in a soft, compressed video blown up further
      loses joints: on the shared basketball clip (426x240) legs kept vs the accurate preset
      0.49 -> 0.84 at 1.5 (0.76 at 0.8, with coarser joints). Not for still images: there
      zooming pays (coco-dev AP 0.407 unbounded, 0.391 at 1.5).
    - ``upright``: turn each crop so that the person's torso stands upright (``upright_angle``);
      people leaning less than ``upright_min_degrees`` are not turned: the networks handle a
      lean, and a torso angle from a coarse first-pass pose is not exact (coco-dev AP upright:
      0.420 unturned, 0.412 turning from 30 degrees, 0.420 from 60; planks and push-ups lean
      80-90 degrees).
    """

    resolution: int = 257
    expand: float = 1.25
    aspect: float = 0.75
    min_height_fraction: float = 0.2
    max_crops: int = 10
    flip: bool = False
    tracked_max_zoom: float = 1.5
    upright: bool = True
    upright_min_degrees: float = 60.0


@dataclass(frozen=True)
class CropTransform:
    """Geometry between a frame and one crop input: a turn about the crop's centre, a uniform
    scale and a shift.

    Pixel coordinates put (0, 0) at the centre of the top-left pixel (as FrameTransform does).
    `angle` (radians) is how far the frame's content is turned, counter-clockwise as seen on the
    screen, so that the person stands upright in the crop (0: not turned).
    """

    centre: tuple[float, float]  # frame pixel coordinates (x, y) of the crop's centre
    scale: float  # input pixels per frame pixel
    input_size: tuple[int, int]  # (w, h) of the crop input
    angle: float = 0.0

    def affine(self) -> np.ndarray:
        """2x3 matrix taking frame pixel coordinates to crop-input pixel coordinates."""
        cos, sin = np.cos(self.angle) * self.scale, np.sin(self.angle) * self.scale
        # y points down: a counter-clockwise turn on screen is [[cos, sin], [-sin, cos]].
        linear = np.array([[cos, sin], [-sin, cos]])
        input_centre = (np.asarray(self.input_size, np.float64) - 1.0) / 2.0
        shift = input_centre - linear @ np.asarray(self.centre, np.float64)
        return np.concatenate([linear, shift[:, None]], axis=1)

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) frame pixel coordinates -> crop-input pixel coordinates."""
        matrix = self.affine()
        return (np.asarray(xy, np.float64) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) crop-input pixel coordinates -> frame pixel coordinates."""
        matrix = cv2.invertAffineTransform(self.affine())
        return (np.asarray(xy, np.float64) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The frame region the crop covers as edge coordinates (x0, y0, x1, y1); for a turned
        crop, the upright box around it."""
        w, h = self.input_size
        corners = self.to_frame(np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]]))
        x0, y0 = corners.min(axis=0) + 0.5
        x1, y1 = corners.max(axis=0) + 0.5
        return float(x0), float(y0), float(x1), float(y1)


def crop_input_size(settings: CropSettings, output_stride: int) -> tuple[int, int]:
    """(w, h) of every PoseNet crop input: valid network sizes of the crop shape."""
    height = snap_to_valid_size(settings.resolution, output_stride)
    return snap_to_valid_size(height * settings.aspect, output_stride), height


def crop_transform(
    box: np.ndarray, frame_size: tuple[int, int], input_size: tuple[int, int], settings: CropSettings,
    max_zoom: float = float("inf"), angle: float = 0.0,
) -> CropTransform:
    """The crop around a person box (x0, y0, x1, y1, pixel coordinates, as the person stands in
    a frame turned by `angle`): expanded, grown to the input's aspect around the box's centre, at
    least the minimum height and at most `max_zoom` input pixels per frame pixel."""
    input_w, input_h = input_size
    width, height = (box[2] - box[0]) * settings.expand, (box[3] - box[1]) * settings.expand
    height = max(
        height, width * input_h / input_w, settings.min_height_fraction * max(frame_size), input_h / max_zoom, 1.0
    )
    centre = (np.asarray(box[:2], np.float64) + box[2:]) / 2.0
    if angle:  # the box was measured in the turned frame: its centre back in the frame
        cos, sin = np.cos(angle), np.sin(angle)
        centre = np.array([[cos, -sin], [sin, cos]]) @ centre
    return CropTransform((float(centre[0]), float(centre[1])), float(input_h / height), input_size, float(angle))


def turned_box(points: np.ndarray, angle: float) -> np.ndarray:
    """(x0, y0, x1, y1) around `points (N, 2)` (frame pixels) seen in the frame turned by
    `angle` (as CropTransform turns it, about the frame's origin)."""
    cos, sin = np.cos(angle), np.sin(angle)
    turned = np.asarray(points, np.float64) @ np.array([[cos, sin], [-sin, cos]]).T
    return np.concatenate([turned.min(axis=0), turned.max(axis=0)])


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """(P, 4, 2) corners of boxes (P, 4) = x0, y0, x1, y1."""
    x0, y0, x1, y1 = np.asarray(boxes, np.float64).T
    return np.stack([np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x0, y1], -1), np.stack([x1, y1], -1)], 1)


def upright_angle(pose: np.ndarray, min_degrees: float = 0.0) -> float | None:
    """The turn (radians, see CropTransform) that stands `pose (17, 3)` upright (its torso
    pointing up, `torso_angle`); 0 when it leans less than `min_degrees`; None without a
    confident shoulder and hip."""
    angle = torso_angle(pose, MIN_KEYPOINT_SCORE)
    if angle is None:
        return None
    return 0.0 if abs(np.degrees(angle)) < min_degrees else angle


def crop_batch(
    frame_bgr: np.ndarray, transforms: list[CropTransform], flip: bool, pad_value: float = PAD_VALUE
) -> np.ndarray:
    """Network input (N, 3, H, W) float32 RGB 0..255 of the crops (each followed by its mirror
    image when `flip`); outside the frame is `pad_value` (PoseNet's: its zero after normalising)."""
    input_w, input_h = transforms[0].input_size
    views = 2 if flip else 1
    batch = np.empty((len(transforms) * views, 3, input_h, input_w), np.float32)
    image = as_bgr(frame_bgr)
    frame_h, frame_w = image.shape[:2]
    for index, transform in enumerate(transforms):
        # Warped as uint8 (a large person's region in float would cost more than the network),
        # padded with the rounded pad value, then every pixel whose centre lies outside the
        # frame set to exactly `pad_value`: only the pixels straddling the frame's edge keep a
        # blend with the rounded value.
        crop = cv2.warpAffine(
            image, transform.affine(), (input_w, input_h), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(round(pad_value),) * 3,
        ).astype(np.float32)
        columns, rows = np.arange(input_w), np.arange(input_h)
        if transform.angle == 0.0:
            (x0, y0), (x1, y1) = transform.to_input(np.array([[-0.5, -0.5], [frame_w - 0.5, frame_h - 0.5]]))
            crop[(rows < y0) | (rows > y1)] = pad_value
            crop[:, (columns < x0) | (columns > x1)] = pad_value
        else:
            grid = np.stack(np.meshgrid(columns, rows), axis=-1)
            x, y = np.moveaxis(transform.to_frame(grid), -1, 0)
            crop[(x < -0.5) | (x > frame_w - 0.5) | (y < -0.5) | (y > frame_h - 0.5)] = pad_value
        rgb = crop[:, :, ::-1].transpose(2, 0, 1)
        batch[index * views] = rgb
        if flip:
            batch[index * views + 1] = rgb[:, :, ::-1]
    return batch


def average_views(keypoints: np.ndarray, other: np.ndarray) -> np.ndarray:
    """One pose (17, 3) from two views' poses of a person: score-weighted mean positions, mean scores."""
    weights = np.stack([keypoints[:, 2], other[:, 2]]) + 1e-9  # 1e-9: both 0 still get a mean
    xy = (np.stack([keypoints[:, :2], other[:, :2]]) * weights[:, :, None]).sum(axis=0) / weights.sum(axis=0)[:, None]
    return np.concatenate([xy, (keypoints[:, 2:] + other[:, 2:]) / 2.0], axis=1).astype(np.float32)


# A crop pose is the same person as the pose its crop was cut around when their similarity (the
# larger of OKS and keypoint-box IoU, as for tracking) reaches this. Low on purpose: the crop is
# centred on that person, and a coarse first-pass pose may be far from the refined joints
# (coco-dev AP with posenet-075 at 353: 0.386 at 0.1, 0.377 at 0.3, 0.32 at 0.5, where more
# people kept coarse poses).
MIN_MATCH_SIMILARITY = 0.1

# Two poses reaching this OKS are the same person (two decodings in a crop, or tracks that merged).
DUPLICATE_OKS = 0.5
# A refined keypoint keeps the first pass's position when the crop sees it with less than this
# fraction of the first pass's score (a joint cut off by the crop's edge, or hidden in it).
MIN_CROP_SCORE_RATIO = 0.5


# A tracked crop whose person lost at least MIN_LOST_JOINTS of the joints that were confident
# when a full-frame pass last found them asks for a full-frame pass on the next frame: crops
# alone often do not find a lost joint again (on the shared chair-exercise clip a seated woman's
# knees score 0.8 on every full-frame pass and 0.1 on the PoseNet crops in between), the
# full-frame pass does. Two, not one: a single joint flickers at the edge of confidence on most
# frames of most clips; counted against the last full-frame pass, not the previous frame, so that
# a joint lost slowly over several frames is noticed too.
MIN_LOST_JOINTS = 2


def lost_joints(reference: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(P,) bool: poses `after (P, 17, 3)` missing at least MIN_LOST_JOINTS of the joints
    `reference (P, 17)` says were confident."""
    lost = reference & (after[:, :, 2] < MIN_KEYPOINT_SCORE)
    return lost.sum(axis=1) >= MIN_LOST_JOINTS


def duplicate_mask(keypoints: np.ndarray) -> np.ndarray:
    """(P,) bool: poses (P, 17, 3), best first, that are a second decoding of an earlier pose
    (OKS >= DUPLICATE_OKS): their keypoints can be as close to a person as the real pose's."""
    if len(keypoints) < 2:
        return np.zeros(len(keypoints), bool)
    oks = object_keypoint_similarity(keypoints, keypoints, MIN_KEYPOINT_SCORE)
    return np.tril(oks >= DUPLICATE_OKS, k=-1).any(axis=1)


def decodings_of(keypoints: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(P,) bool: poses `keypoints (P, 17, 3)` that are a second decoding of a pose in `found`
    (OKS >= DUPLICATE_OKS, as duplicate_mask asks within one set of poses)."""
    if not len(keypoints) or not len(found):
        return np.zeros(len(keypoints), bool)
    return (object_keypoint_similarity(keypoints, found, MIN_KEYPOINT_SCORE) >= DUPLICATE_OKS).any(axis=1)


def best_match(pose: np.ndarray, candidates: np.ndarray) -> int | None:
    """Index of the candidate pose (K, 17, 3) that is the person `pose (17, 3)`: the most
    similar one, None when none is at least MIN_MATCH_SIMILARITY similar. Candidates must be
    free of duplicates (`duplicate_mask`), or a faint second decoding of the person may win."""
    if not len(candidates):
        return None
    similarity = pose_similarity(pose[None], candidates, MIN_KEYPOINT_SCORE)[0]
    best = int(similarity.argmax())
    return best if similarity[best] >= MIN_MATCH_SIMILARITY else None


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
        max_zoom = float("inf") if boxes is None else self.settings.tracked_max_zoom
        transforms = []
        for index, pose in enumerate(keypoints):
            angle = self._angle(pose, None if angles is None else angles[index])
            if boxes is not None:
                points = box_corners(boxes[index:index + 1])[0]
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
        angles: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Two-pass mode: (keypoints (P, 17, 3) with each refined pose's keypoints replaced by its
        crop's best match (merge_refined for a multi-person crop network), scores (P,), seconds
        per stage). Scores stay the first pass's unless
        `crop_scores` (videos, so that frames which ran only crops report scores on the same
        scale): for still images the first pass's rank better (coco-dev AP 0.39 vs 0.32)."""
        crop_keypoints, found_scores, found, timings = self.crop_poses(frame_bgr, keypoints, angles=angles)
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
