"""Crop geometry: where the crop around a person lies in the frame, how it is turned so the
person stands upright, and the batch of crop images the network runs on.

The crop refiner (refine.py) cuts its crops here; the training code (models/train/crops.py)
cuts the same crops, so that a network is trained on what the app will show it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose_app.core.geometry import torso_angle
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.inference.families.posenet import PAD_VALUE, snap_to_valid_size
from pose_app.inference.preprocess import as_bgr


@dataclass(frozen=True)
class CropSettings:
    """How crops around people are cut and run.

    - ``resolution``: network input height of a crop (snapped to k*stride+1); the width follows
      from ``aspect``.
    - ``expand``: the crop is this much larger than the box of the pose's confident keypoints
      (1.25 measured best on coco-dev: below 1.1 limbs are cut, above 1.5 people get small again).
    - ``aspect``: width / height of every crop. A fixed, standing-person shape: a half-visible
      body (only shoulders and hips found) still gets room for its limbs.
    - ``min_height_fraction``: a crop is at least this fraction of the frame's longer side tall,
      so a pose with only a face found does not become a 10x zoom on the face.
    - ``max_crops``: only the best-scoring poses of a frame are refined (bounds the cost).
    - ``flip``: also run each crop mirrored and average the two (test-time augmentation).
    - ``tracked_max_zoom``: tracked crops (videos) enlarge the frame at most this much (input
      pixels per frame pixel). A small person in a soft, compressed video blown up further
      loses joints: on the shared basketball clip (426x240) legs kept vs the accurate preset
      0.49 -> 0.84 at 1.5 (0.76 at 0.8, with coarser joints). Not for still images: there
      zooming pays (coco-dev AP 0.407 unbounded, 0.391 at 1.5).
    - ``upright``: turn each crop so that the person's torso stands upright (``upright_angle``);
      people leaning less than ``upright_min_degrees`` are not turned: the networks handle a
      lean, and a torso angle from a coarse first-pass pose is not exact (coco-dev AP upright:
      0.420 unturned, 0.412 turning from 30 degrees, 0.420 from 60; planks and push-ups lean
      80-90 degrees).
    """

    resolution: int = 257
    expand: float = 1.25
    aspect: float = 0.75
    min_height_fraction: float = 0.2
    max_crops: int = 10
    flip: bool = False
    tracked_max_zoom: float = 1.5
    upright: bool = True
    upright_min_degrees: float = 60.0


@dataclass(frozen=True)
class CropTransform:
    """Geometry between a frame and one crop input: a turn about the crop's centre, a uniform
    scale and a shift.

    Pixel coordinates put (0, 0) at the centre of the top-left pixel (as FrameTransform does).
    `angle` (radians) is how far the frame's content is turned, counter-clockwise as seen on the
    screen, so that the person stands upright in the crop (0: not turned).
    """

    centre: tuple[float, float]  # frame pixel coordinates (x, y) of the crop's centre
    scale: float  # input pixels per frame pixel
    input_size: tuple[int, int]  # (w, h) of the crop input
    angle: float = 0.0

    def affine(self) -> np.ndarray:
        """2x3 matrix taking frame pixel coordinates to crop-input pixel coordinates."""
        cos, sin = np.cos(self.angle) * self.scale, np.sin(self.angle) * self.scale
        # y points down: a counter-clockwise turn on screen is [[cos, sin], [-sin, cos]].
        linear = np.array([[cos, sin], [-sin, cos]])
        input_centre = (np.asarray(self.input_size, np.float64) - 1.0) / 2.0
        shift = input_centre - linear @ np.asarray(self.centre, np.float64)
        return np.concatenate([linear, shift[:, None]], axis=1)

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) frame pixel coordinates -> crop-input pixel coordinates."""
        matrix = self.affine()
        return (np.asarray(xy, np.float64) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) crop-input pixel coordinates -> frame pixel coordinates."""
        matrix = cv2.invertAffineTransform(self.affine())
        return (np.asarray(xy, np.float64) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The frame region the crop covers as edge coordinates (x0, y0, x1, y1); for a turned
        crop, the upright box around it."""
        w, h = self.input_size
        corners = self.to_frame(np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]]))
        x0, y0 = corners.min(axis=0) + 0.5
        x1, y1 = corners.max(axis=0) + 0.5
        return float(x0), float(y0), float(x1), float(y1)


def crop_input_size(settings: CropSettings, output_stride: int) -> tuple[int, int]:
    """(w, h) of every PoseNet crop input: valid network sizes of the crop shape."""
    height = snap_to_valid_size(settings.resolution, output_stride)
    return snap_to_valid_size(height * settings.aspect, output_stride), height


def crop_transform(
    box: np.ndarray, frame_size: tuple[int, int], input_size: tuple[int, int], settings: CropSettings,
    max_zoom: float = float("inf"), angle: float = 0.0,
) -> CropTransform:
    """The crop around a person box (x0, y0, x1, y1, pixel coordinates, as the person stands in
    a frame turned by `angle`): expanded, grown to the input's aspect around the box's centre, at
    least the minimum height and at most `max_zoom` input pixels per frame pixel."""
    input_w, input_h = input_size
    width, height = (box[2] - box[0]) * settings.expand, (box[3] - box[1]) * settings.expand
    height = max(
        height, width * input_h / input_w, settings.min_height_fraction * max(frame_size), input_h / max_zoom, 1.0
    )
    centre = (np.asarray(box[:2], np.float64) + box[2:]) / 2.0
    if angle:  # the box was measured in the turned frame: its centre back in the frame
        cos, sin = np.cos(angle), np.sin(angle)
        centre = np.array([[cos, -sin], [sin, cos]]) @ centre
    return CropTransform((float(centre[0]), float(centre[1])), float(input_h / height), input_size, float(angle))


def turned_box(points: np.ndarray, angle: float) -> np.ndarray:
    """(x0, y0, x1, y1) around `points (N, 2)` (frame pixels) seen in the frame turned by
    `angle` (as CropTransform turns it, about the frame's origin)."""
    cos, sin = np.cos(angle), np.sin(angle)
    turned = np.asarray(points, np.float64) @ np.array([[cos, sin], [-sin, cos]]).T
    return np.concatenate([turned.min(axis=0), turned.max(axis=0)])


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """(P, 4, 2) corners of boxes (P, 4) = x0, y0, x1, y1."""
    x0, y0, x1, y1 = np.asarray(boxes, np.float64).T
    return np.stack([np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x0, y1], -1), np.stack([x1, y1], -1)], 1)


def upright_angle(pose: np.ndarray, min_degrees: float = 0.0) -> float | None:
    """The turn (radians, see CropTransform) that stands `pose (17, 3)` upright (its torso
    pointing up, `torso_angle`); 0 when it leans less than `min_degrees`; None without a
    confident shoulder and hip."""
    angle = torso_angle(pose, MIN_KEYPOINT_SCORE)
    if angle is None:
        return None
    return 0.0 if abs(np.degrees(angle)) < min_degrees else angle


def crop_batch(
    frame_bgr: np.ndarray, transforms: list[CropTransform], flip: bool, pad_value: float = PAD_VALUE
) -> np.ndarray:
    """Network input (N, 3, H, W) float32 RGB 0..255 of the crops (each followed by its mirror
    image when `flip`); outside the frame is `pad_value` (PoseNet's: its zero after normalising)."""
    input_w, input_h = transforms[0].input_size
    views = 2 if flip else 1
    batch = np.empty((len(transforms) * views, 3, input_h, input_w), np.float32)
    image = as_bgr(frame_bgr)
    frame_h, frame_w = image.shape[:2]
    for index, transform in enumerate(transforms):
        # Warped as uint8 (a large person's region in float would cost more than the network),
        # padded with the rounded pad value, then every pixel whose centre lies outside the
        # frame set to exactly `pad_value`: only the pixels straddling the frame's edge keep a
        # blend with the rounded value.
        crop = cv2.warpAffine(
            image, transform.affine(), (input_w, input_h), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(round(pad_value),) * 3,
        ).astype(np.float32)
        columns, rows = np.arange(input_w), np.arange(input_h)
        if transform.angle == 0.0:
            (x0, y0), (x1, y1) = transform.to_input(np.array([[-0.5, -0.5], [frame_w - 0.5, frame_h - 0.5]]))
            crop[(rows < y0) | (rows > y1)] = pad_value
            crop[:, (columns < x0) | (columns > x1)] = pad_value
        else:
            grid = np.stack(np.meshgrid(columns, rows), axis=-1)
            x, y = np.moveaxis(transform.to_frame(grid), -1, 0)
            crop[(x < -0.5) | (x > frame_w - 0.5) | (y < -0.5) | (y > frame_h - 0.5)] = pad_value
        rgb = crop[:, :, ::-1].transpose(2, 0, 1)
        batch[index * views] = rgb
        if flip:
            batch[index * views + 1] = rgb[:, :, ::-1]
    return batch
