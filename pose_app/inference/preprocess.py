"""Frames -> network input, the same for every family: BGR in any channel layout to float32 RGB
NCHW 0..255, resized and padded as a `FrameTransform` says (each family decides the sizes)."""

from __future__ import annotations

import cv2
import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.errors import PoseAppError


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Grayscale (H,W) / (H,W,1) and BGRA (H,W,4) frames -> BGR uint8 (H,W,3)."""
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise PoseAppError(f"unsupported frame shape {frame.shape}: expected gray, BGR or BGRA")


def letterboxed_transform(frame_w: int, frame_h: int, long_side: int, input_size: tuple[int, int]) -> FrameTransform:
    """The longer side resized to `long_side` keeping the aspect, padded right/bottom to `input_size`."""
    if frame_w <= 0 or frame_h <= 0:
        raise PoseAppError(f"empty frame ({frame_w}x{frame_h})")
    scale = long_side / max(frame_w, frame_h)
    resized_w = long_side if frame_w >= frame_h else max(1, round(frame_w * scale))
    resized_h = long_side if frame_h > frame_w else max(1, round(frame_h * scale))
    return FrameTransform(frame_size=(frame_w, frame_h), resized_size=(resized_w, resized_h), input_size=input_size)


def preprocess(frame_bgr: np.ndarray, transform: FrameTransform, pad_value: float) -> np.ndarray:
    """BGR frame -> float32 RGB NCHW 0..255 input, resized and padded (with `pad_value`) per `transform`."""
    resized = cv2.resize(as_bgr(frame_bgr), transform.resized_size, interpolation=cv2.INTER_LINEAR)
    (input_w, input_h), (resized_w, resized_h) = transform.input_size, transform.resized_size
    blob = np.full((1, 3, input_h, input_w), pad_value, np.float32)
    blob[0, :, :resized_h, :resized_w] = resized[:, :, ::-1].transpose(2, 0, 1)
    return blob
