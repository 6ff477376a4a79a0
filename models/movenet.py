"""MoveNet SinglePose (Lightning, Thunder) as a plain PyTorch module.

Google's MoveNet is a MobileNetV2 backbone, a small feature pyramid (FPN) that brings the
stride-32 features back to stride 4, and four CenterNet-style heads at output stride 4:

- `heatmaps` (17, sigmoid): where each keypoint is, for any person;
- `centers` (1, sigmoid): where each person's centre is;
- `regression` (34): from a person's centre cell to each of its keypoints, in heatmap cells;
- `offsets` (34): from a keypoint's heatmap cell to its exact position, in heatmap cells.

The layers, padding and upsampling reproduce Google's TF.js graph so that its weights (converted
by models/convert_movenet.py) give the same numbers. Three details matter:

- the image is normalised inside, as the graph does: `(x - mean) * scale - shift`, with the
  graph's constants (mean 0, scale float16(1/127.5) = 0.007843018, shift 1) kept as buffers;
- TensorFlow's "SAME" padding of a stride-2 3x3 conv on an even size pads one pixel at the
  bottom and right only (none at the top and left). Valid input sizes are multiples of 32, so
  every stride-2 conv sees an even size and the padding is always (0, 1, 0, 1);
- the FPN upsamples by 2 with bilinear interpolation and half-pixel centres, which is PyTorch's
  `align_corners=False`.

The 34-channel regression and offset heads are "17 y then 17 x" here (the converter reorders
the last conv of each head; TF interleaves y and x per keypoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pose_app.core.skeleton import NUM_KEYPOINTS

OUTPUT_STRIDE = 4  # of all four heads
INPUT_MULTIPLE = 32  # valid input sizes: the backbone's stride, so every stride-2 conv sees an even size
KERNEL_SIZE = 3  # of the stem and of every depthwise conv

# MobileNetV2 (Sandler et al., 2018): the stride of each of the 17 inverted-residual blocks.
MOBILENET_V2_STRIDES = (1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1)
# Lightning's widths (MobileNetV2 1.0); Thunder's (1.75) come from its weights.
LIGHTNING_EXPANDED = (32, 96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960, 960)
LIGHTNING_BLOCKS = (16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320)

# The heads in the ONNX contract's order, with their channels.
HEAD_CHANNELS = {"heatmaps": NUM_KEYPOINTS, "centers": 1, "regression": 2 * NUM_KEYPOINTS, "offsets": 2 * NUM_KEYPOINTS}
ACTIVATIONS = {"relu6": nn.ReLU6, "relu": nn.ReLU, None: nn.Identity}


@dataclass(frozen=True)
class MoveNetConfig:
    """What defines a MoveNet SinglePose: its name, trained input size and layer widths.

    models/convert_movenet.py reads every width, stride and pyramid tap from Google's graph;
    the defaults are Lightning's. Block i of the backbone expands its input to
    `expanded_channels[i]` (no expansion conv when that equals its input width, as in block 0),
    filters it with a depthwise 3x3 of stride `block_strides[i]`, and projects it to
    `block_channels[i]`.
    """

    variant: str = "lightning"
    input_size: int = 192  # square, the size the network was trained at
    stem_channels: int = 32
    expanded_channels: tuple[int, ...] = LIGHTNING_EXPANDED
    block_channels: tuple[int, ...] = LIGHTNING_BLOCKS
    block_strides: tuple[int, ...] = MOBILENET_V2_STRIDES
    last_channels: int = 1280  # the backbone's final 1x1 conv, at stride 32
    # The blocks whose outputs join the pyramid, coarse to fine (at strides 16, 8 and 4).
    # Google's pyramid takes block 9 (not the last stride-16 block, 12) at stride 16.
    fpn_taps: tuple[int, int, int] = (9, 5, 2)
    # Width of the top lateral (stride 32) and of the pyramid's outputs at strides 16, 8, 4.
    fpn_channels: tuple[int, int, int, int] = (64, 32, 24, 24)
    head_channels: int = 96  # hidden width of each head

    def __post_init__(self) -> None:
        blocks = len(self.block_strides)
        if len(self.expanded_channels) != blocks or len(self.block_channels) != blocks:
            raise ValueError(f"expanded_channels and block_channels need {blocks} entries each")
        if self.input_size % INPUT_MULTIPLE:
            raise ValueError(f"input_size {self.input_size} is not a multiple of {INPUT_MULTIPLE}")
        if self.native_stride != INPUT_MULTIPLE:
            raise ValueError(f"the backbone's strides multiply to {self.native_stride}, not 32")
        tap_strides = tuple(self.block_stride(tap) for tap in self.fpn_taps)
        if tap_strides != (16, 8, 4):
            raise ValueError(f"fpn_taps {self.fpn_taps} are at strides {tap_strides}, not (16, 8, 4)")

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor], variant: str, input_size: int) -> MoveNetConfig:
        """The config whose widths are those of a MoveNet state dict (strides and pyramid taps:
        MobileNetV2's and Google's, which the widths cannot tell)."""
        blocks = len(MOBILENET_V2_STRIDES)

        def out(name: str) -> int:
            return int(state[f"{name}.conv.weight"].shape[0])

        return cls(
            variant=variant,
            input_size=input_size,
            stem_channels=out("stem"),
            expanded_channels=tuple(out(f"blocks.{i}.depthwise") for i in range(blocks)),
            block_channels=tuple(out(f"blocks.{i}.project") for i in range(blocks)),
            last_channels=out("last_conv"),
            fpn_channels=(out("laterals.0"),) + tuple(out(f"smooth.{i}.pointwise") for i in range(3)),
            head_channels=out("heads.heatmaps.hidden.pointwise"),
        )

    @property
    def native_stride(self) -> int:
        """Stride of the backbone's output: the stem's 2 times every block's stride."""
        return self.block_stride(len(self.block_strides) - 1)

    def block_stride(self, block: int) -> int:
        """Running stride after backbone block `block` (the stem strides by 2)."""
        stride = 2
        for s in self.block_strides[: block + 1]:
            stride *= s
        return stride

    @property
    def grid_size(self) -> int:
        """Heatmap cells along a side at the trained input size."""
        return self.input_size // OUTPUT_STRIDE


class MoveNetOutputs(NamedTuple):
    """The heads at output stride 4 (h = H / 4); regression and offsets are 17 y then 17 x."""

    heatmaps: Tensor  # [N,17,h,w], sigmoid applied
    centers: Tensor  # [N,1,h,w], sigmoid applied
    regression: Tensor  # [N,34,h,w]: centre cell -> keypoint, heatmap cells
    offsets: Tensor  # [N,34,h,w]: keypoint cell -> exact keypoint, heatmap cells
    features: tuple[Tensor, ...]  # see MoveNet.feature_blocks(), or ()


class ConvUnit(nn.Module):
    """A conv with TensorFlow's "SAME" padding (on sizes the stride divides) and an activation."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
        activation: str | None = None,
    ) -> None:
        super().__init__()
        # SAME pads k - s pixels in all when the stride divides the size; TF puts the odd one
        # at the bottom/right. Symmetric padding goes into the conv, an odd pixel into F.pad.
        total = max(kernel - stride, 0)
        self.extra_pad = (0, total % 2, 0, total % 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, total // 2, groups=groups, bias=bias)
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: Tensor) -> Tensor:
        if any(self.extra_pad):
            x = F.pad(x, self.extra_pad)
        return self.activation(self.conv(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand + ReLU6, depthwise 3x3 + ReLU6, linear 1x1 projection, and
    the input added back when the block keeps the stride and the width."""

    def __init__(self, c_in: int, expanded: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.expand = ConvUnit(c_in, expanded, activation="relu6") if expanded != c_in else None
        self.depthwise = ConvUnit(
            expanded, expanded, KERNEL_SIZE, stride, groups=expanded, activation="relu6"
        )
        self.project = ConvUnit(expanded, c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class SeparableConv(nn.Module):
    """Keras SeparableConv2D + ReLU: depthwise 3x3 (no bias), pointwise 1x1 (bias), ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depthwise = ConvUnit(c_in, c_in, KERNEL_SIZE, groups=c_in, bias=False)
        self.pointwise = ConvUnit(c_in, c_out, activation="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class Head(nn.Module):
    """A CenterNet head: separable 3x3 conv + ReLU to `hidden` channels, then a 1x1 conv."""

    def __init__(self, c_in: int, hidden: int, c_out: int) -> None:
        super().__init__()
        self.hidden = SeparableConv(c_in, hidden)
        self.out = ConvUnit(hidden, c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.hidden(x))


def upsample2(x: Tensor) -> Tensor:
    """x2 bilinear upsampling with half-pixel centres (TF ResizeBilinear, half_pixel_centers)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class MoveNet(nn.Module):
    """MoveNet SinglePose: MobileNetV2 + FPN to stride 4 + heatmap, centre, regression and
    offset heads. forward(image float32 [N,3,H,W], RGB 0..255, H and W multiples of 32)."""

    def __init__(self, config: MoveNetConfig = MoveNetConfig()) -> None:
        super().__init__()
        self.config = config
        # Google's graph: (x - 0) * float16(1/127.5) - 1 (the converter loads the constants).
        self.register_buffer("input_mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("input_scale", torch.full((1, 3, 1, 1), 1 / 127.5))
        self.register_buffer("input_shift", torch.ones(1))
        self.stem = ConvUnit(3, config.stem_channels, KERNEL_SIZE, 2, activation="relu6")
        widths = (config.stem_channels,) + config.block_channels
        self.blocks = nn.ModuleList(
            InvertedResidual(widths[i], config.expanded_channels[i], widths[i + 1], stride)
            for i, stride in enumerate(config.block_strides)
        )
        self.last_conv = ConvUnit(widths[-1], config.last_channels, activation="relu6")
        top, c16, c8, c4 = config.fpn_channels
        tap_widths = [config.block_channels[tap] for tap in config.fpn_taps]
        # Laterals: 1x1 convs (linear) on the stride-32, 16, 8 and 4 features; each is added to
        # the upsampled coarser level, then smoothed by a separable conv.
        self.laterals = nn.ModuleList(
            ConvUnit(c_in, c_out)
            for c_in, c_out in zip((config.last_channels, *tap_widths), (top, top, c16, c8))
        )
        self.smooth = nn.ModuleList(
            SeparableConv(c_in, c_out) for c_in, c_out in ((top, c16), (c16, c8), (c8, c4))
        )
        self.heads = nn.ModuleDict(
            {name: Head(c4, config.head_channels, c) for name, c in HEAD_CHANNELS.items()}
        )

    def normalise(self, image: Tensor) -> Tensor:
        """RGB 0..255 -> about -1..1, with the graph's own constants."""
        return (image - self.input_mean) * self.input_scale - self.input_shift

    def forward(self, image: Tensor, return_features: bool = False) -> MoveNetOutputs:
        """image: float32 [N,3,H,W], RGB 0..255; H and W multiples of 32 (trained size:
        config.input_size). Heads come out at [N,C,H/4,W/4]."""
        if not torch.compiler.is_exporting():
            check_input_size(image.shape[-2:])
        x = self.stem(self.normalise(image))
        features = [x]
        taps = {}
        for index, block in enumerate(self.blocks):
            x = block(x)
            features.append(x)
            taps[index] = x
        x = self.last_conv(x)
        features.append(x)
        x = self.laterals[0](x)
        for lateral, smooth, tap in zip(self.laterals[1:], self.smooth, self.config.fpn_taps):
            x = smooth(upsample2(x) + lateral(taps[tap]))
            features.append(x)
        heads = {name: head(x) for name, head in self.heads.items()}
        return MoveNetOutputs(
            heatmaps=torch.sigmoid(heads["heatmaps"]),
            centers=torch.sigmoid(heads["centers"]),
            regression=heads["regression"],
            offsets=heads["offsets"],
            features=tuple(features) if return_features else (),
        )

    def feature_blocks(self) -> list[dict]:
        """The `features` in order: stem (feature_0), the 17 inverted-residual blocks
        (feature_1 … feature_17), the backbone's last 1x1 conv (feature_18, stride 32), and the
        pyramid's outputs at strides 16, 8 and 4 (feature_19 … feature_21; the last one feeds
        every head). Channels, running stride, dilation (always 1) and receptive field.

        Receptive field in input pixels: each 3x3 conv adds 2 * jump (jump = the running stride
        before it); a x2 bilinear upsampling adds one coarse cell (it mixes two neighbours); a
        pyramid level's field is its coarse path's, which contains the lateral's.
        """
        config = self.config
        entries = []

        def add(channels: int, stride: int, receptive_field: int) -> None:
            index = len(entries)
            entries.append(
                {
                    "name": f"feature_{index}",
                    "block": index,
                    "channels": channels,
                    "stride": stride,
                    "dilation": 1,
                    "receptive_field": receptive_field,
                }
            )

        jump, field = 2, 1 + (KERNEL_SIZE - 1)  # the stem: 3x3, stride 2
        add(config.stem_channels, jump, field)
        for channels, stride in zip(config.block_channels, config.block_strides):
            field += (KERNEL_SIZE - 1) * jump
            jump *= stride
            add(channels, jump, field)
        add(config.last_channels, jump, field)
        for channels in config.fpn_channels[1:]:
            field += jump  # upsampling: one coarse cell
            jump //= 2
            field += (KERNEL_SIZE - 1) * jump  # the separable conv's depthwise 3x3
            add(channels, jump, field)
        return entries


def check_input_size(size: tuple[int, int] | torch.Size) -> None:
    """MoveNet's pyramid adds x2-upsampled maps to finer ones: sizes must be multiples of 32."""
    if any(int(side) % INPUT_MULTIPLE for side in size) or min(int(side) for side in size) <= 0:
        raise ValueError(
            f"MoveNet input size {tuple(int(s) for s in size)} (H, W) is not a multiple of "
            f"{INPUT_MULTIPLE}"
        )
