"""What every model family provides: its heads, its input sizes, its padding and its decoding.

A family is one small module (PoseNet: letterboxed full frame, multi-person decoding; MoveNet:
one square person crop, single-person decoding) with one `ModelFamily` object; the ONNX file's
`model_family` metadata chooses it (families/__init__.py). The engine runs any family's file the
same way; the estimator (full frame) and the crop refiner ask the family how to size the input
and how to decode what comes out. Adding a family is one module here plus its `models/` file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.model_info import ModelInfo


class ModelFamily:
    """The family interface; each family module subclasses it once."""

    name: str = ""
    # The heads every file of the family outputs, in output order, before its feature maps.
    head_outputs: tuple[str, ...] = ()
    # The input value outside the frame (letterbox padding, crops reaching past the frame's edge).
    pad_value: float = 0.0
    # Person crops for this family's network: width / height of the crop (None: the crop
    # settings' own shape) and how much larger than the person's keypoint box (None: the
    # settings' own expansion).
    crop_aspect: float | None = None
    crop_expand: float | None = None
    # Whether a crop can hold several decoded people (then the refiner picks the one that
    # matches the person the crop was cut around) or always exactly one.
    multi_person: bool = True

    def check_resolution(self, info: ModelInfo, resolution: int) -> None:
        """PoseAppError unless the network can run with `resolution` as its longer input side."""

    def frame_transform(self, info: ModelInfo, frame_w: int, frame_h: int, resolution: int) -> FrameTransform:
        """How a whole frame is resized and padded for this network at `resolution`."""
        raise NotImplementedError

    def probe_resolution(self, info: ModelInfo, resolution: int) -> int:
        """A cheaper resolution for probing which way up a frame is (about half `resolution`)."""
        return resolution

    def crop_input_size(self, info: ModelInfo, resolution: int, aspect: float) -> tuple[int, int]:
        """(w, h) of every person crop, for crops `resolution` tall of shape `aspect` (w / h)."""
        raise NotImplementedError

    def decode(
        self, heads: Sequence[np.ndarray], info: ModelInfo, settings: DecodeSettings
    ) -> tuple[np.ndarray, np.ndarray]:
        """One image's heads (in `head_outputs` order, batch axis removed) -> (keypoints
        (P, 17, 3) x, y, score in input pixels, pose scores (P,) best first)."""
        raise NotImplementedError
