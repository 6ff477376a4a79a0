"""`pose-app eval`: detect over a COCO keypoint set's images, print AP/AR and the time per image
(`--compare-presets`: one row per preset)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pose_app.analysis.evaluate import (
    EVAL_MAX_POSES,
    EVAL_MIN_POSE_SCORE,
    _import_pycocotools,
    first_images_by_id,
    load_ground_truth,
    person_category_id,
)
from pose_app.cli.options import add_old_spelling, add_pipeline_arguments, config_from_args, positive_int
from pose_app.errors import PoseAppError
from pose_app.inference.config import PRESETS
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.pipeline import PosePipeline
from pose_app.io.formats import write_json_file
from pose_app.run.evaluate_run import evaluate_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pose-app eval`."""
    parser.add_argument("--gt", type=Path, required=True, help="COCO keypoint ground truth (JSON)")
    parser.add_argument("--images", type=Path, required=True, help="folder the ground truth's file_names are relative to")
    parser.add_argument("--out", type=Path, help="write the detections here (COCO results JSON)")
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="evaluate only the first N images (by id)")
    add_old_spelling(parser, "--limit", "--max-frames", "max_frames", type=positive_int)
    parser.add_argument(
        "--turn", type=int, choices=(0, 90, 180, 270), default=0, metavar="DEGREES",
        help="turn every image and its labels by 90, 180 or 270 degrees counter-clockwise first: how well people "
        "lying or upside down are found (default 0)",
    )
    parser.add_argument(
        "--compare-presets", action="store_true",
        help="evaluate every preset (the other options given still apply) and print one table",
    )
    add_pipeline_arguments(parser)
    # COCO AP ranks every detection, so eval keeps faint poses the app would drop; its help says
    # eval's own defaults, not the app's.
    eval_defaults = {"max_poses": EVAL_MAX_POSES, "min_pose_score": EVAL_MIN_POSE_SCORE}
    parser.set_defaults(**eval_defaults)
    for group in parser._action_groups:
        for action in group._group_actions:
            if action.dest in eval_defaults:
                app_default = getattr(DecodeSettings(), action.dest)
                action.help = f"{action.help.split(' (default')[0]} (default {eval_defaults[action.dest]}; {app_default} elsewhere)"


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


def describe_pipeline(pipeline: PosePipeline) -> str:
    """One line: preset, model, provider, sizes and augmentation of a pipeline."""
    header = pipeline.header()
    crops = "no crops" if not header["refine"] else (
        f"crops {header['crop_input_size'][0]}x{header['crop_input_size'][1]}"
        + (" + mirror" if header["crop_flip"] else "") + f" (at most {header['max_crops']})"
        + (f" by {header['crop_model']}" if header["crop_model"] != header["model"] else "")
    )
    return (
        f"preset {header['preset']}: {header['model']} (output stride {header['output_stride']}) on "
        f"{pipeline.estimator.engine.provider_label}, resolution {header['resolution']}, "
        f"scales {','.join(f'{s:g}' for s in header['scales'])}, flip {'on' if header['flip'] else 'off'}, {crops}"
    )


def run(args: argparse.Namespace) -> int:
    """`pose-app eval`: detect over the ground truth's images, print AP/AR and speed."""
    _import_pycocotools()  # fail before minutes of inference, not after
    ground_truth = load_ground_truth(args.gt)
    if not Path(args.images).is_dir():
        raise PoseAppError(f"image folder not found: {args.images}")
    config = config_from_args(args)
    image_ids = [image["id"] for image in first_images_by_id(ground_truth["images"], args.max_frames)]
    scored = set(image_ids)
    person = person_category_id(ground_truth)
    people = sum(
        1 for a in ground_truth["annotations"]
        if a["image_id"] in scored and a["category_id"] == person and a["num_keypoints"] > 0
    )
    if args.compare_presets:
        print(f"{len(image_ids)} images, {people} people with keypoints")
        print(f"{'preset':10}{'AP':>7}{'AP50':>7}{'AP_M':>7}{'AP_L':>7}{'AR':>7}{'ms/image':>10}")
        for preset in PRESETS:
            metrics, _, speed, pipeline = evaluate_config(
                config.with_preset(preset), ground_truth, args.images, args.max_frames, args.turn // 90
            )
            print(
                f"{preset:10}" + "".join(f"{metrics[name]:7.3f}" for name in ("AP", "AP50", "AP_medium", "AP_large", "AR"))
                + f"{speed['total'] - speed.get('read', 0.0):10.1f}   {describe_pipeline(pipeline)}",
                flush=True,
            )
        print("ms/image: the pipeline's time per image (preprocess, inference, decode, crops), image reading excluded")
        return 0
    metrics, records, speed, pipeline = evaluate_config(config, ground_truth, args.images, args.max_frames, args.turn // 90)
    print(describe_pipeline(pipeline) + (f", images turned {args.turn} degrees" if args.turn else ""))
    print(f"{len(image_ids)} images, {people} people with keypoints, {len(records)} detections")
    print(format_metrics(metrics))
    print("ms/image (mean): " + ", ".join(f"{stage} {ms:.1f}" for stage, ms in speed.items()))
    if args.out is not None:
        write_json_file(args.out, records)
        print(f"detections written to {args.out}")
    return 0
