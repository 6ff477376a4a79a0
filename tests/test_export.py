"""ONNX export: torch == onnxruntime on real images, the output/metadata contract, and the
committed assets/models/*.onnx being what the code produces now.

Google's weights come in two ways: converted from ../shared's TF.js files by models/convert.py
(only where it is present: the tests that the committed files are that conversion), or read back
from the committed ONNX files into the PyTorch PoseNet (everywhere: the export, the contract and
the architecture need a real PoseNet, not these particular files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from support import SHARED, committed_posenet, requires_shared

from models.convert import pretrained_posenet
from models.export_onnx import ASSETS_DIR, LICENSE, OUTPUT_NAMES, SHIPPED, export_onnx, metadata
from models.posenet import PoseNet
from pose_app.core.skeleton import KEYPOINT_NAMES, PART_TREE_EDGES
from pose_app.inference.engine import PoseEngine
from pose_app.inference.families.posenet import PAD_VALUE, input_transform
from pose_app.inference.model_info import INPUT_NAME
from pose_app.inference.preprocess import preprocess
from pose_app.io.sources import read_image

# float32 rounding: torch and onnxruntime sum convolutions in different orders and are both about
# 1e-4 px away from a float64 reference on the pixel-valued heads, so outputs are compared
# relative to their range (measured up to 7e-5; kernels differ between CPUs, hence 2e-4).
# Heatmaps (0..1) are also held to an absolute 1e-4.
RELATIVE_TOLERANCE = 2e-4


@pytest.fixture(scope="module")
def picture(group_image) -> np.ndarray:
    """Three people, 854x480 (tests/media.py)."""
    return read_image(group_image.path)


def real_input(frame: np.ndarray, resolution: int, stride: int) -> np.ndarray:
    """The picture letterboxed like the app does: float32 [1,3,H,W], 0..255."""
    height, width = frame.shape[:2]
    return preprocess(frame, input_transform(width, height, resolution, stride), PAD_VALUE)


def torch_outputs(model: PoseNet, image: np.ndarray) -> list[np.ndarray]:
    """The contract's outputs, in order, computed by the PyTorch model."""
    with torch.no_grad():
        out = model(torch.from_numpy(image), return_features=True)
    heatmaps = torch.sigmoid(out.heatmap_logits)
    heads = [heatmaps, out.offsets, out.displacement_fwd, out.displacement_bwd]
    return [t.numpy() for t in heads + list(out.features)]


def ort_outputs(path: Path, image: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(OUTPUT_NAMES), {INPUT_NAME: image})


def assert_outputs_match(expected: list[np.ndarray], actual: list[np.ndarray]) -> None:
    for name, e, a in zip(OUTPUT_NAMES, expected, actual):
        assert a.shape == e.shape, name
        scale = max(1.0, float(np.abs(e).max()))
        assert float(np.abs(a - e).max()) < RELATIVE_TOLERANCE * scale, name


def export_075(model: PoseNet, folder: Path) -> Path:
    _, _, source = SHIPPED["posenet-075"]
    return export_onnx(
        model, folder / "posenet-075.onnx", model_name="posenet-075", weights_source=source, license=LICENSE
    )


@pytest.fixture(scope="module")
def model_075() -> PoseNet:
    """Google's posenet-075 weights, read back from the committed ONNX file."""
    return committed_posenet("posenet-075")


@pytest.fixture(scope="module")
def exported_075(model_075: PoseNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_075(model_075, tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def google_075() -> PoseNet:
    """Google's posenet-075 weights converted from ../shared's TF.js checkpoint (tests that use it
    are marked requires_shared)."""
    return pretrained_posenet("posenet-075", weights_root=SHARED / "weights")


@pytest.mark.parametrize("resolution", [353, 225])
def test_torch_and_onnxruntime_agree_on_real_image(
    picture: np.ndarray, model_075: PoseNet, exported_075: Path, resolution: int
) -> None:
    image = real_input(picture, resolution, 16)
    assert image.shape[2] != image.shape[3]  # non-square: H and W are both dynamic
    expected = torch_outputs(model_075, image)
    actual = ort_outputs(exported_075, image)
    assert_outputs_match(expected, actual)
    assert float(np.abs(actual[0] - expected[0]).max()) < 1e-4  # heatmaps, absolute
    assert actual[0].max() > 0.9  # people are in view: the heatmaps light up


def test_outputs_follow_the_contract(
    picture: np.ndarray, model_075: PoseNet, exported_075: Path
) -> None:
    proto = onnx.load(exported_075)
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)
    image = np.concatenate([real_input(picture, 257, 16)] * 2)  # batch of 2
    outputs = dict(zip(OUTPUT_NAMES, ort_outputs(exported_075, image)))
    _, _, height, width = image.shape
    h, w = (height - 1) // 16 + 1, (width - 1) // 16 + 1
    assert outputs["heatmaps"].shape == (2, 17, h, w)
    assert 0.0 <= outputs["heatmaps"].min() and outputs["heatmaps"].max() <= 1.0
    assert outputs["offsets"].shape == (2, 34, h, w)
    assert outputs["displacement_fwd"].shape == outputs["displacement_bwd"].shape == (2, 32, h, w)
    np.testing.assert_array_equal(outputs["heatmaps"][0], outputs["heatmaps"][1])
    for block in model_075.feature_blocks():
        side_h = (height - 1) // block["stride"] + 1
        side_w = (width - 1) // block["stride"] + 1
        assert outputs[block["name"]].shape == (2, block["channels"], side_h, side_w)


def test_the_app_engine_runs_a_fresh_export(picture: np.ndarray, exported_075: Path) -> None:
    # The exporter names its input and heads after the engine's constants: the engine loads the
    # file, finds every head and feature output, and returns what onnxruntime computes.
    engine = PoseEngine(exported_075, provider="cpu", threads=1)
    assert [block.name for block in engine.info.feature_blocks] == list(OUTPUT_NAMES[4:])
    out = engine.infer(picture, 257, features=("feature_13",))
    expected = ort_outputs(exported_075, real_input(picture, 257, 16))
    fetched = {"heatmaps": out.heatmaps, "offsets": out.heads["offsets"], "feature_13": out.features["feature_13"]}
    for name, actual in fetched.items():
        scale = max(1.0, float(np.abs(actual).max()))
        reference = expected[OUTPUT_NAMES.index(name)][0]
        np.testing.assert_allclose(actual, reference, rtol=0, atol=RELATIVE_TOLERANCE * scale, err_msg=name)


def test_metadata_is_complete_and_parseable(exported_075: Path) -> None:
    props = {p.key: p.value for p in onnx.load(exported_075).metadata_props}
    assert props["model_name"] == "posenet-075"
    assert int(props["output_stride"]) == 16
    assert float(props["width_multiplier"]) == 0.75
    assert json.loads(props["keypoint_names"]) == list(KEYPOINT_NAMES)
    assert [tuple(e) for e in json.loads(props["part_tree_edges"])] == list(PART_TREE_EDGES)
    assert len(json.loads(props["skeleton_edges"])) == 19
    blocks = json.loads(props["feature_blocks"])
    assert [b["name"] for b in blocks] == [f"feature_{i}" for i in range(14)]
    assert blocks[3] == {
        "name": "feature_3", "block": 3, "channels": 96, "stride": 4, "dilation": 1,
        "receptive_field": 19,
    }
    assert "Google" in props["weights_source"] and "Apache-2.0" in props["license"]
    assert "0..255" in props["input_format"]


def initializers(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def assert_same_model_file(fresh_path: Path, committed: Path) -> None:
    """Same weights under the same names, and the same graph (op by op)."""
    fresh, shipped = initializers(fresh_path), initializers(committed)
    assert fresh.keys() == shipped.keys()
    for name, array in fresh.items():
        np.testing.assert_array_equal(shipped[name], array, err_msg=name)
    ops = [[n.op_type for n in onnx.load(p).graph.node] for p in (fresh_path, committed)]
    assert ops[0] == ops[1]


def test_exporting_the_committed_weights_gives_the_committed_default_model(exported_075: Path) -> None:
    # The committed file's weights, through the PyTorch module and the exporter of today, come
    # back as the committed file: nothing in PoseNet or export_onnx changed the graph, and the
    # exporter stores every weight as it is.
    assert_same_model_file(exported_075, ASSETS_DIR / "posenet-075.onnx")


@requires_shared
def test_committed_default_model_equals_a_fresh_export(google_075: PoseNet, tmp_path: Path) -> None:
    # ... and those weights are Google's, as models/convert.py converts them now.
    assert_same_model_file(export_075(google_075, tmp_path), ASSETS_DIR / "posenet-075.onnx")


@pytest.mark.parametrize("model_name", list(SHIPPED))
def test_committed_models_compute_what_the_pytorch_posenet_does(picture: np.ndarray, model_name: str) -> None:
    # The architecture (strides, dilations, padding, heads) of models/posenet.py at the committed
    # file's width and output stride, with its weights, computes what the file does.
    _, output_stride, source = SHIPPED[model_name]
    model = committed_posenet(model_name)
    assert model.config.output_stride == output_stride
    path = ASSETS_DIR / f"{model_name}.onnx"
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props == metadata(model, model_name, source, LICENSE)
    image = real_input(picture, 257, output_stride)
    expected = torch_outputs(model, image)
    assert_outputs_match(expected, ort_outputs(path, image))
    assert expected[0].max() > 0.9  # Google's weights: the people light the heatmaps up


@requires_shared
@pytest.mark.parametrize("model_name", list(SHIPPED))
def test_committed_models_compute_what_the_code_does(picture: np.ndarray, model_name: str) -> None:
    # Google's TF.js weights, converted by models/convert.py now, compute what the committed files do.
    pretrained, output_stride, source = SHIPPED[model_name]
    model = pretrained_posenet(pretrained, output_stride, SHARED / "weights")
    path = ASSETS_DIR / f"{model_name}.onnx"
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props == metadata(model, model_name, source, LICENSE)
    image = real_input(picture, 257, output_stride)
    assert_outputs_match(torch_outputs(model, image), ort_outputs(path, image))
