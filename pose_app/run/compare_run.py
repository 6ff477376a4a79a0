"""Running a preset over a clip for `pose-app compare`: the poses of every frame, as `process`
gets them (the one frame loop, frame_loop.py); the figures are analysis/compare.py's."""

from __future__ import annotations

import time

import numpy as np

from pose_app.analysis.compare import Frames
from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import NUM_KEYPOINTS
from pose_app.inference.config import PipelineConfig
from pose_app.inference.engine import PoseEngine
from pose_app.inference.pipeline import build_pipeline
from pose_app.io.sources import open_source
from pose_app.run.frame_loop import run_frames


class _PoseCollector:
    """The compare sink: every frame's poses as arrays, and the seconds the pipeline took (from
    the frame's `captured_at`, taken just before the pipeline ran, so decoding is excluded)."""

    def __init__(self) -> None:
        self.frames: Frames = []
        self.seconds = 0.0

    def __call__(self, frame: Frame, poses: FramePoses, captured_at: float) -> None:
        self.seconds += time.perf_counter() - captured_at
        self.frames.append((np.asarray(poses.keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3), np.asarray(poses.scores)))


def run_preset(
    spec: str, config: PipelineConfig, engine: PoseEngine, max_frames: int | None = None
) -> tuple[Frames, float, dict[str, int]]:
    """(poses per frame, frames/s of the pipeline alone, decoding excluded, how often the
    full-frame pass and turned passes ran) of `config` over the clip `spec`, as `process` runs it
    (`engine`: the config's model, loaded once)."""
    collector = _PoseCollector()
    with open_source(spec, frame_step=config.frame_step) as source:
        pipeline = build_pipeline(config, is_still=source.info.is_still, engine=engine)
        # The whole clip: compare has no --start/--end.
        run_frames(source, pipeline, [collector], max_frames=max_frames)
    frames, seconds = collector.frames, collector.seconds
    passes = {"full_passes": pipeline.full_passes, "turned_passes": pipeline.turned_pass_count}
    return frames, len(frames) / seconds if seconds else float("nan"), passes
