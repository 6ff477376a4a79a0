"""PoseNet: a MobileNetV1 backbone with PoseNet's four 1x1 heads, as a plain PyTorch module.

The layer layout, padding and output-stride handling reproduce Google's TF.js PoseNet so that
its weights (see models/convert.py) load one-to-one and give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from torch import Tensor, nn
from torch.nn import functional as F

from pose_app.core.skeleton import NUM_KEYPOINTS, NUM_PART_TREE_EDGES

# Channels of the first conv and of the 13 depthwise-separable blocks at width multiplier 1.
# PoseNet's 0.50/0.75 checkpoints keep 512 channels in blocks 12-13 (standard MobileNetV1 has
# 1024 there); the shipped weights decide, so this is PoseNet's layout.
POSENET_BASE_CHANNELS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)
POSENET_BLOCK_STRIDES = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1)
NUM_LAYERS = len(POSENET_BLOCK_STRIDES)  # conv0 + 13 blocks
KERNEL_SIZE = 3  # of the first conv and of every depthwise conv


@dataclass(frozen=True)
class PoseNetConfig:
    """What defines a PoseNet: width, target output stride and the backbone's native strides.

    `block_strides[0]` is the first conv, `block_strides[i]` the depthwise conv of block i.
    PoseNet 0.50/0.75 stride in blocks 0, 2, 4, 6 (native stride 16); MobileNetV1 1.0 also
    strides in block 12 (native stride 32).
    """

    width_multiplier: float = 0.75
    output_stride: int = 16
    block_strides: tuple[int, ...] = POSENET_BLOCK_STRIDES
    base_channels: tuple[int, ...] = POSENET_BASE_CHANNELS

    def __post_init__(self) -> None:
        if len(self.block_strides) != NUM_LAYERS or len(self.base_channels) != NUM_LAYERS:
            raise ValueError(f"block_strides and base_channels need {NUM_LAYERS} entries each")
        if self.output_stride > self.native_stride:
            raise ValueError(
                f"output_stride {self.output_stride} is above this backbone's native stride "
                f"{self.native_stride}; choose one of {self.reachable_output_strides}"
            )
        if self.output_stride not in self.reachable_output_strides:
            raise ValueError(
                f"output_stride {self.output_stride} is not reachable; choose one of "
                f"{self.reachable_output_strides}"
            )

    @property
    def native_stride(self) -> int:
        """Output stride without any dilation: the product of all block strides."""
        return math.prod(self.block_strides)

    @property
    def reachable_output_strides(self) -> tuple[int, ...]:
        """Every running stride the backbone passes through (its prefix products)."""
        return tuple(sorted({math.prod(self.block_strides[: i + 1]) for i in range(NUM_LAYERS)}))

    @property
    def channels(self) -> tuple[int, ...]:
        """Output channels of conv0 and blocks 1-13 after the width multiplier (TF-slim's rule)."""
        return tuple(max(8, int(c * self.width_multiplier)) for c in self.base_channels)

    def strides_and_dilations(self) -> tuple[tuple[int, int], ...]:
        """(stride, dilation) of each layer's 3x3 conv for the target output stride.

        PoseNet's rule (TF.js `toOutputStridedLayers`): once the running stride reaches the
        target, a layer that would stride keeps stride 1 and instead multiplies the dilation of
        the layers after it, so the resolution stays fixed while the receptive field keeps growing.
        """
        layers = []
        running_stride, rate = 1, 1
        for stride in self.block_strides:
            if running_stride == self.output_stride:
                layers.append((1, rate))
                rate *= stride
            else:
                layers.append((stride, 1))
                running_stride *= stride
        return tuple(layers)


class PoseNetOutputs(NamedTuple):
    """Raw network outputs; spatial size h = (H - 1) / output_stride + 1."""

    heatmap_logits: Tensor  # [N,17,h,w], before the sigmoid
    offsets: Tensor  # [N,34,h,w]: 17 y then 17 x, input pixels
    displacement_fwd: Tensor  # [N,32,h,w]: 16 y then 16 x, parent -> child
    displacement_bwd: Tensor  # [N,32,h,w]: 16 y then 16 x, child -> parent
    features: tuple[Tensor, ...]  # ReLU6 outputs of conv0 and blocks 1-13, or ()


def same_conv3x3(c_in: int, c_out: int, stride: int, dilation: int, groups: int) -> nn.Conv2d:
    """3x3 conv equal to TF 'SAME' padding on valid sizes (k * stride + 1, symmetric padding)."""
    return nn.Conv2d(
        c_in, c_out, KERNEL_SIZE, stride=stride, padding=dilation, dilation=dilation, groups=groups
    )


class DepthwiseSeparable(nn.Module):
    """MobileNetV1 block: depthwise 3x3 + ReLU6, then pointwise 1x1 + ReLU6."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.depthwise = same_conv3x3(c_in, c_in, stride, dilation, groups=c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(self.pointwise(F.relu6(self.depthwise(x))))


class PoseNet(nn.Module):
    """MobileNetV1 backbone + heatmap, offset and displacement heads (PoseNet)."""

    def __init__(self, config: PoseNetConfig = PoseNetConfig()) -> None:
        super().__init__()
        self.config = config
        channels = config.channels
        layers = config.strides_and_dilations()
        self.conv0 = same_conv3x3(3, channels[0], *layers[0], groups=1)
        self.blocks = nn.ModuleList(
            DepthwiseSeparable(channels[i - 1], channels[i], *layers[i])
            for i in range(1, NUM_LAYERS)
        )
        last = channels[-1]
        self.heatmap = nn.Conv2d(last, NUM_KEYPOINTS, 1)
        self.offset = nn.Conv2d(last, 2 * NUM_KEYPOINTS, 1)
        self.displacement_fwd = nn.Conv2d(last, 2 * NUM_PART_TREE_EDGES, 1)
        self.displacement_bwd = nn.Conv2d(last, 2 * NUM_PART_TREE_EDGES, 1)

    def forward(self, image: Tensor, return_features: bool = False) -> PoseNetOutputs:
        """image: float [N,3,H,W], RGB 0..255; valid H, W are k * output_stride + 1."""
        x = F.relu6(self.conv0(image / 127.5 - 1.0))
        features = [x]
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return PoseNetOutputs(
            heatmap_logits=self.heatmap(x),
            offsets=self.offset(x),
            displacement_fwd=self.displacement_fwd(x),
            displacement_bwd=self.displacement_bwd(x),
            features=tuple(features) if return_features else (),
        )

    def feature_blocks(self) -> list[dict]:
        """Per layer (conv0, blocks 1-13): channels, running stride, dilation, receptive field.

        Receptive field in input pixels: each 3x3 conv with dilation d adds 2*d*jump, where
        jump is the running stride before it.
        """
        blocks = []
        jump, receptive_field = 1, 1
        for index, (channels, (stride, dilation)) in enumerate(
            zip(self.config.channels, self.config.strides_and_dilations())
        ):
            receptive_field += (KERNEL_SIZE - 1) * dilation * jump
            jump *= stride
            blocks.append(
                {
                    "name": f"feature_{index}",
                    "block": index,
                    "channels": channels,
                    "stride": jump,
                    "dilation": dilation,
                    "receptive_field": receptive_field,
                }
            )
        return blocks


def output_size(input_size: int, output_stride: int) -> int:
    """Heatmap cells along one side for a valid input size: (size - 1) / stride + 1."""
    if (input_size - 1) % output_stride:
        raise ValueError(f"input size {input_size} is not k * {output_stride} + 1")
    return (input_size - 1) // output_stride + 1

