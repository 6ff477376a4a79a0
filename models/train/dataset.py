"""COCO-format keypoint data for training: reading, augmentation, letterboxing, targets.

A dataset is an images folder plus a COCO person-keypoints JSON whose `file_name`s are relative
to that folder. Each sample becomes the network input exactly as the app makes it
(`pose_app.inference.families.posenet.letterbox`: cv2 INTER_LINEAR resize of the longer side,
mid-grey padding right/bottom), padded on to a square for batching; augmentation (colour jitter
of the picture only, then torchvision's v2 RandomAffine with bilinear interpolation, which moves
`tv_tensors.KeyPoints` and the crowd `Mask` with the image, and mirroring) comes on top, and the
result is turned into PoseNet targets at the output stride.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from models.posenet import output_size
from models.train.targets import DEFAULT_DISC_RADIUS, PoseTargets, build_targets
from pose_app.analysis.evaluate import (
    first_images_by_id,
    load_ground_truth,
    person_category_id,
)
from pose_app.core.geometry import FrameTransform
from pose_app.core.skeleton import FLIP_PERMUTATION, NUM_KEYPOINTS
from pose_app.errors import PoseAppError
from pose_app.inference.families.posenet import PAD_VALUE, letterbox
from pose_app.io.sources import read_image


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


def read_coco_keypoints(ann_path: Path, images_dir: Path, max_images: int | None = None) -> list[CocoImage]:
    """Images of a COCO person-keypoints JSON, sorted by id (the first `max_images` if given)."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise PoseAppError(f"images folder not found: {images_dir}")
    coco = load_ground_truth(Path(ann_path))
    person = person_category_id(coco)
    images = first_images_by_id(coco["images"], max_images)
    by_image: dict[int, list[dict]] = {image["id"]: [] for image in images}
    for annotation in coco["annotations"]:
        if annotation["category_id"] == person and annotation["image_id"] in by_image:
            by_image[annotation["image_id"]].append(annotation)
    return [_coco_image(image, by_image[image["id"]], images_dir) for image in images]


def _coco_image(image: dict, annotations: list[dict], images_dir: Path) -> CocoImage:
    """Split an image's annotations into labelled people and regions to ignore."""
    people = [a for a in annotations if not a.get("iscrowd") and a["num_keypoints"] > 0]
    ignore = [a for a in annotations if a.get("iscrowd") or a["num_keypoints"] == 0]
    keypoints = np.array([a["keypoints"] for a in people], np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    return CocoImage(
        image_id=int(image["id"]),
        path=images_dir / image["file_name"],
        keypoints=keypoints,
        ignore_regions=ignore,
    )


def ignore_mask(regions: list[dict], height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask, 1 inside each region's segmentation (polygons or RLE) or else its box."""
    from pycocotools import (
        mask as coco_mask,  # only the training side needs pycocotools
    )

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


def pad_to_square(tensor: torch.Tensor, size: int, value: float) -> torch.Tensor:
    """(..., h, w) -> (..., size, size), padded right/bottom with `value` (the app's layout)."""
    height, width = tensor.shape[-2:]
    return F.pad(tensor, (0, size - width, 0, size - height), value=value)


class KeypointAugmenter:
    """The app's letterbox + (optionally) colour jitter, random zoom/rotation/shift and mirroring."""

    def __init__(self, input_size: int, output_stride: int, augment: AugmentConfig | None) -> None:
        self.input_size = input_size
        self.output_stride = output_stride
        self.augment = augment
        if augment is not None:
            self.geometry = v2.RandomAffine(
                degrees=augment.rotation_deg,
                translate=(augment.translate, augment.translate),
                scale=augment.scale,
                # Bilinear like the app's resize (torchvision's default, nearest, makes blocky
                # pictures the network never sees at run time); masks stay nearest.
                interpolation=v2.InterpolationMode.BILINEAR,
                fill={tv_tensors.Image: PAD_VALUE, tv_tensors.Mask: 0},
            )
            self.colour = v2.ColorJitter(augment.brightness, augment.contrast, augment.saturation, augment.hue)

    def letterbox(self, image_bgr: np.ndarray) -> tuple[torch.Tensor, FrameTransform]:
        """(3, S, S) float32 RGB 0..255: the app's network input for this image, padded on to S x S.

        Colour jitter (when augmenting) touches the picture only: the app never changes its pad.
        """
        blob, transform = letterbox(image_bgr, self.input_size, self.output_stride)
        image = torch.from_numpy(blob[0])
        if self.augment is not None:
            resized_w, resized_h = transform.resized_size
            # The resized picture holds whole grey levels (cv2 resized uint8), so uint8 is exact.
            picture = image[:, :resized_h, :resized_w].to(torch.uint8)
            image[:, :resized_h, :resized_w] = self.colour(picture).float()
        return pad_to_square(image, self.input_size, PAD_VALUE), transform

    def __call__(self, image_bgr: np.ndarray, keypoints: np.ndarray, mask: np.ndarray):
        """(H,W,3) BGR uint8, (P,17,3) x,y,v, (H,W) mask -> float (3,S,S) RGB, keypoints, mask in input pixels.

        Keypoints that leave the picture become unlabelled (v = 0).
        """
        image, transform = self.letterbox(image_bgr)
        resized_mask = cv2.resize(mask, transform.resized_size, interpolation=cv2.INTER_NEAREST)
        mask_tensor = pad_to_square(torch.from_numpy(resized_mask)[None], self.input_size, 0)
        points = transform.to_input(keypoints[..., :2])
        visibility = torch.from_numpy(keypoints[..., 2].copy())
        canvas = (self.input_size, self.input_size)
        # torchvision warps point coordinates as continuous (corner) coordinates; the project's
        # pixel-centre coordinates are those minus 0.5, so shift in and out around the warp.
        sample = {
            "image": tv_tensors.Image(image),
            "keypoints": tv_tensors.KeyPoints(torch.from_numpy(points + 0.5), canvas_size=canvas),
            "mask": tv_tensors.Mask(mask_tensor),
        }
        if self.augment is not None:
            sample = self.geometry(sample)
        image, mask_tensor = sample["image"], sample["mask"]
        points = tv_tensors.wrap(sample["keypoints"] - 0.5, like=sample["keypoints"])
        if self.augment is not None and torch.rand(()) < self.augment.flip_probability:
            image, points, visibility, mask_tensor = horizontal_flip(image, points, visibility, mask_tensor)
        inside = ((points >= 0) & (points <= self.input_size - 1)).all(dim=-1)
        visibility = torch.where(inside, visibility, torch.zeros_like(visibility))
        keypoints_out = torch.cat([points.as_subclass(torch.Tensor), visibility[..., None]], dim=-1)
        return image.as_subclass(torch.Tensor), keypoints_out.numpy(), mask_tensor[0].numpy()


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
        self.augmenter = KeypointAugmenter(input_size, output_stride, augment)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        entry = self.images[index]
        image_bgr = read_image(entry.path)
        height, width = image_bgr.shape[:2]
        mask = ignore_mask(entry.ignore_regions, height, width)
        image, keypoints, mask = self.augmenter(image_bgr, entry.keypoints, mask)
        targets = build_targets(
            keypoints, (self.map_size, self.map_size), self.output_stride, self.disc_radius, mask
        )
        return {"image": image, "image_id": entry.image_id, **targets_as_tensors(targets)}


def targets_as_tensors(targets: PoseTargets) -> dict[str, torch.Tensor]:
    """PoseTargets -> {field name: float32 tensor}."""
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in vars(targets).items()}
