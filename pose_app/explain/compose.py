"""The pictures the window shows, built from a frame and its poses (numpy/OpenCV, no Qt), and the
registry of the feature-map dock's views.

The inference worker calls these for every frame (off the GUI thread); the window calls
`compose_view` once more for a full-resolution snapshot. Skeletons are drawn by
`pose_app.draw.render.draw_poses` only. `compose_panel` makes the feature-map dock's picture for
the requested view (PANEL_VIEWS: each view one class, explain/panel.py says what it holds)
together with what the dock needs to answer clicks and hovers without computing anything heavy:
the tiles' regions, the picture's geometry over the frame and the activation under the mouse
(hover_at).
"""

from __future__ import annotations

import cv2
import numpy as np

from pose_app.core.poses import FramePoses
from pose_app.draw.featuremaps import grid_columns
from pose_app.explain.breaks_view import BreaksView
from pose_app.explain.compare_view import CompareView
from pose_app.explain.decode_walk import WalkStep
from pose_app.explain.lab_view import LabView
from pose_app.explain.network import channel_grid
from pose_app.explain.panel import (  # noqa: F401 - Hover, hover_at, keypoint_color, region_at: for the dock
    Hover,
    PanelContext,
    PanelRequest,
    PanelView,
    hover_at,
    keypoint_color,
    region_at,
    register_views,
)
from pose_app.explain.panel_fields import DisplacementsView, OffsetsView, WalkView
from pose_app.explain.panel_maps import FeaturesView, HeatmapsView, StatsView
from pose_app.explain.teach_view import TeachView
from pose_app.inference.engine import PoseEngine
from pose_app.inference.model_info import ModelInfo

# The feature-map dock's views, in the order its menu offers them: registered once, here.
PANEL_VIEWS = register_views(
    FeaturesView(), HeatmapsView(), OffsetsView(), DisplacementsView(), StatsView(), WalkView(), LabView(),
    TeachView(), CompareView(), BreaksView(),
)
PANEL_MODES = tuple(view.name for view in PANEL_VIEWS)  # PanelRequest.mode, --view
# Views drawn from the offset and displacement heads (kept by PoseEstimator.estimate(keep_heads=True)).
HEAD_FIELD_MODES = tuple(view.name for view in PANEL_VIEWS if view.head_fields)


def panel_ready(request: PanelRequest, poses: FramePoses, needs: bool = True) -> bool:
    """Whether `poses` hold everything the requested view is drawn from; without `needs` (the
    view said the frame needs no full-frame pass, PanelViewKind.frame_needs) only what its
    `ready` asks."""
    if needs and request.full_frame and (poses.heatmaps is None or poses.transform is None):
        return False
    if needs and request.head_fields and "offsets" not in poses.heads:
        return False
    if not request.kind.ready(request, poses):
        return False
    return not needs or all(name in poses.features for name in request.features)


def compose_panel(
    image_bgr: np.ndarray,
    poses: FramePoses,
    request: PanelRequest,
    *,
    mirror: bool,
    info: ModelInfo,
    filters: np.ndarray | None = None,
    walk: list[WalkStep] | None = None,
    frame_index: int | None = None,
    engine: PoseEngine | None = None,
    crop_engine: PoseEngine | None = None,
) -> PanelView:
    """The dock's picture for `request` (check panel_ready first). `filters`: the first conv's
    kernels (C, 3, 3, 3), drawn beside its maps; `walk`: the frame's decoding walk, shown at
    the request's step when `frame_index` is its `walk_frame` (else the final poses); `engine`:
    for the views that read its weights (the lab); `crop_engine`: the network the pipeline's
    crops run (the compare view compares it with `engine`). The inference worker draws through
    `compose_in`, with a context that reads filters and walk only when a view asks."""
    context = PanelContext(info, mirror, filters=lambda: filters, walk=lambda: walk or [], frame_index=frame_index,
                           engine=engine, crop_engine=crop_engine)
    return compose_in(image_bgr, poses, request, context)


def compose_in(image_bgr: np.ndarray, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
    """The dock's picture for `request`, drawn by its view in `context` (check panel_ready first)."""
    return request.kind.compose(image_bgr, poses, request, context)


# --- pictures for teaching (PNG exports) -------------------------------------------------------

_ASCII = {"×": "x", "°": " deg", "→": "->", "·": "-", "≥": ">=", "…": "...", "◀": "<", "▶": ">", "½": "1/2"}
CAPTION_FONT, CAPTION_SCALE, CAPTION_LINE = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 18


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only."""
    for char, plain in _ASCII.items():
        text = text.replace(char, plain)
    return text.encode("ascii", "replace").decode("ascii")


def caption_lines(text: str, width: int) -> list[str]:
    """`text` (ASCII-fied) broken into lines that fit `width` pixels in the caption font."""
    lines, line = [], ""
    for word in _ascii(text).split():
        candidate = f"{line} {word}".strip()
        if line and cv2.getTextSize(candidate, CAPTION_FONT, CAPTION_SCALE, 1)[0][0] > width - 8:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + ([line] if line else [])


def teaching_picture(view: PanelView, hover: Hover | None = None) -> np.ndarray:
    """The dock's picture as a PNG for teaching: the hover's receptive-field square drawn on it and
    the caption (and the hovered value) written in a band below. Size: the picture's width, its
    height plus CAPTION_LINE per caption line + 8."""
    if view.picture is None:
        raise ValueError("this view has no picture (the statistics chart is painted by the dock)")
    picture = view.picture.copy()
    text = view.caption
    if hover is not None:
        x0, y0, x1, y1 = hover.picture_box
        cv2.rectangle(picture, (round(x0 + 0.5), round(y0 + 0.5)), (round(x1 - 0.5), round(y1 - 0.5)),
                      (0, 230, 255), 1, cv2.LINE_AA)
        text += " | " + hover.text()
    lines = caption_lines(text, picture.shape[1])
    band = np.full((CAPTION_LINE * len(lines) + 8, picture.shape[1], 3), 32, np.uint8)
    for n, line in enumerate(lines):
        cv2.putText(band, line, (4, CAPTION_LINE * (n + 1)), CAPTION_FONT, CAPTION_SCALE, (235, 235, 235), 1,
                    cv2.LINE_AA)
    return np.concatenate([picture, band])


def all_channels_picture(values: np.ndarray) -> np.ndarray:
    """Every channel of a layer's output (C, H, W) as one labelled grid (explain.channel_grid),
    grid_columns(C, H, W) tiles a row: about square."""
    count, height, width = values.shape
    return channel_grid(values, grid_columns(count, height, width))
