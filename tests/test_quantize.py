"""The int8 posenet-075 (models/quantize.py): it keeps the ONNX contract, the app runs it, its
keypoints agree with the float model's on real COCO images, and the quantiser reproduces it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from media import PHOTO
from onnx import numpy_helper

from models.accuracy import largest_people, predict_in_box
from models.quantize import (
    CALIBRATION_IMAGES,
    FLOAT_MODEL,
    INT8_MODEL,
    calibration_paths,
    quantize_model,
    quantized_metadata,
)
from pose_app.errors import PoseAppError
from pose_app.inference.engine import PoseEngine

# Largest people of the first coco-dev images whose keypoints are compared (88 labelled).
COMPARED_PEOPLE = 8
# Measured on those: median 2.1 frame px, 90 % within 8 px; the rest are argmax flips between
# near-equal heatmap peaks (e.g. an occluded ankle), which a quantised model may resolve otherwise.
MEDIAN_SHIFT_PX = 4.0
NEAR_PX, NEAR_FRACTION = 8.0, 0.8


MAX_FEATURE_ERROR = 0.35


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """Mean absolute difference as a fraction of the mean absolute expected value."""
    return float(np.abs(got - expected).mean() / np.abs(expected).mean())


def metadata(path: Path) -> dict[str, str]:
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


def int8_weights(path: Path) -> dict[str, np.ndarray]:
    """Every int8 initializer (quantised conv weights and their zero points) by name."""
    model = onnx.load(str(path))
    return {
        init.name: numpy_helper.to_array(init)
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.INT8
    }


def test_int8_model_keeps_the_onnx_contract() -> None:
    float_model, int8_model = onnx.load(str(FLOAT_MODEL)), onnx.load(str(INT8_MODEL))
    assert [o.name for o in int8_model.graph.output] == [o.name for o in float_model.graph.output]
    assert {n.op_type for n in int8_model.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    float_props, int8_props = metadata(FLOAT_MODEL), metadata(INT8_MODEL)
    assert int8_props["model_name"] == "posenet-075-int8"
    assert int8_props["weights_source"].startswith(float_props["weights_source"] + "; int8-quantised")
    unchanged = set(float_props) - {"model_name", "weights_source"}
    assert {k: int8_props[k] for k in unchanged} == {k: float_props[k] for k in unchanged}


def test_engine_runs_int8_model_with_float_heads_and_features() -> None:
    float_engine = PoseEngine(FLOAT_MODEL, provider="cpu", threads=1)
    int8_engine = PoseEngine(INT8_MODEL, provider="cpu", threads=1)
    assert int8_engine.info.name == "posenet-075-int8"
    frame = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    names = [block.name for block in int8_engine.info.feature_blocks]
    expected, got = float_engine.infer(frame, 257, names), int8_engine.infer(frame, 257, names)
    for field in ("heatmaps", "offsets", "displacement_fwd", "displacement_bwd"):
        assert getattr(got, field).dtype == np.float32
        assert getattr(got, field).shape == getattr(expected, field).shape
    assert names == [f"feature_{i}" for i in range(14)]
    for name in names:
        assert got.features[name].dtype == np.float32
        assert got.features[name].shape == expected.features[name].shape
        # Dequantised ReLU6 outputs: still within [0, 6] and near the float ones. The error
        # grows with depth (measured 0.5 % of the mean activation at feature_0, 18 % at
        # feature_13); a wrong scale or zero point would be off by about 100 %.
        assert got.features[name].min() >= 0 and got.features[name].max() <= 6
        assert relative_error(got.features[name], expected.features[name]) < MAX_FEATURE_ERROR
    assert relative_error(got.features["feature_0"], expected.features["feature_0"]) < 0.02
    assert np.abs(got.heatmaps - expected.heatmaps).mean() < 0.02


def test_int8_keypoints_agree_with_float_on_coco(shared_dir: Path) -> None:
    targets = largest_people(shared_dir / "data" / "coco-dev")[:COMPARED_PEOPLE]
    float_engine = PoseEngine(FLOAT_MODEL, provider="cpu")
    int8_engine = PoseEngine(INT8_MODEL, provider="cpu")
    shifts = np.concatenate([
        np.linalg.norm(predict_in_box(float_engine, t, 353) - predict_in_box(int8_engine, t, 353), axis=1)[
            t.keypoints[:, 2] > 0
        ]
        for t in targets
    ])
    assert len(shifts) > 50
    assert np.median(shifts) < MEDIAN_SHIFT_PX
    assert (shifts < NEAR_PX).mean() >= NEAR_FRACTION


def test_quantizer_reproduces_the_committed_weights(tmp_path: Path, labelled_stills) -> None:
    # Per-channel weight quantisation depends on the float weights only, so even a 3-image
    # calibration, on pictures other than the committed file's 100 COCO train images, must give
    # its int8 weights bit for bit.
    folder = tmp_path / "calibration"
    folder.mkdir()
    for path in [PHOTO, *(still.path for still in labelled_stills.stills)]:
        shutil.copy(path, folder / path.name)
    images = calibration_paths(folder, 3)
    assert len(images) == 3
    rebuilt = quantize_model(FLOAT_MODEL, tmp_path / "int8.onnx", images)
    committed_weights, rebuilt_weights = int8_weights(INT8_MODEL), int8_weights(rebuilt)
    assert sum(w.ndim == 4 for w in committed_weights.values()) == 31  # every conv's weights
    assert rebuilt_weights.keys() == committed_weights.keys()
    assert all(np.array_equal(rebuilt_weights[k], committed_weights[k]) for k in committed_weights)
    assert "MinMax calibration on 3 images from calibration" in metadata(rebuilt)["weights_source"]
    # The default calibration folder (../shared's COCO train images) is named as such.
    coco = quantized_metadata(metadata(FLOAT_MODEL), "qdq", [CALIBRATION_IMAGES / f"{i}.jpg" for i in range(3)])
    assert coco["weights_source"].endswith("MinMax calibration on 3 COCO train images)")


def test_weights_source_names_the_calibration_folder(tmp_path: Path) -> None:
    folder = tmp_path / "street-scenes"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.jpg").touch()
    props = {"model_name": "m", "weights_source": "Google"}
    source = quantized_metadata(props, "qdq", calibration_paths(folder, 4))["weights_source"]
    assert source.endswith("MinMax calibration on 4 images from street-scenes)")
    assert "COCO" not in source


def test_calibration_paths_are_evenly_spaced_and_sorted(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"{i:02d}.jpg").touch()
    (tmp_path / "notes.txt").touch()
    assert [p.name for p in calibration_paths(tmp_path, 4)] == ["00.jpg", "03.jpg", "06.jpg", "09.jpg"]
    assert len(calibration_paths(tmp_path, 100)) == 10


def test_bad_quantizer_inputs_are_app_errors(tmp_path: Path) -> None:
    with pytest.raises(PoseAppError, match="no calibration images"):
        calibration_paths(tmp_path, 5)
    with pytest.raises(PoseAppError, match="model not found"):
        quantize_model(tmp_path / "missing.onnx", tmp_path / "out.onnx", [])
