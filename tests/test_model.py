"""The PyTorch PoseNet: architecture, output sizes, feature blocks and strict weight conversion.

The converter's checks run on TF.js weight files this module writes in Google's layouts (names,
TF shapes, raw float32 files, graph nodes, as in ../shared/weights) from a randomly initialised
PoseNet; that Google's own files load is tested where ../shared is present."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
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


# Google's TF.js layouts, written out here independently of models/convert.py (checked against
# the files in ../shared/weights): TF variable names per conv, TF weight shapes [kh, kw, in, out]
# (depthwise [kh, kw, C, 1]), and in graph models the folded biases under a second MobilenetV1/.
HEADS = ("heatmap", "offset", "displacement_fwd", "displacement_bwd")


def tf_variables(model: PoseNet, graph: bool) -> list[tuple[str, np.ndarray]]:
    """(TF name, array in TF layout) of every weight and bias of `model`, as Google names them in
    a checkpoint (graph=False) or a graph model (graph=True)."""
    params = {name: p.detach().numpy() for name, p in model.named_parameters()}
    scope = "MobilenetV1/MobilenetV1" if graph else "MobilenetV1"
    convs = [("conv0", "Conv2d_0", False)]
    for i in range(1, 14):
        convs += [(f"blocks.{i - 1}.depthwise", f"Conv2d_{i}_depthwise", True)]
        convs += [(f"blocks.{i - 1}.pointwise", f"Conv2d_{i}_pointwise", False)]
    variables = []
    for module, tf_scope, depthwise in convs:
        weight = params[f"{module}.weight"]  # torch [out, in, kh, kw]; depthwise [C, 1, kh, kw]
        tf_weight = weight.transpose(2, 3, 0, 1) if depthwise else weight.transpose(2, 3, 1, 0)
        weight_name = "depthwise_weights" if depthwise else "weights"
        bias_name = ("depthwise_bias" if depthwise else "Conv2D_bias") if graph else "biases"
        variables += [(f"MobilenetV1/{tf_scope}/{weight_name}", tf_weight)]
        variables += [(f"{scope}/{tf_scope}/{bias_name}", params[f"{module}.bias"])]
    for head in HEADS:  # PoseNet's second set of heads; the module has the head's name
        weight = params[f"{head}.weight"].transpose(2, 3, 1, 0)
        variables += [(f"MobilenetV1/{head}_2/weights", weight)]
        variables += [(f"MobilenetV1/{head}_2/{'Conv2D_bias' if graph else 'biases'}", params[f"{head}.bias"])]
    return variables


def write_checkpoint(model: PoseNet, folder: Path) -> Path:
    """`model` as a TF.js checkpoint folder like Google's: manifest.json {name: {filename, shape}}
    and one raw little-endian float32 file per variable ("/" -> "_"), plus the unused `_1` heads."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    variables = tf_variables(model, graph=False)
    unused = [(name.replace("_2/", "_1/"), rng.normal(size=array.shape)) for name, array in variables if "_2/" in name]
    manifest = {}
    for name, array in variables + unused:
        filename = name.replace("/", "_")
        (folder / filename).write_bytes(np.ascontiguousarray(array, "<f4").tobytes())
        manifest[name] = {"filename": filename, "shape": list(array.shape)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


# TF.js PoseNet's graph models, per conv of the backbone (conv0, then each block's depthwise conv;
# pointwise convs and heads are 1x1, stride 1): (stride, dilation). Stride 8: block 6 loses its
# stride, blocks 7-13 dilate by 2 (Google's model-stride8.json).
GRAPH_GEOMETRY = {
    16: [(2, 1), (1, 1), (2, 1), (1, 1), (2, 1), (1, 1), (2, 1)] + [(1, 1)] * 7,
    8: [(2, 1), (1, 1), (2, 1), (1, 1), (2, 1), (1, 1), (1, 1)] + [(1, 2)] * 7,
}


def write_graph_model(model: PoseNet, folder: Path) -> Path:
    """`model`'s weights as a TF.js graph model folder like Google's posenet 0.50 one: one shard
    with every tensor back to back, and model-stride16.json and model-stride8.json whose conv
    nodes carry the strides and dilations of GRAPH_GEOMETRY (TF.js writes Conv2D dilations as
    [1, d, d, 1] and depthwise ones as [d, d, 1, 1])."""
    folder.mkdir(parents=True)
    variables = tf_variables(model, graph=True)
    (folder / "group1-shard1of1.bin").write_bytes(
        b"".join(np.ascontiguousarray(array, "<f4").tobytes() for _, array in variables)
    )
    entries = [{"name": name, "shape": list(array.shape), "dtype": "float32"} for name, array in variables]
    manifest = [{"paths": ["group1-shard1of1.bin"], "weights": entries}]
    weights = [name for name, _ in variables if not name.endswith(("bias", "biases"))]
    for output_stride, geometry in GRAPH_GEOMETRY.items():
        nodes = [{"name": "sub_2", "op": "Placeholder", "attr": {}}]
        nodes += [{"name": name, "op": "Const", "attr": {}} for name, _ in variables]
        previous = "sub_2"
        for weight in weights:
            layer = weight.split("/")[1]
            depthwise = layer.endswith("_depthwise")
            stride, dilation = (1, 1)
            if layer == "Conv2d_0" or depthwise:
                stride, dilation = geometry[int(layer.split("_")[1])]
            dilations = [dilation, dilation, 1, 1] if depthwise else [1, dilation, dilation, 1]
            node = {
                "name": f"{weight}/conv", "op": "DepthwiseConv2dNative" if depthwise else "Conv2D",
                "input": [previous, weight],
                "attr": {
                    "strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}},
                    "dilations": {"list": {"i": [str(d) for d in dilations]}},
                    "padding": {"s": "U0FNRQ=="},
                },
            }
            nodes.append(node)
            if "_2/" not in weight:
                previous = node["name"]
        graph = {"format": "graph-model", "modelTopology": {"node": nodes}, "weightsManifest": manifest}
        (folder / f"model-stride{output_stride}.json").write_text(json.dumps(graph))
    return folder


def random_posenet(width: float, seed: int = 0) -> PoseNet:
    torch.manual_seed(seed)
    return PoseNet(PoseNetConfig(width, 16)).eval()


def assert_same_weights(loaded: PoseNet, written: PoseNet) -> None:
    expected = written.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0, msg=name)


def test_a_checkpoint_in_googles_layout_loads_every_weight_in_place(tmp_path: Path) -> None:
    written = random_posenet(0.75)
    write_checkpoint(written, tmp_path / CHECKPOINT_075)
    for output_stride in (16, 8):
        model = pretrained_posenet("posenet-075", output_stride, tmp_path)
        assert model.config.output_stride == output_stride and not model.training
        assert_same_weights(model, written)


def test_a_graph_model_in_googles_layout_loads_every_weight_in_place(tmp_path: Path) -> None:
    written = random_posenet(0.5, seed=1)
    write_graph_model(written, tmp_path / GRAPH_050)
    for output_stride in (16, 8):
        model = pretrained_posenet("posenet-050", output_stride, tmp_path)
        assert model.config.output_stride == output_stride and not model.training
        assert model.heatmap.weight.shape == (17, 256, 1, 1)
        assert_same_weights(model, written)


@pytest.fixture
def checkpoint_copy(tmp_path: Path) -> Path:
    """A writable 0.75 checkpoint folder in Google's layout (random weights)."""
    return write_checkpoint(random_posenet(0.75), tmp_path / CHECKPOINT_075)


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("name", "channels"), [("posenet-075", 384), ("posenet-050", 256)])
def test_both_weight_sources_load(shared_dir: Path, name: str, channels: int) -> None:
    """Google's own files, as ../shared holds them."""
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


def test_graph_geometry_is_checked_in_a_written_graph_model(tmp_path: Path) -> None:
    write_graph_model(random_posenet(0.5), tmp_path / "written" / GRAPH_050)
    copy = tmp_path / GRAPH_050
    copy.mkdir()
    (copy / "group1-shard1of1.bin").symlink_to(tmp_path / "written" / GRAPH_050 / "group1-shard1of1.bin")
    # The stride-8 graph posing as the stride-16 one: its dilations disagree with the config.
    shutil.copy(tmp_path / "written" / GRAPH_050 / "model-stride8.json", copy / "model-stride16.json")
    with pytest.raises(WeightConversionError, match="Conv2d_6_depthwise.*\\(1, 1\\).*\\(2, 1\\)"):
        pretrained_posenet("posenet-050", 16, weights_root=tmp_path)


def test_graph_geometry_is_checked(shared_dir: Path, tmp_path: Path) -> None:
    """Google's stride-8 graph: also checks that PoseNetConfig's stride-8 layout is TF.js's."""
    source = shared_dir / "weights" / GRAPH_050
    copy = tmp_path / GRAPH_050
    copy.mkdir()
    (copy / "group1-shard1of1.bin").symlink_to(source / "group1-shard1of1.bin")
    # The stride-8 graph posing as the stride-16 one: its dilations disagree with the config.
    shutil.copy(source / "model-stride8.json", copy / "model-stride16.json")
    with pytest.raises(WeightConversionError, match="Conv2d_6_depthwise.*\\(1, 1\\).*\\(2, 1\\)"):
        pretrained_posenet("posenet-050", 16, weights_root=tmp_path)
