"""MoveNet SinglePose: the PyTorch module (models/movenet.py), its conversion from Google's TF.js
graphs (models/convert_movenet.py), the committed ONNX files (models/export_movenet.py) and the
numpy decoding (pose_app/inference/movenet_decode.py).

With ../shared: the module and the committed files, decoded by our code, give the keypoints of
Google's own graph on its reference crops (reference.npz), and the committed files are what the
exporter writes now. Without it (a fresh clone): the committed files follow the contract, find
the astronaut's hand-labelled pose in the test photo, and equal the module run with their own
weights; the decoding is checked on hand-made fields.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from media import photo, photo_labels
from onnx import numpy_helper
from support import SHARED, requires_shared

from models.convert_movenet import (
    MoveNetConversionError,
    decoding_constants,
    dequantise,
    load_graph,
    pretrained_movenet,
)
from models.export_movenet import (
    ASSETS_DIR,
    HEAD_OUTPUTS,
    INPUT_FORMAT,
    LICENSE,
    export_movenet,
    metadata,
    output_names,
)
from models.movenet import MoveNet, MoveNetConfig
from pose_app.core.skeleton import KEYPOINT_NAMES, OKS_SIGMAS, SKELETON_EDGES
from pose_app.errors import PoseAppError
from pose_app.inference.movenet_decode import DISTANCE_BIAS, centre_weights, decode_single_pose

VARIANTS = {"lightning": 192, "thunder": 256}  # variant -> trained input size
NUM_FEATURES = 22  # stem, 17 blocks, last conv, 3 pyramid levels
# Google's graph vs ours on its reference crops (measured: keypoints within 0.012 cells, all of it
# Lightning's float16-stored 1/48 output scale in the TF.js graph; scores within 1e-5).
MAX_CELL_ERROR = 0.5
MAX_SCORE_ERROR = 0.02
# float32 rounding between PyTorch and onnxruntime (different summation orders), relative to
# each output's range.
RELATIVE_TOLERANCE = 2e-4


def committed_path(variant: str) -> Path:
    return ASSETS_DIR / f"movenet-{variant}.onnx"


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def nchw(images_nhwc: np.ndarray) -> np.ndarray:
    """uint8 RGB N x H x W x 3 -> float32 [N,3,H,W] 0..255, the contract's input."""
    return np.ascontiguousarray(images_nhwc.astype(np.float32).transpose(0, 3, 1, 2))


def decode_all(heads: list[np.ndarray], size: int) -> np.ndarray:
    """[N, 17, 3] (x, y, score) from the four heads of a batch."""
    return np.stack([decode_single_pose(*(h[i] for h in heads), (size, size)) for i in range(len(heads[0]))])


def torch_heads(model: MoveNet, image: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(torch.from_numpy(image))
    return [t.numpy() for t in (out.heatmaps, out.centers, out.regression, out.offsets)]


def committed_state(path: Path) -> dict[str, torch.Tensor]:
    """The module's weights stored in a committed file (float16 initializers widened)."""
    state = {}
    for tensor in onnx.load(path).graph.initializer:
        name = tensor.name.removesuffix(".float16")
        if name.startswith("model."):
            values = numpy_helper.to_array(tensor).astype(np.float32)
            state[name.removeprefix("model.")] = torch.from_numpy(values)
    return state


def committed_movenet(variant: str) -> MoveNet:
    """models/movenet.py with the weights of the committed file (no ../shared needed)."""
    state = committed_state(committed_path(variant))
    model = MoveNet(MoveNetConfig.from_state_dict(state, variant, VARIANTS[variant]))
    model.load_state_dict(state, strict=True)
    return model.eval()


# --- the committed files (fresh clone) ---------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_committed_files_follow_the_contract(variant: str) -> None:
    path = committed_path(variant)
    assert path.stat().st_size < 15e6
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["image"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 3 and all(d.dim_param for d in (dims[0], dims[2], dims[3]))
    names = [o.name for o in proto.graph.output]
    assert names == list(HEAD_OUTPUTS) + [f"feature_{i}" for i in range(NUM_FEATURES)]
    # Weights stored as float16 (Google's precision), widened by a Cast in the graph.
    halves = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) > 100

    props = {p.key: p.value for p in proto.metadata_props}
    size = VARIANTS[variant]
    assert props["model_family"] == "movenet" and props["model_name"] == f"movenet-{variant}"
    assert props["output_stride"] == "4" and json.loads(props["input_size"]) == [size, size]
    assert json.loads(props["keypoint_names"]) == list(KEYPOINT_NAMES)
    assert [tuple(e) for e in json.loads(props["skeleton_edges"])] == list(SKELETON_EDGES)
    assert "Google" in props["weights_source"] and props["license"] == LICENSE
    assert props["input_format"] == INPUT_FORMAT
    blocks = json.loads(props["feature_blocks"])
    assert [b["name"] for b in blocks] == names[len(HEAD_OUTPUTS):]
    assert all(set(b) == {"name", "block", "channels", "stride", "dilation", "receptive_field"} for b in blocks)
    assert [b["stride"] for b in blocks[-4:]] == [32, 16, 8, 4]  # last conv, pyramid 16, 8, 4

    # Dynamic batch, height and width (multiples of 32): a batch of 2 at a non-square size.
    height, width = size - 32, size + 32
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (2, 3, height, width)).astype(np.float32)
    image[1] = image[0]
    outputs = dict(zip(names, session(path).run(names, {"image": image})))
    h, w = height // 4, width // 4
    expected_channels = {"heatmaps": 17, "centers": 1, "regression": 34, "offsets": 34}
    for name, channels in expected_channels.items():
        assert outputs[name].shape == (2, channels, h, w), name
    for name in ("heatmaps", "centers"):
        assert 0.0 <= outputs[name].min() and outputs[name].max() <= 1.0
    np.testing.assert_array_equal(outputs["heatmaps"][0], outputs["heatmaps"][1])
    for block in blocks:
        shape = (2, block["channels"], height // block["stride"], width // block["stride"])
        assert outputs[block["name"]].shape == shape, block["name"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_committed_files_compute_what_the_pytorch_movenet_does(variant: str) -> None:
    # models/movenet.py with the file's own weights computes what the file does: the module's
    # architecture (padding, upsampling, pyramid, heads) is the one that was exported.
    model = committed_movenet(variant)
    path = committed_path(variant)
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props == metadata(model)
    size = VARIANTS[variant]
    image = nchw(square_crop(photo()[:, :, ::-1], size))
    names = output_names(model)
    actual = session(path).run(list(names), {"image": image})
    with torch.no_grad():
        out = model(torch.from_numpy(image), return_features=True)
    expected = [out.heatmaps, out.centers, out.regression, out.offsets, *out.features]
    for name, e, a in zip(names, expected, actual):
        e = e.numpy()
        assert a.shape == e.shape, name
        assert float(np.abs(a - e).max()) < RELATIVE_TOLERANCE * max(1.0, float(np.abs(e).max())), name


# The hand-labelled astronaut (tests/data): the face points are labelled to about 2 px; the
# shoulders at the joint, "a little inside" the suit's outline, where COCO-trained networks mark
# the outline's corner, so those differ by up to ~10 % of her height. Measured on a 1.25x square
# crop: nose and eyes within 5 px, shoulders 11-24 px, OKS (COCO sigmas, the box area as the
# object area) 0.90-0.94. The bounds leave room for that, not for a wrong keypoint.
CROP_MARGIN = 1.25
MIN_OKS = 0.85
FACE_BOUND_PX = 8.0
SHOULDER_BOUND_PX = 35.0


def crop_transform(box: np.ndarray, size: int) -> tuple[float, float, float]:
    """(x0, y0, scale) of the square crop around a box (its longer side x CROP_MARGIN, centred),
    resized to size x size: photo pixel p maps to (p - x0) * scale (pixel corners)."""
    x, y, w, h = box
    side = max(w, h) * CROP_MARGIN
    return x + w / 2 - side / 2, y + h / 2 - side / 2, size / side


def square_crop(image_rgb: np.ndarray, size: int) -> np.ndarray:
    """The person's square crop, black outside the photo, as [1, H, W, 3] uint8."""
    x0, y0, scale = crop_transform(photo_labels()[1], size)
    # Pixel-centre coordinates: input = (photo + 0.5 - corner) * scale - 0.5.
    matrix = np.array([[scale, 0, (0.5 - x0) * scale - 0.5], [0, scale, (0.5 - y0) * scale - 0.5]])
    crop = cv2.warpAffine(np.ascontiguousarray(image_rgb), matrix, (size, size), flags=cv2.INTER_AREA)
    return crop[None]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_committed_files_find_the_astronauts_pose(variant: str) -> None:
    size = VARIANTS[variant]
    heads = session(committed_path(variant)).run(
        list(HEAD_OUTPUTS), {"image": nchw(square_crop(photo()[:, :, ::-1], size))}
    )
    keypoints = decode_all(heads, size)[0]
    x0, y0, scale = crop_transform(photo_labels()[1], size)
    found = (keypoints[:, :2] + 0.5) / scale - 0.5 + (x0, y0)  # back to photo pixels
    labels, box = photo_labels()
    labelled = labels[:, 2] > 0
    distances = np.hypot(*(found - labels[:, :2]).T)[labelled]
    names = np.array(KEYPOINT_NAMES)[labelled]
    face = np.isin(names, ["nose", "left_eye", "right_eye"])
    assert distances[face].max() < FACE_BOUND_PX, dict(zip(names, distances.round(1)))
    assert distances[~face].max() < SHOULDER_BOUND_PX, dict(zip(names, distances.round(1)))
    variances = (2 * np.asarray(OKS_SIGMAS)[labelled]) ** 2
    oks = np.mean(np.exp(-(distances**2) / (2 * box[2] * box[3] * variances)))
    assert oks > MIN_OKS
    assert keypoints[labelled, 2].min() > 0.3  # and it is confident about them


# --- decoding on hand-made fields --------------------------------------------------------------


def empty_fields(height: int = 12, width: int = 10) -> tuple[np.ndarray, ...]:
    """Heads with nothing in them: heatmaps, centers, regression, offsets."""
    return (
        np.full((17, height, width), 0.01, np.float32),
        np.full((1, height, width), 0.01, np.float32),
        np.zeros((34, height, width), np.float32),
        np.zeros((34, height, width), np.float32),
    )


def place_person(fields, centre: tuple[int, int], cells: np.ndarray, peak: float = 0.9) -> None:
    """A person: a centre peak, regression from it to `cells` [17, 2] (row, col), heatmap
    peaks there."""
    heatmaps, centers, regression, _ = fields
    row, col = centre
    centers[0, row, col] = peak
    regression[:17, row, col] = cells[:, 0] - row
    regression[17:, row, col] = cells[:, 1] - col
    heatmaps[np.arange(17), cells[:, 0], cells[:, 1]] = peak


def test_one_peak_is_decoded_at_its_cell_plus_offset() -> None:
    fields = empty_fields()
    offsets = fields[3]
    rng = np.random.default_rng(1)
    cells = np.stack([rng.integers(0, 12, 17), rng.integers(0, 10, 17)], axis=1)
    place_person(fields, (6, 5), cells)
    offsets[np.arange(17), cells[:, 0], cells[:, 1]] = 0.25  # y
    offsets[17 + np.arange(17), cells[:, 0], cells[:, 1]] = -0.4  # x
    keypoints = decode_single_pose(*fields, input_size=(40, 48))  # 4 px per cell
    # x_norm = (col + offset) / w; x = x_norm * W - 0.5 (pixel-centre coordinates)
    np.testing.assert_allclose(keypoints[:, 0], (cells[:, 1] - 0.4) / 10 * 40 - 0.5, atol=1e-5)
    np.testing.assert_allclose(keypoints[:, 1], (cells[:, 0] + 0.25) / 12 * 48 - 0.5, atol=1e-5)
    np.testing.assert_allclose(keypoints[:, 2], 0.9)
    assert keypoints.dtype == np.float32 and keypoints.shape == (17, 3)


def test_the_person_nearest_the_centre_wins_a_tie() -> None:
    # Two people with equal centre peaks and equally bright keypoints: the one whose centre is
    # nearer the middle of the crop is decoded, with its own keypoints (not the other's, although
    # they are as bright), because keypoints are weighted by closeness to its regressed ones.
    fields = empty_fields(16, 16)
    near = np.stack([np.full(17, 4), np.arange(17) % 6 + 5], axis=1)
    far = np.stack([np.full(17, 12), np.arange(17) % 6 + 2], axis=1)
    place_person(fields, (12, 4), far)  # first in row-major order: an arg-max tie would pick it
    place_person(fields, (7, 9), near)  # one cell from the middle (8, 8)
    keypoints = decode_single_pose(*fields, input_size=(64, 64))
    np.testing.assert_allclose(keypoints[:, 0], (near[:, 1] * 4 - 0.5).astype(np.float32))
    np.testing.assert_allclose(keypoints[:, 1], (near[:, 0] * 4 - 0.5).astype(np.float32))
    # ... and a clearly stronger person at the edge wins over a faint one in the middle.
    fields = empty_fields(16, 16)
    place_person(fields, (14, 2), far, peak=0.95)
    place_person(fields, (8, 8), near, peak=0.05)
    keypoints = decode_single_pose(*fields, input_size=(64, 64))
    np.testing.assert_allclose(keypoints[:, 1], (far[:, 0] * 4 - 0.5).astype(np.float32))


def test_centre_weights_peak_at_the_grid_centre() -> None:
    weights = centre_weights(48, 48)
    assert np.unravel_index(weights.argmax(), weights.shape) == (24, 24)
    assert weights[24, 24] == pytest.approx(1 / DISTANCE_BIAS)
    assert weights[0, 0] == pytest.approx(1 / (24 * np.sqrt(2) + DISTANCE_BIAS))
    assert centre_weights(12, 10).shape == (12, 10)


# --- conversion errors and dequantisation (no ../shared needed) -------------------------------


def test_missing_files_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(MoveNetConversionError, match="weights folder .* is missing") as error:
        pretrained_movenet("lightning", tmp_path / "nowhere")
    assert isinstance(error.value, PoseAppError) and "\n" not in str(error.value)
    with pytest.raises(MoveNetConversionError, match="missing MoveNet graph file"):
        pretrained_movenet("thunder", tmp_path)
    manifest = [{"paths": ["weights.bin"], "weights": [{"name": "w", "shape": [2], "dtype": "float32"}]}]
    (tmp_path / "model.json").write_text(json.dumps({"modelTopology": {"node": []}, "weightsManifest": manifest}))
    with pytest.raises(MoveNetConversionError, match="missing MoveNet weights shard .*weights.bin"):
        pretrained_movenet("lightning", tmp_path)
    with pytest.raises(MoveNetConversionError, match="unknown MoveNet variant"):
        pretrained_movenet("multipose", tmp_path)


def test_dequantise_float16_and_uint8() -> None:
    values = np.array([0.5, -1.25, 3.0], np.float16)
    entry = {"name": "a", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}}
    np.testing.assert_array_equal(dequantise(values.tobytes(), entry, Path("x")), values.astype(np.float32))
    entry = {"name": "b", "shape": [2], "dtype": "float32",
             "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}}
    np.testing.assert_array_equal(dequantise(bytes([0, 10]), entry, Path("x")), [-1.0, 4.0])
    with pytest.raises(MoveNetConversionError, match="3 bytes"):
        dequantise(bytes(3), {"name": "c", "shape": [2], "dtype": "float32"}, Path("x"))


# --- against Google's graph (../shared) ---------------------------------------------------------


@pytest.fixture(scope="module", params=list(VARIANTS))
def google(request) -> tuple[str, MoveNet, dict]:
    """(variant, the module converted from Google's TF.js graph now, reference.npz)."""
    if not (SHARED / "README.md").is_file():
        pytest.skip("../shared (Google's MoveNet TF.js graphs and reference crops) is absent")
    variant = request.param
    folder = SHARED / "weights" / f"movenet-{variant}-tfjs"
    with np.load(folder / "reference.npz") as reference:
        return variant, pretrained_movenet(variant, folder), dict(reference)


def assert_matches_google(keypoints: np.ndarray, reference: dict, size: int) -> None:
    """Our (x, y, score) against Google's (y, x in 0..1 of the crop, score): within half a
    heatmap cell and 0.02 in score on every crop."""
    google = reference["keypoints_yx_score"]
    grid = size // 4
    ours_yx = (keypoints[..., [1, 0]] + 0.5) / size  # back to Google's 0..1
    cell_errors = np.abs(ours_yx - google[..., :2]).max(axis=2) * grid
    assert cell_errors.max() < MAX_CELL_ERROR, cell_errors.max()
    assert np.median(cell_errors) < 0.02  # all but the TF.js graph's float16 rounding
    assert np.abs(keypoints[..., 2] - google[..., 2]).max() < MAX_SCORE_ERROR


@pytest.mark.shared
@requires_shared
def test_the_pytorch_module_gives_googles_keypoints(google) -> None:
    variant, model, reference = google
    size = VARIANTS[variant]
    assert model.config.input_size == size
    keypoints = decode_all(torch_heads(model, nchw(reference["inputs"])), size)
    assert_matches_google(keypoints, reference, size)


@pytest.mark.shared
@requires_shared
def test_the_committed_file_gives_googles_keypoints(google) -> None:
    variant, _, reference = google
    size = VARIANTS[variant]
    heads = session(committed_path(variant)).run(list(HEAD_OUTPUTS), {"image": nchw(reference["inputs"])})
    assert_matches_google(decode_all(heads, size), reference, size)


@pytest.mark.shared
@requires_shared
def test_decoding_constants_are_the_graphs(google) -> None:
    # Our analytic centre weighting and distance constant are the ones in Google's graph (which
    # stores them as float16).
    variant, _, _ = google
    constants = decoding_constants(load_graph(SHARED / "weights" / f"movenet-{variant}-tfjs"))
    graph_weights = constants["centre_weights"]
    ours = centre_weights(*graph_weights.shape)
    assert graph_weights.shape == (VARIANTS[variant] // 4,) * 2
    np.testing.assert_allclose(ours.astype(np.float16).astype(np.float32), graph_weights, rtol=1e-3, atol=0)
    assert float(np.float16(DISTANCE_BIAS)) == constants["distance_bias"]


def initializers(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


@pytest.mark.shared
@pytest.mark.slow
@requires_shared
def test_committed_file_equals_a_fresh_export(google, tmp_path: Path) -> None:
    variant, model, _ = google
    fresh = export_movenet(model, tmp_path / f"movenet-{variant}.onnx")
    committed = committed_path(variant)
    fresh_weights, committed_weights = initializers(fresh), initializers(committed)
    assert fresh_weights.keys() == committed_weights.keys()
    for name, array in fresh_weights.items():
        np.testing.assert_array_equal(committed_weights[name], array, err_msg=name)
    graphs = [onnx.load(p).graph for p in (fresh, committed)]
    assert [n.op_type for n in graphs[0].node] == [n.op_type for n in graphs[1].node]
    assert [o.name for o in graphs[0].output] == [o.name for o in graphs[1].output]
    props = [{p.key: p.value for p in onnx.load(p).metadata_props} for p in (fresh, committed)]
    assert props[0] == props[1]
