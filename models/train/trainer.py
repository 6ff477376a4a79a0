"""Training loop: AdamW with warmup + cosine decay, AMP on CUDA, validation AP, checkpoints.

Every epoch writes last.pt; whenever validation AP beats every earlier one (the pretrained
weights' AP before training included) the weights are also written to best.pt.

Google's PoseNet checkpoints have their BatchNorm folded into the conv biases, so the network
has no normalisation layers: fine-tuning them needs a low learning rate (1e-4 by default here),
and freezing the first layers (`freeze_layers`) keeps their generic filters intact.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from models.posenet import PoseNet, PoseNetConfig
from models.train.crops import DEFAULT_MIN_KEYPOINTS, CropAugment, PersonCropDataset, person_crops
from models.train.dataset import AugmentConfig, CocoKeypointDataset, read_coco_keypoints
from models.train.evaluation import crop_validation_ap, validation_ap
from models.train.losses import LossWeights, posenet_loss
from models.train.targets import DEFAULT_DISC_RADIUS
from pose_app.errors import PoseAppError, one_line
from pose_app.inference.crops import CropSettings

PRETRAINED_INITS = ("posenet-075", "posenet-050")
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
HISTORY_FILE = "history.json"


@dataclass
class TrainConfig:
    """Everything a run needs; saved in every checkpoint so `--resume` continues the same run."""

    data: str
    ann: str
    out: str
    init: str = "posenet-075"  # posenet-075 | posenet-050 | scratch
    width: float | None = None  # scratch only; pretrained inits have their own
    output_stride: int = 16
    epochs: int = 10
    batch_size: int = 16
    lr: float | None = None  # default: 1e-4 when fine-tuning, 1e-3 from scratch
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1  # of all optimiser steps
    input_size: int = 257
    disc_radius: float = DEFAULT_DISC_RADIUS
    freeze_layers: int = 0  # conv0 and blocks 1..n-1 keep their weights
    augment: bool = True
    # Person crops cut as the app's crop stage cuts them (models/train/crops.py), input_size
    # being the crop height (257: 193x257), validated with `val_preset`'s real pipeline.
    crops: bool = False
    val_preset: str = "balanced"
    # Heatmap targets = the starting weights' own heatmaps (distillation): binary-disc BCE
    # lowers the peaks the crop stage compares with the first pass's scores.
    distill_heatmaps: bool = False
    val_ann: str | None = None
    val_data: str | None = None
    val_every: int = 1
    val_input_size: int | None = None  # default: input_size
    val_max_images: int | None = None
    max_images: int | None = None
    workers: int = 0
    seed: int = 0
    loss_weights: dict = field(default_factory=lambda: asdict(LossWeights()))

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.init == "scratch" else 1e-4)


# Initial heatmap probability for a scratch model: about the share of disc cells, so training
# starts from a sensible BCE instead of spending its first steps unlearning p = 0.5 (RetinaNet's
# prior initialisation).
HEATMAP_PRIOR = 0.01


def initialise_scratch(model: PoseNet) -> PoseNet:
    """He-normal convs (fan-out, as torchvision's MobileNets), zero biases, heatmap prior bias.

    There is no BatchNorm to rescale activations, so a variance-preserving init matters.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.zeros_(module.bias)
    torch.nn.init.constant_(model.heatmap.bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))
    return model


def build_model(config: TrainConfig) -> PoseNet:
    """The network to start from: Google's weights, or a fresh init for 'scratch'."""
    if config.init == "scratch":
        network = PoseNetConfig(width_multiplier=config.width or 0.75, output_stride=config.output_stride)
        return initialise_scratch(PoseNet(network))
    if config.init not in PRETRAINED_INITS:
        raise PoseAppError(f"unknown --init {config.init!r}; choose one of {', '.join(PRETRAINED_INITS)}, scratch")
    from models.convert import WeightConversionError, pretrained_posenet

    try:
        model = pretrained_posenet(config.init, output_stride=config.output_stride)
    except (WeightConversionError, ValueError) as error:
        raise PoseAppError(f"cannot load {config.init}: {one_line(error)}") from None
    if config.width is not None and config.width != model.config.width_multiplier:
        raise PoseAppError(
            f"--width {config.width} contradicts --init {config.init} (width {model.config.width_multiplier})"
        )
    return model


def training_dataset(config: TrainConfig, output_stride: int) -> Dataset:
    """Whole letterboxed images, or with `config.crops` one crop per labelled person."""
    images = read_coco_keypoints(Path(config.ann), Path(config.data), config.max_images)
    if not images:
        raise PoseAppError(f"{config.ann} lists no images")
    if not config.crops:
        augment = AugmentConfig() if config.augment else None
        return CocoKeypointDataset(images, config.input_size, output_stride, augment, config.disc_radius)
    crops = person_crops(images)
    if not crops:
        raise PoseAppError(f"{config.ann} has no person with {DEFAULT_MIN_KEYPOINTS} or more labelled keypoints")
    settings = CropSettings(resolution=config.input_size)
    augment = CropAugment() if config.augment else None
    return PersonCropDataset(crops, settings, output_stride, augment, config.disc_radius)


def freeze_layers(model: PoseNet, count: int) -> None:
    """Stop gradients into the first `count` backbone layers (conv0 = layer 0, block i = layer i)."""
    layers = [model.conv0, *model.blocks][:count]
    for layer in layers:
        layer.requires_grad_(False)


def restore_scaler(scaler: torch.amp.GradScaler, state: dict) -> None:
    """Load a saved GradScaler state, unless it is empty.

    A run started on the CPU saved a disabled scaler, whose state is {}; resumed on CUDA it gets
    a fresh scaler (loading {} into an enabled one raises).
    """
    if state:
        scaler.load_state_dict(state)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """LR multiplier: linear warmup from ~0 to 1, then cosine decay to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def choose_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PoseAppError("--device cuda: no CUDA device is available to PyTorch")
    if name not in ("cpu", "cuda"):
        raise PoseAppError(f"unknown --device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


class ProgressBar:
    """One self-rewriting line on a terminal; a plain line every `log_every` steps otherwise."""

    def __init__(self, total: int, label: str, log_every: int = 50) -> None:
        self.total, self.label, self.log_every = total, label, log_every
        self.start = time.perf_counter()
        self.interactive = sys.stderr.isatty()

    def update(self, done: int, text: str) -> None:
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        if self.interactive:
            filled = int(30 * done / self.total)
            bar = "#" * filled + "." * (30 - filled)
            print(f"\r{self.label} [{bar}] {done}/{self.total} {text} {rate:.2f} it/s", end="", file=sys.stderr)
            if done == self.total:
                print(file=sys.stderr)
        elif done % self.log_every == 0 or done == self.total:
            print(f"{self.label} {done}/{self.total} {text} {rate:.2f} it/s", file=sys.stderr, flush=True)


class Trainer:
    """Owns the model, optimiser, schedule and data of one run (fresh or resumed)."""

    def __init__(self, config: TrainConfig, device: torch.device, checkpoint: dict | None = None) -> None:
        self.config, self.device = config, device
        torch.manual_seed(config.seed)
        if checkpoint is None:
            self.model = build_model(config)
        else:
            self.model = model_from_checkpoint(checkpoint)
        self.model.to(device).train()
        freeze_layers(self.model, config.freeze_layers)
        # The teacher is always the starting weights (also on --resume), never the student.
        self.teacher = build_model(config).to(device).eval().requires_grad_(False) if config.distill_heatmaps else None
        stride = self.model.config.output_stride
        self.dataset = training_dataset(config, stride)
        self.loss_weights = LossWeights(**config.loss_weights)
        self.steps_per_epoch = math.ceil(len(self.dataset) / config.batch_size)
        total_steps = self.steps_per_epoch * config.epochs
        warmup_steps = max(1, round(config.warmup_fraction * total_steps))
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps)
        )
        # Mixed precision only pays (and only exists for fp16 scaling) on CUDA.
        self.amp = device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.epoch, self.history = 0, []
        self.best: dict | None = None  # {"epoch", "AP"} of best.pt; None until validated
        if checkpoint is not None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.scheduler.load_state_dict(checkpoint["scheduler"])
            restore_scaler(self.scaler, checkpoint["scaler"])
            self.epoch, self.history = checkpoint["epoch"], checkpoint["history"]
            self.best = checkpoint.get("best")

    @property
    def out_dir(self) -> Path:
        return Path(self.config.out)

    def loader(self, epoch: int) -> DataLoader:
        """Batches in a seeded per-epoch order, so a resumed run sees the same sequence."""
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        return DataLoader(
            self.dataset,
            batch_size=self.config.batch_size,
            shuffle=True,
            generator=generator,
            num_workers=self.config.workers,
            drop_last=False,
            pin_memory=self.device.type == "cuda",
        )

    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimiser step on a batch; returns the loss terms as floats."""
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            outputs = self.model(batch["image"])
            if self.teacher is not None:
                with torch.no_grad():
                    batch["heatmaps"] = torch.sigmoid(self.teacher(batch["image"]).heatmap_logits.float())
        losses = posenet_loss(outputs, batch, self.loss_weights, self.config.disc_radius)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["loss"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {name: value.item() for name, value in losses.items()}

    def train_epoch(self) -> dict[str, float]:
        """One pass over the data; returns the mean of each loss term and the epoch's timing."""
        start = time.perf_counter()
        # Augmentation draws from torch's global RNG: seeding it per epoch makes a resumed epoch
        # draw what it would have drawn in one uninterrupted run, not replay epoch 1's draws.
        torch.manual_seed(self.config.seed * 1000 + self.epoch)
        sums: dict[str, float] = {}
        progress = ProgressBar(self.steps_per_epoch, f"epoch {self.epoch + 1}/{self.config.epochs}")
        for step, batch in enumerate(self.loader(self.epoch), start=1):
            losses = self.train_step(batch)
            sums = {name: sums.get(name, 0.0) + value for name, value in losses.items()}
            progress.update(step, f"loss {sums['loss'] / step:.4f}")
        means = {name: value / self.steps_per_epoch for name, value in sums.items()}
        return {**means, "lr": self.scheduler.get_last_lr()[0], "seconds": time.perf_counter() - start}

    def validate(self) -> dict[str, float] | None:
        """Validation AP/AR, or None when no validation set was given."""
        if not self.config.val_ann:
            return None
        if self.config.crops:
            return crop_validation_ap(
                self.model,
                Path(self.config.val_ann),
                Path(self.config.val_data or self.config.data),
                self.config.val_preset,
                self.device,
                self.config.val_max_images,
                threads=torch.get_num_threads(),
            )
        return validation_ap(
            self.model,
            Path(self.config.val_ann),
            Path(self.config.val_data or self.config.data),
            self.config.val_input_size or self.config.input_size,
            self.device,
            self.config.val_max_images,
        )

    def checkpoint(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "model_config": asdict(self.model.config),
            "train_config": asdict(self.config),
            "history": self.history,
            "best": self.best,
        }

    def write_checkpoint(self, name: str) -> Path:
        """Write OUT/name atomically, so an interrupt never leaves a torn file."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / name
        partial = path.with_suffix(".pt.partial")
        torch.save(self.checkpoint(), partial)
        partial.replace(path)
        return path

    def keep_if_best(self, val: dict[str, float]) -> bool:
        """Write best.pt when `val` AP beats every earlier validation (ties keep the earlier)."""
        if self.best is not None and val["AP"] <= self.best["AP"]:
            return False
        self.best = {"epoch": self.epoch, "AP": val["AP"]}
        self.write_checkpoint(BEST_CHECKPOINT)
        return True

    def save(self) -> Path:
        """Write last.pt and history.json."""
        path = self.write_checkpoint(LAST_CHECKPOINT)
        (self.out_dir / HISTORY_FILE).write_text(json.dumps(self.history, indent=2))
        return path

    def run(self) -> list[dict]:
        """Train the remaining epochs, validating every `val_every` and checkpointing each epoch."""
        if self.epoch == 0 and self.config.val_ann:
            before = self.validate()
            self.history.append({"epoch": 0, "val": before})
            self.keep_if_best(before)
            print(f"epoch 0 (before training): val AP {before['AP']:.4f}", flush=True)
        while self.epoch < self.config.epochs:
            record = {"epoch": self.epoch + 1, "train": self.train_epoch()}
            self.epoch += 1
            if self.config.val_ann and (self.epoch % self.config.val_every == 0 or self.epoch == self.config.epochs):
                record["val"] = self.validate()
                record["best"] = self.keep_if_best(record["val"])
            self.history.append(record)
            self.save()
            print(format_record(record), flush=True)
        return self.history


def format_record(record: dict) -> str:
    """'epoch 3: loss 0.1234 (heatmap ..., offset ..., displacement ...) lr ... val AP ...'."""
    train = record["train"]
    text = (
        f"epoch {record['epoch']}: loss {train['loss']:.4f} (heatmap {train['heatmap']:.4f}, "
        f"offset {train['offset']:.4f}, displacement {train['displacement']:.4f}) "
        f"lr {train['lr']:.2e} {train['seconds']:.0f}s"
    )
    if record.get("val"):
        text += f" val AP {record['val']['AP']:.4f}" + (" (best so far)" if record.get("best") else "")
    return text


def model_from_checkpoint(checkpoint: dict) -> PoseNet:
    """The network saved in a checkpoint (last.pt or best.pt)."""
    model = PoseNet(PoseNetConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    return model


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by `Trainer.write_checkpoint` (last.pt, best.pt), or PoseAppError."""
    if not path.is_file():
        raise PoseAppError(f"no checkpoint to resume from at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError) as error:
        raise PoseAppError(f"cannot read checkpoint {path}: {one_line(error)}") from None
