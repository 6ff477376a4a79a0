"""`frames_per_second`: the one frame rate from frame times that the recordings (a live source's
video and finished outputs) and the app's status bar and automation report use."""

from collections import deque

import pytest

from pose_app.core.frames import frames_per_second
from pose_app.gui.stats import RateMeter


def test_rate_is_intervals_over_the_time_they_span():
    assert frames_per_second([0.0, 0.1, 0.2, 0.3]) == pytest.approx(10.0)
    # Uneven steps: the mean rate over the span, not the rate of any one step.
    assert frames_per_second([1.0, 1.5, 1.6, 3.0]) == pytest.approx(1.5)
    assert frames_per_second(deque([2.0, 2.04])) == pytest.approx(25.0)


def test_no_rate_without_two_frames_apart_in_time():
    assert frames_per_second([]) is None
    assert frames_per_second([4.0]) is None
    assert frames_per_second([4.0, 4.0]) is None
    assert frames_per_second([4.0, 3.0]) is None  # time went back (a seek): no rate, not a negative one


def test_rate_meter_counts_the_ticks_of_its_window():
    now = [0.0]
    meter = RateMeter(window_s=1.0, clock=lambda: now[0])
    assert meter.rate() == 0.0
    for step in range(11):
        now[0] = step * 0.05
        meter.tick()
    assert meter.rate() == pytest.approx(20.0)
    now[0] = 10.0  # every tick is older than the window
    assert meter.rate() == 0.0
