"""Holds of an isometric exercise: found on synthetic angle series with known holds (a straight or
sagging body line, a break, gaps, glitches, thin data), written by `pose-app holds` with its
report, and bad input refused in one line."""

import math

import numpy as np
import pytest
from test_reps import FPS, squat_pose, write_keypoint_csv

from pose_app.analysis.holds import HOLD_ANGLES, HoldSettings, find_holds, hold_notes
from pose_app.cli.main import main
from pose_app.io.csv_tables import AngleSeries
from pose_app.io.holds_csv import HOLDS_CSV_COLUMNS, read_holds_csv

# A plank: kneeling (left) -> plank (right), each watched joint's angle.
KNEELING = {"elbow": 170.0, "shoulder": 60.0, "hip": 100.0, "knee": 90.0, "body_line": 120.0, "trunk": 170.0}
PLANK = {"elbow": 170.0, "shoulder": 80.0, "hip": 176.0, "knee": 176.0, "body_line": 178.0, "trunk": 176.0}
HOLD_FROM, HOLD_TO = 2.5, 9.5  # the plank is reached at 2.5 s and left at 9.5 s
MOVE_S = 1.5  # getting into and out of it


def ease(times, start, end):
    """0 before start, 1 after end, a raised cosine between."""
    phase = np.clip((times - start) / (end - start), 0.0, 1.0)
    return (1 - np.cos(np.pi * phase)) / 2


def plank_series(duration=12.0, noise=1.2, seed=3, sag=0.0, confidence=0.9):
    """An AngleSeries of HOLD_ANGLES (both sides alike): kneeling, into a plank over MOVE_S,
    held from HOLD_FROM to HOLD_TO (the body line and hip sagging by `sag` degrees over it),
    out again, kneeling."""
    times = np.arange(0.0, duration, 1 / FPS)
    into = ease(times, HOLD_FROM - MOVE_S, HOLD_FROM)
    out = ease(times, HOLD_TO, HOLD_TO + MOVE_S)
    rng = np.random.default_rng(seed)
    degrees = np.zeros((len(times), len(HOLD_ANGLES)))
    for column, name in enumerate(HOLD_ANGLES):
        group = name.removeprefix("left_").removeprefix("right_")
        value = KNEELING[group] + (PLANK[group] - KNEELING[group]) * (into - out)
        if group in ("hip", "body_line") and sag:
            value = value - sag * np.clip((times - HOLD_FROM) / (HOLD_TO - HOLD_FROM), 0, 1) * (into - out)
        degrees[:, column] = value + rng.normal(0.0, noise, len(times))
    return AngleSeries("plank.mp4", 0, HOLD_ANGLES, np.arange(len(times)), times, degrees,
                       np.full_like(degrees, confidence))


HALF_TOLERANCE = HoldSettings().tolerance_deg / 2


def reached(tolerance=HALF_TOLERANCE):
    """When the script's plank is within `tolerance` of every joint: the hold's true start and end."""
    largest = max(abs(PLANK[group] - KNEELING[group]) for group in PLANK)
    share = tolerance / largest  # the phase at which the largest move is that close
    offset = MOVE_S * math.acos(1 - 2 * (1 - share)) / math.pi
    return HOLD_FROM - MOVE_S + offset, HOLD_TO + MOVE_S - offset


def test_a_plank_with_a_straight_body_line_is_one_hold_from_reaching_to_leaving_the_position():
    analysis = find_holds(plank_series())
    assert len(analysis.holds) == 1
    (hold,) = analysis.holds
    start, end = reached()
    assert hold.start_s == pytest.approx(start, abs=0.15) and hold.end_s == pytest.approx(end, abs=0.15)
    assert hold.breaks == () and hold.held_s == pytest.approx(hold.duration_s)
    line = hold.body_line
    assert line.side == "left" and line.seen == 1.0
    assert line.mean_deg == pytest.approx(PLANK["body_line"], abs=0.5) and line.sd_deg < 1.5
    assert hold_notes(hold) == []
    # Kneeling is a hold too once long enough (a hold is keeping still).
    longer = find_holds(plank_series(duration=16.0))
    assert [round(h.start_s) for h in longer.holds] == [2, 11]  # the first kneeling lasts 1 s: too short


def test_a_sagging_body_line_stays_one_hold_and_the_spread_and_lowest_angle_show_the_sag():
    (hold,) = find_holds(plank_series(sag=18.0)).holds
    line = hold.body_line
    assert line.mean_deg == pytest.approx(PLANK["body_line"] - 9.0, abs=1.5)
    assert line.min_deg == pytest.approx(PLANK["body_line"] - 18.0, abs=3.0)
    assert line.sd_deg > 4.0  # a straight hold's spread is the noise, about 1
    assert hold.start_s == pytest.approx(reached()[0], abs=0.15)


def test_a_moment_out_of_position_is_a_break_and_a_long_one_ends_the_hold():
    def dropped(series, start, end):
        """The knees down (hip, knee and body line bent) from start to end."""
        inside = (series.time_s >= start) & (series.time_s < end)
        for column, name in enumerate(HOLD_ANGLES):
            group = name.removeprefix("left_").removeprefix("right_")
            if group in ("hip", "knee", "body_line"):
                series.degrees[inside, column] = KNEELING[group]
        return series

    short = find_holds(dropped(plank_series(), 5.0, 5.6))
    assert len(short.holds) == 1
    (hold,) = short.holds
    ((break_start, break_end),) = hold.breaks
    # Smoothing spreads the instant drop of the script over a few frames either side.
    assert break_start == pytest.approx(5.0, abs=0.2) and break_end == pytest.approx(5.6, abs=0.2)
    assert hold.held_s == pytest.approx(hold.duration_s - (break_end - break_start))
    long = find_holds(dropped(plank_series(), 5.0, 7.0))
    np.testing.assert_allclose([(h.start_s, h.end_s) for h in long.holds], [(reached()[0], 5.0), (7.0, reached()[1])],
                               atol=0.2)
    # --max-break 3: the same position after 2 s is still the same hold.
    assert len(find_holds(dropped(plank_series(), 5.0, 7.0), HoldSettings(max_break_s=3.0)).holds) == 1


def test_gaps_are_bridged_glitches_ignored_and_a_longer_loss_is_a_break():
    series = plank_series()
    gap = (series.time_s >= 4.0) & (series.time_s < 4.3)  # the person lost for 0.3 s
    series.degrees[gap] = np.nan
    knee = HOLD_ANGLES.index("left_knee")
    for when in (3.3, 5.5, 6.1, 8.0):  # a knee keypoint jumping away for one frame
        series.degrees[np.argmin(abs(series.time_s - when)), [knee, knee + 1]] = 60.0
    (hold,) = find_holds(series).holds
    assert hold.breaks == ()
    lost = plank_series()
    lost.confidence[(lost.time_s >= 6.0) & (lost.time_s < 6.8)] = 0.1  # 0.8 s: longer than --max-gap
    (hold,) = find_holds(lost).holds
    assert len(hold.breaks) == 1 and hold.break_s == pytest.approx(0.8, abs=0.1)
    assert hold.body_line.seen == pytest.approx(1.0)  # the break's frames are not the hold's


def test_a_body_line_seen_in_few_frames_of_the_hold_is_said():
    series = plank_series()
    lines = [HOLD_ANGLES.index("left_body_line"), HOLD_ANGLES.index("right_body_line")]
    flicker = np.arange(len(series.time_s)) % 10 >= 3  # the ankles seen in 3 frames of 10
    series.confidence[np.ix_(flicker, lines)] = 0.2
    (hold,) = find_holds(series).holds
    assert hold.body_line.seen == pytest.approx(0.3, abs=0.03)
    assert hold_notes(hold) == [f"body line seen in only {hold.body_line.seen:.0%} of the hold".replace("%", " %")]
    # Never seen: no numbers, and said.
    series.confidence[:, lines] = 0.2
    (hold,) = find_holds(series).holds
    assert hold.body_line.side == "" and math.isnan(hold.body_line.mean_deg)
    assert hold_notes(hold) == ["body line seen in only 0 % of the hold (shoulder, hip and ankle of one side never all seen)"]


def test_lying_on_the_side_is_not_the_side_plank_that_follows():
    # Lying propped on an elbow, head to the image's left (the trunk points at 180, its jitter
    # crossing +-180), then the hips lift into a side plank: only the shoulder (70 -> 90) and the
    # trunk (180 -> 155) change; elbow, hip, knee and body line stay as they were.
    times = np.arange(0.0, 10.0, 1 / FPS)
    lift = ease(times, 3.0, 3.8)
    rng = np.random.default_rng(8)
    values = {"elbow": 90.0 + 0 * times, "shoulder": 70.0 + 20.0 * lift, "hip": 178.0 + 0 * times,
              "knee": 178.0 + 0 * times, "body_line": 177.0 + 0 * times, "trunk": 180.0 - 25.0 * lift}
    degrees = np.zeros((len(times), len(HOLD_ANGLES)))
    for column, name in enumerate(HOLD_ANGLES):
        group = name.removeprefix("left_").removeprefix("right_")
        degrees[:, column] = values[group] + rng.normal(0.0, 1.0, len(times))
    trunk = HOLD_ANGLES.index("trunk")
    degrees[:, trunk] = (degrees[:, trunk] + 180.0) % 360.0 - 180.0  # as written: in (-180, 180]
    series = AngleSeries("side.mp4", 0, HOLD_ANGLES, np.arange(len(times)), times, degrees, np.full_like(degrees, 0.9))
    lying, plank = find_holds(series).holds
    assert lying.start_s == 0.0 and lying.end_s == pytest.approx(3.0, abs=0.3)
    assert plank.start_s == pytest.approx(3.8, abs=0.3) and plank.end_s == pytest.approx(times[-1], abs=0.05)
    assert lying.breaks == () and plank.breaks == ()
    # Without the trunk the joints alone cannot tell them apart: one hold from the start.
    series.confidence[:, trunk] = 0.0
    (merged,) = find_holds(series).holds
    assert merged.start_s == 0.0


def test_the_live_counter_sees_a_running_hold_before_it_is_long_enough():
    series = plank_series()
    until = series.time_s <= HOLD_FROM + 1.0  # 1 s into the plank
    partial = AngleSeries(series.source, 0, series.names, series.frames[until], series.time_s[until],
                          series.degrees[until], series.confidence[until])
    assert find_holds(partial).holds == []  # not yet the shortest hold
    (running,) = find_holds(partial, open_end=True).holds
    assert running.ongoing and running.duration_s == pytest.approx(1.0 + HOLD_FROM - reached()[0], abs=0.15)


# ------------------------------------------------------------------------------ the command


@pytest.fixture(scope="module")
def wall_sit_csv(tmp_path_factory):
    """Person 1 stands still 0-3 s, goes down to a wall sit (knee 95) by 4 s, holds it to 9 s, stands up by 10 s."""
    times = np.arange(0.0, 11.0, 1 / FPS)
    knee = 175.0 - 80.0 * (ease(times, 3.0, 4.0) - ease(times, 9.0, 10.0))
    knee = knee + np.random.default_rng(5).normal(0.0, 0.8, len(times))
    path = tmp_path_factory.mktemp("holds") / "wallsit.csv"
    write_keypoint_csv(path, {1: np.stack([squat_pose(value) for value in knee])}, times, source="wallsit.mp4")
    return path


def test_holds_writes_one_row_per_hold_and_a_report(wall_sit_csv, tmp_path, capsys):
    out, report = tmp_path / "h.csv", tmp_path / "h.png"
    assert main(["holds", str(wall_sit_csv), "--out", str(out), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    records = read_holds_csv(out)
    assert out.read_text().splitlines()[0] == ",".join(HOLDS_CSV_COLUMNS)
    assert [(r.person_id, r.hold, r.breaks) for r in records] == [(1, 1, 0), (1, 2, 0)]
    standing, sitting = records
    assert standing.start_s == 0.0 and standing.end_s == pytest.approx(3.2, abs=0.2)
    assert sitting.start_s == pytest.approx(3.8, abs=0.2) and sitting.end_s == pytest.approx(9.2, abs=0.2)
    assert sitting.duration_s == pytest.approx(sitting.end_s - sitting.start_s, abs=0.002)
    assert sitting.body_line_side == "left" and sitting.body_line_seen == 1.0
    assert "pose-app holds: person 1: 2 holds" in printed and "  2: 3." in printed and "body line" in printed
    assert report.stat().st_size > 20_000


def test_a_person_not_in_the_file_is_a_one_line_error_and_writes_nothing(wall_sit_csv, tmp_path, capsys):
    out = tmp_path / "h.csv"
    assert main(["holds", str(wall_sit_csv), "--out", str(out), "--person", "9"]) == 2
    error = capsys.readouterr().err
    assert error == "pose-app: error: there is no person_id 9 (the file has 1)\n"
    assert not out.exists()


def test_a_file_that_is_not_a_keypoint_csv_is_refused(wall_sit_csv, tmp_path, capsys):
    holds = tmp_path / "h.csv"
    assert main(["holds", str(wall_sit_csv), "--out", str(holds)]) == 0
    capsys.readouterr()
    assert main(["holds", str(holds), "--out", str(tmp_path / "again.csv")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("pose-app: error: ") and "is not a pose-app keypoint CSV" in error and error.count("\n") == 1
