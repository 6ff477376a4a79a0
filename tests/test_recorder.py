"""PoseRecorder: long/wide CSV, JSON and annotated video with known poses, and its failures."""

from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest

from pose_app.engine import input_transform
from pose_app.errors import PoseAppError
from pose_app.estimator import FramePoses
from pose_app import export
from pose_app.export import LONG_CSV_COLUMNS, WIDE_CSV_COLUMNS, PoseRecorder, fill_gaps_in_files, fit_into_frame
from pose_app.skeleton import KEYPOINT_NAMES
from pose_app.sources import Frame, SourceInfo

WIDTH, HEIGHT = 320, 240
INFO = SourceInfo("clips/walk, take 2.mp4", WIDTH, HEIGHT, 25.0, 50, is_live=False, is_still=False)


def known_poses(frame_index: int, count: int = 2) -> FramePoses:
    """Person p, keypoint k: x = 10 + 15k + p + frame/8, y = 20 + 10k + 2p, score = k / 17."""
    k = np.arange(17)[None, :]
    p = np.arange(count)[:, None]
    x = 10 + 15 * k + p + frame_index / 8
    y = 20 + 10 * k + 2 * p
    keypoints = np.stack(np.broadcast_arrays(x, y, k / 17), axis=-1).astype(np.float32)
    return FramePoses(
        keypoints=keypoints,
        scores=np.linspace(0.9, 0.5, count).astype(np.float32),
        ids=np.arange(7, 7 + count, dtype=np.int64),
        heatmaps=np.zeros((17, 16, 21), np.float32),
        features={},
        transform=input_transform(WIDTH, HEIGHT, 321, 16),
    )


def frame_at(index: int) -> Frame:
    image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    return Frame(image, index, index / 25.0, INFO.name)


def record(tmp_path, frames=3, **paths) -> dict:
    outputs = {kind: tmp_path / name for kind, name in paths.items()}
    with PoseRecorder(INFO, header={"model": "posenet-075", "smoothed": True}, **outputs) as recorder:
        for index in range(frames):
            # Frame 1 has nobody in it: it writes no rows but still counts.
            recorder.write(frame_at(index), known_poses(index, count=0 if index == 1 else 2))
    assert recorder.frames_written == frames
    return outputs


def read_csv_rows(path, columns) -> list[dict]:
    """The rows of a CSV file whose header must be exactly `columns`."""
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames) == columns
        return list(reader)


def test_long_csv_has_17_rows_per_person_with_exact_values(tmp_path):
    outputs = record(tmp_path, csv_path="poses.csv")
    rows = read_csv_rows(outputs["csv_path"], LONG_CSV_COLUMNS)
    assert len(rows) == 2 * 2 * 17  # frames 0 and 2, two people each
    assert {row["source"] for row in rows} == {INFO.name}  # the comma survived CSV quoting
    assert [row["keypoint"] for row in rows[:17]] == list(KEYPOINT_NAMES)
    row = rows[17 + 17 + 17 + 5]  # frame 2, person 1 (id 8), keypoint 5
    assert (row["frame"], row["time_s"], row["person_id"], row["person_score"]) == ("2", "0.080", "8", "0.5000")
    assert float(row["x"]) == pytest.approx(10 + 75 + 1 + 0.25, abs=0.005)
    assert float(row["y"]) == pytest.approx(20 + 50 + 2, abs=0.005)
    assert row["score"] == f"{5 / 17:.4f}" and row["x"] == "86.25"
    for row in rows:
        assert float(row["x_norm"]) == pytest.approx(float(row["x"]) / WIDTH, abs=0.005 / WIDTH + 1e-6)
        assert float(row["y_norm"]) == pytest.approx(float(row["y"]) / HEIGHT, abs=0.005 / HEIGHT + 1e-6)


def test_wide_csv_has_one_row_per_person(tmp_path):
    outputs = record(tmp_path, wide_csv_path="wide.csv")
    rows = read_csv_rows(outputs["wide_csv_path"], WIDE_CSV_COLUMNS)
    assert len(WIDE_CSV_COLUMNS) == 5 + 3 * 17
    assert [(r["frame"], r["person_id"]) for r in rows] == [("0", "7"), ("0", "8"), ("2", "7"), ("2", "8")]
    expected = known_poses(2).keypoints[1]
    got = np.array([[float(rows[3][f"{name}_{c}"]) for c in ("x", "y", "score")] for name in KEYPOINT_NAMES])
    np.testing.assert_allclose(got[:, :2], expected[:, :2], atol=0.005)  # 2 decimals for pixels
    np.testing.assert_allclose(got[:, 2], expected[:, 2], atol=5e-5)  # 4 for scores


def test_json_is_coco_results_with_header(tmp_path):
    outputs = record(tmp_path, json_path="poses.json")
    document = json.loads(outputs["json_path"].read_text())
    header = document["header"]
    assert header["source"] == INFO.name and (header["width"], header["height"]) == (WIDTH, HEIGHT)
    assert header["fps"] == 25.0 and header["frame_count"] == 50
    assert header["model"] == "posenet-075" and header["smoothed"] is True
    assert header["keypoint_names"] == list(KEYPOINT_NAMES) and len(header["skeleton_edges"]) == 19
    assert "top-left pixel" in header["coordinates"] and header["pose_app_version"]
    assert document["complete"] is True and document["frames_written"] == 3
    annotations = document["annotations"]
    assert [(a["image_id"], a["person_id"]) for a in annotations] == [(0, 7), (0, 8), (2, 7), (2, 8)]
    for annotation in annotations:
        assert annotation["category_id"] == 1 and len(annotation["keypoints"]) == 51
        assert annotation["source"] == INFO.name
    last = annotations[-1]
    np.testing.assert_allclose(np.reshape(last["keypoints"], (17, 3)), known_poses(2).keypoints[1], atol=0.005)
    assert last["score"] == 0.5 and last["time_s"] == 0.08


def test_json_stays_valid_and_marked_incomplete_after_an_interruption(tmp_path):
    path = tmp_path / "poses.json"
    with pytest.raises(KeyboardInterrupt):
        with PoseRecorder(INFO, json_path=path, header={}) as recorder:
            recorder.write(frame_at(0), known_poses(0))
            raise KeyboardInterrupt
    document = json.loads(path.read_text())
    assert document["complete"] is False and document["frames_written"] == 1
    assert len(document["annotations"]) == 2


def test_shared_csv_stream_gets_one_header_and_rows_of_every_source():
    stream = io.StringIO()
    other = SourceInfo("second.mp4", WIDTH, HEIGHT, 25.0, 10, False, False)
    for info in (INFO, other):
        with PoseRecorder(info, csv_path=stream) as recorder:
            recorder.write(Frame(frame_at(0).image, 0, 0.0, info.name), known_poses(0, count=1))
    rows = list(csv.reader(io.StringIO(stream.getvalue())))
    assert rows[0] == list(LONG_CSV_COLUMNS) and rows.count(list(LONG_CSV_COLUMNS)) == 1
    assert [row[0] for row in rows[1:]] == [INFO.name] * 17 + ["second.mp4"] * 17


def test_annotated_video_decodes_with_the_right_frames_and_size(tmp_path):
    outputs = record(tmp_path, frames=4, video_path="annotated.mp4")
    capture = cv2.VideoCapture(str(outputs["video_path"]))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 4 and capture.get(cv2.CAP_PROP_FPS) == 25.0
    frames = [capture.read()[1] for _ in range(4)]
    capture.release()
    assert all(f.shape == (HEIGHT, WIDTH, 3) for f in frames)
    # Skeletons were drawn on frames with people (colour departs from the flat grey 40),
    # frame 1 (nobody) stays flat up to compression noise.
    assert np.abs(frames[0].astype(int) - 40).max() > 100
    assert np.abs(frames[1].astype(int) - 40).max() < 30


def test_single_still_with_image_suffix_writes_that_image(tmp_path):
    still = SourceInfo("photo.jpg", WIDTH, HEIGHT, None, 1, is_live=False, is_still=True)
    path = tmp_path / "photo.annotated.png"
    with PoseRecorder(still, video_path=path) as recorder:
        recorder.write(Frame(frame_at(0).image, 0, 0.0, "photo.jpg"), known_poses(0))
    assert cv2.imread(str(path)).shape == (HEIGHT, WIDTH, 3)


@pytest.mark.parametrize("kind", ["csv_path", "wide_csv_path", "json_path", "video_path"])
def test_unwritable_outputs_fail_at_open_time(tmp_path, kind):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for bad, message in (
        (tmp_path / "no-such-dir" / "out.mp4", "does not exist"),
        (blocker / "out.mp4", "does not exist"),  # parent is a regular file
        (tmp_path, "is a directory"),
    ):
        with pytest.raises(PoseAppError, match=message):
            PoseRecorder(INFO, **{kind: bad})


def test_unknown_video_suffix_is_refused(tmp_path):
    with pytest.raises(PoseAppError, match="unknown suffix"):
        PoseRecorder(INFO, video_path=tmp_path / "out.xyz")


def test_fit_into_frame_scales_and_centres_on_black():
    image = np.full((50, 100, 3), 200, np.uint8)
    fitted = fit_into_frame(image, (60, 60))
    assert fitted.shape == (60, 60, 3)
    assert (fitted[15:45] == 200).all()  # 100x50 scaled to 60x30, 15 black rows above and below
    assert (fitted[:15] == 0).all() and (fitted[45:] == 0).all()


def poses_with_a_dropout(frame_index: int) -> FramePoses:
    """One confident person (id 7) whose keypoint 3 moves along x = 56 + 0.32 frame, y = 50
    (values that survive 2-decimal rounding exactly); at frames 1 and 2 the detector loses it
    (score 0.1, junk position 0, 0)."""
    poses = known_poses(frame_index, count=1)
    poses.keypoints[..., 2] = 0.9
    poses.keypoints[0, 3] = (0.0, 0.0, 0.1) if frame_index in (1, 2) else (56 + 0.32 * frame_index, 50.0, 0.9)
    return poses


def record_with_a_dropout(folder, frames=4) -> dict:
    outputs = {"csv_path": folder / "p.csv", "wide_csv_path": folder / "w.csv", "json_path": folder / "p.json"}
    with PoseRecorder(INFO, header={"gap_filled_max_frames": 2}, **outputs) as recorder:
        for index in range(frames):
            recorder.write(frame_at(index), poses_with_a_dropout(index))
    return outputs


def test_gap_filling_rewrites_only_the_dropout_in_every_format(tmp_path):
    (tmp_path / "raw").mkdir()
    raw = record_with_a_dropout(tmp_path / "raw")
    outputs = record_with_a_dropout(tmp_path)
    fill_gaps_in_files(**outputs, frame_size=(WIDTH, HEIGHT), frame_step=1, max_gap_frames=2)
    # Long CSV: keypoint 3 (left_ear) of frames 1, 2 is back on its line, x = 56 + 0.32 frame,
    # y = 50, with its low score kept; every other line is byte-identical.
    raw_lines = raw["csv_path"].read_text().splitlines()
    lines = outputs["csv_path"].read_text().splitlines()
    changed = [number for number, (a, b) in enumerate(zip(raw_lines, lines)) if a != b]
    assert len(lines) == len(raw_lines) == 1 + 4 * 17 and changed == [1 + 17 + 3, 1 + 34 + 3]
    assert lines[changed[0]] == '"clips/walk, take 2.mp4",1,0.040,7,0.9000,left_ear,56.32,50.00,0.1000,0.176000,0.208333'
    assert lines[changed[1]] == '"clips/walk, take 2.mp4",2,0.080,7,0.9000,left_ear,56.64,50.00,0.1000,0.177000,0.208333'
    # Wide CSV: the same two values in the rows of frames 1 and 2.
    raw_wide = list(csv.DictReader(io.StringIO(raw["wide_csv_path"].read_text())))
    wide = list(csv.DictReader(io.StringIO(outputs["wide_csv_path"].read_text())))
    assert [(r["left_ear_x"], r["left_ear_y"], r["left_ear_score"]) for r in wide] == [
        ("56.00", "50.00", "0.9000"), ("56.32", "50.00", "0.1000"), ("56.64", "50.00", "0.1000"), ("56.96", "50.00", "0.9000"),
    ]
    for raw_row, row in zip(raw_wide, wide):
        assert {k: v for k, v in row.items() if not k.startswith("left_ear_")} == {
            k: v for k, v in raw_row.items() if not k.startswith("left_ear_")
        }
    # JSON: same layout, header and trailer; only those two keypoints moved.
    raw_json, filled_json = raw["json_path"].read_text(), outputs["json_path"].read_text()
    assert len(filled_json.splitlines()) == len(raw_json.splitlines())
    document = json.loads(filled_json)
    assert document["header"] == json.loads(raw_json)["header"] and document["complete"] is True
    assert [a["keypoints"][9:12] for a in document["annotations"]] == [
        [56.0, 50.0, 0.9], [56.32, 50.0, 0.1], [56.64, 50.0, 0.1], [56.96, 50.0, 0.9],
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.json", "raw", "w.csv"]


def test_gap_filling_interrupted_midway_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    outputs = record_with_a_dropout(tmp_path)
    before = outputs["json_path"].read_text()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "json_records", interrupted)  # dies while writing the records
    with pytest.raises(KeyboardInterrupt):
        fill_gaps_in_files(json_path=outputs["json_path"], frame_size=(WIDTH, HEIGHT), frame_step=1, max_gap_frames=2)
    assert outputs["json_path"].read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.json", "w.csv"]  # no temporary left


def test_gap_filling_an_empty_recording_keeps_it_valid(tmp_path):
    outputs = {"csv_path": tmp_path / "p.csv", "wide_csv_path": tmp_path / "w.csv", "json_path": tmp_path / "p.json"}
    with PoseRecorder(INFO, header={}, **outputs) as recorder:
        recorder.write(frame_at(0), known_poses(0, count=0))
    before = {kind: path.read_text() for kind, path in outputs.items()}
    fill_gaps_in_files(**outputs, frame_size=(WIDTH, HEIGHT), frame_step=1, max_gap_frames=5)
    assert {kind: path.read_text() for kind, path in outputs.items()} == before


def test_coco_keypoint_records_round_and_handle_no_poses():
    from pose_app.export import coco_keypoint_records

    assert coco_keypoint_records(3, np.zeros((0, 17, 3), np.float32), np.zeros(0, np.float32)) == []
    pose = np.tile(np.array([[10.126, 20.004, 0.123456]]), (17, 1))[None]
    [record] = coco_keypoint_records(7, pose, np.array([0.987654]), category_id=5)
    assert record["image_id"] == 7 and record["category_id"] == 5 and record["score"] == 0.9877
    assert record["keypoints"][:3] == [10.13, 20.0, 0.1235] and len(record["keypoints"]) == 51
