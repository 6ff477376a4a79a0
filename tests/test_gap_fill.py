"""Gap filling: interpolating short keypoint dropouts in a table, and in a finished recording's
files (rewritten in place with the recorder's formatting)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from known_poses import HEIGHT, INFO, WIDTH, frame_at, known_poses

from pose_app.core.poses import FramePoses
from pose_app.inference.pipeline import build_pipeline
from pose_app.io import gap_fill
from pose_app.io.gap_fill import fill_gaps, fill_gaps_in_files
from pose_app.io.recording import PoseFileWriter


def test_fill_gaps_interpolates_short_dropouts_only():
    # Track 5, keypoint 2 over frames 0..9: low at frames 3-4 (a 2-frame gap: filled) and
    # 7-9 (trailing: nothing to interpolate towards). Track 6, keypoint 2 over frames 0..5:
    # low at 1-4, a 4-frame gap, too long for max_gap_frames=3. Rows in random order.
    frames = np.r_[np.arange(10), np.arange(6)]
    tracks = np.r_[np.full(10, 5), np.full(6, 6)]
    keypoints = np.full(16, 2)
    x = np.r_[np.arange(10) * 10.0, np.arange(6) * 1.0].astype(np.float32)
    x[[3, 4, 8, 9]] = -1  # junk positions where the detector lost the keypoint
    y = np.full(16, 7.0, np.float32)
    scores = np.full(16, 0.9, np.float32)
    scores[[3, 4, 7, 8, 9, 11, 12, 13, 14]] = 0.1
    shuffle = np.random.default_rng(3).permutation(16)
    new_x, new_y, filled = fill_gaps(
        *(column[shuffle] for column in (tracks, frames, keypoints, x, y, scores)), max_gap_frames=3
    )
    unshuffle = np.argsort(shuffle)
    new_x, new_y, filled = new_x[unshuffle], new_y[unshuffle], filled[unshuffle]
    assert filled.tolist() == [i in (3, 4) for i in range(16)]
    np.testing.assert_allclose(new_x[[2, 3, 4, 5]], [20, 30, 40, 50])
    np.testing.assert_array_equal(new_x[~filled], x[~filled])
    np.testing.assert_array_equal(new_y, y)
    assert new_x.dtype == np.float32


def test_fill_gaps_on_an_empty_table():
    empty = np.zeros(0)
    new_x, new_y, filled = fill_gaps(empty, empty, empty, empty, empty, empty)
    assert new_x.shape == new_y.shape == filled.shape == (0,)


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
    with PoseFileWriter(INFO, settings={"gap_filled_max_frames": 2}, **outputs) as recorder:
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

    monkeypatch.setattr(gap_fill, "json_records", interrupted)  # dies while writing the records
    with pytest.raises(KeyboardInterrupt):
        fill_gaps_in_files(json_path=outputs["json_path"], frame_size=(WIDTH, HEIGHT), frame_step=1, max_gap_frames=2)
    assert outputs["json_path"].read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.json", "w.csv"]  # no temporary left


def test_gap_filling_an_empty_recording_keeps_it_valid(tmp_path):
    outputs = {"csv_path": tmp_path / "p.csv", "wide_csv_path": tmp_path / "w.csv", "json_path": tmp_path / "p.json"}
    with PoseFileWriter(INFO, **outputs) as recorder:
        recorder.write(frame_at(0), known_poses(0, count=0))
    before = {kind: path.read_text() for kind, path in outputs.items()}
    fill_gaps_in_files(**outputs, frame_size=(WIDTH, HEIGHT), frame_step=1, max_gap_frames=5)
    assert {kind: path.read_text() for kind, path in outputs.items()} == before


def test_a_recording_fills_gaps_once_finished_and_complete(tmp_path):
    """The recording service runs the gap-fill pass after closing a complete recording (its
    header says so), never after an interrupted one."""
    from pose_app.inference.config import PipelineConfig
    from pose_app.io.recording import Recording

    pipeline = build_pipeline(PipelineConfig())
    for name, interrupted in (("done", False), ("cut", True)):
        outputs = {"csv": tmp_path / f"{name}.csv", "json": tmp_path / f"{name}.json"}
        try:
            with Recording(INFO, outputs, fill_gaps=2) as recording:
                recording.start(pipeline)
                for index in range(4):
                    recording.write(frame_at(index), poses_with_a_dropout(index))
                if interrupted:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
    done, cut = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("done", "cut"))
    assert done["header"]["gap_filled_max_frames"] == cut["header"]["gap_filled_max_frames"] == 2
    assert (done["complete"], cut["complete"]) == (True, False)
    assert [a["keypoints"][9:12] for a in done["annotations"]][1:3] == [[56.32, 50.0, 0.1], [56.64, 50.0, 0.1]]
    assert [a["keypoints"][9:12] for a in cut["annotations"]][1:3] == [[0.0, 0.0, 0.1], [0.0, 0.0, 0.1]]
    filled = list(csv.DictReader(io.StringIO((tmp_path / "done.csv").read_text())))
    assert [(r["x"], r["score"]) for r in filled if r["keypoint"] == "left_ear"][1] == ("56.32", "0.1000")
