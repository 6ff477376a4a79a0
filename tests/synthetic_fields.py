"""Synthetic PoseNet head outputs (heatmaps, offsets, displacements) of people at known places,
for the decoding and explainer tests."""

from __future__ import annotations

import numpy as np

from pose_app.core.skeleton import NUM_KEYPOINTS, PART_TREE_EDGES

STRIDE = 16


# A standing person's keypoints (y, x) in input pixels relative to the nose, COCO order;
# non-integer so offsets carry fractions.
TEMPLATE_YX = np.array(
    [
        [0.0, 0.0], [-6.2, 5.3], [-6.1, -4.9], [-2.7, 12.4], [-3.3, -11.8],
        [30.4, 22.1], [29.6, -21.7], [64.8, 30.3], [65.2, -29.6], [95.1, 33.4], [94.7, -32.8],
        [100.3, 14.2], [99.8, -13.9], [145.6, 16.1], [144.9, -15.7], [190.2, 17.3], [189.6, -16.6],
    ]
)


# The displacement heads are coarse: the fields carry this error, which the decoder's offset
# refinement must remove.
DISPLACEMENT_ERROR_YX = np.array([3.0, -2.0])


def person_at(nose_y: float, nose_x: float) -> np.ndarray:
    """The template person (17, 2) with its nose at (nose_y, nose_x)."""
    return TEMPLATE_YX + [nose_y, nose_x]


def render_fields(
    people_yx: np.ndarray,
    people_scores: np.ndarray,
    map_shape: tuple[int, int],
    displacement_error_yx: np.ndarray = DISPLACEMENT_ERROR_YX,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Model outputs consistent with the ONNX contract for people (N, 17, 2) with keypoint
    scores (N, 17): every keypoint peaks at its nearest cell with its score (its 8 neighbours get
    0.9x, so they are above threshold but not local maxima); every cell's offsets and
    displacements describe the person whose keypoint is nearest to that cell, the displacements
    off by ``displacement_error_yx``."""
    h, w = map_shape
    heatmaps = np.zeros((NUM_KEYPOINTS, h, w), np.float32)
    offsets = np.zeros((2 * NUM_KEYPOINTS, h, w), np.float32)
    num_edges = len(PART_TREE_EDGES)
    fwd = np.zeros((2 * num_edges, h, w), np.float32)
    bwd = np.zeros((2 * num_edges, h, w), np.float32)
    centres = cell_centres(map_shape)
    for k in range(NUM_KEYPOINTS):
        offset_yx = people_yx[owner_per_cell(people_yx[:, k], map_shape), k] - centres
        offsets[k], offsets[NUM_KEYPOINTS + k] = offset_yx[..., 0], offset_yx[..., 1]
        for point, score in zip(people_yx[:, k], people_scores[:, k]):
            i, j = nearest_cell(point, map_shape)
            ring = heatmaps[k, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
            np.maximum(ring, 0.9 * score, out=ring)
            heatmaps[k, i, j] = max(heatmaps[k, i, j], score)
    for e, (parent, child) in enumerate(PART_TREE_EDGES):
        parent_to_child = people_yx[:, child] - people_yx[:, parent]
        forward = parent_to_child[owner_per_cell(people_yx[:, parent], map_shape)] + displacement_error_yx
        backward = -parent_to_child[owner_per_cell(people_yx[:, child], map_shape)] + displacement_error_yx
        fwd[e], fwd[num_edges + e] = forward[..., 0], forward[..., 1]
        bwd[e], bwd[num_edges + e] = backward[..., 0], backward[..., 1]
    return heatmaps, offsets, fwd, bwd


def uniform_scores(*per_person: float) -> np.ndarray:
    return np.repeat(np.array(per_person, np.float32)[:, None], NUM_KEYPOINTS, axis=1)


def duplicate_nose_fields() -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One person plus a weaker second nose peak 3 cells away whose offset puts it 10 px right of
    the real nose: a duplicate root."""
    person = person_at(60.4, 240.3)
    heatmaps, offsets, fwd, bwd = render_fields(person[None], uniform_scores(0.9), (33, 33))
    i, j = nearest_cell(person[0], (33, 33))
    heatmaps[0, i, j + 3] = 0.7
    offsets[0, i, j + 3] = person[0, 0] - i * STRIDE
    offsets[NUM_KEYPOINTS, i, j + 3] = person[0, 1] + 10.0 - (j + 3) * STRIDE
    return person, (heatmaps, offsets, fwd, bwd)


def cell_centres(map_shape: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) input-pixel (y, x) of every heatmap cell."""
    rows, cols = np.indices(map_shape)
    return np.stack([rows, cols], axis=-1) * float(STRIDE)


def nearest_cell(point_yx: np.ndarray, map_shape: tuple[int, int]) -> tuple[int, int]:
    cell = np.clip(np.floor(point_yx / STRIDE + 0.5).astype(int), 0, np.array(map_shape) - 1)
    return int(cell[0]), int(cell[1])


def owner_per_cell(points_yx: np.ndarray, map_shape: tuple[int, int]) -> np.ndarray:
    """(h, w) index of the person whose point (N, 2) is nearest to each cell centre."""
    distances = np.linalg.norm(cell_centres(map_shape)[None] - points_yx[:, None, None], axis=-1)
    return distances.argmin(axis=0)
