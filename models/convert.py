"""Google's TF.js PoseNet weights -> models.posenet.PoseNet, with a strict tensor mapping.

Two sources are supported (see ../shared/README.md):
- a TF.js *checkpoint* folder: manifest.json maps each variable to a raw float32 file;
- a TF.js *graph model*: model-stride{S}.json holds the graph and `weightsManifest`, and the
  .bin shard(s) hold all tensors concatenated in manifest order. Its conv nodes also tell the
  strides and dilations the graph was built with, which must agree with our config.

Every tensor must be used exactly once (only PoseNet's unused `_1` heads are skipped, by name),
none may be missing and every shape must match, otherwise WeightConversionError names it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.posenet import NUM_LAYERS, PoseNet, PoseNetConfig

WEIGHTS_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "weights"

# PoseNet checkpoints carry a second, unused set of heads (`*_1`); the model uses `*_2`.
IGNORED_SCOPES = frozenset({"heatmap_1", "offset_1", "displacement_fwd_1", "displacement_bwd_1"})
HEAD_SCOPES = {
    "heatmap": "heatmap_2",
    "offset": "offset_2",
    "displacement_fwd": "displacement_fwd_2",
    "displacement_bwd": "displacement_bwd_2",
}


class WeightConversionError(ValueError):
    """The TF.js weights do not fit the PoseNet module (message names the tensor)."""


@dataclass(frozen=True)
class Layer:
    """One conv of the network: its PyTorch module path, TF variable scope and kind."""

    module: str  # e.g. "blocks.2.depthwise"
    scope: str  # e.g. "Conv2d_3_depthwise"
    depthwise: bool
    backbone: bool


def network_layers() -> tuple[Layer, ...]:
    """All convs of PoseNet in TF naming: conv0, 13 x (depthwise, pointwise), 4 heads."""
    layers = [Layer("conv0", "Conv2d_0", depthwise=False, backbone=True)]
    for i in range(1, NUM_LAYERS):
        layers.append(Layer(f"blocks.{i - 1}.depthwise", f"Conv2d_{i}_depthwise", True, True))
        layers.append(Layer(f"blocks.{i - 1}.pointwise", f"Conv2d_{i}_pointwise", False, True))
    layers += [Layer(module, scope, False, False) for module, scope in HEAD_SCOPES.items()]
    return tuple(layers)


def checkpoint_names(layer: Layer) -> tuple[str, str]:
    """(weight, bias) variable names in the TF.js checkpoint manifest."""
    weight = "depthwise_weights" if layer.depthwise else "weights"
    return f"MobilenetV1/{layer.scope}/{weight}", f"MobilenetV1/{layer.scope}/biases"


def graph_names(layer: Layer) -> tuple[str, str]:
    """(weight, bias) tensor names in the TF.js graph model (folded BatchNorm biases moved)."""
    weight_name = checkpoint_names(layer)[0]
    if not layer.backbone:
        return weight_name, f"MobilenetV1/{layer.scope}/Conv2D_bias"
    bias = "depthwise_bias" if layer.depthwise else "Conv2D_bias"
    return weight_name, f"MobilenetV1/MobilenetV1/{layer.scope}/{bias}"


def tf_weight_to_torch(weight: np.ndarray, depthwise: bool) -> torch.Tensor:
    """TF conv [kh,kw,in,out] -> torch [out,in,kh,kw]; TF depthwise [kh,kw,C,1] -> [C,1,kh,kw]."""
    axes = (2, 3, 0, 1) if depthwise else (3, 2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(weight.transpose(axes)))


def torch_weight_tf_shape(shape: torch.Size, depthwise: bool) -> tuple[int, ...]:
    """The TF shape a torch conv weight of this shape comes from (inverse of the transpose)."""
    out, inp, kh, kw = shape
    return (kh, kw, out, inp) if depthwise else (kh, kw, inp, out)


def raw_float32(data: bytes, name: str, shape: list[int], source: Path) -> np.ndarray:
    """Little-endian float32 bytes -> array of `shape`, checking the byte count."""
    expected = 4 * math.prod(shape)
    if len(data) != expected:
        raise WeightConversionError(
            f"tensor {name!r} in {source} has {len(data)} bytes, its shape {shape} needs {expected}"
        )
    return np.frombuffer(data, dtype="<f4").reshape(shape)


def read_json(path: Path) -> dict:
    """A JSON file of the TF.js weights (manifest, model graph), or WeightConversionError."""
    if not path.is_file():
        raise WeightConversionError(f"missing weights file {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightConversionError(f"cannot read {path}: {error}") from None


def load_checkpoint_tensors(folder: Path) -> dict[str, np.ndarray]:
    """TF.js checkpoint: manifest.json {name: {filename, shape}} -> {name: array (TF layout)}."""
    manifest = read_json(folder / "manifest.json")
    tensors = {}
    for name, entry in manifest.items():
        path = folder / entry["filename"]
        if not path.is_file():
            raise WeightConversionError(f"tensor {name!r}: file {path} is missing")
        tensors[name] = raw_float32(path.read_bytes(), name, entry["shape"], path)
    return tensors


def load_graph_tensors(graph: dict, folder: Path) -> dict[str, np.ndarray]:
    """TF.js graph model: the shards of each manifest group hold its tensors back to back."""
    tensors = {}
    for group in graph["weightsManifest"]:
        blob = b"".join(read_shard(folder / shard) for shard in group["paths"])
        start = 0
        for entry in group["weights"]:
            name = entry["name"]
            if entry.get("dtype", "float32") != "float32" or "quantization" in entry:
                raise WeightConversionError(f"tensor {name!r} is not plain float32")
            end = start + 4 * math.prod(entry["shape"])
            tensors[name] = raw_float32(blob[start:end], name, entry["shape"], folder)
            start = end
        if start != len(blob):
            raise WeightConversionError(
                f"{group['paths']} hold {len(blob)} bytes, the manifest describes {start}"
            )
    return tensors


def read_shard(path: Path) -> bytes:
    if not path.is_file():
        raise WeightConversionError(f"missing weights shard {path}")
    return path.read_bytes()


def graph_conv_geometry(graph: dict) -> dict[str, tuple[int, int]]:
    """{weight tensor name: (stride, dilation)} of every Conv2D/DepthwiseConv2dNative node."""
    geometry = {}
    for node in graph["modelTopology"]["node"]:
        if node["op"] not in ("Conv2D", "DepthwiseConv2dNative"):
            continue
        attr = node["attr"]
        strides = [int(s) for s in attr["strides"]["list"]["i"]]  # NHWC: [1, s, s, 1]
        # TF.js stores depthwise dilations as [d, d, 1, 1], Conv2D ones as [1, d, d, 1]:
        # the spatial rate is the one entry that is not 1.
        dilations = [int(d) for d in attr.get("dilations", {}).get("list", {}).get("i", [1])]
        geometry[node["input"][1]] = (strides[1], max(dilations))
    return geometry


def check_graph_geometry(graph: dict, model: PoseNet, graph_path: Path) -> None:
    """The graph's strides and dilations must equal those of our config, layer by layer."""
    geometry = graph_conv_geometry(graph)
    layer_geometry = model.config.strides_and_dilations()
    for layer in network_layers():
        weight_name = graph_names(layer)[0]
        if weight_name not in geometry:
            raise WeightConversionError(f"{graph_path} has no conv node reading {weight_name!r}")
        expected = (1, 1)
        if layer.module == "conv0":
            expected = layer_geometry[0]
        elif layer.depthwise:
            expected = layer_geometry[int(layer.scope.split("_")[1])]
        if geometry[weight_name] != expected:
            raise WeightConversionError(
                f"{graph_path}: conv {weight_name!r} has (stride, dilation) "
                f"{geometry[weight_name]}, the config gives {expected}"
            )


def map_tensors(
    model: PoseNet,
    tensors: dict[str, np.ndarray],
    names: Callable[[Layer], tuple[str, str]],
    source: Path,
) -> dict[str, torch.Tensor]:
    """Strictly turn TF tensors into the model's state dict (every tensor used, shapes checked)."""
    params = dict(model.named_parameters())
    used = {name for name in tensors if name.split("/")[-2] in IGNORED_SCOPES}
    state = {}
    for layer in network_layers():
        weight_name, bias_name = names(layer)
        for name in (weight_name, bias_name):
            if name not in tensors:
                raise WeightConversionError(f"tensor {name!r} is missing from {source}")
        weight = params[f"{layer.module}.weight"]
        expected_shapes = {
            weight_name: torch_weight_tf_shape(weight.shape, layer.depthwise),
            bias_name: tuple(params[f"{layer.module}.bias"].shape),
        }
        for name, expected in expected_shapes.items():
            if tensors[name].shape != expected:
                raise WeightConversionError(
                    f"tensor {name!r} in {source} has shape {list(tensors[name].shape)}, "
                    f"the model needs {list(expected)}"
                )
        state[f"{layer.module}.weight"] = tf_weight_to_torch(tensors[weight_name], layer.depthwise)
        state[f"{layer.module}.bias"] = torch.from_numpy(tensors[bias_name].copy())
        used |= {weight_name, bias_name}
    unused = sorted(set(tensors) - used)
    if unused:
        raise WeightConversionError(f"tensor {unused[0]!r} in {source} is not used by the model")
    return state


def checkpoint_state(model: PoseNet, folder: Path) -> dict[str, torch.Tensor]:
    return map_tensors(model, load_checkpoint_tensors(folder), checkpoint_names, folder)


def graph_state(model: PoseNet, folder: Path) -> dict[str, torch.Tensor]:
    graph_path = folder / f"model-stride{model.config.output_stride}.json"
    graph = read_json(graph_path)
    check_graph_geometry(graph, model, graph_path)
    return map_tensors(model, load_graph_tensors(graph, folder), graph_names, graph_path)


@dataclass(frozen=True)
class PretrainedSource:
    """Where a named pretrained model's weights are and how to read them."""

    folder: str
    width_multiplier: float
    load_state: Callable[[PoseNet, Path], dict[str, torch.Tensor]]


PRETRAINED = {
    "posenet-075": PretrainedSource("posenet-mobilenet-v1-075", 0.75, checkpoint_state),
    "posenet-050": PretrainedSource("posenet-mobilenet-v1-050-graph", 0.50, graph_state),
}


def pretrained_posenet(
    name: str, output_stride: int = 16, weights_root: Path = WEIGHTS_ROOT
) -> PoseNet:
    """PoseNet with Google's TF.js weights ('posenet-075' or 'posenet-050'), in eval mode."""
    if name not in PRETRAINED:
        raise WeightConversionError(
            f"unknown pretrained model {name!r}; choose from {list(PRETRAINED)}"
        )
    source = PRETRAINED[name]
    folder = Path(weights_root) / source.folder
    if not folder.is_dir():
        raise WeightConversionError(f"weights folder {folder} is missing")
    config = PoseNetConfig(width_multiplier=source.width_multiplier, output_stride=output_stride)
    model = PoseNet(config)
    model.load_state_dict(source.load_state(model, folder), strict=True)
    return model.eval()
