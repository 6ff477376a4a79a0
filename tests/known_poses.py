"""Poses with known values for the recorder, gap-fill and angle tests: a 320x240 source, two
people moving along known paths, a standing pose with known joint angles."""

from __future__ import annotations

import numpy as np

from pose_app.core.frames import Frame, SourceInfo
from pose_app.core.poses import FramePoses
from pose_app.inference.families.posenet import input_transform

WIDTH, HEIGHT = 320, 240


INFO = SourceInfo("clips/walk, take 2.mp4", WIDTH, HEIGHT, 25.0, 50, is_live=False, is_still=False)


def known_poses(frame_index: int, count: int = 2) -> FramePoses:
    """Person p, keypoint k: x = 10 + 15k + p + frame/8, y = 20 + 10k + 2p, score = k / 17."""
    k = np.arange(17)[None, :]
    p = np.arange(count)[:, None]
    x = 10 + 15 * k + p + frame_index / 8
    y = 20 + 10 * k + 2 * p
    keypoints = np.stack(np.broadcast_arrays(x, y, k / 17), axis=-1).astype(np.float32)
    return FramePoses(
        keypoints=keypoints,
        scores=np.linspace(0.9, 0.5, count).astype(np.float32),
        ids=np.arange(7, 7 + count, dtype=np.int64),
        heatmaps=np.zeros((17, 16, 21), np.float32),
        features={},
        transform=input_transform(WIDTH, HEIGHT, 321, 16),
    )


def frame_at(index: int) -> Frame:
    image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    return Frame(image, index, index / 25.0, INFO.name)


# A person facing the camera (their left on the image's right), image pixels, y down. Left arm
# raised sideways with the forearm pointing up, right arm hanging straight, legs straight but the
# right shank kicked forward down-right.
STANDING = {
    "nose": (200, 50),
    "left_eye": (210, 40), "right_eye": (190, 40), "left_ear": (220, 45), "right_ear": (180, 45),
    "left_shoulder": (230, 100), "right_shoulder": (170, 100),
    "left_elbow": (290, 100), "left_wrist": (290, 40),
    "right_elbow": (170, 160), "right_wrist": (170, 220),
    "left_hip": (230, 200), "right_hip": (170, 200),
    "left_knee": (230, 280), "left_ankle": (230, 360),
    "right_knee": (170, 280), "right_ankle": (230, 340),
}
