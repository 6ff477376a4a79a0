"""PoseNet (MobileNetV1, Papandreou et al. 2018): a letterboxed frame of any valid size in,
keypoint heatmaps, offsets and the displacements of the part tree out, decoded bottom-up into
every person (decode.py). Valid input sizes are k * output_stride + 1 (symmetric TF padding)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.errors import PoseAppError
from pose_app.inference.decode import DecodeSettings, decode_multiple_poses, decode_single_pose
from pose_app.inference.families.base import ModelFamily
from pose_app.inference.model_info import ModelInfo
from pose_app.inference.preprocess import letterboxed_transform, preprocess

HEAD_OUTPUTS = ("heatmaps", "offsets", "displacement_fwd", "displacement_bwd")
# Padding value: mid-grey, which the graph's x / 127.5 - 1 turns into 0, like TF's zero padding.
PAD_VALUE = 127.5


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
    transform = letterboxed_transform(frame_w, frame_h, long_side, (long_side, long_side))
    resized_w, resized_h = transform.resized_size
    return FrameTransform(
        frame_size=transform.frame_size,
        resized_size=transform.resized_size,
        input_size=(
            snap_to_valid_size(resized_w, output_stride, round_up=True),
            snap_to_valid_size(resized_h, output_stride, round_up=True),
        ),
    )


def decode_fields(heads: Sequence[np.ndarray], output_stride: int, settings: DecodeSettings):
    """(keypoints (P,17,3) in input pixels, scores (P,)) from one image's heads (heatmaps,
    offsets, displacement_fwd, displacement_bwd)."""
    heatmaps, offsets, displacement_fwd, displacement_bwd = heads
    if settings.single_pose:
        return decode_single_pose(heatmaps, offsets, output_stride)
    return decode_multiple_poses(
        heatmaps,
        offsets,
        displacement_fwd,
        displacement_bwd,
        output_stride,
        max_poses=settings.max_poses,
        part_score_threshold=settings.part_score_threshold,
        nms_radius=settings.nms_radius,
        min_pose_score=settings.min_pose_score,
    )


class PoseNetFamily(ModelFamily):
    name = "posenet"
    head_outputs = HEAD_OUTPUTS
    pad_value = PAD_VALUE
    multi_person = True

    def check_resolution(self, info: ModelInfo, resolution: int) -> None:
        check_resolution(resolution, info.output_stride)

    def frame_transform(self, info: ModelInfo, frame_w: int, frame_h: int, resolution: int) -> FrameTransform:
        return input_transform(frame_w, frame_h, resolution, info.output_stride)

    def probe_resolution(self, info: ModelInfo, resolution: int) -> int:
        return max(snap_to_valid_size(resolution / 2, info.output_stride), 8 * info.output_stride + 1)

    def crop_input_size(self, info: ModelInfo, resolution: int, aspect: float) -> tuple[int, int]:
        height = snap_to_valid_size(resolution, info.output_stride)
        return snap_to_valid_size(height * aspect, info.output_stride), height

    def decode(self, heads, info, settings):
        return decode_fields(heads, info.output_stride, settings)


FAMILY = PoseNetFamily()


def letterbox(frame_bgr: np.ndarray, resolution: int, output_stride: int) -> tuple[np.ndarray, FrameTransform]:
    """PoseNet's input for a frame (float32 RGB NCHW 0..255) and the geometry that maps back."""
    height, width = frame_bgr.shape[:2]
    transform = input_transform(width, height, resolution, output_stride)
    return preprocess(frame_bgr, transform, PAD_VALUE), transform
