"""Joint and segment angles (pose_app/core/angles.py) and `pose-app angles`.

Synthetic poses of known geometry check the conventions (docs/angles.md): joint angles 0..180 with
180 straight, segment directions counter-clockwise on screen from +x in (-180, 180], the
missing-keypoint rule, mirroring. `pose-app angles` runs on the long CSV of a real `pose-app
process` run on the generated walker clip."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from known_poses import STANDING

from pose_app.analysis.angles import angle_series, range_of_motion
from pose_app.cli.main import main
from pose_app.core.angles import ANGLE_NAMES, ANGLES, JOINT_ANGLES, compute_angles, parse_angle_names
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.skeleton import FLIP_PERMUTATION, KEYPOINT_INDEX, NUM_KEYPOINTS
from pose_app.errors import PoseAppError
from pose_app.io.angle_csv import AngleCsvWriter, angle_rows
from pose_app.io.csv_tables import read_angle_csv, read_keypoint_csv
from pose_app.io.formats import ANGLE_CSV_COLUMNS

EXPECTED = {
    "left_elbow": 90, "right_elbow": 180, "left_shoulder": 90, "right_shoulder": 0,
    "left_hip": 180, "right_hip": 180, "left_knee": 180, "right_knee": 135,
    # Shoulder, hip and ankle in line on the left; the right ankle 60 px out from under a 140 px drop.
    "left_body_line": 180, "right_body_line": 180 - math.degrees(math.atan2(60, 140)),
    "trunk": 90, "shoulder_line": 0, "hip_line": 0,
    "left_upper_arm": 0, "right_upper_arm": -90, "left_forearm": 90, "right_forearm": -90,
    "left_thigh": -90, "right_thigh": -90, "left_shank": -90, "right_shank": -45,
}


def pose(points: dict[str, tuple[float, float]] = STANDING, score: float = 0.9) -> np.ndarray:
    keypoints = np.zeros((NUM_KEYPOINTS, 3))
    for name, (x, y) in points.items():
        keypoints[KEYPOINT_INDEX[name]] = (x, y, score)
    return keypoints


def angles_of(keypoints: np.ndarray, names=ANGLE_NAMES) -> dict[str, float]:
    degrees, _ = compute_angles(keypoints, names)
    return dict(zip(names, degrees.tolist()))


def circular_difference(a, b):
    return (np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0


def test_every_angle_of_a_pose_of_known_geometry():
    got = angles_of(pose())
    assert set(got) == set(EXPECTED) == set(ANGLE_NAMES)
    for name, expected in EXPECTED.items():
        assert got[name] == pytest.approx(expected, abs=1e-9), name


def test_right_angle_elbow_straight_knee_upright_trunk_and_a_segment_down_right():
    got = angles_of(pose())
    assert got["left_elbow"] == pytest.approx(90)
    assert got["left_knee"] == pytest.approx(180)
    assert got["trunk"] == pytest.approx(90)  # hips -> shoulders points up on screen: +90
    assert got["right_shank"] == pytest.approx(-45)  # knee -> ankle points down and to the right


@pytest.mark.parametrize(
    "wrist, expected",
    [
        ((260, 160), 0), ((230, 130), 45), ((170, 130), 135), ((170, 160), 180), ((170, 190), -135),
        ((200, 100), 90), ((200, 220), -90), ((230, 190), -45),
    ],
)
def test_segment_direction_is_counter_clockwise_on_screen_from_plus_x(wrist, expected):
    """Forearm from the elbow at (200, 160): y grows downwards in the image, so up on screen is
    +90; pointing left is 180, never -180."""
    points = dict(STANDING, left_elbow=(200, 160), left_wrist=wrist)
    got = angles_of(pose(points), ["left_forearm"])["left_forearm"]
    assert got == pytest.approx(expected, abs=1e-9)
    assert -180 < got <= 180


def test_joint_angles_are_unsigned_inner_angles():
    # The wrist on either side of the upper arm's line gives the same elbow angle.
    bent_in = dict(STANDING, left_elbow=(230, 160), left_wrist=(290, 160))
    bent_out = dict(STANDING, left_elbow=(230, 160), left_wrist=(170, 160))
    assert angles_of(pose(bent_in))["left_elbow"] == pytest.approx(90)
    assert angles_of(pose(bent_out))["left_elbow"] == pytest.approx(90)
    folded = dict(STANDING, left_elbow=(230, 160), left_wrist=(230, 110))
    assert angles_of(pose(folded))["left_elbow"] == pytest.approx(0)


def test_the_lines_are_measured_right_to_left_and_tilt_positive_when_the_left_side_is_higher():
    tilted = dict(STANDING, left_shoulder=(230, 90), left_hip=(230, 210))
    got = angles_of(pose(tilted))
    assert got["shoulder_line"] == pytest.approx(math.degrees(math.atan2(10, 60)))
    assert got["hip_line"] == pytest.approx(-math.degrees(math.atan2(10, 60)))
    # Facing away from the camera, the left shoulder is on the image's left: about 180.
    away = dict(STANDING, left_shoulder=(170, 100), right_shoulder=(230, 100))
    assert angles_of(pose(away))["shoulder_line"] == 180


def test_one_keypoint_below_the_threshold_makes_its_angles_missing_and_reports_the_confidence():
    keypoints = pose()
    keypoints[KEYPOINT_INDEX["left_wrist"], 2] = 0.29
    degrees, confidence = compute_angles(keypoints)
    by_name = dict(zip(ANGLE_NAMES, zip(degrees.tolist(), confidence.tolist())))
    for name in ("left_elbow", "left_forearm"):
        value, score = by_name[name]
        assert math.isnan(value) and score == pytest.approx(0.29), name
    others = [name for name in ANGLE_NAMES if "left_wrist" not in ANGLES[name].keypoints]
    assert all(by_name[name][0] == pytest.approx(EXPECTED[name]) for name in others)
    assert all(by_name[name][1] == pytest.approx(0.9) for name in others)
    # At the threshold exactly the keypoint counts as seen (as the overlay draws it).
    keypoints[KEYPOINT_INDEX["left_wrist"], 2] = MIN_KEYPOINT_SCORE
    assert angles_of(keypoints)["left_elbow"] == pytest.approx(90)
    # Confidence is the lowest score of all the angle's keypoints (trunk: four).
    keypoints[KEYPOINT_INDEX["right_hip"], 2] = 0.1
    degrees, confidence = compute_angles(keypoints, ["trunk", "hip_line", "left_shoulder"])
    assert math.isnan(degrees[0]) and math.isnan(degrees[1]) and degrees[2] == pytest.approx(90)
    assert confidence.tolist() == pytest.approx([0.1, 0.1, 0.9])


def test_a_nan_score_or_a_zero_length_segment_gives_no_angle():
    keypoints = pose()
    keypoints[KEYPOINT_INDEX["nose"], 2] = np.nan  # unused by any angle: changes nothing
    keypoints[KEYPOINT_INDEX["right_ankle"], 2] = np.nan
    got = angles_of(keypoints)
    assert math.isnan(got["right_knee"]) and math.isnan(got["right_shank"])
    assert got["left_knee"] == pytest.approx(180)
    collapsed = dict(STANDING, left_wrist=STANDING["left_elbow"])
    got = angles_of(pose(collapsed))
    assert math.isnan(got["left_elbow"]) and math.isnan(got["left_forearm"])
    assert got["left_upper_arm"] == pytest.approx(0)
    # Hip midpoint on the shoulder midpoint: the trunk has no direction.
    crouched = dict(STANDING, left_hip=(230, 100), right_hip=(170, 100))
    assert math.isnan(angles_of(pose(crouched))["trunk"])


def test_mirroring_the_image_and_swapping_labels_keeps_joint_angles_and_mirrors_segment_angles():
    """A selfie (mirrored) recording of a pose, processed with --mirrored-input: the network labels
    the mirror image by appearance (the person's left wrist looks like a right one), the pipeline
    swaps the labels back, x stays the mirror image's. Left and right stay anatomical: each joint
    angle is the same, each segment angle a becomes 180 - a."""
    rng = np.random.default_rng(3)
    width = 640
    poses = np.concatenate([rng.uniform(0, 480, (50, NUM_KEYPOINTS, 2)), np.full((50, NUM_KEYPOINTS, 1), 0.8)], axis=-1)
    mirror_image = poses.copy()
    mirror_image[..., 0] = width - 1 - mirror_image[..., 0]
    labelled_by_appearance = mirror_image[:, list(FLIP_PERMUTATION)]
    written = labelled_by_appearance[:, list(FLIP_PERMUTATION)]  # --mirrored-input swaps them back
    before, _ = compute_angles(poses)
    after, _ = compute_angles(written)
    assert np.isfinite(before).all()
    for a, name in enumerate(ANGLE_NAMES):
        expected = before[:, a] if ANGLES[name].kind == "joint" else 180.0 - before[:, a]
        assert np.abs(circular_difference(after[:, a], expected)).max() < 1e-9, name
        assert np.all((after[:, a] > -180) & (after[:, a] <= 180)), name
    # The labels by appearance alone (no swap back) would describe the mirror twin: its left
    # elbow is the person's right one.
    twin, _ = compute_angles(labelled_by_appearance)
    left, right = ANGLE_NAMES.index("left_elbow"), ANGLE_NAMES.index("right_elbow")
    np.testing.assert_allclose(twin[:, left], before[:, right])


def test_angles_are_vectorised_over_poses_and_any_leading_shape():
    rng = np.random.default_rng(0)
    poses = np.concatenate([rng.uniform(0, 500, (7, NUM_KEYPOINTS, 2)), rng.uniform(0, 1, (7, NUM_KEYPOINTS, 1))], axis=-1)
    degrees, confidence = compute_angles(poses)
    assert degrees.shape == confidence.shape == (7, len(ANGLE_NAMES))
    one_by_one = np.stack([compute_angles(p)[0] for p in poses])
    np.testing.assert_array_equal(degrees, one_by_one)
    batched, _ = compute_angles(np.stack([poses, poses[::-1]]))
    assert batched.shape == (2, 7, len(ANGLE_NAMES))
    np.testing.assert_array_equal(batched[1], degrees[::-1])
    subset, subset_confidence = compute_angles(poses, ["trunk", "left_knee"])
    np.testing.assert_array_equal(subset, degrees[:, [ANGLE_NAMES.index("trunk"), ANGLE_NAMES.index("left_knee")]])
    assert compute_angles(np.zeros((0, NUM_KEYPOINTS, 3)))[0].shape == (0, len(ANGLE_NAMES))
    with pytest.raises(ValueError):
        compute_angles(np.zeros((17, 2)))
    with pytest.raises(ValueError):
        compute_angles(poses, ["elbow_of_nobody"])


def test_angle_names_sides_and_sets():
    assert parse_angle_names(None) == ANGLE_NAMES
    assert parse_angle_names("", default=JOINT_ANGLES) == JOINT_ANGLES
    assert parse_angle_names("knee, trunk,left_knee") == ("left_knee", "right_knee", "trunk")
    assert parse_angle_names("joints") == JOINT_ANGLES
    assert len(parse_angle_names("all")) == len(ANGLE_NAMES) == 21
    with pytest.raises(PoseAppError, match="no angle named 'elbo'"):
        parse_angle_names("elbo")


def test_range_of_motion_of_joints_and_of_segments_swinging_through_180():
    assert range_of_motion(np.array([170.0, np.nan, 20.0, 95.0])) == (20.0, 170.0, 150.0)
    assert range_of_motion(np.array([-100.0, -80.0]), "segment") == (-100.0, -80.0, 20.0)
    low, high, swept = range_of_motion(np.array([170.0, -170.0, 175.0, np.nan]), "segment")
    assert (low, high, swept) == pytest.approx((170.0, 190.0, 20.0))
    assert all(math.isnan(v) for v in range_of_motion(np.array([np.nan]), "segment"))


# ---------------------------------------------------------------------------- the CSV


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_angle_rows_order_columns_and_number_formats():
    keypoints = np.stack([pose(), pose()])
    keypoints[0, KEYPOINT_INDEX["left_wrist"], 2] = 0.123456
    keypoints[1, KEYPOINT_INDEX["left_ankle"]] = (231, 360, 0.9)  # knee a little bent
    text = angle_rows('clip, "take 2".mp4', 12, 0.4, [7, 3], keypoints, ["left_elbow", "left_knee", "trunk"])
    rows = parse(text)
    assert text.endswith("\n") and "\r" not in text
    assert all(len(row) == len(ANGLE_CSV_COLUMNS) for row in rows)
    # Person 3 (the second pose) first, then 7; angles in the order asked.
    assert [(row[3], row[4]) for row in rows] == [
        ("3", "left_elbow"), ("3", "left_knee"), ("3", "trunk"), ("7", "left_elbow"), ("7", "left_knee"), ("7", "trunk"),
    ]
    assert rows[0][:3] == ['clip, "take 2".mp4', "12", "0.400"]
    assert rows[0][5:] == ["90.00", "0.9000"]
    assert rows[1][5] == f"{180 - math.degrees(math.atan2(1, 80)):.2f}" == "179.28"
    assert rows[2][5:] == ["90.00", "0.9000"]
    assert rows[3][5:] == ["", "0.1235"]  # missing: empty degrees, confidence still given


def test_no_negative_zero_and_no_minus_180_in_the_file():
    points = dict(STANDING, left_elbow=(200, 160), left_wrist=(150, 160.000001), right_wrist=(171e-9 + 170, 220))
    rows = parse(angle_rows("a.mp4", 0, 0.0, [0], pose(points)[None], ["left_forearm", "shoulder_line"]))
    assert rows[0][5] == "180.00" and rows[1][5] == "0.00"
    tiny = dict(STANDING, right_shoulder=(170, 100.00001))
    assert parse(angle_rows("a.mp4", 0, 0.0, [0], pose(tiny)[None], ["shoulder_line"]))[0][5] == "0.00"


def test_the_writer_writes_the_header_and_angle_rows_frame_by_frame(tmp_path):
    path = tmp_path / "a.csv"
    with AngleCsvWriter(path, ["left_knee", "right_shank"]) as writer:
        writer.write_frame("v.mp4", 0, 0.0, [0], pose()[None])
        assert path.read_text().count("\n") == 3  # flushed with each frame
        writer.write_frame("v.mp4", 1, 0.033, [], np.zeros((0, 17, 3)))
        writer.write_frame("v.mp4", 2, 0.067, [1, 0], np.stack([pose(score=0.1), pose()]))
    expected = (
        ",".join(ANGLE_CSV_COLUMNS) + "\n"
        + angle_rows("v.mp4", 0, 0.0, [0], pose()[None], ["left_knee", "right_shank"])
        + angle_rows("v.mp4", 2, 0.067, [1, 0], np.stack([pose(score=0.1), pose()]), ["left_knee", "right_shank"])
    )
    assert path.read_text() == expected
    assert (writer.rows, writer.missing) == (6, 2)
    with pytest.raises(PoseAppError, match="does not exist"):
        AngleCsvWriter(tmp_path / "no" / "a.csv")
    with pytest.raises(PoseAppError, match="no angle named"):
        AngleCsvWriter(tmp_path / "b.csv", ["wrist"])


# ------------------------------------------------------------ pose-app angles on a real run


def run_cli(capsys, *argv):
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_pose_app_angles_writes_exactly_the_rows_of_angle_rows(walk_keypoints, walk_clip, tmp_path, capsys):
    out = tmp_path / "walk.angles.csv"
    code, stdout, stderr = run_cli(capsys, "angles", walk_keypoints, "--out", out)
    assert code == 0 and stderr == ""
    assert f"60 frames, 1 people, 21 angles -> {60 * 21} rows" in stdout
    table = read_keypoint_csv(walk_keypoints)
    assert [frame.frame for frame in table.frames] == list(range(60))
    expected = ",".join(ANGLE_CSV_COLUMNS) + "\n" + "".join(
        angle_rows(frame.source, frame.frame, frame.time_s, frame.person_ids, frame.keypoints) for frame in table.frames
    )
    assert out.read_text(encoding="utf-8") == expected
    with open(out, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == ANGLE_CSV_COLUMNS
    assert [row["angle"] for row in rows[:len(ANGLE_NAMES)]] == list(ANGLE_NAMES)
    assert {row["source"] for row in rows} == {str(walk_clip)}
    for row in rows:
        assert row["degrees"] == "" or (len(row["degrees"].split(".")[1]) == 2 and -180 < float(row["degrees"]) <= 180)
        assert len(row["confidence"].split(".")[1]) == 4 and len(row["time_s"].split(".")[1]) == 3

    # Independently of read_keypoint_csv: the shoulder line from the raw keypoint rows.
    with open(walk_keypoints, newline="", encoding="utf-8") as file:
        raw = {(r["frame"], r["keypoint"]): r for r in csv.DictReader(file)}
    seen = 0
    for row in (r for r in rows if r["angle"] == "shoulder_line"):
        left, right = raw[(row["frame"], "left_shoulder")], raw[(row["frame"], "right_shoulder")]
        scores = float(left["score"]), float(right["score"])
        assert float(row["confidence"]) == pytest.approx(min(scores), abs=1e-12)
        if min(scores) < 0.3:
            assert row["degrees"] == ""
            continue
        dx, dy = float(left["x"]) - float(right["x"]), float(left["y"]) - float(right["y"])
        assert float(row["degrees"]) == pytest.approx(math.degrees(math.atan2(-dy, dx)), abs=0.006)
        seen += 1
    assert seen > 30  # the walker's shoulders are seen on most frames

    # Read back as series, the angles CSV gives the angles computed from the keypoints.
    from_csv = read_angle_csv(out)
    from_keypoints = angle_series(table)
    assert len(from_csv) == len(from_keypoints) == 1
    np.testing.assert_allclose(from_csv[0].degrees, from_keypoints[0].degrees, atol=0.005)
    np.testing.assert_array_equal(from_csv[0].frames, from_keypoints[0].frames)


def test_pose_app_angles_with_chosen_angles(walk_keypoints, tmp_path, capsys):
    out = tmp_path / "some.csv"
    assert run_cli(capsys, "angles", walk_keypoints, "--out", out, "--angle-names", "shoulder_line,elbow")[0] == 0
    with open(out, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["angle"] for row in rows[:3]] == ["shoulder_line", "left_elbow", "right_elbow"]
    assert len(rows) == 60 * 3


def test_pose_app_angles_orders_sources_frames_and_people(tmp_path, capsys):
    """Rows out of order in the keypoint CSV come out by source (first appearance), frame, person."""
    header = "source,frame,time_s,person_id,person_score,keypoint,x,y,score,x_norm,y_norm\n"
    lines = []
    for source, frame, person in (("b.mp4", 2, 4), ("b.mp4", 1, 9), ("a.mp4", 0, 0), ("b.mp4", 1, 2)):
        for name, (x, y) in STANDING.items():
            lines.append(f"{source},{frame},{frame / 30:.3f},{person},0.8,{name},{x:.2f},{y:.2f},0.9000,{x / 640:.6f},{y / 480:.6f}\n")
    keypoints = tmp_path / "k.csv"
    keypoints.write_text(header + "".join(lines), encoding="utf-8")
    out = tmp_path / "a.csv"
    assert run_cli(capsys, "angles", keypoints, "--out", out, "--angle-names", "trunk")[0] == 0
    rows = parse(out.read_text())[1:]
    assert [(r[0], r[1], r[3]) for r in rows] == [("b.mp4", "1", "2"), ("b.mp4", "1", "9"), ("b.mp4", "2", "4"), ("a.mp4", "0", "0")]
    assert {r[5] for r in rows} == {"90.00"}
    assert read_keypoint_csv(keypoints).frame_sizes == {"b.mp4": (640, 480), "a.mp4": (640, 480)}


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file"),
        ("angles-csv", "not a pose-app keypoint CSV"),
        ("binary", "not a pose-app"),
        ("bad-row", "line 3: not a pose-app keypoint row"),
        ("bad-angle", "no angle named 'wrist'"),
        ("no-folder", "does not exist"),
        ("same-file", "is one of the inputs"),
    ],
)
def test_pose_app_angles_bad_input_is_one_line_and_exit_2(case, message, walk_keypoints, tmp_path, capsys):
    source, out, extra = walk_keypoints, tmp_path / "out.csv", []
    if case == "missing":
        source = tmp_path / "nothing.csv"
    elif case == "angles-csv":
        source = tmp_path / "angles.csv"
        source.write_text(",".join(ANGLE_CSV_COLUMNS) + "\n")
    elif case == "binary":
        source = tmp_path / "video.csv"
        source.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)))
    elif case == "bad-row":
        source = tmp_path / "bad.csv"
        lines = walk_keypoints.read_text().splitlines(keepends=True)[:5]
        fields = lines[2].split(",")
        fields[-5] = "left"  # x
        lines[2] = ",".join(fields)
        source.write_text("".join(lines))
    elif case == "bad-angle":
        extra = ["--angle-names", "knee,wrist"]
    elif case == "no-folder":
        out = tmp_path / "no" / "out.csv"
    elif case == "same-file":
        source = tmp_path / "copy.csv"
        source.write_text(walk_keypoints.read_text())
        out = source
    before = source.read_bytes() if source.exists() else None
    code, stdout, stderr = run_cli(capsys, "angles", source, "--out", out, *extra)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("pose-app: error: ") and message in stderr, stderr
    assert not (out.exists() and out != source)
    if before is not None:
        assert source.read_bytes() == before


@pytest.mark.parametrize("fill_gaps", ["0", "3"])
def test_process_angles_equal_pose_app_angles_on_the_same_runs_keypoint_csv(tmp_path, walk_clip, fill_gaps):
    keypoints, angles, again = tmp_path / "walk.csv", tmp_path / "walk.angles.csv", tmp_path / "again.csv"
    assert main(["process", str(walk_clip), "--csv", str(keypoints), "--angles", str(angles),
                 "--fill-gaps", fill_gaps]) == 0
    assert main(["angles", str(keypoints), "--out", str(again)]) == 0
    written = angles.read_text()
    assert written == again.read_text()  # byte for byte, gap-filled keypoints included
    rows = written.splitlines()
    assert rows[0] == ",".join(ANGLE_CSV_COLUMNS) and len(rows) > 60 * 10
    # Her shoulders are in view: the shoulder line is known on most frames.
    shoulder_line = [row.split(",")[5] for row in rows[1:] if row.split(",")[4] == "shoulder_line"]
    assert sum(value != "" for value in shoulder_line) > len(shoulder_line) / 2


def test_process_out_dir_writes_the_angles_format(tmp_path, walk_clip):
    assert main(["process", str(walk_clip), "--end", "0.3", "--out-dir", str(tmp_path), "--formats", "csv,angles"]) == 0
    assert (tmp_path / f"{walk_clip.stem}.angles.csv").read_text().startswith(",".join(ANGLE_CSV_COLUMNS))
