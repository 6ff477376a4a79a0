"""PoseNet's multi-person decoding as a walk of small steps, one per key press in the GUI.

`decoding_walk` runs `decode.decode_multiple_poses` with its trace hook and turns the events into
`WalkStep`s with a one-line caption each: the candidate queue, each root, each edge followed
(displacement, offset refinements, score), each accepted pose, the candidates its NMS radius
suppressed, the pose scores, poses dropped by the minimum pose score, and the final poses, which
are the decoder's own output. Plain numpy in, frozen dataclasses out (no Qt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.core.skeleton import KEYPOINT_NAMES, NUM_KEYPOINTS, PART_TREE_EDGES
from pose_app.inference.decode import (
    OFFSET_REFINE_STEPS,
    DecodeSettings,
    decode_multiple_poses,
    decode_single_pose,
    keypoint_points_at_cells,
)

STEP_KINDS = ("queue", "root", "edge", "pose", "suppress", "limit", "scores", "drop", "keypoint", "result")
_TIMES = {1: "once", 2: "twice"}


def _empty(*shape: int) -> np.ndarray:
    return np.zeros((0, *shape), np.float32)


@dataclass(frozen=True)
class WalkStep:
    """One step of the decoding walk. Coordinates are x, y: input pixels, or frame pixels when
    decoding_walk was given a transform."""

    kind: str  # one of STEP_KINDS
    caption: str  # one line, e.g. "pose 1 root: left_shoulder at (120, 88), score 0.93"
    pose: int | None = None  # acceptance index of the pose the step is about (captions count from 1)
    keypoint: int | None = None  # the keypoint started or reached
    edge: int | None = None  # index into PART_TREE_EDGES
    forward: bool | None = None  # edge steps: parent -> child (displacement_fwd)
    points: np.ndarray = field(default_factory=lambda: _empty(2))  # (N, 2) points the step marks
    point_keypoints: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,) their kinds
    arrows: np.ndarray = field(default_factory=lambda: _empty(4))  # (N, 4) x0, y0, x1, y1
    # Poses after the step, in acceptance order, the current one partial (x, y NaN and score 0
    # where not reached yet); for "result" the final poses, best first.
    keypoints: np.ndarray = field(default_factory=lambda: _empty(NUM_KEYPOINTS, 3))
    scores: np.ndarray = field(default_factory=lambda: _empty())  # pose scores, where known


class _WalkGeometry:
    """Input-pixel (y, x) -> the walk's x, y (input or frame pixels), and lengths."""

    def __init__(self, transform: FrameTransform | None):
        self.transform = transform
        self.scale = 1.0 if transform is None else float(np.mean(transform.frame_per_input))

    def xy(self, points_yx) -> np.ndarray:
        xy = np.asarray(points_yx, np.float64).reshape(-1, 2)[:, ::-1]
        return (xy if self.transform is None else self.transform.to_frame(xy)).astype(np.float32)

    def arrows(self, starts_yx, ends_yx) -> np.ndarray:
        return np.concatenate([self.xy(starts_yx), self.xy(ends_yx)], axis=1)

    def at(self, point_yx) -> str:
        x, y = self.xy(point_yx)[0]
        return f"({x:.0f}, {y:.0f})"

    def length(self, pixels: float) -> str:
        return f"{pixels * self.scale:.0f} px"


def _distance(a, b) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def decoding_walk(
    heatmaps: np.ndarray,
    offsets: np.ndarray,
    displacement_fwd: np.ndarray,
    displacement_bwd: np.ndarray,
    output_stride: int,
    settings: DecodeSettings = DecodeSettings(),
    transform: FrameTransform | None = None,
) -> list[WalkStep]:
    """The decoding of one image's heads as steps; the last step ("result") holds the poses
    decode_multiple_poses (or decode_single_pose with settings.single_pose) returns: keypoints
    (P, 17, 3) x, y, score and scores (P,), mapped to frame pixels when `transform` is given."""
    space = _WalkGeometry(transform)
    if settings.single_pose:
        return _single_pose_walk(heatmaps, offsets, output_stride, space)
    trace: list[dict] = []
    keypoints, scores = decode_multiple_poses(
        heatmaps, offsets, displacement_fwd, displacement_bwd, output_stride,
        max_poses=settings.max_poses, part_score_threshold=settings.part_score_threshold,
        nms_radius=settings.nms_radius, min_pose_score=settings.min_pose_score, trace=trace,
    )
    steps = _multi_pose_steps(trace, settings, space)
    steps.append(_result_step(keypoints, scores, space))
    return steps


def _result_step(keypoints: np.ndarray, scores: np.ndarray, space: _WalkGeometry) -> WalkStep:
    final = keypoints.copy()
    final[:, :, :2] = space.xy(keypoints[:, :, 1::-1]).reshape(-1, NUM_KEYPOINTS, 2)
    listed = ", ".join(f"{score:.2f}" for score in scores)
    caption = f"{len(scores)} pose{'s' * (len(scores) != 1)}, best first"
    caption += f": scores {listed}" if listed else ""
    return WalkStep("result", caption, keypoints=final, scores=scores.copy())


def _multi_pose_steps(trace: list[dict], settings: DecodeSettings, space: _WalkGeometry) -> list[WalkStep]:
    steps: list[WalkStep] = []
    queue = trace[0]
    queue_yx, queue_ids = queue["points_yx"], queue["keypoint_ids"]
    count = len(queue_ids)
    best = "; no one to decode"
    if count:
        name, score = KEYPOINT_NAMES[queue_ids[0]], queue["scores"][0]
        best = f": best {name} at {space.at(queue_yx[0])}, score {score:.2f}"
    steps.append(WalkStep(
        "queue",
        f"{count} root candidates (heatmap peaks scoring >= {settings.part_score_threshold:g}){best}",
        points=space.xy(queue_yx), point_keypoints=queue_ids.copy(),
    ))
    poses: list[np.ndarray] = []  # (17, 3) x, y, score per pose, in the walk's space
    used = set()
    for event in trace[1:]:
        kind = event["event"]
        pose_index = event.get("pose")
        if kind == "root":
            current = np.zeros((NUM_KEYPOINTS, 3), np.float32)
            current[:, :2] = np.nan
            k = event["keypoint"]
            current[k] = (*space.xy(event["point_yx"])[0], event["score"])
            poses.append(current)
            used.add(event["candidate"])
            steps.append(WalkStep(
                "root", f"pose {pose_index + 1} root: {KEYPOINT_NAMES[k]} at {space.at(event['point_yx'])}, "
                f"score {event['score']:.2f}", pose_index, k, points=space.xy(event["point_yx"]),
                point_keypoints=np.array([k]), keypoints=np.stack(poses),
            ))
        elif kind == "edge":
            steps.append(_edge_step(event, len(poses) - 1, poses, space))
        elif kind == "pose":
            accepted_yx = event["points_yx"]
            pose = poses[pose_index]
            reached = int(np.sum(pose[:, 2] >= settings.part_score_threshold))
            steps.append(WalkStep(
                "pose", f"pose {pose_index + 1} accepted: {reached} of 17 keypoints score >= "
                f"{settings.part_score_threshold:g}, mean keypoint score {pose[:, 2].mean():.2f}",
                pose_index, points=pose[:, :2].copy(), point_keypoints=np.arange(NUM_KEYPOINTS),
                keypoints=np.stack(poses),
            ))
        elif kind == "suppress" and len(event["candidates"]):
            used.update(event["candidates"].tolist())
            steps.append(_suppress_step(event, queue, accepted_yx, poses, settings, space))
        elif kind == "scores":
            steps.extend(_score_steps(event, count - len(used), settings, poses))
    return steps


def _edge_step(event: dict, pose_index: int, poses: list[np.ndarray], space: _WalkGeometry) -> WalkStep:
    e, target = event["edge"], event["target"]
    parent, child = PART_TREE_EDGES[e]
    forward = target == child
    source = parent if forward else child
    chain = [event["source_yx"], event["landing_yx"], *event["refined_yx"]]
    moves = [_distance(a, b) for a, b in zip(chain[1:], chain[2:])]
    refined = _TIMES.get(OFFSET_REFINE_STEPS, f"{OFFSET_REFINE_STEPS} times")
    moved = ", ".join(space.length(m) for m in moves)
    poses[pose_index][target] = (*space.xy(event["point_yx"])[0], event["score"])
    return WalkStep(
        "edge",
        f"edge {KEYPOINT_NAMES[source]} → {KEYPOINT_NAMES[target]}{'' if forward else ' (backward)'}: "
        f"displaced {space.length(_distance(chain[0], chain[1]))}, refined {refined} (moved {moved}), "
        f"score {event['score']:.2f}",
        pose_index, target, e, forward, points=space.xy(chain[1:]),
        point_keypoints=np.full(len(chain) - 1, target), arrows=space.arrows(chain[:-1], chain[1:]),
        keypoints=np.stack(poses),
    )


def _suppress_step(event, queue, pose_yx, poses, settings: DecodeSettings, space: _WalkGeometry) -> WalkStep:
    """The candidates pose `event["pose"]` suppressed (the farthest named in the caption);
    `pose_yx (17, 2)` its input-pixel points."""
    pose_index, candidates = event["pose"], event["candidates"]
    ids, points_yx = queue["keypoint_ids"][candidates], queue["points_yx"][candidates]
    distances = np.hypot(*(points_yx - pose_yx[ids]).T)
    farthest = np.argsort(-distances, kind="stable")
    details = [
        f"{KEYPOINT_NAMES[ids[n]]} at {space.at(points_yx[n])}, {space.length(distances[n])} from its "
        f"{KEYPOINT_NAMES[ids[n]]}" for n in farthest[:3]
    ]
    more = f"; and {len(candidates) - 3} more, closer" if len(candidates) > 3 else ""
    count = len(candidates)
    return WalkStep(
        "suppress",
        f"pose {pose_index + 1} suppresses {count} candidate{'s' * (count != 1)} within "
        f"{space.length(settings.nms_radius)} of its keypoints of the same kind: {'; '.join(details)}{more}",
        pose_index, points=space.xy(points_yx), point_keypoints=ids.copy(),
        arrows=space.arrows(points_yx, pose_yx[ids]), keypoints=np.stack(poses),
    )


def _score_steps(event, left: int, settings: DecodeSettings, poses: list[np.ndarray]) -> list[WalkStep]:
    pose_scores, kept = event["pose_scores"], set(event["kept"].tolist())
    everything = np.stack(poses) if poses else _empty(NUM_KEYPOINTS, 3)
    steps = []
    if left > 0:
        steps.append(WalkStep(
            "limit",
            f"max poses ({settings.max_poses}) reached: {left} candidate{'s' * (left != 1)} left undecoded",
            keypoints=everything,
        ))
    if len(poses):
        listed = ", ".join(f"pose {p + 1} {s:.2f}" for p, s in enumerate(pose_scores))
        steps.append(WalkStep(
            "scores",
            f"pose scores (mean keypoint score, parts shared with an earlier pose count 0): {listed}",
            keypoints=everything, scores=pose_scores.copy(),
        ))
    for p, score in enumerate(pose_scores):
        if p not in kept:
            steps.append(WalkStep(
                "drop",
                f"pose {p + 1} dropped: score {score:.2f} below min pose score {event['min_pose_score']:g}",
                p, points=everything[p, :, :2].copy(), point_keypoints=np.arange(NUM_KEYPOINTS),
                keypoints=everything, scores=pose_scores.copy(),
            ))
    return steps


def _single_pose_walk(heatmaps, offsets, output_stride: int, space: _WalkGeometry) -> list[WalkStep]:
    """Single-person decoding: one step per keypoint (its best cell, refined by the offset)."""
    steps = []
    pose = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    pose[:, :2] = np.nan
    rows, cols = np.unravel_index(heatmaps.reshape(NUM_KEYPOINTS, -1).argmax(axis=1), heatmaps.shape[1:])
    ids = np.arange(NUM_KEYPOINTS)
    points_yx = keypoint_points_at_cells(offsets, ids, rows, cols, output_stride)
    for k in ids:
        cell_yx = (rows[k] * output_stride, cols[k] * output_stride)
        score = float(heatmaps[k, rows[k], cols[k]])
        pose[k] = (*space.xy(points_yx[k])[0], score)
        steps.append(WalkStep(
            "keypoint", f"{KEYPOINT_NAMES[k]}: best cell ({rows[k]}, {cols[k]}), score {score:.2f}, "
            f"offset {space.length(_distance(cell_yx, points_yx[k]))} to {space.at(points_yx[k])}",
            0, int(k), points=space.xy(points_yx[k]), point_keypoints=np.array([k]),
            arrows=space.arrows(cell_yx, points_yx[k]), keypoints=pose[None].copy(),
        ))
    keypoints, scores = decode_single_pose(heatmaps, offsets, output_stride)
    steps.append(_result_step(keypoints, scores, space))
    return steps
