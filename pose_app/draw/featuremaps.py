"""Pictures of what the network sees: feature-map tile grids and keypoint-heatmap overlays.

Pure numpy/OpenCV (no Qt), so the GUI's inference worker can build these images off the GUI
thread and tests can check them with known arrays.

- A feature tensor `(C, H, W)` (a conv block's ReLU6 output) becomes a grid of colour-mapped
  tiles, one per chosen channel; channels are chosen as the strongest (largest mean activation)
  or as a fixed range.
- Keypoint heatmaps `(17, h, w)` (one cell per `output_stride` input pixels) are resampled onto
  the frame through the engine's `FrameTransform` and blended over it.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

from pose_app.core.geometry import FrameTransform

ChannelSelection = Literal["strongest", "range"]
CHANNEL_SELECTIONS: tuple[ChannelSelection, ...] = ("strongest", "range")

# Perceptually uniform and readable for colour-blind viewers; dark = low activation.
COLORMAP = cv2.COLORMAP_VIRIDIS
GAP_COLOR_BGR = (40, 40, 40)


def strongest_channels(features: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` channels of `features (C, H, W)` with the largest mean activation,
    strongest first (ties keep the lower index first)."""
    means = features.reshape(features.shape[0], -1).mean(axis=1)
    order = np.argsort(-means, kind="stable")
    return order[: max(0, count)]


def channel_range(num_channels: int, start: int, count: int) -> np.ndarray:
    """Indices `start, start+1, ...` (at most `count`), clipped to the `num_channels` channels."""
    first = min(max(0, start), num_channels)
    return np.arange(first, min(first + max(0, count), num_channels))


def select_channels(features: np.ndarray, how: ChannelSelection, count: int, start: int = 0) -> np.ndarray:
    """The channel indices to show: the strongest `count`, or `count` from `start`."""
    if how == "strongest":
        return strongest_channels(features, count)
    if how == "range":
        return channel_range(features.shape[0], start, count)
    raise ValueError(f"unknown channel selection {how!r}; expected one of {CHANNEL_SELECTIONS}")


def normalise_per_tile(maps: np.ndarray) -> np.ndarray:
    """Scale each map of `maps (N, H, W)` to uint8 0..255 by its own min..max.

    Per-tile scaling shows each channel's spatial pattern even when its activations are weak; a
    constant map (no pattern) becomes all zeros.
    """
    maps = maps.astype(np.float32, copy=False)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    scaled = np.divide(maps - lo, span, out=np.zeros_like(maps), where=span > 0)
    return np.rint(scaled * 255.0).astype(np.uint8)


def colorize(gray: np.ndarray) -> np.ndarray:
    """Colour-map uint8 images `(..., H, W)` -> BGR `(..., H, W, 3)`."""
    flat = gray.reshape(-1, gray.shape[-1])  # applyColorMap wants one 2-D image
    return cv2.applyColorMap(flat, COLORMAP).reshape(*gray.shape, 3)


def grid_columns(count: int, tile_h: int, tile_w: int) -> int:
    """Columns that make a grid of `count` tiles of `tile_h x tile_w` roughly square in pixels."""
    if count <= 0:
        return 1
    return max(1, min(count, math.ceil(math.sqrt(count * tile_h / tile_w))))


def filled(shape: tuple[int, ...], color) -> np.ndarray:
    """A uint8 image (..., 3) of one BGR colour. A grey is filled as a scalar: numpy broadcasts
    a 3-vector over a large image about 100x slower."""
    image = np.empty(shape, np.uint8)
    if len(set(color)) == 1:
        image.fill(color[0])
    else:
        image[:] = color
    return image


def tile_grid(tiles: np.ndarray, columns: int, gap: int = 1, background=GAP_COLOR_BGR) -> np.ndarray:
    """Lay out `tiles (N, H, W, 3)` row by row in `columns` columns, `gap` pixels apart.

    The result is `(rows*H + (rows-1)*gap, columns*W + (columns-1)*gap, 3)`; empty cells of the
    last row stay `background`.
    """
    count, tile_h, tile_w = tiles.shape[:3]
    rows = max(1, math.ceil(count / columns))
    grid = filled((rows * tile_h + (rows - 1) * gap, columns * tile_w + (columns - 1) * gap, 3), background)
    for k in range(count):
        y = (k // columns) * (tile_h + gap)
        x = (k % columns) * (tile_w + gap)
        grid[y : y + tile_h, x : x + tile_w] = tiles[k]
    return grid


def combined_heatmap(heatmaps: np.ndarray, keypoint: int | None = None) -> np.ndarray:
    """One keypoint's heatmap `(h, w)`, or with `keypoint=None` the max over all keypoints."""
    if keypoint is None:
        return heatmaps.max(axis=0)
    return heatmaps[keypoint]


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (w, h) <= the image's size without aliasing: halve with Gaussian pyramid steps
    while the target is at most half as wide, then bilinear (about 3x faster than INTER_AREA on
    1080p, and within 2 grey levels of it)."""
    if size == (image.shape[1], image.shape[0]):
        return image
    while size[0] <= image.shape[1] // 2 and size[1] <= image.shape[0] // 2:
        image = cv2.pyrDown(image)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def view_to_cell_affine(transform: FrameTransform, heatmap_hw: tuple[int, int], scale: float) -> np.ndarray:
    """2x3 affine mapping pixels of a view (the frame scaled by `scale`) to heatmap cells.

    view pixel -> frame pixel (pixel-centre convention) -> network input pixel (the engine's own
    `to_input`) -> heatmap cell (cell j sits at input pixel j * stride).
    """
    view_points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    frame_points = (view_points + 0.5) / scale - 0.5
    input_points = transform.to_input(frame_points)
    stride_xy = (np.asarray(transform.input_size, np.float64) - 1.0) / (np.array(heatmap_hw[::-1], np.float64) - 1.0)
    cell_points = input_points / stride_xy
    return cv2.getAffineTransform(view_points.astype(np.float32), cell_points.astype(np.float32))


def heatmap_overlay(
    frame_bgr: np.ndarray,
    heatmaps: np.ndarray,
    transform: FrameTransform,
    keypoint: int | None = None,
    *,
    out_width: int | None = None,
    alpha: float = 0.7,
    mirror: bool = False,
) -> np.ndarray:
    """The frame (scaled to `out_width`) with a keypoint heatmap (0..1) blended over it.

    Each pixel mixes towards the colour-mapped heat in proportion to the heat itself, so cold
    regions keep the picture and hot spots stand out.
    """
    frame_h, frame_w = frame_bgr.shape[:2]
    scale = 1.0 if out_width is None else out_width / frame_w
    size = (max(1, round(frame_w * scale)), max(1, round(frame_h * scale)))
    view = shrink(frame_bgr, size)
    heat = combined_heatmap(heatmaps, keypoint).astype(np.float32)
    affine = view_to_cell_affine(transform, heat.shape, size[0] / frame_w)
    heat_view = cv2.warpAffine(
        heat, affine, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    heat_view = np.clip(heat_view, 0.0, 1.0)
    color = colorize(np.rint(heat_view * 255.0).astype(np.uint8))
    weight = alpha * heat_view
    blended = cv2.blendLinear(view, color, 1.0 - weight, weight)
    return cv2.flip(blended, 1) if mirror else blended
