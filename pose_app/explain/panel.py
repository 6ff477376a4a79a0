"""What every view of the feature-map dock is made of (numpy/OpenCV, no Qt): the request
(PanelRequest), the picture with what clicks and hovers read (PanelView), the context a view is
drawn in (PanelContext), the base class of a view (PanelViewKind) and the registry of views.

A view is one PanelViewKind subclass: what it needs from the frame (`features`, `head_fields`,
`ready`), how it draws (`compose`), its menu label, the dock's controls it uses (`controls`) and
the layers of the network strip it outlines (`layers`). The table of views is in
explain/compose.py (PANEL_VIEWS), registered there once; everything else looks a view up by its
name (`view_kind`), so no code outside a view compares the view's name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.core.poses import FramePoses
from pose_app.draw.featuremaps import ChannelSelection, shrink
from pose_app.draw.render import person_color
from pose_app.explain.breaks import DEFAULT_BREAKS, BreaksRequest
from pose_app.explain.decode_walk import WalkStep
from pose_app.explain.lab import DEFAULT_LAB, LabRequest
from pose_app.explain.network import BlockStats, cell_at_frame_point, cell_centre_in_frame, receptive_field_box
from pose_app.explain.teach import DEFAULT_TEACH, TeachRequest
from pose_app.inference.engine import PoseEngine
from pose_app.inference.model_info import FeatureBlock, ModelInfo

# The dock's controls a view can ask for (PanelViewKind.controls); the dock shows those and hides
# the others. "back": the inspected channel's way back to the tiles; "steps": the walk's step
# buttons; "hover": the hovered cell's value line; "chart": the statistics chart instead of a
# picture; "lab": the lab's own controls; "cell": hovering picks the lab's cell; "occlusion": a
# finished occlusion run replaces the live picture; "teach": the teaching controls, and a click on
# the frame marks the point to teach; "breaks": the perturbation, its slider and the upright switch.
CONTROLS = ("block", "channels", "back", "keypoint", "edge", "steps", "hover", "chart", "lab", "cell", "occlusion",
            "teach", "breaks")


@dataclass(frozen=True)
class PanelRequest:
    """What the feature panel shows: the view `mode` (a registered view's name, compose.PANEL_MODES)
    and the choices the views read (see each view's class for which):

    `block`, `how`, `count`, `start`, `channel`: a block's channels; `keypoint` (None = all), `edge`
    (None = all), `min_score`: heatmaps and arrows; `blocks`: every feature output of the model;
    `walk_frame`, `walk_step`: the decoding walk's step on a paused frame; `lab`: the CNN lab's
    choices; `teach`: the clicks and the taught point of the teaching view; `breaks`: the
    perturbation of the breaks view."""

    mode: str = "features"
    block: str = ""
    how: ChannelSelection = "strongest"
    count: int = 16
    start: int = 0
    keypoint: int | None = None
    width: int = 360  # pixels of the pictures over the frame (the grid keeps one pixel per activation)
    height: int = 0  # pixels of the dock's picture box (0: not known); views that can lay out to fill it do
    channel: int | None = None
    edge: int | None = None
    min_score: float = 0.5
    blocks: tuple[str, ...] = ()  # every feature output of the model
    walk_frame: int | None = None
    walk_step: int = 0
    lab: LabRequest = DEFAULT_LAB
    teach: TeachRequest = DEFAULT_TEACH
    breaks: BreaksRequest = DEFAULT_BREAKS

    @property
    def kind(self) -> PanelViewKind:
        return view_kind(self.mode)

    @property
    def features(self) -> tuple[str, ...]:
        """Feature outputs to ask the engine for (the view decides)."""
        return self.kind.features(self)

    @property
    def head_fields(self) -> bool:
        """Whether the view reads the offsets and displacements, besides the heatmaps."""
        return self.kind.head_fields

    @property
    def full_frame(self) -> bool:
        """Whether the view is drawn from the full-frame pass (the view decides)."""
        return self.kind.full_frame(self)

    def picture_width(self, image_bgr: np.ndarray) -> int:
        """The width of a picture over the frame: `width`, at most the frame's."""
        return max(1, min(self.width, image_bgr.shape[1]))


@dataclass(frozen=True)
class FrameGeometry:
    """How a panel picture lies over the frame: the frame scaled by size[0] / frame width, then
    flipped left-right when `mirror`. Pixel-centre coordinates, as everywhere."""

    transform: FrameTransform
    size: tuple[int, int]  # (w, h) of the picture
    mirror: bool = False

    @property
    def scale(self) -> float:
        """Picture pixels per frame pixel."""
        return self.size[0] / self.transform.frame_size[0]

    def to_frame(self, xy) -> np.ndarray:
        """(..., 2) picture pixels -> frame pixels."""
        xy = np.array(xy, np.float64)
        if self.mirror:
            xy[..., 0] = self.size[0] - 1 - xy[..., 0]
        return (xy + 0.5) / self.scale - 0.5

    def to_picture(self, xy) -> np.ndarray:
        """(..., 2) frame pixels -> picture pixels."""
        xy = (np.array(xy, np.float64) + 0.5) * self.scale - 0.5
        if self.mirror:
            xy[..., 0] = self.size[0] - 1 - xy[..., 0]
        return xy


@dataclass(frozen=True)
class Activation:
    """The map a hover reads: `values (H, W)` of a layer whose cell (i, j) sits at input pixel
    (j * output_stride, i * output_stride) and sees `receptive_field` input pixels."""

    label: str
    values: np.ndarray
    output_stride: int
    receptive_field: int


@dataclass(frozen=True)
class Hover:
    """The activation under the mouse: its cell, value, where the cell sits and the square of
    the frame it sees (frame pixels; `picture_box` in the picture's pixels, box edges)."""

    label: str
    cell: tuple[int, int]
    value: float
    centre: tuple[float, float]
    box: tuple[float, float, float, float]
    picture_box: tuple[float, float, float, float]

    def text(self) -> str:
        x0, y0, x1, y1 = self.box
        return (f"{self.label} cell ({self.cell[0]}, {self.cell[1]}) = {self.value:.3g} · at frame pixel "
                f"({self.centre[0]:.0f}, {self.centre[1]:.0f}) · sees {x1 - x0:.0f}×{y1 - y0:.0f} px of the frame")


@dataclass(frozen=True)
class PanelView:
    """One picture of the dock (BGR; None for the statistics, which the dock paints from
    `stats`), its caption, and what clicks and hovers read without computing anything heavy.
    `mode`: the name of the view that made it."""

    picture: np.ndarray | None
    caption: str
    mode: str = "features"
    layer: str = ""  # the layer whose channels "save all channels" writes ("" for none)
    regions: tuple[tuple[int, int, int, int, int], ...] = ()  # tiles: x0, y0, x1, y1 (exclusive), channel
    geometry: FrameGeometry | None = None  # pictures over the frame
    activation: Activation | None = None  # what a hover reads
    stats: dict[str, BlockStats] | None = None
    arrows: np.ndarray | None = None  # (N, 4) x0, y0, x1, y1 frame pixels of the arrows drawn
    step: WalkStep | None = None  # the decoding walk's step shown
    step_index: int = -1
    steps: int = 0
    all_channels: Callable[[], np.ndarray] | None = None  # "save all channels" of a view that is not a layer's maps


def region_at(view: PanelView, picture_xy) -> int | None:
    """The channel of the tile at picture pixel (x, y), None between or outside tiles."""
    x, y = picture_xy
    for x0, y0, x1, y1, channel in view.regions:
        if x0 - 0.5 <= x < x1 - 0.5 and y0 - 0.5 <= y < y1 - 0.5:
            return channel
    return None


def hover_at(view: PanelView, picture_xy) -> Hover | None:
    """The activation at picture pixel (x, y) of a picture over the frame: its cell, value and
    receptive field; None off the frame or without an activation."""
    activation, geometry = view.activation, view.geometry
    if activation is None or geometry is None:
        return None
    frame_x, frame_y = geometry.to_frame(picture_xy).tolist()
    stride = activation.output_stride
    cell = cell_at_frame_point(stride, activation.values.shape, (frame_x, frame_y), geometry.transform)
    if cell is None:
        return None
    layer = FeatureBlock(activation.label, -1, 1, stride, 1, activation.receptive_field)
    box = receptive_field_box(layer, cell, geometry.transform)
    (ax, y0), (bx, y1) = geometry.to_picture([box[:2], box[2:]]).tolist()
    return Hover(
        activation.label, cell, float(activation.values[cell]), cell_centre_in_frame(stride, cell, geometry.transform),
        box, (min(ax, bx), y0, max(ax, bx), y1),
    )


def _no_filters() -> np.ndarray | None:
    return None


@dataclass
class PanelContext:
    """What a view is drawn with besides the frame and its request. `filters` and `walk` are read
    only by the views that draw them (reading them costs: the first conv's kernels once per
    engine, the decoding walk once per frame); `state` keeps what a view holds between frames
    (PanelViewKind.new_state), by view name, for the caller (the inference worker) to keep."""

    info: ModelInfo
    mirror: bool = False
    filters: Callable[[], np.ndarray | None] = _no_filters  # the first conv's kernels (C, 3, 3, 3)
    walk: Callable[[], list[WalkStep]] = list  # the frame's decoding walk
    frame_index: int | None = None  # the frame drawn (the walk's step belongs to one frame)
    engine: PoseEngine | None = None  # the running engine (views that run it or read its weights)
    crop_engine: PoseEngine | None = None  # the engine the pipeline's crops run (None: no crops)
    state: dict[str, object] = field(default_factory=dict)

    def state_of(self, kind: PanelViewKind) -> object:
        """What `kind` keeps between frames (made by its new_state the first time)."""
        return view_state(self.state, kind)


def view_state(states: dict[str, object], kind: PanelViewKind) -> object:
    """What `kind` keeps between frames in `states` (made by its new_state the first time)."""
    if kind.name not in states:
        states[kind.name] = kind.new_state()
    return states[kind.name]


class PanelViewKind:
    """One view of the dock. Subclasses set `name` (its --view name), `label` (the dock's menu)
    and override what differs from these defaults: a picture over the frame from the heatmaps
    alone, no feature outputs, no controls."""

    name: str = ""
    label: str = ""
    head_fields: bool = False  # reads the offset and displacement heads (estimate(keep_heads=True))
    opened_by: tuple[str, ...] = ()  # the strip's heads that open this view when clicked
    opened_by_blocks: bool = False  # a feature block clicked in the strip opens this view on that block
    note: str = ""  # the line under the strip when the view outlines several layers

    def features(self, request: PanelRequest) -> tuple[str, ...]:
        """The feature outputs the view reads."""
        return ()

    def ready(self, request: PanelRequest, poses: FramePoses) -> bool:
        """Whether the view can be drawn, beyond having its heatmaps, heads and features."""
        return True

    def full_frame(self, request: PanelRequest) -> bool:
        """Whether the view is drawn from the full-frame pass (heatmaps, geometry, features), so
        that every frame runs it while the view is shown; False: drawn from the frame alone, on
        the frames the pipeline follows on crops too (as fast as with the dock closed)."""
        return True

    def frame_needs(self, request: PanelRequest, state: object, frame_index: int | None, image_bgr: np.ndarray) -> bool:
        """Whether this frame runs the full-frame pass with the view's features; False: the view
        is drawn from what it kept of an earlier frame (`state`), and the frame runs on crops
        as with the dock closed. Asked before each frame is processed."""
        return self.full_frame(request)

    def compose(self, image_bgr: np.ndarray, poses: FramePoses, request: PanelRequest,
                context: PanelContext) -> PanelView:
        raise NotImplementedError

    def controls(self, request: PanelRequest) -> frozenset[str]:
        """The dock's controls (CONTROLS) this view uses now."""
        return frozenset()

    def layers(self, request: PanelRequest) -> set[str]:
        """The layers of the network strip the view shows (outlined there)."""
        return set(self.opened_by)

    def new_state(self) -> object:
        """What the view keeps between frames (PanelContext.state_of); None when nothing."""
        return None


_VIEWS: dict[str, PanelViewKind] = {}


def register_views(*kinds: PanelViewKind) -> tuple[PanelViewKind, ...]:
    """Add views to the registry (the dock offers them in this order); returns them."""
    for kind in kinds:
        if not kind.name or kind.name in _VIEWS:
            raise ValueError(f"a panel view needs a name of its own, got {kind.name!r}")
        unknown = set(kind.controls(PanelRequest(mode=kind.name))) - set(CONTROLS)
        if unknown:
            raise ValueError(f"panel view {kind.name!r} asks for unknown controls {sorted(unknown)}")
        _VIEWS[kind.name] = kind
    return kinds


def view_names() -> tuple[str, ...]:
    """Every registered view's name, in the dock's order."""
    return tuple(_VIEWS)


def registered_views() -> tuple[PanelViewKind, ...]:
    return tuple(_VIEWS.values())


def view_kind(name: str) -> PanelViewKind:
    """The registered view called `name`."""
    try:
        return _VIEWS[name]
    except KeyError:
        if not _VIEWS:  # the table lives a module up, so that views may use what this one defines
            raise ValueError("no panel views are registered yet: import pose_app.explain.compose") from None
        raise ValueError(f"unknown panel mode {name!r}; expected one of {view_names()}") from None


def view_opened_by(layer: str, blocks: tuple[str, ...]) -> str | None:
    """The view a click on the strip's `layer` opens (a feature block of `blocks` or a head);
    None when no view shows it."""
    for kind in _VIEWS.values():
        if (kind.opened_by_blocks and layer in blocks) or layer in kind.opened_by:
            return kind.name
    return None


# --- drawing shared by the views ---------------------------------------------------------------


def feature_block(info: ModelInfo, name: str) -> FeatureBlock:
    return next(block for block in info.feature_blocks if block.name == name)


def keypoint_color(keypoint: int) -> tuple[int, int, int]:
    """A distinct BGR colour per keypoint (the hues person ids get)."""
    return person_color(keypoint)


def over_frame(image_bgr: np.ndarray, transform: FrameTransform, width: int) -> tuple[np.ndarray, FrameGeometry]:
    """A copy of the frame scaled to `width` to draw on, and its (unmirrored) geometry."""
    frame_h, frame_w = image_bgr.shape[:2]
    scale = width / frame_w
    size = (max(1, round(frame_w * scale)), max(1, round(frame_h * scale)))
    picture = shrink(image_bgr, size)
    return (picture.copy() if picture is image_bgr else picture), FrameGeometry(transform, size)


def mirrored(picture: np.ndarray, geometry: FrameGeometry, mirror: bool) -> tuple[np.ndarray, FrameGeometry]:
    """The picture and its geometry flipped left-right when `mirror`."""
    if not mirror:
        return picture, geometry
    return cv2.flip(picture, 1), dataclasses.replace(geometry, mirror=True)


def draw_arrow(picture: np.ndarray, start, end, color, thickness: int = 1) -> None:
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    if not (math.isfinite(length) and length < 1e5):
        return
    shift = 4
    a = (round(x0 * 16), round(y0 * 16))
    b = (round(x1 * 16), round(y1 * 16))
    cv2.arrowedLine(picture, a, b, color, thickness, cv2.LINE_AA, shift, tipLength=min(0.5, 5.0 / max(length, 1e-6)))


def draw_dot(picture: np.ndarray, xy, radius: float, color, thickness: int = -1) -> None:
    x, y = xy
    if math.isfinite(x) and math.isfinite(y) and abs(x) < 1e5 and abs(y) < 1e5:
        cv2.circle(picture, (round(x * 16), round(y * 16)), round(radius * 16), color, thickness, cv2.LINE_AA, 4)
