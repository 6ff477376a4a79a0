"""Presets compared on a user's own footage, without ground truth (`pose-app compare`).

Each preset's pipeline runs over a clip as `process` runs it (`run_preset`, run/compare_run.py);
the last preset is the reference. Per preset:

- ``person_frames``: poses found, summed over frames;
- ``leg_chain_frames``: the share of the reference's frames with someone (frames where the last
  preset found at least one person) in which this preset found at least one person with a full
  leg chain: left hip, knee and ankle, or right hip, knee and ankle, all scored >= 0.3. The
  reference's frames are the denominator for every preset, so a preset that finds nobody in a
  frame counts as missing the legs there;
- ``leg_chain_kept``: of the reference's poses with a full leg chain, the share whose matched pose
  in this preset has a full leg chain too (per person: in a clip with two people, the one
  squatting counts even when the other one's legs are always seen);
- ``mean_confident_keypoints``: keypoints scored >= 0.3 per pose, averaged over all poses;
- ``matched_share``: the share of the reference's person-frames matched one-to-one (per frame,
  optimal assignment) by a pose of this preset with OKS >= 0.5, and ``mean_oks`` of those pairs;
- ``joints_lost``: the share of the reference's confident keypoints (>= 0.3, all its people in all
  frames) that this preset does not have confident on the matched person (a person not matched
  loses all of theirs). Against the same preset with the full-frame pass on every frame
  (`balanced:full`) it is the tracking loss: what tracked crops lose of what the full pass sees.

OKS is `core.similarity.object_keypoint_similarity`: COCO's formula over the keypoints scored
>= 0.3 in *both* poses, the object area being the mean of the two poses' keypoint-box areas. It
is symmetric (neither pose is ground truth), and a joint one pose lost does not lower it: lost
limbs show in the leg-chain and keypoint counts, not in the OKS.

The figures are pure functions of per-frame arrays (`Frames`: one `(keypoints (P, 17, 3),
scores (P,))` per frame), so they are tested on hand-made poses; `run_preset`
(run/compare_run.py) makes them.
"""

from __future__ import annotations

import numpy as np

from pose_app.core.coverage import full_leg_chain
from pose_app.core.matching import gated_optimal_assignment
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.similarity import object_keypoint_similarity

Frames = list[tuple[np.ndarray, np.ndarray]]

MATCH_OKS = 0.5  # a preset's pose matches a reference pose from this OKS


def match_poses(poses: np.ndarray, reference: np.ndarray) -> list[tuple[int, int, float]]:
    """(pose index, reference index, OKS) of the one-to-one assignment of `poses (P, 17, 3)` to
    `reference (R, 17, 3)` with the largest total OKS among pairs with OKS >= MATCH_OKS."""
    if not len(poses) or not len(reference):
        return []
    oks = object_keypoint_similarity(np.asarray(poses, np.float32), np.asarray(reference, np.float32), MIN_KEYPOINT_SCORE)
    return [(i, j, float(oks[i, j])) for i, j in gated_optimal_assignment(oks, MATCH_OKS)]


def _check_same_length(frames: Frames, reference: Frames) -> None:
    if len(frames) != len(reference):
        raise ValueError(f"presets saw different frame counts: {len(frames)} vs {len(reference)}")


def summarize(frames: Frames, reference: Frames) -> dict[str, float | int]:
    """One preset's figures (see the module docstring) against `reference` (the same frames,
    the last preset's poses; pass the preset's own frames to compare it with itself)."""
    _check_same_length(frames, reference)
    person_frames = sum(len(scores) for _, scores in frames)
    confident = [int((np.asarray(k)[:, :, 2] >= MIN_KEYPOINT_SCORE).sum()) for k, _ in frames]
    reference_frames = [index for index, (_, scores) in enumerate(reference) if len(scores)]
    with_legs = [index for index in reference_frames if len(frames[index][1]) and full_leg_chain(frames[index][0]).any()]
    matched_oks, legs_in_reference, legs_kept, reference_joints, joints_kept = [], 0, 0, 0, 0
    for (keypoints, _), (reference_keypoints, _) in zip(frames, reference):
        pairs = match_poses(keypoints, reference_keypoints)
        matched_oks += [oks for _, _, oks in pairs]
        if not len(reference_keypoints):
            continue
        reference_confident = np.asarray(reference_keypoints)[:, :, 2] >= MIN_KEYPOINT_SCORE
        reference_joints += int(reference_confident.sum())
        joints_kept += sum(
            int((reference_confident[j] & (np.asarray(keypoints)[i, :, 2] >= MIN_KEYPOINT_SCORE)).sum()) for i, j, _ in pairs
        )
        reference_legs = full_leg_chain(reference_keypoints)
        legs_in_reference += int(reference_legs.sum())
        pose_legs = full_leg_chain(keypoints) if len(keypoints) else np.zeros(0, bool)
        legs_kept += sum(1 for i, j, _ in pairs if reference_legs[j] and pose_legs[i])
    reference_person_frames = sum(len(scores) for _, scores in reference)
    return {
        "frames": len(frames),
        "person_frames": person_frames,
        "leg_chain_frames": _share(len(with_legs), len(reference_frames)),
        "leg_chain_kept": _share(legs_kept, legs_in_reference),
        "mean_confident_keypoints": _share(sum(confident), person_frames),
        "matched_share": _share(len(matched_oks), reference_person_frames),
        "mean_oks": float(np.mean(matched_oks)) if matched_oks else float("nan"),
        "joints_lost": 1.0 - _share(joints_kept, reference_joints) if reference_joints else float("nan"),
    }


def _share(count: int, total: int) -> float:
    return count / total if total else float("nan")


def compare(results: dict[str, Frames]) -> dict[str, dict[str, float | int]]:
    """Every preset's figures against the last one (the reference), in the given order."""
    reference = list(results.values())[-1]
    return {name: summarize(frames, reference) for name, frames in results.items()}
