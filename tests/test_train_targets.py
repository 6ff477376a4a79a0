"""PoseNet training targets and the keypoint-aware flip, against hand-computed small cases."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torchvision import tv_tensors  # noqa: E402

from models.train.dataset import KeypointAugmenter, horizontal_flip  # noqa: E402
from models.train.targets import build_targets  # noqa: E402
from pose_app.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS, PART_TREE_EDGES  # noqa: E402

STRIDE = 16
NOSE, LEFT_EYE = KEYPOINT_INDEX["nose"], KEYPOINT_INDEX["left_eye"]
NOSE_TO_LEFT_EYE = PART_TREE_EDGES.index((NOSE, LEFT_EYE))
NUM_EDGES = len(PART_TREE_EDGES)


def people(*keypoint_lists: dict[int, tuple[float, float]]) -> np.ndarray:
    """(P, 17, 3) COCO keypoints from {index: (x, y)} per person (others unlabelled)."""
    keypoints = np.zeros((len(keypoint_lists), NUM_KEYPOINTS, 3), np.float32)
    for person, points in enumerate(keypoint_lists):
        for index, (x, y) in points.items():
            keypoints[person, index] = (x, y, 2)
    return keypoints


def test_disc_holds_the_cells_within_the_radius():
    # Nose at (x=16, y=16) = cell (1, 1); radius 16 reaches the 4 axis neighbours (distance 16)
    # but not the diagonal ones (22.6).
    targets = build_targets(people({NOSE: (16, 16)}), (4, 4), STRIDE, disc_radius=16)
    expected = np.zeros((4, 4), np.float32)
    expected[1, 1] = expected[0, 1] = expected[2, 1] = expected[1, 0] = expected[1, 2] = 1
    np.testing.assert_array_equal(targets.heatmaps[NOSE], expected)
    np.testing.assert_array_equal(targets.offsets_mask[NOSE], expected)
    assert targets.heatmaps[LEFT_EYE].sum() == 0  # unlabelled: no disc
    np.testing.assert_array_equal(targets.heatmap_weights, 1)


def test_offsets_point_from_each_disc_cell_to_the_keypoint():
    targets = build_targets(people({NOSE: (20, 12)}), (3, 3), STRIDE, disc_radius=16)
    offset_y, offset_x = targets.offsets[NOSE], targets.offsets[NUM_KEYPOINTS + NOSE]
    # Cell (1, 1) sits at (y=16, x=16); cell (0, 1) at (0, 16); cell (1, 2) at (16, 32).
    assert (offset_y[1, 1], offset_x[1, 1]) == (-4, 4)
    assert (offset_y[0, 1], offset_x[0, 1]) == (12, 4)
    assert (offset_y[1, 2], offset_x[1, 2]) == (-4, -12)
    # Outside the disc (cell (2, 2) is 25.3 px away) the target is zero and masked out.
    assert targets.offsets_mask[NOSE, 2, 2] == 0 and offset_y[2, 2] == 0


def test_displacements_of_one_edge_go_between_the_two_keypoints():
    keypoints = people({NOSE: (16, 16), LEFT_EYE: (40, 10)})
    targets = build_targets(keypoints, (4, 4), STRIDE, disc_radius=16)
    fwd_y = targets.displacement_fwd[NOSE_TO_LEFT_EYE]
    fwd_x = targets.displacement_fwd[NUM_EDGES + NOSE_TO_LEFT_EYE]
    nose_disc = targets.heatmaps[NOSE] > 0
    np.testing.assert_array_equal(targets.displacement_fwd_mask[NOSE_TO_LEFT_EYE] > 0, nose_disc)
    # On the nose's disc: left eye - nose = (y -6, x +24); zero elsewhere.
    np.testing.assert_array_equal(fwd_y, np.where(nose_disc, -6, 0))
    np.testing.assert_array_equal(fwd_x, np.where(nose_disc, 24, 0))
    eye_disc = targets.heatmaps[LEFT_EYE] > 0
    bwd_y = targets.displacement_bwd[NOSE_TO_LEFT_EYE]
    bwd_x = targets.displacement_bwd[NUM_EDGES + NOSE_TO_LEFT_EYE]
    np.testing.assert_array_equal(bwd_y, np.where(eye_disc, 6, 0))
    np.testing.assert_array_equal(bwd_x, np.where(eye_disc, -24, 0))
    # Every other edge has an unlabelled end: fully masked.
    others = np.delete(targets.displacement_fwd_mask, NOSE_TO_LEFT_EYE, axis=0)
    assert others.sum() == 0


def test_displacement_is_masked_when_the_other_end_is_unlabelled():
    targets = build_targets(people({NOSE: (16, 16)}), (4, 4), STRIDE, disc_radius=16)
    assert targets.displacement_fwd_mask.sum() == 0 and targets.displacement_bwd_mask.sum() == 0


def test_overlapping_discs_belong_to_the_nearest_person():
    # Noses at x=16 and x=56 on row y=16: cell (1, 2) at x=32 is 16 px from the first and
    # 24 px from the second, cell (1, 3) at x=48 is 8 px from the second.
    targets = build_targets(people({NOSE: (16, 16)}, {NOSE: (56, 16)}), (3, 5), STRIDE, disc_radius=32)
    offset_x = targets.offsets[NUM_KEYPOINTS + NOSE]
    assert offset_x[1, 2] == 16 - 32
    assert offset_x[1, 3] == 56 - 48


def test_ignore_mask_zeroes_the_heatmap_weight_of_its_cells():
    ignore = np.zeros((49, 49), np.uint8)
    ignore[30:, 30:] = 1  # covers cells (2, 2), (2, 3), (3, 2), (3, 3) at 32 and 48 px
    targets = build_targets(people({NOSE: (8, 8)}), (4, 4), STRIDE, disc_radius=16, ignore_mask=ignore)
    expected = np.ones((4, 4), np.float32)
    expected[2:, 2:] = 0
    for weights in targets.heatmap_weights:
        np.testing.assert_array_equal(weights, expected)


def test_no_people_give_negative_heatmaps_and_empty_masks():
    targets = build_targets(np.zeros((0, NUM_KEYPOINTS, 3)), (3, 3), STRIDE)
    assert targets.heatmaps.sum() == 0 and targets.offsets_mask.sum() == 0
    assert targets.heatmap_weights.shape == (NUM_KEYPOINTS, 3, 3) and targets.heatmap_weights.min() == 1


def test_flip_mirrors_x_and_swaps_left_and_right_keypoints():
    width, height = 10, 6
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    image[:, 1, 2] = 255  # a bright pixel at x=2
    left_shoulder, right_shoulder = KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["right_shoulder"]
    points = torch.zeros(1, NUM_KEYPOINTS, 2)
    points[0, left_shoulder] = torch.tensor([2.0, 1.0])
    points[0, NOSE] = torch.tensor([4.5, 3.0])
    visibility = torch.zeros(1, NUM_KEYPOINTS)
    visibility[0, [left_shoulder, NOSE]] = 2
    mask = tv_tensors.Mask(torch.zeros(1, height, width, dtype=torch.uint8))
    keypoints = tv_tensors.KeyPoints(points, canvas_size=(height, width))

    image2, points2, visibility2, mask2 = horizontal_flip(tv_tensors.Image(image), keypoints, visibility, mask)

    # Pixel centres: x -> W - 1 - x, so the bright pixel moves to x=7 with its keypoint.
    assert image2[0, 1, 7] == 255 and image2[0, 1, 2] == 0
    np.testing.assert_allclose(points2[0, right_shoulder].numpy(), [7.0, 1.0])
    np.testing.assert_allclose(points2[0, NOSE].numpy(), [4.5, 3.0])
    assert visibility2[0, right_shoulder] == 2 and visibility2[0, left_shoulder] == 0
    assert mask2.shape == mask.shape


def test_letterbox_maps_keypoints_like_the_app():
    # A 40x20 (w x h) image letterboxed to 81: the same geometry as the app's FrameTransform.
    from pose_app.engine import input_transform

    image = torch.zeros(3, 20, 40, dtype=torch.uint8)
    keypoints = people({NOSE: (10.0, 5.0), LEFT_EYE: (39.0, 19.0)})[0:1]
    out_image, out_keypoints, out_mask = KeypointAugmenter(81, augment=None)(
        image, keypoints, np.zeros((20, 40), np.uint8)
    )
    app = input_transform(40, 20, 81, STRIDE)
    assert out_image.shape == (3, 81, 81) and out_mask.shape == (81, 81)
    np.testing.assert_allclose(out_keypoints[0, [NOSE, LEFT_EYE], :2], app.to_input(keypoints[0, [NOSE, LEFT_EYE], :2]), atol=1e-4)
    resized_w, resized_h = app.resized_size
    assert out_image[0, resized_h, 0] == 128  # padding below the picture is mid-grey, as in the app
