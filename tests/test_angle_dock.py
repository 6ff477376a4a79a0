"""The angle dock's history (no Qt) and its plot of one person's chosen angles."""

import numpy as np
import pytest

from pose_app.angles import ANGLE_NAMES
from pose_app.gui.angle_dock import AngleDock, AngleHistory, FrameAngles

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
    for step in range(20):
        dock.add(frame(step / 10, [3, 7], [100.0 + step, 150.0], [101.0 + step, 149.0]))
    qtbot.waitUntil(lambda: ("left_knee", False) in dock._curves, timeout=5000)
    x, y = dock._curves[("left_knee", False)].getData()
    assert dock.shown_person() == 3 and y[-1] == pytest.approx(119.0)
    assert ("left_knee", True) not in dock._curves  # the raw curve only on request
    dock.show_raw.setChecked(True)
    dock.person.setCurrentIndex(dock.person.findData(7))
    qtbot.waitUntil(lambda: ("left_knee", True) in dock._curves, timeout=5000)
    qtbot.waitUntil(lambda: dock._curves[("left_knee", False)].getData()[1][-1] == pytest.approx(150.0), timeout=5000)
    assert dock._curves[("left_knee", True)].getData()[1][-1] == pytest.approx(149.0)
