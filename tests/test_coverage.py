"""Saying when the person was lost: `PersonCoverage` on hand-made poses, and `pose-app process`'s
summary on a real clip in which nobody is found most of the time."""

from __future__ import annotations

import cv2
import numpy as np
from media import photo

from pose_app.cli.main import main
from pose_app.core.coverage import PersonCoverage, full_leg_chain
from pose_app.core.skeleton import KEYPOINT_INDEX

LEGS = [KEYPOINT_INDEX[f"{side}_{joint}"] for side in ("left", "right") for joint in ("knee", "ankle")]


def person(legs: bool = True, confident: int = 17) -> np.ndarray:
    pose = np.zeros((1, 17, 3), np.float32)
    pose[0, :, :2] = np.arange(34).reshape(17, 2)
    pose[0, :confident, 2] = 0.9
    if not legs:
        pose[0, LEGS, 2] = 0.1
    return pose


def nobody() -> np.ndarray:
    return np.zeros((0, 17, 3), np.float32)


def test_a_full_leg_chain_needs_hip_knee_and_ankle():
    assert full_leg_chain(person()).tolist() == [True]
    assert full_leg_chain(person(legs=False)).tolist() == [False]
    assert full_leg_chain(nobody()).tolist() == []


def test_a_person_found_in_few_frames_is_reported():
    coverage = PersonCoverage()
    for index in range(40):
        coverage.add(person() if index < 10 else nobody())
    assert coverage.person_share == 0.25
    assert coverage.warning() == "a person in only 25% of 40 frames"


def test_legs_lost_most_of_the_time_are_reported_but_legs_never_in_view_are_not():
    losing = PersonCoverage()
    for index in range(40):
        losing.add(person(legs=index % 4 == 0))
    assert losing.warning() == "legs lost in 75% of the frames with a person"
    desk = PersonCoverage()  # a webcam at a desk never shows the legs
    for _ in range(40):
        desk.add(person(legs=False))
    assert desk.warning() is None


def test_ghosts_short_inputs_and_a_moving_window():
    ghosts = PersonCoverage()
    for _ in range(40):
        ghosts.add(person(confident=3))  # three keypoints are not a person
    assert ghosts.person_share == 0.0 and ghosts.warning() is not None
    assert PersonCoverage().warning() is None
    short = PersonCoverage()
    for _ in range(5):
        short.add(nobody())
    assert short.warning() is None  # too short to judge
    live = PersonCoverage(window=20)
    for index in range(60):
        live.add(nobody() if index < 40 else person())
    assert live.frames == 20 and live.warning() is None  # she came back: the last 20 frames count


def test_process_says_when_the_person_is_missing_from_most_frames(tmp_path, capsys):
    clip = tmp_path / "empty-room.mkv"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (384, 384))
    for index in range(30):
        writer.write(photo() if index < 5 else np.full((384, 384, 3), 90, np.uint8))
    writer.release()
    assert main(["process", str(clip), "--csv", str(tmp_path / "out.csv")]) == 0
    out = capsys.readouterr().out
    assert "warning: a person in only 17% of 30 frames" in out, out
