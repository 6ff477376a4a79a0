"""Draw docs/angles.png: the conventions of pose_app/core/angles.py on one pose.

    python docs/angles_figure.py            # writes docs/angles.png (needs matplotlib)

Every number in the drawing is computed by pose_app.core.angles.compute_angles from the pose below,
so the picture cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_app.core.angles import ANGLES, compute_angles
from pose_app.core.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS, SKELETON_EDGES

# A person facing the camera (their left on the image's right), image pixels, y down.
POSE = {
    "nose": (200, 52), "left_eye": (209, 44), "right_eye": (191, 44), "left_ear": (219, 50), "right_ear": (181, 50),
    "left_shoulder": (232, 100), "right_shoulder": (168, 104),
    "left_elbow": (292, 100), "left_wrist": (292, 42),
    "right_elbow": (160, 162), "right_wrist": (176, 218),
    "left_hip": (224, 204), "right_hip": (178, 204),
    "left_knee": (228, 286), "left_ankle": (230, 368),
    "right_knee": (172, 286), "right_ankle": (222, 336),
}
JOINTS = ("left_elbow", "right_elbow", "left_shoulder", "right_hip", "right_knee")
SEGMENTS = ("trunk", "shoulder_line", "left_upper_arm", "left_forearm", "right_upper_arm", "right_shank", "left_thigh")


def keypoints() -> np.ndarray:
    result = np.zeros((NUM_KEYPOINTS, 3))
    for name, (x, y) in POSE.items():
        result[KEYPOINT_INDEX[name]] = (x, y, 1.0)
    return result


def point(names: tuple[str, ...]) -> np.ndarray:
    return np.mean([POSE[name] for name in names], axis=0)


def screen_direction(vector: np.ndarray) -> float:
    """Degrees counter-clockwise on screen from +x (image y points down)."""
    return float(np.degrees(np.arctan2(-vector[1], vector[0])))


def arc(axes, centre, radius, start, end, colour, arrow=False, **style):
    """An arc counter-clockwise on screen from `start` to `end` degrees (image axes, y down)."""
    angles = np.radians(np.linspace(start, end, 60))
    xs, ys = centre[0] + radius * np.cos(angles), centre[1] - radius * np.sin(angles)
    axes.plot(xs, ys, color=colour, linewidth=1.6, **style)
    if arrow:
        axes.annotate("", (xs[-1], ys[-1]), (xs[-4], ys[-4]), arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.6))


def draw_person(axes, colour="0.6"):
    """Body bones, a neck and a round head (the face keypoints are not used by any angle)."""
    body = [(a, b) for a, b in SKELETON_EDGES if min(a, b) >= KEYPOINT_INDEX["left_shoulder"]]
    xy = keypoints()[:, :2]
    for a, b in body:
        axes.plot(*xy[[a, b]].T, color=colour, linewidth=3, solid_capstyle="round", zorder=1)
    neck = point(("left_shoulder", "right_shoulder"))
    nose = np.array(POSE["nose"])
    axes.plot([neck[0], nose[0]], [neck[1], nose[1] + 18], color=colour, linewidth=3, zorder=1)
    axes.add_patch(Circle(nose, 20, facecolor="none", edgecolor=colour, linewidth=3, zorder=1))
    body_points = xy[KEYPOINT_INDEX["left_shoulder"]:]
    axes.scatter(body_points[:, 0], body_points[:, 1], s=14, color="0.25", zorder=2)
    axes.text(325, 380, "person's left\n(image right)", ha="right", va="bottom", fontsize=8, color="0.35")
    axes.text(100, 380, "person's right\n(image left)", ha="left", va="bottom", fontsize=8, color="0.35")


def image_axes(axes, title, limits=(95, 330, 385, 15)):
    x0, x1, y0, y1 = limits
    axes.set_xlim(x0, x1)
    axes.set_ylim(y0, y1)  # y down, as in the image
    axes.set_aspect("equal")
    axes.set_title(title, fontsize=11, loc="left")
    axes.tick_params(labelsize=7)
    axes.set_xlabel("x (pixels) \u2192", fontsize=8)
    axes.set_ylabel("\u2190 y (pixels, down)", fontsize=8)


def main(out: Path) -> None:
    degrees = dict(zip(ANGLES, compute_angles(keypoints())[0].tolist()))
    figure = Figure(figsize=(15, 6.4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    compass, joints, segments = figure.subplots(1, 3, width_ratios=(0.9, 1, 1))

    # 1. The segment-angle compass in image axes.
    compass.set_xlim(-1.45, 1.45)
    compass.set_ylim(1.45, -1.45)
    compass.set_aspect("equal")
    compass.set_title("segment angles: direction from +x, counter-clockwise\non screen is +, range (-180, 180]", fontsize=11, loc="left")
    compass.axhline(0, color="0.85", linewidth=0.8)
    compass.axvline(0, color="0.85", linewidth=0.8)
    for value, label in ((0, "0"), (45, "+45"), (90, "+90 (up)"), (135, "+135"), (180, "180 (left)"),
                         (-135, "-135"), (-90, "-90 (down)"), (-45, "-45")):
        direction = np.array([np.cos(np.radians(value)), -np.sin(np.radians(value))])
        compass.annotate("", direction, (0, 0), arrowprops=dict(arrowstyle="-|>", color="C0", lw=1.3))
        compass.text(*(direction * 1.22), label, ha="center", va="center", fontsize=9)
    arc(compass, (0, 0), 0.45, 0, 80, "C3", arrow=True)
    compass.text(0.36, -0.4, "+", color="C3", fontsize=14, ha="center", va="center")
    compass.set_xlabel("image x \u2192 (right)", fontsize=9)
    compass.set_ylabel("image y \u2193 (down): angle = atan2(-dy, dx)", fontsize=9)
    compass.set_xticks([])
    compass.set_yticks([])

    # 2. Joint angles: the inner angle at the vertex, 0..180, 180 = straight.
    image_axes(joints, "joint angles: inner angle at the vertex (dot),\n0..180, 180 = straight")
    draw_person(joints)
    for k, name in enumerate(JOINTS):
        spec = ANGLES[name]
        a, vertex, c = (point(p) for p in spec.points)
        start, end = screen_direction(a - vertex), screen_direction(c - vertex)
        sweep = (end - start) % 360
        if sweep > 180:
            start, sweep = end, 360 - sweep
        colour = f"C{k}"
        arc(joints, vertex, 17, start, start + sweep, colour)
        joints.scatter(*vertex, s=60, color=colour, zorder=3)
        middle = np.radians(start + sweep / 2)
        label_at = vertex + 30 * np.array([np.cos(middle), -np.sin(middle)])
        joints.text(*label_at, f"{name}\n{degrees[name]:.0f}", fontsize=8, color=colour, ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))

    # 3. Segment angles: the proximal -> distal direction against the horizontal.
    image_axes(segments, "segment angles: proximal \u2192 distal against the\nhorizontal (trunk: hips \u2192 shoulders, lines: right \u2192 left)")
    draw_person(segments)
    for k, name in enumerate(SEGMENTS):
        spec = ANGLES[name]
        start, end = point(spec.points[0]), point(spec.points[1])
        colour = f"C{k}"
        segments.annotate("", end, start, arrowprops=dict(arrowstyle="-|>", color=colour, lw=2.2), zorder=3)
        segments.plot([start[0], start[0] + 26], [start[1], start[1]], color=colour, linestyle=":", linewidth=1.2)
        value = degrees[name]
        arc(segments, start, 14, 0, value, colour, arrow=abs(value) > 20)
        offset = {"trunk": (-34, 18), "shoulder_line": (-40, -12), "left_upper_arm": (30, 14), "left_forearm": (30, -28),
                  "right_upper_arm": (-46, 12), "right_shank": (-46, 26), "left_thigh": (36, 10)}[name]
        segments.text(start[0] + offset[0], start[1] + offset[1], f"{name}\n{value:+.0f}", fontsize=8, color=colour,
                      ha="center", va="center", bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    figure.savefig(out)


if __name__ == "__main__":
    main(Path(__file__).resolve().parent / "angles.png")
