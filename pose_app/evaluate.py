"""`pose-app eval`: COCO keypoint accuracy (OKS AP/AR, scored by pycocotools) and speed.

The model runs over every image of a COCO keypoint ground-truth file; its poses become
COCO-results records, and pycocotools' `COCOeval(iouType="keypoints")` scores them. pycocotools
is imported inside the functions that need it, so the app runs without it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pose_app.errors import PoseAppError
from pose_app.estimator import PoseEstimator
from pose_app.export import coco_keypoint_records, write_json_file
from pose_app.render import mirror_x
from pose_app.skeleton import NUM_KEYPOINTS
from pose_app.sources import read_image
from pose_app.tracking import object_keypoint_similarity

# COCOeval.stats order for iouType="keypoints" (pycocotools' summarize()).
METRIC_NAMES = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50", "AR75", "AR_medium", "AR_large")


def _import_pycocotools() -> tuple[Any, Any]:
    """(COCO, COCOeval), or a PoseAppError saying how to install them."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise PoseAppError(
            f"pose-app eval needs pycocotools ({exc}); install it with: pip install pycocotools"
        ) from None
    return COCO, COCOeval


def load_ground_truth(gt_json: Path | dict) -> dict:
    """The COCO keypoint ground truth as a dict (read from a JSON file when given a path), with
    the annotation fields pycocotools needs checked and the derivable ones filled in."""
    if isinstance(gt_json, dict):
        return _complete_annotations(gt_json, "the ground truth")
    path = Path(gt_json)
    try:
        with path.open(encoding="utf-8") as f:
            dataset = json.load(f)
    except FileNotFoundError:
        raise PoseAppError(f"ground-truth file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoseAppError(f"cannot read ground-truth file {path}: {exc}") from None
    if not isinstance(dataset, dict) or not {"images", "annotations", "categories"} <= dataset.keys():
        raise PoseAppError(f"{path} is not a COCO annotation file (needs images, annotations, categories)")
    return _complete_annotations(dataset, str(path))


# Fields pycocotools' keypoint evaluation reads from every ground-truth annotation (and images' ids).
REQUIRED_ANNOTATION_FIELDS = ("id", "image_id", "category_id", "bbox", "keypoints")


def _complete_annotations(dataset: dict, source: str) -> dict:
    """`dataset` with each annotation's num_keypoints, area and iscrowd filled in where absent.

    pycocotools reads all three, but many hand-made keypoint files leave them out and they are
    derivable: num_keypoints is the count of labelled (v > 0) keypoints, area is the box's w * h
    (COCO's own area is the segmentation's, slightly smaller; it only picks OKS's scale and the
    medium/large bucket), iscrowd defaults to 0. The caller's dicts are not modified.
    """
    if not all(isinstance(image, dict) and "id" in image for image in dataset["images"]):
        raise PoseAppError(f"{source}: every image needs an 'id'")
    annotations = []
    for annotation in dataset["annotations"]:
        missing = [name for name in REQUIRED_ANNOTATION_FIELDS if name not in annotation]
        if missing:
            raise PoseAppError(f"{source}: annotation {annotation.get('id', '?')} lacks the field '{missing[0]}'")
        filled = {}
        if "num_keypoints" not in annotation:
            filled["num_keypoints"] = int(np.count_nonzero(np.asarray(annotation["keypoints"])[2::3] > 0))
        if "area" not in annotation:
            filled["area"] = float(annotation["bbox"][2]) * float(annotation["bbox"][3])
        if "iscrowd" not in annotation:
            filled["iscrowd"] = 0
        annotations.append({**annotation, **filled} if filled else annotation)
    return {**dataset, "annotations": annotations}


def person_category_id(dataset: dict) -> int:
    """The id of the ground truth's person category: the one named "person", or else the single
    category with keypoints; PoseAppError when there is none."""
    categories = [c for c in dataset["categories"] if isinstance(c, dict) and "id" in c]
    named = [c for c in categories if c.get("name") == "person"]
    with_keypoints = [c for c in categories if c.get("keypoints")]
    found = named or (with_keypoints if len(with_keypoints) == 1 else [])
    if len(found) != 1:
        raise PoseAppError(
            "the ground truth has no person category (a category named 'person' or the only one with keypoints)"
        )
    return int(found[0]["id"])


def first_images_by_id(images: list[dict], limit: int | None = None) -> list[dict]:
    """The ground truth's images sorted by id, only the first `limit` when given."""
    return sorted(images, key=lambda image: image["id"])[:limit]


def _coco_from_dict(dataset: dict) -> Any:
    """A pycocotools COCO object indexing `dataset` (its index-building chatter silenced)."""
    COCO, _ = _import_pycocotools()
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _coco_results(gt: Any, detections: list[dict]) -> Any:
    """The detections as a pycocotools results object over the ground truth's images.

    pycocotools' loadRes cannot take an empty list, yet "no detections" is a valid result
    (AP 0), so that case gets an empty results set directly.
    """
    if not detections:
        return _coco_from_dict(
            {"images": gt.dataset["images"], "categories": gt.dataset["categories"], "annotations": []}
        )
    # loadRes adds id/area/bbox to the records it gets: give it copies, not the caller's dicts.
    with contextlib.redirect_stdout(io.StringIO()):
        return gt.loadRes([dict(d) for d in detections])


def coco_keypoint_ap(
    gt_json: Path | dict, detections: list[dict], image_ids: Sequence[int] | None = None
) -> dict[str, float]:
    """COCO keypoint AP/AR of `detections` (COCO-results records) against `gt_json`.

    Scored by pycocotools' COCOeval with iouType="keypoints" (OKS matching, at most 20
    detections per image, the highest scores first). Returns the keys of `METRIC_NAMES`; a
    size bucket with no ground truth reads -1.0 (pycocotools' convention). `image_ids`
    restricts scoring to those images (default: every image of the ground truth), e.g. when
    only part of a dataset was run. An empty detection list scores 0.0.
    """
    _, COCOeval = _import_pycocotools()
    gt = _coco_from_dict(load_ground_truth(gt_json))
    unknown = {d["image_id"] for d in detections} - set(gt.getImgIds())
    if unknown:
        raise PoseAppError(f"detections name image ids missing from the ground truth: {sorted(unknown)[:5]}")
    evaluator = COCOeval(gt, _coco_results(gt, detections), iouType="keypoints")
    if image_ids is not None:
        evaluator.params.imgIds = sorted(int(i) for i in image_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(value) for name, value in zip(METRIC_NAMES, evaluator.stats)}


# Test-time augmentation merges the poses of several views (scales, mirror image) of one image:
# poses from different views whose OKS reaches this are the same person.
MERGE_MIN_OKS = 0.5
# Keypoints below this score are left out of the OKS that groups poses across views.
MERGE_MIN_KEYPOINT_SCORE = 0.1


@dataclass(frozen=True)
class Augmentation:
    """Test-time augmentation: the image is also run at `scales` x the resolution, and mirrored."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False


def merge_views(views: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Poses of one image seen in several views -> one set of poses (keypoints (P,17,3), scores (P,)).

    Greedy from the best pose: it takes, from every other view, that view's free pose with the
    highest OKS to it if that reaches `MERGE_MIN_OKS`. A group's keypoint positions are their
    score-weighted mean; its keypoint and pose scores are the mean over ALL views (0 where a
    view missed the person), so people every view agrees on rank first.
    """
    keypoints = np.concatenate([k for k, _ in views]).astype(np.float64)
    scores = np.concatenate([s for _, s in views]).astype(np.float64)
    view_of = np.repeat(np.arange(len(views)), [len(s) for _, s in views])
    oks = object_keypoint_similarity(keypoints, keypoints, MERGE_MIN_KEYPOINT_SCORE)
    free = np.ones(len(scores), dtype=bool)
    merged_keypoints, merged_scores = [], []
    for leader in np.argsort(-scores, kind="stable"):
        if not free[leader]:
            continue
        group = [leader]
        for view in set(range(len(views))) - {view_of[leader]}:
            candidates = np.flatnonzero(free & (view_of == view) & (oks[leader] >= MERGE_MIN_OKS))
            if len(candidates):
                group.append(candidates[np.argmax(oks[leader, candidates])])
        free[group] = False
        members = keypoints[group]
        weights = members[:, :, 2:] + 1e-9  # 1e-9: a keypoint all views score 0 still gets a mean
        xy = (members[:, :, :2] * weights).sum(axis=0) / weights.sum(axis=0)
        keypoint_scores = members[:, :, 2].sum(axis=0) / len(views)
        merged_keypoints.append(np.concatenate([xy, keypoint_scores[:, None]], axis=1))
        merged_scores.append(scores[group].sum() / len(views))
    if not merged_scores:
        return np.zeros((0, NUM_KEYPOINTS, 3), np.float32), np.zeros(0, np.float32)
    order = np.argsort(merged_scores, kind="stable")[::-1]
    return (
        np.stack(merged_keypoints)[order].astype(np.float32),
        np.asarray(merged_scores, np.float32)[order],
    )


def view_estimators(estimator: PoseEstimator, augmentation: Augmentation) -> list[PoseEstimator]:
    """One estimator per view, sharing the engine: each scale, and its mirrored twin if flipping."""
    return [
        PoseEstimator(estimator.engine, round(estimator.resolution * scale), estimator.settings, mirrored_input=mirrored)
        for scale in augmentation.scales
        for mirrored in ((False, True) if augmentation.flip else (False,))
    ]


def estimate_augmented(
    estimators: list[PoseEstimator], image_bgr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Poses (keypoints (P,17,3), scores (P,)) of one image over all views, and the seconds per stage."""
    mirrored_image = cv2.flip(image_bgr, 1) if any(e.mirrored_input for e in estimators) else None
    views, timings = [], {}
    for view_estimator in estimators:
        if view_estimator.mirrored_input:
            poses = view_estimator.estimate(mirrored_image)
            # mirrored_input already made the labels anatomical; only x goes back.
            views.append((mirror_x(poses.keypoints, image_bgr.shape[1]), poses.scores))
        else:
            poses = view_estimator.estimate(image_bgr)
            views.append((poses.keypoints, poses.scores))
        for stage, seconds in poses.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    if len(views) == 1:
        return views[0][0], views[0][1], timings
    start = time.perf_counter()
    keypoints, scores = merge_views(views)
    timings["merge"] = time.perf_counter() - start
    return keypoints, scores, timings


def run_detection(
    estimator: PoseEstimator,
    gt_json: Path | dict,
    images_dir: Path,
    augmentation: Augmentation = Augmentation(),
    limit: int | None = None,
) -> tuple[list[dict], list[dict[str, float]]]:
    """(COCO-results records, seconds per stage for each image) over the ground truth's images.

    `limit` keeps the first images only (sorted by id), for quick checks.
    """
    ground_truth = load_ground_truth(gt_json)
    person = person_category_id(ground_truth)
    images = first_images_by_id(ground_truth["images"], limit)
    estimators = view_estimators(estimator, augmentation)
    records, timings = [], []
    for image in images:
        start = time.perf_counter()
        image_bgr = read_image(Path(images_dir) / image["file_name"])
        read_seconds = time.perf_counter() - start
        keypoints, scores, image_timings = estimate_augmented(estimators, image_bgr)
        records += coco_keypoint_records(image["id"], keypoints, scores, person)
        timings.append({"read": read_seconds, **image_timings})
    return records, timings


# Decoding defaults for `pose-app eval`, unlike the app's: COCO AP ranks every detection by score
# and only penalises low-scored false positives a little, so a low pose-score floor and up to
# COCOeval's 20 detections per image find more people.
EVAL_MAX_POSES = 20
EVAL_MIN_POSE_SCORE = 0.05


def parse_scales(text: str) -> tuple[float, ...]:
    """'0.75,1,1.25' -> (0.75, 1.0, 1.25); argparse type for --multi-scale."""
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated scale factors, got {text!r}") from None
    if not scales or min(scales) <= 0:
        raise argparse.ArgumentTypeError(f"scale factors must be positive, got {text!r}")
    return scales


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pose-app eval`."""
    from pose_app.cli import add_engine_arguments, positive_int

    parser.add_argument("--gt", type=Path, required=True, help="COCO keypoint ground truth (JSON)")
    parser.add_argument("--images", type=Path, required=True, help="folder the ground truth's file_names are relative to")
    parser.add_argument("--out", type=Path, help="write the detections here (COCO results JSON)")
    parser.add_argument("--limit", type=positive_int, help="evaluate only the first N images (by id)")
    parser.add_argument(
        "--flip", action="store_true",
        help="test-time augmentation: also run the mirrored image and merge the poses (2x the time)",
    )
    parser.add_argument(
        "--multi-scale", type=parse_scales, default=(1.0,), metavar="S1,S2,...",
        help="test-time augmentation: run at these multiples of --resolution and merge the poses",
    )
    add_engine_arguments(parser)
    parser.set_defaults(max_poses=EVAL_MAX_POSES, min_score=EVAL_MIN_POSE_SCORE)


def mean_milliseconds(timings: list[dict[str, float]]) -> dict[str, float]:
    """Mean milliseconds per image of each stage, plus their "total"."""
    stages = list(dict.fromkeys(stage for image_timings in timings for stage in image_timings))
    means = {stage: 1000.0 * float(np.mean([t.get(stage, 0.0) for t in timings])) for stage in stages}
    means["total"] = sum(means.values())
    return means


def format_metrics(metrics: dict[str, float]) -> str:
    """AP and AR rows (all, OKS .50, OKS .75, medium, large) as a small table; n/a: no such people."""
    columns = ("", "50", "75", "_medium", "_large")
    header = f"{'':8}" + "".join(f"{name:>9}" for name in ("OKS.5:.95", "OKS.50", "OKS.75", "medium", "large"))
    rows = [
        f"{kind:8}" + "".join(
            f"{metrics[kind + column]:9.3f}" if metrics[kind + column] >= 0 else f"{'n/a':>9}" for column in columns
        )
        for kind in ("AP", "AR")
    ]
    return "\n".join([header, *rows])


def run(args: argparse.Namespace) -> int:
    """`pose-app eval`: detect over the ground truth's images, print AP/AR and speed."""
    from pose_app.cli import estimator_from_args

    _import_pycocotools()  # fail before minutes of inference, not after
    ground_truth = load_ground_truth(args.gt)
    if not Path(args.images).is_dir():
        raise PoseAppError(f"image folder not found: {args.images}")
    estimator = estimator_from_args(args)
    augmentation = Augmentation(scales=args.multi_scale, flip=args.flip)
    records, timings = run_detection(estimator, ground_truth, args.images, augmentation, args.limit)
    image_ids = [image["id"] for image in first_images_by_id(ground_truth["images"], args.limit)]
    metrics = coco_keypoint_ap(ground_truth, records, image_ids)
    info = estimator.engine.info
    scored = set(image_ids)
    person = person_category_id(ground_truth)
    people = sum(
        1 for a in ground_truth["annotations"]
        if a["image_id"] in scored and a["category_id"] == person and a["num_keypoints"] > 0
    )
    print(
        f"model {info.name} (output stride {info.output_stride}) on {estimator.engine.provider_label}, "
        f"resolution {estimator.resolution}, {'single' if estimator.settings.single_pose else 'multi'}-pose, "
        f"scales {','.join(f'{s:g}' for s in augmentation.scales)}, flip {'on' if augmentation.flip else 'off'}"
    )
    print(f"{len(image_ids)} images, {people} people with keypoints, {len(records)} detections")
    print(format_metrics(metrics))
    speed = mean_milliseconds(timings)
    print("ms/image (mean): " + ", ".join(f"{stage} {ms:.1f}" for stage, ms in speed.items()))
    if args.out is not None:
        write_json_file(args.out, records)
        print(f"detections written to {args.out}")
    return 0
