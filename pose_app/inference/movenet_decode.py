"""MoveNet SinglePose decoding in numpy: the raw heads of one crop -> one person's 17 keypoints.

This is the decoding that Google's MoveNet SinglePose graph runs after its heads (read from the
graph's nodes; models/convert_movenet.py, docs/network.md), step by step:

1. the person: the centre heatmap weighted by closeness to the crop's centre, arg-max -> the
   centre cell (the crop was made around the person we follow, so a person nearer the middle
   wins over a brighter one at the edge);
2. where that person's keypoints should be: the regression head at the centre cell, added to it;
3. each keypoint's cell: the keypoint heatmap divided by the distance to that regressed
   position, arg-max (a strong peak of someone else's elbow far away loses to our person's);
4. the exact position: the offset head at that cell, added to it; the score is the heatmap there.

The heads are the ONNX contract's (docs/architecture.md): heatmaps and centres after the
sigmoid, regression and offsets with 17 y channels then 17 x channels, in heatmap cells.
"""

from __future__ import annotations

import numpy as np

from pose_app.core.skeleton import NUM_KEYPOINTS

# Added to every distance before dividing by it (graph constant `add_5/y`, and the centre weight
# map's): 1.8 cells, so that the cell under the expected position is not divided by zero and
# closeness only starts to matter a couple of cells away. The TF.js graph stores it as float16
# (1.7998); 1.8 is the model's own value.
DISTANCE_BIAS = 1.8


def centre_weights(height: int, width: int) -> np.ndarray:
    """[height, width] float32 weights 1 / (distance to the grid's centre + 1.8), in cells.

    The grid's centre is (height / 2, width / 2) in cell indices: cell (24, 24) of a 48x48
    grid, not the geometric middle (23.5, 23.5); this equals Google's constant
    `truediv_2_recip` for 48x48 (Lightning) and 64x64 (Thunder) up to its float16 storage.
    """
    rows = np.arange(height, dtype=np.float32)[:, None] - np.float32(height / 2)
    cols = np.arange(width, dtype=np.float32)[None, :] - np.float32(width / 2)
    return (1.0 / (np.sqrt(rows * rows + cols * cols) + np.float32(DISTANCE_BIAS))).astype(np.float32)


def argmax_cell(values: np.ndarray) -> tuple[int, int]:
    """(row, col) of the largest value of a [h, w] map; ties go to the first in row-major order
    (as TF's ArgMax over the flattened map)."""
    row, col = divmod(int(np.argmax(values)), values.shape[1])
    return row, col


def pick_centre(centers: np.ndarray) -> tuple[int, int]:
    """The centre cell of the person to decode: centre heatmap [h, w] times centre_weights."""
    return argmax_cell(centers * centre_weights(*centers.shape))


def regressed_positions(regression: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """[17, 2] (y, x) in cells where the centre's person has its keypoints: the centre cell plus
    the regression head read at that cell."""
    row, col = centre
    ys = row + regression[:NUM_KEYPOINTS, row, col]
    xs = col + regression[NUM_KEYPOINTS:, row, col]
    return np.stack([ys, xs], axis=1).astype(np.float32)


def keypoint_cells(heatmaps: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """[17, 2] int (row, col): per keypoint, the arg-max of its heatmap divided by
    (distance from the cell to the regressed position + 1.8), so that the person picked by its
    centre keeps its own joints even when someone else's are brighter."""
    _, height, width = heatmaps.shape
    rows = np.arange(height, dtype=np.float32)[None, :, None]
    cols = np.arange(width, dtype=np.float32)[None, None, :]
    dy = rows - expected[:, 0, None, None]
    dx = cols - expected[:, 1, None, None]
    weighted = heatmaps / (np.sqrt(dy * dy + dx * dx) + np.float32(DISTANCE_BIAS))
    return np.array([argmax_cell(weighted[k]) for k in range(heatmaps.shape[0])], dtype=np.int64)


def decode_single_pose(
    heatmaps: np.ndarray,
    centers: np.ndarray,
    regression: np.ndarray,
    offsets: np.ndarray,
    input_size: tuple[int, int],
) -> np.ndarray:
    """One person's keypoints from MoveNet's heads for one image.

    heatmaps [17, h, w], centers [1, h, w] (sigmoid applied), regression and offsets [34, h, w]
    (17 y then 17 x, in cells); input_size (W, H) of the network's input. Returns [17, 3]
    float32 (x, y, score): x, y in input pixels with (0, 0) the centre of the top-left pixel,
    i.e. x = x_norm * W - 0.5 where x_norm = (col + offset_x) / w is Google's 0..1 output.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    regression = np.asarray(regression, dtype=np.float32)
    offsets = np.asarray(offsets, dtype=np.float32)
    _, height, width = heatmaps.shape
    centre = pick_centre(np.asarray(centers, dtype=np.float32)[0])
    cells = keypoint_cells(heatmaps, regressed_positions(regression, centre))
    index = np.arange(NUM_KEYPOINTS)
    rows, cols = cells[:, 0], cells[:, 1]
    y_norm = (rows + offsets[index, rows, cols]) / np.float32(height)
    x_norm = (cols + offsets[NUM_KEYPOINTS + index, rows, cols]) / np.float32(width)
    input_width, input_height = input_size
    keypoints = np.empty((NUM_KEYPOINTS, 3), dtype=np.float32)
    keypoints[:, 0] = x_norm * input_width - 0.5
    keypoints[:, 1] = y_norm * input_height - 0.5
    keypoints[:, 2] = heatmaps[index, rows, cols]
    return keypoints
