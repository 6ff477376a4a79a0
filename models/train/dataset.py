"""COCO-format keypoint data for training: reading, augmentation, letterboxing, targets.

A dataset is an images folder plus a COCO person-keypoints JSON whose `file_name`s are relative
to that folder. Each sample is letterboxed like the app does (longer side resized to the input
size, padded right/bottom to a square valid size), augmented with torchvision's v2 transforms
(which move `tv_tensors.KeyPoints` and the crowd `Mask` together with the image), and turned
into PoseNet targets at the output stride.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from models.posenet import output_size
from models.train.targets import DEFAULT_DISC_RADIUS, PoseTargets, build_targets
from pose_app.errors import PoseAppError
from pose_app.evaluate import read_image
from pose_app.skeleton import FLIP_PERMUTATION, NUM_KEYPOINTS

PERSON_CATEGORY_ID = 1
# Letterbox padding grey: the app pads with 127.5, i.e. 0 after PoseNet's x / 127.5 - 1.
PAD_GREY = 128


@dataclass(frozen=True)
class AugmentConfig:
    """Random training augmentation; `None` of it is applied for validation."""

    scale: tuple[float, float] = (0.7, 1.3)  # zoom of the letterboxed picture (>1 crops)
    rotation_deg: float = 30.0  # uniform in +-rotation_deg
    translate: float = 0.15  # shift, fraction of the input size
    flip_probability: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.05


@dataclass
class CocoImage:
    """One image of a COCO keypoint file and its person annotations."""

    image_id: int
    path: Path
    keypoints: np.ndarray  # (P, 17, 3) x, y, v in image pixels, people with >= 1 labelled keypoint
    ignore_regions: list[dict]  # crowd and unlabelled-person annotations (bbox, segmentation)
    size: tuple[int, int]  # (height, width) from the JSON


def read_coco_keypoints(ann_path: Path, images_dir: Path, max_images: int | None = None) -> list[CocoImage]:
    """Images of a COCO person-keypoints JSON, sorted by id (the first `max_images` if given)."""
    ann_path, images_dir = Path(ann_path), Path(images_dir)
    if not ann_path.is_file():
        raise PoseAppError(f"annotation file not found: {ann_path}")
    if not images_dir.is_dir():
        raise PoseAppError(f"images folder not found: {images_dir}")
    try:
        coco = json.loads(ann_path.read_text())
        images = sorted(coco["images"], key=lambda image: image["id"])
        annotations = coco["annotations"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise PoseAppError(f"{ann_path} is not a COCO keypoint file ({error})") from None
    images = images[:max_images] if max_images else images
    by_image: dict[int, list[dict]] = {image["id"]: [] for image in images}
    for annotation in annotations:
        if annotation.get("category_id", PERSON_CATEGORY_ID) == PERSON_CATEGORY_ID and annotation["image_id"] in by_image:
            by_image[annotation["image_id"]].append(annotation)
    return [_coco_image(image, by_image[image["id"]], images_dir) for image in images]


def _coco_image(image: dict, annotations: list[dict], images_dir: Path) -> CocoImage:
    """Split an image's annotations into labelled people and regions to ignore."""
    people = [a for a in annotations if not a.get("iscrowd") and _labelled_count(a) > 0]
    ignore = [a for a in annotations if a.get("iscrowd") or _labelled_count(a) == 0]
    keypoints = np.array([a["keypoints"] for a in people], np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    return CocoImage(
        image_id=int(image["id"]),
        path=images_dir / image["file_name"],
        keypoints=keypoints,
        ignore_regions=ignore,
        size=(int(image["height"]), int(image["width"])),
    )


def _labelled_count(annotation: dict) -> int:
    return int(np.count_nonzero(np.asarray(annotation.get("keypoints", []))[2::3]))


def ignore_mask(regions: list[dict], height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask, 1 inside each region's segmentation (polygons or RLE) or else its box."""
    from pycocotools import mask as coco_mask  # only the training side needs pycocotools

    mask = np.zeros((height, width), np.uint8)
    for region in regions:
        segmentation = region.get("segmentation")
        if segmentation:
            rles = coco_mask.frPyObjects(segmentation, height, width)
            mask |= coco_mask.decode(coco_mask.merge(rles) if isinstance(rles, list) else rles)
        else:
            x, y, w, h = region["bbox"]
            mask[int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))] = 1
    return mask


def read_rgb(path: Path) -> torch.Tensor:
    """(3, H, W) uint8 RGB image, read with OpenCV like the app (torchvision.io's decoders are
    deprecated since 0.29)."""
    return torch.from_numpy(np.ascontiguousarray(read_image(path)[:, :, ::-1].transpose(2, 0, 1)))


def letterbox(sample: dict, input_size: int) -> dict:
    """Resize the longer side to `input_size` and pad right/bottom to a square, like the app.

    Keypoints here are in corner coordinates (pixel centre + 0.5), which is what torchvision's
    resize scales exactly; see `augment_sample`.
    """
    height, width = sample["image"].shape[-2:]
    sample = v2.Resize(size=None, max_size=input_size)(sample) if max(height, width) != input_size else sample
    height, width = sample["image"].shape[-2:]
    padding = [0, 0, input_size - width, input_size - height]  # left, top, right, bottom
    fill = {tv_tensors.Image: PAD_GREY, tv_tensors.Mask: 0}
    return v2.Pad(padding, fill=fill)(sample)


def horizontal_flip(image: torch.Tensor, keypoints: torch.Tensor, visibility: torch.Tensor, mask: torch.Tensor):
    """Mirror image, mask and keypoints (x -> W - 1 - x) and swap left/right keypoint slots.

    torchvision flips coordinates but cannot know that a mirrored left wrist is a right wrist;
    FLIP_PERMUTATION renames them. keypoints: KeyPoints (P, 17, 2); visibility: (P, 17).
    """
    permutation = list(FLIP_PERMUTATION)
    flipped = TF.horizontal_flip(keypoints)
    return (
        TF.horizontal_flip(image),
        tv_tensors.wrap(flipped[:, permutation], like=flipped),
        visibility[:, permutation],
        TF.horizontal_flip(mask),
    )


class KeypointAugmenter:
    """Letterbox + (optionally) random zoom/rotation/shift, colour jitter and mirroring."""

    def __init__(self, input_size: int, augment: AugmentConfig | None) -> None:
        self.input_size = input_size
        self.augment = augment
        if augment is not None:
            self.geometry = v2.RandomAffine(
                degrees=augment.rotation_deg,
                translate=(augment.translate, augment.translate),
                scale=augment.scale,
                fill={tv_tensors.Image: PAD_GREY, tv_tensors.Mask: 0},
            )
            self.colour = v2.ColorJitter(augment.brightness, augment.contrast, augment.saturation, augment.hue)

    def __call__(self, image: torch.Tensor, keypoints: np.ndarray, mask: np.ndarray):
        """(3,H,W) uint8, (P,17,3) x,y,v, (H,W) mask -> the same in input pixels (S x S).

        Keypoints that leave the picture become unlabelled (v = 0).
        """
        height, width = image.shape[-2:]
        # torchvision scales point coordinates as continuous (corner) coordinates; the project's
        # pixel-centre coordinates are those minus 0.5, so shift in and out around the warp.
        sample = {
            "image": tv_tensors.Image(image),
            "keypoints": tv_tensors.KeyPoints(torch.from_numpy(keypoints[..., :2] + 0.5), canvas_size=(height, width)),
            "mask": tv_tensors.Mask(torch.from_numpy(mask)[None]),
        }
        sample = letterbox(sample, self.input_size)
        visibility = torch.from_numpy(keypoints[..., 2].copy())
        if self.augment is not None:
            sample = self.geometry(sample)
            sample["image"] = self.colour(sample["image"])
        image, mask = sample["image"], sample["mask"]
        points = tv_tensors.wrap(sample["keypoints"] - 0.5, like=sample["keypoints"])
        if self.augment is not None and torch.rand(()) < self.augment.flip_probability:
            image, points, visibility, mask = horizontal_flip(image, points, visibility, mask)
        inside = ((points >= 0) & (points <= self.input_size - 1)).all(dim=-1)
        visibility = torch.where(inside, visibility, torch.zeros_like(visibility))
        keypoints_out = torch.cat([points.as_subclass(torch.Tensor), visibility[..., None]], dim=-1)
        return image.as_subclass(torch.Tensor), keypoints_out.numpy(), mask[0].numpy()


class CocoKeypointDataset(Dataset):
    """Letterboxed, optionally augmented images with PoseNet targets.

    An item is {"image": float32 (3, S, S) RGB 0..255, "image_id": int, target fields...}
    where the target fields are those of `PoseTargets` as float32 tensors.
    """

    def __init__(
        self,
        images: list[CocoImage],
        input_size: int,
        output_stride: int,
        augment: AugmentConfig | None = None,
        disc_radius: float = DEFAULT_DISC_RADIUS,
    ) -> None:
        self.images = images
        self.map_size = output_size(input_size, output_stride)
        self.output_stride = output_stride
        self.disc_radius = disc_radius
        self.augmenter = KeypointAugmenter(input_size, augment)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        entry = self.images[index]
        image = read_rgb(entry.path)
        height, width = image.shape[-2:]
        mask = ignore_mask(entry.ignore_regions, height, width)
        image, keypoints, mask = self.augmenter(image, entry.keypoints, mask)
        targets = build_targets(
            keypoints, (self.map_size, self.map_size), self.output_stride, self.disc_radius, mask
        )
        return {"image": image.float(), "image_id": entry.image_id, **targets_as_tensors(targets)}


def targets_as_tensors(targets: PoseTargets) -> dict[str, torch.Tensor]:
    """PoseTargets -> {field name: float32 tensor}."""
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in vars(targets).items()}
