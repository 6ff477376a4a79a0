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
from pose_app.explain.compare import ADD_EVERY, DRAWS_BETWEEN, crop_run, full_frame_run
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
    # ADD_EVERY later is (at once when it is drawn again, paused: `advance`).
    compare(photo, context, keypoint=NOSE)
    image, poses, blocks = photo
    other = np.ascontiguousarray(image[:, ::-1])  # another picture, as the next frames are
    later = 5 + ADD_EVERY + DRAWS_BETWEEN  # ADD_EVERY frames and DRAWS_BETWEEN pictures after it
    for index, added in ((6, 1), (7, 1), (8, 1), (later, 1), (later, 2)):
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


def test_a_frame_that_joins_is_read_over_the_next_frames_drawn_and_the_others_run_on_crops(posenet, movenet, photo):
    image, poses, blocks = photo
    other = np.ascontiguousarray(image[:, ::-1])
    crops_only = dataclasses.replace(poses, heatmaps=None, transform=None, features={}, heads={})
    context = PanelContext(posenet.info, engine=posenet, crop_engine=movenet, frame_index=5)
    compare(photo, context, keypoint=NOSE)  # the first frame is read at once
    session = context.state_of(view_kind("compare"))
    kind = view_kind("compare")
    request = PanelRequest(mode="compare", blocks=blocks, width=384)
    first_run = session.last_run

    def draw(index, picture, frame_poses=poses):
        context.frame_index = index
        view = compose_in(picture, frame_poses, request, context)
        return view, session.last_run, len(session.similarity), session.pending is not None

    # The frames after it need no full-frame pass (the worker runs them on crops) and show its runs.
    assert not kind.frame_needs(request, session, 6, other)
    view, run, added, pending = draw(6, other, crops_only)
    assert (run, added, pending) == (first_run, 1, False)
    assert draw(7, image, crops_only)[0] is view  # nothing new to show: the same picture, not drawn again
    # ADD_EVERY frames and DRAWS_BETWEEN pictures later a frame joins: it runs the full-frame pass
    # with every block; its second network runs on it, and its kernels are read over the next two
    # frames drawn, while the last pair is shown.
    joining = 5 + ADD_EVERY + 3
    assert not kind.frame_needs(request, session, 8, image)
    draw(8, image, crops_only)
    assert kind.frame_needs(request, session, joining, other)
    assert draw(joining, other)[1:] == (first_run, 1, True)
    assert draw(joining + 1, image, crops_only)[1:] == (first_run, 1, True)
    _, run, added, pending = draw(joining + 2, image, crops_only)
    assert run is not first_run and added == 2 and not pending
    flipped, _ = crop_run(movenet, other, poses)  # the joining frame's picture, not the frames' after it
    for name, values in flipped.features.items():
        np.testing.assert_array_equal(run.features[name], values)
        assert not np.array_equal(first_run.features[name], values)
    # A joining frame drawn again (paused) is read at once.
    later = joining + 2 + ADD_EVERY
    for index in range(joining + 3, later):
        draw(index, image, crops_only)
    assert draw(later, image)[2:] == (2, True)
    assert draw(later, image)[2:] == (3, False)
