"""`python -m models.train`: fine-tune (or train) PoseNet on COCO-format keypoints, export ONNX.

Example (fine-tune Google's 0.75 model, validate, export for pose-app --model):
    python -m models.train --data DIR/images --ann DIR/person_keypoints.json --init posenet-075 \
        --epochs 10 --val-ann VAL/person_keypoints.json --val-data VAL/images \
        --out runs/mine --export runs/mine/mine.onnx
The export holds the epoch with the best validation AP (OUT/best.pt); --export-from last takes
the final epoch.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import torch

from models.train.trainer import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    TrainConfig,
    Trainer,
    choose_device,
    load_checkpoint,
    model_from_checkpoint,
)
from pose_app.errors import PoseAppError
from pose_app.inference.config import PRESETS

EXPORT_SOURCES = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}
# On --resume the saved run's settings win, except these, which may change between sessions.
RESUME_OVERRIDES = ("epochs", "workers", "val_every", "val_max_images")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m models.train",
        description="Fine-tune (or train) PoseNet on COCO-format keypoints and export an app ONNX model.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, help="images folder (the JSON's file_names are relative to it)")
    data.add_argument("--ann", type=Path, help="COCO person-keypoints JSON")
    data.add_argument("--val-ann", type=Path, help="validation COCO keypoints JSON (AP via pycocotools)")
    data.add_argument("--val-data", type=Path, help="validation images folder (default: --data)")
    data.add_argument("--max-images", type=int, help="use only the first K training images (smoke runs)")
    data.add_argument("--val-max-images", type=int, help="validate on the first K images only")
    data.add_argument(
        "--crops", action="store_const", const=True,
        help="train the crop network: one crop per labelled person, cut as the app's crop stage cuts "
        "them (--input-size = crop height, 257 -> 193x257), validated with --val-preset's pipeline",
    )
    data.add_argument(
        "--distill-heatmaps", action="store_const", const=True,
        help="heatmap targets = the starting weights' own heatmaps (keeps their scores); offsets and "
        "displacements still learn from the labels",
    )
    data.add_argument(
        "--val-preset", choices=list(PRESETS),
        help=f"--crops: the preset whose pipeline validates the crop network (default {TrainConfig.val_preset})",
    )
    data.add_argument(
        "--no-augment", dest="augment", action="store_false", default=None, help="letterbox only, no augmentation"
    )
    model = parser.add_argument_group("model")
    model.add_argument("--init", help=f"posenet-075 | posenet-050 | scratch (default {TrainConfig.init})")
    model.add_argument("--width", type=float, help="width multiplier for --init scratch (default 0.75)")
    model.add_argument(
        "--output-stride", type=int, choices=(8, 16), help=f"default {TrainConfig.output_stride}"
    )
    model.add_argument("--freeze-layers", type=int, help="keep conv0 and blocks 1..N-1 fixed (default 0)")
    model.add_argument(
        "--disc-radius", type=float, help=f"heatmap disc radius, input px (default {TrainConfig.disc_radius:g})"
    )
    run = parser.add_argument_group("optimisation")
    run.add_argument("--epochs", type=int, help=f"total epochs (default {TrainConfig.epochs})")
    run.add_argument("--batch-size", type=int, help=f"default {TrainConfig.batch_size}")
    run.add_argument("--lr", type=float, help="peak learning rate (default 1e-4 fine-tuning, 1e-3 scratch)")
    run.add_argument("--weight-decay", type=float, help=f"default {TrainConfig.weight_decay:g}")
    run.add_argument(
        "--input-size", type=int, help=f"square training input, k*stride+1 (default {TrainConfig.input_size}; 353...)"
    )
    run.add_argument("--val-input-size", type=int, help="validation resolution (default --input-size)")
    run.add_argument("--val-every", type=int, help="validate every N epochs and after the last (default 1)")
    run.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    run.add_argument("--seed", type=int, help=f"default {TrainConfig.seed}")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda")
    run.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: all cores)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, required=True, help="run folder: last.pt, history.json")
    output.add_argument("--resume", action="store_true", help=f"continue the run saved in OUT/{LAST_CHECKPOINT}")
    output.add_argument("--export", type=Path, help="write the trained model here as an app ONNX model")
    output.add_argument(
        "--export-from", choices=EXPORT_SOURCES, default="best",
        help=f"export OUT/{BEST_CHECKPOINT} (highest validation AP, needs --val-ann; default) "
        f"or OUT/{LAST_CHECKPOINT} (the final epoch)",
    )
    return parser.parse_args(argv)


def check_config(config: TrainConfig) -> TrainConfig:
    """`config` if its values make sense together; PoseAppError otherwise (what argparse cannot check)."""
    if (config.input_size - 1) % config.output_stride:
        raise PoseAppError(f"--input-size {config.input_size} must be k * {config.output_stride} + 1 (e.g. 257, 353)")
    if config.epochs < 0 or config.batch_size < 1:
        raise PoseAppError("--epochs must be >= 0 and --batch-size >= 1")
    if config.val_every < 1:
        raise PoseAppError(f"--val-every must be >= 1, got {config.val_every}")
    return config


def given_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig settings given on the command line (options left out are None)."""
    names = {f.name for f in fields(TrainConfig)} - {"loss_weights"}
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig of a fresh run: options left out take TrainConfig's defaults."""
    if args.data is None or args.ann is None:
        raise PoseAppError("--data and --ann are required (unless --resume)")
    return check_config(TrainConfig(**given_settings(args)))


def resumed_config(args: argparse.Namespace, checkpoint: dict) -> TrainConfig:
    """The saved run's config, with the few settings that may change on resume taken from args;
    other given settings that differ from the saved ones are ignored, with a warning."""
    saved = dict(checkpoint["train_config"])
    given = given_settings(args)
    ignored = [name for name, value in given.items() if name not in RESUME_OVERRIDES and value != saved.get(name)]
    if ignored:
        options = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(ignored))
        print(f"models.train: warning: --resume keeps the saved run's settings; ignoring {options}", file=sys.stderr)
    saved.update({name: given[name] for name in RESUME_OVERRIDES if name in given})
    return check_config(TrainConfig(**saved))


def weights_description(config: TrainConfig, epochs: int) -> tuple[str, str]:
    """(weights_source, license) metadata for the exported model."""
    data = f"{Path(config.ann).name} ({config.data})"
    if config.init == "scratch":
        return f"trained from scratch by models.train on {data}, {epochs} epochs", "terms of the training data apply"
    return (
        f"Google PoseNet {config.init} (TensorFlow.js models) fine-tuned by models.train on {data}, {epochs} epochs",
        "Apache-2.0 (base weights Copyright Google LLC; see NOTICE); terms of the training data apply",
    )


def check_export_source(config: TrainConfig, export_from: str) -> None:
    """Fail before training when the chosen export source cannot exist."""
    if export_from == "best" and not config.val_ann:
        raise PoseAppError("--export-from best needs a validation set (--val-ann); pass --export-from last")


def export(out: Path, export_from: str, path: Path) -> Path:
    """Export OUT/best.pt or OUT/last.pt as an app ONNX model; prints which epoch it holds."""
    from models.export_onnx import export_onnx

    checkpoint = load_checkpoint(out / EXPORT_SOURCES[export_from])
    config = TrainConfig(**checkpoint["train_config"])
    model = model_from_checkpoint(checkpoint)
    epoch = checkpoint["epoch"]
    best_ap = f", val AP {checkpoint['best']['AP']:.4f}" if export_from == "best" else ""
    print(f"exporting {export_from}: epoch {epoch}{best_ap}", flush=True)
    source, license_text = weights_description(config, epoch)
    return export_onnx(model.eval(), path, model_name=path.stem, weights_source=source, license=license_text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = choose_device(args.device)
        if args.threads:
            torch.set_num_threads(args.threads)
        if args.resume:
            checkpoint = load_checkpoint(args.out / LAST_CHECKPOINT)
            config = resumed_config(args, checkpoint)
            print(f"resuming {args.out} after epoch {checkpoint['epoch']} of {config.epochs}", flush=True)
        else:
            if (args.out / LAST_CHECKPOINT).exists():
                raise PoseAppError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
            checkpoint, config = None, config_from_args(args)
        if args.export:
            check_export_source(config, args.export_from)
        print(f"device {device} ({torch.get_num_threads()} CPU threads)", flush=True)
        trainer = Trainer(config, device, checkpoint)
        trainer.run()
        if args.export:
            print(f"exported {export(args.out, args.export_from, args.export)}", flush=True)
    except PoseAppError as error:
        print(f"models.train: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
