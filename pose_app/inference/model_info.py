"""What a pose-app ONNX file says about itself: its metadata as plain data (no onnxruntime).

Every family's file carries the same core keys (docs/architecture.md, "The ONNX contract"):
`model_family`, `model_name`, `output_stride`, `keypoint_names`, `feature_blocks`,
`weights_source`, `license`; a family may add its own (`width_multiplier` for PoseNet,
`input_size` for networks trained at one size). Files written before families existed have no
`model_family`: they are PoseNets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.errors import PoseAppError

INPUT_NAME = "image"
# Files exported before the family key existed are PoseNets.
DEFAULT_FAMILY = "posenet"


@dataclass(frozen=True)
class FeatureBlock:
    """One conv block whose activation the model exposes as an output."""

    name: str
    block: int
    channels: int
    stride: int
    dilation: int
    receptive_field: int


@dataclass(frozen=True)
class ModelInfo:
    """What the model's ONNX metadata says about it."""

    name: str
    path: Path
    family: str
    output_stride: int
    keypoint_names: tuple[str, ...]
    feature_blocks: tuple[FeatureBlock, ...]
    weights_source: str
    license: str
    # The (w, h) the network was trained at and always runs at (MoveNet); None: any valid size.
    input_size: tuple[int, int] | None = None
    width_multiplier: float | None = None
    # Every metadata property as stored (strings): what a family or a report needs beyond the
    # fields above (e.g. `int8_scheme`).
    properties: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


def model_info(properties: dict[str, str], path: Path) -> ModelInfo:
    """ModelInfo from a file's metadata properties; PoseAppError naming `path` when a key is
    missing or malformed, or the keypoints are not COCO's 17."""
    try:
        keypoint_names = tuple(json.loads(properties["keypoint_names"]))
        input_size = properties.get("input_size")
        width = properties.get("width_multiplier")
        info = ModelInfo(
            name=properties.get("model_name", path.stem),
            path=path,
            family=properties.get("model_family", DEFAULT_FAMILY),
            output_stride=int(properties["output_stride"]),
            keypoint_names=keypoint_names,
            feature_blocks=tuple(FeatureBlock(**block) for block in json.loads(properties["feature_blocks"])),
            weights_source=properties.get("weights_source", "unknown"),
            license=properties.get("license", "unknown"),
            input_size=tuple(int(v) for v in json.loads(input_size)) if input_size else None,
            width_multiplier=float(width) if width is not None else None,
            properties=dict(properties),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise PoseAppError(f"{path} is not a pose-app model: metadata {error} missing or invalid") from None
    if keypoint_names != KEYPOINT_NAMES:
        raise PoseAppError(f"{path} predicts keypoints {list(keypoint_names)}, expected COCO's 17")
    if info.input_size is not None and len(info.input_size) != 2:
        raise PoseAppError(f"{path} is not a pose-app model: input_size {info.input_size} is not [w, h]")
    return info
