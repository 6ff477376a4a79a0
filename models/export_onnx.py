"""Export a PoseNet to ONNX following the contract in docs/architecture.md.

`python -m models.export_onnx` regenerates the shipped models in assets/models/ from Google's
TF.js weights in ../shared/weights: these PoseNets, then the MoveNets (models/export_movenet.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from models.convert import pretrained_posenet
from models.posenet import NUM_LAYERS, PoseNet
from pose_app.core.skeleton import KEYPOINT_NAMES, PART_TREE_EDGES, SKELETON_EDGES
from pose_app.inference.families.posenet import HEAD_OUTPUTS
from pose_app.inference.model_info import INPUT_NAME

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
OPSET = 18
OUTPUT_NAMES = HEAD_OUTPUTS + tuple(f"feature_{i}" for i in range(NUM_LAYERS))
# A valid size for tracing; the exported graph keeps N, H and W symbolic.
TRACE_SIZE = (1, 3, 257, 193)
INPUT_FORMAT = (
    "float32 [N,3,H,W] RGB 0..255 (normalised to x/127.5-1 inside); "
    "H and W valid when (size - 1) % output_stride == 0"
)
WEIGHTS_SOURCE = (
    "Google PoseNet (TensorFlow.js models), MobileNetV1 {width} {source}, converted by "
    "models/convert.py"
)
LICENSE = "Apache-2.0 (weights Copyright Google LLC); see NOTICE"

# Shipped name -> (pretrained weights, output stride, weights source description).
SHIPPED = {
    "posenet-075": ("posenet-075", 16, WEIGHTS_SOURCE.format(width="0.75", source="checkpoint")),
    "posenet-050": ("posenet-050", 16, WEIGHTS_SOURCE.format(width="0.50", source="graph model")),
    "posenet-075-s8": ("posenet-075", 8, WEIGHTS_SOURCE.format(width="0.75", source="checkpoint")),
}


class OnnxPoseNet(nn.Module):
    """PoseNet with the app's output layout: sigmoid heatmaps, three heads, then 14 features."""

    def __init__(self, model: PoseNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        out = self.model(image, return_features=True)
        heads = (torch.sigmoid(out.heatmap_logits), out.offsets)
        return heads + (out.displacement_fwd, out.displacement_bwd) + out.features


def metadata(model: PoseNet, model_name: str, weights_source: str, license: str) -> dict[str, str]:
    """The metadata_props of the contract: all strings, lists JSON-encoded."""
    return {
        "model_name": model_name,
        "output_stride": str(model.config.output_stride),
        "width_multiplier": str(model.config.width_multiplier),
        "keypoint_names": json.dumps(list(KEYPOINT_NAMES)),
        "skeleton_edges": json.dumps([list(edge) for edge in SKELETON_EDGES]),
        "part_tree_edges": json.dumps([list(edge) for edge in PART_TREE_EDGES]),
        "feature_blocks": json.dumps(model.feature_blocks()),
        "weights_source": weights_source,
        "license": license,
        "input_format": INPUT_FORMAT,
    }


def export_onnx(
    model: PoseNet, path: Path, *, model_name: str, weights_source: str, license: str
) -> Path:
    """Write `model` as a checked, self-contained ONNX file at `path` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = OnnxPoseNet(model).eval()
    batch, height, width = (torch.export.Dim(n, min=1) for n in ("batch", "height", "width"))
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            (torch.zeros(TRACE_SIZE),),
            dynamo=True,
            verbose=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={"image": {0: batch, 2: height, 3: width}},
            external_data=False,
            optimize=True,
        )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata(model, model_name, weights_source, license))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, path)
    return path


def export_shipped_models(directory: Path = ASSETS_DIR) -> list[Path]:
    """Regenerate every shipped model from the pretrained weights into `directory`."""
    paths = []
    for model_name, (pretrained, output_stride, source) in SHIPPED.items():
        model = pretrained_posenet(pretrained, output_stride=output_stride)
        paths.append(
            export_onnx(
                model,
                directory / f"{model_name}.onnx",
                model_name=model_name,
                weights_source=source,
                license=LICENSE,
            )
        )
    return paths


def main() -> None:
    from models.export_movenet import export_shipped_movenets  # the MoveNet family's own exporter

    for path in export_shipped_models() + export_shipped_movenets():
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
