"""The CNN lab's probes of what the network responds to: the image patches each channel likes
best over a session (`TopPatches`) and occlusion sensitivity, how much a keypoint's score drops
when a grey square hides each spot of the frame (numpy/OpenCV and the engine, no Qt). Frame
boxes are (x0, y0, x1, y1) pixel edges in original-frame pixels (docs/architecture.md).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.draw.featuremaps import shrink
from pose_app.inference.engine import PoseEngine
from pose_app.inference.families.posenet import letterbox
from pose_app.inference.model_info import FeatureBlock

# --- what a channel looks for: the patches that excited it most ---------------------------------

PATCH_PIXELS = 32  # side of a stored patch
TOP_PATCHES = 9


@dataclass(frozen=True)
class Patch:
    """An image patch (BGR uint8, PATCH_PIXELS square) at a cell's receptive field, the
    activation it gave and where it was (frame `box`, pixel edges; `frame` its index)."""

    value: float
    image: np.ndarray
    box: tuple[float, float, float, float]
    frame: int


def crop_box(image_bgr: np.ndarray, box: tuple[float, float, float, float], side: int = PATCH_PIXELS) -> np.ndarray:
    """The frame's pixels inside `box` (edges), resampled to side x side; mid-grey where the box
    leaves the frame (the network sees its padding there)."""
    height, width = image_bgr.shape[:2]
    left, top = math.floor(box[0] + 0.5), math.floor(box[1] + 0.5)
    right, bottom = max(left + 1, math.ceil(box[2] + 0.5)), max(top + 1, math.ceil(box[3] + 0.5))
    inside = image_bgr[max(0, top):max(0, min(height, bottom)), max(0, left):max(0, min(width, right))]
    if inside.size == 0:
        return np.full((side, side, 3), 128, np.uint8)
    padded = cv2.copyMakeBorder(inside, max(0, -top), max(0, bottom - height), max(0, -left), max(0, right - width),
                                cv2.BORDER_CONSTANT, value=(128, 128, 128))
    # Two pyramid halvings at most, then bilinear: INTER_AREA costs ~5x more, per patch kept.
    return shrink(padded, (side, side)) if min(padded.shape[:2]) >= side else cv2.resize(padded, (side, side))


def same_spots(boxes: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """(N, K) bool: whether box n (`boxes (N, 4)`) and kept box k (`kept (N, K, 4)`, NaN where
    none) share more than half of the smaller one: the same spot seen twice."""
    boxes = boxes[:, None]
    width = np.minimum(kept[..., 2], boxes[..., 2]) - np.maximum(kept[..., 0], boxes[..., 0])
    height = np.minimum(kept[..., 3], boxes[..., 3]) - np.maximum(kept[..., 1], boxes[..., 1])
    def area(b: np.ndarray) -> np.ndarray:
        return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])

    with np.errstate(invalid="ignore"):
        return (width > 0) & (height > 0) & (width * height > 0.5 * np.minimum(area(kept), area(boxes)))


def receptive_field_boxes(block: FeatureBlock, cells: np.ndarray, transform: FrameTransform) -> np.ndarray:
    """float64 (N, 4) frame boxes of cells (N, 2) = (i, j): explain.receptive_field_box for many."""
    half = block.receptive_field / 2.0
    centres = cells[:, ::-1].astype(np.float64) * block.stride  # input pixel (x, y) of each cell
    corners = np.stack([centres - half, centres + half], axis=1)  # (N, 2 corners, xy)
    return transform.to_frame(corners).reshape(-1, 4).astype(np.float64)


class TopPatches:
    """For each channel of one block, the TOP_PATCHES patches that excited it most so far: one
    candidate per channel and frame (its strongest cell); a candidate over the same spot as
    kept patches replaces them only when stronger than all of them, so a still scene does not
    fill a channel with copies and no two kept patches show one spot. Each channel's list is a new tuple on change: `channels()` can be handed to another
    thread as it is. The choice is vectorised over the channels: only kept patches are cropped."""

    def __init__(self, block: FeatureBlock | None = None):
        self.block = block
        self.clear()

    def clear(self, block: FeatureBlock | None = None) -> None:
        self.block = block if block is not None else self.block
        self.frames = 0
        self._channels: list[tuple[Patch, ...]] = []
        self._values = np.empty((0, TOP_PATCHES))  # strongest first, -inf where empty
        self._boxes = np.empty((0, TOP_PATCHES, 4))  # NaN where empty

    def channels(self) -> tuple[tuple[Patch, ...], ...]:
        """Per channel, its patches strongest first."""
        return tuple(self._channels)

    def update(self, image_bgr: np.ndarray, values: np.ndarray, transform: FrameTransform, frame: int = 0) -> None:
        """Offer one frame: `values (C, H, W)` the block's activation of `image_bgr` (letterboxed
        by `transform`)."""
        count = len(values)
        if len(self._channels) != count:
            self._channels = [()] * count
            self._values = np.full((count, TOP_PATCHES), -np.inf)
            self._boxes = np.full((count, TOP_PATCHES, 4), np.nan)
        self.frames += 1
        flat = values.reshape(count, -1)
        best = flat.argmax(axis=1)
        tops = flat[np.arange(count), best].astype(np.float64)
        cells = np.stack(np.divmod(best, values.shape[2]), axis=1)
        boxes = receptive_field_boxes(self.block, cells, transform)
        same = same_spots(boxes, self._boxes)
        beaten = np.where(same.any(axis=1), np.where(same, self._values, -np.inf).max(axis=1), self._values[:, -1])
        for channel in np.nonzero((tops > beaten) & (tops > 0))[0]:
            box = tuple(boxes[channel].tolist())
            patch = Patch(float(tops[channel]), crop_box(image_bgr, box), box, frame)
            self._keep(int(channel), patch, np.nonzero(same[channel])[0])

    def _keep(self, channel: int, patch: Patch, replaces: np.ndarray) -> None:
        kept = [old for n, old in enumerate(self._channels[channel]) if n not in replaces]
        kept = sorted([*kept, patch], key=lambda p: -p.value)[:TOP_PATCHES]
        self._channels[channel] = tuple(kept)
        self._values[channel] = -np.inf
        self._boxes[channel] = np.nan
        self._values[channel, :len(kept)] = [p.value for p in kept]
        self._boxes[channel, :len(kept)] = [p.box for p in kept]


# --- which pixels matter: occlusion sensitivity -------------------------------------------------

OCCLUSION_GREY = 128.0  # the patch's value in the 0..255 network input (mid-grey)


@dataclass(frozen=True)
class Occlusion:
    """How much a keypoint's heatmap score drops when a grey square covers each position:
    `drops (rows, cols)` (baseline - occluded score), square r, c covering the frame box
    `boxes[r, c]` (x0, y0, x1, y1 edges); the score is read at `cell`, the keypoint's
    strongest cell without occlusion, scoring `baseline`."""

    keypoint: int
    drops: np.ndarray
    boxes: np.ndarray  # float32 (rows, cols, 4)
    cell: tuple[int, int]
    baseline: float
    frame_size: tuple[int, int]
    patch: int  # side of the grey square, frame pixels


def occlusion_boxes(frame_size: tuple[int, int], patch: int, stride: int) -> np.ndarray:
    """float32 (rows, cols, 4) frame boxes of a patch x patch square slid `stride` pixels at a
    time over a (w, h) frame, the last ones flush with the right and bottom edges."""
    def starts(length: int) -> np.ndarray:
        last = max(0, length - patch)
        return np.unique(np.append(np.arange(0, last + 1, stride), last)).astype(np.float32)

    xs, ys = starts(frame_size[0]), starts(frame_size[1])
    x0, y0 = np.meshgrid(xs - 0.5, ys - 0.5)
    size = np.float32(patch)
    return np.stack([x0, y0, np.minimum(x0 + size, frame_size[0] - 0.5),
                     np.minimum(y0 + size, frame_size[1] - 0.5)], axis=-1)


def occlusion_sensitivity(
    engine: PoseEngine,
    image_bgr: np.ndarray,
    keypoint: int,
    resolution: int,
    patch: int | None = None,
    stride: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: threading.Event | None = None,
    batch: int = 4,
) -> Occlusion | None:
    """Slide a grey square (default: a sixth of the frame's shorter side, half of it apart)
    over the frame, run the network on each occluded frame at `resolution` and measure the
    keypoint's score drop. `progress(done, total)` after each batch; None when `cancelled`."""
    height, width = image_bgr.shape[:2]
    patch = patch or max(8, min(width, height) // 6)
    stride = stride or max(1, patch // 2)
    blob, transform = letterbox(image_bgr, resolution, engine.info.output_stride)
    baseline_map = engine.run(blob)[0][0, keypoint]
    cell = np.unravel_index(int(baseline_map.argmax()), baseline_map.shape)
    boxes = occlusion_boxes((width, height), patch, stride)
    flat = boxes.reshape(-1, 4)
    corners = transform.to_input(flat.reshape(-1, 2, 2))  # pixel edges -> input pixel edges
    scores = np.empty(len(flat), np.float32)
    for start in range(0, len(flat), batch):
        if cancelled is not None and cancelled.is_set():
            return None
        chunk = np.repeat(blob, min(batch, len(flat) - start), axis=0)
        for n, ((x0, y0), (x1, y1)) in enumerate(corners[start:start + len(chunk)]):
            chunk[n, :, max(0, round(y0 + 0.5)):max(0, round(y1 + 0.5)), max(0, round(x0 + 0.5)):max(0, round(x1 + 0.5))] = (
                OCCLUSION_GREY)
        scores[start:start + len(chunk)] = engine.run(chunk)[0][:, keypoint, cell[0], cell[1]]
        if progress is not None:
            progress(min(start + len(chunk), len(flat)), len(flat))
    baseline = float(baseline_map[cell])
    drops = (baseline - scores).reshape(boxes.shape[:2])
    return Occlusion(keypoint, drops, boxes, (int(cell[0]), int(cell[1])), baseline, (width, height), patch)


def drop_at(occlusion: Occlusion, point: Sequence[float]) -> float:
    """The score drop of the squares covering frame pixel (x, y), averaged (0 when none does)."""
    x, y = point
    boxes = occlusion.boxes
    covering = (boxes[..., 0] <= x) & (x <= boxes[..., 2]) & (boxes[..., 1] <= y) & (y <= boxes[..., 3])
    return float(occlusion.drops[covering].mean()) if covering.any() else 0.0


def drop_heatmap(occlusion: Occlusion) -> np.ndarray:
    """float32 (h, w) per frame pixel: the mean drop of the squares covering it."""
    width, height = occlusion.frame_size
    total = np.zeros((height, width), np.float32)
    count = np.zeros((height, width), np.float32)
    for (x0, y0, x1, y1), drop in zip(occlusion.boxes.reshape(-1, 4), occlusion.drops.ravel()):
        rows = slice(round(y0 + 0.5), round(y1 + 0.5))
        cols = slice(round(x0 + 0.5), round(x1 + 0.5))
        total[rows, cols] += drop
        count[rows, cols] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)
