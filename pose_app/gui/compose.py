"""The pictures the window shows, built from a frame and its poses (numpy/OpenCV, no Qt).

The inference worker calls these for every frame (off the GUI thread); the window calls
`compose_view` once more for a full-resolution snapshot. Skeletons are drawn by
`pose_app.render.draw_poses` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from pose_app.estimator import FramePoses
from pose_app.featuremaps import ChannelSelection, feature_grid, heatmap_overlay, shrink
from pose_app.render import OverlayStyle, draw_poses
from pose_app.skeleton import KEYPOINT_NAMES


@dataclass(frozen=True)
class PanelRequest:
    """What the feature panel shows. mode: "features" (a block's activation grid) or "heatmaps"
    (keypoint heatmaps over the frame; `keypoint` None = all combined by max)."""

    mode: str = "features"
    block: str = ""
    how: ChannelSelection = "strongest"
    count: int = 16
    start: int = 0
    keypoint: int | None = None
    width: int = 360  # pixels of the heatmap view (the grid keeps one pixel per activation)

    @property
    def features(self) -> tuple[str, ...]:
        """Feature outputs to ask the engine for: only the grid view needs one."""
        return (self.block,) if self.mode == "features" and self.block else ()


def scale_poses(poses: FramePoses, scale: float) -> FramePoses:
    """The poses in the pixels of the frame resized by `scale` (pixel-centre convention)."""
    if scale == 1.0:
        return poses
    keypoints = poses.keypoints.copy()
    keypoints[..., :2] = (keypoints[..., :2] + 0.5) * scale - 0.5
    return dataclasses.replace(poses, keypoints=keypoints)


def fit_scale(frame_size: tuple[int, int], max_size: tuple[int, int] | None) -> float:
    """Downscale factor (<= 1) that fits a (w, h) frame into max_size (w, h); 1 without one."""
    if max_size is None or max_size[0] <= 0 or max_size[1] <= 0:
        return 1.0
    return min(1.0, max_size[0] / frame_size[0], max_size[1] / frame_size[1])


def compose_view(
    image_bgr: np.ndarray,
    poses: FramePoses,
    style: OverlayStyle,
    *,
    mirror: bool = False,
    max_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The displayed picture: the frame (shrunk to fit max_size, flipped when mirrored) with the
    skeletons drawn on it. Shrinking before drawing keeps lines crisp and the GUI's painting
    cheap; inference has already run on the full, unmirrored frame."""
    height, width = image_bgr.shape[:2]
    scale = fit_scale((width, height), max_size)
    view = shrink(image_bgr, (max(1, round(width * scale)), max(1, round(height * scale))))
    # cv2.flip is many times faster than copying a reversed numpy view; either way a new array.
    view = cv2.flip(view, 1) if mirror else (view.copy() if view is image_bgr else view)
    draw_poses(view, scale_poses(poses, scale), style, mirror=mirror)
    return view


def compose_panel(image_bgr: np.ndarray, poses: FramePoses, request: PanelRequest, *, mirror: bool) -> tuple[np.ndarray, str]:
    """(BGR picture, caption) for the feature panel."""
    if request.mode == "heatmaps":
        overlay = heatmap_overlay(image_bgr, poses.heatmaps, poses.transform, request.keypoint,
                                  out_width=min(request.width, image_bgr.shape[1]), mirror=mirror)
        which = "all keypoints (max)" if request.keypoint is None else KEYPOINT_NAMES[request.keypoint]
        return overlay, f"heatmap: {which}"
    features = poses.features[request.block]
    grid, channels = feature_grid(features, request.how, request.count, request.start, mirror=mirror)
    if request.how == "strongest":
        caption = f"{request.block}: {len(channels)} strongest of {features.shape[0]} channels ({_list(channels)})"
    else:
        caption = f"{request.block}: channels {_list(channels)} of {features.shape[0]}"
    return grid, caption


def _list(channels: np.ndarray, shown: int = 8) -> str:
    text = ", ".join(str(c) for c in channels[:shown])
    return text + (", ..." if len(channels) > shown else "")
