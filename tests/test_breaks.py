"""What breaks the network (explain/breaks.py): the perturbations themselves, and real ONNX
inference on the shipped photo: scores fall as blur grows, and an upside-down person scores far
lower than upright unless the crop is stood upright again, as the pipeline's any-orientation does."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from support import REPO

from pose_app.explain.breaks import (
    OCCLUDER_GREY,
    PERTURBATIONS,
    Subject,
    cut,
    darkened,
    occluded,
    occluder_box,
    perturbed,
    subject_of,
    sweep,
    turned,
)
from pose_app.explain.compare import person_crop
from pose_app.inference.crops import CropTransform
from pose_app.inference.engine import PoseEngine
from pose_app.inference.estimator import PoseEstimator, turn_frame, unturned

PHOTO = REPO / "tests" / "data" / "astronaut.jpg"


@pytest.fixture(scope="module")
def photo():
    return cv2.imread(str(PHOTO))


def textured(size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(3)
    return cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 1.5)


def test_turning_by_180_then_back_is_the_identity_within_interpolation(photo):
    crop = CropTransform((190.0, 200.0), 0.8, (129, 129))
    upright = cut(photo, crop, 0.0)
    upside_down = cut(photo, turned(crop, 180), 0.0)
    assert np.abs(upright.astype(int) - upside_down.astype(int)).mean() > 20  # it did turn
    # Turned back by another 180 degrees about the crop's centre: the picture cut unturned.
    back = cut(upside_down, CropTransform((64.0, 64.0), 1.0, (129, 129), np.pi), 0.0)
    assert np.abs(back.astype(int) - upright.astype(int))[2:-2, 2:-2].max() <= 2
    # 37 degrees and back (a real resampling twice): the same picture, up to interpolation's blur.
    there = cut(photo, turned(crop, 37), 0.0)
    again = cut(there, CropTransform((64.0, 64.0), 1.0, (129, 129), np.radians(-37)), 0.0)
    inner = (slice(30, 99), slice(30, 99))  # away from the corners the turn brought in from outside
    assert np.abs(again[inner].astype(int) - upright[inner].astype(int)).mean() < 6


def test_quarter_turns_of_keypoints_follow_the_picture():
    picture = np.zeros((40, 60, 3), np.uint8)
    picture[7, 11] = 255  # x=11, y=7
    for turns in range(4):
        turned_picture = turn_frame(picture, turns)
        y, x = np.argwhere(turned_picture[..., 0] == 255)[0]
        back = unturned(np.array([[x, y, 1.0]]), turns, (60, 40))
        assert back[0, :2].tolist() == [11, 7], turns


def test_darken_zero_is_the_identity_and_darken_scales_the_pixels():
    picture = textured()
    assert np.array_equal(darkened(picture, 0), picture)
    half = darkened(picture, 50).astype(int)
    assert np.abs(half - np.rint(picture * 0.5)).max() <= 1


@pytest.mark.parametrize("percent", [10, 25, 50, 100])
def test_the_grey_box_covers_the_stated_share_of_the_persons_box(percent):
    picture = np.zeros((200, 200, 3), np.uint8)  # black, so the grey pixels are the box
    person = (40.0, 20.0, 140.0, 180.0)  # 100 x 160 px
    subject = Subject(CropTransform((100.0, 100.0), 1.0, (200, 200)), None)
    box = occluder_box(person, subject.part_centre("image centre"), percent)
    covered = (occluded(picture, box)[..., 0] == OCCLUDER_GREY).sum()
    assert covered == pytest.approx(percent / 100 * 100 * 160, rel=0.04)
    assert occluder_box(person, (99.5, 99.5), 0)[:2] == occluder_box(person, (99.5, 99.5), 0)[2:]  # 0 %: no box


def test_the_box_lies_over_the_chosen_part():
    pose = np.zeros((17, 3), np.float32)
    pose[:, 2] = 0.9
    pose[:, :2] = [100, 150]
    pose[:5, :2] = [60, 30]  # the face, top left
    subject = Subject(CropTransform((99.5, 99.5), 1.0, (200, 200)), pose)
    frame = np.zeros((200, 200, 3), np.uint8)
    covered, _ = perturbed(frame, subject, "occlude", 5, "face", 0.0)
    ys, xs = np.nonzero(covered[..., 0] == OCCLUDER_GREY)
    assert abs(xs.mean() - 60) < 2 and abs(ys.mean() - 30) < 2
    assert frame.sum() == 0  # the frame itself is left alone
    centre, _ = perturbed(frame, subject, "occlude", 5, "image centre", 0.0)
    ys, xs = np.nonzero(centre[..., 0] == OCCLUDER_GREY)
    assert abs(xs.mean() - 99.5) < 2 and abs(ys.mean() - 99.5) < 2


def test_every_perturbation_sweeps_about_10_steps_from_none():
    for perturbation in PERTURBATIONS.values():
        steps = perturbation.steps
        assert 8 <= len(steps) <= 12 and steps[0] == perturbation.low and steps[-1] == pytest.approx(perturbation.high)
    assert 1.0 in [round(step, 9) for step in PERTURBATIONS["scale"].steps]  # the crop as cut is one step


# --- real inference on the shipped photo ----------------------------------------------------------


@pytest.fixture(scope="module", params=["movenet-lightning", "posenet-075-int8"])
def network(request, photo):
    engine = PoseEngine(request.param)
    poses = PoseEstimator(PoseEngine("posenet-075-int8"), 257).estimate(photo)
    size = engine.family.crop_input_size(engine.info, 257, 1.0)
    crop, on_person = person_crop(poses, (photo.shape[1], photo.shape[0]), size)
    assert on_person
    return engine, subject_of(engine, photo, crop)


UPPER_BODY = (0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12)  # the photo shows her down to the hips


def test_scores_fall_as_the_blur_grows(network, photo):
    engine, subject = network
    result = sweep(engine, photo, subject, "blur")
    mean = result.mean(UPPER_BODY)
    assert mean[0] > 0.6 and mean[-1] < mean[0] - 0.25, mean
    # Falling overall: every step is at most a little above the one before, and each half lower.
    assert np.all(np.diff(mean) < 0.05), mean
    assert mean[:3].mean() > mean[3:6].mean() > mean[6:].mean(), mean


def test_upside_down_she_is_lost_unless_the_crop_is_stood_upright(network, photo):
    engine, subject = network
    result = sweep(engine, photo, subject, "turn", upright=True, amounts=(0.0, 180.0))
    plain, stood = result.mean(UPPER_BODY), result.mean(UPPER_BODY, upright=True)
    assert plain[0] > 0.6
    assert plain[1] < 0.5 * plain[0], plain  # upside down: far lower
    assert abs(stood[1] - plain[0]) < 0.1, (stood, plain)  # stood upright again: about the same
    assert abs(abs(result.turned_back[1]) - 180) < 30  # turned back about half a turn
    # Not only the scores: upside down few keypoints are found in their place (a head taken for
    # feet scores, but in the wrong place); stood upright again, nearly all.
    assert result.reference >= 8 and result.placed[0] >= result.reference - 1
    assert result.placed[1] <= result.reference // 2, result.placed
    assert result.placed_upright[1] >= result.reference - 2, result.placed_upright
