"""Localisation check of the exported models: PCK of the largest person per COCO image.

    python -m models.accuracy [--data ../shared/data/coco-dev] [--resolution 353] [MODEL ...]

For each image of the COCO keypoint set, the largest annotated person (box area, at least one
labelled keypoint) is the target. The ONNX model runs through the app's own engine on the whole
image (letterboxed so its longer side is `resolution`). Single-pose decoding (per-keypoint
heatmap argmax + that cell's offset) is restricted to heatmap cells inside the person's box
enlarged by 20 % about its centre, so that the check measures localisation rather than which
of several people the argmax happens to land on.

A labelled keypoint counts as correct when the prediction lies within 0.5 x the person's head
size, where head size = distance between the ears if both are labelled, else 2 x the distance
between the eyes if both are labelled, else 10 % of the box diagonal. PCK = correct / labelled
keypoints over all targets. The baseline puts every keypoint at the box centre (it knows the
box, like the model's restricted argmax does), so PCK well above it means real localisation.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_app.analysis.evaluate import (
    first_images_by_id,
    load_ground_truth,
    person_category_id,
)
from pose_app.core.skeleton import KEYPOINT_INDEX
from pose_app.errors import PoseAppError
from pose_app.inference.decode import decode_single_pose
from pose_app.inference.engine import PoseEngine
from pose_app.inference.model_files import SHIPPED_MODELS
from pose_app.io.sources import read_image

COCO_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "coco-dev"
BOX_ENLARGEMENT = 1.2
PCK_HEAD_FRACTION = 0.5
BOX_DIAGONAL_FALLBACK = 0.1


@dataclass(frozen=True)
class Target:
    """The largest annotated person of one image."""

    image_path: Path
    keypoints: np.ndarray  # (17, 3) x, y, visibility (0 = not labelled), frame pixels
    box_xywh: np.ndarray  # (4,) COCO box


@dataclass(frozen=True)
class PckResult:
    model: str
    people: int
    keypoints: int  # labelled keypoints scored
    pck: float  # fraction of them within 0.5 x head size
    centre_baseline_pck: float  # same, predicting the box centre for every keypoint


def largest_people(data_dir: Path) -> list[Target]:
    """One target per image (by id): its largest non-crowd person with labelled keypoints."""
    ground_truth = load_ground_truth(Path(data_dir) / "person_keypoints.json")
    person_category = person_category_id(ground_truth)
    people_of: dict[int, list[dict]] = {}
    for annotation in ground_truth["annotations"]:
        if annotation["category_id"] == person_category and not annotation["iscrowd"] and annotation["num_keypoints"] > 0:
            people_of.setdefault(annotation["image_id"], []).append(annotation)
    targets = []
    for image in first_images_by_id(ground_truth["images"]):
        if image["id"] not in people_of:
            continue
        person = max(people_of[image["id"]], key=lambda a: a["bbox"][2] * a["bbox"][3])
        targets.append(
            Target(
                image_path=Path(data_dir) / "images" / image["file_name"],
                keypoints=np.asarray(person["keypoints"], np.float32).reshape(17, 3),
                box_xywh=np.asarray(person["bbox"], np.float32),
            )
        )
    return targets


def pair_distance(keypoints: np.ndarray, a: str, b: str) -> np.ndarray:
    """(P,) distance between two named keypoints, NaN where either is unlabelled."""
    pa, pb = keypoints[:, KEYPOINT_INDEX[a]], keypoints[:, KEYPOINT_INDEX[b]]
    labelled = (pa[:, 2] > 0) & (pb[:, 2] > 0)
    return np.where(labelled, np.linalg.norm(pa[:, :2] - pb[:, :2], axis=1), np.nan)


def head_sizes(keypoints: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
    """(P,) ear-to-ear distance, else 2 x eye-to-eye distance, else 10 % of the box diagonal."""
    ears = pair_distance(keypoints, "left_ear", "right_ear")
    eyes = 2 * pair_distance(keypoints, "left_eye", "right_eye")
    diagonal = BOX_DIAGONAL_FALLBACK * np.hypot(boxes_xywh[:, 2], boxes_xywh[:, 3])
    return np.where(np.isnan(ears), np.where(np.isnan(eyes), diagonal, eyes), ears)


def pck_hits(predicted_xy: np.ndarray, keypoints: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """(P,17) bool: predicted point within PCK_HEAD_FRACTION x head size of the labelled one."""
    distance = np.linalg.norm(predicted_xy - keypoints[:, :, :2], axis=2)
    return distance <= PCK_HEAD_FRACTION * heads[:, None]


def enlarged_box_xyxy(box_xywh: np.ndarray, factor: float = BOX_ENLARGEMENT) -> np.ndarray:
    """(x0, y0, x1, y1) of the box scaled by `factor` about its centre."""
    centre = box_xywh[:2] + box_xywh[2:] / 2
    half = box_xywh[2:] * factor / 2
    return np.concatenate([centre - half, centre + half])


def cells_inside_box(box_xyxy: np.ndarray, map_shape: tuple[int, int], stride: int) -> np.ndarray:
    """(h, w) bool: heatmap cells whose centre (i*stride, j*stride) lies in the input-pixel box."""
    ys = np.arange(map_shape[0]) * stride
    xs = np.arange(map_shape[1]) * stride
    inside_y = (ys >= box_xyxy[1]) & (ys <= box_xyxy[3])
    inside_x = (xs >= box_xyxy[0]) & (xs <= box_xyxy[2])
    return inside_y[:, None] & inside_x[None, :]


def predict_in_box(engine: PoseEngine, target: Target, resolution: int) -> np.ndarray:
    """(17, 2) frame-pixel keypoints of the person in `target`'s enlarged box."""
    out = engine.infer(read_image(target.image_path), resolution)
    box = enlarged_box_xyxy(target.box_xywh).reshape(2, 2)
    box_input = out.transform.to_input(box).reshape(4)
    stride = engine.info.output_stride
    inside = cells_inside_box(box_input, out.heatmaps.shape[1:], stride)
    keypoints, _ = decode_single_pose(out.heatmaps * inside, out.heads["offsets"], stride)
    return out.transform.to_frame(keypoints[0, :, :2])


def evaluate_model(model: str | Path, targets: list[Target], resolution: int) -> PckResult:
    """PCK of `model` and of the box-centre baseline over `targets`."""
    engine = PoseEngine(model, provider="cpu")
    predicted = np.stack([predict_in_box(engine, t, resolution) for t in targets])
    keypoints = np.stack([t.keypoints for t in targets])
    boxes = np.stack([t.box_xywh for t in targets])
    heads = head_sizes(keypoints, boxes)
    labelled = keypoints[:, :, 2] > 0
    centres = np.broadcast_to((boxes[:, :2] + boxes[:, 2:] / 2)[:, None], predicted.shape)
    return PckResult(
        model=str(model),
        people=len(targets),
        keypoints=int(labelled.sum()),
        pck=float(pck_hits(predicted, keypoints, heads)[labelled].mean()),
        centre_baseline_pck=float(pck_hits(centres, keypoints, heads)[labelled].mean()),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(SHIPPED_MODELS), help="names or .onnx paths")
    parser.add_argument("--data", type=Path, default=COCO_DEV, help="COCO keypoint folder")
    parser.add_argument("--resolution", type=int, default=353, help="longer input side")
    args = parser.parse_args(argv)
    try:
        targets = largest_people(args.data)
        results = [evaluate_model(model, targets, args.resolution) for model in args.models]
    except PoseAppError as error:
        raise SystemExit(f"error: {error}") from None
    print("| model | resolution | people | keypoints | PCK@0.5 head | box-centre baseline |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.model} | {args.resolution} | {r.people} | {r.keypoints} "
            f"| {r.pck:.3f} | {r.centre_baseline_pck:.3f} |"
        )


if __name__ == "__main__":
    main()
