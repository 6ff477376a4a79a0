"""The teaching view of the feature-map dock ("teach", numpy/OpenCV, no Qt): the frame with the
learner's clicks, the taught point's heatmap following it live, and below, the loss curve of the
training and the head's weights as bars over the channels it leans on most (each bar a region:
clicking it opens that channel of the block). The maths is in explain/teach.py, the clicks,
training and files in gui/teach_panel.py.
"""

from __future__ import annotations

import cv2
import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.core.poses import FramePoses
from pose_app.draw.featuremaps import heatmap_overlay
from pose_app.explain.lab_view import NEGATIVE_BGR, POSITIVE_BGR, gap_canvas, outlined_label
from pose_app.explain.panel import (
    Activation,
    FrameGeometry,
    PanelContext,
    PanelRequest,
    PanelView,
    PanelViewKind,
    draw_dot,
    feature_block,
    over_frame,
)
from pose_app.explain.teach import TaughtPoint, TeachRequest

BARS = 16  # the channels with the largest |weight| drawn as bars
BAND_HEIGHT = 120
CLICK_RING, FOUND_MARK = (255, 255, 255), (0, 255, 255)


def loss_plot(losses: tuple[float, ...], size: tuple[int, int]) -> np.ndarray:
    """The loss after each training step as a curve in a (w, h) box, first and last value written."""
    width, height = size
    plot = gap_canvas(height, width)
    if len(losses) < 2:
        outlined_label(plot, "loss: train to see it fall", (3, 14), 0.36)
        return plot
    values = np.asarray(losses, np.float64)
    low, high = float(values.min()), float(values.max())
    xs = np.linspace(4, width - 4, len(values))
    ys = 20 + (height - 26) * (1 - (values - low) / (high - low if high > low else 1.0))
    points = np.rint(np.stack([xs, ys], axis=1) * 16).astype(np.int32)
    cv2.polylines(plot, [points], False, (90, 220, 120), 1, cv2.LINE_AA, 4)
    outlined_label(plot, f"loss {values[0]:.3f} -> {values[-1]:.3f}", (3, 13), 0.36)
    outlined_label(plot, f"{len(values)} steps", (width - 62, 28), 0.33)
    return plot


def weight_bars(weights: np.ndarray, size: tuple[int, int], x_offset: int, y_offset: int
                ) -> tuple[np.ndarray, tuple[tuple[int, int, int, int, int], ...]]:
    """The BARS channels with the largest |weight|, strongest first, as signed bars (orange
    positive, blue negative) in a (w, h) box; and each bar's region in the whole picture (x0, y0,
    x1, y1, channel), the box's top left being (x_offset, y_offset) there."""
    width, height = size
    picture = gap_canvas(height, width)
    order = np.argsort(-np.abs(weights), kind="stable")[:BARS]
    if not len(order):
        return picture, ()
    slot = max(1, (width - 4) // len(order))
    middle = 16 + (height - 32) // 2
    largest = float(np.abs(weights[order]).max()) or 1.0
    regions = []
    for n, channel in enumerate(order):
        x0 = 2 + n * slot
        length = round((height - 32) / 2 * float(weights[channel]) / largest)
        color = tuple(int(v) for v in (POSITIVE_BGR if weights[channel] >= 0 else NEGATIVE_BGR))
        cv2.rectangle(picture, (x0 + 1, min(middle, middle - length)), (x0 + slot - 2, max(middle, middle - length)),
                      color, -1)
        if slot >= 14:
            outlined_label(picture, str(int(channel)), (x0, height - 4), 0.3)
        regions.append((x_offset + x0, y_offset + 16, x_offset + x0 + slot, y_offset + height, int(channel)))
    cv2.line(picture, (2, middle), (width - 2, middle), (120, 120, 120), 1)
    outlined_label(picture, f"weights: the {len(order)} largest of {len(weights)} (click a bar)", (3, 13), 0.36)
    return picture, tuple(regions)


def _fits(point: TaughtPoint, features: np.ndarray) -> bool:
    """Whether a taught head reads as many channels as this block has (not one of another model)."""
    return len(features) == len(point.weights)


class TeachView(PanelViewKind):
    """Teach the network a new point: a 1x1 heatmap head on the frozen features of the dock's
    block, trained from the learner's clicks (`teach`)."""

    name = "teach"
    label = "Teach the network a new point (click it on paused frames)"

    @staticmethod
    def _blocks(request: PanelRequest) -> tuple[str, ...]:
        point = request.teach.point
        # The dock's block (the one clicks train), and the taught head's when this model has it
        # (a point loaded from a file may come from another model).
        head = point.block if point is not None and (not request.blocks or point.block in request.blocks) else ""
        return tuple(dict.fromkeys(name for name in (request.block, head) if name))

    def features(self, request: PanelRequest) -> tuple[str, ...]:
        # Before a point is taught the view draws the frame and the clicks alone (the clicked
        # frames' features are computed when training starts): no block is read every frame.
        return self._blocks(request) if self.full_frame(request) else ()

    def full_frame(self, request: PanelRequest) -> bool:
        return request.teach.point is not None

    def ready(self, request: PanelRequest, poses: FramePoses) -> bool:
        return bool(request.block)

    def controls(self, request: PanelRequest) -> frozenset[str]:
        return frozenset({"block", "teach", "hover"})

    def layers(self, request: PanelRequest) -> set[str]:
        return set(self._blocks(request))

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        teach, width = request.teach, request.picture_width(image_bgr)
        point = teach.point
        heat = activation = None
        if point is not None and point.block in poses.features and _fits(point, poses.features[point.block]):
            heat = point.heatmap(poses.features[point.block])
            block = feature_block(context.info, point.block)
            activation = Activation(f"{point.name} heat", heat, block.stride, block.receptive_field)
        if heat is not None:
            picture = heatmap_overlay(image_bgr, heat[None], poses.transform, 0, out_width=width)
            geometry = FrameGeometry(poses.transform, (picture.shape[1], picture.shape[0]))
        else:
            # A frame the pipeline followed on crops has no full-frame geometry: the frame's own.
            height, frame_width = image_bgr.shape[:2]
            transform = poses.transform or FrameTransform((frame_width, height), (frame_width, height),
                                                          (frame_width, height))
            picture, geometry = over_frame(image_bgr, transform, width)
        here = [(x, y) for frame, x, y in teach.clicks if frame == context.frame_index]
        for xy in geometry.to_picture(np.array(here, np.float64).reshape(-1, 2)):
            draw_dot(picture, xy, 6.0, CLICK_RING, 1)
        found = None
        if heat is not None:
            found = point.find(poses.features[point.block], poses.transform)
            centre = geometry.to_picture(found[:2])
            cv2.drawMarker(picture, (round(centre[0]), round(centre[1])), FOUND_MARK, cv2.MARKER_CROSS, 14, 2,
                           cv2.LINE_AA)
        if context.mirror:  # the band below is text and bars: only the frame is flipped
            picture = cv2.flip(picture, 1)
            geometry = FrameGeometry(geometry.transform, geometry.size, True)
        band, regions = self._band(teach, point, picture.shape[1], picture.shape[0])
        caption = self._caption(request, teach, point, found)
        if point is not None and heat is None and point.block in poses.features:
            caption = (f"'{point.name}' reads {len(point.weights)} channels of {point.block}; this model's "
                       f"{point.block} has {len(poses.features[point.block])}: use the model it was taught on")
        return PanelView(np.concatenate([picture, band]), caption, self.name, request.block, regions,
                         geometry=geometry, activation=activation)

    @staticmethod
    def _band(teach: TeachRequest, point: TaughtPoint | None, width: int, top: int):
        """The loss curve (left third) and the weight bars (the rest), under the frame."""
        losses = teach.losses if teach.training or point is None else point.losses
        plot_w = max(40, width // 3)
        band = gap_canvas(BAND_HEIGHT, width)
        band[:, :plot_w] = loss_plot(losses, (plot_w, BAND_HEIGHT))
        regions = ()
        if point is not None and width - plot_w - 4 > 20:
            bars, regions = weight_bars(point.weights, (width - plot_w - 4, BAND_HEIGHT), plot_w + 4, top)
            band[:, plot_w + 4:] = bars
        return band, regions

    @staticmethod
    def _caption(request: PanelRequest, teach: TeachRequest, point: TaughtPoint | None, found) -> str:
        clicks = len(teach.clicks)
        frames = len({frame for frame, _, _ in teach.clicks})
        if teach.training:
            loss = f", loss {teach.losses[-1]:.3f}" if teach.losses else ""
            return f"Training a 1×1 head on {request.block} from {clicks} clicks: step {len(teach.losses)}{loss}"
        if point is None:
            return (f"Teach the network a new point (a racket tip, the chin, a ball): pause, click the point, step on "
                    f"and click it again, on 10-20 frames ({clicks} clicks on {frames} frames so far); then Train "
                    f"fits a 1×1 heatmap head on the frozen features of {request.block}")
        where = f"found at ({found[0]:.0f}, {found[1]:.0f}), heat {found[2]:.2f}" if found is not None else (
            f"show {point.block} to see it")
        offsets = " and its offsets" if point.offset_weights is not None else ""
        return (f"'{point.name}': a 1×1 head on {point.block} ({len(point.weights)} weights + bias → sigmoid){offsets} "
                f"taught from {point.clicks} clicks; {where} (yellow cross). Bars: the channels it leans on most; try "
                "another block and train again to compare")
