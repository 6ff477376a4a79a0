"""Pixel geometry shared by every stage: frame <-> network input (`FrameTransform`, the letterbox),
mirror images (`mirror_x`, `unmirrored`) and which way a body is turned (`torso_angle`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_app.core.skeleton import FLIP_PERMUTATION, KEYPOINT_INDEX

SHOULDERS = (KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["right_shoulder"])
HIPS = (KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"])


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
    `refine.CropTransform` turns it) so that the torso of `pose (17, 3)` points straight up:
    from the centre of its confident hips to the centre of its confident shoulders (0 for an
    upright person, pi for one upside down). None without a confident shoulder and hip."""
    shoulders = pose[list(SHOULDERS)]
    hips = pose[list(HIPS)]
    shoulders = shoulders[shoulders[:, 2] >= min_keypoint_score, :2]
    hips = hips[hips[:, 2] >= min_keypoint_score, :2]
    if not len(shoulders) or not len(hips):
        return None
    up_x, up_y = shoulders.mean(axis=0).astype(np.float64) - hips.mean(axis=0)
    if up_x == 0 and up_y == 0:
        return None
    # Upright is (0, -1) (y down); turning (up_x, up_y) by this angle takes it there.
    return float(np.arctan2(up_x, -up_y))
