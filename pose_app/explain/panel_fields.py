"""The dock's views of the offset and displacement heads (numpy/OpenCV, no Qt): the offset field
as arrows ("offsets"), the displacement fields along the part tree ("displacements") and the
multi-person decoding of a frame step by step ("walk"). Registered in explain/compose.py.
"""

from __future__ import annotations

import cv2
import numpy as np

from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES, NUM_PART_TREE_EDGES, PART_TREE_EDGES, SKELETON_EDGES
from pose_app.draw.render import line_width, person_color
from pose_app.explain.decode_walk import WalkStep
from pose_app.explain.network import arrows_to_frame, displacement_arrows, offset_arrows
from pose_app.explain.panel import (
    FrameGeometry,
    PanelContext,
    PanelRequest,
    PanelView,
    PanelViewKind,
    draw_arrow,
    draw_dot,
    keypoint_color,
    mirrored,
    over_frame,
)
from pose_app.explain.panel_maps import heat_activation
from pose_app.inference.families.posenet import HEAD_OUTPUTS

# At most this many offset arrows are drawn (the most confident cells): a low threshold must
# not bury the picture, or the frame rate, under arrows.
MAX_OFFSET_ARROWS = 600
# Displacement arrows: forward (parent -> child) orange, backward (child -> parent) cyan (BGR).
FORWARD_COLOR, BACKWARD_COLOR = (0, 165, 255), (255, 255, 0)


class OffsetsView(PanelViewKind):
    """Arrows from each heatmap cell scoring >= `min_score` to where its offset puts the keypoint
    (`keypoint` None = all keypoints)."""

    name = "offsets"
    label = "Offset field: arrows to the keypoints"
    head_fields = True
    opened_by = ("offsets",)

    def controls(self, request: PanelRequest) -> frozenset[str]:
        return frozenset({"keypoint", "hover"})

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        stride = context.info.output_stride
        arrows, ids = offset_arrows(poses.heatmaps, poses.heads["offsets"], stride, request.min_score, request.keypoint,
                                    labels=True)
        total = len(arrows)
        if total > MAX_OFFSET_ARROWS:
            rows, cols = np.rint(arrows[:, 1] / stride).astype(int), np.rint(arrows[:, 0] / stride).astype(int)
            keep = np.sort(np.argsort(-poses.heatmaps[ids, rows, cols], kind="stable")[:MAX_OFFSET_ARROWS])
            arrows, ids = arrows[keep], ids[keep]
        picture, geometry = over_frame(image_bgr, poses.transform, request.picture_width(image_bgr))
        framed = arrows_to_frame(arrows, poses.transform)
        ends = geometry.to_picture(framed.reshape(-1, 2, 2))
        for (start, end), k in zip(ends, ids):
            draw_arrow(picture, start, end, keypoint_color(int(k)))
        for start in ends[:, 0]:  # the cells on top, so each arrow's start stays visible
            draw_dot(picture, start, 1.5, (255, 255, 255))
        picture, geometry = mirrored(picture, geometry, context.mirror)
        which = "all keypoints" if request.keypoint is None else KEYPOINT_NAMES[request.keypoint]
        shown = f"{len(arrows)} strongest of {total}" if total > len(arrows) else f"{total}"
        caption = (f"offsets ({which}): {shown} arrows from heatmap cells scoring >= {request.min_score:g} (white "
                   f"dots, one every {stride} input px) to where the offset head puts the keypoint")
        return PanelView(picture, caption, self.name, "offsets", geometry=geometry,
                         activation=heat_activation(poses, request.keypoint, context.info), arrows=framed)


class DisplacementsView(PanelViewKind):
    """Arrows along the part tree's edges from each detected keypoint scoring >= `min_score`
    (`edge` None = all 16 edges), read from the displacement heads."""

    name = "displacements"
    label = "Displacement fields: arrows along the skeleton"
    head_fields = True
    opened_by = ("displacement_fwd", "displacement_bwd")

    def controls(self, request: PanelRequest) -> frozenset[str]:
        return frozenset({"edge"})

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        keypoints = poses.keypoints.astype(np.float32, copy=True)
        keypoints[..., :2] = poses.transform.to_input(keypoints[..., :2])
        arrows, _, forward = displacement_arrows(
            keypoints, poses.heads["displacement_fwd"], poses.heads["displacement_bwd"], context.info.output_stride,
            request.min_score, request.edge, labels=True,
        )
        picture, geometry = over_frame(image_bgr, poses.transform, request.picture_width(image_bgr))
        framed = arrows_to_frame(arrows, poses.transform)
        ends = geometry.to_picture(framed.reshape(-1, 2, 2))
        for (start, end), is_forward in zip(ends, forward):
            draw_arrow(picture, start, end, FORWARD_COLOR if is_forward else BACKWARD_COLOR)
        confident = poses.keypoints[poses.keypoints[..., 2] >= request.min_score][:, :2]
        for point in geometry.to_picture(confident.reshape(-1, 2)):
            draw_dot(picture, point, 2.5, (255, 255, 255))
        picture, geometry = mirrored(picture, geometry, context.mirror)
        if request.edge is None:
            which = f"all {NUM_PART_TREE_EDGES} edges"
        else:
            parent, child = PART_TREE_EDGES[request.edge]
            which = f"{KEYPOINT_NAMES[parent]} → {KEYPOINT_NAMES[child]}"
        caption = (f"displacements ({which}): {int(forward.sum())} forward (orange, parent → child) and "
                   f"{int((~forward).sum())} backward (cyan, child → parent) from {len(confident)} keypoints scoring "
                   f">= {request.min_score:g} (white dots)")
        return PanelView(picture, caption, self.name, "", geometry=geometry, arrows=framed)


# Walk steps: what a step's points look like (BGR).
_ROOT_RING, _SUPPRESSED, _DROPPED = (255, 255, 255), (60, 60, 255), (160, 160, 160)
_DISPLACED, _REFINED = (0, 255, 255), (255, 0, 255)


def _draw_skeletons(picture: np.ndarray, poses_xy: np.ndarray, scores: np.ndarray) -> None:
    """Partial poses (P, 17, 2) picture pixels, NaN where not reached; bones between reached
    keypoints, in each pose's colour."""
    width = line_width(picture.shape)
    for p, (pose, score) in enumerate(zip(poses_xy, scores)):
        color = person_color(p)
        reached = np.isfinite(pose).all(axis=1) & (score > 0)
        for a, b in SKELETON_EDGES:
            if reached[a] and reached[b]:
                cv2.line(picture, (round(pose[a, 0] * 16), round(pose[a, 1] * 16)),
                         (round(pose[b, 0] * 16), round(pose[b, 1] * 16)), color, width, cv2.LINE_AA, 4)
        for point in pose[reached]:
            draw_dot(picture, point, width + 1.5, color)


def draw_walk_step(picture: np.ndarray, step: WalkStep, geometry: FrameGeometry) -> None:
    """Draw one step of the decoding walk (frame pixels) on `picture` (unmirrored geometry)."""
    keypoints = step.keypoints
    if len(keypoints):
        _draw_skeletons(picture, geometry.to_picture(keypoints[..., :2]), keypoints[..., 2])
    points = geometry.to_picture(step.points.reshape(-1, 2))
    arrows = geometry.to_picture(step.arrows.reshape(-1, 2, 2))
    if step.kind == "queue":
        for point, k in zip(points, step.point_keypoints):
            draw_dot(picture, point, 2.0, keypoint_color(int(k)))
    elif step.kind in ("root", "pose", "keypoint"):
        for point, k in zip(points, step.point_keypoints):
            draw_dot(picture, point, 6.0 if step.kind == "root" else 4.0, _ROOT_RING, 1)
            draw_dot(picture, point, 2.5, keypoint_color(int(k)))
    elif step.kind in ("suppress", "drop"):
        color = _SUPPRESSED if step.kind == "suppress" else _DROPPED
        for x, y in points:
            if np.isfinite([x, y]).all():
                cv2.drawMarker(picture, (round(x), round(y)), color, cv2.MARKER_TILTED_CROSS, 8, 1, cv2.LINE_AA)
    for n, (start, end) in enumerate(arrows):
        if step.kind == "edge":
            draw_arrow(picture, start, end, _DISPLACED if n == 0 else _REFINED, 2 if n == 0 else 1)
        else:
            draw_arrow(picture, start, end, _SUPPRESSED if step.kind == "suppress" else _DISPLACED)
    if step.kind == "edge" and len(points):
        draw_dot(picture, points[-1], 3.0, keypoint_color(int(step.keypoint)))


class WalkView(PanelViewKind):
    """The multi-person decoding of the frame: step `walk_step` while the frame shown is
    `walk_frame` (its index), else the final poses (context.walk, decoded once per frame)."""

    name = "walk"
    label = "Decoding walk of a paused frame (N / Shift+N)"
    head_fields = True

    def controls(self, request: PanelRequest) -> frozenset[str]:
        return frozenset({"steps"})

    def layers(self, request: PanelRequest) -> set[str]:
        return set(HEAD_OUTPUTS)  # the walk reads every head

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        walk = context.walk()
        shown_frame = request.walk_frame is not None and request.walk_frame == context.frame_index
        walk_step = request.walk_step if shown_frame else -1
        picture, geometry = over_frame(image_bgr, poses.transform, request.picture_width(image_bgr))
        if not walk:
            return PanelView(picture, "no decoding to show", self.name, geometry=geometry)
        index = walk_step if 0 <= walk_step < len(walk) else len(walk) - 1
        step = walk[index]
        draw_walk_step(picture, step, geometry)
        picture, geometry = mirrored(picture, geometry, context.mirror)
        caption = f"step {index + 1} of {len(walk)}: {step.caption}"
        if walk_step < 0:
            caption += (" · the full-frame pass's decoding (before crops refine each person); pause and press N to "
                        "walk through it")
        return PanelView(picture, caption, self.name, geometry=geometry, step=step, step_index=index, steps=len(walk))
