"""PoseNet decoding on synthetic model outputs with known answers, plus one real-image check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import maximum_filter
from synthetic_fields import STRIDE, duplicate_nose_fields, nearest_cell, person_at, render_fields, uniform_scores

from pose_app.core.skeleton import NUM_KEYPOINTS, PART_TREE_EDGES
from pose_app.errors import PoseAppError
from pose_app.inference.decode import (
    build_part_score_queue,
    decode_multiple_poses,
    decode_single_pose,
    keypoint_points_at_cells,
    keypoint_points_of_cells,
    window_maxima,
)
from pose_app.inference.engine import PoseEngine
from pose_app.io.sources import read_image


def assert_pose_is(keypoints: np.ndarray, person_yx: np.ndarray, person_scores: np.ndarray) -> None:
    np.testing.assert_allclose(keypoints[:, :2], person_yx[:, ::-1], atol=1e-3)
    np.testing.assert_allclose(keypoints[:, 2], person_scores, atol=1e-6)


@pytest.mark.parametrize("map_shape", [(33, 33), (17, 41), (41, 17)])
@pytest.mark.parametrize("num_people", [1, 2, 3])
def test_multi_person_decoding_recovers_every_keypoint(map_shape, num_people):
    if map_shape[1] >= 33:  # side by side
        noses = [(40.3, 80.7), (45.1, 250.2), (35.8, 420.6)][:num_people]
    else:  # one above the other: narrow maps
        noses = [(20.3, 120.7), (260.1, 130.2), (440.8, 125.6)][:num_people]
    people = np.stack([person_at(*nose) for nose in noses])
    scores = uniform_scores(0.95, 0.85, 0.75)[: len(noses)]
    keypoints, pose_scores = decode_multiple_poses(*render_fields(people, scores, map_shape), STRIDE)

    assert keypoints.shape == (len(noses), NUM_KEYPOINTS, 3) and keypoints.dtype == np.float32
    assert pose_scores.shape == (len(noses),) and pose_scores.dtype == np.float32
    for pose, person, person_scores in zip(keypoints, people, scores):
        assert_pose_is(pose, person, person_scores)
    np.testing.assert_allclose(pose_scores, scores.mean(axis=1), atol=1e-6)


def test_keypoints_beyond_the_map_edge_are_decoded_through_clamped_cells():
    map_shape = (17, 33)  # 257 x 513 input pixels
    person = person_at(100.4, 200.3)  # ankles at y ~ 290, below the last row of cells (y = 256)
    keypoints, _ = decode_multiple_poses(*render_fields(person[None], uniform_scores(0.9), map_shape), STRIDE)
    assert len(keypoints) == 1
    assert_pose_is(keypoints[0], person, uniform_scores(0.9)[0])


def test_second_refinement_step_recovers_from_a_far_landing_point():
    # As with PoseNet's training disks, offsets reach at most 40 px. Displacements miss by 50 px,
    # so the first refinement, read up to 61 px away, can stop 21 px short; the second finishes.
    person = person_at(100.4, 250.3)
    far_miss = np.array([50.0, 0.0])
    heatmaps, offsets, fwd, bwd = render_fields(person[None], uniform_scores(0.9), (33, 33), far_miss)
    offset_yx = offsets.reshape(2, NUM_KEYPOINTS, 33, 33)
    offset_yx *= np.minimum(1.0, 40.0 / np.maximum(np.hypot(*offset_yx), 1e-6))
    keypoints, _ = decode_multiple_poses(heatmaps, offsets, fwd, bwd, STRIDE)
    assert len(keypoints) == 1
    assert_pose_is(keypoints[0], person, uniform_scores(0.9)[0])


def test_single_pose_fast_path_takes_each_keypoints_best_cell():
    person = person_at(60.2, 240.9)
    scores = np.linspace(0.6, 0.95, NUM_KEYPOINTS, dtype=np.float32)[None]
    heatmaps, offsets, _, _ = render_fields(person[None], scores, (33, 33))
    keypoints, pose_scores = decode_single_pose(heatmaps, offsets, STRIDE)
    assert keypoints.shape == (1, NUM_KEYPOINTS, 3) and keypoints.dtype == np.float32
    assert pose_scores.shape == (1,) and pose_scores.dtype == np.float32
    assert_pose_is(keypoints[0], person, scores[0])
    assert pose_scores[0] == pytest.approx(scores.mean(), abs=1e-6)


def test_points_at_chosen_cells_are_those_of_the_full_grid():
    rng = np.random.default_rng(1)
    offsets = rng.uniform(-40, 40, (2 * NUM_KEYPOINTS, 9, 14)).astype(np.float32)
    grid = keypoint_points_of_cells(offsets, STRIDE)
    assert grid.shape == (NUM_KEYPOINTS, 9, 14, 2) and grid.dtype == np.float32
    # Cell (i, j) sees keypoint k at (i * stride + offset_y, j * stride + offset_x).
    expected = [2 * STRIDE + offsets[5, 2, 7], 7 * STRIDE + offsets[NUM_KEYPOINTS + 5, 2, 7]]
    np.testing.assert_array_equal(grid[5, 2, 7], expected)
    keypoint_ids = np.arange(NUM_KEYPOINTS)
    rows, cols = rng.integers(0, 9, NUM_KEYPOINTS), rng.integers(0, 14, NUM_KEYPOINTS)
    points = keypoint_points_at_cells(offsets, keypoint_ids, rows, cols, STRIDE)
    assert points.dtype == np.float32
    np.testing.assert_array_equal(points, grid[keypoint_ids, rows, cols])


def test_part_score_queue_holds_local_maxima_above_threshold_best_first():
    people = np.stack([person_at(40.3, 80.7), person_at(45.1, 300.2)])
    scores = np.stack([np.linspace(0.55, 0.95, NUM_KEYPOINTS), np.linspace(0.3, 0.7, NUM_KEYPOINTS)])
    heatmaps = render_fields(people, scores, (33, 33))[0]
    queue_scores, keypoint_ids, cells = build_part_score_queue(heatmaps, 0.5, 1)
    # Every peak scoring >= 0.5 once; the 0.9x neighbour rings (many >= 0.5) are not maxima.
    expected = sorted(
        ((float(s), k, nearest_cell(people[n, k], (33, 33)))
         for n in range(2) for k in range(NUM_KEYPOINTS) if (s := np.float32(scores[n, k])) >= 0.5),
        key=lambda entry: -entry[0],
    )
    assert np.all(np.diff(queue_scores) <= 0)
    found = sorted(zip(keypoint_ids.tolist(), map(tuple, cells.tolist())))
    assert found == sorted((k, c) for _, k, c in expected)
    np.testing.assert_allclose(queue_scores, [s for s, _, _ in expected])


@pytest.mark.parametrize("radius", [0, 1, 2])
@pytest.mark.parametrize("map_shape", [(33, 33), (9, 14), (1, 5), (6, 1)])
def test_window_maxima_match_scipy_maximum_filter(map_shape, radius):
    heatmaps = np.random.default_rng(3).uniform(0, 1, (NUM_KEYPOINTS, *map_shape)).astype(np.float32)
    window = (1, 2 * radius + 1, 2 * radius + 1)
    np.testing.assert_array_equal(
        window_maxima(heatmaps, radius), maximum_filter(heatmaps, size=window, mode="nearest")
    )


def test_two_people_further_apart_than_nms_radius_are_both_found_and_closer_ones_merge():
    # Every keypoint of the second person is 32.5 px to the right of the first person's.
    people = np.stack([person_at(40.3, 200.2), person_at(40.3, 232.7)])
    scores = uniform_scores(0.9, 0.8)
    fields = render_fields(people, scores, (33, 33))
    keypoints, _ = decode_multiple_poses(*fields, STRIDE, nms_radius=20.0)
    assert len(keypoints) == 2
    assert_pose_is(keypoints[0], people[0], scores[0])
    assert_pose_is(keypoints[1], people[1], scores[1])
    keypoints, _ = decode_multiple_poses(*fields, STRIDE, nms_radius=40.0)
    assert len(keypoints) == 1
    assert_pose_is(keypoints[0], people[0], scores[0])


def test_duplicate_root_within_nms_radius_is_suppressed():
    person, fields = duplicate_nose_fields()
    keypoints, scores = decode_multiple_poses(*fields, STRIDE, nms_radius=20.0)
    assert len(keypoints) == 1
    assert_pose_is(keypoints[0], person, uniform_scores(0.9)[0])
    assert scores[0] == pytest.approx(0.9, abs=1e-6)


def test_instance_score_counts_only_keypoints_away_from_earlier_poses():
    person, fields = duplicate_nose_fields()
    keypoints, scores = decode_multiple_poses(*fields, STRIDE, nms_radius=5.0)
    # The duplicate root is 10 px from the nose, so it survives a 5 px radius; its walk lands on
    # the person's other 16 keypoints, which therefore do not count towards its score.
    assert len(keypoints) == 2
    assert_pose_is(keypoints[0], person, uniform_scores(0.9)[0])
    np.testing.assert_allclose(keypoints[1, 0], [person[0, 1] + 10.0, person[0, 0], 0.7], atol=1e-3)
    np.testing.assert_allclose(keypoints[1, 1:, :2], person[1:, ::-1], atol=1e-3)
    np.testing.assert_allclose(scores, [0.9, 0.7 / NUM_KEYPOINTS], atol=1e-6)


def test_max_poses_keeps_the_first_roots_in_score_order():
    people = np.stack([person_at(40.3, 420.6), person_at(45.1, 80.7), person_at(35.8, 250.2)])
    scores = uniform_scores(0.9, 0.8, 0.7)
    fields = render_fields(people, scores, (33, 33))
    keypoints, pose_scores = decode_multiple_poses(*fields, STRIDE, max_poses=2)
    assert keypoints.shape == (2, NUM_KEYPOINTS, 3)
    assert_pose_is(keypoints[0], people[0], scores[0])
    assert_pose_is(keypoints[1], people[1], scores[1])
    np.testing.assert_allclose(pose_scores, [0.9, 0.8], atol=1e-6)


def test_poses_are_sorted_by_pose_score_not_by_root_score():
    # The first person has the single best keypoint (decoded first) but the lower mean score.
    people = np.stack([person_at(40.3, 80.7), person_at(45.1, 300.2)])
    scores = uniform_scores(0.55, 0.8)
    scores[0, 0] = 0.99
    keypoints, pose_scores = decode_multiple_poses(*render_fields(people, scores, (33, 33)), STRIDE)
    assert_pose_is(keypoints[0], people[1], scores[1])
    assert_pose_is(keypoints[1], people[0], scores[0])
    np.testing.assert_allclose(pose_scores, [0.8, scores[0].mean()], atol=1e-6)


def test_threshold_below_every_score_finds_no_pose():
    people = np.stack([person_at(40.3, 80.7), person_at(45.1, 300.2)])
    fields = render_fields(people, uniform_scores(0.45, 0.4), (33, 33))
    keypoints, scores = decode_multiple_poses(*fields, STRIDE)
    assert keypoints.shape == (0, NUM_KEYPOINTS, 3) and keypoints.dtype == np.float32
    assert scores.shape == (0,) and scores.dtype == np.float32
    keypoints, _ = decode_multiple_poses(*fields, STRIDE, part_score_threshold=0.42)
    assert len(keypoints) == 1
    assert_pose_is(keypoints[0], people[0], uniform_scores(0.45)[0])


def test_min_pose_score_drops_weak_poses():
    people = np.stack([person_at(40.3, 80.7), person_at(45.1, 300.2)])
    fields = render_fields(people, uniform_scores(0.9, 0.6), (33, 33))
    assert len(decode_multiple_poses(*fields, STRIDE)[0]) == 2
    keypoints, scores = decode_multiple_poses(*fields, STRIDE, min_pose_score=0.7)
    assert len(keypoints) == 1 and scores[0] == pytest.approx(0.9, abs=1e-6)


def test_offsets_and_displacements_pointing_off_the_map_are_clamped():
    rng = np.random.default_rng(0)
    h, w = 9, 14
    heatmaps = rng.uniform(0, 1, (NUM_KEYPOINTS, h, w)).astype(np.float32)
    offsets = rng.uniform(-2000, 2000, (2 * NUM_KEYPOINTS, h, w)).astype(np.float32)
    fwd, bwd = rng.uniform(-2000, 2000, (2, 2 * len(PART_TREE_EDGES), h, w)).astype(np.float32)
    # Broken displacements only move the landing point; refinement replaces it by a cell's view.
    fwd[0], bwd[len(PART_TREE_EDGES) + 5] = np.nan, np.inf
    keypoints, scores = decode_multiple_poses(
        heatmaps, offsets, fwd, bwd, STRIDE, nms_radius=0.0, max_poses=50
    )
    assert len(keypoints) == 50  # with a zero radius only identical roots suppress each other
    assert np.isfinite(keypoints).all()
    # Every keypoint score is a heatmap value of its keypoint (read at a clamped cell).
    for k in range(NUM_KEYPOINTS):
        assert np.isin(keypoints[:, k, 2], heatmaps[k]).all()
    assert np.all(np.diff(scores) <= 0)
    single, _ = decode_single_pose(heatmaps, offsets, STRIDE)
    assert np.isfinite(single).all()


def test_fields_that_break_the_contract_are_rejected():
    heatmaps, offsets, fwd, bwd = render_fields(person_at(40.3, 80.7)[None], uniform_scores(0.9), (33, 33))
    with pytest.raises(PoseAppError, match="offsets"):
        decode_single_pose(heatmaps, offsets[:, :32], STRIDE)
    with pytest.raises(PoseAppError, match="displacements"):
        decode_multiple_poses(heatmaps, offsets, fwd[:16], bwd, STRIDE)
    with pytest.raises(PoseAppError, match="stride"):
        decode_multiple_poses(heatmaps, offsets, fwd, bwd, 0)


def test_real_model_finds_the_three_people_of_the_group_image(group_image):
    # The app's own preprocessing and heads-only session, then the multi-person decoder.
    engine = PoseEngine("posenet-075", provider="cpu")
    out = engine.infer(read_image(group_image.path), 513)
    stride = engine.info.output_stride
    keypoints, scores = decode_multiple_poses(
        out.heatmaps, out.heads["offsets"], out.heads["displacement_fwd"], out.heads["displacement_bwd"], stride, min_pose_score=0.25
    )
    resized_w, resized_h = out.transform.resized_size
    confident = keypoints[:, :, 2] >= 0.5
    xs, ys = keypoints[:, :, 0][confident], keypoints[:, :, 1][confident]
    assert len(scores) >= 3, json.dumps(scores.tolist())
    assert confident.sum(axis=1).min() >= 5  # each kept pose has several sure keypoints
    assert np.all((xs > -stride) & (xs < resized_w + stride) & (ys > -stride) & (ys < resized_h + stride))
    # One pose per person, each on its own photo (the decoder works in input pixels).
    in_frame = np.concatenate([out.transform.to_frame(keypoints[..., :2]), keypoints[..., 2:]], axis=-1)
    people = [group_image.actor_of(0, pose, min_score=0.5) for pose in in_frame]
    assert sorted(people[:3]) == [0, 1, 2], people
