"""Drawing: colours per id, what is drawn where, hidden low-score keypoints, mirrored display."""

from __future__ import annotations

import numpy as np

from pose_app.core.geometry import mirror_x
from pose_app.core.poses import MIN_KEYPOINT_SCORE, FramePoses
from pose_app.core.skeleton import KEYPOINT_INDEX
from pose_app.draw.render import OverlayStyle, draw_poses, label_boxes, person_color
from pose_app.inference.families.posenet import input_transform

WIDTH, HEIGHT = 200, 120


def one_pose(points: dict[str, tuple[float, float, float]], person_id: int = 3) -> FramePoses:
    """A pose whose listed keypoints have (x, y, score); the others score 0."""
    keypoints = np.zeros((1, 17, 3), np.float32)
    for name, value in points.items():
        keypoints[0, KEYPOINT_INDEX[name]] = value
    return FramePoses(
        keypoints=keypoints,
        scores=np.array([0.8], np.float32),
        ids=np.array([person_id], np.int64),
        heatmaps=np.zeros((17, 8, 13), np.float32),
        features={},
        transform=input_transform(WIDTH, HEIGHT, 193, 16),
    )


def colored_pixels(image: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """(N, 2) x, y of pixels that are exactly `color`."""
    ys, xs = np.nonzero(np.all(image == color, axis=-1))
    return np.stack([xs, ys], axis=-1)


def test_person_colors_are_stable_and_distinct():
    # Id 0 has hue 0 (red) at saturation 0.85: BGR (38, 38, 255); the others step the hue by the
    # golden ratio's fraction, so an id keeps its colour whoever else is in the picture.
    assert person_color(0) == (38, 38, 255)
    colors = [person_color(i) for i in range(8)]
    assert len(set(colors)) == 8
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colors)


def test_bone_is_drawn_between_its_keypoints_in_the_person_color():
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pose = one_pose({"left_shoulder": (40, 30, 0.9), "left_elbow": (140, 90, 0.9)})
    draw_poses(image, pose, OverlayStyle(ids=False))
    assert len(colored_pixels(image, person_color(3))) > 10  # the dots' centres: exact colour
    # Every touched pixel (anti-aliased edges included) lies on the segment, within the line
    # width and the dot radius, and the segment is covered without gaps.
    ys, xs = np.nonzero(image.any(axis=-1))
    pixels = np.stack([xs, ys], axis=-1)
    start, end = np.array([40.0, 30.0]), np.array([140.0, 90.0])
    length = np.linalg.norm(end - start)
    direction = (end - start) / length
    along = (pixels - start) @ direction
    across = np.abs((pixels - start) @ np.array([-direction[1], direction[0]]))
    assert across.max() <= 4 and along.min() >= -4 and along.max() <= length + 4
    assert np.diff(np.sort(along)).max() < 1.5


def test_low_score_keypoints_and_their_bones_are_hidden():
    # The default style hides keypoints below the app-wide MIN_KEYPOINT_SCORE.
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    just_below = MIN_KEYPOINT_SCORE - 0.01
    pose = one_pose({"left_shoulder": (40, 30, MIN_KEYPOINT_SCORE), "left_elbow": (140, 90, just_below)})
    draw_poses(image, pose, OverlayStyle(ids=False))
    pixels = colored_pixels(image, person_color(3))
    assert len(pixels) > 0
    assert np.linalg.norm(pixels - [40, 30], axis=1).max() <= 4  # only the shoulder's dot
    draw_poses(image, pose, OverlayStyle(ids=False, min_keypoint_score=just_below))
    assert np.linalg.norm(colored_pixels(image, person_color(3)) - [40, 30], axis=1).max() > 90


def test_nothing_is_drawn_for_no_people_or_all_options_off():
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pose = one_pose({"left_shoulder": (40, 30, 0.9), "left_elbow": (140, 90, 0.9)})
    draw_poses(image, pose, OverlayStyle(points=False, bones=False, ids=False, boxes=False))
    empty = FramePoses(pose.keypoints[:0], pose.scores[:0], pose.ids[:0], pose.heatmaps, {}, pose.transform)
    draw_poses(image, empty)
    assert not image.any()


def test_box_and_id_label_are_drawn():
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pose = one_pose({"nose": (60, 50, 0.9), "left_ankle": (120, 110, 0.9)}, person_id=11)
    draw_poses(image, pose, OverlayStyle(points=False, bones=False, ids=False, boxes=True))
    pixels = colored_pixels(image, person_color(11))
    assert (pixels.min(axis=0) == [60, 50]).all() and (pixels.max(axis=0) == [120, 110]).all()
    labelled = np.zeros_like(image)
    draw_poses(labelled, pose, OverlayStyle(points=False, bones=False, ids=True))
    ys = np.nonzero(labelled.any(axis=-1))[0]
    assert len(ys) > 0 and ys.max() < 50  # the id sits above the person


def test_mirror_draws_at_flipped_x():
    pose = one_pose({"left_shoulder": (40, 30, 0.9), "left_elbow": (140, 90, 0.9)})
    plain = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    draw_poses(plain, pose, OverlayStyle(ids=False))
    mirrored = np.zeros_like(plain)
    draw_poses(mirrored, pose, OverlayStyle(ids=False), mirror=True)
    # Drawing mirrored equals flipping the plain drawing (up to anti-aliasing rounding).
    assert np.abs(mirrored.astype(int) - plain[:, ::-1].astype(int)).mean() < 1.0
    np.testing.assert_allclose(mirror_x(pose.keypoints, WIDTH)[0, 5], [WIDTH - 1 - 40, 30, 0.9], rtol=1e-6)


def test_angle_labels_at_the_same_joint_never_overlap():
    # A side view: both knees (and hips, ankles) on the same spot; the knees bent differently.
    side = {}
    for joint, xy in (("hip", (100.0, 30.0)), ("knee", (110.0, 60.0)), ("ankle", (100.0, 90.0))):
        side[f"left_{joint}"] = (*xy, 0.9)
        side[f"right_{joint}"] = (xy[0] + (12.0 if joint == "ankle" else 1.0), xy[1], 0.9)
    poses = one_pose(side)
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    draw_poses(image, poses, OverlayStyle(points=False, bones=False, ids=False, boxes=False,
                                          angles=("left_knee", "right_knee")))
    patch = np.any(image != 0, axis=-1)  # the patches and their numbers: nothing else is drawn
    # Two separate dark patches (one per number), not one patch with the numbers run together.
    from scipy.ndimage import label

    _, count = label(patch)
    assert count == 2
    boxes = label_boxes([(110.0, 60.0), (111.0, 60.0), (110.0, 61.0)], [(20, 10)] * 3, 2)
    for k, first in enumerate(boxes):
        for second in boxes[k + 1:]:
            assert first[2] < second[0] or second[2] < first[0] or first[3] < second[1] or second[3] < first[1]
    assert boxes[0][0] > 110 and boxes[0][3] < 60  # the first where it always was: above right of the joint
