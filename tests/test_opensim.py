"""OpenSim files of a recording: TRC (keypoint positions) and MOT (angles) per person, their
headers and values checked against the long CSV and the angles CSV of the same recording."""

from __future__ import annotations

import numpy as np
import pytest

from pose_app.cli.main import main
from pose_app.core.angles import ANGLE_NAMES
from pose_app.core.frames import Frame, SourceInfo
from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS
from pose_app.inference.config import PipelineConfig
from pose_app.inference.pipeline import build_pipeline
from pose_app.io.csv_tables import read_angle_csv, read_keypoint_csv
from pose_app.io.opensim import person_height_px
from pose_app.io.recording import Recording
from pose_app.run.outputs import OUTPUT_KINDS

WIDTH, HEIGHT, FPS = 640, 480, 30.0
# Heights above the floor as fractions of standing height (Winter's anthropometric table).
LEVELS = {"ankle": 0.039, "knee": 0.285, "hip": 0.530, "shoulder": 0.818, "elbow": 0.63, "wrist": 0.485,
          "nose": 0.90, "eye": 0.936, "ear": 0.92}


def standing(height_px: float, x0: float, sway: float = 0.0) -> np.ndarray:
    """A person (17, 3) facing the camera, `height_px` tall, feet on y = 450, arms swinging by `sway` px."""
    pose = np.zeros((NUM_KEYPOINTS, 3))
    for name in KEYPOINT_NAMES:
        part = name.split("_")[-1]
        side = -1 if name.startswith("right_") else 1 if name.startswith("left_") else 0
        width = {"shoulder": 0.13, "elbow": 0.16, "wrist": 0.17, "hip": 0.09, "eye": 0.03, "ear": 0.06}.get(part, 0.05)
        x = x0 + side * width * height_px + (sway if part in ("elbow", "wrist") else 0.0)
        pose[KEYPOINT_INDEX[name]] = (x, 450.0 - LEVELS[part] * height_px, 0.9)
    return pose


def record(tmp_path, engine, outputs: dict, people: dict, frames: int, height_m=None) -> Recording:
    """A recording of `frames` frames of known poses: people = id -> function(frame) -> (17, 3) or None."""
    info = SourceInfo("clinic.mp4", WIDTH, HEIGHT, FPS, frames, is_live=False, is_still=False)
    paths = {kind: tmp_path / name for kind, name in outputs.items()}
    recording = Recording(info, paths, kinds=OUTPUT_KINDS, height_m=height_m)
    recording.start(build_pipeline(PipelineConfig(), engine=engine))
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for index in range(frames):
        present = {pid: make(index) for pid, make in people.items() if make(index) is not None}
        keypoints = np.array(list(present.values()), np.float32).reshape(-1, NUM_KEYPOINTS, 3)
        poses = FramePoses(keypoints, np.full(len(present), 0.8, np.float32), np.array(list(present), np.int64), None, {}, None)
        recording.write(Frame(image, index, index / FPS, "clinic.mp4"), poses)
    recording.finish()
    return recording


def read_trc(path):
    lines = path.read_text().split("\n")
    header = dict(zip(lines[1].split("\t"), lines[2].split("\t")))
    rows = [line.split("\t") for line in lines[6:] if line]
    return lines, header, rows


def read_mot(path):
    lines = path.read_text().split("\n")
    end = lines.index("endheader")
    header = dict(line.split("=") for line in lines[1:end])
    return lines, header, lines[end + 1].split("\t"), [line.split("\t") for line in lines[end + 2:] if line]


def test_one_trc_and_mot_per_person_with_openSim_headers_and_the_csvs_values(tmp_path, default_engine):
    def first(index):
        pose = standing(300, 200, sway=10 * np.sin(index))
        if index == 4:
            pose[KEYPOINT_INDEX["left_wrist"], 2] = 0.1  # not seen: an empty cell, a missing angle
        return pose

    def second(index):
        return None if index < 3 or index == 9 else standing(280, 450, sway=-5.0 * index)

    outputs = {"csv": "c.csv", "angles": "c.angles.csv", "trc": "c.trc", "mot": "c.mot"}
    record(tmp_path, default_engine, outputs, {3: first, 7: second}, frames=12)
    assert sorted(path.name for path in tmp_path.glob("c-person*")) == [
        "c-person3.mot", "c-person3.trc", "c-person7.mot", "c-person7.trc",
    ]
    table = read_keypoint_csv(tmp_path / "c.csv")
    for person_id, first_frame, count in ((3, 0, 12), (7, 3, 9)):
        lines, header, rows = read_trc(tmp_path / f"c-person{person_id}.trc")
        assert lines[0] == f"PathFileType\t4\t(X/Y/Z)\tc-person{person_id}.trc"
        assert header == {"DataRate": "30", "CameraRate": "30", "NumFrames": str(count), "NumMarkers": "17", "Units": "px",
                          "OrigDataRate": "30", "OrigDataStartFrame": str(first_frame + 1), "OrigNumFrames": str(count)}
        assert lines[3].split("\t")[:3] == ["Frame#", "Time", "nose"] and lines[3].split("\t")[2::3] == list(KEYPOINT_NAMES)
        assert lines[4].split("\t")[2:5] == ["X1", "Y1", "Z1"] and lines[4].split("\t")[-1] == "Z17" and lines[5] == ""
        assert len(rows) == count and [row[0] for row in rows] == [str(n) for n in range(1, count + 1)]
        for row in rows:
            frame_number = first_frame + int(row[0]) - 1
            assert float(row[1]) == pytest.approx(frame_number / FPS, abs=5e-4)
            frame = next((f for f in table.frames if f.frame == frame_number and person_id in f.person_ids), None)
            cells = np.array([np.nan if cell == "" else float(cell) for cell in row[2:]]).reshape(NUM_KEYPOINTS, 3)
            if frame is None:  # person 7 is not in frame 9: a row of empty cells keeps the rate
                assert np.isnan(cells).all()
                continue
            keypoints = frame.keypoints[list(frame.person_ids).index(person_id)]
            seen = keypoints[:, 2] >= 0.3
            np.testing.assert_array_equal(cells[seen, 0], keypoints[seen, 0])
            np.testing.assert_allclose(cells[seen, 1], HEIGHT - 1 - keypoints[seen, 1], atol=1e-9)  # Y up
            assert (cells[seen, 2] == 0).all() and np.isnan(cells[~seen]).all()
        assert rows[4][2 + 3 * KEYPOINT_INDEX["left_wrist"]] == "" if person_id == 3 else True

        lines, header, columns, values = read_mot(tmp_path / f"c-person{person_id}.mot")
        assert lines[0] == f"c-person{person_id}"
        assert header == {"version": "1", "nRows": str(count), "nColumns": str(1 + len(ANGLE_NAMES)), "inDegrees": "yes"}
        series = next(item for item in read_angle_csv(tmp_path / "c.angles.csv") if item.person_id == person_id)
        assert columns == ["time", *series.names] and len(values) == count
        by_frame = dict(zip(series.frames.tolist(), series.degrees))
        for number, row in enumerate(values):
            expected = by_frame.get(first_frame + number, np.full(len(series.names), np.nan))
            np.testing.assert_array_equal(np.array([float(cell) for cell in row[1:]]), expected)


def test_height_in_metres_a_person_template_and_a_single_person(tmp_path, default_engine):
    assert person_height_px(np.stack([standing(400, 300)] * 5)) == pytest.approx(400, rel=0.01)
    outputs = {"trc": "p{person}.trc", "mot": "only.mot"}
    record(tmp_path, default_engine, outputs, {5: lambda index: standing(400, 300, sway=index)}, frames=20, height_m=1.8)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["only.mot", "p5.trc"]  # {person}; one person: as named
    _, header, rows = read_trc(tmp_path / "p5.trc")
    assert header["Units"] == "m"
    scale = 1.8 / person_height_px(np.stack([standing(400, 300)]))
    nose = KEYPOINT_INDEX["nose"]
    assert float(rows[0][2 + 3 * nose]) == pytest.approx(300 * scale, abs=1e-5)
    assert float(rows[0][3 + 3 * nose]) == pytest.approx((HEIGHT - 1 - (450 - 0.9 * 400)) * scale, abs=1e-5)
    ankle = KEYPOINT_INDEX["left_ankle"]
    head_to_toe = float(rows[0][3 + 3 * nose]) - float(rows[0][3 + 3 * ankle])
    assert head_to_toe == pytest.approx((0.90 - 0.039) * 1.8, rel=0.02)  # metres of a 1.8 m person


def test_process_refuses_height_without_a_trc_and_cannot_measure_a_portrait(tmp_path, walk_clip, capsys):
    csv_path = tmp_path / "w.csv"
    assert main(["process", str(walk_clip), "--csv", str(csv_path), "--height-m", "1.7"]) == 2
    assert "--height-m sets the units of the TRC file" in capsys.readouterr().err
    assert not csv_path.exists()
    assert main(["process", str(walk_clip), str(walk_clip), "--out-dir", str(tmp_path), "--trc", "x.trc"]) == 2
    capsys.readouterr()
    # The walker is a portrait: no legs to measure her height by. One line, non-zero; the CSV is whole.
    assert main(["process", str(walk_clip), "--csv", str(csv_path), "--trc", str(tmp_path / "w.trc"),
                 "--mot", str(tmp_path / "w.mot"), "--height-m", "1.7"]) == 1
    error = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(error) == 1 and error[0].startswith("pose-app: error: ") and "cannot measure person" in error[0] and "w.trc was not written" in error[0]
    assert len(read_keypoint_csv(csv_path).frames) == walk_clip.frame_count and not list(tmp_path.glob("*.trc"))
    assert (tmp_path / "w.mot").read_text().startswith("w\nversion=1\nnRows=60\n")  # the other files are kept
