"""Running a pipeline over a COCO keypoint set for `pose-app eval`: every image a still picture
of its own through the one frame loop (frame_loop.py); the ground truth's checks and the scoring
are analysis/evaluate.py's."""

from __future__ import annotations

import time
from pathlib import Path

from pose_app.analysis.evaluate import (
    coco_keypoint_ap,
    first_images_by_id,
    load_ground_truth,
    mean_milliseconds,
    person_category_id,
    turned_ground_truth,
)
from pose_app.core.frames import Frame, SourceInfo
from pose_app.core.poses import FramePoses
from pose_app.inference.config import PipelineConfig
from pose_app.inference.estimator import turn_frame
from pose_app.inference.pipeline import PosePipeline, build_pipeline
from pose_app.io.formats import coco_keypoint_records
from pose_app.io.sources import read_image
from pose_app.run.frame_loop import run_frames


class GroundTruthImages:
    """The ground truth's images as a source of still frames (index: the position in `images`,
    name: the file name), each turned by `quarter_turns` x 90 degrees counter-clockwise.
    `read_seconds`: how long the last read took (reading and turning), the eval's "read" stage.
    An image that cannot be read is a PoseAppError: a labelled set must be complete."""

    def __init__(self, images: list[dict], images_dir: Path, quarter_turns: int = 0):
        self.images = images
        self._images_dir = Path(images_dir)
        self._quarter_turns = quarter_turns
        self._position = 0
        self.read_seconds = 0.0
        # Sizes differ per image and are not known before reading: 0, which nothing here reads.
        self.info = SourceInfo(str(images_dir), 0, 0, None, len(images), is_live=False, is_still=True)

    def read(self) -> Frame | None:
        if self._position >= len(self.images):
            return None
        start = time.perf_counter()
        image = self.images[self._position]
        image_bgr = turn_frame(read_image(self._images_dir / image["file_name"]), self._quarter_turns)
        self.read_seconds = time.perf_counter() - start
        frame = Frame(image_bgr, self._position, 0.0, image["file_name"])
        self._position += 1
        return frame

    def seek(self, frame_index: int) -> None:
        self._position = frame_index

    def close(self) -> None:
        pass


def run_detection(
    pipeline: PosePipeline,
    gt_json: Path | dict,
    images_dir: Path,
    limit: int | None = None,
    quarter_turns: int = 0,
) -> tuple[list[dict], list[dict[str, float]]]:
    """(COCO-results records, seconds per stage for each image) over the ground truth's images,
    each run as a still image through `pipeline` (build it with `is_still=True`), turned by
    `quarter_turns` x 90 degrees counter-clockwise (score against `turned_ground_truth`).

    `limit` keeps the first images only (sorted by id), for quick checks.
    """
    ground_truth = load_ground_truth(gt_json)
    person = person_category_id(ground_truth)
    source = GroundTruthImages(first_images_by_id(ground_truth["images"], limit), images_dir, quarter_turns)
    records: list[dict] = []
    timings: list[dict[str, float]] = []

    def detections(frame: Frame, poses: FramePoses, captured_at: float) -> None:
        image = source.images[frame.index]
        records.extend(coco_keypoint_records(image["id"], poses.keypoints, poses.scores, person))
        timings.append({"read": source.read_seconds, **poses.timings})

    # independent: separate pictures, no track carries over from one to the next.
    run_frames(source, pipeline, [detections], independent=True)
    return records, timings


def evaluate_config(
    config: PipelineConfig, ground_truth: dict, images_dir: Path, limit: int | None, quarter_turns: int = 0
):
    """(metrics, records, ms per image per stage, the pipeline) of one config over the images
    (turned by `quarter_turns` x 90 degrees counter-clockwise, with their labels)."""
    pipeline = build_pipeline(config, is_still=True)
    records, timings = run_detection(pipeline, ground_truth, images_dir, limit, quarter_turns)
    image_ids = [image["id"] for image in first_images_by_id(ground_truth["images"], limit)]
    turned = turned_ground_truth(ground_truth, quarter_turns)
    return coco_keypoint_ap(turned, records, image_ids), records, mean_milliseconds(timings), pipeline
