"""Which poses are one person: a crop's pose and the pose its crop was cut around
(`best_match`), two decodings of one person (`duplicate_mask`, `decodings_of`), and a person who
lost joints since a full-frame pass last found them (`lost_joints`).

The crop refiner (refine.py) applies these rules to its crops, and the pipeline (pipeline.py)
applies the same ones when it merges crop poses with a full-frame pass: one definition, so the
two never disagree about who is who.
"""

from __future__ import annotations

import numpy as np

from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.similarity import object_keypoint_similarity, pose_similarity
from pose_app.core.skeleton import KEYPOINT_INDEX

# A crop pose is the same person as the pose its crop was cut around when their similarity (the
# larger of OKS and keypoint-box IoU, as for tracking) reaches this. Low on purpose: the crop is
# centred on that person, and a coarse first-pass pose may be far from the refined joints
# (coco-dev AP with posenet-075 at 353: 0.386 at 0.1, 0.377 at 0.3, 0.32 at 0.5, where more
# people kept coarse poses).
MIN_MATCH_SIMILARITY = 0.1

# Two poses reaching this OKS are the same person (two decodings in a crop, or tracks that merged).
DUPLICATE_OKS = 0.5


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


# A pose that lacks this many of the knees and ankles its track has, its own joints all inside the
# track's body box, is a fragment of that body (a plank seen upright by the full-frame pass: the
# upper body alone). Legs only: arms that flicker in and out of a portrait are no fragment, and
# cutting its crop around the track's box lost the shoulders of a tilting head and shoulders.
FRAGMENT_MISSING = 2
LEG_JOINTS = [KEYPOINT_INDEX[f"{side}_{part}"] for side in ("left", "right") for part in ("knee", "ankle")]


def is_fragment_of(pose: np.ndarray, track_pose: np.ndarray, track_box: np.ndarray) -> bool:
    """Whether `pose (17, 3)` is a part of the body a track saw: it lacks FRAGMENT_MISSING of the
    knees and ankles confident in `track_pose`, and its confident joints lie in `track_box` (x0,
    y0, x1, y1; 10 % of its longer side of margin)."""
    confident = pose[:, 2] >= MIN_KEYPOINT_SCORE
    legs = ~confident[LEG_JOINTS] & (track_pose[LEG_JOINTS, 2] >= MIN_KEYPOINT_SCORE)
    missing = int(legs.sum())
    seen, (x0, y0, x1, y1) = pose[confident, :2], track_box
    margin = 0.1 * max(x1 - x0, y1 - y0)
    inside = np.all((seen >= (x0 - margin, y0 - margin)) & (seen <= (x1 + margin, y1 + margin)))
    return missing >= FRAGMENT_MISSING and len(seen) > 0 and bool(inside)
