"""Crop refinement: crop geometry, one batch for all crops, matching, and the accuracy it buys."""

import numpy as np
import pytest
from media import photo
from support import COCO_DEV, requires_shared

from pose_app.core.skeleton import KEYPOINT_INDEX
from pose_app.inference.crops import CropSettings, crop_batch, crop_input_size, crop_transform
from pose_app.inference.estimator import PoseEstimator
from pose_app.inference.families.posenet import PAD_VALUE
from pose_app.inference.identity import best_match, duplicate_mask, lost_joints
from pose_app.inference.pipeline import build_pipeline
from pose_app.inference.refine import CropRefiner, merge_refined
from pose_app.io.sources import read_image


def standing_pose(x0: float, y0: float, height: float, score: float = 0.9) -> np.ndarray:
    """A (17, 3) pose: keypoints spread over a box `height` tall and half as wide at (x0, y0)."""
    rng = np.random.default_rng(int(x0 * 7 + y0))
    xy = np.stack([x0 + rng.uniform(0, height / 2, 17), y0 + np.linspace(0, height, 17)], axis=1)
    return np.concatenate([xy, np.full((17, 1), score)], axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------- geometry


def test_crop_input_size_is_valid_and_keeps_the_crop_shape():
    assert crop_input_size(CropSettings(resolution=257, aspect=0.75), 16) == (193, 257)
    assert crop_input_size(CropSettings(resolution=353, aspect=0.75), 8) == (265, 353)


def test_crop_box_is_expanded_brought_to_the_input_aspect_and_centred():
    settings = CropSettings(expand=1.25, aspect=0.75, min_height_fraction=0.0)
    # A tall box 100 wide, 400 tall, centre (250, 300) in pixel coordinates.
    transform = crop_transform(np.array([200.0, 100.0, 300.0, 500.0]), (1000, 1000), (193, 257), settings)
    x0, y0, x1, y1 = transform.box
    assert y1 - y0 == pytest.approx(500.0)  # 400 x 1.25
    assert (x1 - x0) / (y1 - y0) == pytest.approx(193 / 257)  # the input's aspect, not the box's
    assert ((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5) == pytest.approx((250.0, 300.0))
    # A wide box (only shoulders and elbows found): the height grows to keep the aspect.
    wide = crop_transform(np.array([0.0, 0.0, 300.0, 60.0]), (1000, 1000), (193, 257), settings)
    x0, y0, x1, y1 = wide.box
    assert x1 - x0 == pytest.approx(375.0) and y1 - y0 == pytest.approx(375.0 * 257 / 193)


def test_a_small_pose_gets_at_least_the_minimum_crop_height():
    settings = CropSettings(min_height_fraction=0.2)
    face = crop_transform(np.array([400.0, 100.0, 420.0, 115.0]), (1280, 720), (193, 257), settings)
    x0, y0, x1, y1 = face.box
    assert y1 - y0 == pytest.approx(0.2 * 1280)  # not a 10x zoom on a 15 px face
    assert face.scale == pytest.approx(257 / 256.0)


def test_a_crop_enlarges_the_frame_at_most_max_zoom():
    settings = CropSettings(min_height_fraction=0.0)
    small = np.array([100.0, 100.0, 140.0, 180.0])  # 80 px tall: 257 / (80 x 1.25) = 2.6x
    assert crop_transform(small, (426, 240), (193, 257), settings).scale == pytest.approx(2.57, abs=0.01)
    capped = crop_transform(small, (426, 240), (193, 257), settings, max_zoom=1.5)
    assert capped.scale == pytest.approx(1.5)
    x0, y0, x1, y1 = capped.box
    assert ((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5) == pytest.approx((120.0, 140.0))  # same centre


def test_tracked_crops_are_cut_around_body_boxes_with_the_tracked_zoom_limit(engine):
    refiner = CropRefiner(engine, CropSettings(tracked_max_zoom=1.5))
    pose = standing_pose(200, 100, 80)
    pose[13:, 2] = 0.05  # legs faded: the confident keypoints end at y ~ 165
    body = np.array([[190.0, 100.0, 250.0, 180.0]])  # the track's body box still holds them
    (two_pass,) = refiner.crops_for((240, 426, 3), pose[None])
    (tracked,) = refiner.crops_for((240, 426, 3), pose[None], body)
    assert two_pass.scale > 1.5 and tracked.scale == pytest.approx(1.5)
    assert tracked.box[1] <= 100 and tracked.box[3] >= 180


def test_joints_lost_since_the_last_full_pass_are_noticed():
    before = standing_pose(0, 0, 100)[None]
    reference = before[:, :, 2] >= 0.3
    after = before.copy()
    after[0, KEYPOINT_INDEX["left_knee"], 2] = 0.1
    assert not lost_joints(reference, after).any()  # one joint flickers: no
    after[0, KEYPOINT_INDEX["left_ankle"], 2] = 0.1
    assert lost_joints(reference, after).all()  # a knee and an ankle: yes
    arms = before.copy()
    arms[0, [KEYPOINT_INDEX["left_wrist"], KEYPOINT_INDEX["right_elbow"]], 2] = 0.1
    assert lost_joints(reference, arms).all()  # any two joints, not only legs
    never_had = before.copy()
    never_had[0, 13:, 2] = 0.1
    assert not lost_joints(never_had[:, :, 2] >= 0.3, never_had).any()  # joints never seen cannot be lost


def test_crop_coordinates_round_trip_and_match_the_pixels_cut():
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[120, 210] = (0, 0, 255)  # one red pixel at x 210, y 120
    transform = crop_transform(np.array([180.0, 80.0, 260.0, 200.0]), (400, 300), (193, 257), CropSettings())
    point = np.array([[210.0, 120.0], [3.25, 299.5]])
    np.testing.assert_allclose(transform.to_frame(transform.to_input(point)), point, atol=1e-4)
    batch = crop_batch(frame, [transform], flip=False)
    assert batch.shape == (1, 3, 257, 193) and batch.dtype == np.float32
    red = batch[0, 0]  # RGB order: channel 0 is red
    row, col = np.unravel_index(red.argmax(), red.shape)
    expected_x, expected_y = transform.to_input(np.array([210.0, 120.0]))
    # The bright spot (a pixel magnified ~2x) is centred where the transform maps the pixel.
    spot = red > red.max() / 2
    rows, cols = np.nonzero(spot)
    assert abs(cols.mean() - expected_x) < 0.6 and abs(rows.mean() - expected_y) < 0.6
    assert (row, col) in set(zip(rows.tolist(), cols.tolist()))


def test_crop_outside_the_frame_is_the_networks_zero_and_mirror_views_are_flipped():
    frame = np.full((100, 100, 3), 255, np.uint8)
    transform = crop_transform(np.array([-80.0, -80.0, 20.0, 20.0]), (100, 100), (65, 97), CropSettings())
    batch = crop_batch(frame, [transform], flip=True)
    assert batch.shape[0] == 2
    assert batch[0, :, 0, 0].tolist() == [PAD_VALUE] * 3  # top-left corner lies outside the frame
    assert batch[0, :, -1, -1].tolist() == [255.0] * 3  # bottom-right corner lies inside
    np.testing.assert_array_equal(batch[1], batch[0][:, :, ::-1])


# ---------------------------------------------------------------------------------- matching


def test_matching_picks_the_crop_pose_of_the_person_the_crop_was_cut_around():
    target = standing_pose(100, 50, 300)
    # Two people overlapping in the crop: the neighbour stands 60 px to the right and is
    # listed first (decoders return the best-scoring person first).
    neighbour = standing_pose(160, 40, 310)
    refined_target = target + np.array([3.0, -2.0, 0.0], np.float32)
    assert best_match(target, np.stack([neighbour, refined_target])) == 1
    assert best_match(target, np.stack([refined_target, neighbour])) == 0


def test_a_second_decoding_of_the_same_person_is_a_duplicate():
    person = standing_pose(100, 50, 300)
    second = person + np.array([2.0, 1.0, -0.2], np.float32)  # the same joints, decoded again
    neighbour = standing_pose(400, 60, 300)
    assert duplicate_mask(np.stack([person, neighbour, second])).tolist() == [False, False, True]
    assert duplicate_mask(person[None]).tolist() == [False]


def test_a_keypoint_the_crop_barely_sees_keeps_its_first_pass_position():
    first_pass = standing_pose(100, 50, 300)[None]
    refined = first_pass + np.array([5.0, 5.0, 0.0], np.float32)
    refined[0, 9, 2] = 0.3  # the crop's left wrist: a third of the first pass's 0.9
    refined[0, 10, 2] = 0.5  # its right wrist: over half of it
    merged = merge_refined(first_pass, refined)
    np.testing.assert_array_equal(merged[0, 9], first_pass[0, 9])
    np.testing.assert_array_equal(merged[0, 10], refined[0, 10])
    np.testing.assert_array_equal(merged[0, :9], refined[0, :9])


def test_matching_refuses_a_crop_pose_of_someone_else():
    target = standing_pose(100, 50, 300)
    elsewhere = standing_pose(900, 600, 200)
    assert best_match(target, elsewhere[None]) is None
    assert best_match(target, np.zeros((0, 17, 3), np.float32)) is None
    # The same person a little shifted is matched, whatever comes before it in the candidates.
    assert best_match(target, np.stack([elsewhere, standing_pose(104, 53, 300)])) == 1


# ---------------------------------------------------------------------------------- real inference


def test_all_crops_of_a_frame_run_as_one_batch_with_the_same_poses_as_one_by_one(engine, group_image):
    image = read_image(group_image.path)
    refiner = CropRefiner(engine)
    first_pass = PoseEstimator(engine, 513).estimate(image)
    assert len(first_pass) == 3
    transforms = refiner.crops_for(image.shape, first_pass.keypoints)
    batched, _ = refiner.run_crops(image, transforms)
    for transform, (keypoints, scores) in zip(transforms, batched):
        alone, _ = refiner.run_crops(image, [transform])
        np.testing.assert_allclose(alone[0][0], keypoints, atol=2e-3)
        np.testing.assert_allclose(alone[0][1], scores, atol=1e-5)


def test_refinement_keeps_each_person_and_lands_inside_their_photo(engine, group_image):
    image = read_image(group_image.path)
    first_pass = PoseEstimator(engine, 257).estimate(image)
    refined, scores, _ = CropRefiner(engine).refine(image, first_pass.keypoints, first_pass.scores)
    np.testing.assert_array_equal(scores, first_pass.scores)  # still images keep the first pass's
    assert refined.shape == first_pass.keypoints.shape
    actors = sorted(group_image.actor_of(0, pose) for pose in refined)
    assert actors == [0, 1, 2]  # each refined pose still on its own person
    # The crops see each face at about twice the size: the refined nose is confident.
    assert (refined[:, 0, 2] > 0.8).all()


def test_mirrored_input_keeps_refined_labels_anatomical(engine):
    image = photo()
    plain = PoseEstimator(engine, 257).estimate(image)
    plain_refined, _, _ = CropRefiner(engine).refine(image, plain.keypoints, plain.scores)
    mirrored_estimator = PoseEstimator(engine, 257, mirrored_input=True)
    mirrored = mirrored_estimator.estimate(image)
    mirrored_refined, _, _ = CropRefiner(engine, mirrored_input=True).refine(image, mirrored.keypoints, mirrored.scores)
    # The same pixels, labelled the other way round: left eye <-> right eye, and so on.
    np.testing.assert_allclose(mirrored_refined[0, 1, :2], plain_refined[0, 2, :2], atol=1e-3)
    np.testing.assert_allclose(mirrored_refined[0, 5, :2], plain_refined[0, 6, :2], atol=1e-3)


@requires_shared
def test_refinement_raises_coco_ap_over_the_single_pass(engine):
    """A real comparison on 12 coco-dev images: the same first pass, with and without crops."""
    from pose_app.analysis.evaluate import (
        coco_keypoint_ap,
        first_images_by_id,
        load_ground_truth,
    )
    from pose_app.inference.config import PipelineConfig
    from pose_app.run.evaluate_run import run_detection

    ground_truth = load_ground_truth(COCO_DEV / "person_keypoints.json")
    image_ids = [image["id"] for image in first_images_by_id(ground_truth["images"], 12)]
    aps = {}
    for refine in (False, True):
        config = PipelineConfig(model="posenet-075", provider="cpu", threads=2, resolution=353, refine=refine)
        records, _ = run_detection(build_pipeline(config, is_still=True, engine=engine), ground_truth, COCO_DEV / "images", 12)
        aps[refine] = coco_keypoint_ap(ground_truth, records, image_ids)["AP"]
    assert aps[True] > aps[False] + 0.05, aps
