"""Joint and segment angles of one frame's poses, in the image plane (plain numpy).

Conventions (docs/angles.md has a drawing of each):

* Everything is measured in the **image plane**, in **degrees**, from keypoints in frame pixels
  (x right, y **down**, as every pose-app coordinate). Nothing is corrected for the camera's view:
  a knee bent towards the camera looks straighter than it is.
* **Joint angles** (`left_elbow`, `right_knee`, ...) are the inner angle at the vertex between the
  two segments that meet there, 0..180: 180 = straight (arm, leg, hip of a person standing
  upright), 90 = a right angle. They carry no sign (flexion and hyperextension look alike).
  elbow: shoulder-elbow-wrist, knee: hip-knee-ankle, hip: shoulder-hip-knee,
  shoulder: hip-shoulder-elbow (0 = arm along the trunk, 180 = arm straight above the head),
  body_line: shoulder-hip-ankle (180 = a straight plank; a sagging or piking body is less).
* **Segment angles** (`left_forearm`, `trunk`, ...) are the direction of a segment against the
  horizontal: the vector from its proximal to its distal point (trunk: hip midpoint -> shoulder
  midpoint; shoulder and hip lines: right -> left keypoint) measured from the +x image axis
  (pointing right on screen), **counter-clockwise positive as seen on screen**, in (-180, 180].
  Because image y points down, the angle is atan2(-dy, dx): 90 = pointing up on screen (an
  upright trunk), -90 = pointing down (a hanging upper arm), -45 = down and to the right,
  180 = pointing left. Left and right limbs are measured the same way (no mirroring of the
  convention between the sides).
* An angle is **missing** (NaN) unless every keypoint it uses scores at least
  MIN_KEYPOINT_SCORE (0.3, the app's keypoint threshold): no angle is made from a keypoint the
  network did not see. It is also NaN when a segment has zero length. Its **confidence** is the
  lowest score of its keypoints, reported whether or not the angle is missing.
* **Left and right are anatomical**: the keypoints given are the person's own (with
  `--mirrored-input` the pipeline has already swapped back the labels the network gives a
  mirror image by appearance), so there is no mirror special case here. A mirrored (selfie)
  recording of a pose, its labels swapped back, has the same joint angles and each segment angle
  a turned into 180 - a (x -> w - 1 - x reverses every horizontal direction).

The angles CSV is written by io/angle_csv.py and read back by io/csv_tables.py; angles over
time and range of motion are in analysis/angles.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS
from pose_app.errors import PoseAppError


@dataclass(frozen=True)
class AngleSpec:
    """One angle. kind "joint": the inner angle at points[1] between points[0] and points[2];
    kind "segment": the direction of points[0] -> points[1]. Each point is the mean of the named
    keypoints (one keypoint, or two for a midpoint)."""

    name: str
    kind: str
    points: tuple[tuple[str, ...], ...]
    description: str

    @property
    def keypoints(self) -> tuple[str, ...]:
        """The keypoints the angle uses, each once."""
        return tuple(dict.fromkeys(name for point in self.points for name in point))

    @property
    def group(self) -> str:
        """The name without its side: left_knee and right_knee are both "knee"."""
        return self.name.removeprefix("left_").removeprefix("right_")


def _joints() -> list[AngleSpec]:
    joints = (
        ("elbow", ("shoulder", "elbow", "wrist"), "shoulder-elbow-wrist; 180 = arm straight"),
        ("shoulder", ("hip", "shoulder", "elbow"), "hip-shoulder-elbow; 0 = arm along the trunk, 180 = arm straight up"),
        ("hip", ("shoulder", "hip", "knee"), "shoulder-hip-knee; 180 = trunk and thigh in line"),
        ("knee", ("hip", "knee", "ankle"), "hip-knee-ankle; 180 = leg straight"),
        # The line of the body in a plank, a bridge or a stance: what a physiotherapist checks
        # for a sagging or piking hold, which neither the hip nor the knee angle shows alone.
        ("body_line", ("shoulder", "hip", "ankle"), "shoulder-hip-ankle; 180 = shoulder, hip and ankle in line"),
    )
    return [
        AngleSpec(f"{side}_{joint}", "joint", tuple((f"{side}_{part}",) for part in parts), description)
        for joint, parts, description in joints
        for side in ("left", "right")
    ]


def _segments() -> list[AngleSpec]:
    both = ("left", "right")
    specs = [
        AngleSpec("trunk", "segment", (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
                  "hip midpoint -> shoulder midpoint; 90 = upright"),
        AngleSpec("shoulder_line", "segment", (("right_shoulder",), ("left_shoulder",)),
                  "right -> left shoulder; 0 = level, facing the camera; + = left shoulder higher on screen"),
        AngleSpec("hip_line", "segment", (("right_hip",), ("left_hip",)),
                  "right -> left hip; 0 = level, facing the camera; + = left hip higher on screen"),
    ]
    limbs = (
        ("upper_arm", "shoulder", "elbow", "shoulder -> elbow; -90 = hanging"),
        ("forearm", "elbow", "wrist", "elbow -> wrist; -90 = hanging"),
        ("thigh", "hip", "knee", "hip -> knee; -90 = vertical"),
        ("shank", "knee", "ankle", "knee -> ankle; -90 = vertical"),
    )
    specs += [
        AngleSpec(f"{side}_{limb}", "segment", ((f"{side}_{start}",), (f"{side}_{end}",)), description)
        for limb, start, end, description in limbs
        for side in both
    ]
    return specs


ANGLES: dict[str, AngleSpec] = {spec.name: spec for spec in _joints() + _segments()}
ANGLE_NAMES: tuple[str, ...] = tuple(ANGLES)
JOINT_ANGLES: tuple[str, ...] = tuple(name for name, spec in ANGLES.items() if spec.kind == "joint")
SEGMENT_ANGLES: tuple[str, ...] = tuple(name for name, spec in ANGLES.items() if spec.kind == "segment")
_MIN_LENGTH = 1e-6  # pixels: a shorter segment has no direction

# Per angle, in ANGLE_NAMES order: three points as pairs of keypoint indices (a single keypoint
# is the pair (k, k)); a segment's direction is point 1 -> point 2 (point 0 repeats point 1).
# And the keypoints whose scores count, padded to 4 by repeating one.
_POINTS = np.zeros((len(ANGLES), 3, 2), np.intp)
_USED = np.zeros((len(ANGLES), 4), np.intp)
for _i, _spec in enumerate(ANGLES.values()):
    _points = _spec.points if _spec.kind == "joint" else (_spec.points[0], *_spec.points)
    for _j, _point in enumerate(_points):
        _POINTS[_i, _j] = [KEYPOINT_INDEX[_point[0]], KEYPOINT_INDEX[_point[-1]]]
    _used = [KEYPOINT_INDEX[name] for name in _spec.keypoints]
    _USED[_i] = (_used * 4)[:4] if len(_used) < 4 else _used
_IS_JOINT = np.array([spec.kind == "joint" for spec in ANGLES.values()])
_ANGLE_INDEX = {name: i for i, name in enumerate(ANGLES)}


def angle_anchors(keypoints: np.ndarray, names: Sequence[str] = ANGLE_NAMES) -> np.ndarray:
    """Where each angle is drawn, (..., len(names), 2) x, y: a joint angle at its vertex, a
    segment angle at the segment's middle."""
    index = np.array([_ANGLE_INDEX[name] for name in names], np.intp)
    xy = np.asarray(keypoints, np.float64)[..., :2]
    points = (xy[..., _POINTS[index][..., 0], :] + xy[..., _POINTS[index][..., 1], :]) / 2  # (..., A, 3, 2)
    return np.where(_IS_JOINT[index][:, None], points[..., 1, :], (points[..., 1, :] + points[..., 2, :]) / 2)


def parse_angle_names(text: str | None, default: Sequence[str] = ANGLE_NAMES) -> tuple[str, ...]:
    """'left_knee,trunk' -> ('left_knee', 'trunk'); None or '' -> default; a name without its
    side stands for both ('knee' -> left_knee, right_knee), 'all', 'joints' and 'segments' for
    those sets. PoseAppError naming the valid names for an unknown one."""
    if not text or not text.strip():
        return tuple(default)
    names: list[str] = []
    groups: dict[str, tuple[str, ...]] = {"all": ANGLE_NAMES, "joints": JOINT_ANGLES, "segments": SEGMENT_ANGLES}
    for spec in ANGLES.values():
        if spec.group != spec.name:
            groups[spec.group] = groups.get(spec.group, ()) + (spec.name,)
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        if part in groups:
            names.extend(groups[part])
        elif part in ANGLES:
            names.append(part)
        else:
            raise PoseAppError(
                f"no angle named {part!r}; angles: {', '.join(ANGLE_NAMES)} (or without left_/right_ for both; "
                "all, joints, segments)"
            )
    return tuple(dict.fromkeys(names))


def compute_angles(
    keypoints: np.ndarray, names: Sequence[str] = ANGLE_NAMES, min_score: float = MIN_KEYPOINT_SCORE
) -> tuple[np.ndarray, np.ndarray]:
    """Angles of poses: keypoints (..., 17, 3) x, y in pixels and score (e.g. (P, 17, 3)) ->
    (degrees, confidence), both (..., len(names)) float64. degrees is NaN where a keypoint of the
    angle scores below min_score (or its score is NaN) or a segment has zero length; confidence is
    the lowest score of the angle's keypoints. Conventions: the module docstring."""
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim < 2 or keypoints.shape[-2:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"expected keypoints of shape (..., {NUM_KEYPOINTS}, 3), got {keypoints.shape}")
    try:
        index = np.array([_ANGLE_INDEX[name] for name in names], np.intp)
    except KeyError as error:
        raise ValueError(f"no angle named {error.args[0]!r}") from None
    xy, scores = keypoints[..., :2], keypoints[..., 2]
    used_scores = scores[..., _USED[index]]  # (..., A, 4)
    confidence = used_scores.min(axis=-1)  # NaN when a score is NaN
    confident = np.all(used_scores >= min_score, axis=-1)  # NaN compares False

    pairs = _POINTS[index]  # (A, 3, 2)
    points = (xy[..., pairs[..., 0], :] + xy[..., pairs[..., 1], :]) / 2  # (..., A, 3, 2)
    first = points[..., 0, :] - points[..., 1, :]
    second = points[..., 2, :] - points[..., 1, :]
    # Joint: the unsigned angle between the two segments from the vertex, via atan2 for accuracy
    # near 0 and 180. Segment: the direction of `second`, y flipped so that counter-clockwise on
    # screen is positive.
    cross = first[..., 0] * second[..., 1] - first[..., 1] * second[..., 0]
    dot = (first * second).sum(axis=-1)
    with np.errstate(invalid="ignore"):
        joint = np.degrees(np.arctan2(np.abs(cross), dot))
        segment = np.degrees(np.arctan2(-second[..., 1], second[..., 0]))
    segment = np.where(segment <= -180.0, segment + 360.0, segment)  # (-180, 180]
    is_joint = _IS_JOINT[index]
    length_first = np.hypot(first[..., 0], first[..., 1])
    length_second = np.hypot(second[..., 0], second[..., 1])
    degenerate = (length_second < _MIN_LENGTH) | (is_joint & (length_first < _MIN_LENGTH))
    degrees = np.where(is_joint, joint, segment)
    valid = confident & ~degenerate & np.isfinite(degrees)
    return np.where(valid, degrees + 0.0, np.nan), confidence  # + 0.0: no -0.0






