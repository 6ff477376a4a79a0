"""The PyTorch PoseNet: architecture, output sizes, feature blocks and strict weight conversion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models.convert import WeightConversionError, pretrained_posenet
from models.posenet import PoseNet, PoseNetConfig, output_size

# MobileNetV1 1.0 also strides in block 12 (native output stride 32).
STRIDE32_BLOCKS = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
CHECKPOINT_075 = "posenet-mobilenet-v1-075"
GRAPH_050 = "posenet-mobilenet-v1-050-graph"


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("width", [0.5, 0.75, 1.0])
def test_output_shapes_follow_size_formula(output_stride: int, width: float) -> None:
    config = PoseNetConfig(width, output_stride, STRIDE32_BLOCKS)
    height, width_px = 2 * 32 + 1, 3 * 32 + 1  # non-square and valid for every stride
    with torch.no_grad():
        out = PoseNet(config)(torch.rand(2, 3, height, width_px) * 255)
    h, w = (height - 1) // output_stride + 1, (width_px - 1) // output_stride + 1
    assert out.heatmap_logits.shape == (2, 17, h, w)
    assert out.offsets.shape == (2, 34, h, w)
    assert out.displacement_fwd.shape == out.displacement_bwd.shape == (2, 32, h, w)
    assert out.features == ()
    assert (output_size(height, output_stride), output_size(width_px, output_stride)) == (h, w)


def test_output_size_rejects_invalid_input_size() -> None:
    with pytest.raises(ValueError, match="not k \\* 16 \\+ 1"):
        output_size(256, 16)


def test_output_stride_above_native_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="above this backbone's native stride 16"):
        PoseNetConfig(output_stride=32)
    with pytest.raises(ValueError, match="not reachable"):
        PoseNetConfig(output_stride=12)


def test_output_stride_8_dilates_after_the_target_stride_like_tfjs() -> None:
    # TF.js posenet's model-stride8.json: block 6 loses its stride and keeps rate 1, blocks 7-13
    # get rate 2 (checked against the graph itself in test_graph_geometry_is_checked).
    layers = PoseNetConfig(output_stride=8).strides_and_dilations()
    assert layers[:6] == ((2, 1), (1, 1), (2, 1), (1, 1), (2, 1), (1, 1))
    assert layers[6] == (1, 1)
    assert layers[7:] == ((1, 2),) * 7
    stride8_of_native32 = PoseNetConfig(1.0, 8, STRIDE32_BLOCKS).strides_and_dilations()
    # Block 12 would stride: it keeps rate 2 and doubles the rate of block 13.
    assert [d for _, d in stride8_of_native32[7:]] == [2, 2, 2, 2, 2, 2, 4]


def test_feature_blocks_describe_the_returned_features() -> None:
    model = PoseNet(PoseNetConfig(0.75, 16))
    blocks = model.feature_blocks()
    size = 4 * 16 + 1
    with torch.no_grad():
        features = model(torch.rand(1, 3, size, size) * 255, return_features=True).features
    assert [b["name"] for b in blocks] == [f"feature_{i}" for i in range(14)]
    assert [b["channels"] for b in blocks] == [24, 48, 96, 96, 192, 192] + [384] * 8
    assert [b["stride"] for b in blocks] == [2, 2, 4, 4, 8, 8] + [16] * 8
    for block, feature in zip(blocks, features):
        side = (size - 1) // block["stride"] + 1
        assert feature.shape == (1, block["channels"], side, side)
        assert float(feature.min()) >= 0.0 and float(feature.max()) <= 6.0  # ReLU6
    # 3x3 convs: each adds 2 * dilation * (stride before it) pixels.
    assert [b["receptive_field"] for b in blocks[:4]] == [3, 7, 11, 19]
    assert blocks[-1]["receptive_field"] == 283


def test_network_is_trainable() -> None:
    model = PoseNet(PoseNetConfig(0.5, 16)).train()
    out = model(torch.rand(2, 3, 33, 33) * 255)
    target = torch.zeros_like(out.heatmap_logits)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.heatmap_logits, target)
    regression = [out.offsets, out.displacement_fwd, out.displacement_bwd]
    (loss + sum(r.abs().mean() for r in regression)).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert [name for name, g in grads.items() if g is None] == []
    assert float(grads["conv0.weight"].abs().sum()) > 0


@pytest.fixture
def checkpoint_copy(shared_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the 0.75 checkpoint folder (tensor files linked, manifest copied)."""
    source = shared_dir / "weights" / CHECKPOINT_075
    copy = tmp_path / CHECKPOINT_075
    copy.mkdir()
    for file in source.iterdir():
        if file.name == "manifest.json":
            shutil.copy(file, copy / file.name)
        else:
            (copy / file.name).symlink_to(file)
    return copy


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("name", "channels"), [("posenet-075", 384), ("posenet-050", 256)])
def test_both_weight_sources_load(shared_dir: Path, name: str, channels: int) -> None:
    for output_stride in (16, 8):
        model = pretrained_posenet(name, output_stride, shared_dir / "weights")
        assert model.config.output_stride == output_stride
        assert model.heatmap.weight.shape == (17, channels, 1, 1)
        assert not model.training


def test_missing_tensor_is_named(checkpoint_copy: Path) -> None:
    edit_json(
        checkpoint_copy / "manifest.json",
        lambda m: m.pop("MobilenetV1/Conv2d_5_pointwise/biases"),
    )
    missing = "'MobilenetV1/Conv2d_5_pointwise/biases'.*missing"
    with pytest.raises(WeightConversionError, match=missing):
        pretrained_posenet("posenet-075", weights_root=checkpoint_copy.parent)


def test_misshaped_tensor_is_named(checkpoint_copy: Path) -> None:
    # Same number of floats as the real [3,3,3,24], so only the shape check can catch it.
    def transpose_conv0(manifest: dict) -> None:
        manifest["MobilenetV1/Conv2d_0/weights"]["shape"] = [3, 3, 24, 3]

    edit_json(checkpoint_copy / "manifest.json", transpose_conv0)
    with pytest.raises(WeightConversionError, match="'MobilenetV1/Conv2d_0/weights'.*shape"):
        pretrained_posenet("posenet-075", weights_root=checkpoint_copy.parent)


def test_truncated_tensor_file_is_named(checkpoint_copy: Path) -> None:
    file = checkpoint_copy / "MobilenetV1_Conv2d_1_depthwise_biases"
    data = file.read_bytes()
    file.unlink()
    file.write_bytes(data[:-4])
    with pytest.raises(WeightConversionError, match="'MobilenetV1/Conv2d_1_depthwise/biases'"):
        pretrained_posenet("posenet-075", weights_root=checkpoint_copy.parent)


def test_unused_tensor_is_named(checkpoint_copy: Path) -> None:
    def add_extra(manifest: dict) -> None:
        manifest["MobilenetV1/Conv2d_14/biases"] = manifest["MobilenetV1/Conv2d_0/biases"]

    edit_json(checkpoint_copy / "manifest.json", add_extra)
    with pytest.raises(WeightConversionError, match="'MobilenetV1/Conv2d_14/biases'.*not used"):
        pretrained_posenet("posenet-075", weights_root=checkpoint_copy.parent)


def test_graph_geometry_is_checked(shared_dir: Path, tmp_path: Path) -> None:
    source = shared_dir / "weights" / GRAPH_050
    copy = tmp_path / GRAPH_050
    copy.mkdir()
    (copy / "group1-shard1of1.bin").symlink_to(source / "group1-shard1of1.bin")
    # The stride-8 graph posing as the stride-16 one: its dilations disagree with the config.
    shutil.copy(source / "model-stride8.json", copy / "model-stride16.json")
    with pytest.raises(WeightConversionError, match="Conv2d_6_depthwise.*\\(1, 1\\).*\\(2, 1\\)"):
        pretrained_posenet("posenet-050", 16, weights_root=tmp_path)
