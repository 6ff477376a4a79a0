"""Pixel geometry shared by every stage: frame <-> network input (`FrameTransform`, the letterbox),
mirror images (`mirror_x`, `unmirrored`) and which way a body is turned (`torso_angle`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_app.core.skeleton import FLIP_PERMUTATION, KEYPOINT_INDEX

SHOULDERS = (KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["right_shoulder"])
HIPS = (KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"])
FACE = tuple(KEYPOINT_INDEX[name] for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"))


@dataclass(frozen=True)
class FrameTransform:
    """Geometry between a frame and the network input: resize keeping aspect, pad right/bottom.

    Pixel coordinates put (0, 0) at the centre of the top-left pixel (OpenCV's convention), so a
    resize by s maps x to (x + 0.5) * s - 0.5.
    """

    frame_size: tuple[int, int]  # (w, h) of the original frame
    resized_size: tuple[int, int]  # (w, h) of the frame after resizing
    input_size: tuple[int, int]  # (w, h) fed to the network (valid sizes, >= resized_size)

    @property
    def frame_per_input(self) -> np.ndarray:
        """Frame pixels per input pixel along x and y."""
        return np.array(self.frame_size, np.float64) / np.array(self.resized_size, np.float64)

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) input-pixel coordinates -> frame-pixel coordinates."""
        return ((np.asarray(xy, np.float64) + 0.5) * self.frame_per_input - 0.5).astype(np.float32)

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) frame-pixel coordinates -> input-pixel coordinates."""
        return ((np.asarray(xy, np.float64) + 0.5) / self.frame_per_input - 0.5).astype(np.float32)


def mirror_x(keypoints: np.ndarray, image_width: int) -> np.ndarray:
    """(..., >=2) keypoints with x flipped as in cv2.flip(image, 1): x -> (width - 1) - x."""
    flipped = keypoints.copy()
    flipped[..., 0] = (image_width - 1) - flipped[..., 0]
    return flipped


def unmirrored(keypoints: np.ndarray, image_width: int) -> np.ndarray:
    """Poses (P, 17, 3) decoded from a mirrored image, as the image itself shows them: x
    mirrored back and left/right labels swapped back (the network labels by appearance)."""
    return mirror_x(keypoints[:, FLIP_PERMUTATION], image_width)


def torso_angle(pose: np.ndarray, min_keypoint_score: float) -> float | None:
    """How far to turn a frame (radians, counter-clockwise on screen, as
    `crops.CropTransform` turns it) so that the torso of `pose (17, 3)` points straight up: from
    the centre of its confident hips to the centre of its confident shoulders (0 for an upright
    person, pi for one upside down); without hips (a webcam's head-and-shoulders view), from the
    shoulders to the centre of the confident face keypoints. None when neither is seen."""
    def centre(indices: tuple[int, ...]) -> np.ndarray | None:
        points = pose[list(indices)]
        points = points[points[:, 2] >= min_keypoint_score, :2]
        return points.mean(axis=0).astype(np.float64) if len(points) else None

    shoulders = centre(SHOULDERS)
    below = centre(HIPS)
    above = shoulders
    if below is None:
        below, above = shoulders, centre(FACE)
    if below is None or above is None:
        return None
    up_x, up_y = above - below
    if up_x == 0 and up_y == 0:
        return None
    # Upright is (0, -1) (y down); turning (up_x, up_y) by this angle takes it there.
    return float(np.arctan2(up_x, -up_y))
