"""onnxruntime inference for any model family: load a pose-app ONNX file, choose a provider,
preprocess a frame as the file's family says, run.

preprocess (the family's letterbox) -> inference -> the raw head outputs for one frame, by name.
Decoding them into poses is the family's job (families/); estimator.py ties the two together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import onnxruntime as ort

from pose_app.core.geometry import FrameTransform
from pose_app.errors import PoseAppError, one_line
from pose_app.inference.families import ModelFamily, family_of
from pose_app.inference.model_files import resolve_model
from pose_app.inference.model_info import INPUT_NAME, ModelInfo, model_info
from pose_app.inference.preprocess import preprocess

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


def available_providers() -> list[str]:
    """Aliases of the providers the installed onnxruntime offers, best first."""
    installed = set(ort.get_available_providers())
    return [alias for alias, name in PROVIDER_ALIASES.items() if name in installed]


@dataclass
class EngineOutput:
    """The network's outputs for one frame (batch dimension removed)."""

    heads: dict[str, np.ndarray]  # the family's head outputs by name, e.g. "heatmaps" (17, h, w), 0..1
    features: dict[str, np.ndarray]  # name -> (C, H, W), only those asked for
    transform: FrameTransform
    timings: dict[str, float]  # seconds: "preprocess", "inference"

    @property
    def heatmaps(self) -> np.ndarray:
        """(17, h, w) keypoint heatmaps, 0..1: every family has them."""
        return self.heads["heatmaps"]


def _read_model_info(model: onnx.ModelProto, path: Path) -> tuple[ModelInfo, ModelFamily]:
    info = model_info({prop.key: prop.value for prop in model.metadata_props}, path)
    family = family_of(info.family, path)
    outputs = {output.name for output in model.graph.output}
    missing = [name for name in family.head_outputs if name not in outputs]
    initializers = {initializer.name for initializer in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if missing or inputs != [INPUT_NAME]:
        raise PoseAppError(f"{path} is not a pose-app model: outputs {missing} or input '{INPUT_NAME}' missing")
    return info, family


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 0:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: provider warnings are reported by us, clearly
    # The pipeline alternates between sessions (the full-frame network, the crop network, the
    # panel's): a pool left spinning after its run holds a core the next session needs. On 2
    # cores, spinning doubled MoveNet's crop time in the pipeline (11 ms against 5.5 alone).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
    """onnxruntime sessions over a pose-app ONNX model of any family (`family`, from its metadata).

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
        self.info, self.family = _read_model_info(self._model, path)
        self.head_outputs = self.family.head_outputs
        self.provider, self._heads_session, self.provider_notes = self._choose_session(
            _with_outputs(self._model, self.head_outputs), path, provider, threads
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
            outputs = _with_outputs(self._model, (*self.head_outputs, *key))
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
        """The network's raw outputs for an input batch (N, 3, H, W): the family's heads in
        `head_outputs` order, then the features asked for, each with its batch axis."""
        self.check_features(features)
        return self._session_for(features).run([*self.head_outputs, *features], {INPUT_NAME: blob})

    def frame_transform(self, frame_w: int, frame_h: int, resolution: int) -> FrameTransform:
        """How a frame of this size is letterboxed for this network at `resolution`."""
        return self.family.frame_transform(self.info, frame_w, frame_h, resolution)

    def letterbox(self, frame_bgr: np.ndarray, resolution: int) -> tuple[np.ndarray, FrameTransform]:
        """The network input for a frame (float32 RGB NCHW 0..255) and the geometry that maps back."""
        height, width = frame_bgr.shape[:2]
        transform = self.frame_transform(width, height, resolution)
        return preprocess(frame_bgr, transform, self.family.pad_value), transform

    def infer(
        self, frame_bgr: np.ndarray, resolution: int, features: Sequence[str] = ()
    ) -> EngineOutput:
        self.check_features(features)  # before the letterbox work; run() checks again, cheaply
        start = time.perf_counter()
        blob, transform = self.letterbox(frame_bgr, resolution)
        preprocessed = time.perf_counter()
        outputs = self.run(blob, features)
        finished = time.perf_counter()
        heads = len(self.head_outputs)
        return EngineOutput(
            heads={name: output[0] for name, output in zip(self.head_outputs, outputs[:heads])},
            features={name: output[0] for name, output in zip(features, outputs[heads:])},
            transform=transform,
            timings={"preprocess": preprocessed - start, "inference": finished - preprocessed},
        )
