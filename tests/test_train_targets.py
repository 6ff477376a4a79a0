"""PoseNet training targets and the keypoint-aware flip, against hand-computed small cases."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torchvision import tv_tensors  # noqa: E402

from models.train.dataset import KeypointAugmenter, horizontal_flip  # noqa: E402
from models.train.targets import build_targets  # noqa: E402
from pose_app.core.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS, PART_TREE_EDGES

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


def textured_image(height: int, width: int) -> np.ndarray:
    """A BGR uint8 picture full of fine detail (random pixels), where antialiasing or nearest
    interpolation would change the resized result visibly."""
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_training_input_is_the_apps_network_input_padded_to_a_square():
    # A 200x90 (w x h) picture letterboxed to 81: downscaling by 2.5 with cv2 INTER_LINEAR, as
    # the app does (torchvision's antialiased resize differs by tens of grey levels here).
    from pose_app.inference.families.posenet import PAD_VALUE, input_transform
    from pose_app.inference.preprocess import preprocess

    image = textured_image(90, 200)
    keypoints = people({NOSE: (10.0, 5.0), LEFT_EYE: (199.0, 89.0)})[0:1]
    out_image, out_keypoints, out_mask = KeypointAugmenter(81, STRIDE, augment=None)(
        image, keypoints, np.zeros((90, 200), np.uint8)
    )
    app = input_transform(200, 90, 81, STRIDE)
    app_input = preprocess(image, app, PAD_VALUE)[0]
    input_w, input_h = app.input_size
    assert out_image.dtype == torch.float32 and out_image.shape == (3, 81, 81) and out_mask.shape == (81, 81)
    np.testing.assert_allclose(out_image[:, :input_h, :input_w].numpy(), app_input, atol=1e-6)
    assert (out_image[:, input_h:, :] == PAD_VALUE).all()  # the square's extra rows: the app's grey
    np.testing.assert_allclose(out_keypoints[0, [NOSE, LEFT_EYE], :2], app.to_input(keypoints[0, [NOSE, LEFT_EYE], :2]), atol=1e-4)


def test_augmentation_jitters_the_picture_only_and_warps_bilinearly():
    from models.train.dataset import AugmentConfig
    from pose_app.inference.families.posenet import PAD_VALUE, input_transform

    image = textured_image(40, 80)  # resized to 81 x 41: rows 41.. are padding
    still = AugmentConfig(scale=(1.0, 1.0), rotation_deg=0.0, translate=0.0, flip_probability=0.0)
    torch.manual_seed(0)
    jittered, _, _ = KeypointAugmenter(81, STRIDE, still)(image, people({NOSE: (5.0, 5.0)}), np.zeros((40, 80), np.uint8))
    plain, _, _ = KeypointAugmenter(81, STRIDE, None)(image, people({NOSE: (5.0, 5.0)}), np.zeros((40, 80), np.uint8))
    resized_w, resized_h = input_transform(80, 40, 81, STRIDE).resized_size
    assert not torch.equal(jittered[:, :resized_h, :resized_w], plain[:, :resized_h, :resized_w])
    # The pad is never jittered (the identity warp's float arithmetic leaves ~1e-5 differences).
    torch.testing.assert_close(jittered[:, resized_h:, :], torch.full_like(jittered[:, resized_h:, :], PAD_VALUE))
    # A sub-pixel shift with bilinear interpolation blends neighbours into values no input pixel
    # had (nearest would only copy input values).
    shifted = AugmentConfig(scale=(1.0, 1.0), rotation_deg=0.0, translate=0.01, flip_probability=0.0,
                            brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    torch.manual_seed(1)
    warped, _, _ = KeypointAugmenter(81, STRIDE, shifted)(image, people({NOSE: (5.0, 5.0)}), np.zeros((40, 80), np.uint8))
    picture = warped[:, 2 : resized_h - 2, 2 : resized_w - 2]
    assert (picture != picture.round()).float().mean() > 0.5


def test_augmentation_moves_keypoints_with_the_picture():
    """A bright 5x5 block at a keypoint ends up where the augmented keypoint says (its centroid)."""
    from models.train.dataset import AugmentConfig

    image = np.zeros((120, 200, 3), np.uint8)
    image[59:64, 149:154] = 255  # centred on pixel (151, 61)
    keypoints = people({NOSE: (151.0, 61.0)})
    geometry_only = AugmentConfig(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    for seed in range(4):
        torch.manual_seed(seed)
        out_image, out_keypoints, _ = KeypointAugmenter(257, STRIDE, geometry_only)(
            image, keypoints, np.zeros((120, 200), np.uint8)
        )
        grey = out_image[0].numpy()
        weight = np.where(grey > 140, grey - 127.5, 0)  # the block, not the 127.5 pad or black
        ys, xs = np.nonzero(weight)
        centroid = np.array([(xs * weight[ys, xs]).sum(), (ys * weight[ys, xs]).sum()]) / weight[ys, xs].sum()
        np.testing.assert_allclose(out_keypoints[0, NOSE, :2], centroid, atol=0.25)
