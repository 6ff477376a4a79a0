"""The breaks view (`--view breaks`, explain/breaks_view.py) on the shipped photo with the shipped
models: the picture, the caption's figures, and the sweep made once per frame and perturbation
(a moved slider, another keypoint or a paused frame drawn again only redraws)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from support import REPO

from pose_app.explain.breaks import BreaksRequest
from pose_app.explain.breaks_view import SWEEP_EVERY
from pose_app.explain.compose import PANEL_MODES, PanelContext, PanelRequest, compose_in, panel_ready
from pose_app.explain.panel import view_kind
from pose_app.inference.engine import PoseEngine
from pose_app.inference.estimator import PoseEstimator

PHOTO = REPO / "tests" / "data" / "astronaut.jpg"


@pytest.fixture(scope="module")
def photo():
    posenet = PoseEngine("posenet-075-int8")
    image = cv2.imread(str(PHOTO))
    return image, PoseEstimator(posenet, 257).estimate(image), posenet


def draw(photo, context, breaks: BreaksRequest, keypoint=None):
    image, poses, _ = photo
    request = PanelRequest(mode="breaks", width=384, breaks=breaks, keypoint=keypoint)
    assert panel_ready(request, poses) and request.features == ()
    return compose_in(image, poses, request, context)


def test_the_view_sweeps_once_and_redraws_for_the_slider_and_the_keypoint(photo):
    assert "breaks" in PANEL_MODES
    _, _, posenet = photo
    context = PanelContext(posenet.info, engine=posenet, crop_engine=PoseEngine("movenet-lightning"), frame_index=3)
    view = draw(photo, context, BreaksRequest("blur", 4.0))
    session = context.state_of(view_kind("breaks"))
    assert view.mode == "breaks" and view.picture.shape[1] == 384 and view.picture.shape[0] < 384
    assert view.caption.startswith("movenet-lightning on the person's crop blurred, 9 amounts from sigma 0.0 to sigma 8.0")
    assert session.computed == 1
    # The slider, the keypoint, the mean's keypoints and the same frame again: no new sweep.
    for breaks, keypoint in ((BreaksRequest("blur", 6.0), None), (BreaksRequest("blur", 6.0), 9),
                             (BreaksRequest("blur", 6.0, mean_of="arms"), 9)):
        again = draw(photo, context, breaks, keypoint)
        assert session.computed == 1
    assert "at the slider's sigma 6.0" in again.caption and "mean score of arms" in again.caption
    assert not np.array_equal(again.picture, view.picture)  # the marker and the picture moved
    # Another perturbation, another covered part, the switch: a new sweep each.
    draw(photo, context, BreaksRequest("occlude", 30.0, "face"))
    draw(photo, context, BreaksRequest("occlude", 30.0, "left arm"))
    assert session.computed == 3
    # A frame SWEEP_EVERY later: swept again.
    context.frame_index = 3 + SWEEP_EVERY
    draw(photo, context, BreaksRequest("occlude", 30.0, "left arm"))
    assert session.computed == 4


def test_the_upright_switch_draws_both_crops_and_says_what_turning_back_changes(photo):
    _, _, posenet = photo
    context = PanelContext(posenet.info, engine=posenet, crop_engine=None)  # PoseNet runs the crops itself
    view = draw(photo, context, BreaksRequest("turn", 180.0, upright=True))
    assert view.caption.startswith("posenet-075-int8 on the person's crop turned, 10 amounts from 0° to 180°")
    assert "Stood upright again" in view.caption and "turned back" in view.caption
    assert "Keypoints found where the unperturbed crop finds them" in view.caption
    assert " stood upright)" in view.caption
    turned_back = float(view.caption.split("turned back ")[1].split("°")[0])
    assert abs(abs(turned_back) - 180) < 30
    plain = draw(photo, context, dataclasses.replace(BreaksRequest("turn", 180.0), upright=False))
    assert "Switch on 'turn the crop upright'" in plain.caption
    # With the switch the turned crop and the crop stood upright are stacked: a taller picture,
    # its two crops each about half its height, split by the gap's plain colour.
    assert view.picture.shape[1] == plain.picture.shape[1] and view.picture.shape[0] > plain.picture.shape[0]
    half = view.picture.shape[0] // 2
    assert np.ptp(view.picture[half - 1:half + 1, 10:60]) == 0 and np.ptp(plain.picture[half, 10:60]) > 0


def test_without_a_network_the_view_says_so(photo):
    image, poses, posenet = photo
    view = draw(photo, PanelContext(posenet.info), BreaksRequest())
    assert "needs the running network" in view.caption


def test_a_frame_without_anyone_is_perturbed_whole(photo):
    image, poses, posenet = photo
    empty = dataclasses.replace(poses, keypoints=poses.keypoints[:0], scores=poses.scores[:0], ids=poses.ids[:0])
    context = PanelContext(posenet.info, engine=posenet, crop_engine=PoseEngine("movenet-lightning"))
    view = compose_in(image, empty, PanelRequest(mode="breaks", width=384, breaks=BreaksRequest("darken", 50.0)),
                      context)
    assert view.caption.startswith("movenet-lightning on the whole frame (nobody found) darkened, 11 amounts")


def test_a_playing_video_keeps_the_sweep_for_sweep_every_frames_and_probes_each_frame(photo):
    image, poses, posenet = photo
    dimmer = cv2.convertScaleAbs(image, alpha=0.7)  # the next frames: another picture, the person in place
    context = PanelContext(posenet.info, engine=posenet, crop_engine=PoseEngine("movenet-lightning"), frame_index=10)
    session = context.state_of(view_kind("breaks"))
    draw(photo, context, BreaksRequest("blur", 4.0))
    swept, probed = session.sweeps[("blur", "", False)][1], session.probe[1]
    context.frame_index = 11
    # A frame the pipeline followed on crops (no full-frame pass: the view needs none) is drawn too.
    followed = dataclasses.replace(poses, heatmaps=None, transform=None)
    request = PanelRequest(mode="breaks", width=384, breaks=BreaksRequest("blur", 4.0))
    assert not request.full_frame and panel_ready(request, followed)
    view = compose_in(dimmer, followed, request, context)
    # The next frame: the sweep kept (its curves drawn again), the crop at the slider's amount cut
    # and run on this frame.
    assert session.computed == 1 and session.sweeps[("blur", "", False)][1] is swept
    assert session.probe[1] is not probed and session.probe[1].picture.mean() < 0.8 * probed.picture.mean()
    assert "blurred, 9 amounts" in view.caption
    # Another perturbation on a frame between: swept at once; the first one's sweep is still kept.
    compose_in(dimmer, poses, PanelRequest(mode="breaks", width=384, breaks=BreaksRequest("darken", 50.0)), context)
    assert session.computed == 2
    context.frame_index = 12
    compose_in(dimmer, poses, PanelRequest(mode="breaks", width=384, breaks=BreaksRequest("blur", 6.0)), context)
    assert session.computed == 2 and session.sweeps[("blur", "", False)][1] is swept
    # SWEEP_EVERY frames after it the sweep is made again, on that frame.
    context.frame_index = 10 + SWEEP_EVERY
    compose_in(dimmer, poses, PanelRequest(mode="breaks", width=384, breaks=BreaksRequest("blur", 6.0)), context)
    assert session.computed == 3 and session.sweeps[("blur", "", False)][1] is not swept
