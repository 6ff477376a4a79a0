"""Persistent person ids across frames.

Each frame's poses are matched to the tracks of the previous frames by a similarity, the larger
of COCO's Object Keypoint Similarity (OKS) and the IoU of the keypoint boxes, against both the
track's last pose and its constant-velocity prediction; the matching is the optimal one-to-one
assignment (Hungarian algorithm, scipy's `linear_sum_assignment`) among the pairs at least
`min_similarity` similar. A track
survives `max_missed_frames` consecutive frames without a match; new people get new ids, and an
id is never handed out twice.

Poses are numpy arrays in frame pixels: `keypoints` float32 `(P, 17, 3)` = x, y, score.
"""

from dataclasses import dataclass, field

import numpy as np

from pose_app.decode import MIN_KEYPOINT_SCORE
from pose_app.skeleton import NUM_KEYPOINTS, OKS_SIGMAS

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


def gated_optimal_assignment(
    similarity: np.ndarray, min_similarity: float
) -> list[tuple[int, int]]:
    """(row, column) pairs of the one-to-one assignment with the largest total similarity among
    pairs whose similarity is >= `min_similarity`; no other pair is ever assigned."""
    # Imported here: scipy.optimize takes ~0.6 s to import, too long for every `pose-app` start.
    from scipy.optimize import linear_sum_assignment

    # Gating before the assignment: a below-threshold pair must not add to a total and so pull a
    # row away from its real partner. Zeroing it makes it worth exactly as much as leaving both
    # unassigned (similarities are >= 0); if the solver still uses it, it is dropped below.
    allowed = similarity >= min_similarity
    rows, cols = linear_sum_assignment(np.where(allowed, similarity, 0.0), maximize=True)
    keep = allowed[rows, cols]
    return list(zip(rows[keep].tolist(), cols[keep].tolist()))


def check_poses(keypoints: np.ndarray, per_pose: np.ndarray, name: str = "scores") -> None:
    """Raise ValueError unless `keypoints` is `(P, 17, 3)` and `per_pose` (named `name`) `(P,)`."""
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(
            f"keypoints must have shape (P, {NUM_KEYPOINTS}, 3), got {keypoints.shape}"
        )
    if per_pose.shape != (keypoints.shape[0],):
        raise ValueError(f"{name} must have shape ({keypoints.shape[0]},), got {per_pose.shape}")


def mean_keypoint_motion(
    before: np.ndarray, after: np.ndarray, min_keypoint_score: float
) -> np.ndarray | None:
    """Mean x, y displacement `(2,)` between two poses `(17, 3)` over keypoints confident in both;
    None when they share no confident keypoint."""
    both = (before[:, 2] >= min_keypoint_score) & (after[:, 2] >= min_keypoint_score)
    if not both.any():
        return None
    return (after[both, :2].astype(np.float64) - before[both, :2]).mean(axis=0)


@dataclass
class _Track:
    """One person: its id, its last matched pose `(17, 3)`, its velocity (px/frame, x and y),
    and the frames since it was last matched."""

    track_id: int
    keypoints: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    missed_frames: int = 0

    def predicted_keypoints(self) -> np.ndarray:
        """The last pose moved at constant velocity to the current frame."""
        predicted = self.keypoints.copy()
        predicted[:, :2] += self.velocity * (self.missed_frames + 1)
        return predicted

    def match(self, keypoints: np.ndarray, min_keypoint_score: float) -> None:
        """Take `keypoints (17, 3)` as this frame's pose, updating the velocity from it."""
        motion = mean_keypoint_motion(self.keypoints, keypoints, min_keypoint_score)
        if motion is not None:
            self.velocity = motion / (self.missed_frames + 1)
        self.keypoints = keypoints.copy()
        self.missed_frames = 0


class PoseTracker:
    """Assigns persistent ids: match by OKS keypoint similarity and box IoU, optimal assignment
    (scipy.optimize.linear_sum_assignment), ids survive `max_missed_frames` frames of absence,
    new people get new ids (never reused).

    `min_similarity`: a detection and a track whose similarity is below it are never matched.
    `min_keypoint_score`: keypoints below it are ignored for OKS and the keypoint boxes.
    """

    def __init__(
        self,
        max_missed_frames: int = 15,
        min_similarity: float = 0.2,
        min_keypoint_score: float = MIN_KEYPOINT_SCORE,
    ):
        if max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {max_missed_frames}")
        self.max_missed_frames = max_missed_frames
        self.min_similarity = min_similarity
        self.min_keypoint_score = min_keypoint_score
        self._tracks: list[_Track] = []
        self._next_id = 0

    def update(self, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Match this frame's poses to the tracks; return their ids, int64 `(P,)`, input order."""
        keypoints, scores = np.asarray(keypoints, dtype=np.float32), np.asarray(scores)
        check_poses(keypoints, scores)
        ids = np.full(len(keypoints), -1, dtype=np.int64)
        matched_tracks = np.zeros(len(self._tracks), dtype=bool)
        for track_index, detection_index in self._match(keypoints):
            track = self._tracks[track_index]
            track.match(keypoints[detection_index], self.min_keypoint_score)
            ids[detection_index] = track.track_id
            matched_tracks[track_index] = True
        for track, matched in zip(self._tracks, matched_tracks):
            if not matched:
                track.missed_frames += 1
        self._tracks = [t for t in self._tracks if t.missed_frames <= self.max_missed_frames]
        for detection_index in np.flatnonzero(ids < 0):
            ids[detection_index] = self._start_track(keypoints[detection_index])
        return ids

    def reset(self) -> None:
        """Forget every track and restart ids at 0, as a new tracker (e.g. for a new video)."""
        self._tracks = []
        self._next_id = 0

    def predicted_poses(self) -> np.ndarray:
        """`(T, 17, 3)`: where each track matched in the last frame should be in the next one (its
        pose moved at constant velocity), oldest track first."""
        followed = [t.predicted_keypoints() for t in self._tracks if t.missed_frames == 0]
        return np.stack(followed) if followed else np.zeros((0, NUM_KEYPOINTS, 3), np.float32)

    @property
    def active_ids(self) -> list[int]:
        """Ids of the tracks still alive (matched or missing for at most `max_missed_frames`)."""
        return [t.track_id for t in self._tracks]

    def _match(self, keypoints: np.ndarray) -> list[tuple[int, int]]:
        """(track index, detection index) pairs of the optimal assignment among pairs at least
        `min_similarity` similar."""
        if not self._tracks or len(keypoints) == 0:
            return []
        # A track matches a detection close to where it was last seen (someone who stopped) or
        # to where it would be at constant velocity (someone walking on, or two people
        # crossing at low frame rate), whichever is more similar.
        # Last and predicted poses go through one similarity call, so the detections' keypoint
        # boxes are computed once per frame.
        last = np.stack([t.keypoints for t in self._tracks])
        predicted = np.stack([t.predicted_keypoints() for t in self._tracks])
        similarity = pose_similarity(
            np.concatenate([last, predicted]), keypoints, self.min_keypoint_score
        ).reshape(2, len(self._tracks), len(keypoints)).max(axis=0)
        return gated_optimal_assignment(similarity, self.min_similarity)

    def _start_track(self, pose: np.ndarray) -> int:
        track = _Track(self._next_id, pose.copy())
        self._next_id += 1
        self._tracks.append(track)
        return track.track_id
