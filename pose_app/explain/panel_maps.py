"""The dock's views of the network's maps (numpy/OpenCV, no Qt): a block's channels as tiles
or one channel over the frame ("features"), the keypoint heatmaps over the frame ("heatmaps")
and every block's activation statistics ("stats"). Registered in explain/compose.py.
"""

from __future__ import annotations

import numpy as np

from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.draw.featuremaps import (
    GAP_COLOR_BGR,
    colorize,
    combined_heatmap,
    filled,
    grid_columns,
    heatmap_overlay,
    normalise_per_tile,
    select_channels,
    tile_grid,
)
from pose_app.explain.network import block_statistics, filter_tiles
from pose_app.explain.panel import (
    Activation,
    FrameGeometry,
    PanelContext,
    PanelRequest,
    PanelView,
    PanelViewKind,
    feature_block,
)
from pose_app.inference.model_info import FeatureBlock, ModelInfo


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


def _channel_list_text(channels: np.ndarray, shown: int = 8) -> str:
    text = ", ".join(str(c) for c in channels[:shown])
    return text + (", ..." if len(channels) > shown else "")


class FeaturesView(PanelViewKind):
    """A block's channels as tiles (`how`, `count`, `start`); with `channel`, that channel blended
    over the frame (the inspector). The first conv's tiles show each 3x3 RGB filter beside its map."""

    name = "features"
    label = "Feature maps of a block"
    opened_by_blocks = True

    def features(self, request: PanelRequest) -> tuple[str, ...]:
        return (request.block,) if request.block else ()

    def ready(self, request: PanelRequest, poses: FramePoses) -> bool:
        return bool(request.block)  # no model yet: no block chosen

    def controls(self, request: PanelRequest) -> frozenset[str]:
        back = {"back"} if request.channel is not None else set()
        return frozenset({"block", "channels", "hover", *back})

    def layers(self, request: PanelRequest) -> set[str]:
        return {request.block}

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        features = poses.features[request.block]
        block = feature_block(context.info, request.block)
        # The first conv's kernels are read only for its block (once per engine, by the caller).
        filters = context.filters() if request.block == context.info.feature_blocks[0].name else None
        first = filters if block.block == 0 and filters is not None and len(filters) == len(features) else None
        if request.channel is not None and 0 <= request.channel < len(features):
            return self._inspect_channel(image_bgr, poses, block, request.channel, request.picture_width(image_bgr),
                                         context.mirror, first)
        return self._tiles(features, request, context.mirror, first)

    def _tiles(self, features: np.ndarray, request: PanelRequest, mirror: bool, filters: np.ndarray | None) -> PanelView:
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
            caption = (f"{request.block}: {len(channels)} strongest of {features.shape[0]} channels "
                       f"({_channel_list_text(channels)})")
        else:
            caption = f"{request.block}: channels {_channel_list_text(channels)} of {features.shape[0]}"
        if filters is not None:
            caption += "; each 3×3 RGB filter of the first conv beside the map it makes"
        caption += " · click a tile to inspect it over the frame"
        return PanelView(grid, caption, self.name, request.block, regions)

    def _inspect_channel(self, image_bgr, poses: FramePoses, block: FeatureBlock, channel: int, width: int,
                         mirror: bool, filters: np.ndarray | None) -> PanelView:
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
        return PanelView(picture, caption, self.name, block.name, geometry=geometry, activation=activation)


def heat_activation(poses: FramePoses, keypoint: int | None, info: ModelInfo) -> Activation:
    """The heatmap a hover reads: one keypoint's, or all combined by max (None)."""
    label = "heat (max)" if keypoint is None else KEYPOINT_NAMES[keypoint]
    values = combined_heatmap(poses.heatmaps, keypoint)
    return Activation(label, values, info.output_stride, info.feature_blocks[-1].receptive_field)


class HeatmapsView(PanelViewKind):
    """Keypoint heatmaps over the frame (`keypoint` None = all combined by max)."""

    name = "heatmaps"
    label = "Keypoint heatmaps over the frame"
    opened_by = ("heatmaps",)

    def controls(self, request: PanelRequest) -> frozenset[str]:
        return frozenset({"keypoint", "hover"})

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        keypoint, mirror = request.keypoint, context.mirror
        picture = heatmap_overlay(image_bgr, poses.heatmaps, poses.transform, keypoint,
                                  out_width=request.picture_width(image_bgr), mirror=mirror)
        which = "all keypoints (max)" if keypoint is None else KEYPOINT_NAMES[keypoint]
        geometry = FrameGeometry(poses.transform, (picture.shape[1], picture.shape[0]), mirror)
        return PanelView(picture, f"heatmap: {which}", self.name, "heatmaps", geometry=geometry,
                         activation=heat_activation(poses, keypoint, context.info))


class StatsView(PanelViewKind):
    """Every block's activation statistics (needs all of `blocks`: costs more); the dock paints
    them as a chart."""

    name = "stats"
    label = "Statistics of all blocks (costs more: all 14 outputs)"
    note = ("This chart needs the outputs of all 14 blocks on every frame: it costs about 3-4x the inference "
            "time. Click a block's bars to see its maps.")

    def features(self, request: PanelRequest) -> tuple[str, ...]:
        return tuple(request.blocks)

    def controls(self, request: PanelRequest) -> frozenset[str]:
        return frozenset({"chart"})

    def layers(self, request: PanelRequest) -> set[str]:
        return set(request.blocks)

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        names = [block.name for block in context.info.feature_blocks if block.name in poses.features]
        stats = block_statistics({name: poses.features[name] for name in names})
        caption = (f"activations of {len(stats)} blocks in this frame: mean, share of zeros (cut by ReLU6) and max; "
                   "computing all feature outputs costs about 3-4x the inference time")
        return PanelView(None, caption, self.name, stats=stats)
