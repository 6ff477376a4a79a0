"""How alike two poses are: COCO's Object Keypoint Similarity (OKS), keypoint boxes and their IoU,
and the larger of the two (`pose_similarity`, what the tracker and the crop matcher use)."""

from __future__ import annotations

import numpy as np

from pose_app.core.skeleton import OKS_SIGMAS

# Smallest object area (px^2) used as OKS scale: stops a pose with one confident keypoint
# (box area 0) from making every distance infinitely far.
MIN_OKS_AREA = 1.0


KEYPOINT_VARIANCES = (2.0 * np.asarray(OKS_SIGMAS, dtype=np.float64)) ** 2  # COCO's k_i^2


def keypoint_boxes(keypoints: np.ndarray, min_keypoint_score: float) -> np.ndarray:
    """Boxes `(P, 4)` = x0, y0, x1, y1 around each pose's keypoints scoring >= the threshold.

    A pose without any confident keypoint gets the box of all its keypoints, so weak poses can
    still be matched by IoU instead of getting a new id every frame.
    """
    confident = keypoints[:, :, 2] >= min_keypoint_score
    confident[~confident.any(axis=1)] = True
    xy = keypoints[:, :, :2].astype(np.float64)
    lo = np.where(confident[:, :, None], xy, np.inf).min(axis=1)
    hi = np.where(confident[:, :, None], xy, -np.inf).max(axis=1)
    return np.concatenate([lo, hi], axis=1)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas `(P,)` of boxes `(P, 4)` = x0, y0, x1, y1."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union `(A, B)` of every pair of boxes; 0 where the union is empty."""
    lo = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    hi = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = np.clip(hi - lo, 0.0, None).prod(axis=2)
    union = box_areas(boxes_a)[:, None] + box_areas(boxes_b)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def oks_given_areas(
    poses_a: np.ndarray,
    poses_b: np.ndarray,
    areas_a: np.ndarray,
    areas_b: np.ndarray,
    min_keypoint_score: float,
) -> np.ndarray:
    """COCO OKS `(A, B)` between every pair of poses, over keypoints confident in both, given the
    poses' keypoint-box areas `(A,)` and `(B,)`.

    OKS = mean_i exp(-d_i^2 / (2 s^2 k_i^2)) with k_i = 2 sigma_i and s^2 the object area,
    here the mean keypoint-box area of the two poses (symmetric: neither pose is "ground
    truth"). Pairs sharing no confident keypoint get 0.
    """
    area = np.maximum((areas_a[:, None] + areas_b[None, :]) / 2.0, MIN_OKS_AREA)
    squared_distances = (
        (poses_a[:, None, :, :2].astype(np.float64) - poses_b[None, :, :, :2]) ** 2
    ).sum(axis=3)
    per_keypoint = np.exp(-squared_distances / (2.0 * area[:, :, None] * KEYPOINT_VARIANCES))
    both_confident = (poses_a[:, None, :, 2] >= min_keypoint_score) & (
        poses_b[None, :, :, 2] >= min_keypoint_score
    )
    counts = both_confident.sum(axis=2)
    sums = np.where(both_confident, per_keypoint, 0.0).sum(axis=2)
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


def object_keypoint_similarity(
    poses_a: np.ndarray, poses_b: np.ndarray, min_keypoint_score: float
) -> np.ndarray:
    """COCO OKS `(A, B)` between every pair of poses (see oks_given_areas), the object areas
    being the poses' keypoint boxes."""
    areas_a = box_areas(keypoint_boxes(poses_a, min_keypoint_score))
    areas_b = box_areas(keypoint_boxes(poses_b, min_keypoint_score))
    return oks_given_areas(poses_a, poses_b, areas_a, areas_b, min_keypoint_score)


def pose_similarity(
    poses_a: np.ndarray, poses_b: np.ndarray, min_keypoint_score: float
) -> np.ndarray:
    """Similarity `(A, B)` in 0..1: the larger of OKS and keypoint-box IoU."""
    # The similarity of a track and a detection is max(OKS, keypoint-box IoU): either cue alone
    # is enough evidence. OKS is sharp (it tells apart two people whose boxes overlap while they
    # cross) but falls to ~0 as soon as joints move more than their COCO falloff, which happens at
    # 10 fps or when a person entering the frame shows only 3-4 confident keypoints that change
    # from frame to frame; box IoU is blunt but survives both. Measured (see
    # docs/tracking-and-smoothing.md): on people-one-by-one-768x432.mp4 max gave 13 ids for 6 people
    # where the mean 0.5 OKS + 0.5 IoU gave 17 (short fragments as people enter), and it kept the
    # ids of all 144 synthetic crossings (the mean: 140).
    boxes_a = keypoint_boxes(poses_a, min_keypoint_score)
    boxes_b = keypoint_boxes(poses_b, min_keypoint_score)
    oks = oks_given_areas(
        poses_a, poses_b, box_areas(boxes_a), box_areas(boxes_b), min_keypoint_score
    )
    return np.maximum(oks, box_iou(boxes_a, boxes_b))
