"""The CNN lab's computations: your own filter, pooling, the heatmap head as a weighted sum and
the guided tour (numpy/OpenCV and the engine, no Qt); the image patches each channel likes best
and occlusion sensitivity are lab_probes.py's.

Images go in as the network reads them: RGB scaled to -1..1 (`network_input`), so a kernel
typed by a learner and the network's own first-layer filters weigh the same numbers. Maps are
cross-correlations, as in every CNN: output cell (i, j) is the sum of the kernel times the
patch centred on input pixel (j * stride + offset, i * stride + offset), where the offset is 0
with "same" padding (zeros around the image, size kept at stride 1) and k // 2 with "valid"
padding (no padding: the map shrinks by k - 1). Frame boxes are (x0, y0, x1, y1) pixel edges in
original-frame pixels, (0, 0) the centre of the top-left pixel (docs/architecture.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view

from pose_app.errors import PoseAppError
from pose_app.explain.network import first_conv_filters
from pose_app.explain.onnx_graph import OnnxGraph
from pose_app.inference.engine import PoseEngine
from pose_app.inference.families.posenet import HEAD_OUTPUTS

# The lab's parts, in the order the dock offers them.
LAB_PARTS = ("filter", "pool", "fc", "patches", "occlusion")
KERNEL_SIZES = (3, 5)
PADDINGS = ("same", "valid")
POOLINGS = ("max", "average")
GREY = (1 / 3, 1 / 3, 1 / 3)  # colour weights of a filter on brightness: the mean of R, G and B


# --- your own filter ---------------------------------------------------------------------------


def _spatial(name: str, size: int) -> np.ndarray:
    """The k x k pattern of a preset (float32)."""
    half = size // 2
    ramp = np.arange(size, dtype=np.float32) - half  # -1 0 1, or -2 -1 0 1 2
    step = np.sign(ramp)
    smooth = np.array([1, 2, 1] if size == 3 else [1, 4, 6, 4, 1], np.float32)
    box = np.full((size, size), 1.0 / size**2, np.float32)
    if name == "vertical edge":
        return np.tile(step, (size, 1))
    if name == "horizontal edge":
        return np.tile(step[:, None], (1, size))
    if name == "Sobel (vertical edges)":
        return np.outer(smooth, ramp if size == 3 else ramp * np.abs(ramp).clip(1))
    if name == "Sobel (horizontal edges)":
        return _spatial("Sobel (vertical edges)", size).T.copy()
    if name == "sharpen":
        identity = np.zeros((size, size), np.float32)
        identity[half, half] = 1.0
        return 2 * identity - box
    return box  # blur, and the colour detectors' smoothing


# Colour weights (R, G, B) of the presets: brightness for the spatial ones, one colour against
# the two others for the colour detectors.
KERNEL_PRESETS = {
    "vertical edge": GREY, "horizontal edge": GREY, "Sobel (vertical edges)": GREY,
    "Sobel (horizontal edges)": GREY, "blur": GREY, "sharpen": GREY,
    "red detector": (1.0, -0.5, -0.5), "green detector": (-0.5, 1.0, -0.5), "blue detector": (-0.5, -0.5, 1.0),
}


@dataclass(frozen=True)
class LabFilter:
    """A learner's filter: a k x k pattern (row-major) times colour weights over R, G and B,
    so weights[c, y, x] = colour[c] * pattern[y][x]."""

    pattern: tuple[float, ...]
    colour: tuple[float, float, float] = GREY

    @property
    def size(self) -> int:
        return math.isqrt(len(self.pattern))

    def weights(self) -> np.ndarray:
        """float32 (3, k, k) = (RGB channel, ky, kx), like the network's first conv."""
        pattern = np.asarray(self.pattern, np.float32).reshape(self.size, self.size)
        return np.asarray(self.colour, np.float32)[:, None, None] * pattern


def preset_filter(name: str, size: int = 3) -> LabFilter:
    """The preset `name` (a key of KERNEL_PRESETS) as a size x size filter."""
    if name not in KERNEL_PRESETS:
        raise PoseAppError(f"unknown filter preset {name!r}; choose one of {', '.join(KERNEL_PRESETS)}")
    if size not in KERNEL_SIZES:
        raise PoseAppError(f"filters are {' or '.join(map(str, KERNEL_SIZES))} wide, not {size}")
    pattern = _spatial(name, size)
    return LabFilter(tuple(round(float(v), 4) for v in pattern.ravel()), KERNEL_PRESETS[name])


def resized_pattern(pattern: Sequence[float], size: int) -> tuple[float, ...]:
    """A square pattern (row-major) as size x size, centred: zeros around a smaller one, the
    middle of a larger one (a 3x3 kernel typed, then 5x5 chosen, stays where it was)."""
    old = math.isqrt(len(pattern))
    values = np.asarray(pattern, np.float64).reshape(old, old)
    if size >= old:
        margin = (size - old) // 2
        values = np.pad(values, margin)
    else:
        margin = (old - size) // 2
        values = values[margin:margin + size, margin:margin + size]
    return tuple(float(v) for v in values.ravel())


def network_input(image_bgr: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3) RGB scaled to -1..1, what the network's first conv weighs."""
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0


def output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Cells along one side of a map: (n + 2p - k) // s + 1, p = k // 2 ("same") or 0 ("valid")."""
    pad = kernel // 2 if padding == "same" else 0
    if padding not in PADDINGS:
        raise PoseAppError(f"unknown padding {padding!r}; choose one of {', '.join(PADDINGS)}")
    return max(0, (size + 2 * pad - kernel) // stride + 1)


def convolve(image: np.ndarray, weights: np.ndarray, stride: int = 1, padding: str = "same",
             relu: bool = False, bias: float = 0.0) -> np.ndarray:
    """The activation map (float32 (H_out, W_out), see output_size) of `weights (C, k, k)` (or
    (k, k) on a one-channel image) slid over `image (H, W, C)` (or (H, W)): the sum over the
    channels of kernel x patch, plus `bias`, ReLU (max(0, x)) when asked."""
    image = np.asarray(image, np.float32)
    weights = np.asarray(weights, np.float32)
    if image.ndim == 2:
        image, weights = image[..., None], weights[None]
    size = weights.shape[-1]
    height, width = image.shape[:2]
    total = np.full((height, width), bias, np.float32)
    for channel in range(image.shape[2]):
        if np.any(weights[channel]):
            # filter2D correlates (no flip) with the anchor at the kernel's centre; zeros outside.
            total += cv2.filter2D(image[..., channel], cv2.CV_32F, weights[channel], borderType=cv2.BORDER_CONSTANT)
    start = 0 if padding == "same" else size // 2
    rows, cols = output_size(height, size, stride, padding), output_size(width, size, stride, padding)
    out = total[start:start + rows * stride:stride, start:start + cols * stride:stride]
    return np.maximum(out, 0.0) if relu else out


def pool(values: np.ndarray, size: int = 2, stride: int = 2, how: str = "max") -> np.ndarray:
    """`values (H, W)` pooled by the max or mean of each size x size window, windows `stride`
    apart (no padding: (n - size) // stride + 1 per side)."""
    if how not in POOLINGS:
        raise PoseAppError(f"unknown pooling {how!r}; choose one of {', '.join(POOLINGS)}")
    windows = sliding_window_view(np.asarray(values, np.float32), (size, size))[::stride, ::stride]
    return windows.max(axis=(2, 3)) if how == "max" else windows.mean(axis=(2, 3))


@dataclass(frozen=True)
class ClosestFilter:
    """The network's first-layer filter nearest to a kernel: its index and cosine similarity
    (negative: it weighs the same pattern with the opposite sign, dark and bright swapped)."""

    index: int
    cosine: float


def closest_filter(weights: np.ndarray, filters: np.ndarray) -> ClosestFilter | None:
    """The filter of `filters (C, 3, 3, 3)` whose weights point most nearly along `weights (3,
    k, k)` (largest |cosine|; a 5x5 kernel is first resampled to 3x3). Filters that training
    left (almost) all zero are skipped: they look at nothing. None when nothing compares."""
    weights = np.asarray(weights, np.float32)
    if weights.shape[-1] != filters.shape[-1]:
        side = filters.shape[-1]
        weights = np.stack([cv2.resize(w, (side, side), interpolation=cv2.INTER_AREA) for w in weights])
    flat = filters.reshape(len(filters), -1)
    norms = np.linalg.norm(flat, axis=1)
    kernel = weights.ravel()
    if not np.any(kernel) or not np.any(norms):
        return None
    alive = norms > 0.01 * norms.max()
    cosines = np.where(alive, flat @ kernel / np.maximum(norms, 1e-12) / np.linalg.norm(kernel), 0.0)
    index = int(np.argmax(np.abs(cosines)))
    return ClosestFilter(index, float(cosines[index]))


def learnt_filters(model: PoseEngine | onnx.ModelProto) -> np.ndarray | None:
    """The first conv's filters (explain.first_conv_filters); None when the model's first layer
    is not a conv on the image."""
    try:
        return first_conv_filters(model)
    except PoseAppError:
        return None


# --- the heatmap head as a fully connected layer at one cell ------------------------------------

# Ops between a head's 1x1 conv and the model's output (int8 models quantise around them).
_AFTER_CONV = {"Sigmoid", "QuantizeLinear", "DequantizeLinear", "Identity", "Cast"}


@dataclass(frozen=True)
class HeadWeights:
    """A head's 1x1 conv as one fully connected layer per cell: out[k] = sigmoid(weights[k] .
    features[:, i, j] + bias[k]) when `sigmoid`, else without it."""

    output: str  # the head's output ("heatmaps")
    feature: str  # the feature output it reads ("feature_13")
    weights: np.ndarray  # float32 (K, C)
    bias: np.ndarray  # float32 (K,)
    sigmoid: bool


def head_weights(model: PoseEngine | onnx.ModelProto, output: str = "heatmaps") -> HeadWeights:
    """The 1x1 conv making `output`, read from the ONNX graph (int8 weights dequantised); its
    input must be one of the model's feature outputs."""
    if output not in HEAD_OUTPUTS:
        raise PoseAppError(f"{output!r} is not a head; choose one of {', '.join(HEAD_OUTPUTS)}")
    graph = OnnxGraph(model)
    features = {name for name in graph.output_names if name.startswith("feature_")}
    node, _, passed = graph.walk_back(output, _AFTER_CONV)
    if node is None or node.op_type != "Conv" or node.input[0] not in features:
        raise PoseAppError(f"the model's {output} head is not a 1x1 conv on a feature output")
    conv = graph.conv(node)
    if conv.weights.ndim != 4 or conv.weights.shape[2:] != (1, 1):
        raise PoseAppError(f"the {output} head's weights have shape {conv.weights.shape}, expected (K, C, 1, 1)")
    return HeadWeights(output, conv.input, conv.weights[:, :, 0, 0], conv.bias, "Sigmoid" in passed)


@dataclass(frozen=True)
class WeightedSum:
    """One output of a fully connected layer: inputs (C,) times weights (C,), summed, plus the
    bias = `logit`; `value` after the sigmoid (or the logit itself)."""

    inputs: np.ndarray
    weights: np.ndarray
    bias: float
    logit: float
    value: float

    @property
    def terms(self) -> np.ndarray:
        return self.inputs * self.weights


def head_sum(head: HeadWeights, features: np.ndarray, output: int, cell: tuple[int, int]) -> WeightedSum:
    """Output channel `output` of the head at cell (i, j), from `features (C, H, W)` (the
    feature output the head reads): the dot product the 1x1 conv computes there."""
    inputs = np.asarray(features[:, cell[0], cell[1]], np.float32)
    weights = head.weights[output]
    logit = float(np.dot(inputs.astype(np.float64), weights) + head.bias[output])
    value = 1.0 / (1.0 + math.exp(-logit)) if head.sigmoid else logit
    return WeightedSum(inputs, weights, float(head.bias[output]), logit, value)


# --- what the dock asks for, and the guided tour ------------------------------------------------

DEFAULT_FILTER = preset_filter("vertical edge")


@dataclass(frozen=True)
class LabRequest:
    """The lab view's choices (PanelRequest.lab). `part` is one of LAB_PARTS; `block` the block
    whose channel is pooled and whose patches are kept ("" = the dock's block); `cell` the heatmap
    cell (i, j) whose weighted sum is shown (None: the keypoint's strongest cell); a new
    `patches_epoch` clears the kept patches."""

    part: str = "filter"
    filter: LabFilter = DEFAULT_FILTER
    relu: bool = False
    stride: int = 1
    padding: str = "same"
    block: str = ""
    channel: int = 0
    pooling_channel_strongest: bool = True  # pool the block's strongest channel instead of `channel`
    keypoint: int = 0
    cell: tuple[int, int] | None = None
    patches_epoch: int = 0

    def features(self, blocks: Sequence[str]) -> tuple[str, ...]:
        """The feature outputs this part reads, of the model's `blocks` (first to last)."""
        if not blocks:
            return ()
        if self.part == "filter":
            return (blocks[0],)
        if self.part in ("pool", "patches"):
            return (self.block or blocks[len(blocks) // 2],)
        if self.part == "fc":
            return (blocks[-1],)
        return ()


DEFAULT_LAB = LabRequest()


@dataclass(frozen=True)
class TourStep:
    """One step of the guided tour: the dock view it shows (`view`, a panel view name; for the
    lab also `part` and the filter's settings; `depth` picks the block for the features view:
    "first", "middle" or "last") and its caption, in plain language."""

    title: str
    caption: str
    view: str
    part: str = "filter"
    preset: str = "vertical edge"
    relu: bool = False
    stride: int = 1
    depth: str = "middle"


TOUR = (
    TourStep("1. A filter", "A filter is a small grid of numbers. It slides over the picture; at every spot it "
             "multiplies the numbers with the pixels under it and adds everything up. This one subtracts the left "
             "column from the right: it answers 'is it brighter on the right than on the left?'", "lab"),
    TourStep("2. The activation map", "The answers, one per spot, make a new picture: the activation map. Bright red "
             "means 'yes, strongly', blue means 'the opposite'. Edges of the body light up, flat wall stays dark.",
             "lab", preset="Sobel (vertical edges)"),
    TourStep("3. ReLU", "ReLU keeps the positive answers and turns every negative one into 0. Only 'yes' survives: "
             "the blue is gone. Without this step, stacking filters would add nothing new.", "lab",
             preset="Sobel (vertical edges)", relu=True),
    TourStep("4. Stride", "With stride 2 the filter jumps two pixels at a time: the map has half the width and "
             "half the height (see the numbers in the caption). Less to compute, coarser detail.", "lab",
             preset="Sobel (vertical edges)", relu=True, stride=2),
    TourStep("5. Pooling", "Pooling shrinks a map too: each 2x2 square becomes one number, its maximum (max-pool) "
             "or its average. The strong answers stay, their exact position blurs a little.", "lab", part="pool"),
    TourStep("6. Deeper blocks", "PoseNet stacks 14 such layers. Early ones find edges and colours; deeper ones "
             "combine them into parts: a face, a shoulder, an arm. Each tile is one channel of a deep block.",
             "features", depth="last"),
    TourStep("7. The heads", "At the end, a 1x1 filter at every cell weighs all 768 channels of the last block and "
             "adds them up, exactly like a fully connected layer. The result is a heatmap per body part.", "lab",
             part="fc"),
    TourStep("8. Decoding", "Finally the program reads the heatmaps: it starts at the most confident part and "
             "follows arrows from part to part to build each person's skeleton. Press N to walk through it.", "walk"),
)
