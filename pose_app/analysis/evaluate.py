"""`pose-app eval`: COCO keypoint accuracy (OKS AP/AR, scored by pycocotools) and speed.

The model runs over every image of a COCO keypoint ground-truth file (run/evaluate_run.py); its
poses become COCO-results records, and pycocotools' `COCOeval(iouType="keypoints")` scores them.
pycocotools is imported inside the functions that need it, so the app runs without it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pose_app.core.skeleton import NUM_KEYPOINTS
from pose_app.errors import PoseAppError, one_line

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
    except IsADirectoryError:
        raise PoseAppError(f"cannot read ground-truth file {path}: it is a directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoseAppError(f"cannot read ground-truth file {path}: {one_line(exc)}") from None
    except RecursionError:  # nesting deeper than Python's stack: no COCO file looks like that
        raise PoseAppError(f"cannot read ground-truth file {path}: nested too deeply") from None
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
    _check_ground_truth(dataset, source)
    annotations = []
    for annotation in dataset["annotations"]:
        filled = {}
        if "num_keypoints" not in annotation:
            filled["num_keypoints"] = int(np.count_nonzero(np.asarray(annotation["keypoints"])[2::3] > 0))
        if "area" not in annotation:
            filled["area"] = float(annotation["bbox"][2]) * float(annotation["bbox"][3])
        if "iscrowd" not in annotation:
            filled["iscrowd"] = 0
        annotations.append({**annotation, **filled} if filled else annotation)
    return {**dataset, "annotations": annotations}


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _numbers(value: object, count: int | None = None) -> bool:
    """A list of finite numbers (of `count` of them when given)."""
    return (
        isinstance(value, list) and (count is None or len(value) == count)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def _check_ground_truth(dataset: dict, source: str) -> None:
    """PoseAppError (one line: which record, which field, what is wrong) unless `dataset` has the
    shape and values pycocotools' keypoint evaluation reads: lists of objects; whole-number ids;
    a file name per image; per annotation a 4-number bbox (w, h >= 0) and 17 x, y, v keypoints."""
    for name in ("images", "annotations", "categories"):
        if not isinstance(dataset.get(name), list):
            raise PoseAppError(f"{source}: '{name}' must be a list, not {type(dataset.get(name)).__name__}")
    for number, image in enumerate(dataset["images"]):
        if not isinstance(image, dict) or not _is_id(image.get("id")):
            raise PoseAppError(f"{source}: image {number} needs a whole-number 'id'")
        if not isinstance(image.get("file_name"), str) or not image["file_name"] or "\0" in image["file_name"]:
            raise PoseAppError(f"{source}: image {image['id']} needs a 'file_name' (text)")
    for number, category in enumerate(dataset["categories"]):
        if not isinstance(category, dict) or not _is_id(category.get("id")):
            raise PoseAppError(f"{source}: category {number} needs a whole-number 'id'")
    for number, annotation in enumerate(dataset["annotations"]):
        if not isinstance(annotation, dict):
            raise PoseAppError(f"{source}: annotation {number} is not an object")
        missing = [name for name in REQUIRED_ANNOTATION_FIELDS if name not in annotation]
        label = annotation.get("id", number) if _is_id(annotation.get("id")) else number
        if missing:
            raise PoseAppError(f"{source}: annotation {label} lacks the field '{missing[0]}'")
        for name in ("id", "image_id", "category_id"):
            if not _is_id(annotation[name]):
                raise PoseAppError(f"{source}: annotation {label}: '{name}' must be a whole number, not {annotation[name]!r:.40}")
        bbox = annotation["bbox"]
        if not _numbers(bbox, 4) or bbox[2] < 0 or bbox[3] < 0:
            raise PoseAppError(f"{source}: annotation {label}: 'bbox' must be 4 finite numbers x, y, w, h (w, h >= 0)")
        if not _numbers(annotation["keypoints"], 3 * NUM_KEYPOINTS):
            raise PoseAppError(f"{source}: annotation {label}: 'keypoints' must be {3 * NUM_KEYPOINTS} finite numbers (x, y, v per keypoint)")
        for name in ("area", "num_keypoints"):
            if name in annotation and not _numbers([annotation[name]]):
                raise PoseAppError(f"{source}: annotation {label}: '{name}' must be a finite number")
        if annotation.get("iscrowd", 0) not in (0, 1):
            raise PoseAppError(f"{source}: annotation {label}: 'iscrowd' must be 0 or 1")


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


def turned_point(x: np.ndarray, y: np.ndarray, quarter_turns: int, size: tuple[float, float]) -> tuple:
    """(x, y) edge coordinates (COCO's: 0 at the image's left edge) of points of an image of
    `size` (w, h) in that image turned by `quarter_turns` x 90 degrees counter-clockwise as seen
    (`estimator.turn_frame`)."""
    width, height = size
    for _ in range(quarter_turns % 4):
        x, y, width, height = y, width - x, height, width
    return x, y


def turned_ground_truth(dataset: dict, quarter_turns: int) -> dict:
    """The ground truth of every image turned by `quarter_turns` x 90 degrees counter-clockwise
    (`estimator.turn_frame`): keypoints, boxes and image sizes turned, everything else kept. For
    measuring people in any orientation on a labelled set (`pose-app eval --turn`)."""
    if quarter_turns % 4 == 0:
        return dataset
    sizes = {image["id"]: (float(image["width"]), float(image["height"])) for image in dataset["images"]}
    images = [
        {**image, "width": image["height"], "height": image["width"]} if quarter_turns % 2 else dict(image)
        for image in dataset["images"]
    ]
    annotations = []
    for annotation in dataset["annotations"]:
        size = sizes[annotation["image_id"]]
        keypoints = np.asarray(annotation["keypoints"], np.float64).reshape(-1, 3).copy()
        keypoints[:, 0], keypoints[:, 1] = turned_point(keypoints[:, 0], keypoints[:, 1], quarter_turns, size)
        keypoints[keypoints[:, 2] == 0, :2] = 0.0  # unlabelled keypoints stay (0, 0, 0)
        x, y, w, h = annotation["bbox"]
        corners_x, corners_y = turned_point(np.array([x, x + w]), np.array([y, y + h]), quarter_turns, size)
        bbox = [float(corners_x.min()), float(corners_y.min()), float(np.ptp(corners_x)), float(np.ptp(corners_y))]
        annotations.append({**annotation, "keypoints": keypoints.ravel().tolist(), "bbox": bbox})
    return {**dataset, "images": images, "annotations": annotations}


# Decoding defaults for `pose-app eval`, unlike the app's: COCO AP ranks every detection by score
# and only penalises low-scored false positives a little, so a low pose-score floor and up to
# COCOeval's 20 detections per image find more people.
EVAL_MAX_POSES = 20
EVAL_MIN_POSE_SCORE = 0.05


def mean_milliseconds(timings: list[dict[str, float]]) -> dict[str, float]:
    """Mean milliseconds per image of each stage, plus their "total"."""
    stages = list(dict.fromkeys(stage for image_timings in timings for stage in image_timings))
    means = {stage: 1000.0 * float(np.mean([t.get(stage, 0.0) for t in timings])) for stage in stages}
    means["total"] = sum(means.values())
    return means
