"""MoveNet SinglePose (Google; MobileNetV2 + feature pyramid, CenterNet heads): one square person
crop in (Lightning 192 px, Thunder 256 px), keypoint heatmaps, a person centre, keypoint
regression from the centre and per-keypoint offsets out, decoded into the one person nearest
the crop's centre (movenet_decode.py). Trained on COCO plus Google's fitness, dance and yoga
video: it keeps legs through a squat and bodies on the floor where PoseNet's crops lose them."""

from __future__ import annotations

import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.inference.families.base import ModelFamily
from pose_app.inference.movenet_decode import decode_single_pose
from pose_app.inference.preprocess import letterboxed_transform

HEAD_OUTPUTS = ("heatmaps", "centers", "regression", "offsets")
# Google's crops are cut with tf.image.crop_and_resize, which fills outside the image with 0:
# black is what the network saw beyond the frame's edge.
PAD_VALUE = 0.0
# The networks' own input size when a file does not say it.
DEFAULT_INPUT_SIZE = (192, 192)


class MoveNetFamily(ModelFamily):
    name = "movenet"
    head_outputs = HEAD_OUTPUTS
    pad_value = PAD_VALUE
    crop_aspect = 1.0
    # Crops 1.5x the person's keypoint box: room for limbs the box does not hold yet.
    crop_expand = 1.5
    multi_person = False

    @staticmethod
    def input_size(info) -> tuple[int, int]:
        return info.input_size or DEFAULT_INPUT_SIZE

    def frame_transform(self, info, frame_w: int, frame_h: int, resolution: int) -> FrameTransform:
        # Trained at one size: the frame is letterboxed to it whatever the resolution asked.
        size = self.input_size(info)
        return letterboxed_transform(frame_w, frame_h, min(size), size)

    def crop_input_size(self, info, resolution: int, aspect: float) -> tuple[int, int]:
        return self.input_size(info)

    def decode(self, heads, info, settings):
        heatmaps, centers, regression, offsets = heads
        keypoints = decode_single_pose(heatmaps, centers, regression, offsets, self.input_size(info))[None]
        scores = keypoints[:, :, 2].mean(axis=1).astype(np.float32)
        # The crop's decoding always returns its one person; a frame keeps it only above the floor.
        keep = scores >= settings.min_pose_score
        return keypoints[keep], scores[keep]


FAMILY = MoveNetFamily()
