"""The pictures the window shows, built from a frame and its poses (numpy/OpenCV, no Qt).

The inference worker calls these for every frame (off the GUI thread); the window calls
`compose_view` once more for a full-resolution snapshot. Skeletons are drawn by
`pose_app.draw.render.draw_poses` only. `compose_panel` makes the feature-map dock's picture for each
of its views (PANEL_MODES, the network made visible with pose_app.explain) together with what
the dock needs to answer clicks and hovers without computing anything heavy: the tiles'
regions, the picture's geometry over the frame and the activation under the mouse (hover_at).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import (
    KEYPOINT_NAMES,
    NUM_PART_TREE_EDGES,
    PART_TREE_EDGES,
    SKELETON_EDGES,
)
from pose_app.draw.featuremaps import (
    GAP_COLOR_BGR,
    ChannelSelection,
    colorize,
    combined_heatmap,
    filled,
    grid_columns,
    heatmap_overlay,
    normalise_per_tile,
    select_channels,
    shrink,
    tile_grid,
)
from pose_app.draw.render import OverlayStyle, draw_poses, line_width, person_color
from pose_app.explain.decode_walk import WalkStep
from pose_app.explain.lab import DEFAULT_LAB, LabRequest
from pose_app.explain.network import (
    BlockStats,
    arrows_to_frame,
    block_statistics,
    cell_at_frame_point,
    cell_centre_in_frame,
    channel_grid,
    displacement_arrows,
    filter_tiles,
    offset_arrows,
    receptive_field_box,
)
from pose_app.inference.model_info import FeatureBlock, ModelInfo

# The feature-map dock's views (PanelRequest.mode).
PANEL_MODES = ("features", "heatmaps", "offsets", "displacements", "stats", "walk", "lab")
# Views drawn from the offset and displacement heads (kept by PoseEstimator.estimate(keep_heads=True)).
HEAD_FIELD_MODES = ("offsets", "displacements", "walk")
# At most this many offset arrows are drawn (the most confident cells): a low threshold must
# not bury the picture, or the frame rate, under arrows.
MAX_OFFSET_ARROWS = 600


@dataclass(frozen=True)
class PanelRequest:
    """What the feature panel shows; `mode` is one of PANEL_MODES:

    - "features": a block's channels as tiles (`how`, `count`, `start`); with `channel`, that
      channel blended over the frame (the inspector);
    - "heatmaps": keypoint heatmaps over the frame (`keypoint` None = all combined by max);
    - "offsets": arrows from each heatmap cell scoring >= `min_score` to where its offset puts the
      keypoint (`keypoint` None = all keypoints);
    - "displacements": arrows along the part tree's edges from each detected keypoint scoring
      >= `min_score` (`edge` None = all 16 edges);
    - "stats": every block's activation statistics (needs all of `blocks`: costs more);
    - "walk": the multi-person decoding of the frame, step `walk_step` while the frame shown is
      `walk_frame` (its index), else the final poses;
    - "lab": the CNN lab's part `lab.part` (explain.lab_view), drawn by lab_view.LabSession.
    """

    mode: str = "features"
    block: str = ""
    how: ChannelSelection = "strongest"
    count: int = 16
    start: int = 0
    keypoint: int | None = None
    width: int = 360  # pixels of the pictures over the frame (the grid keeps one pixel per activation)
    channel: int | None = None
    edge: int | None = None
    min_score: float = 0.5
    blocks: tuple[str, ...] = ()  # every feature output of the model
    walk_frame: int | None = None
    walk_step: int = 0
    lab: LabRequest = DEFAULT_LAB

    @property
    def features(self) -> tuple[str, ...]:
        """Feature outputs to ask the engine for: the block view's one, all for the statistics,
        those the lab's part reads."""
        if self.mode == "features":
            return (self.block,) if self.block else ()
        if self.mode == "lab":
            return self.lab.features(self.blocks)
        return tuple(self.blocks) if self.mode == "stats" else ()

    @property
    def head_fields(self) -> bool:
        """Whether the view reads the offsets and displacements, besides the heatmaps."""
        return self.mode in HEAD_FIELD_MODES


def panel_ready(request: PanelRequest, poses: FramePoses) -> bool:
    """Whether `poses` hold everything the requested view is drawn from."""
    if poses.heatmaps is None or poses.transform is None:
        return False
    if request.head_fields and "offsets" not in poses.heads:
        return False
    if request.mode == "features" and not request.block:
        return False  # no model yet: no block chosen
    return all(name in poses.features for name in request.features)


@dataclass(frozen=True)
class FrameGeometry:
    """How a panel picture lies over the frame: the frame scaled by size[0] / frame width, then
    flipped left-right when `mirror`. Pixel-centre coordinates, as everywhere."""

    transform: FrameTransform
    size: tuple[int, int]  # (w, h) of the picture
    mirror: bool = False

    @property
    def scale(self) -> float:
        """Picture pixels per frame pixel."""
        return self.size[0] / self.transform.frame_size[0]

    def to_frame(self, xy) -> np.ndarray:
        """(..., 2) picture pixels -> frame pixels."""
        xy = np.array(xy, np.float64)
        if self.mirror:
            xy[..., 0] = self.size[0] - 1 - xy[..., 0]
        return (xy + 0.5) / self.scale - 0.5

    def to_picture(self, xy) -> np.ndarray:
        """(..., 2) frame pixels -> picture pixels."""
        xy = (np.array(xy, np.float64) + 0.5) * self.scale - 0.5
        if self.mirror:
            xy[..., 0] = self.size[0] - 1 - xy[..., 0]
        return xy


@dataclass(frozen=True)
class Activation:
    """The map a hover reads: `values (H, W)` of a layer whose cell (i, j) sits at input pixel
    (j * output_stride, i * output_stride) and sees `receptive_field` input pixels."""

    label: str
    values: np.ndarray
    output_stride: int
    receptive_field: int


@dataclass(frozen=True)
class Hover:
    """The activation under the mouse: its cell, value, where the cell sits and the square of
    the frame it sees (frame pixels; `picture_box` in the picture's pixels, box edges)."""

    label: str
    cell: tuple[int, int]
    value: float
    centre: tuple[float, float]
    box: tuple[float, float, float, float]
    picture_box: tuple[float, float, float, float]

    def text(self) -> str:
        x0, y0, x1, y1 = self.box
        return (f"{self.label} cell ({self.cell[0]}, {self.cell[1]}) = {self.value:.3g} · at frame pixel "
                f"({self.centre[0]:.0f}, {self.centre[1]:.0f}) · sees {x1 - x0:.0f}×{y1 - y0:.0f} px of the frame")


@dataclass(frozen=True)
class PanelView:
    """One picture of the dock (BGR; None for the statistics, which the dock paints from
    `stats`), its caption, and what clicks and hovers read without computing anything heavy."""

    picture: np.ndarray | None
    caption: str
    mode: str = "features"
    layer: str = ""  # the layer whose channels "save all channels" writes ("" for none)
    regions: tuple[tuple[int, int, int, int, int], ...] = ()  # tiles: x0, y0, x1, y1 (exclusive), channel
    geometry: FrameGeometry | None = None  # pictures over the frame
    activation: Activation | None = None  # what a hover reads
    stats: dict[str, BlockStats] | None = None
    arrows: np.ndarray | None = None  # (N, 4) x0, y0, x1, y1 frame pixels of the arrows drawn
    step: WalkStep | None = None  # the decoding walk's step shown
    step_index: int = -1
    steps: int = 0
    all_channels: Callable[[], np.ndarray] | None = None  # "save all channels" of a view that is not a layer's maps


def region_at(view: PanelView, picture_xy) -> int | None:
    """The channel of the tile at picture pixel (x, y), None between or outside tiles."""
    x, y = picture_xy
    for x0, y0, x1, y1, channel in view.regions:
        if x0 - 0.5 <= x < x1 - 0.5 and y0 - 0.5 <= y < y1 - 0.5:
            return channel
    return None


def hover_at(view: PanelView, picture_xy) -> Hover | None:
    """The activation at picture pixel (x, y) of a picture over the frame: its cell, value and
    receptive field; None off the frame or without an activation."""
    activation, geometry = view.activation, view.geometry
    if activation is None or geometry is None:
        return None
    frame_x, frame_y = geometry.to_frame(picture_xy).tolist()
    stride = activation.output_stride
    cell = cell_at_frame_point(stride, activation.values.shape, (frame_x, frame_y), geometry.transform)
    if cell is None:
        return None
    layer = FeatureBlock(activation.label, -1, 1, stride, 1, activation.receptive_field)
    box = receptive_field_box(layer, cell, geometry.transform)
    (ax, y0), (bx, y1) = geometry.to_picture([box[:2], box[2:]]).tolist()
    return Hover(
        activation.label, cell, float(activation.values[cell]), cell_centre_in_frame(stride, cell, geometry.transform),
        box, (min(ax, bx), y0, max(ax, bx), y1),
    )


def scale_poses(poses: FramePoses, scale: float) -> FramePoses:
    """The poses in the pixels of the frame resized by `scale` (pixel-centre convention)."""
    if scale == 1.0:
        return poses
    keypoints = poses.keypoints.copy()
    keypoints[..., :2] = (keypoints[..., :2] + 0.5) * scale - 0.5
    return dataclasses.replace(poses, keypoints=keypoints)


def fit_scale(frame_size: tuple[int, int], max_size: tuple[int, int] | None) -> float:
    """Downscale factor (<= 1) that fits a (w, h) frame into max_size (w, h); 1 without one."""
    if max_size is None or max_size[0] <= 0 or max_size[1] <= 0:
        return 1.0
    return min(1.0, max_size[0] / frame_size[0], max_size[1] / frame_size[1])


def compose_view(
    image_bgr: np.ndarray,
    poses: FramePoses,
    style: OverlayStyle,
    *,
    mirror: bool = False,
    max_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The displayed picture: the frame (shrunk to fit max_size, flipped when mirrored) with the
    skeletons drawn on it. Shrinking before drawing keeps lines crisp and the GUI's painting
    cheap; inference has already run on the full, unmirrored frame."""
    height, width = image_bgr.shape[:2]
    scale = fit_scale((width, height), max_size)
    view = shrink(image_bgr, (max(1, round(width * scale)), max(1, round(height * scale))))
    # cv2.flip is many times faster than copying a reversed numpy view; either way a new array.
    view = cv2.flip(view, 1) if mirror else (view.copy() if view is image_bgr else view)
    draw_poses(view, scale_poses(poses, scale), style, mirror=mirror)
    return view


def compose_panel(
    image_bgr: np.ndarray,
    poses: FramePoses,
    request: PanelRequest,
    *,
    mirror: bool,
    info: ModelInfo,
    filters: np.ndarray | None = None,
    walk: list[WalkStep] | None = None,
    walk_step: int = -1,
) -> PanelView:
    """The dock's picture for `request` (check panel_ready first). `filters`: the first conv's
    kernels (C, 3, 3, 3), drawn beside its maps; `walk`: the frame's decoding walk, shown at
    `walk_step` (-1: the final poses)."""
    width = max(1, min(request.width, image_bgr.shape[1]))
    if request.mode == "features":
        features = poses.features[request.block]
        block = _feature_block(info, request.block)
        first = filters if block.block == 0 and filters is not None and len(filters) == len(features) else None
        if request.channel is not None and 0 <= request.channel < len(features):
            return _inspect_channel(image_bgr, poses, block, request.channel, width, mirror, first)
        return _feature_tiles(features, request, mirror, first)
    if request.mode == "heatmaps":
        return _heatmap_view(image_bgr, poses, request.keypoint, width, mirror, info)
    if request.mode == "offsets":
        return _offsets_view(image_bgr, poses, request, width, mirror, info)
    if request.mode == "displacements":
        return _displacements_view(image_bgr, poses, request, width, mirror, info)
    if request.mode == "stats":
        return _stats_view(poses, info)
    if request.mode == "walk":
        return _walk_view(image_bgr, poses.transform, walk or [], walk_step, width, mirror)
    if request.mode == "lab":
        raise ValueError("the lab's pictures are drawn by explain.lab_view.LabSession, which keeps its state")
    raise ValueError(f"unknown panel mode {request.mode!r}; expected one of {PANEL_MODES}")


def _feature_block(info: ModelInfo, name: str) -> FeatureBlock:
    return next(block for block in info.feature_blocks if block.name == name)


def _last_block(info: ModelInfo) -> FeatureBlock:
    return info.feature_blocks[-1]


def filter_column(filters: np.ndarray, height: int, mirror: bool = False) -> np.ndarray:
    """(C, height, k*scale, 3) BGR tiles of 3x3 RGB kernels (C, 3, k, k), each scaled by its own
    min..max (explain.filter_tiles) as large as fits `height`, centred on the gap colour."""
    count, _, k, _ = filters.shape
    scale = max(1, height // k)
    column = filter_tiles(filters, scale=scale, columns=1, gap=0).reshape(count, k * scale, k * scale, 3)
    if mirror:
        column = column[:, :, ::-1]
    tiles = filled((count, max(height, k * scale), k * scale, 3), GAP_COLOR_BGR)
    top = (tiles.shape[1] - k * scale) // 2
    tiles[:, top:top + k * scale] = column
    return tiles


def _feature_tiles(features: np.ndarray, request: PanelRequest, mirror: bool, filters: np.ndarray | None) -> PanelView:
    """A block's chosen channels as tiles (one pixel per activation); for the first conv each
    tile is its 3x3 RGB kernel beside the map it makes."""
    channels = select_channels(features, request.how, request.count, request.start)
    maps = features[channels]
    if mirror:
        maps = maps[:, :, ::-1]
    tiles = colorize(normalise_per_tile(maps))
    gap = 1
    if filters is not None and len(channels):
        kernels = filter_column(filters[channels], tiles.shape[1], mirror)
        spacer = filled((len(channels), tiles.shape[1], gap, 3), GAP_COLOR_BGR)
        tiles = np.concatenate([kernels[:, : tiles.shape[1]], spacer, tiles], axis=2)
    count, tile_h, tile_w = tiles.shape[:3]
    columns = grid_columns(count, tile_h, tile_w)
    grid = tile_grid(tiles, columns, gap) if count else np.zeros((1, 1, 3), np.uint8)
    regions = tuple(
        ((k % columns) * (tile_w + gap), (k // columns) * (tile_h + gap),
         (k % columns) * (tile_w + gap) + tile_w, (k // columns) * (tile_h + gap) + tile_h, int(c))
        for k, c in enumerate(channels)
    )
    if request.how == "strongest":
        caption = f"{request.block}: {len(channels)} strongest of {features.shape[0]} channels ({_channel_list_text(channels)})"
    else:
        caption = f"{request.block}: channels {_channel_list_text(channels)} of {features.shape[0]}"
    if filters is not None:
        caption += "; each 3×3 RGB filter of the first conv beside the map it makes"
    caption += " · click a tile to inspect it over the frame"
    return PanelView(grid, caption, "features", request.block, regions)


def _over_frame(image_bgr: np.ndarray, transform: FrameTransform, width: int) -> tuple[np.ndarray, FrameGeometry]:
    """A copy of the frame scaled to `width` to draw on, and its (unmirrored) geometry."""
    frame_h, frame_w = image_bgr.shape[:2]
    scale = width / frame_w
    size = (max(1, round(frame_w * scale)), max(1, round(frame_h * scale)))
    picture = shrink(image_bgr, size)
    return (picture.copy() if picture is image_bgr else picture), FrameGeometry(transform, size)


def _mirrored(picture: np.ndarray, geometry: FrameGeometry, mirror: bool) -> tuple[np.ndarray, FrameGeometry]:
    if not mirror:
        return picture, geometry
    return cv2.flip(picture, 1), dataclasses.replace(geometry, mirror=True)


def _inspect_channel(image_bgr, poses: FramePoses, block: FeatureBlock, channel: int, width: int, mirror: bool,
                     filters: np.ndarray | None) -> PanelView:
    """One channel blended over the frame (each cell where the letterbox puts it), for hovering."""
    values = poses.features[block.name][channel].astype(np.float32, copy=False)
    top = float(values.max())
    shown = values / top if top > 0 else np.zeros_like(values)
    picture = heatmap_overlay(image_bgr, shown[None], poses.transform, 0, out_width=width, mirror=mirror)
    if filters is not None:  # the kernel that makes this map, in the corner
        kernel = filter_column(filters[channel:channel + 1], max(24, picture.shape[0] // 6), mirror)[0]
        height, kernel_w = kernel.shape[:2]
        if height + 4 <= picture.shape[0] and kernel_w + 4 <= picture.shape[1]:
            picture[2:2 + height, 2:2 + kernel_w] = kernel
    i, j = np.unravel_index(int(values.argmax()), values.shape)
    zeros = float((values == 0).mean())
    caption = (f"{block.name} channel {channel} of {poses.features[block.name].shape[0]} over the frame: max "
               f"{top:.2f} at cell ({i}, {j}), {zeros:.0%} zeros (ReLU6); hover a point for its value and "
               f"receptive field ({block.receptive_field} px)")
    if filters is not None:
        caption += "; top left: the 3×3 RGB filter that makes it"
    geometry = FrameGeometry(poses.transform, (picture.shape[1], picture.shape[0]), mirror)
    activation = Activation(f"{block.name} ch {channel}", values, block.stride, block.receptive_field)
    return PanelView(picture, caption, "features", block.name, geometry=geometry, activation=activation)


def _heat_activation(poses: FramePoses, keypoint: int | None, info: ModelInfo) -> Activation:
    label = "heat (max)" if keypoint is None else KEYPOINT_NAMES[keypoint]
    values = combined_heatmap(poses.heatmaps, keypoint)
    return Activation(label, values, info.output_stride, _last_block(info).receptive_field)


def _heatmap_view(image_bgr, poses: FramePoses, keypoint: int | None, width: int, mirror: bool,
                  info: ModelInfo) -> PanelView:
    picture = heatmap_overlay(image_bgr, poses.heatmaps, poses.transform, keypoint, out_width=width, mirror=mirror)
    which = "all keypoints (max)" if keypoint is None else KEYPOINT_NAMES[keypoint]
    geometry = FrameGeometry(poses.transform, (picture.shape[1], picture.shape[0]), mirror)
    return PanelView(picture, f"heatmap: {which}", "heatmaps", "heatmaps", geometry=geometry,
                     activation=_heat_activation(poses, keypoint, info))


def keypoint_color(keypoint: int) -> tuple[int, int, int]:
    """A distinct BGR colour per keypoint (the hues person ids get)."""
    return person_color(keypoint)


def _arrow(picture: np.ndarray, start, end, color, thickness: int = 1) -> None:
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    if not (math.isfinite(length) and length < 1e5):
        return
    shift = 4
    a = (round(x0 * 16), round(y0 * 16))
    b = (round(x1 * 16), round(y1 * 16))
    cv2.arrowedLine(picture, a, b, color, thickness, cv2.LINE_AA, shift, tipLength=min(0.5, 5.0 / max(length, 1e-6)))


def _dot(picture: np.ndarray, xy, radius: float, color, thickness: int = -1) -> None:
    x, y = xy
    if math.isfinite(x) and math.isfinite(y) and abs(x) < 1e5 and abs(y) < 1e5:
        cv2.circle(picture, (round(x * 16), round(y * 16)), round(radius * 16), color, thickness, cv2.LINE_AA, 4)


def _offsets_view(image_bgr, poses: FramePoses, request: PanelRequest, width: int, mirror: bool,
                  info: ModelInfo) -> PanelView:
    """Arrows from each confident heatmap cell to where its offset puts the keypoint."""
    stride = info.output_stride
    arrows, ids = offset_arrows(poses.heatmaps, poses.heads["offsets"], stride, request.min_score, request.keypoint, labels=True)
    total = len(arrows)
    if total > MAX_OFFSET_ARROWS:
        rows, cols = np.rint(arrows[:, 1] / stride).astype(int), np.rint(arrows[:, 0] / stride).astype(int)
        keep = np.sort(np.argsort(-poses.heatmaps[ids, rows, cols], kind="stable")[:MAX_OFFSET_ARROWS])
        arrows, ids = arrows[keep], ids[keep]
    picture, geometry = _over_frame(image_bgr, poses.transform, width)
    framed = arrows_to_frame(arrows, poses.transform)
    ends = geometry.to_picture(framed.reshape(-1, 2, 2))
    for (start, end), k in zip(ends, ids):
        _arrow(picture, start, end, keypoint_color(int(k)))
    for start in ends[:, 0]:  # the cells on top, so each arrow's start stays visible
        _dot(picture, start, 1.5, (255, 255, 255))
    picture, geometry = _mirrored(picture, geometry, mirror)
    which = "all keypoints" if request.keypoint is None else KEYPOINT_NAMES[request.keypoint]
    shown = f"{len(arrows)} strongest of {total}" if total > len(arrows) else f"{total}"
    caption = (f"offsets ({which}): {shown} arrows from heatmap cells scoring >= {request.min_score:g} (white "
               f"dots, one every {stride} input px) to where the offset head puts the keypoint")
    return PanelView(picture, caption, "offsets", "offsets", geometry=geometry,
                     activation=_heat_activation(poses, request.keypoint, info), arrows=framed)


# Displacement arrows: forward (parent -> child) orange, backward (child -> parent) cyan (BGR).
FORWARD_COLOR, BACKWARD_COLOR = (0, 165, 255), (255, 255, 0)


def _displacements_view(image_bgr, poses: FramePoses, request: PanelRequest, width: int, mirror: bool,
                        info: ModelInfo) -> PanelView:
    """Arrows along the part tree from each detected keypoint, read from the displacement heads."""
    keypoints = poses.keypoints.astype(np.float32, copy=True)
    keypoints[..., :2] = poses.transform.to_input(keypoints[..., :2])
    arrows, _, forward = displacement_arrows(
        keypoints, poses.heads["displacement_fwd"], poses.heads["displacement_bwd"], info.output_stride, request.min_score,
        request.edge, labels=True,
    )
    picture, geometry = _over_frame(image_bgr, poses.transform, width)
    framed = arrows_to_frame(arrows, poses.transform)
    ends = geometry.to_picture(framed.reshape(-1, 2, 2))
    for (start, end), is_forward in zip(ends, forward):
        _arrow(picture, start, end, FORWARD_COLOR if is_forward else BACKWARD_COLOR)
    confident = poses.keypoints[poses.keypoints[..., 2] >= request.min_score][:, :2]
    for point in geometry.to_picture(confident.reshape(-1, 2)):
        _dot(picture, point, 2.5, (255, 255, 255))
    picture, geometry = _mirrored(picture, geometry, mirror)
    if request.edge is None:
        which = f"all {NUM_PART_TREE_EDGES} edges"
    else:
        parent, child = PART_TREE_EDGES[request.edge]
        which = f"{KEYPOINT_NAMES[parent]} → {KEYPOINT_NAMES[child]}"
    caption = (f"displacements ({which}): {int(forward.sum())} forward (orange, parent → child) and "
               f"{int((~forward).sum())} backward (cyan, child → parent) from {len(confident)} keypoints scoring "
               f">= {request.min_score:g} (white dots)")
    return PanelView(picture, caption, "displacements", "", geometry=geometry, arrows=framed)


def _stats_view(poses: FramePoses, info: ModelInfo) -> PanelView:
    names = [block.name for block in info.feature_blocks if block.name in poses.features]
    stats = block_statistics({name: poses.features[name] for name in names})
    caption = (f"activations of {len(stats)} blocks in this frame: mean, share of zeros (cut by ReLU6) and max; "
               "computing all feature outputs costs about 3-4x the inference time")
    return PanelView(None, caption, "stats", stats=stats)


# Walk steps: what a step's points look like (BGR).
_ROOT_RING, _SUPPRESSED, _DROPPED = (255, 255, 255), (60, 60, 255), (160, 160, 160)
_DISPLACED, _REFINED = (0, 255, 255), (255, 0, 255)


def _draw_skeletons(picture: np.ndarray, poses_xy: np.ndarray, scores: np.ndarray) -> None:
    """Partial poses (P, 17, 2) picture pixels, NaN where not reached; bones between reached
    keypoints, in each pose's colour."""
    width = line_width(picture.shape)
    for p, (pose, score) in enumerate(zip(poses_xy, scores)):
        color = person_color(p)
        reached = np.isfinite(pose).all(axis=1) & (score > 0)
        for a, b in SKELETON_EDGES:
            if reached[a] and reached[b]:
                cv2.line(picture, (round(pose[a, 0] * 16), round(pose[a, 1] * 16)),
                         (round(pose[b, 0] * 16), round(pose[b, 1] * 16)), color, width, cv2.LINE_AA, 4)
        for point in pose[reached]:
            _dot(picture, point, width + 1.5, color)


def draw_walk_step(picture: np.ndarray, step: WalkStep, geometry: FrameGeometry) -> None:
    """Draw one step of the decoding walk (frame pixels) on `picture` (unmirrored geometry)."""
    keypoints = step.keypoints
    if len(keypoints):
        _draw_skeletons(picture, geometry.to_picture(keypoints[..., :2]), keypoints[..., 2])
    points = geometry.to_picture(step.points.reshape(-1, 2))
    arrows = geometry.to_picture(step.arrows.reshape(-1, 2, 2))
    if step.kind == "queue":
        for point, k in zip(points, step.point_keypoints):
            _dot(picture, point, 2.0, keypoint_color(int(k)))
    elif step.kind in ("root", "pose", "keypoint"):
        for point, k in zip(points, step.point_keypoints):
            _dot(picture, point, 6.0 if step.kind == "root" else 4.0, _ROOT_RING, 1)
            _dot(picture, point, 2.5, keypoint_color(int(k)))
    elif step.kind in ("suppress", "drop"):
        color = _SUPPRESSED if step.kind == "suppress" else _DROPPED
        for x, y in points:
            if np.isfinite([x, y]).all():
                cv2.drawMarker(picture, (round(x), round(y)), color, cv2.MARKER_TILTED_CROSS, 8, 1, cv2.LINE_AA)
    for n, (start, end) in enumerate(arrows):
        if step.kind == "edge":
            _arrow(picture, start, end, _DISPLACED if n == 0 else _REFINED, 2 if n == 0 else 1)
        else:
            _arrow(picture, start, end, _SUPPRESSED if step.kind == "suppress" else _DISPLACED)
    if step.kind == "edge" and len(points):
        _dot(picture, points[-1], 3.0, keypoint_color(int(step.keypoint)))


def _walk_view(image_bgr, transform: FrameTransform, walk: list[WalkStep], walk_step: int, width: int,
               mirror: bool) -> PanelView:
    picture, geometry = _over_frame(image_bgr, transform, width)
    if not walk:
        return PanelView(picture, "no decoding to show", "walk", geometry=geometry)
    index = walk_step if 0 <= walk_step < len(walk) else len(walk) - 1
    step = walk[index]
    draw_walk_step(picture, step, geometry)
    picture, geometry = _mirrored(picture, geometry, mirror)
    caption = f"step {index + 1} of {len(walk)}: {step.caption}"
    if walk_step < 0:
        caption += " · the full-frame pass's decoding (before crops refine each person); pause and press N to walk through it"
    return PanelView(picture, caption, "walk", geometry=geometry, step=step, step_index=index, steps=len(walk))


def _channel_list_text(channels: np.ndarray, shown: int = 8) -> str:
    text = ", ".join(str(c) for c in channels[:shown])
    return text + (", ..." if len(channels) > shown else "")


# --- pictures for teaching (PNG exports) -------------------------------------------------------

_ASCII = {"×": "x", "→": "->", "·": "-", "≥": ">=", "…": "...", "◀": "<", "▶": ">", "½": "1/2"}
CAPTION_FONT, CAPTION_SCALE, CAPTION_LINE = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 18


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only."""
    for char, plain in _ASCII.items():
        text = text.replace(char, plain)
    return text.encode("ascii", "replace").decode("ascii")


def caption_lines(text: str, width: int) -> list[str]:
    """`text` (ASCII-fied) broken into lines that fit `width` pixels in the caption font."""
    lines, line = [], ""
    for word in _ascii(text).split():
        candidate = f"{line} {word}".strip()
        if line and cv2.getTextSize(candidate, CAPTION_FONT, CAPTION_SCALE, 1)[0][0] > width - 8:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + ([line] if line else [])


def teaching_picture(view: PanelView, hover: Hover | None = None) -> np.ndarray:
    """The dock's picture as a PNG for teaching: the hover's receptive-field square drawn on it and
    the caption (and the hovered value) written in a band below. Size: the picture's width, its
    height plus CAPTION_LINE per caption line + 8."""
    if view.picture is None:
        raise ValueError("this view has no picture (the statistics chart is painted by the dock)")
    picture = view.picture.copy()
    text = view.caption
    if hover is not None:
        x0, y0, x1, y1 = hover.picture_box
        cv2.rectangle(picture, (round(x0 + 0.5), round(y0 + 0.5)), (round(x1 - 0.5), round(y1 - 0.5)),
                      (0, 230, 255), 1, cv2.LINE_AA)
        text += " | " + hover.text()
    lines = caption_lines(text, picture.shape[1])
    band = np.full((CAPTION_LINE * len(lines) + 8, picture.shape[1], 3), 32, np.uint8)
    for n, line in enumerate(lines):
        cv2.putText(band, line, (4, CAPTION_LINE * (n + 1)), CAPTION_FONT, CAPTION_SCALE, (235, 235, 235), 1,
                    cv2.LINE_AA)
    return np.concatenate([picture, band])


def all_channels_picture(values: np.ndarray) -> np.ndarray:
    """Every channel of a layer's output (C, H, W) as one labelled grid (explain.channel_grid),
    grid_columns(C, H, W) tiles a row: about square."""
    count, height, width = values.shape
    return channel_grid(values, grid_columns(count, height, width))
