"""PoseNet decoding in numpy: one image's model output fields -> poses in input-pixel coordinates.

Inputs are channels-first, as the ONNX model gives them for one image (see docs/architecture.md):

- ``heatmaps (17, h, w)``: per-keypoint scores, sigmoid already applied (0..1);
- ``offsets (34, h, w)``: 17 y then 17 x, input pixels, from a cell's centre ``(i*stride, j*stride)``
  to the keypoint it sees;
- ``displacement_fwd / displacement_bwd (32, h, w)``: 16 y then 16 x, input pixels; channel ``e``
  belongs to ``PART_TREE_EDGES[e] = (parent, child)``, fwd points parent -> child, bwd child -> parent.

Image position of cell ``(i, j)`` for keypoint ``k``: ``(i*stride + offset_y, j*stride + offset_x)``.
Internally points are ``(y, x)`` like the fields; outputs are ``keypoints float32 (P, 17, 3)`` =
x, y, score and ``scores float32 (P,)`` sorted descending.

Multi-person decoding follows the PoseNet paper (Papandreou et al., 2018) and TF.js
``decodeMultiplePoses``: the candidate queue, root suppression and pose scores are vectorised;
only the 16-edge walk of each accepted pose is sequential, on Python scalars (numpy calls on
one point at a time would cost more than the arithmetic).

Tracing: ``decode_multiple_poses(..., trace=[])`` appends one small dict per decoding event to the
list (``"event"`` names it; points are input-pixel ``(y, x)``), for ``decode_walk.decoding_walk``:

- ``queue``: the root candidates best first: ``scores``, ``keypoint_ids``, ``cells (N, 2)``,
  ``points_yx (N, 2)``;
- ``root``: a candidate starts pose ``pose``: ``candidate`` (queue index), ``keypoint``,
  ``point_yx``, ``score``, ``cell``;
- ``edge``: part-tree edge ``edge`` followed to keypoint ``target``: ``source_yx``,
  ``source_cell``, ``displacement_yx``, ``landing_yx``, ``refined_yx`` (one point per refinement
  step), ``cells`` (the cell read at each step), ``point_yx``, ``cell``, ``score``;
- ``pose``: pose ``pose`` accepted: ``points_yx (17, 2)``, ``keypoint_scores (17,)``;
- ``suppress``: the candidates (queue indices, not yet suppressed, the root excluded) within the
  NMS radius of pose ``pose``'s keypoint of their kind: ``pose``, ``candidates``;
- ``scores``: ``pose_scores`` in acceptance order, ``kept`` (acceptance indices in output
  order), ``min_pose_score``.

With ``trace=None`` (the default) nothing is recorded and results and speed are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_app.core.skeleton import NUM_KEYPOINTS, NUM_PART_TREE_EDGES, PART_TREE_EDGES
from pose_app.errors import PoseAppError

# How often a displaced point is re-snapped to the nearest cell and corrected by that cell's
# offset (TF.js offsetRefineStep). One step already lands on the keypoint the target cell sees;
# the second fixes long displacements that first land on a neighbouring cell.
OFFSET_REFINE_STEPS = 2

# (edge, source keypoint, target keypoint, uses displacement_fwd) in decoding order: every edge
# child -> parent from the last to the first, then every edge parent -> child.
_WALK_BACKWARD_THEN_FORWARD = tuple(
    (edge, child, parent, False) for edge, (parent, child) in reversed(list(enumerate(PART_TREE_EDGES)))
) + tuple((edge, parent, child, True) for edge, (parent, child) in enumerate(PART_TREE_EDGES))


def check_field_shapes(heatmaps: np.ndarray, offsets: np.ndarray, *displacements: np.ndarray) -> None:
    """Raise PoseAppError unless the fields have the channel counts and map size of the contract."""
    h, w = heatmaps.shape[-2:]
    expected = [("heatmaps", heatmaps, NUM_KEYPOINTS), ("offsets", offsets, 2 * NUM_KEYPOINTS)]
    expected += [("displacements", d, 2 * NUM_PART_TREE_EDGES) for d in displacements]
    for name, field, channels in expected:
        if field.shape != (channels, h, w):
            raise PoseAppError(
                f"model output {name} has shape {field.shape}, expected ({channels}, {h}, {w}); "
                "is this a PoseNet model exported by pose-app?"
            )


def check_output_stride(output_stride: int) -> None:
    """Raise PoseAppError unless the output stride is a positive integer."""
    if int(output_stride) != output_stride or output_stride < 1:
        raise PoseAppError(f"output stride must be a positive integer, got {output_stride!r}")


def points_seen_from_cells(
    offset_y: np.ndarray, offset_x: np.ndarray, rows: np.ndarray, cols: np.ndarray, output_stride: int
) -> np.ndarray:
    """Input-pixel (y, x) = ``(i, j) * stride + offset`` for cell rows i and columns j (float32)
    and the offsets read there, all broadcasting together. Returns float32 ``(..., 2)``."""
    return np.stack([offset_y + rows * output_stride, offset_x + cols * output_stride], axis=-1)


def keypoint_points_of_cells(offsets: np.ndarray, output_stride: int) -> np.ndarray:
    """Input-pixel (y, x) where each cell (i, j) sees each keypoint k. Returns float32
    ``(17, h, w, 2)``."""
    h, w = offsets.shape[1:]
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]
    return points_seen_from_cells(offsets[:NUM_KEYPOINTS], offsets[NUM_KEYPOINTS:], rows, cols, output_stride)


def keypoint_points_at_cells(
    offsets: np.ndarray, keypoint_ids: np.ndarray, rows: np.ndarray, cols: np.ndarray, output_stride: int
) -> np.ndarray:
    """Input-pixel (y, x) where cell (rows[n], cols[n]) sees keypoint keypoint_ids[n]: the same
    points as keypoint_points_of_cells, reading the offsets of those cells only. Returns float32
    ``(N, 2)``."""
    return points_seen_from_cells(
        offsets[keypoint_ids, rows, cols], offsets[NUM_KEYPOINTS + keypoint_ids, rows, cols],
        rows.astype(np.float32), cols.astype(np.float32), output_stride,
    )


def window_maxima(heatmaps: np.ndarray, radius: int) -> np.ndarray:
    """Each cell's maximum over its own keypoint's (2r+1)x(2r+1) window, cut at the map border.

    A separable max over shifted views: on PoseNet-sized maps this is several times faster than
    scipy.ndimage.maximum_filter, whose per-line overhead dominates at a few dozen cells a line.
    """
    maxima = heatmaps
    for axis in (1, 2):
        source = np.moveaxis(maxima, axis, 0)
        widened = source.copy()
        for shift in range(1, radius + 1):
            np.maximum(widened[shift:], source[:-shift], out=widened[shift:])
            np.maximum(widened[:-shift], source[shift:], out=widened[:-shift])
        maxima = np.moveaxis(widened, 0, axis)
    return maxima


def build_part_score_queue(
    heatmaps: np.ndarray, score_threshold: float, local_maximum_radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Root candidates: cells whose score is >= threshold and the maximum of its keypoint's
    (2r+1)x(2r+1) window (ties count as maxima, as in TF.js).

    Returns ``scores (N,)`` in descending order, ``keypoint_ids (N,)`` and ``cells (N, 2)``.
    """
    is_local_maximum = heatmaps >= window_maxima(heatmaps, local_maximum_radius)
    keypoint_ids, rows, cols = np.nonzero((heatmaps >= score_threshold) & is_local_maximum)
    scores = heatmaps[keypoint_ids, rows, cols]
    order = np.argsort(-scores, kind="stable")
    return scores[order], keypoint_ids[order], np.stack([rows, cols], axis=-1)[order]


def nearest_cell_of_point(
    y: float, x: float, output_stride: int, map_shape: tuple[int, int]
) -> tuple[int, int]:
    """Heatmap cell (i, j) nearest to an input-pixel point, clamped into the map.

    Rounds half up like TF.js (Math.round). Clamping before the int conversion keeps points that
    offsets or displacements throw off the map (even inf or NaN) on a valid cell.
    """
    i = int(min(map_shape[0] - 1.0, max(0.0, y / output_stride + 0.5)))
    j = int(min(map_shape[1] - 1.0, max(0.0, x / output_stride + 0.5)))
    return i, j


def traverse_edge_to_target(
    source: tuple[float, float, float, tuple[int, int]],
    edge: int,
    target_id: int,
    heatmaps: np.ndarray,
    cell_points: np.ndarray,
    displacements: np.ndarray,
    output_stride: int,
    trace: list | None = None,
) -> tuple[float, float, float, tuple[int, int]]:
    """Follow edge ``edge``'s displacement from a decoded source keypoint to keypoint ``target_id``.

    Keypoints are ``(y, x, score, nearest cell)``. The displacement is read at the source's
    nearest cell; the landing point is then replaced OFFSET_REFINE_STEPS times by where its
    nearest cell sees the target (``cell_points``); the target's score is the heatmap at the
    final point's nearest cell. ``trace``: see the module docstring.
    """
    map_shape = heatmaps.shape[1:]
    source_y, source_x, _, (i, j) = source
    displacement_y = displacements.item(edge, i, j)
    displacement_x = displacements.item(NUM_PART_TREE_EDGES + edge, i, j)
    y, x = source_y + displacement_y, source_x + displacement_x
    landing_yx = (y, x)
    refined = [] if trace is not None else None
    for _ in range(OFFSET_REFINE_STEPS):
        i, j = nearest_cell_of_point(y, x, output_stride, map_shape)
        y, x = cell_points.item(target_id, i, j, 0), cell_points.item(target_id, i, j, 1)
        if refined is not None:
            refined.append(((y, x), (i, j)))
    cell = nearest_cell_of_point(y, x, output_stride, map_shape)
    score = heatmaps.item(target_id, *cell)
    if trace is not None:
        trace.append({
            "event": "edge", "edge": edge, "target": target_id, "source_yx": (source_y, source_x),
            "source_cell": source[3], "displacement_yx": (displacement_y, displacement_x),
            "landing_yx": landing_yx, "refined_yx": [point for point, _ in refined],
            "cells": [read for _, read in refined], "point_yx": (y, x), "cell": cell, "score": score,
        })
    return y, x, score, cell


def decode_pose_from_root(
    root_id: int,
    root_yx: tuple[float, float],
    root_score: float,
    heatmaps: np.ndarray,
    cell_points: np.ndarray,
    displacement_fwd: np.ndarray,
    displacement_bwd: np.ndarray,
    output_stride: int,
    trace: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One whole pose grown from a root keypoint along the part tree (TF.js decodePose).

    The tree is walked backward (child -> parent, towards the nose, with displacement_bwd), which
    reaches the root's ancestors, then forward (parent -> child, with displacement_fwd), which
    reaches everything else; an edge is followed only when its source is known and its target
    is not. Returns ``points_yx (17, 2)`` (input pixels) and ``keypoint_scores (17,)``.
    """
    root_cell = nearest_cell_of_point(*root_yx, output_stride, heatmaps.shape[1:])
    decoded = {root_id: (*root_yx, root_score, root_cell)}
    for edge, source_id, target_id, forward in _WALK_BACKWARD_THEN_FORWARD:
        if source_id in decoded and target_id not in decoded:
            decoded[target_id] = traverse_edge_to_target(
                decoded[source_id], edge, target_id, heatmaps, cell_points,
                displacement_fwd if forward else displacement_bwd, output_stride, trace,
            )
    pose = np.array([decoded[k][:3] for k in range(NUM_KEYPOINTS)], dtype=np.float32)
    return pose[:, :2], pose[:, 2]


def roots_near_same_keypoint(
    root_ids: np.ndarray, roots_yx: np.ndarray, pose_yx: np.ndarray, nms_radius: float
) -> np.ndarray:
    """(N,) whether each root (N, 2) lies within ``nms_radius`` of the pose's (17, 2) keypoint of
    the same kind."""
    return np.sum((roots_yx - pose_yx[root_ids]) ** 2, axis=-1) <= nms_radius**2


def decode_poses_greedily(
    heatmaps: np.ndarray,
    offsets: np.ndarray,
    displacement_fwd: np.ndarray,
    displacement_bwd: np.ndarray,
    output_stride: int,
    max_poses: int,
    part_score_threshold: float,
    nms_radius: float,
    local_maximum_radius: int,
    trace: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pop root candidates best first, skip those within ``nms_radius`` of the same keypoint of
    an accepted pose, decode the rest, until ``max_poses``.

    Returns ``points_yx (P, 17, 2)`` and ``keypoint_scores (P, 17)`` in acceptance order.
    """
    root_scores, root_ids, root_cells = build_part_score_queue(
        heatmaps, part_score_threshold, local_maximum_radius
    )
    cell_points = keypoint_points_of_cells(offsets, output_stride)
    roots_yx = cell_points[root_ids, root_cells[:, 0], root_cells[:, 1]]
    if trace is not None:
        trace.append({"event": "queue", "scores": root_scores, "keypoint_ids": root_ids,
                      "cells": root_cells, "points_yx": roots_yx})
    # Suppressing every candidate near each accepted pose at once leaves, at any time, the
    # first unsuppressed candidate as the next root.
    suppressed = np.zeros(len(root_ids), bool)
    points_yx = np.zeros((max_poses, NUM_KEYPOINTS, 2), np.float32)
    keypoint_scores = np.zeros((max_poses, NUM_KEYPOINTS), np.float32)
    num_poses = 0
    while num_poses < max_poses and not suppressed.all():
        root = int(np.argmin(suppressed))
        if trace is not None:
            trace.append({"event": "root", "pose": num_poses, "candidate": root,
                          "keypoint": int(root_ids[root]), "point_yx": tuple(roots_yx[root].tolist()),
                          "score": float(root_scores[root]), "cell": tuple(root_cells[root].tolist())})
        points_yx[num_poses], keypoint_scores[num_poses] = decode_pose_from_root(
            int(root_ids[root]), tuple(roots_yx[root].tolist()), float(root_scores[root]),
            heatmaps, cell_points, displacement_fwd, displacement_bwd, output_stride, trace,
        )
        near = roots_near_same_keypoint(root_ids, roots_yx, points_yx[num_poses], nms_radius)
        if trace is not None:
            trace.append({"event": "pose", "pose": num_poses, "points_yx": points_yx[num_poses].copy(),
                          "keypoint_scores": keypoint_scores[num_poses].copy()})
            newly = near & ~suppressed
            newly[root] = False
            trace.append({"event": "suppress", "pose": num_poses, "candidates": np.flatnonzero(newly)})
        suppressed |= near
        suppressed[root] = True
        num_poses += 1
    return points_yx[:num_poses], keypoint_scores[:num_poses]


def instance_scores(points_yx: np.ndarray, keypoint_scores: np.ndarray, nms_radius: float) -> np.ndarray:
    """TF.js getInstanceScore for poses (P, 17, 2) in acceptance order: the sum of the scores of
    keypoints that are not within ``nms_radius`` of the same keypoint of an earlier pose, / 17."""
    squared_distances = np.sum((points_yx[:, None] - points_yx[None, :]) ** 2, axis=-1)  # (P, P, 17)
    earlier = np.tri(len(points_yx), k=-1, dtype=bool)[:, :, None]  # [p, q]: pose q came before p
    overlapped = np.any((squared_distances <= nms_radius**2) & earlier, axis=1)
    return np.where(overlapped, 0.0, keypoint_scores).sum(axis=-1) / NUM_KEYPOINTS


def keypoints_xy_score(points_yx: np.ndarray, keypoint_scores: np.ndarray) -> np.ndarray:
    """(P, 17, 2) y, x points and (P, 17) scores -> float32 (P, 17, 3) x, y, score."""
    return np.concatenate([points_yx[..., ::-1], keypoint_scores[..., None]], axis=-1).astype(np.float32)


def decode_single_pose(
    heatmaps: np.ndarray, offsets: np.ndarray, output_stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fast path for one person: each keypoint at its heatmap's best cell, refined by that cell's
    offset. Always returns exactly one pose: ``keypoints (1, 17, 3)`` (x, y, score, input pixels)
    and ``scores (1,)`` = the mean keypoint score.

    With several people in view, keypoints may come from different people; use
    decode_multiple_poses then.
    """
    check_field_shapes(heatmaps, offsets)
    check_output_stride(output_stride)
    keypoint_ids = np.arange(NUM_KEYPOINTS)
    rows, cols = np.unravel_index(heatmaps.reshape(NUM_KEYPOINTS, -1).argmax(axis=1), heatmaps.shape[1:])
    points_yx = keypoint_points_at_cells(offsets, keypoint_ids, rows, cols, output_stride)
    keypoints = keypoints_xy_score(points_yx[None], heatmaps[keypoint_ids, rows, cols][None])
    return keypoints, keypoints[:, :, 2].mean(axis=1, dtype=np.float32)


def decode_multiple_poses(
    heatmaps: np.ndarray,
    offsets: np.ndarray,
    displacement_fwd: np.ndarray,
    displacement_bwd: np.ndarray,
    output_stride: int,
    *,
    max_poses: int = 10,
    part_score_threshold: float = 0.5,
    nms_radius: float = 20.0,
    local_maximum_radius: int = 1,
    min_pose_score: float = 0.0,
    trace: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode up to ``max_poses`` people (PoseNet's greedy bottom-up decoding, as in TF.js).

    - ``part_score_threshold`` (TF.js scoreThreshold, 0.5): a heatmap cell may start (root) a
      pose only if its score is at least this. Lower finds more, fainter people.
    - ``local_maximum_radius`` (TF.js kLocalMaximumRadius, 1): a root must also be the highest
      score of its keypoint within this many cells in each direction (a 3x3 window for 1).
    - ``nms_radius`` (TF.js nmsRadius, 20, input pixels): a root within this distance of the same
      keypoint of an already decoded pose is skipped, and a pose's keypoints within it of an
      earlier pose's do not count towards its score.
    - ``max_poses`` (TF.js maxPoseDetections, 10): at most this many poses are decoded.
    - ``min_pose_score`` (0 keeps all): decoded poses scoring below this are then dropped (they
      still count towards ``max_poses`` and still suppress later roots, as in TF.js, where this
      filter runs on the decoder's output).
    - ``trace``: a list to append the decoding's events to (see the module docstring); None
      (the default) records nothing.

    Returns ``keypoints float32 (P, 17, 3)`` (x, y, score in input pixels) and ``scores float32
    (P,)`` sorted descending; a pose's score is the mean of its non-overlapped keypoint scores.
    """
    check_field_shapes(heatmaps, offsets, displacement_fwd, displacement_bwd)
    check_output_stride(output_stride)
    if max_poses < 0 or nms_radius < 0 or local_maximum_radius < 0:
        raise PoseAppError(
            f"max poses, NMS radius and local maximum radius must be >= 0, got "
            f"{max_poses}, {nms_radius}, {local_maximum_radius}"
        )
    points_yx, keypoint_scores = decode_poses_greedily(
        heatmaps, offsets, displacement_fwd, displacement_bwd, output_stride,
        max_poses, part_score_threshold, nms_radius, local_maximum_radius, trace,
    )
    pose_scores = instance_scores(points_yx, keypoint_scores, nms_radius).astype(np.float32)
    kept = np.flatnonzero(pose_scores >= min_pose_score)
    kept = kept[np.argsort(-pose_scores[kept], kind="stable")]
    if trace is not None:
        trace.append({"event": "scores", "pose_scores": pose_scores, "kept": kept,
                      "min_pose_score": min_pose_score})
    return keypoints_xy_score(points_yx[kept], keypoint_scores[kept]), pose_scores[kept]


@dataclass(frozen=True)
class DecodeSettings:
    """How raw head outputs become poses (see decode.py for the meaning of each)."""

    max_poses: int = 10
    min_pose_score: float = 0.25  # drops faint ghost poses that would get ids of their own
    part_score_threshold: float = 0.5
    nms_radius: float = 20.0  # input pixels, as in PoseNet
    single_pose: bool = False
