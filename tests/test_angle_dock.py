"""The angle dock's history (no Qt) and its plot of one person's chosen angles."""

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import Qt

from pose_app.analysis.angle_history import AngleHistory, FrameAngles
from pose_app.core.angles import ANGLE_NAMES
from pose_app.gui.angle_dock import AngleDock

KNEE = ANGLE_NAMES.index("left_knee")


def frame(time_s, ids, knee, raw=None):
    degrees = np.full((len(ids), len(ANGLE_NAMES)), np.nan)
    degrees[:, KNEE] = knee
    unsmoothed = None
    if raw is not None:
        unsmoothed = degrees.copy()
        unsmoothed[:, KNEE] = raw
    return FrameAngles(time_s, np.asarray(ids), degrees, unsmoothed)


def test_history_keeps_the_window_breaks_curves_where_a_person_is_missing_and_restarts_on_seek():
    history = AngleHistory(window_s=1.0)
    history.add(frame(0.0, [0], [170.0], [171.0]))
    history.add(frame(0.5, [1], [90.0]))  # person 0 not in view
    history.add(frame(1.2, [0, 1], [160.0, 95.0], [158.0, 96.0]))
    times, degrees, raw = history.series(0, "left_knee")
    assert times.tolist() == [0.5, 1.2]  # 0.0 fell out of the last second
    assert np.isnan(degrees[0]) and degrees[1] == 160.0 and raw[1] == 158.0
    assert history.people() == [1, 0]
    history.add(frame(0.1, [2], [120.0]))  # time went back: a seek or a loop
    assert history.people() == [2]
    _, unsmoothed_frame_degrees, unsmoothed_frame_raw = history.series(2, "left_knee")
    assert unsmoothed_frame_raw[0] == unsmoothed_frame_degrees[0] == 120.0  # not smoothed: raw = shown


def test_dock_plots_the_chosen_angles_of_the_chosen_person(qtbot):
    dock = AngleDock()
    qtbot.addWidget(dock)
    dock.show()
    qtbot.waitExposed(dock)
    assert dock.chosen_angles() == ("left_elbow", "right_elbow", "left_knee", "right_knee")
    dock.set_follow(False)  # this test chooses the angles itself
    for step in range(20):
        dock.add(frame(step / 10, [3, 7], [100.0 + step, 150.0], [101.0 + step, 149.0]))
    qtbot.waitUntil(lambda: dock.plotted("left_knee") is not None, timeout=5000)
    x, y = dock.plotted("left_knee")
    assert dock.shown_person() == 3 and y[-1] == pytest.approx(119.0)
    assert dock.plotted("left_knee", raw=True) is None  # the raw curve only on request
    dock.show_raw.setChecked(True)
    dock.person.setCurrentIndex(dock.person.findData(7))
    qtbot.waitUntil(lambda: dock.plotted("left_knee", raw=True) is not None, timeout=5000)
    qtbot.waitUntil(lambda: dock.plotted("left_knee")[1][-1] == pytest.approx(150.0), timeout=5000)
    assert dock.plotted("left_knee", raw=True)[1][-1] == pytest.approx(149.0)


def test_the_dock_counts_repetitions_live_shows_the_last_ones_depth_and_resets(qtbot):
    dock = AngleDock()
    qtbot.addWidget(dock)
    dock.show()
    qtbot.waitExposed(dock)
    times = np.arange(0.0, 8.3, 1 / 30)
    # Squats of 2 s (knee 170 -> 90 -> 170) starting at 1, 4 and 7 s: the third is still on its way up.
    phase = np.clip((times - 1.0) % 3.0, 0.0, 2.0)
    knee = np.where(times >= 1.0, 130.0 + 40.0 * np.cos(np.pi * phase), 170.0)
    for time_s, value in zip(times, knee):
        angles = frame(time_s, [3], [value])
        dock.add(dataclasses.replace(angles, confidence=np.full_like(angles.degrees, 0.9)))
    qtbot.waitUntil(lambda: dock.rep_count.text() == "2", timeout=5000)  # the third has not come back up
    assert dock.rep_last.text().startswith("2 repetitions on left knee; last: 170° to 90° (range 80°)")
    dock.rep_reset.click()
    qtbot.waitUntil(lambda: dock.rep_count.text() == "0", timeout=5000)
    assert dock.reps.people() == []


# ------------------------------------------------------------------------------ in the window

from support import GUI_WAIT_MS, wait_for_result

from pose_app.core.angles import compute_angles


def test_the_window_plots_the_frames_angles_draws_them_at_the_joints_and_tunes_smoothing_live(make_window, qtbot, walk_clip):
    window = make_window(max_speed=True, angle_names="left_elbow,shoulder_line", angles_follow_motion=False)
    assert not window.angle_dock.isVisible()
    window.open_source(str(walk_clip.path))
    plain = wait_for_result(qtbot, window, lambda r: len(r.poses) == 1)
    assert plain.angles is None  # nothing computed while the dock is closed
    window.actions_by_name["angles"].trigger()  # A
    result = wait_for_result(qtbot, window, lambda r: r.angles is not None and len(r.poses) == 1)
    # The frame's angles, smoothed and unsmoothed, of the poses shown.
    np.testing.assert_array_equal(result.angles.degrees, compute_angles(result.poses.keypoints)[0])
    np.testing.assert_array_equal(result.angles.unsmoothed, compute_angles(result.poses.unsmoothed_keypoints)[0])
    assert window.angles.chosen_angles() == ("left_elbow", "shoulder_line")  # her shoulders are in view
    qtbot.waitUntil(lambda: window.angles.plotted("shoulder_line") is not None, timeout=GUI_WAIT_MS)
    person = window.angles.shown_person()
    assert np.isfinite(window.angles.history.series(person, "shoulder_line")[1]).any()
    # Angles at the joints: the same frame drawn with and without them differs only near them.
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.last_result.frame.index == window.capture.last_index, timeout=GUI_WAIT_MS)
    before = window.last_result
    while not np.isfinite(compute_angles(before.poses.keypoints, ("shoulder_line",))[0]).any():
        window.step(1)  # a frame where both shoulders are seen (score >= 0.3)
        before = wait_for_result(qtbot, window, lambda r, index=before.frame.index: r.frame.index == index + 1)
    window.apply_settings(dataclasses.replace(window.settings, show_angles=True))
    assert window.settings.overlay_style().angles == ("left_elbow", "shoulder_line")
    drawn = wait_for_result(qtbot, window, lambda r: r.frame.index == before.frame.index and np.any(r.view != before.view))
    changed = np.argwhere(np.any(drawn.view != before.view, axis=2))
    assert len(changed) > 20
    # Smoothing tuned live: the same pipeline (its tracks and filters) carries on.
    pipeline = window.inference.pipeline
    window.apply_settings(dataclasses.replace(window.settings, smooth_min_cutoff=2.0, smooth_beta=0.2))
    qtbot.waitUntil(lambda: window.inference.pipeline.smoother.min_cutoff == 2.0, timeout=GUI_WAIT_MS)
    assert window.inference.pipeline is pipeline and pipeline.smoother.beta == 0.2
    assert window.controls.smooth_min_cutoff.value() == 2.0


def test_a_recording_writes_the_angles_and_repetitions_of_its_keypoints(make_window, qtbot, walk_clip, tmp_path):
    from pose_app.cli.main import main

    window = make_window(max_speed=True, loop=False)
    window.open_source(str(walk_clip.path))
    qtbot.waitUntil(lambda: window.source_info is not None and window.inference.pipeline is not None, timeout=GUI_WAIT_MS)
    window.start_recording(tmp_path / "r.csv", tmp_path / "r.json", angles_path=tmp_path / "r.angles.csv",
                           reps_path=tmp_path / "r.reps.csv")
    qtbot.waitUntil(lambda: window.capture.paused and window.capture.last_index == walk_clip.frame_count - 1,
                    timeout=GUI_WAIT_MS)
    qtbot.waitUntil(lambda: window.last_result.frame.index == walk_clip.frame_count - 1, timeout=GUI_WAIT_MS)
    assert window.stop_recording() > 10
    assert main(["angles", str(tmp_path / "r.csv"), "--out", str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "r.angles.csv").read_text() == (tmp_path / "again.csv").read_text()
    assert main(["reps", str(tmp_path / "r.csv"), "--out", str(tmp_path / "again.reps.csv")]) == 0
    assert (tmp_path / "r.reps.csv").read_text() == (tmp_path / "again.reps.csv").read_text()


# ------------------------------------------------------------------------------ readable and following


def squat_frames(seconds=6.0, knee_seen_every=1):
    """A side-view squat's angles at 30 fps: knees 170 -> 90 every 2 s, hips following, elbows and
    shoulders still (a little jitter); the knees known on every `knee_seen_every`-th frame."""
    times = np.arange(0.0, seconds, 1 / 30)
    knee = 130.0 + 40.0 * np.cos(np.pi * times)
    rng = np.random.default_rng(2)
    frames = []
    for row, time_s in enumerate(times):
        degrees = np.full((1, len(ANGLE_NAMES)), np.nan)
        for name, value in (("left_knee", knee[row]), ("right_knee", knee[row] + 2), ("left_hip", knee[row] - 10),
                            ("left_elbow", 100 + rng.normal(0, 1)), ("right_elbow", 95 + rng.normal(0, 1)),
                            ("left_shoulder", 30 + rng.normal(0, 1))):
            degrees[0, ANGLE_NAMES.index(name)] = value
        if row % knee_seen_every:
            degrees[0, [ANGLE_NAMES.index("left_knee"), ANGLE_NAMES.index("right_knee")]] = np.nan
        frames.append(FrameAngles(time_s, np.array([4]), degrees, None, np.where(np.isfinite(degrees), 0.9, 0.1)))
    return frames


def test_the_dock_follows_the_motion_shows_the_whole_range_and_a_legend_beside_the_curves(qtbot):
    dock = AngleDock()
    qtbot.addWidget(dock)
    dock.resize(1100, 260)
    dock.show()
    qtbot.waitExposed(dock)
    followed = []
    dock.angles_changed.connect(followed.append)
    assert dock.follow.isChecked()  # the default
    for angles in squat_frames():
        dock.add(angles)
    qtbot.waitUntil(lambda: "left_hip" in dock.chosen_angles(), timeout=5000)
    assert set(dock.chosen_angles()) == {"left_knee", "right_knee", "left_hip"}  # the elbows do not move
    assert followed and set(followed[-1]) == set(dock.chosen_angles())  # the overlay draws what is plotted
    qtbot.waitUntil(lambda: dock.plotted("right_knee") is not None, timeout=5000)
    low, high = dock.y_limits()
    assert low <= 80.0 and high >= 172.0 and high <= 185.0  # the hip's 80 to the knee's 172, all of it
    assert dock.plot.getPlotItem().legend is None  # no legend drawn over the curves ...
    assert all(name in dock.legend_text() for name in ("left knee", "right knee", "left hip"))  # ... it is above them
    for angle in dock.chosen_angles():  # each name in its curve's colour
        red, green, blue, _ = dock._curves[(angle, False)].opts["pen"].color().getRgb()
        assert f'rgb({red}, {green}, {blue})">━━</span> {angle.replace("_", " ")}' in dock.legend.text()
    # Ticking an angle yourself stops the following.
    toggles = []
    dock.follow_changed.connect(toggles.append)
    dock.angle_list.item(ANGLE_NAMES.index("left_elbow")).setCheckState(Qt.CheckState.Checked)
    assert not dock.follow.isChecked() and toggles == [False] and "left_elbow" in dock.chosen_angles()


def test_every_row_of_the_angle_list_is_visible_and_a_thinly_seen_angle_says_so(qtbot):
    dock = AngleDock()
    qtbot.addWidget(dock)
    dock.resize(1100, 260)
    dock.show()
    qtbot.waitExposed(dock)
    viewport = dock.angle_list.viewport().rect()
    for row in range(dock.angle_list.count()):
        assert viewport.contains(dock.angle_list.visualItemRect(dock.angle_list.item(row))), row
    dock.set_follow(False)
    dock.set_chosen_angles(("left_knee", "left_elbow"))
    for angles in squat_frames(3.0, knee_seen_every=5):  # the knee in 1 frame of 5
        dock.add(angles)
    qtbot.waitUntil(lambda: "seen in 20 %" in dock.legend_text(), timeout=5000)
    assert "left elbow ⚠" not in dock.legend_text()


def test_the_counter_times_a_hold(qtbot):
    dock = AngleDock()
    qtbot.addWidget(dock)
    dock.show()
    qtbot.waitExposed(dock)
    dock.counter_mode.setCurrentIndex(dock.counter_mode.findData("hold"))
    assert not dock.rep_angle.isEnabled()
    rng = np.random.default_rng(4)
    plank = {"elbow": 90.0, "shoulder": 85.0, "hip": 172.0, "knee": 176.0, "body_line": 170.0}
    for time_s in np.arange(0.0, 4.0, 1 / 30):
        degrees = np.full((1, len(ANGLE_NAMES)), np.nan)
        for joint, value in plank.items():
            degrees[0, ANGLE_NAMES.index(f"left_{joint}")] = value + rng.normal(0, 1)
        dock.add(FrameAngles(time_s, np.array([1]), degrees, None, np.where(np.isfinite(degrees), 0.9, 0.1)))
    qtbot.waitUntil(lambda: dock.rep_last.text().startswith("holding"), timeout=5000)
    assert float(dock.rep_count.text().removesuffix(" s")) == pytest.approx(4.0, abs=0.2)
    assert "body line 170 ± 1°" in dock.rep_last.text()
