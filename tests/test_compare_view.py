"""The compare view (`--view compare`) on the shipped photo with the shipped models: PoseNet's
full-frame pass and MoveNet on the person's crop, both heatmaps peaking at her nose, the block
strips and the CKA matrix of their blocks (explain/compare.py, explain/compare_view.py)."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from support import REPO

from pose_app.core.skeleton import KEYPOINT_INDEX
from pose_app.explain.compare import ADD_EVERY, crop_run, full_frame_run
from pose_app.explain.compose import PANEL_MODES, PanelContext, PanelRequest, compose_in, panel_ready
from pose_app.explain.panel import view_kind
from pose_app.inference.engine import PoseEngine
from pose_app.inference.estimator import PoseEstimator

PHOTO = REPO / "tests" / "data" / "astronaut.jpg"
LABELS = json.loads((REPO / "tests" / "data" / "astronaut-keypoints.json").read_text())["keypoints"]
NOSE = KEYPOINT_INDEX["nose"]


@pytest.fixture(scope="module")
def posenet():
    return PoseEngine("posenet-075-int8")


@pytest.fixture(scope="module")
def movenet():
    return PoseEngine("movenet-lightning")


@pytest.fixture(scope="module")
def photo(posenet):
    image = cv2.imread(str(PHOTO))
    blocks = tuple(block.name for block in posenet.info.feature_blocks)
    poses = PoseEstimator(posenet, 257).estimate(image, blocks, keep_heads=True)
    return image, poses, blocks


def compare(photo, context, **choices):
    image, poses, blocks = photo
    request = PanelRequest(mode="compare", blocks=blocks, width=384, **choices)
    assert panel_ready(request, poses) and request.features == blocks
    return compose_in(image, poses, request, context)


def test_both_networks_find_her_nose_on_the_same_frame(posenet, movenet, photo):
    image, poses, blocks = photo
    first = full_frame_run(posenet, poses, blocks)
    second, crop = crop_run(movenet, image, poses)
    assert (first.title, first.where, second.title, second.where) == ("PoseNet", "full frame", "MoveNet", "person crop")
    assert len(first.features) == 14 and len(second.features) == 22 and second.input_size == (192, 192)
    x0, y0, x1, y1 = crop.box
    assert x0 < LABELS["left_shoulder"][0] and x1 > LABELS["right_shoulder"][0] and y0 < LABELS["nose"][1] < y1
    # Each network's nose heatmap, read over the crop, peaks within 12 px of the hand-labelled nose.
    ys, xs = np.mgrid[y0:y1:2, x0:x1:2]
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    for run in (first, second):
        peak = points[np.argmax(run.heat_at(NOSE, points))]
        assert np.hypot(*(peak - LABELS["nose"])) < 12, (run.title, peak)


def test_the_view_draws_heatmaps_strips_and_a_similarity_of_their_blocks(posenet, movenet, photo):
    assert "compare" in PANEL_MODES
    context = PanelContext(posenet.info, engine=posenet, crop_engine=movenet, frame_index=5)
    view = compare(photo, context, keypoint=NOSE)
    assert view.mode == "compare" and view.picture.shape[1] == 384 and view.picture.dtype == np.uint8
    assert "PoseNet (posenet-075-int8) on the full frame and MoveNet (movenet-lightning) on the person crop" in view.caption
    assert "nose heatmap" in view.caption and "linear CKA" in view.caption and "last 1 frames" in view.caption
    session = context.state_of(view_kind("compare"))
    matrix = session.similarity.matrix()
    assert matrix.shape == (14, 22) and np.all(matrix <= 1.0 + 1e-9)
    strides_b = [block.stride for block in movenet.info.feature_blocks]
    # Early blocks look alike (edges and colours), and PoseNet's last block is most like one of
    # MoveNet's deep backbone blocks, not its first layers.
    assert strides_b[int(np.argmax(matrix[0]))] <= 4 and matrix[0].max() > 2 * np.median(matrix[0])
    assert strides_b[int(np.argmax(matrix[-1]))] >= 16 and matrix[-1].max() > 0.5
    # The same frame drawn again (paused) is not counted twice, nor the next frame; a frame
    # ADD_EVERY later is.
    compare(photo, context, keypoint=NOSE)
    image, poses, blocks = photo
    other = np.ascontiguousarray(image[:, ::-1])  # another picture, as the next frames are
    for index, added in ((6, 1), (5 + ADD_EVERY, 2)):
        context.frame_index = index
        view = compose_in(other, poses, PanelRequest(mode="compare", blocks=blocks), context)
        assert len(session.similarity) == added
    assert "every keypoint (max)" in view.caption and "last 2 frames" in view.caption


def test_without_a_crop_network_of_the_other_family_the_view_opens_movenet_itself(posenet, photo):
    context = PanelContext(posenet.info, engine=posenet, crop_engine=posenet)
    view = compare(photo, context)
    assert "MoveNet (movenet-lightning) on the person crop" in view.caption
    assert context.state_of(view_kind("compare")).engine.info.name == "movenet-lightning"


def test_thunder_and_a_frame_without_anyone(posenet, photo):
    thunder = PoseEngine("movenet-thunder")
    image, poses, blocks = photo
    empty = dataclasses.replace(poses, keypoints=poses.keypoints[:0], scores=poses.scores[:0], ids=poses.ids[:0])
    context = PanelContext(posenet.info, engine=posenet, crop_engine=thunder)
    view = compose_in(image, empty, PanelRequest(mode="compare", blocks=blocks, width=384), context)
    assert "MoveNet (movenet-thunder) on the whole frame (nobody found)" in view.caption
    assert context.state_of(view_kind("compare")).similarity.matrix().shape == (14, 22)


def test_next_to_a_movenet_full_frame_the_second_network_is_a_posenet_on_the_crop(movenet):
    image = cv2.imread(str(PHOTO))
    blocks = tuple(block.name for block in movenet.info.feature_blocks)
    poses = PoseEstimator(movenet, 192).estimate(image, blocks, keep_heads=True)
    context = PanelContext(movenet.info, engine=movenet)
    view = compose_in(image, poses, PanelRequest(mode="compare", blocks=blocks, width=384, keypoint=NOSE), context)
    assert view.caption.startswith("MoveNet (movenet-lightning) on the full frame and PoseNet (posenet-075-int8) on "
                                   "the person crop")
    assert context.state_of(view_kind("compare")).similarity.matrix().shape == (22, 14)


def test_the_second_network_runs_on_the_frames_that_join_the_similarity_and_is_reused_between(posenet, movenet, photo):
    image, poses, blocks = photo
    other = np.ascontiguousarray(image[:, ::-1])
    context = PanelContext(posenet.info, engine=posenet, crop_engine=movenet, frame_index=5)
    compare(photo, context, keypoint=NOSE)
    session = context.state_of(view_kind("compare"))
    first_run = session.last_run
    runs, added = [], []
    for index, picture in ((6, other), (6, other), (5 + ADD_EVERY, other), (2, image)):
        context.frame_index = index
        compose_in(picture, poses, PanelRequest(mode="compare", blocks=blocks, width=384), context)
        runs.append(session.last_run)
        added.append(len(session.similarity))
    # The next frame (and it drawn again) shows the last run; the frame that joins the
    # similarity ADD_EVERY later runs the network again, on its own picture, and so does a seek back to another picture.
    assert runs[0] is first_run and runs[1] is first_run and added == [1, 1, 2, 3]
    assert runs[2] is not first_run and runs[3] is not runs[2]
    flipped, _ = crop_run(movenet, other, poses)
    for name, values in flipped.features.items():
        np.testing.assert_array_equal(runs[2].features[name], values)
        assert not np.array_equal(first_run.features[name], values)
    # Drawing only every third frame of the video (a busy machine): every other frame drawn joins
    # (the seek back just joined), and the second network runs on those alone.
    joined, ran = [], []
    for n, index in enumerate(range(11, 30, 3)):
        context.frame_index = index
        before, run = len(session.similarity), session.last_run
        picture = cv2.convertScaleAbs(image, alpha=0.95 - 0.05 * n)  # each frame a picture of its own
        compose_in(picture, poses, PanelRequest(mode="compare", blocks=blocks, width=384), context)
        joined.append(len(session.similarity) > before)
        ran.append(session.last_run is not run)
    assert joined == ran == [False, True, False, True, False, True, False]
