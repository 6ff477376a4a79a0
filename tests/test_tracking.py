"""PoseTracker on synthetic trajectories with known identities, its similarity measures, and on
real decode and inference: a generated clip whose script says who is where (tests/media.py)."""

import numpy as np
import pytest
from support import requires_shared

from pose_app.core.matching import gated_optimal_assignment
from pose_app.core.similarity import box_iou, keypoint_boxes, object_keypoint_similarity, pose_similarity
from pose_app.core.skeleton import NUM_KEYPOINTS, OKS_SIGMAS
from pose_app.inference.engine import PoseEngine
from pose_app.inference.estimator import PoseEstimator
from pose_app.inference.smoothing import PoseSmoother
from pose_app.inference.tracking import JOINT_MEMORY_FRAMES, PoseTracker
from pose_app.io.sources import open_source

# A standing person one unit tall, top of the head at y = 0, centred on x = 0 (COCO order).
UPRIGHT = np.array(
    [
        (0.0, 0.05), (-0.02, 0.03), (0.02, 0.03), (-0.05, 0.04), (0.05, 0.04),
        (-0.12, 0.2), (0.12, 0.2), (-0.15, 0.35), (0.15, 0.35), (-0.16, 0.5), (0.16, 0.5),
        (-0.08, 0.5), (0.08, 0.5), (-0.08, 0.72), (0.08, 0.72), (-0.08, 0.95), (0.08, 0.95),
    ]
)


def person(x: float, y_top: float, height: float, score: float = 0.9) -> np.ndarray:
    """A synthetic pose (17, 3) of a person `height` px tall, centred on x, head top at y_top."""
    xy = UPRIGHT * height + (x, y_top)
    return np.concatenate([xy, np.full((NUM_KEYPOINTS, 1), score)], axis=1).astype(np.float32)


def frame(*poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keypoints (P, 17, 3), scores (P,)) for the given poses, in that order."""
    keypoints = np.stack(poses) if poses else np.zeros((0, NUM_KEYPOINTS, 3), np.float32)
    return keypoints, keypoints[:, :, 2].mean(axis=1)


def test_two_people_crossing_keep_their_ids_whatever_the_input_order():
    # A walks right, B (a bit further from the camera: smaller, higher) walks left; they pass
    # through each other around frame 20, with 2 px of detector noise on every keypoint.
    rng = np.random.default_rng(0)
    tracker = PoseTracker()
    seen = {"A": set(), "B": set()}
    for i in range(41):
        a = person(100 + 10 * i, 100, 300)
        b = person(500 - 10 * i, 80, 240)
        jitter = np.zeros((2, 17, 3), np.float32)
        jitter[:, :, :2] = rng.normal(0, 2, (2, 17, 2))
        noisy = [a + jitter[0], b + jitter[1]]
        order = ["A", "B"] if i % 2 else ["B", "A"]  # the detector's order is arbitrary
        ids = tracker.update(*frame(*(noisy[0] if name == "A" else noisy[1] for name in order)))
        assert ids.dtype == np.int64 and ids.shape == (2,)
        for name, track_id in zip(order, ids.tolist()):
            seen[name].add(track_id)
    assert len(seen["A"]) == 1 and len(seen["B"]) == 1
    assert seen["A"] != seen["B"]


@pytest.mark.parametrize("absent_frames, keeps_id", [(3, True), (5, True), (6, False), (20, False)])
def test_occluded_person_keeps_the_id_for_at_most_max_missed_frames(absent_frames, keeps_id):
    tracker = PoseTracker(max_missed_frames=5)
    still = frame(person(200, 50, 300))
    for _ in range(10):
        (first_id,) = tracker.update(*still)
    for _ in range(absent_frames):
        assert tracker.update(*frame()).shape == (0,)
    (back_id,) = tracker.update(*still)
    assert bool(back_id == first_id) is keeps_id
    assert back_id == (0 if keeps_id else 1)  # a new person gets the next, unused id


def test_new_people_get_new_ids_that_are_never_reused():
    tracker = PoseTracker(max_missed_frames=2)
    left, middle, right = person(100, 50, 200), person(400, 50, 200), person(700, 50, 200)
    assert tracker.update(*frame(left, middle)).tolist() == [0, 1]
    assert tracker.update(*frame(middle, left, right)).tolist() == [1, 0, 2]
    for _ in range(3):  # left and right leave for longer than max_missed_frames
        assert tracker.update(*frame(middle)).tolist() == [1]
    # Both come back at their old places: they are new tracks, with ids never used before.
    assert tracker.update(*frame(left, middle, right)).tolist() == [3, 1, 4]


def test_far_away_detection_is_not_matched_to_a_lost_track():
    tracker = PoseTracker(max_missed_frames=10)
    assert tracker.update(*frame(person(100, 50, 200))).tolist() == [0]
    # Same size, no overlap: similarity 0 < min_similarity, so a new person, not track 0.
    assert tracker.update(*frame(person(600, 50, 200))).tolist() == [1]


def test_empty_frames_and_reset():
    tracker = PoseTracker()
    ids = tracker.update(*frame())
    assert ids.dtype == np.int64 and ids.shape == (0,)
    assert tracker.update(*frame(person(100, 50, 200))).tolist() == [0]
    tracker.reset()
    assert tracker.update(*frame(person(100, 50, 200))).tolist() == [0]


def test_pose_without_confident_keypoints_is_still_tracked_by_its_box():
    tracker = PoseTracker()
    weak = person(300, 50, 200, score=0.1)
    assert [tracker.update(*frame(weak)).tolist() for _ in range(3)] == [[0], [0], [0]]


def test_bad_shapes_are_rejected():
    tracker = PoseTracker()
    with pytest.raises(ValueError, match="keypoints"):
        tracker.update(np.zeros((1, 16, 3), np.float32), np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="scores"):
        tracker.update(np.zeros((2, 17, 3), np.float32), np.zeros(1, np.float32))


def test_a_track_whose_legs_fade_keeps_them_in_its_body_box_for_a_while():
    tracker = PoseTracker()
    standing = person(300, 50, 200)
    tracker.update(*frame(standing))
    ankles_y = standing[15:, 1].max()
    legs_faded = standing.copy()
    legs_faded[13:, 2] = 0.05  # knees and ankles no longer confident
    for _ in range(JOINT_MEMORY_FRAMES):
        tracker.update(*frame(legs_faded))
        # The pose's own box now ends at the hips; the body box still reaches the ankles.
        assert keypoint_boxes(tracker.predicted_poses(), 0.3)[0, 3] < 160
        assert tracker.predicted_boxes()[0, 3] == pytest.approx(ankles_y)
    tracker.update(*frame(legs_faded))  # unseen for longer: forgotten
    assert tracker.predicted_boxes()[0, 3] == pytest.approx(keypoint_boxes(legs_faded[None], 0.3)[0, 3])
    tracker.update(*frame(standing))  # seen again: back at once
    assert tracker.predicted_boxes()[0, 3] == pytest.approx(ankles_y)


def test_faded_joints_move_with_their_track():
    tracker = PoseTracker()
    tracker.update(*frame(person(100, 50, 200)))
    for step in range(1, 4):  # she walks down and to the right, 10 px a frame; ankles faded
        walker = person(100 + 10 * step, 50 + 10 * step, 200)
        walker[15:, 2] = 0.05
        tracker.update(*frame(walker))
    # Her ankles where they would be now: moved with the rest of her, plus the next frame's step.
    ankles_y = person(100, 50, 200)[15:, 1].max()
    assert tracker.predicted_boxes()[0, 3] == pytest.approx(ankles_y + 40)


def test_body_boxes_move_with_their_tracks():
    tracker = PoseTracker()
    for step in range(3):
        tracker.update(*frame(person(100 + 10 * step, 50, 200), person(400, 50, 200)))
    boxes, poses = tracker.predicted_boxes(), tracker.predicted_poses()
    assert boxes.shape == (2, 4)
    # The walker's box is where her predicted pose is (10 px further right); the other stands.
    np.testing.assert_allclose(boxes, keypoint_boxes(poses, 0.3), atol=1e-3)


def test_object_keypoint_similarity_matches_the_coco_formula():
    a = person(200, 100, 300)
    shift = np.array([3.0, 4.0, 0.0], np.float32)  # every keypoint moves 5 px
    b = a + shift
    b[0, 2] = 0.1  # the nose is not confident in b: it does not count
    boxes = keypoint_boxes(np.stack([a, b]), 0.3)
    area = np.mean((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    k2 = (2 * np.array(OKS_SIGMAS[1:])) ** 2
    expected = np.mean(np.exp(-25.0 / (2 * area * k2)))
    oks = object_keypoint_similarity(a[None], b[None], 0.3)
    assert oks.shape == (1, 1)
    assert oks[0, 0] == pytest.approx(expected, rel=1e-9)
    assert object_keypoint_similarity(a[None], a[None], 0.3)[0, 0] == pytest.approx(1.0)
    # No keypoint confident in both: OKS is 0, not NaN.
    weak = person(200, 100, 300, score=0.1)
    assert object_keypoint_similarity(a[None], weak[None], 0.3)[0, 0] == 0.0


def test_box_iou_known_values():
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [5, 5, 6, 6], [7, 7, 7, 7]], float)
    iou = box_iou(boxes, boxes)
    assert iou[0, 1] == pytest.approx(1 / 7)
    assert iou[0, 0] == 1.0 and iou[0, 2] == 0.0
    assert iou[3, 3] == 0.0  # empty union: 0, not NaN


def test_below_threshold_pair_cannot_pull_a_detection_from_its_track():
    # Rows are tracks, columns detections. Over the full matrix, track 0 - detection 1 (0.15)
    # plus track 1 - detection 0 (0.85) outweighs track 0 - detection 0 (0.90) alone; gated at
    # 0.2, detection 0 stays with track 0 and the other two are left unmatched.
    similarity = np.array([[0.90, 0.15], [0.85, 0.00]])
    assert gated_optimal_assignment(similarity, 0.2) == [(0, 0)]


def test_gated_assignment_keeps_every_allowed_pair_of_the_optimum():
    similarity = np.array([[0.3, 0.9, 0.0], [0.8, 0.7, 0.1], [0.0, 0.05, 0.25]])
    assert sorted(gated_optimal_assignment(similarity, 0.2)) == [(0, 1), (1, 0), (2, 2)]
    assert gated_optimal_assignment(similarity, 0.95) == []
    assert gated_optimal_assignment(np.zeros((0, 2)), 0.2) == []


def test_pose_similarity_is_the_larger_of_oks_and_keypoint_box_iou():
    a = np.stack([person(200, 100, 300), person(240, 100, 300)])
    b = np.stack([person(205, 104, 300), person(600, 90, 250), person(230, 100, 300, score=0.1)])
    expected = np.maximum(
        object_keypoint_similarity(a, b, 0.3), box_iou(keypoint_boxes(a, 0.3), keypoint_boxes(b, 0.3))
    )
    np.testing.assert_allclose(pose_similarity(a, b, 0.3), expected, rtol=1e-12)
    assert expected[1, 2] > 0.5 and expected[0, 1] < 1e-6  # IoU carries the weak pose; far: ~0


@pytest.mark.parametrize("walks_on", [True, False])
def test_person_hidden_while_walking_or_standing_keeps_the_id(walks_on):
    # 25 px/frame, hidden for 5 frames: 150 px from where it was last seen if it walks on
    # (matched by the constant-velocity prediction), or where it was if it stopped.
    tracker = PoseTracker(max_missed_frames=8)
    for i in range(6):
        assert tracker.update(*frame(person(100 + 25 * i, 50, 200))).tolist() == [0]
    for _ in range(5):
        tracker.update(*frame())
    x_back = 100 + 25 * 11 if walks_on else 100 + 25 * 5
    assert tracker.update(*frame(person(x_back, 50, 200))).tolist() == [0]


@requires_shared
@pytest.mark.shared
@pytest.mark.slow
def test_two_people_video_keeps_two_ids(shared_dir):
    """Real decode and inference: the two people of the hug clip keep one id each throughout."""
    estimator = PoseEstimator(PoseEngine("posenet-075", threads=1), 353)
    tracker, smoother = PoseTracker(), PoseSmoother()
    frames_per_id: dict[int, int] = {}
    frame_count = 0
    with open_source(str(shared_dir / "media" / "two-people-1080p.mp4")) as source:
        for frame in source:
            poses = estimator.estimate(frame.image)
            ids = tracker.update(poses.keypoints, poses.scores)
            smoothed = smoother(ids, poses.keypoints, frame.time_s)
            assert smoothed.shape == poses.keypoints.shape
            for track_id in ids.tolist():
                frames_per_id[track_id] = frames_per_id.get(track_id, 0) + 1
            frame_count += 1
    assert frame_count > 60
    long_lived = sorted(i for i, n in frames_per_id.items() if n >= 0.6 * frame_count)
    assert long_lived == [0, 1], frames_per_id  # both people seen from the first frame on


def test_people_entering_leaving_and_hidden_in_a_video_keep_their_own_ids(people_clip):
    """Real decode and inference on the generated three-person clip: A is there throughout but
    out of sight on frames 50-54, B leaves after frame 29, C comes in at frame 45. Every pose is
    told apart by the script (whose photo holds it): each person keeps one id, A across its
    absence; C gets a new id, B's is not reused."""
    estimator = PoseEstimator(PoseEngine("posenet-075", threads=1), 353)
    tracker, smoother = PoseTracker(), PoseSmoother()
    ids_of: dict[int, list[int]] = {actor: [] for actor in range(len(people_clip.actors))}
    frame_count = 0
    with open_source(str(people_clip)) as source:
        for frame in source:
            poses = estimator.estimate(frame.image)
            ids = tracker.update(poses.keypoints, poses.scores)
            smoothed = smoother(ids, poses.keypoints, frame.time_s)
            assert smoothed.shape == poses.keypoints.shape
            actors = [people_clip.actor_of(frame.index, keypoints) for keypoints in poses.keypoints]
            assert sorted(actors, key=str) == people_clip.people(frame.index), frame.index  # one pose per person
            for actor, track_id in zip(actors, ids.tolist()):
                ids_of[actor].append(track_id)
            frame_count += 1
    assert frame_count == people_clip.frame_count == 90
    assert [len(ids) for ids in ids_of.values()] == [85, 30, 45]
    assert all(len(set(ids)) == 1 for ids in ids_of.values()), ids_of
    a, b, c = (ids[0] for ids in ids_of.values())
    assert {a, b} == {0, 1} and c == 2  # both first people from frame 0 on; the newcomer: the next id
