"""Google's TF.js MoveNet SinglePose graph models -> models.movenet.MoveNet.

A TF.js graph model is `model.json` (the TensorFlow graph's nodes and a `weightsManifest`) and
.bin shards holding every constant back to back in manifest order; MoveNet's are mostly stored
as float16 (`quantization: {dtype: float16}`), which `load_graph_tensors` dequantises (uint8 and
uint16 affine quantisation too).

The weights are not matched by name: `read_network` walks the graph's data flow from the input
placeholder (normalisation constants, stem conv, inverted-residual blocks found by their
expand/depthwise/project/add pattern, last conv, pyramid levels found by their ResizeBilinear and
lateral conv, four heads), checking each conv's stride, padding and activation against what
models/movenet.py computes, and every conv node of the graph must be visited exactly once. The
widths of the module (MoveNetConfig) come from the weights found on that walk.

`pretrained_movenet("lightning")` is the module with Google's weights, in eval mode.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.convert import WEIGHTS_ROOT, WeightConversionError
from models.movenet import KERNEL_SIZE, MoveNet, MoveNetConfig
from pose_app.core.skeleton import NUM_KEYPOINTS
from pose_app.errors import PoseAppError

VARIANTS = ("lightning", "thunder")
# The graph's head scopes (the first name component of each head's nodes) -> our head names.
HEAD_SCOPES = {
    "heatmaps": "kpt_heatmap_0",
    "centers": "center_0",
    "regression": "kpt_regress_0",
    "offsets": "kpt_offset_0",
}
SIGMOID_HEADS = ("heatmaps", "centers")  # the graph applies a sigmoid to these, not the others
PAIRED_HEADS = ("regression", "offsets")  # 34 channels: a (y, x) pair per keypoint
CONV_OPS = ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")
# Ops between the input placeholder and the normalisation that move data without changing it
# (the graph's "ResizeImage" to the size it already has, the batch unstacked and restacked).
PASS_THROUGH_OPS = ("Cast", "Unpack", "Pack", "ExpandDims", "Squeeze", "Identity")
BYTES = {"float32": 4, "int32": 4, "float16": 2, "uint16": 2, "uint8": 1}
NUMPY_DTYPES = {"float32": "<f4", "int32": "<i4", "float16": "<f2", "uint16": "<u2", "uint8": "u1"}


class MoveNetConversionError(WeightConversionError, PoseAppError):
    """The TF.js MoveNet files are missing, unreadable or do not fit models/movenet.py (the
    one-line message names the file, tensor or node)."""


# --- reading the files -------------------------------------------------------------------------


def read_model_json(path: Path) -> dict:
    """model.json of a TF.js graph model, or MoveNetConversionError."""
    if not path.is_file():
        raise MoveNetConversionError(f"missing MoveNet graph file {path}")
    try:
        graph = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MoveNetConversionError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    if "modelTopology" not in graph or "weightsManifest" not in graph:
        raise MoveNetConversionError(f"{path} is not a TF.js graph model (no modelTopology/weightsManifest)")
    return graph


def dequantise(raw: bytes, entry: dict, source: Path) -> np.ndarray:
    """One manifest entry's bytes -> float32/int32 array of its shape.

    TF.js stores a quantised tensor as float16 (lossless to widen), or as uint8/uint16 codes q
    with value = q * scale + min.
    """
    name, shape = entry["name"], entry["shape"]
    quantization = entry.get("quantization")
    stored = quantization["dtype"] if quantization else entry.get("dtype", "float32")
    if stored not in NUMPY_DTYPES:
        raise MoveNetConversionError(f"tensor {name!r} in {source} has unsupported dtype {stored!r}")
    expected = BYTES[stored] * math.prod(shape)
    if len(raw) != expected:
        raise MoveNetConversionError(
            f"tensor {name!r} in {source}: {len(raw)} bytes, its shape {shape} as {stored} needs {expected}"
        )
    values = np.frombuffer(raw, dtype=NUMPY_DTYPES[stored]).reshape(shape)
    if stored in ("uint8", "uint16"):
        return (values * np.float32(quantization["scale"]) + np.float32(quantization["min"])).astype(np.float32)
    return values.astype(np.float32 if stored.startswith("float") else np.int32)


def stored_bytes(entry: dict) -> int:
    quantization = entry.get("quantization")
    stored = quantization["dtype"] if quantization else entry.get("dtype", "float32")
    if stored not in BYTES:
        raise MoveNetConversionError(f"tensor {entry['name']!r} has unsupported dtype {stored!r}")
    return BYTES[stored] * math.prod(entry["shape"])


def load_graph_tensors(graph: dict, folder: Path) -> dict[str, np.ndarray]:
    """{tensor name: array} from the shards of each manifest group, dequantised."""
    tensors = {}
    for group in graph["weightsManifest"]:
        blob = b""
        for shard in group["paths"]:
            path = folder / shard
            if not path.is_file():
                raise MoveNetConversionError(f"missing MoveNet weights shard {path}")
            blob += path.read_bytes()
        start = 0
        for entry in group["weights"]:
            end = start + stored_bytes(entry)
            tensors[entry["name"]] = dequantise(blob[start:end], entry, folder / group["paths"][0])
            start = end
        if start != len(blob):
            raise MoveNetConversionError(
                f"{group['paths']} in {folder} hold {len(blob)} bytes, the manifest describes {start}"
            )
    return tensors


# --- the graph ---------------------------------------------------------------------------------


def tensor_source(name: str) -> tuple[str, int]:
    """A node input "node:1" -> ("node", 1); "node" -> ("node", 0)."""
    node, _, index = name.partition(":")
    return node, int(index or 0)


@dataclass(frozen=True)
class Conv:
    """One conv node of the graph, as the module needs it."""

    node: str
    input: str  # the producing node's name
    weight: str  # tensor names
    bias: str | None
    depthwise: bool
    stride: int
    padding: str
    dilation: int
    activation: str | None  # "relu6", "relu" or None (from the node's fused ops)


@dataclass
class Graph:
    """The nodes of a TF.js graph model with its constants, and who consumes whom."""

    nodes: dict[str, dict]
    tensors: dict[str, np.ndarray]
    source: Path
    consumers: dict[str, list[dict]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.nodes.values():
            for name in node.get("input", []):
                if not name.startswith("^"):
                    self.consumers.setdefault(tensor_source(name)[0], []).append(node)

    def fail(self, message: str) -> MoveNetConversionError:
        return MoveNetConversionError(f"{self.source}: {message}")

    def constant(self, name: str) -> np.ndarray:
        node_name = tensor_source(name)[0]
        if node_name not in self.tensors:
            raise self.fail(f"node {node_name!r} is not a constant")
        return self.tensors[node_name]

    def inputs(self, node: dict) -> list[str]:
        return [tensor_source(name)[0] for name in node.get("input", []) if not name.startswith("^")]

    def users(self, name: str, *ops: str) -> list[dict]:
        """Nodes consuming node `name`'s output, those of the given ops if any are given."""
        return [n for n in self.consumers.get(name, []) if not ops or n["op"] in ops]

    def only_user(self, name: str, *ops: str) -> dict:
        users = self.users(name, *ops)
        if len(users) != 1:
            raise self.fail(f"node {name!r} has {len(users)} consumers of op {ops or 'any'}, expected 1")
        return users[0]

    def conv(self, node: dict) -> Conv:
        """The Conv of a conv node (fused or not)."""
        attr = node.get("attr", {})
        ops = [base64.b64decode(s).decode() for s in attr.get("fused_ops", {}).get("list", {}).get("s", [])]
        inputs = self.inputs(node)
        strides = [int(s) for s in attr["strides"]["list"]["i"]]  # NHWC
        dilations = [int(d) for d in attr.get("dilations", {}).get("list", {}).get("i", [1])]
        activation = {"Relu6": "relu6", "Relu": "relu"}.get(ops[-1]) if ops else None
        if (ops and ops[0] != "BiasAdd") or len(ops) > 2 or (len(ops) == 2 and activation is None):
            raise self.fail(f"conv {node['name']!r} fuses {ops}, expected BiasAdd and Relu/Relu6")
        return Conv(
            node=node["name"],
            input=inputs[0],
            weight=inputs[1],
            bias=inputs[2] if ops else None,
            depthwise="Depthwise" in node["op"],
            stride=strides[1],
            padding=base64.b64decode(attr["padding"]["s"]).decode(),
            dilation=max(dilations),
            activation=activation,
        )

    def conv_users(self, name: str) -> list[Conv]:
        return [self.conv(n) for n in self.users(name, *CONV_OPS)]


@dataclass
class Block:
    expand: Conv | None
    depthwise: Conv
    project: Conv
    output: str  # the node whose output is the block's output (the add, or the projection)


@dataclass
class Network:
    """What the walk found, in the module's terms."""

    input_size: int
    mean: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    stem: Conv
    blocks: list[Block]
    last_conv: Conv
    laterals: list[Conv]  # on the last conv, then on the pyramid taps (coarse to fine)
    fpn_taps: list[int]
    smooth: list[tuple[Conv, Conv]]  # (depthwise, pointwise) per pyramid level
    heads: dict[str, tuple[Conv, Conv, Conv]]  # (depthwise, pointwise, out) per head
    head_pairs: dict[str, bool]  # head -> its 34 channels interleave (y, x) per keypoint


def find_input(graph: Graph) -> dict:
    placeholders = [n for n in graph.nodes.values() if n["op"] == "Placeholder"]
    if len(placeholders) != 1:
        raise graph.fail(f"expected one input placeholder, found {len(placeholders)}")
    return placeholders[0]


def input_size(graph: Graph, placeholder: dict) -> int:
    """The trained size from the placeholder's shape [1, S, S, 3]."""
    dims = [int(d.get("size", -1)) for d in placeholder["attr"]["shape"]["shape"]["dim"]]
    if len(dims) != 4 or dims[1] != dims[2] or dims[3] != 3:
        raise graph.fail(f"input shape {dims} is not [N, S, S, 3]")
    return dims[1]


def read_normalisation(graph: Graph, placeholder: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Follow the input to the first conv: (x - mean) * scale - shift; returns those constants
    and the first conv node. Any other op on the way is an error (the module would miss it)."""
    found: dict[str, np.ndarray] = {}
    node = placeholder
    while True:
        node = graph.only_user(node["name"])
        if node["op"] in CONV_OPS:
            break
        if node["op"] in PASS_THROUGH_OPS:
            continue
        step = {"Sub": "mean" if "mean" not in found else "shift", "Mul": "scale"}.get(node["op"])
        if step is None or step in found:
            raise graph.fail(f"unexpected op {node['op']} ({node['name']!r}) before the first conv")
        found[step] = graph.constant(graph.inputs(node)[1]).astype(np.float32)
    if set(found) != {"mean", "scale", "shift"}:
        raise graph.fail(f"normalisation has only {sorted(found)}, expected mean, scale and shift")
    return found["mean"].reshape(-1), found["scale"].reshape(-1), found["shift"].reshape(-1), node


def read_block(graph: Graph, current: str) -> Block | None:
    """The inverted-residual block reading node `current`, or None where the backbone ends.

    A block is [1x1 conv + ReLU6 ->] depthwise 3x3 + ReLU6 -> linear 1x1 [-> add with its
    input]. Laterals (linear 1x1 convs into the pyramid) also read block outputs: they are the
    convs whose output is not read by a depthwise conv.
    """
    depthwise = [c for c in graph.conv_users(current) if c.depthwise]
    expand = None
    if not depthwise:
        for candidate in graph.conv_users(current):
            following = [c for c in graph.conv_users(candidate.node) if c.depthwise]
            if not candidate.depthwise and candidate.activation == "relu6" and following:
                expand, depthwise = candidate, following
        if expand is None:
            return None
    if len(depthwise) != 1:
        raise graph.fail(f"node {current!r} feeds {len(depthwise)} depthwise convs, expected 1")
    projects = graph.conv_users(depthwise[0].node)
    if len(projects) != 1:
        raise graph.fail(f"depthwise conv {depthwise[0].node!r} feeds {len(projects)} convs, expected 1 projection")
    project = projects[0]
    output = project.node
    for add in graph.users(project.node, "AddV2"):
        if current in graph.inputs(add):
            output = add["name"]
    return Block(expand, depthwise[0], project, output)


def read_head_layout(graph: Graph, head_output: str) -> bool:
    """True when the graph reads a 34-channel head as 17 (y, x) pairs.

    The graph's decoding gathers a cell's 34 values, reshapes them to [17, 2] (or [17, 17, 2])
    and unstacks the last axis: value 0 of each pair is then added to the keypoint's row (a
    FloorDiv of the ArgMax by the width), value 1 to its column.
    """
    gather = graph.only_user(head_output, "GatherNd")
    reshape = graph.only_user(gather["name"], "Reshape")
    shape = [int(v) for v in graph.constant(graph.inputs(reshape)[1])]
    if shape[-1] != -1 or shape[0] != NUM_KEYPOINTS:
        raise graph.fail(f"{head_output!r} is reshaped to {shape}, expected [17, ..., -1] (pairs per keypoint)")
    node = reshape
    while node["op"] != "Unpack":
        node = graph.only_user(node["name"])
    if int(node["attr"]["num"]["i"]) != 2:
        raise graph.fail(f"{node['name']!r} unstacks {node['attr']['num']['i']} values, expected 2")
    return pair_starts_with_row(graph, node)


def pair_starts_with_row(graph: Graph, unpack: dict) -> bool:
    """Whether the first output of `unpack` is added to a row index (y) rather than a column."""
    first = [n for n in graph.consumers[unpack["name"]] if unpack["name"] in n["input"]]
    node = first[0]
    while node["op"] == "ExpandDims":
        node = graph.only_user(node["name"])
    if node["op"] != "AddV2":
        raise graph.fail(f"the first value of {unpack['name']!r} goes to {node['op']}, expected AddV2")
    other = next(graph.nodes[i] for i in graph.inputs(node) if i != first[0]["name"])
    while other["op"] == "Cast":
        other = graph.nodes[graph.inputs(other)[0]]
    if other["op"] == "FloorDiv":
        return True  # ArgMax // width: the row
    if other["op"] == "Sub":
        raise graph.fail(f"{unpack['name']!r} pairs are (x, y); only (y, x) is supported")
    raise graph.fail(f"cannot tell whether {unpack['name']!r} pairs start with y or x")


def read_network(graph: Graph) -> Network:
    """Walk the graph from its input to the four heads (see the module docstring)."""
    placeholder = find_input(graph)
    mean, scale, shift, stem_node = read_normalisation(graph, placeholder)
    stem = graph.conv(stem_node)
    blocks: list[Block] = []
    outputs = {}  # node name -> block index, for the pyramid's taps
    current = stem.node
    while (block := read_block(graph, current)) is not None:
        outputs[block.output] = len(blocks)
        blocks.append(block)
        current = block.output
    last = [c for c in graph.conv_users(current) if c.activation == "relu6"]
    if len(last) != 1:
        raise graph.fail(f"after the blocks, expected one 1x1 conv + ReLU6, found {len(last)}")
    last_conv = last[0]
    tops = graph.conv_users(last_conv.node)
    if len(tops) != 1:
        raise graph.fail(f"the last conv {last_conv.node!r} feeds {len(tops)} convs, expected 1 (the pyramid's top)")
    top = tops[0]
    laterals, taps, smooth = [top], [], []
    current = top.node
    while resize := graph.users(current, "ResizeBilinear"):
        check_upsampling(graph, resize[0])
        add = graph.only_user(resize[0]["name"], "AddV2")
        (lateral_name,) = [i for i in graph.inputs(add) if i != resize[0]["name"]]
        lateral = graph.conv(graph.nodes[lateral_name])
        if lateral.input not in outputs:
            raise graph.fail(f"pyramid lateral {lateral.node!r} reads {lateral.input!r}, not a block output")
        depthwise = graph.conv(graph.only_user(add["name"], *CONV_OPS))
        pointwise = graph.conv(graph.only_user(depthwise.node, *CONV_OPS))
        laterals.append(lateral)
        taps.append(outputs[lateral.input])
        smooth.append((depthwise, pointwise))
        current = pointwise.node
    heads, head_pairs = {}, {}
    scopes = {scope: name for name, scope in HEAD_SCOPES.items()}
    for depthwise in graph.conv_users(current):
        pointwise = graph.conv(graph.only_user(depthwise.node, *CONV_OPS))
        out = graph.conv(graph.only_user(pointwise.node, *CONV_OPS))
        scope = next((s for s in out.node.split("/") if s in scopes), None)
        if scope is None:
            raise graph.fail(f"head conv {out.node!r} is none of {sorted(scopes)}")
        name = scopes[scope]
        heads[name] = (depthwise, pointwise, out)
        sigmoid = bool(graph.users(out.node, "Sigmoid"))
        if sigmoid != (name in SIGMOID_HEADS):
            raise graph.fail(f"head {scope!r}: sigmoid {'applied' if sigmoid else 'missing'} in the graph")
        if name in PAIRED_HEADS:
            head_pairs[name] = read_head_layout(graph, out.node)
    if set(heads) != set(HEAD_SCOPES):
        raise graph.fail(f"found heads {sorted(heads)}, expected {sorted(HEAD_SCOPES)}")
    return Network(
        input_size(graph, placeholder), mean, scale, shift, stem, blocks, last_conv, laterals,
        taps, smooth, heads, head_pairs,
    )


def check_upsampling(graph: Graph, resize: dict) -> None:
    """The pyramid's ResizeBilinear must use half-pixel centres (PyTorch's align_corners=False)."""
    attr = resize["attr"]
    if not attr.get("half_pixel_centers", {}).get("b") or attr.get("align_corners", {}).get("b"):
        raise graph.fail(f"{resize['name']!r} is not a half-pixel-centre bilinear resize")


# --- the module --------------------------------------------------------------------------------


def network_convs(network: Network) -> Iterator[tuple[str, Conv, int, str | None]]:
    """(module path, graph conv, stride the module uses, activation it applies) of every conv."""
    config_strides = [b.depthwise.stride for b in network.blocks]
    yield "stem", network.stem, 2, "relu6"
    for i, block in enumerate(network.blocks):
        if block.expand is not None:
            yield f"blocks.{i}.expand", block.expand, 1, "relu6"
        yield f"blocks.{i}.depthwise", block.depthwise, config_strides[i], "relu6"
        yield f"blocks.{i}.project", block.project, 1, None
    yield "last_conv", network.last_conv, 1, "relu6"
    for i, lateral in enumerate(network.laterals):
        yield f"laterals.{i}", lateral, 1, None
    for i, (depthwise, pointwise) in enumerate(network.smooth):
        yield f"smooth.{i}.depthwise", depthwise, 1, None
        yield f"smooth.{i}.pointwise", pointwise, 1, "relu"
    for name, (depthwise, pointwise, out) in network.heads.items():
        yield f"heads.{name}.hidden.depthwise", depthwise, 1, None
        yield f"heads.{name}.hidden.pointwise", pointwise, 1, "relu"
        yield f"heads.{name}.out", out, 1, None


def network_config(network: Network, variant: str, graph: Graph) -> MoveNetConfig:
    """MoveNetConfig with the widths of the weights the walk found."""

    def width(conv: Conv) -> int:
        return int(graph.constant(conv.weight).shape[2 if conv.depthwise else 3])

    widths = [width(network.stem)] + [width(b.project) for b in network.blocks]
    try:
        return MoveNetConfig(
            variant=variant,
            input_size=network.input_size,
            stem_channels=widths[0],
            expanded_channels=tuple(width(b.depthwise) for b in network.blocks),
            block_channels=tuple(widths[1:]),
            block_strides=tuple(b.depthwise.stride for b in network.blocks),
            last_channels=width(network.last_conv),
            fpn_taps=tuple(network.fpn_taps),
            fpn_channels=(width(network.laterals[0]),) + tuple(width(p) for _, p in network.smooth),
            head_channels=width(network.heads["heatmaps"][1]),
        )
    except (TypeError, ValueError) as error:
        raise graph.fail(f"the graph is not a MoveNet this module can build: {error}") from None


def check_conv(graph: Graph, path: str, conv: Conv, stride: int, activation: str | None) -> None:
    """The graph's conv must compute what the module's does: stride, SAME 3x3, no dilation,
    same activation."""
    kernel = graph.constant(conv.weight).shape[0]
    if conv.stride != stride or conv.dilation != 1 or conv.activation != activation:
        raise graph.fail(
            f"conv {conv.node!r} ({path}) has stride {conv.stride}, dilation {conv.dilation}, "
            f"activation {conv.activation}; the module uses {stride}, 1, {activation}"
        )
    if kernel not in (1, KERNEL_SIZE) or (kernel == KERNEL_SIZE and conv.padding != "SAME"):
        raise graph.fail(f"conv {conv.node!r} ({path}): {kernel}x{kernel} with {conv.padding} padding")


def tf_to_torch(weight: np.ndarray, depthwise: bool) -> np.ndarray:
    """TF conv [kh,kw,in,out] -> torch [out,in,kh,kw]; TF depthwise [kh,kw,C,1] -> [C,1,kh,kw]."""
    return np.ascontiguousarray(weight.transpose((2, 3, 0, 1) if depthwise else (3, 2, 0, 1)))


def y_then_x(pairs: bool) -> np.ndarray:
    """Channel order turning TF's (y0, x0, y1, x1, ...) into (y0 … y16, x0 … x16)."""
    if not pairs:
        return np.arange(2 * NUM_KEYPOINTS)
    return np.concatenate([np.arange(0, 2 * NUM_KEYPOINTS, 2), np.arange(1, 2 * NUM_KEYPOINTS, 2)])


def network_state(network: Network, graph: Graph, model: MoveNet) -> dict[str, torch.Tensor]:
    """The module's state dict from the walked graph; every conv node of the graph used once."""
    state = {
        "input_mean": torch.from_numpy(network.mean.reshape(1, -1, 1, 1).copy()),
        "input_scale": torch.from_numpy(network.scale.reshape(1, -1, 1, 1).copy()),
        "input_shift": torch.from_numpy(network.shift.reshape(-1).copy()),
    }
    visited = set()
    for path, conv, stride, activation in network_convs(network):
        if conv.node in visited:
            raise graph.fail(f"conv {conv.node!r} would be used twice (again as {path})")
        check_conv(graph, path, conv, stride, activation)
        weight = tf_to_torch(graph.constant(conv.weight), conv.depthwise)
        bias = graph.constant(conv.bias) if conv.bias else None
        head = path.split(".")[1] if path.startswith("heads.") and path.endswith(".out") else None
        if head in PAIRED_HEADS:
            order = y_then_x(network.head_pairs[head])
            weight, bias = weight[order], bias[order]
        state[f"{path}.conv.weight"] = torch.from_numpy(weight.copy())
        if bias is not None:
            state[f"{path}.conv.bias"] = torch.from_numpy(bias.copy())
        visited.add(conv.node)
    unvisited = sorted(n["name"] for n in graph.nodes.values() if n["op"] in CONV_OPS and n["name"] not in visited)
    if unvisited:
        raise graph.fail(f"conv {unvisited[0]!r} is not part of the module")
    expected = model.state_dict()
    for name, tensor in state.items():
        if name not in expected or expected[name].shape != tensor.shape:
            shape = list(expected[name].shape) if name in expected else "no such tensor"
            raise graph.fail(f"{name}: the graph gives {list(tensor.shape)}, the module has {shape}")
    missing = sorted(set(expected) - set(state))
    if missing:
        raise graph.fail(f"the graph has no weights for the module's {missing[0]!r}")
    return state


# --- decoding constants (for the tests of pose_app/inference/movenet_decode.py) ---------------


def decoding_constants(graph: Graph) -> dict[str, np.ndarray | float]:
    """The constants of the graph's own decoding: the centre weight map multiplied onto the
    centre heatmap ([h, w]) and the constant added to the keypoint distances."""
    network = read_network(graph)
    center_sigmoid = graph.only_user(network.heads["centers"][2].node, "Sigmoid")
    weighting = graph.only_user(center_sigmoid["name"], "Mul")
    (weights,) = [graph.constant(i) for i in graph.inputs(weighting) if i != center_sigmoid["name"]]
    sqrt = next(n for n in graph.nodes.values() if n["op"] == "Sqrt")
    bias_add = graph.only_user(sqrt["name"], "AddV2")
    (bias,) = [graph.constant(i) for i in graph.inputs(bias_add) if i != sqrt["name"]]
    return {"centre_weights": weights.reshape(weights.shape[:2]), "distance_bias": float(bias)}


# --- entry points ------------------------------------------------------------------------------


def default_weights_dir(variant: str) -> Path:
    return WEIGHTS_ROOT / f"movenet-{variant}-tfjs"


def load_graph(folder: Path) -> Graph:
    """The TF.js graph model in `folder` (model.json + its shards), constants dequantised."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MoveNetConversionError(f"MoveNet weights folder {folder} is missing")
    path = folder / "model.json"
    model_json = read_model_json(path)
    tensors = load_graph_tensors(model_json, folder)
    nodes = {node["name"]: node for node in model_json["modelTopology"]["node"]}
    return Graph(nodes, tensors, path)


def convert_graph(graph: Graph, variant: str) -> MoveNet:
    """The MoveNet module holding the graph's weights, in eval mode."""
    network = read_network(graph)
    model = MoveNet(network_config(network, variant, graph))
    model.load_state_dict(network_state(network, graph, model), strict=True)
    return model.eval()


def pretrained_movenet(variant: str, weights_dir: Path | None = None) -> MoveNet:
    """MoveNet SinglePose 'lightning' or 'thunder' with Google's weights (TF.js graph model in
    `weights_dir`, default ../shared/weights/movenet-<variant>-tfjs), in eval mode."""
    if variant not in VARIANTS:
        raise MoveNetConversionError(f"unknown MoveNet variant {variant!r}; choose from {list(VARIANTS)}")
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir(variant)
    return convert_graph(load_graph(folder), variant)
