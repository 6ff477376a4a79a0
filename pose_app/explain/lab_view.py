"""The CNN lab's pictures for the feature-map dock (numpy/OpenCV, no Qt), one per lab part
(lab.LAB_PARTS), made by the inference worker like the dock's other views (compose.PanelView).

The lab shows the frame as the network reads it, never mirrored: a filter that answers "brighter
on the right?" must be seen doing so. `LabSession` keeps what outlives a frame: the model's
first-layer filters and heatmap head (read once per engine) and the patches each channel liked
best this session.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.draw.featuremaps import GAP_COLOR_BGR, colorize, filled, heatmap_overlay, shrink, tile_grid
from pose_app.errors import PoseAppError
from pose_app.explain.lab import (
    HeadWeights,
    LabRequest,
    WeightedSum,
    closest_filter,
    convolve,
    head_sum,
    head_weights,
    learnt_filters,
    network_input,
    pool,
)
from pose_app.explain.lab_probes import PATCH_PIXELS, TOP_PATCHES, Occlusion, Patch, TopPatches, drop_heatmap
from pose_app.explain.network import filter_tiles
from pose_app.explain.panel import Activation, FrameGeometry, PanelContext, PanelRequest, PanelView, PanelViewKind
from pose_app.inference.engine import PoseEngine
from pose_app.inference.model_info import FeatureBlock, ModelInfo

TEXT_COLOR, LABEL_FONT = (235, 235, 235), cv2.FONT_HERSHEY_SIMPLEX
POSITIVE_BGR, NEGATIVE_BGR = np.array([40, 170, 255], np.float32), np.array([255, 140, 40], np.float32)
PLATE_SHADE = 0.45  # a label's plate keeps this much of the brightness under it
BARS_SHOWN = 10  # the largest terms of a weighted sum drawn as bars
LAB_VIEW = "lab"  # the lab's name among the dock's views (LabView)


def _signed_colours() -> np.ndarray:
    """(256, 1, 3) uint8 look-up table: index 0 full blue (-1), 127.5 black (0), 255 full orange (+1)."""
    scaled = np.linspace(-1.0, 1.0, 256, dtype=np.float32)[:, None]
    colours = np.clip(scaled, 0, 1) * POSITIVE_BGR + np.clip(-scaled, 0, 1) * NEGATIVE_BGR
    return np.rint(colours).astype(np.uint8)[:, None]


SIGNED_COLOURS = _signed_colours()


def signed_map(values: np.ndarray) -> np.ndarray:
    """BGR uint8 of a map (H, W) scaled by its largest |value|: positive orange, negative blue,
    zero black, so ReLU's cut is seen as the blue vanishing. The square root of the scaled value
    sets the brightness, so that answers a tenth of the strongest still show."""
    values = np.asarray(values, np.float32)
    top = float(np.abs(values).max()) if values.size else 0.0
    scaled = values / top if top > 0 else np.zeros_like(values)
    index = np.rint((np.sign(scaled) * np.sqrt(np.abs(scaled)) + 1.0) * 127.5).astype(np.uint8)
    return cv2.LUT(cv2.merge([index] * 3), SIGNED_COLOURS)


def value_map(values: np.ndarray, top: float) -> np.ndarray:
    """BGR uint8 of a map (H, W) of values >= 0 on a shared 0..top scale (viridis)."""
    scaled = np.clip(np.asarray(values, np.float32) / top, 0, 1) if top > 0 else np.zeros(np.shape(values), np.float32)
    return colorize(np.rint(scaled * 255).astype(np.uint8))


def outlined_label(picture: np.ndarray, text: str, xy: tuple[int, int], scale: float = 0.4) -> None:
    """White text with a dark outline on a darkened plate, readable on any picture (a white
    frame, a bright map). The outline is the same text drawn thin one pixel around: drawn thick,
    OpenCV advances each letter further (the thickness is added to every glyph's width), so a
    thick outline drifts away from the text along the line and a long label looks doubled."""
    x, y = xy
    (width, height), baseline = cv2.getTextSize(text, LABEL_FONT, scale, 1)
    x0, y0 = max(0, x - 2), max(0, y - height - 3)
    x1, y1 = min(picture.shape[1], x + width + 3), min(picture.shape[0], y + baseline + 1)
    if x1 > x0 and y1 > y0:  # the plate: what lies under the label at PLATE_SHADE of its brightness
        plate = picture[y0:y1, x0:x1]
        plate[:] = (plate * PLATE_SHADE).astype(picture.dtype)
    for dx, dy in _AROUND:
        cv2.putText(picture, text, (x + dx, y + dy), LABEL_FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(picture, text, xy, LABEL_FONT, scale, TEXT_COLOR, 1, cv2.LINE_AA)


_AROUND = tuple((dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy)


def gap_canvas(height: int, width: int) -> np.ndarray:
    return filled((height, width, 3), GAP_COLOR_BGR)


def message_picture(width: int, text: str, scale: float = 0.36) -> np.ndarray:
    """A one-line strip that says why a view has nothing to show (no network, none could open)."""
    picture = gap_canvas(40, width)
    outlined_label(picture, text, (4, 24), scale)
    return picture


def _place(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    """Copy `image` with its top left at (x, y), clipped to the canvas."""
    height = min(image.shape[0], canvas.shape[0] - y)
    width = min(image.shape[1], canvas.shape[1] - x)
    if height > 0 and width > 0:
        canvas[y:y + height, x:x + width] = image[:height, :width]


def _nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scaled to (w, h) with every cell a visible block (no smoothing)."""
    return cv2.resize(image, (max(1, size[0]), max(1, size[1])), interpolation=cv2.INTER_NEAREST)


def content_cells(values: np.ndarray, transform: FrameTransform, output_stride: int) -> np.ndarray:
    """The cells of a map (..., H, W) that lie on the frame, not on the letterbox's padding."""
    width, height = transform.resized_size
    return values[..., :math.ceil(height / output_stride), :math.ceil(width / output_stride)]


def _kernel_tile(weights: np.ndarray, side: int) -> np.ndarray:
    """A kernel (3, k, k) drawn as a side x side colour tile (explain.filter_tiles)."""
    size = weights.shape[-1]
    return _nearest(filter_tiles(weights[None], scale=max(1, side // size), columns=1, gap=0), (side, side))


# --- the parts ----------------------------------------------------------------------------------


def filter_layout(box: tuple[int, int], frame_size: tuple[int, int]) -> int:
    """How many columns the filter view's four pictures (frame, your map, the network's map, the
    kernels) take in a (w, h) box (h 0: unknown): 2 (a 2 x 2 grid), 4 (one row, a wide low box)
    or 1 (one column, a tall narrow one), whichever shows them largest once fitted to the box."""
    width, height = box
    if height <= 0:
        return 2
    aspect = frame_size[0] / frame_size[1]

    def shown(columns: int) -> float:  # a picture's width once the whole is fitted to the box
        rows = 4 // columns
        return min((width - 2 * (columns - 1)) / columns, (height - 2 * (rows - 1)) / rows * aspect)

    return max((2, 4, 1), key=lambda columns: (round(shown(columns)), columns == 2))


def filter_view(image_bgr: np.ndarray, lab: LabRequest, width: int, filters: np.ndarray | None,
                feature_0: np.ndarray | None, transform: FrameTransform | None, first: FeatureBlock | None,
                height: int = 0) -> PanelView:
    """Your filter on the frame: the frame (shrunk to a column's width), your map beside it at the
    same scale (each map cell `stride` pixels wide, a valid map inset by k // 2), and the network's
    first-layer filter closest to yours with its own map (feature_0); the four in a 2 x 2 grid,
    or in one row or one column where that fills the (width, height) box better (filter_layout)."""
    frame_h, frame_w = image_bgr.shape[:2]
    columns = filter_layout((width, height), (frame_w, frame_h))
    half = max(16, (width - 2 * (columns - 1)) // columns)
    size = (half, max(1, round(frame_h * half / frame_w)))
    # Where each of the four goes: frame, your map, the network's map, the kernels.
    spots = [((n % columns) * (half + 2), (n // columns) * (size[1] + 2)) for n in range(4)]
    small = shrink(image_bgr, size)
    weights = lab.filter.weights()
    k = lab.filter.size
    values = convolve(network_input(small), weights, lab.stride, lab.padding, lab.relu)
    inset = 0 if lab.padding == "same" else k // 2
    shown = gap_canvas(size[1], size[0])
    _place(shown, _nearest(signed_map(values), (values.shape[1] * lab.stride, values.shape[0] * lab.stride)),
           inset, inset)
    picture = gap_canvas(4 // columns * (size[1] + 2) - 2, columns * (half + 2) - 2)
    (fx, fy), (mx, my), (nx, ny), (kx, ky) = spots
    _place(picture, small, fx, fy)
    _place(picture, shown, mx, my)
    outlined_label(picture, "frame", (fx + 3, fy + 13))
    outlined_label(picture, "your map", (mx + 3, my + 13))
    caption = (f"Your {k}×{k} filter (stride {lab.stride}, {lab.padding} padding, ReLU {'on' if lab.relu else 'off'}): "
               f"{size[0]}×{size[1]} in → {values.shape[1]}×{values.shape[0]} out; orange = positive, blue = negative")
    closest = closest_filter(weights, filters) if filters is not None else None
    tile = min(size[1] - 4, half // 2 - 6)
    label_y = ky + tile if tile + 16 < size[1] else ky + 12
    _place(picture, _kernel_tile(weights, tile), kx + 2, ky + 2)
    outlined_label(picture, "yours", (kx + 4, label_y))
    if closest is not None and feature_0 is not None and transform is not None and first is not None:
        learnt = content_cells(feature_0[closest.index], transform, first.stride)
        _place(picture, _nearest(value_map(learnt, float(learnt.max())), size), nx, ny)
        outlined_label(picture, "network's map", (nx + 3, ny + 13))
        _place(picture, _kernel_tile(filters[closest.index], tile), kx + tile + 10, ky + 2)
        outlined_label(picture, f"net #{closest.index}", (kx + tile + 12, label_y))
        flipped = ", weights of the opposite sign" if closest.cosine < 0 else ""
        caption += (f". {'Right' if columns == 4 else 'Below'}: the network's first-layer filter {closest.index}, the closest to yours (cosine "
                    f"{closest.cosine:+.2f}{flipped}), and its map ({learnt.shape[1]}×{learnt.shape[0]}, stride "
                    f"{first.stride}, ReLU6): the network learnt this one itself")
    return PanelView(picture, caption, LAB_VIEW)


def strongest_channel(values: np.ndarray) -> int:
    """The channel of (C, H, W) with the largest mean activation."""
    return int(np.argmax(values.reshape(len(values), -1).mean(axis=1)))


def pool_view(values: np.ndarray, block: FeatureBlock, lab: LabRequest, width: int,
              transform: FrameTransform) -> PanelView:
    """One channel of a block on top, its 2x2 max-pool and average-pool (stride 2) below, all
    on one colour scale and each cell drawn as a block, so the halving is seen."""
    channel = strongest_channel(values) if lab.pooling_channel_strongest else min(lab.channel, len(values) - 1)
    shown = content_cells(values[channel], transform, block.stride)
    pooled = {how: pool(shown, 2, 2, how) for how in ("max", "average")}
    top = float(shown.max())
    scale = max(1, width // max(1, shown.shape[1]))
    big = _nearest(value_map(shown, top), (shown.shape[1] * scale, shown.shape[0] * scale))
    half = max(1, (big.shape[1] - 2) // 2)
    small_scale = max(1, half // max(1, pooled["max"].shape[1]))
    maps = [_nearest(value_map(pooled[how], top), (pooled[how].shape[1] * small_scale, pooled[how].shape[0] * small_scale))
            for how in ("max", "average")]
    picture = gap_canvas(big.shape[0] + 2 + max(m.shape[0] for m in maps), big.shape[1])
    _place(picture, big, 0, 0)
    outlined_label(picture, f"{block.name} channel {channel}", (3, 13))
    for n, (how, image) in enumerate(zip(("max-pool", "average-pool"), maps)):
        _place(picture, image, n * (half + 2), big.shape[0] + 2)
        outlined_label(picture, how, (n * (half + 2) + 3, big.shape[0] + 15))
    rows, cols = shown.shape
    out_rows, out_cols = pooled["max"].shape
    which = "its strongest channel" if lab.pooling_channel_strongest else "channel"
    caption = (f"{block.name}, {which} {channel}: {cols}×{rows} cells (stride {block.stride}). 2×2 pooling, stride 2 → "
               f"{out_cols}×{out_rows}: max-pool keeps each square's largest value (max {pooled['max'].max():.2f}), "
               f"average-pool their mean (max {pooled['average'].max():.2f}); one colour scale, 0..{top:.2f}")
    return PanelView(picture, caption, LAB_VIEW, block.name)


def _bar_rows(total: WeightedSum, keypoint: int, cell: tuple[int, int], heatmap_value: float, head: HeadWeights,
              width: int) -> np.ndarray:
    """The weighted sum at one cell as a band of bars: the largest terms (activation x weight),
    then the sum, the bias and the value after the sigmoid."""
    terms = total.terms
    order = np.argsort(-np.abs(terms), kind="stable")[:BARS_SHOWN]
    line = 15
    band = gap_canvas(line * (len(order) + 3) + 6, width)
    largest = float(np.abs(terms[order]).max()) if len(order) else 1.0
    middle = width * 0.62
    for n, c in enumerate(order):
        y = line * (n + 1)
        outlined_label(band, f"ch {c:3d}: {total.inputs[c]:.2f} x {total.weights[c]:+.2f}", (3, y), 0.37)
        length = (width - middle - 6) / 2 * terms[c] / largest if largest > 0 else 0
        x0 = middle + (width - middle - 6) / 2
        color = tuple(int(v) for v in (POSITIVE_BGR if terms[c] >= 0 else NEGATIVE_BGR))
        cv2.rectangle(band, (round(min(x0, x0 + length)), y - 9), (round(max(x0, x0 + length)), y - 1), color, -1)
    y = line * (len(order) + 1) + 2
    outlined_label(band, f"sum of {len(terms)} terms {terms.sum():+.2f}, bias {total.bias:+.2f} = {total.logit:+.2f}", (3, y), 0.37)
    after = "sigmoid" if head.sigmoid else "no activation"
    outlined_label(band, f"{after} -> {total.value:.3f}; the {KEYPOINT_NAMES[keypoint]} heatmap at cell {cell}: "
           f"{heatmap_value:.3f}", (3, y + line), 0.37)
    return band


def fc_view(image_bgr: np.ndarray, poses: FramePoses, features: np.ndarray, head: HeadWeights, lab: LabRequest,
            width: int, info: ModelInfo) -> PanelView:
    """The heatmap head as a fully connected layer at one cell: the keypoint's heatmap over the
    frame with the cell marked (hover another cell), and below, the dot product of that cell's
    feature values with the head's weights, term by term."""
    keypoint = lab.keypoint
    heat = poses.heatmaps[keypoint]
    cell = lab.cell if lab.cell is not None and all(0 <= a < b for a, b in zip(lab.cell, heat.shape)) else None
    cell = cell or tuple(int(a) for a in np.unravel_index(int(heat.argmax()), heat.shape))
    total = head_sum(head, features, keypoint, cell)
    picture = heatmap_overlay(image_bgr, poses.heatmaps, poses.transform, keypoint, out_width=width)
    geometry = FrameGeometry(poses.transform, (picture.shape[1], picture.shape[0]))
    stride = info.output_stride
    corners = np.array([[cell[1] * stride - stride / 2, cell[0] * stride - stride / 2],
                        [cell[1] * stride + stride / 2, cell[0] * stride + stride / 2]])
    (x0, y0), (x1, y1) = geometry.to_picture(poses.transform.to_frame(corners)).tolist()
    cv2.rectangle(picture, (round(x0), round(y0)), (round(x1), round(y1)), (255, 255, 255), 1, cv2.LINE_AA)
    band = _bar_rows(total, keypoint, cell, float(heat[cell]), head, picture.shape[1])
    channels = features.shape[0]
    caption = (f"A fully connected layer flattens its input into one list and gives every number its own weight: "
               f"the output is their dot product. PoseNet's {KEYPOINT_NAMES[keypoint]} heatmap does that at every "
               f"cell: {channels} values of {head.feature} × {channels} weights + bias → sigmoid. Cell {cell}: "
               f"{total.value:.3f} (hover another cell)")
    activation = Activation(f"{KEYPOINT_NAMES[keypoint]} heat", heat, stride, info.feature_blocks[-1].receptive_field)
    return PanelView(np.concatenate([picture, band]), caption, LAB_VIEW, head.feature, geometry=geometry,
                     activation=activation)


def patch_mosaic(patches: tuple[Patch, ...], label: str) -> np.ndarray:
    """A channel's patches as a 3x3 mosaic (grey where none yet) with its label on top."""
    tiles = np.full((TOP_PATCHES, PATCH_PIXELS, PATCH_PIXELS, 3), 90, np.uint8)
    for n, patch in enumerate(patches[:TOP_PATCHES]):
        tiles[n] = patch.image
    mosaic = tile_grid(tiles, 3, 1)
    header = gap_canvas(14, mosaic.shape[1])
    outlined_label(header, label, (2, 11), 0.36)
    return np.concatenate([header, mosaic])


def patches_grid(channels: tuple[tuple[Patch, ...], ...], first: int, count: int, columns: int) -> np.ndarray:
    """Mosaics of channels first .. first + count - 1, `columns` a row."""
    chosen = range(first, min(len(channels), first + count))
    mosaics = [patch_mosaic(channels[c], f"ch {c}" + (f": {channels[c][0].value:.2f}" if channels[c] else ""))
               for c in chosen]
    if not mosaics:
        return gap_canvas(1, 1)
    return tile_grid(np.stack(mosaics), max(1, columns), 4)


def all_patches_picture(channels: tuple[tuple[Patch, ...], ...]) -> np.ndarray:
    """Every channel's mosaic in one about square grid (the PNG export)."""
    return patches_grid(channels, 0, len(channels), max(1, math.ceil(math.sqrt(len(channels)))))


def patches_view(top: TopPatches, lab: LabRequest, width: int) -> PanelView:
    """The patches each shown channel liked best this session, strongest first."""
    channels = top.channels()
    mosaic_w = 3 * PATCH_PIXELS + 2
    columns = max(1, (width + 4) // (mosaic_w + 4))
    first = min(max(0, lab.channel), max(0, len(channels) - 1))
    count = columns * 4
    block = top.block
    caption = (f"What each channel of {block.name} looks for: the {TOP_PATCHES} image patches ({block.receptive_field} px, "
               f"its receptive field) that excited it most over {top.frames} frames of this session, strongest "
               f"first; channels {first}-{min(len(channels), first + count) - 1} of {len(channels)} "
               "(save all channels for the rest)")
    return PanelView(patches_grid(channels, first, count, columns), caption, LAB_VIEW, block.name,
                     all_channels=lambda: all_patches_picture(channels))


def occlusion_live_view(image_bgr: np.ndarray, poses: FramePoses, keypoint: int, width: int) -> PanelView:
    """Before a run: the keypoint's heatmap over the frame, and what the button will do."""
    picture = heatmap_overlay(image_bgr, poses.heatmaps, poses.transform, keypoint, out_width=width)
    caption = (f"Which pixels matter for {KEYPOINT_NAMES[keypoint]}? 'Run occlusion' covers the paused or current "
               "frame with a grey square at each position in turn, runs the network each time, and colours each "
               "spot by how much the keypoint's score drops")
    return PanelView(picture, caption, LAB_VIEW)


def occlusion_view(image_bgr: np.ndarray, occlusion: Occlusion, width: int) -> PanelView:
    """The frame with each pixel coloured by the score drop of the squares covering it."""
    frame_h, frame_w = image_bgr.shape[:2]
    size = (width, max(1, round(frame_h * width / frame_w)))
    picture = shrink(image_bgr, size).copy()
    drops = np.clip(drop_heatmap(occlusion), 0, None)
    top = float(drops.max())
    heat = cv2.resize(drops / top if top > 0 else drops, size, interpolation=cv2.INTER_LINEAR)
    weight = 0.75 * np.clip(heat, 0, 1)
    picture = cv2.blendLinear(picture, colorize(np.rint(np.clip(heat, 0, 1) * 255).astype(np.uint8)), 1 - weight, weight)
    r, c = np.unravel_index(int(occlusion.drops.argmax()), occlusion.drops.shape)
    x0, y0, x1, y1 = (occlusion.boxes[r, c] + 0.5) * width / frame_w
    cv2.rectangle(picture, (round(x0), round(y0)), (round(x1), round(y1)), (255, 255, 255), 1, cv2.LINE_AA)
    rows, cols = occlusion.drops.shape
    caption = (f"Occlusion of {KEYPOINT_NAMES[occlusion.keypoint]} (score {occlusion.baseline:.2f} at cell "
               f"{occlusion.cell}): a grey {occlusion.patch}×{occlusion.patch} px square at {cols}×{rows} positions; bright = its score "
               f"drops most when that spot is hidden (up to {top:.2f}, white box)")
    return PanelView(picture, caption, LAB_VIEW)


# --- one session's lab ----------------------------------------------------------------------------


class LabSession:
    """What the lab keeps between frames (per engine: filters and head; per block and clearing:
    the top patches) and the view of each frame (`view`)."""

    def __init__(self):
        self._engine: PoseEngine | None = None
        self._filters: np.ndarray | None = None
        self._head: HeadWeights | None = None
        self.patches = TopPatches()
        self._patches_key: tuple | None = None

    def _read_engine(self, engine: PoseEngine) -> None:
        if engine is self._engine:
            return
        self._engine, self._filters = engine, learnt_filters(engine)
        try:
            self._head = head_weights(engine)
        except PoseAppError:
            self._head = None

    def _keep_patches(self, engine: PoseEngine, block: FeatureBlock, lab: LabRequest, image_bgr: np.ndarray,
                      poses: FramePoses, frame: int) -> None:
        key = (id(engine), block.name, lab.patches_epoch)
        if key != self._patches_key:
            self.patches.clear(block)
            self._patches_key = key
        self.patches.update(image_bgr, poses.features[block.name], poses.transform, frame)

    def view(self, engine: PoseEngine, image_bgr: np.ndarray, poses: FramePoses, request: PanelRequest,
             frame: int = 0) -> PanelView:
        """The lab's picture of this frame for `request.lab` (check compose.panel_ready first)."""
        self._read_engine(engine)
        lab, info = request.lab, engine.info
        width = request.picture_width(image_bgr)
        needed = lab.features(request.blocks or tuple(b.name for b in info.feature_blocks))
        block = next((b for b in info.feature_blocks if needed and b.name == needed[0]), None)
        if lab.part == "filter":
            features = poses.features.get(block.name) if block is not None else None
            return filter_view(image_bgr, lab, width, self._filters, features, poses.transform, block, request.height)
        if lab.part in ("pool", "patches") and block is not None:
            self._keep_patches(engine, block, lab, image_bgr, poses, frame)
            if lab.part == "pool":
                return pool_view(poses.features[block.name], block, lab, width, poses.transform)
            return patches_view(self.patches, lab, width)
        if lab.part == "fc" and block is not None and self._head is not None:
            return fc_view(image_bgr, poses, poses.features[block.name], self._head, lab, width, info)
        if lab.part == "fc":
            return PanelView(shrink(image_bgr, (width, max(1, round(image_bgr.shape[0] * width / image_bgr.shape[1])))),
                             "this model's heatmap head is not a 1x1 conv on a feature output", LAB_VIEW)
        return occlusion_live_view(image_bgr, poses, lab.keypoint, width)


class LabView(PanelViewKind):
    """The CNN lab's part `lab.part`, drawn by the worker's LabSession (kept between frames)."""

    name = LAB_VIEW
    label = "CNN lab: your filter, pooling, the heads, top patches, occlusion"

    def features(self, request: PanelRequest) -> tuple[str, ...]:
        return request.lab.features(request.blocks)

    def controls(self, request: PanelRequest) -> frozenset[str]:
        part = request.lab.part
        extra = {"pool": {"block"}, "patches": {"block"}, "fc": {"hover", "cell"}, "occlusion": {"occlusion"}}
        return frozenset({"lab", *extra.get(part, ())})

    def layers(self, request: PanelRequest) -> set[str]:
        heads = {"heatmaps"} if request.lab.part in ("fc", "occlusion") else set()
        return set(request.lab.features(request.blocks)) | heads

    def new_state(self) -> LabSession:
        return LabSession()

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        if context.engine is None:
            raise ValueError("the lab reads the engine's filters and head: its PanelContext needs the engine")
        session = context.state_of(self)
        return session.view(context.engine, image_bgr, poses, request, context.frame_index or 0)
