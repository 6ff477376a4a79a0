"""Crop refinement: the network run again, top-down, on a crop around each person.

The full-frame (bottom-up) pass sees a person 100 px tall in a 640 px frame as ~55 input pixels,
a few heatmap cells: it finds the person but places the joints coarsely. Running the same
network on a crop around each found person, at a fixed crop size, gives that person most of the
input and so the resolution their joints need (PoseNet's heatmaps were trained on people of
every size).

preprocess (person box -> crop geometry -> one batch of crops) -> inference (one onnxruntime
run for all crops of a frame) -> postprocess (decode each crop, map back to frame pixels, keep
the crop pose that matches the first-pass pose best by OKS or box overlap).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from pose_app.core.geometry import unmirrored
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.similarity import (
    keypoint_boxes,
    object_keypoint_similarity,
    pose_similarity,
)
from pose_app.core.skeleton import FLIP_PERMUTATION, KEYPOINT_INDEX
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.engine import (
    HEAD_OUTPUTS,
    PAD_VALUE,
    PoseEngine,
    as_bgr,
    snap_to_valid_size,
)
from pose_app.inference.estimator import decode_fields

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
    """

    resolution: int = 257
    expand: float = 1.25
    aspect: float = 0.75
    min_height_fraction: float = 0.2
    max_crops: int = 10
    flip: bool = False
    tracked_max_zoom: float = 1.5


@dataclass(frozen=True)
class CropTransform:
    """Geometry between a frame and one crop input: a uniform scale and a shift.

    Pixel coordinates put (0, 0) at the centre of the top-left pixel (as FrameTransform does):
    an edge coordinate is the pixel coordinate + 0.5.
    """

    origin: tuple[float, float]  # frame edge coordinates (x, y) of the crop's top-left corner
    scale: float  # input pixels per frame pixel
    input_size: tuple[int, int]  # (w, h) of the crop input

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) crop-input pixel coordinates -> frame pixel coordinates."""
        return ((np.asarray(xy, np.float64) + 0.5) / self.scale + np.asarray(self.origin) - 0.5).astype(np.float32)

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) frame pixel coordinates -> crop-input pixel coordinates."""
        return ((np.asarray(xy, np.float64) + 0.5 - np.asarray(self.origin)) * self.scale - 0.5).astype(np.float32)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The crop's frame region as edge coordinates (x0, y0, x1, y1)."""
        (x0, y0), (w, h) = self.origin, self.input_size
        return x0, y0, x0 + w / self.scale, y0 + h / self.scale

    def affine(self) -> np.ndarray:
        """2x3 matrix taking frame pixel coordinates to crop-input pixel coordinates."""
        shift = 0.5 * self.scale - 0.5 - np.asarray(self.origin) * self.scale
        return np.array([[self.scale, 0.0, shift[0]], [0.0, self.scale, shift[1]]])


def crop_input_size(settings: CropSettings, output_stride: int) -> tuple[int, int]:
    """(w, h) of every crop input: valid network sizes of the crop shape."""
    height = snap_to_valid_size(settings.resolution, output_stride)
    return snap_to_valid_size(height * settings.aspect, output_stride), height


def crop_transform(
    box: np.ndarray, frame_size: tuple[int, int], input_size: tuple[int, int], settings: CropSettings,
    max_zoom: float = float("inf"),
) -> CropTransform:
    """The crop around a person box (x0, y0, x1, y1, pixel coordinates): expanded, grown to the
    input's aspect around the box's centre, at least the minimum height and at most `max_zoom`
    input pixels per frame pixel."""
    input_w, input_h = input_size
    centre = (np.asarray(box[:2], np.float64) + box[2:]) / 2.0 + 0.5  # edge coordinates
    width, height = (box[2] - box[0]) * settings.expand, (box[3] - box[1]) * settings.expand
    height = max(
        height, width * input_h / input_w, settings.min_height_fraction * max(frame_size), input_h / max_zoom, 1.0
    )
    scale = input_h / height
    origin = centre - np.array([input_w, input_h]) / scale / 2.0
    return CropTransform((float(origin[0]), float(origin[1])), float(scale), input_size)


def crop_batch(frame_bgr: np.ndarray, transforms: list[CropTransform], flip: bool) -> np.ndarray:
    """Network input (N, 3, H, W) float32 RGB 0..255 of the crops (each followed by its mirror
    image when `flip`); outside the frame is PAD_VALUE, the network's zero."""
    input_w, input_h = transforms[0].input_size
    views = 2 if flip else 1
    batch = np.empty((len(transforms) * views, 3, input_h, input_w), np.float32)
    image = as_bgr(frame_bgr)
    frame_h, frame_w = image.shape[:2]
    for index, transform in enumerate(transforms):
        # Warped as uint8 (a large person's region in float would cost more than the network),
        # padded with 128, then every pixel whose centre lies outside the frame set to exactly
        # PAD_VALUE: only the one row or column of pixels straddling the frame's edge keeps a
        # blend with 128 instead of 127.5.
        crop = cv2.warpAffine(
            image, transform.affine(), (input_w, input_h), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(round(PAD_VALUE),) * 3,
        ).astype(np.float32)
        (x0, y0), (x1, y1) = transform.to_input(np.array([[-0.5, -0.5], [frame_w - 0.5, frame_h - 0.5]]))
        columns, rows = np.arange(input_w), np.arange(input_h)
        crop[(rows < y0) | (rows > y1)] = PAD_VALUE
        crop[:, (columns < x0) | (columns > x1)] = PAD_VALUE
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


# A tracked crop whose person lost at least MIN_FADED_JOINTS of these joints (knees, ankles)
# that were confident in the previous frame asks for a full-frame pass on the next frame: the
# crop alone often does not find them again (on the shared chair-exercise clip a seated woman's
# knees score 0.8 on every full-frame pass and 0.1 on the crops in between), the full-frame
# pass does. Legs only: with elbows and wrists too (they flicker more), the full-frame pass
# ran on 58 of 250 frames of the shared reverse-lunge clip instead of 35 for the same legs kept;
# one lost joint (instead of two) ran it on 84.
FADING_JOINTS = tuple(KEYPOINT_INDEX[f"{side}_{joint}"] for joint in ("knee", "ankle") for side in ("left", "right"))
MIN_FADED_JOINTS = 2


def faded_limbs(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(P,) bool: poses `after (P, 17, 3)` that lost at least MIN_FADED_JOINTS of the
    FADING_JOINTS confident in the same people's `before (P, 17, 3)`."""
    joints = list(FADING_JOINTS)
    had = before[:, joints, 2] >= MIN_KEYPOINT_SCORE
    lost = had & (after[:, joints, 2] < MIN_KEYPOINT_SCORE)
    return lost.sum(axis=1) >= MIN_FADED_JOINTS


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
    """Refines poses found in a frame by running the network on a crop around each of them.

    `refine(frame, keypoints, scores)` returns the same poses (same order and pose scores) with
    the keypoints of each crop's best-matching pose. A pose whose crop finds nothing that
    matches it keeps its first-pass keypoints.
    """

    def __init__(
        self, engine: PoseEngine, settings: CropSettings = CropSettings(), decode=None, mirrored_input: bool = False
    ):
        self.engine = engine
        self.settings = settings
        self.mirrored_input = mirrored_input  # swap left/right labels, as PoseEstimator does
        self.input_size = crop_input_size(settings, engine.info.output_stride)
        # Inside a crop the person fills the input: other people only reach in from its edges.
        self.decode = decode or DecodeSettings(max_poses=5, min_pose_score=0.0)

    def crops_for(
        self, frame_shape: tuple[int, ...], keypoints: np.ndarray, boxes: np.ndarray | None = None
    ) -> list[CropTransform]:
        """The crop around each pose `keypoints (P, 17, 3)` of a frame of this shape: around its
        body box from `boxes (P, 4)` when given (tracked crops), else its confident keypoints."""
        frame_size = (frame_shape[1], frame_shape[0])
        if boxes is None:
            boxes, max_zoom = keypoint_boxes(keypoints, MIN_KEYPOINT_SCORE), float("inf")
        else:
            max_zoom = self.settings.tracked_max_zoom
        return [crop_transform(box, frame_size, self.input_size, self.settings, max_zoom) for box in boxes]

    def run_crops(
        self, frame_bgr: np.ndarray, transforms: list[CropTransform]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, float]]:
        """Each crop's candidate poses (keypoints (K, 17, 3) in frame pixels, scores (K,)), and
        seconds per stage. All crops (and their mirror images) run as one batch."""
        start = time.perf_counter()
        batch = crop_batch(frame_bgr, transforms, self.settings.flip)
        prepared = time.perf_counter()
        heads = self.engine.run(batch)[: len(HEAD_OUTPUTS)]
        inferred = time.perf_counter()
        views = 2 if self.settings.flip else 1
        stride = self.engine.info.output_stride
        candidates = []
        for index, transform in enumerate(transforms):
            keypoints, scores = decode_fields([head[index * views] for head in heads], stride, self.decode)
            if self.settings.flip and len(keypoints):
                flipped, _ = decode_fields([head[index * views + 1] for head in heads], stride, self.decode)
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
        self, frame_bgr: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
        """Run a crop around each of the first `max_crops` poses `keypoints (P, 17, 3)` (around
        their `boxes (P, 4)` when given, see crops_for); return
        for each of them the crop pose that matches it best (keypoints (P', 17, 3), its own score
        (P',), found (P',) bool: False where nothing in the crop matched, keypoints then unchanged)
        and the seconds per stage."""
        poses = keypoints[: self.settings.max_crops]
        if not len(poses):
            return poses.copy(), np.zeros(0, np.float32), np.zeros(0, bool), {}
        transforms = self.crops_for(frame_bgr.shape, poses, None if boxes is None else boxes[: len(poses)])
        candidates, timings = self.run_crops(frame_bgr, transforms)
        refined, scores, found = poses.copy(), np.zeros(len(poses), np.float32), np.zeros(len(poses), bool)
        for index, (crop_keypoints, crop_scores) in enumerate(candidates):
            best = best_match(poses[index], crop_keypoints)
            if best is not None:
                refined[index], scores[index], found[index] = crop_keypoints[best], crop_scores[best], True
        return refined, scores, found, timings

    def refine(
        self, frame_bgr: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, crop_scores: bool = False
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Two-pass mode: (keypoints (P, 17, 3) with each refined pose's keypoints replaced by its
        crop's best match, scores (P,), seconds per stage). Scores stay the first pass's unless
        `crop_scores` (videos, so that frames which ran only crops report scores on the same
        scale): for still images the first pass's rank better (coco-dev AP 0.39 vs 0.32)."""
        crop_keypoints, found_scores, found, timings = self.crop_poses(frame_bgr, keypoints)
        refined, rescored = keypoints.copy(), scores.copy()
        refined[: len(crop_keypoints)] = merge_refined(keypoints[: len(crop_keypoints)], crop_keypoints)
        if crop_scores:
            rescored[: len(found)][found] = found_scores[found]
        return refined, rescored, timings

    def follow(self, frame_bgr: np.ndarray, predicted: np.ndarray, boxes: np.ndarray | None = None) -> Followed:
        """Tracked mode: the poses found in crops around where `predicted (T, 17, 3)` says people
        are now (crops around their body `boxes (T, 4)` when given), best score first, and
        whether a full-frame pass should look again (see Followed)."""
        keypoints, scores, found, timings = self.crop_poses(frame_bgr, predicted, boxes)
        faded = bool(faded_limbs(predicted[: len(found)][found], keypoints[found]).any())
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
    faded: bool  # a crop's person lost limb-end joints it had in the previous frame (faded_limbs)
    timings: dict[str, float]  # seconds per crop stage
