"""Validation COCO keypoint AP of a PyTorch PoseNet, computed exactly as `pose-app eval` does.

The app's own preprocessing (letterbox), decoder, COCO records and pycocotools scoring are
reused; only the network runs in PyTorch instead of onnxruntime, so a checkpoint's validation AP
is what its exported ONNX model scores in the app at the same resolution.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.posenet import PoseNet
from pose_app.engine import EngineOutput, input_transform, preprocess
from pose_app.estimator import DecodeSettings, decode_engine_output
from pose_app.evaluate import (
    EVAL_MAX_POSES,
    EVAL_MIN_POSE_SCORE,
    coco_keypoint_ap,
    coco_records,
    load_ground_truth,
    read_image,
)

EVAL_DECODING = DecodeSettings(max_poses=EVAL_MAX_POSES, min_pose_score=EVAL_MIN_POSE_SCORE)


@torch.no_grad()
def infer_frame(model: PoseNet, frame_bgr, resolution: int, device: torch.device) -> EngineOutput:
    """The app's EngineOutput for one BGR frame, with the network run in PyTorch."""
    height, width = frame_bgr.shape[:2]
    transform = input_transform(width, height, resolution, model.config.output_stride)
    image = torch.from_numpy(preprocess(frame_bgr, transform)).to(device)
    outputs = model(image)
    heads = (torch.sigmoid(outputs.heatmap_logits), outputs.offsets, outputs.displacement_fwd, outputs.displacement_bwd)
    return EngineOutput(
        *(head[0].float().cpu().numpy() for head in heads), features={}, transform=transform, timings={}
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
    images = sorted(ground_truth["images"], key=lambda image: image["id"])[:max_images]
    was_training = model.training
    model.eval()
    records = []
    for image in images:
        output = infer_frame(model, read_image(Path(images_dir) / image["file_name"]), resolution, device)
        keypoints, scores = decode_engine_output(output, model.config.output_stride, EVAL_DECODING)
        keypoints[..., :2] = output.transform.to_frame(keypoints[..., :2])
        records += coco_records(image["id"], keypoints, scores)
    model.train(was_training)
    return coco_keypoint_ap(ground_truth, records, image_ids=[image["id"] for image in images])
