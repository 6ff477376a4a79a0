"""Person crops for training the crop network, cut exactly as `pose_app.inference.refine` cuts them.

At run time the crop stage (`CropRefiner`) takes the box of a first-pass pose's confident
keypoints, expands it, grows it to the 3:4 crop shape (`crop_transform`) and warps that region
into a fixed-size input padded with grey (`crop_batch`). A training sample here is one labelled
person cut the same way: the box of their labelled keypoints (what `keypoint_boxes` gives for a
pose whose visible joints are all found), then jittered, because a first-pass pose's box is
never exact. Everything after the box is the app's own code, so training inputs and run-time
inputs match pixel for pixel when augmentation is off.

Augmentation mirrors what crops see: the box scaled and shifted (coarse or partial first-pass
poses), the frame rotated about the person (lying, bending, tilted cameras), blur and JPEG
(soft, compressed footage), brightness and contrast, occluding patches (objects, other
people), and mirroring with the left/right keypoints swapped. Targets hold only the person the
crop was cut around: crops hold one person, and other people reaching in are background, as a
top-down network must learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from models.posenet import output_size
from models.train.dataset import CocoImage, targets_as_tensors
from models.train.targets import DEFAULT_DISC_RADIUS, build_targets
from pose_app.core.similarity import keypoint_boxes
from pose_app.core.skeleton import FLIP_PERMUTATION
from pose_app.inference.crops import CropSettings, CropTransform, crop_batch, crop_input_size, crop_transform
from pose_app.inference.families.posenet import PAD_VALUE
from pose_app.io.sources import read_image

# People need this many labelled keypoints to become a training crop: a box around one or two
# joints says little about where the person is, and the first pass rarely refines such poses.
DEFAULT_MIN_KEYPOINTS = 3


@dataclass(frozen=True)
class CropAugment:
    """Random augmentation of a person crop; `None` of it is applied for validation."""

    box_scale: tuple[float, float] = (0.8, 1.25)  # the box's size multiplied by this
    box_shift: float = 0.1  # the box's centre moved by up to this fraction of its size
    rotation_deg: float = 30.0  # uniform in +-rotation_deg, about the box's centre
    flip_probability: float = 0.5
    blur_probability: float = 0.2
    blur_sigma: tuple[float, float] = (0.5, 1.5)  # frame pixels
    jpeg_probability: float = 0.2
    jpeg_quality: tuple[int, int] = (30, 80)
    brightness: float = 0.25  # a shift of up to this fraction of 255
    contrast: float = 0.25  # a gain within 1 +- this
    occlusion_probability: float = 0.3
    occlusion_size: tuple[float, float] = (0.15, 0.4)  # side, fraction of the crop's side


@dataclass(frozen=True)
class PersonCrop:
    """One training sample: a labelled person of an image (the others are background)."""

    image: CocoImage
    person: int  # index into image.keypoints


def person_crops(images: list[CocoImage], min_keypoints: int = DEFAULT_MIN_KEYPOINTS) -> list[PersonCrop]:
    """Every person of `images` with at least `min_keypoints` labelled keypoints."""
    return [
        PersonCrop(image, person)
        for image in images
        for person, keypoints in enumerate(image.keypoints)
        if (keypoints[:, 2] > 0).sum() >= min_keypoints
    ]


def labelled_box(keypoints: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 around a person's labelled keypoints (17, 3) x, y, v: the run-time box
    rule (`keypoint_boxes`) applied to a pose that found exactly those joints."""
    found = np.concatenate([keypoints[:, :2], (keypoints[:, 2:] > 0).astype(np.float32)], axis=1)
    return keypoint_boxes(found[None], 0.5)[0]


def jittered_box(box: np.ndarray, rng: np.random.Generator, augment: CropAugment) -> np.ndarray:
    """The box scaled about its centre and shifted by a fraction of its size."""
    centre, size = (box[:2] + box[2:]) / 2.0, box[2:] - box[:2]
    size = size * rng.uniform(*augment.box_scale)
    centre = centre + rng.uniform(-augment.box_shift, augment.box_shift, 2) * size.max()
    return np.concatenate([centre - size / 2.0, centre + size / 2.0])


def rotated_frame(
    image_bgr: np.ndarray, keypoints: np.ndarray, centre: np.ndarray, degrees: float
) -> tuple[np.ndarray, np.ndarray]:
    """(image, keypoints (P, 17, 3)) rotated by `degrees` (counter-clockwise on screen) about
    `centre` (pixels) onto a canvas that holds the whole rotated image; new area is grey."""
    height, width = image_bgr.shape[:2]
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], np.float64)
    moved = corners @ matrix.T
    matrix[:, 2] -= moved.min(axis=0)
    canvas = np.ceil(moved.max(axis=0) - moved.min(axis=0)).astype(int)
    rotated = cv2.warpAffine(
        image_bgr, matrix, (int(canvas[0]), int(canvas[1])), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(round(PAD_VALUE),) * 3,
    )
    points = keypoints.copy()
    points[..., :2] = keypoints[..., :2] @ matrix[:, :2].T + matrix[:, 2]
    return rotated, points


def degraded_frame(image_bgr: np.ndarray, rng: np.random.Generator, augment: CropAugment) -> np.ndarray:
    """Blur, JPEG compression, brightness and contrast at the frame's own resolution (soft,
    compressed footage is soft before it is cropped)."""
    image = image_bgr
    if rng.random() < augment.blur_probability:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*augment.blur_sigma))
    if rng.random() < augment.jpeg_probability:
        quality = int(rng.integers(augment.jpeg_quality[0], augment.jpeg_quality[1] + 1))
        _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    gain = rng.uniform(1.0 - augment.contrast, 1.0 + augment.contrast)
    shift = rng.uniform(-augment.brightness, augment.brightness) * 255.0
    return cv2.convertScaleAbs(image, alpha=gain, beta=shift + 127.5 * (1.0 - gain))


def occlude(crop: np.ndarray, rng: np.random.Generator, augment: CropAugment) -> np.ndarray:
    """(3, H, W) crop with one random rectangle filled with a random flat colour."""
    _, height, width = crop.shape
    side_h = int(height * rng.uniform(*augment.occlusion_size))
    side_w = int(width * rng.uniform(*augment.occlusion_size))
    y0, x0 = int(rng.integers(0, height - side_h + 1)), int(rng.integers(0, width - side_w + 1))
    crop = crop.copy()
    crop[:, y0 : y0 + side_h, x0 : x0 + side_w] = rng.uniform(0, 255, (3, 1, 1)).round()
    return crop


def mirrored_crop(crop: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3, H, W) crop and its keypoints (17, 3) mirrored: x -> W - 1 - x, left/right slots swapped
    (a mirrored left wrist is a right wrist)."""
    width = crop.shape[2]
    flipped = keypoints[list(FLIP_PERMUTATION)].copy()
    flipped[:, 0] = width - 1 - flipped[:, 0]
    return np.ascontiguousarray(crop[:, :, ::-1]), flipped


def keypoints_in_crop(keypoints: np.ndarray, transform: CropTransform) -> np.ndarray:
    """(17, 3) frame keypoints -> crop-input pixels; those outside the crop become unlabelled."""
    points = keypoints.copy()
    points[:, :2] = transform.to_input(keypoints[:, :2])
    width, height = transform.input_size
    inside = (points[:, 0] >= 0) & (points[:, 0] <= width - 1) & (points[:, 1] >= 0) & (points[:, 1] <= height - 1)
    points[~inside, 2] = 0
    return points


class PersonCropCutter:
    """A person of a frame -> (crop (3, H, W) float32 RGB 0..255, keypoints (17, 3) in crop pixels)."""

    def __init__(self, settings: CropSettings, output_stride: int, augment: CropAugment | None) -> None:
        self.settings = settings
        self.input_size = crop_input_size(settings, output_stride)
        self.augment = augment

    def transform(self, box: np.ndarray, frame_shape: tuple[int, ...]) -> CropTransform:
        """The run-time crop geometry around a box in a frame of this shape."""
        return crop_transform(box, (frame_shape[1], frame_shape[0]), self.input_size, self.settings)

    def __call__(
        self, image_bgr: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cut the person `keypoints (17, 3)` x, y, v (frame pixels) out of `image_bgr`."""
        box = labelled_box(keypoints)
        augment = self.augment
        if augment is not None:
            # Degraded before rotating: the grey the rotation brings in stays the network's zero.
            image_bgr = degraded_frame(image_bgr, rng, augment)
            degrees = rng.uniform(-augment.rotation_deg, augment.rotation_deg)
            image_bgr, keypoints = rotated_frame(image_bgr, keypoints, (box[:2] + box[2:]) / 2.0, degrees)
            box = jittered_box(labelled_box(keypoints), rng, augment)
        transform = self.transform(box, image_bgr.shape)
        crop = crop_batch(image_bgr, [transform], flip=False)[0]
        points = keypoints_in_crop(keypoints, transform)
        if augment is not None:
            if rng.random() < augment.occlusion_probability:
                crop = occlude(crop, rng, augment)
            if rng.random() < augment.flip_probability:
                crop, points = mirrored_crop(crop, points)
        return crop, points


class PersonCropDataset(Dataset):
    """Person crops with PoseNet targets at the output stride.

    An item is {"image": float32 (3, H, W) RGB 0..255, "image_id": int, target fields...}, the
    target fields those of `PoseTargets` as float32 tensors. Random draws come from torch's
    global generator (seeded per epoch by the trainer), so a resumed run draws the same crops.
    """

    def __init__(
        self,
        crops: list[PersonCrop],
        settings: CropSettings,
        output_stride: int,
        augment: CropAugment | None = None,
        disc_radius: float = DEFAULT_DISC_RADIUS,
    ) -> None:
        self.crops = crops
        self.cutter = PersonCropCutter(settings, output_stride, augment)
        width, height = self.cutter.input_size
        self.map_shape = (output_size(height, output_stride), output_size(width, output_stride))
        self.output_stride = output_stride
        self.disc_radius = disc_radius

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> dict:
        sample = self.crops[index]
        rng = np.random.default_rng(int(torch.randint(2**31, ())))
        image = read_image(Path(sample.image.path))
        crop, keypoints = self.cutter(image, sample.image.keypoints[sample.person], rng)
        targets = build_targets(keypoints[None], self.map_shape, self.output_stride, self.disc_radius)
        return {"image": torch.from_numpy(crop), "image_id": sample.image.image_id, **targets_as_tensors(targets)}
