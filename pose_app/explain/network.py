"""The network made visible: layer cards, cell <-> frame geometry, heads as arrows, block
statistics, first-conv filters and channel grids (numpy/OpenCV, no Qt).

The computational core of the feature-map dock: plain numpy in, numpy arrays and frozen
dataclasses out. Coordinates follow docs/architecture.md: *input pixels* are the letterboxed
network input, *frame pixels* the original frame, (0, 0) the centre of the top-left pixel; a
cell (i, j) of a map whose output stride is s sits at input pixel (x, y) = (j * s, i * s)
(docs/network.md). Boxes are (x0, y0, x1, y1) pixel edges. The decoding walk lives in
decode_walk.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import onnx

from pose_app.core.geometry import FrameTransform
from pose_app.core.skeleton import NUM_KEYPOINTS, NUM_PART_TREE_EDGES, PART_TREE_EDGES
from pose_app.draw.featuremaps import (
    GAP_COLOR_BGR,
    colorize,
    grid_columns,
    normalise_per_tile,
    tile_grid,
)
from pose_app.errors import PoseAppError
from pose_app.explain.onnx_graph import OnnxGraph
from pose_app.inference.decode import nearest_cell_of_point
from pose_app.inference.engine import PoseEngine
from pose_app.inference.families.posenet import HEAD_OUTPUTS
from pose_app.inference.model_info import INPUT_NAME, FeatureBlock, ModelInfo

# One plain-language line per idea a layer card can illustrate (for tooltips and a legend).
CONCEPTS = {
    "conv": "Convolution: a small filter slides over the image; each output cell is a weighted sum "
    "of the patch under it.",
    "depthwise": "Depthwise 3x3 conv: one filter per channel; it looks at space but does not mix channels.",
    "pointwise": "Pointwise 1x1 conv: at each cell it mixes all channels into new ones; it does not look "
    "at neighbours.",
    "relu6": "ReLU6: negative values become 0 and values above 6 become 6; a zero means 'nothing of this "
    "here'.",
    "stride2": "Stride 2: the filter moves 2 pixels at a time, so the output has half the width and height.",
    "dilation": "Dilation: the 3x3 taps are spread apart, so the filter sees further without lowering the "
    "resolution.",
    "receptive_field": "Receptive field: the square of input pixels that can influence one cell.",
    "head": "Head: a 1x1 conv on the last block that makes the per-cell predictions the decoder reads.",
}

HEAD_CHANNELS = dict(zip(HEAD_OUTPUTS, (NUM_KEYPOINTS, 2 * NUM_KEYPOINTS) + (2 * NUM_PART_TREE_EDGES,) * 2))
HEAD_CAPTIONS = {
    "heatmaps": "1x1 conv -> 17 heatmaps: the probability (sigmoid) that each keypoint is near this cell",
    "offsets": "1x1 conv -> 34 offsets (17 y, 17 x): from the cell to the exact keypoint, in input pixels",
    "displacement_fwd": "1x1 conv -> 32 displacements (16 y, 16 x): from a parent keypoint to the same "
    "person's child",
    "displacement_bwd": "1x1 conv -> 32 displacements (16 y, 16 x): from a child keypoint back to its parent",
}


@dataclass(frozen=True)
class LayerCard:
    """One layer of the network, for the network strip and the channel inspector."""

    name: str  # "image", the feature output ("feature_0" ... "feature_13") or the head's output
    kind: str  # "input" | "conv" | "depthwise-separable" | "head"
    kernel: int | None  # 3 (conv, depthwise), 1 (heads); None for the input
    stride: int  # this layer's own stride (2 halves the resolution)
    output_stride: int  # input pixels per cell of its output (its running stride)
    dilation: int
    channels: int
    shape: tuple[int, int, int]  # (C, H, W) of its output for the input size asked for
    receptive_field: int  # side of the input square that one output cell sees, in pixels
    halves_resolution: bool
    caption: str  # one plain-language line
    concepts: tuple[str, ...]  # keys of CONCEPTS this layer illustrates
    block: int | None = None  # feature block index (0: first conv, 1-13), None otherwise


def _cells(size: int, output_stride: int) -> int:
    """Cells along one side: (size - 1) // stride + 1, exact for the network's k*stride+1 sizes
    (and what its padded 3x3 convs give for any size)."""
    return (size - 1) // output_stride + 1


def _block_caption(block: FeatureBlock, in_channels: int, stride: int) -> tuple[str, tuple[str, ...]]:
    strided = ", stride 2 halves the resolution" if stride == 2 else ""
    dilation = block.dilation
    dilated = f", dilation {dilation} spreads its taps {dilation} cells apart" if dilation > 1 else ""
    concepts = ("stride2",) * (stride == 2) + ("dilation",) * (dilation > 1) + ("relu6", "receptive_field")
    if block.block == 0:
        return (
            f"3x3 conv: {block.channels} filters, each weighing a 3x3 patch of the 3 colours{strided}; ReLU6",
            ("conv", *concepts),
        )
    return (
        f"depthwise 3x3 (one filter per channel, looks at space){dilated}{strided}, then pointwise 1x1 "
        f"(mixes {in_channels} channels into {block.channels}); ReLU6 after each",
        ("depthwise", "pointwise", *concepts),
    )


def network_layers(info: ModelInfo, input_size: tuple[int, int]) -> list[LayerCard]:
    """Every layer in order: the input, the first conv, the 13 depthwise-separable blocks, the
    four heads, with their output shapes for an input of `input_size` (w, h) pixels."""
    width, height = input_size
    cards = [LayerCard(
        "image", "input", None, 1, 1, 1, 3, (3, height, width), 1, False,
        f"the frame letterboxed to {width}x{height}, RGB 0..255, normalised to x / 127.5 - 1 in the network",
        (),
    )]
    previous_stride, channels = 1, 3
    for block in info.feature_blocks:
        stride = block.stride // previous_stride
        caption, concepts = _block_caption(block, channels, stride)
        cards.append(LayerCard(
            block.name, "conv" if block.block == 0 else "depthwise-separable", 3, stride, block.stride,
            block.dilation, block.channels,
            (block.channels, _cells(height, block.stride), _cells(width, block.stride)),
            block.receptive_field, stride == 2, caption, concepts, block.block,
        ))
        previous_stride, channels = block.stride, block.channels
    last = info.feature_blocks[-1]
    for name, head_channels in HEAD_CHANNELS.items():
        cards.append(LayerCard(
            name, "head", 1, 1, last.stride, 1, head_channels,
            (head_channels, _cells(height, last.stride), _cells(width, last.stride)),
            last.receptive_field, False, HEAD_CAPTIONS[name], ("head", "pointwise", "receptive_field"),
        ))
    return cards


# --- geometry: cells <-> frame pixels -----------------------------------------------------------


def cell_centre_in_frame(
    output_stride: int, cell: tuple[int, int], transform: FrameTransform
) -> tuple[float, float]:
    """Frame pixel (x, y) where cell (i, j) of a map at `output_stride` sits (input (j*s, i*s))."""
    i, j = cell
    x, y = transform.to_frame(np.array([j * output_stride, i * output_stride], np.float64))
    return float(x), float(y)


def cell_at_frame_point(
    output_stride: int, map_shape: tuple[int, int], point: tuple[float, float], transform: FrameTransform
) -> tuple[int, int] | None:
    """The cell (i, j) nearest to frame pixel (x, y); None outside the frame (the letterbox's
    padding included) or off the map."""
    x, y = point
    frame_w, frame_h = transform.frame_size
    if not (-0.5 <= x <= frame_w - 0.5 and -0.5 <= y <= frame_h - 0.5):
        return None
    input_x, input_y = transform.to_input(np.array([x, y], np.float64)).tolist()
    i, j = math.floor(input_y / output_stride + 0.5), math.floor(input_x / output_stride + 0.5)
    if not (0 <= i < map_shape[0] and 0 <= j < map_shape[1]):
        return None
    return i, j


def receptive_field_box(
    layer: LayerCard | FeatureBlock, cell: tuple[int, int], transform: FrameTransform
) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) frame-pixel edges of the receptive field of cell (i, j) of `layer`: a
    square of receptive_field input pixels centred on the cell, not clipped to the frame (near
    the border it reaches into the network's padding)."""
    stride = layer.output_stride if isinstance(layer, LayerCard) else layer.stride
    i, j = cell
    half = layer.receptive_field / 2.0  # pixel edges: centre pixel +- (field - 1) / 2, +- 0.5
    corners = np.array([[j * stride - half, i * stride - half], [j * stride + half, i * stride + half]])
    (x0, y0), (x1, y1) = transform.to_frame(corners).tolist()
    return x0, y0, x1, y1


# --- heads as arrows ---------------------------------------------------------------------------


def offset_arrows(
    heatmaps: np.ndarray,
    offsets: np.ndarray,
    output_stride: int,
    min_score: float,
    keypoint: int | None = None,
    *,
    labels: bool = False,
):
    """(N, 4) float32 arrows [x0, y0, x1, y1] in input pixels, from each cell (j*s, i*s) whose
    heatmap score >= min_score (for `keypoint`, or every keypoint) to where its offset puts the
    keypoint, ordered by keypoint then row-major. With labels=True: (arrows, keypoint ids (N,))."""
    chosen = np.arange(NUM_KEYPOINTS) if keypoint is None else np.array([keypoint])
    k, i, j = np.nonzero(heatmaps[chosen] >= min_score)
    k = chosen[k]
    x0, y0 = (j * output_stride).astype(np.float32), (i * output_stride).astype(np.float32)
    arrows = np.stack([x0, y0, x0 + offsets[NUM_KEYPOINTS + k, i, j], y0 + offsets[k, i, j]], axis=-1)
    arrows = arrows.astype(np.float32).reshape(-1, 4)
    return (arrows, k) if labels else arrows


def displacement_arrows(
    keypoints: np.ndarray,
    displacement_fwd: np.ndarray,
    displacement_bwd: np.ndarray,
    output_stride: int,
    min_score: float,
    edge: int | None = None,
    *,
    labels: bool = False,
):
    """(N, 4) float32 arrows [x0, y0, x1, y1] in input pixels along the part tree's edges (one,
    or all): for each pose of `keypoints (P, 17, 3)` (x, y, score, input pixels), forward from
    a parent scoring >= min_score by displacement_fwd read at its nearest cell, and backward
    from a child by displacement_bwd. Ordered by pose, edge, forward then backward. With
    labels=True: (arrows, edge ids (N,), forward (N,) bool)."""
    edges = range(NUM_PART_TREE_EDGES) if edge is None else [edge]
    map_shape = displacement_fwd.shape[1:]
    rows, edge_ids, forward = [], [], []
    for pose in np.asarray(keypoints, np.float64).reshape(-1, NUM_KEYPOINTS, 3):
        for e in edges:
            for source, field, is_forward in ((PART_TREE_EDGES[e][0], displacement_fwd, True),
                                              (PART_TREE_EDGES[e][1], displacement_bwd, False)):
                x, y, score = pose[source]
                if score >= min_score:
                    i, j = nearest_cell_of_point(y, x, output_stride, map_shape)
                    rows.append((x, y, x + field[NUM_PART_TREE_EDGES + e, i, j], y + field[e, i, j]))
                    edge_ids.append(e)
                    forward.append(is_forward)
    arrows = np.array(rows, np.float32).reshape(-1, 4)
    return (arrows, np.array(edge_ids, np.int64), np.array(forward, bool)) if labels else arrows


def arrows_to_frame(arrows: np.ndarray, transform: FrameTransform) -> np.ndarray:
    """(N, 4) input-pixel arrows [x0, y0, x1, y1] -> float32 frame pixels."""
    return transform.to_frame(np.asarray(arrows, np.float64).reshape(-1, 2, 2)).reshape(-1, 4)


# --- activations and filters -------------------------------------------------------------------


@dataclass(frozen=True)
class BlockStats:
    """One block's activation statistics (its ReLU6 output)."""

    mean: float
    zero_share: float  # fraction of activations that are exactly 0 (ReLU6 cut them)
    max: float
    dead_channels: int  # channels that are 0 everywhere in this frame


def block_statistics(features: dict[str, np.ndarray]) -> dict[str, BlockStats]:
    """BlockStats per feature output (C, H, W), in the dict's order."""
    stats = {}
    for name, maps in features.items():
        maps = np.asarray(maps, np.float32)
        zero = maps == 0
        stats[name] = BlockStats(
            float(maps.mean()), float(zero.mean()), float(maps.max()),
            int(zero.reshape(len(maps), -1).all(axis=1).sum()),
        )
    return stats


# Ops allowed between the model's input and its first conv: element-wise, so the conv's input
# channels are the image's (RGB).
_ELEMENTWISE = {"Div", "Sub", "Mul", "Add", "Cast", "Identity", "QuantizeLinear", "DequantizeLinear"}


def first_conv_parameters(model: PoseEngine | onnx.ModelProto) -> tuple[np.ndarray, np.ndarray]:
    """(weights float32 (C_out, 3, 3, 3) as (out, RGB, ky, kx), bias (C_out,)) of the model's
    first Conv, which reads the RGB 0..255 image normalised to x / 127.5 - 1 (int8 models:
    dequantised weights)."""
    graph = OnnxGraph(model)
    conv = graph.first("Conv")
    if conv is None:
        raise PoseAppError("the model has no Conv layer")
    _, source, _ = graph.walk_back(conv.input[0], _ELEMENTWISE)
    if source != INPUT_NAME:
        raise PoseAppError(
            f"the first conv reads {source!r}, not the image through element-wise ops; "
            "its channel order is unknown"
        )
    parameters = graph.conv(conv)
    if parameters.weights.ndim != 4 or parameters.weights.shape[1] != 3:
        raise PoseAppError(f"the first conv's weights have shape {parameters.weights.shape}, expected (C, 3, k, k)")
    return parameters.weights, parameters.bias


def first_conv_filters(model: PoseEngine | onnx.ModelProto) -> np.ndarray:
    """The first conv's kernels, float32 (C_out, 3, 3, 3) = (filter, RGB channel, ky, kx); they
    weigh the image normalised to -1..1, so a positive R weight responds to red."""
    return first_conv_parameters(model)[0]


def filter_tiles(filters: np.ndarray, scale: int = 8, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """BGR uint8 grid of the filters (C, 3, k, k) (RGB channels): each filter a colour tile of
    k*scale pixels, scaled by its own min..max (mid-grey where a filter is constant)."""
    filters = np.asarray(filters, np.float32)
    lo = filters.min(axis=(1, 2, 3), keepdims=True)
    span = filters.max(axis=(1, 2, 3), keepdims=True) - lo
    scaled = np.divide(filters - lo, span, out=np.full_like(filters, 0.5), where=span > 0)
    tiles = np.rint(scaled * 255.0).astype(np.uint8)[:, ::-1].transpose(0, 2, 3, 1)  # (C, k, k, BGR)
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    count, side = len(tiles), tiles.shape[1]
    return tile_grid(tiles, columns or grid_columns(count, side, side), gap)


# A labelled tile is scaled up until its shorter side has at least this many pixels.
MIN_LABELLED_TILE = 32


def channel_grid(
    features: np.ndarray, columns: int, labels: bool = True, scale: int | None = None, gap: int = 1
) -> np.ndarray:
    """BGR uint8 grid of ALL channels of `features (C, H, W)`, `columns` tiles a row, channel c
    at row c // columns, column c % columns; each tile colour-mapped by its own min..max, scaled
    up `scale` times (default: 1, or enough for a readable label) and labelled with its index.
    Size: (rows*H*scale + (rows-1)*gap, columns*W*scale + (columns-1)*gap, 3)."""
    count, height, width = features.shape
    if scale is None:
        scale = max(1, math.ceil(MIN_LABELLED_TILE / min(height, width))) if labels else 1
    tiles = colorize(normalise_per_tile(features)).repeat(scale, axis=1).repeat(scale, axis=2)
    if labels:
        font_scale = max(0.3, min(0.6, tiles.shape[1] / 90))
        for c, tile in enumerate(tiles):
            (_, text_h), _ = cv2.getTextSize(str(c), cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            for color, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
                cv2.putText(tile, str(c), (2, text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, color,
                            thickness, cv2.LINE_AA)
    return tile_grid(tiles, max(1, columns), gap, GAP_COLOR_BGR)


# --- the dock's block list ---------------------------------------------------------------------


def block_grid_size(block: FeatureBlock, input_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of a block's activation for a network input of (w, h): SAME convolutions with
    stride s turn n pixels into (n - 1) // s + 1."""
    width, height = input_size
    return (height - 1) // block.stride + 1, (width - 1) // block.stride + 1


def block_label(block: FeatureBlock, input_size: tuple[int, int] | None) -> str:
    """e.g. 'feature_5 — 192×45×60, stride 8, receptive field 75 px'."""
    if input_size is None:
        shape = f"{block.channels}×H×W"
    else:
        height, width = block_grid_size(block, input_size)
        shape = f"{block.channels}×{height}×{width}"
    dilation = f", dilation {block.dilation}" if block.dilation > 1 else ""
    return f"{block.name} — {shape}, stride {block.stride}{dilation}, receptive field {block.receptive_field} px"


# The default block's stride: deep enough for part-like patterns, fine enough to read people.
DEFAULT_BLOCK_STRIDE = 8


def default_block(info: ModelInfo) -> str:
    """The deepest block at stride <= 8 (the first block if none is)."""
    fine = [block for block in info.feature_blocks if block.stride <= DEFAULT_BLOCK_STRIDE]
    return (fine[-1] if fine else info.feature_blocks[0]).name
