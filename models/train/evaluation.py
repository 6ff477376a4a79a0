"""Validation COCO keypoint AP of a PyTorch PoseNet, computed exactly as `pose-app eval` does.

The network runs in PyTorch behind the small engine interface `PoseEstimator` uses (`info`,
`infer`), so the app's own preprocessing (letterbox), decoder, COCO records and pycocotools
scoring (`pose_app.run.evaluate_run.run_detection`, `pose_app.analysis.evaluate.coco_keypoint_ap`)
do the rest, and a checkpoint's validation AP is what its exported ONNX model scores in the app at
the same resolution with a single full-frame pass (`--no-refine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from models.posenet import PoseNet
from pose_app.analysis.evaluate import (
    EVAL_MAX_POSES,
    EVAL_MIN_POSE_SCORE,
    coco_keypoint_ap,
    first_images_by_id,
    load_ground_truth,
)
from pose_app.inference.config import PipelineConfig
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.engine import EngineOutput
from pose_app.inference.families.posenet import FAMILY as POSENET, HEAD_OUTPUTS, letterbox
from pose_app.inference.pipeline import build_pipeline, open_engine
from pose_app.run.evaluate_run import run_detection

EVAL_DECODING = DecodeSettings(max_poses=EVAL_MAX_POSES, min_pose_score=EVAL_MIN_POSE_SCORE)


@dataclass(frozen=True)
class TorchModelInfo:
    """What `PoseEstimator`, `CropRefiner` and a pipeline's header read from an engine's model info."""

    output_stride: int
    name: str = "pytorch"


class TorchEngine:
    """A PyTorch PoseNet with `PoseEngine.infer`'s interface (heads only, no feature outputs)."""

    family, head_outputs = POSENET, HEAD_OUTPUTS

    def __init__(self, model: PoseNet, device: torch.device) -> None:
        self.model, self.device = model, device
        self.info = TorchModelInfo(model.config.output_stride)

    @torch.no_grad()
    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """`PoseEngine.run`'s four head outputs (N, C, h, w) for a batch (what `CropRefiner` runs)."""
        outputs = self.model(torch.from_numpy(blob).to(self.device))
        heads = (torch.sigmoid(outputs.heatmap_logits), outputs.offsets, outputs.displacement_fwd, outputs.displacement_bwd)
        return [head.float().cpu().numpy() for head in heads]

    @torch.no_grad()
    def infer(self, frame_bgr: np.ndarray, resolution: int, features: Sequence[str] = ()) -> EngineOutput:
        """The app's EngineOutput for one BGR frame, with the network run in PyTorch."""
        blob, transform = letterbox(frame_bgr, resolution, self.info.output_stride)
        outputs = self.model(torch.from_numpy(blob).to(self.device))
        heads = (torch.sigmoid(outputs.heatmap_logits), outputs.offsets, outputs.displacement_fwd, outputs.displacement_bwd)
        return EngineOutput(
            heads={name: head[0].float().cpu().numpy() for name, head in zip(HEAD_OUTPUTS, heads)},
            features={}, transform=transform, timings={},
        )


def validation_ap(
    model: PoseNet,
    ann_path: Path,
    images_dir: Path,
    resolution: int,
    device: torch.device,
    max_images: int | None = None,
) -> dict[str, float]:
    """COCO keypoint AP/AR (pycocotools) of `model` on the first `max_images` images (by id)."""
    ground_truth = load_ground_truth(Path(ann_path))
    # The network alone (a single full-frame pass, no crop refinement): what training changes.
    config = PipelineConfig(resolution=resolution, decode=EVAL_DECODING, refine=False, track=False)
    pipeline = build_pipeline(config, is_still=True, engine=TorchEngine(model, device))
    return pipeline_ap(pipeline, model, ground_truth, Path(images_dir), max_images)


def crop_validation_ap(
    model: PoseNet,
    ann_path: Path,
    images_dir: Path,
    preset: str,
    device: torch.device,
    max_images: int | None = None,
    threads: int = 0,
) -> dict[str, float]:
    """COCO keypoint AP/AR of `preset`'s real pipeline (`pose-app eval --preset`: its shipped
    full-frame model, two-pass) with `model`, run in PyTorch, as the crop network."""
    ground_truth = load_ground_truth(Path(ann_path))
    config = PipelineConfig.from_preset(
        preset, max_poses=EVAL_MAX_POSES, min_pose_score=EVAL_MIN_POSE_SCORE, threads=threads
    )
    crop_engine = TorchEngine(model, device)
    pipeline = build_pipeline(config, is_still=True, engine=open_engine(config), crop_engine=crop_engine)
    return pipeline_ap(pipeline, model, ground_truth, Path(images_dir), max_images)


def pipeline_ap(
    pipeline, model: PoseNet, ground_truth: dict, images_dir: Path, max_images: int | None
) -> dict[str, float]:
    """AP/AR of a pipeline that runs `model` (in eval mode for the run, then as it was)."""
    was_training = model.training
    model.eval()
    try:
        records, _ = run_detection(pipeline, ground_truth, images_dir, limit=max_images)
    finally:
        model.train(was_training)
    image_ids = [image["id"] for image in first_images_by_id(ground_truth["images"], max_images)]
    return coco_keypoint_ap(ground_truth, records, image_ids=image_ids)
