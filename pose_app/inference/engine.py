"""onnxruntime inference: load a PoseNet ONNX model, choose a provider, preprocess, run.

preprocess (letterbox to a valid input size) -> inference -> raw head outputs for one frame.
Decoding those outputs into poses is decode.py's job; estimator.py ties the two together.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from pose_app.core.geometry import FrameTransform
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.errors import PoseAppError, one_line
from pose_app.inference.model_files import resolve_model

# User-facing names of execution providers, best first: `auto` takes the first that works.
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_ALIAS_OF = {name: alias for alias, name in PROVIDER_ALIASES.items()}

HEAD_OUTPUTS = ("heatmaps", "offsets", "displacement_fwd", "displacement_bwd")
INPUT_NAME = "image"
# Padding value: mid-grey, which the graph's x / 127.5 - 1 turns into 0, like TF's zero padding.
PAD_VALUE = 127.5


def available_providers() -> list[str]:
    """Aliases of the providers the installed onnxruntime offers, best first."""
    installed = set(ort.get_available_providers())
    return [alias for alias, name in PROVIDER_ALIASES.items() if name in installed]


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
    output_stride: int
    width_multiplier: float
    keypoint_names: tuple[str, ...]
    feature_blocks: tuple[FeatureBlock, ...]
    weights_source: str
    license: str


def snap_to_valid_size(size: float, output_stride: int, *, round_up: bool = False) -> int:
    """Nearest size of the form k * output_stride + 1 (k >= 1): the sizes the network accepts."""
    cells = (size - 1) / output_stride
    # Halves round up (Python's round() would send 361 and 377 in opposite directions).
    k = int(np.ceil(cells - 1e-9)) if round_up else int(np.floor(cells + 0.5))
    return max(k, 1) * output_stride + 1


def check_resolution(resolution: int, output_stride: int) -> None:
    """PoseAppError unless the network can run with `resolution` as its longer input side."""
    if resolution < output_stride + 1:
        raise PoseAppError(f"resolution {resolution} is too small (minimum {output_stride + 1})")


def input_transform(frame_w: int, frame_h: int, resolution: int, output_stride: int) -> FrameTransform:
    """Resize the longer side to `resolution` (snapped to a valid size), pad the other side."""
    if frame_w <= 0 or frame_h <= 0:
        raise PoseAppError(f"empty frame ({frame_w}x{frame_h})")
    check_resolution(resolution, output_stride)
    long_side = snap_to_valid_size(resolution, output_stride)
    scale = long_side / max(frame_w, frame_h)
    resized_w = long_side if frame_w >= frame_h else max(1, round(frame_w * scale))
    resized_h = long_side if frame_h > frame_w else max(1, round(frame_h * scale))
    return FrameTransform(
        frame_size=(frame_w, frame_h),
        resized_size=(resized_w, resized_h),
        input_size=(
            snap_to_valid_size(resized_w, output_stride, round_up=True),
            snap_to_valid_size(resized_h, output_stride, round_up=True),
        ),
    )


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Grayscale (H,W) / (H,W,1) and BGRA (H,W,4) frames -> BGR uint8 (H,W,3)."""
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise PoseAppError(f"unsupported frame shape {frame.shape}: expected gray, BGR or BGRA")


def preprocess(frame_bgr: np.ndarray, transform: FrameTransform) -> np.ndarray:
    """BGR frame -> float32 RGB NCHW 0..255 input, resized and padded per `transform`."""
    resized = cv2.resize(as_bgr(frame_bgr), transform.resized_size, interpolation=cv2.INTER_LINEAR)
    (input_w, input_h), (resized_w, resized_h) = transform.input_size, transform.resized_size
    blob = np.full((1, 3, input_h, input_w), PAD_VALUE, np.float32)
    blob[0, :, :resized_h, :resized_w] = resized[:, :, ::-1].transpose(2, 0, 1)
    return blob


def letterbox(frame_bgr: np.ndarray, resolution: int, output_stride: int) -> tuple[np.ndarray, FrameTransform]:
    """The network input for a frame (float32 RGB NCHW 0..255) and the geometry that maps back."""
    height, width = frame_bgr.shape[:2]
    transform = input_transform(width, height, resolution, output_stride)
    return preprocess(frame_bgr, transform), transform


@dataclass
class EngineOutput:
    """The network's head outputs for one frame (batch dimension removed)."""

    heatmaps: np.ndarray  # (17, h, w), 0..1
    offsets: np.ndarray  # (34, h, w): 17 y then 17 x, input pixels
    displacement_fwd: np.ndarray  # (32, h, w)
    displacement_bwd: np.ndarray  # (32, h, w)
    features: dict[str, np.ndarray]  # name -> (C, H, W), only those asked for
    transform: FrameTransform
    timings: dict[str, float]  # seconds: "preprocess", "inference"


def _read_model_info(model: onnx.ModelProto, path: Path) -> ModelInfo:
    props = {prop.key: prop.value for prop in model.metadata_props}
    try:
        keypoint_names = tuple(json.loads(props["keypoint_names"]))
        info = ModelInfo(
            name=props.get("model_name", path.stem),
            path=path,
            output_stride=int(props["output_stride"]),
            width_multiplier=float(props["width_multiplier"]),
            keypoint_names=keypoint_names,
            feature_blocks=tuple(FeatureBlock(**block) for block in json.loads(props["feature_blocks"])),
            weights_source=props.get("weights_source", "unknown"),
            license=props.get("license", "unknown"),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise PoseAppError(f"{path} is not a pose-app model: metadata {error} missing or invalid") from None
    if keypoint_names != KEYPOINT_NAMES:
        raise PoseAppError(f"{path} predicts keypoints {list(keypoint_names)}, expected COCO's 17")
    outputs = {output.name for output in model.graph.output}
    missing = [name for name in HEAD_OUTPUTS if name not in outputs]
    initializers = {initializer.name for initializer in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if missing or inputs != [INPUT_NAME]:
        raise PoseAppError(f"{path} is not a pose-app model: outputs {missing} or input '{INPUT_NAME}' missing")
    return info


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 0:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: provider warnings are reported by us, clearly
    return options


def _load_model(path: Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path))
    except Exception as error:  # protobuf raises several unrelated types for bad files
        raise PoseAppError(f"cannot load model {path}: {one_line(error)}") from None
    if not model.graph.node:  # an empty file parses as an empty model
        raise PoseAppError(f"cannot load model {path}: not an ONNX model (no graph)")
    return model


def _with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> bytes:
    """The same graph with only the outputs `names`.

    onnxruntime runs every node of a graph whatever outputs are fetched, and each feature output
    costs a layout conversion (together about a fifth of posenet-075's time); once they are no
    longer graph outputs those nodes are dead and the optimiser removes them.
    """
    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    kept = [output for output in pruned.graph.output if output.name in names]
    del pruned.graph.output[:]
    pruned.graph.output.extend(kept)
    return pruned.SerializeToString()


def _open_session(
    model: bytes, path: Path, provider: str, threads: int
) -> ort.InferenceSession:
    """A session whose first provider is `provider`; PoseAppError if it cannot run there."""
    provider_name = PROVIDER_ALIASES[provider]
    providers = [provider_name] if provider == "cpu" else [provider_name, "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(model, _session_options(threads), providers=providers)
    except Exception as error:  # onnxruntime raises several unrelated types for bad files
        raise PoseAppError(f"cannot load model {path} on {provider}: {one_line(error)}") from None
    # onnxruntime quietly drops a provider that fails to initialise (missing CUDA libraries...).
    if session.get_providers()[0] != provider_name:
        raise PoseAppError(f"execution provider '{provider}' failed to initialise for {path}")
    return session


class PoseEngine:
    """onnxruntime sessions over a pose-app ONNX model.

    The heads-only session runs by default. Asking for feature maps opens (once, then reuses) a
    session whose outputs are the heads plus just those features, so the feature-map panel
    costs one layer's output, not all fourteen.
    """

    # Sessions kept for feature requests: the panel shows one block at a time, and a user
    # flicking through blocks should not grow memory without bound.
    MAX_FEATURE_SESSIONS = 4

    def __init__(self, model: str | Path | None = None, provider: str = "auto", threads: int = 0):
        path = resolve_model(model)
        self._model = _load_model(path)
        self._path, self._threads = path, threads
        self.info = _read_model_info(self._model, path)
        self.provider, self._heads_session, self.provider_notes = self._choose_session(
            _with_outputs(self._model, HEAD_OUTPUTS), path, provider, threads
        )
        self._feature_sessions: dict[tuple[str, ...], ort.InferenceSession] = {}
        self._feature_names = {block.name for block in self.info.feature_blocks}

    @staticmethod
    def _choose_session(model: bytes, path: Path, provider: str, threads: int):
        """(alias, session, notes): notes say which better providers `auto` had to skip and why."""
        if provider != "auto":
            if provider not in PROVIDER_ALIASES:
                raise PoseAppError(
                    f"unknown provider '{provider}' (choose auto, {', '.join(PROVIDER_ALIASES)})"
                )
            if provider not in available_providers():
                raise PoseAppError(
                    f"execution provider '{provider}' is not available in this onnxruntime "
                    f"(available: {', '.join(available_providers())})"
                )
            return provider, _open_session(model, path, provider, threads), []
        notes = []
        for candidate in available_providers():
            try:
                return candidate, _open_session(model, path, candidate, threads), notes
            except PoseAppError as error:
                if candidate == "cpu":
                    raise
                notes.append(str(error))
        raise PoseAppError("onnxruntime offers no usable execution provider")

    @property
    def onnx_model(self) -> onnx.ModelProto:
        """The loaded ONNX model, shared with the sessions' source: read its graph and
        initializers (e.g. explain.first_conv_filters), never modify it."""
        return self._model

    @property
    def provider_label(self) -> str:
        """What runs, for status lines: e.g. 'cpu' or 'cpu (cuda failed to initialise ...)'."""
        return self.provider if not self.provider_notes else f"{self.provider} ({'; '.join(self.provider_notes)})"

    def _session_for(self, features: Sequence[str]) -> ort.InferenceSession:
        if not features:
            return self._heads_session
        key = tuple(sorted(features))
        session = self._feature_sessions.pop(key, None)
        if session is None:
            outputs = _with_outputs(self._model, (*HEAD_OUTPUTS, *key))
            session = _open_session(outputs, self._path, self.provider, self._threads)
        if len(self._feature_sessions) >= self.MAX_FEATURE_SESSIONS:
            del self._feature_sessions[next(iter(self._feature_sessions))]  # least recently used
        self._feature_sessions[key] = session  # re-inserted last: most recently used
        return session

    def check_features(self, features: Sequence[str]) -> None:
        """PoseAppError unless the model exposes every feature output named."""
        unknown = [name for name in features if name not in self._feature_names]
        if unknown:
            raise PoseAppError(f"model {self.info.name} has no feature output {unknown}")

    def run(self, blob: np.ndarray, features: Sequence[str] = ()) -> list[np.ndarray]:
        """The network's raw outputs for an input batch (N, 3, H, W): the four heads in
        HEAD_OUTPUTS order, then the features asked for, each with its batch axis."""
        self.check_features(features)
        return self._session_for(features).run([*HEAD_OUTPUTS, *features], {INPUT_NAME: blob})

    def infer(
        self, frame_bgr: np.ndarray, resolution: int, features: Sequence[str] = ()
    ) -> EngineOutput:
        self.check_features(features)  # before the letterbox work; run() checks again, cheaply
        start = time.perf_counter()
        blob, transform = letterbox(frame_bgr, resolution, self.info.output_stride)
        preprocessed = time.perf_counter()
        outputs = self.run(blob, features)
        finished = time.perf_counter()
        heads = [output[0] for output in outputs[: len(HEAD_OUTPUTS)]]
        return EngineOutput(
            *heads,
            features={name: output[0] for name, output in zip(features, outputs[len(HEAD_OUTPUTS):])},
            transform=transform,
            timings={"preprocess": preprocessed - start, "inference": finished - preprocessed},
        )
