"""Pixel geometry shared by every stage: frame <-> network input (`FrameTransform`, the letterbox)
and mirror images (`mirror_x`, `unmirrored`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_app.core.skeleton import FLIP_PERMUTATION


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
