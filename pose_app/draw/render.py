"""Drawing poses onto BGR frames (in place). Which keypoints connect lives in core/skeleton.py."""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from pose_app.core.angles import angle_anchors, compute_angles
from pose_app.core.geometry import mirror_x
from pose_app.core.poses import MIN_KEYPOINT_SCORE, FramePoses
from pose_app.core.skeleton import SKELETON_EDGES
from pose_app.draw.featuremaps import shrink

_EDGES = np.asarray(SKELETON_EDGES, dtype=np.intp)  # (E, 2)
# Consecutive ids get hues this far apart (the golden ratio's fraction): distinct colours for
# the first few people, and a colour that never changes for a given id.
_GOLDEN_HUE_STEP = 0.6180339887498949
# Lines and dots keep the same look on frames of any size: scaled per this many pixels.
_PIXELS_PER_LINE_WIDTH = 320


@dataclass(frozen=True)
class OverlayStyle:
    """What to draw. Keypoints scoring below min_keypoint_score (and their bones) are hidden."""

    points: bool = True
    bones: bool = True
    ids: bool = True
    boxes: bool = False
    min_keypoint_score: float = MIN_KEYPOINT_SCORE
    angles: tuple[str, ...] = ()  # angles (pose_app.core.angles names) written in degrees at the joints


def person_color(person_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour for a person id."""
    hue = (int(person_id) * _GOLDEN_HUE_STEP) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(blue * 255), int(green * 255), int(red * 255)


def line_width(image_shape: tuple[int, ...]) -> int:
    """Line thickness in pixels for an image of this shape."""
    return max(1, round(min(image_shape[:2]) / _PIXELS_PER_LINE_WIDTH))


def _fixed_point(xy: np.ndarray, shift: int) -> np.ndarray:
    """Float pixel coordinates -> OpenCV's sub-pixel fixed-point ints (value * 2**shift)."""
    return np.round(xy * (1 << shift)).astype(np.int32)


def _draw_person(image: np.ndarray, pose: np.ndarray, person_id: int, style: OverlayStyle, width: int) -> None:
    """Draw one pose (17, 3) in its id's colour."""
    color = person_color(person_id)
    visible = pose[:, 2] >= style.min_keypoint_score
    if not visible.any():
        return
    shift = 4  # sub-pixel precision for anti-aliased drawing
    points = _fixed_point(pose[:, :2], shift)
    if style.bones:
        bones = _EDGES[visible[_EDGES].all(axis=1)]
        if len(bones):
            cv2.polylines(image, list(points[bones]), False, color, width, cv2.LINE_AA, shift)
    if style.points:
        radius = (width + 1) << shift
        for x, y in points[visible]:
            cv2.circle(image, (int(x), int(y)), radius, color, -1, cv2.LINE_AA, shift)
    corner_min = pose[visible, :2].min(axis=0)
    corner_max = pose[visible, :2].max(axis=0)
    if style.boxes:
        cv2.rectangle(image, tuple(np.round(corner_min).astype(int)), tuple(np.round(corner_max).astype(int)), color, width)
    if style.ids:
        label_at = (int(corner_min[0]), max(int(corner_min[1]) - 4 * width, 10 * width))
        cv2.putText(image, str(person_id), label_at, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * width, color, width, cv2.LINE_AA)


def draw_poses(image_bgr: np.ndarray, poses: FramePoses, style: OverlayStyle = OverlayStyle(), *, mirror: bool = False) -> None:
    """Draw every pose of `poses` onto image_bgr in place.

    mirror: the image is shown flipped left-right (selfie view) while the poses are in the
    unflipped frame's pixels: their x is flipped to match; labels stay anatomical.
    """
    keypoints = poses.keypoints
    if mirror:
        keypoints = mirror_x(keypoints, image_bgr.shape[1])
    width = line_width(image_bgr.shape)
    for pose, person_id in zip(keypoints, poses.ids):
        _draw_person(image_bgr, pose, int(person_id), style, width)
    if style.angles and len(keypoints):
        # Angles of the unmirrored poses (a mirrored view must not change what is measured),
        # written where the drawn (possibly mirrored) poses have their joints.
        _draw_angles(image_bgr, compute_angles(poses.keypoints, style.angles)[0],
                     angle_anchors(keypoints, style.angles), poses.ids, width)


def _draw_angles(image: np.ndarray, degrees: np.ndarray, anchors: np.ndarray, ids: np.ndarray, width: int) -> None:
    """Each known angle (P, A) as whole degrees beside its anchor (P, A, 2), on a dark patch so
    it reads on any background, placed where it overlaps no other label (`label_boxes`); missing
    angles are not written."""
    scale = 0.4 * width
    texts, points, colours = [], [], []
    for person_degrees, person_anchors, person_id in zip(degrees, anchors, ids):
        for value, (x, y) in zip(person_degrees, person_anchors):
            if np.isfinite(value) and np.isfinite(x) and np.isfinite(y):
                texts.append(f"{value:.0f}")
                points.append((float(x), float(y)))
                colours.append(person_color(int(person_id)))
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, width)[0] for text in texts]
    for text, (x0, y0, x1, y1), colour in zip(texts, label_boxes(points, sizes, width), colours):
        cv2.rectangle(image, (x0, y0), (x1, y1), (30, 30, 30), -1)
        cv2.putText(image, text, (x0 + width, y1 - 2 * width), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width, cv2.LINE_AA)


def label_boxes(points: list[tuple[float, float]], sizes: list[tuple[int, int]], width: int) -> list[tuple[int, int, int, int]]:
    """Where each label goes: (x0, y0, x1, y1) of its patch, for a text of `sizes[i]` (w, h)
    beside `points[i]`. The first free place of: above right of the point, above left, below
    right, below left, then further down on the right, is taken, so two labels never overlap (a
    side view's two knees sit on the same spot: their numbers would read as one, "1175")."""
    placed: list[tuple[int, int, int, int]] = []
    for (x, y), (text_w, text_h) in zip(points, sizes):
        box_w, box_h = text_w + 2 * width, text_h + 3 * width
        gap = 3 * width
        right, left = int(x) + gap - width, int(x) - gap - box_w + width
        above, below = int(y) - gap - box_h + 2 * width, int(y) + gap
        candidates = [(right, above), (left, above), (right, below), (left, below)]
        candidates += [(right, below + k * (box_h + width)) for k in range(1, 2 * len(points) + 2)]
        for x0, y0 in candidates:
            box = (x0, y0, x0 + box_w, y0 + box_h)
            if not any(box[0] <= other[2] and other[0] <= box[2] and box[1] <= other[3] and other[1] <= box[3]
                       for other in placed):
                break
        placed.append(box)
    return placed


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
