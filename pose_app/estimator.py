"""Frames -> poses in original-frame pixels: engine (preprocess, inference) then decoding."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pose_app.decode import decode_multiple_poses, decode_single_pose
from pose_app.engine import DEFAULT_RESOLUTION, EngineOutput, FrameTransform, PoseEngine, check_resolution
from pose_app.skeleton import FLIP_PERMUTATION


@dataclass(frozen=True)
class DecodeSettings:
    """How raw head outputs become poses (see decode.py for the meaning of each)."""

    max_poses: int = 10
    min_pose_score: float = 0.25  # drops faint ghost poses that would get ids of their own
    part_score_threshold: float = 0.5
    nms_radius: float = 20.0  # input pixels, as in PoseNet
    single_pose: bool = False


@dataclass
class FramePoses:
    """Every pose found in one frame."""

    keypoints: np.ndarray  # (P, 17, 3) x, y, score in original-frame pixels
    scores: np.ndarray  # (P,)
    ids: np.ndarray  # (P,) int64: detection index, or track ids once a tracker has run
    heatmaps: np.ndarray  # (17, h, w) for the heatmap view
    features: dict[str, np.ndarray]
    transform: FrameTransform
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def __len__(self) -> int:
        return len(self.scores)


def decode_engine_output(output: EngineOutput, output_stride: int, settings: DecodeSettings):
    """(keypoints (P,17,3) in input pixels, scores (P,))."""
    if settings.single_pose:
        return decode_single_pose(output.heatmaps, output.offsets, output_stride)
    return decode_multiple_poses(
        output.heatmaps,
        output.offsets,
        output.displacement_fwd,
        output.displacement_bwd,
        output_stride,
        max_poses=settings.max_poses,
        part_score_threshold=settings.part_score_threshold,
        nms_radius=settings.nms_radius,
        min_pose_score=settings.min_pose_score,
    )


class PoseEstimator:
    """Runs the engine on a frame and decodes poses in the frame's own pixel coordinates."""

    def __init__(
        self,
        engine: PoseEngine,
        resolution: int = DEFAULT_RESOLUTION,
        settings: DecodeSettings = DecodeSettings(),
        mirrored_input: bool = False,
    ):
        # Fail here, once, rather than on every frame (and before any output file is opened).
        check_resolution(resolution, engine.info.output_stride)
        self.engine = engine
        self.resolution = resolution
        self.settings = settings
        # A mirrored frame shows a person's left side where a right side would be: the network
        # labels by appearance, so swapping labels restores the anatomical ones.
        self.mirrored_input = mirrored_input

    def estimate(self, frame_bgr: np.ndarray, features: Sequence[str] = ()) -> FramePoses:
        output = self.engine.infer(frame_bgr, self.resolution, features)
        start = time.perf_counter()
        keypoints, scores = decode_engine_output(output, self.engine.info.output_stride, self.settings)
        keypoints[..., :2] = output.transform.to_frame(keypoints[..., :2])  # decoders return fresh arrays
        if self.mirrored_input:
            keypoints = keypoints[:, FLIP_PERMUTATION]
        timings = dict(output.timings, decode=time.perf_counter() - start)
        return FramePoses(
            keypoints=keypoints.astype(np.float32, copy=False),
            scores=scores.astype(np.float32, copy=False),
            ids=np.arange(len(scores), dtype=np.int64),
            heatmaps=output.heatmaps,
            features=output.features,
            transform=output.transform,
            timings=timings,
        )
