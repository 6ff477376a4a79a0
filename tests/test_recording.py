"""Recording: PoseFileWriter's long/wide CSV and JSON with known poses, the recording service
(header of the pipeline that made the rows, annotated video and its frame rate, `complete`, the
gap-fill pass, file names) on real inference, and their failures."""

from __future__ import annotations

import csv
import io
import itertools
import json
import time

import cv2
import numpy as np
import pytest
from known_poses import HEIGHT, INFO, WIDTH, frame_at, known_poses

from pose_app.core.frames import Frame, SourceInfo
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.errors import PoseAppError
from pose_app.inference.config import PipelineConfig
from pose_app.inference.pipeline import build_pipeline
from pose_app.io.formats import LONG_CSV_COLUMNS, WIDE_CSV_COLUMNS, coco_keypoint_records
from pose_app.io.frame_outputs import LIVE_RATE_FRAMES, STILLS_VIDEO_FPS
from pose_app.io.output_files import snapshot_path, unused_stem
from pose_app.io.recording import PoseFileWriter, Recording
from pose_app.io.sources import open_source
from pose_app.io.video_writer import fit_into_frame
from pose_app.run.outputs import recording_outputs


def record(tmp_path, frames=3, **paths) -> dict:
    outputs = {kind: tmp_path / name for kind, name in paths.items()}
    with PoseFileWriter(INFO, settings={"model": "posenet-075", "smoothed": True}, **outputs) as recorder:
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
        with PoseFileWriter(INFO, json_path=path) as recorder:
            recorder.write(frame_at(0), known_poses(0))
            raise KeyboardInterrupt
    document = json.loads(path.read_text())
    assert document["complete"] is False and document["frames_written"] == 1
    assert len(document["annotations"]) == 2


def test_shared_csv_stream_gets_one_header_and_rows_of_every_source():
    stream = io.StringIO()
    other = SourceInfo("second.mp4", WIDTH, HEIGHT, 25.0, 10, False, False)
    for info in (INFO, other):
        with PoseFileWriter(info, csv_path=stream) as recorder:
            recorder.write(Frame(frame_at(0).image, 0, 0.0, info.name), known_poses(0, count=1))
    rows = list(csv.reader(io.StringIO(stream.getvalue())))
    assert rows[0] == list(LONG_CSV_COLUMNS) and rows.count(list(LONG_CSV_COLUMNS)) == 1
    assert [row[0] for row in rows[1:]] == [INFO.name] * 17 + ["second.mp4"] * 17


def test_fit_into_frame_scales_and_centres_on_black():
    image = np.full((50, 100, 3), 200, np.uint8)
    fitted = fit_into_frame(image, (60, 60))
    assert fitted.shape == (60, 60, 3)
    assert (fitted[15:45] == 200).all()  # 100x50 scaled to 60x30, 15 black rows above and below
    assert (fitted[:15] == 0).all() and (fitted[45:] == 0).all()


def test_coco_keypoint_records_round_and_handle_no_poses():
    assert coco_keypoint_records(3, np.zeros((0, 17, 3), np.float32), np.zeros(0, np.float32)) == []
    pose = np.tile(np.array([[10.126, 20.004, 0.123456]]), (17, 1))[None]
    [record] = coco_keypoint_records(7, pose, np.array([0.987654]), category_id=5)
    assert record["image_id"] == 7 and record["category_id"] == 5 and record["score"] == 0.9877
    assert record["keypoints"][:3] == [10.13, 20.0, 0.1235] and len(record["keypoints"]) == 51


# ---------------------------------------------------------------------------- the recording service


def read_video(path):
    """(frame count, frames per second, (height, width)) of a video file. The frame rate to 5
    significant digits: fragmented MP4 (the MP4 family's container) counts time in units of
    100 ns, so 1/15 s is 666667 of them."""
    capture = cv2.VideoCapture(str(path))
    try:
        ok, image = capture.read()
        assert ok, f"cannot decode {path}"
        fps = float(f"{capture.get(cv2.CAP_PROP_FPS):.5g}")
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), fps, image.shape[:2]
    finally:
        capture.release()


def test_a_recording_of_a_file_names_the_pipeline_that_made_its_rows(tmp_path, default_engine, walk_clip):
    outputs = {kind: tmp_path / name for kind, name in
               (("csv", "w.csv"), ("wide_csv", "w.wide.csv"), ("json", "w.json"), ("video", "w.mp4"))}
    pipeline = build_pipeline(PipelineConfig(frame_step=2), engine=default_engine)
    with open_source(str(walk_clip), frame_step=2) as source, Recording(source.info, outputs) as recording:
        assert not any(path.exists() for path in outputs.values())  # checked; created by start()
        recording.start(pipeline)
        for frame in itertools.islice(source, 10):
            recording.write(frame, pipeline.process(frame))
    assert recording.frames_written == 10
    document = json.loads(outputs["json"].read_text())
    header = document["header"]
    assert header == recording.header and {name: header[name] for name in pipeline.header()} == pipeline.header()
    assert (header["source"], header["width"], header["height"], header["fps"]) == (str(walk_clip), 640, 480, 30.0)
    assert header["frame_step"] == 2 and header["gap_filled_max_frames"] == 0 and header["smooth"] is True
    assert document["complete"] is True and document["frames_written"] == 10
    assert [a["image_id"] for a in document["annotations"]] == list(range(0, 20, 2))  # the walker on each
    rows = read_csv_rows(outputs["csv"], LONG_CSV_COLUMNS)
    assert len(rows) == 10 * 17 and len(read_csv_rows(outputs["wide_csv"], WIDE_CSV_COLUMNS)) == 10
    # A file's frames are all processed: its video plays at its own rate over the step.
    assert read_video(outputs["video"]) == (10, 15.0, (480, 640))


def test_a_live_recordings_video_plays_at_the_rate_frames_were_processed(tmp_path, default_engine):
    """A 30 fps camera whose frames were processed 10 times a second: the video is 10 fps, the
    rate measured over the recording's first second (its frames held back until then)."""
    camera = SourceInfo("camera 0", WIDTH, HEIGHT, 30.0, None, is_live=True, is_still=False)
    outputs = {"json": tmp_path / "cam.json", "video": tmp_path / "cam.avi"}
    with Recording(camera, outputs) as recording:
        recording.start(build_pipeline(PipelineConfig(), engine=default_engine))
        for number in range(25):
            frame = Frame(frame_at(0).image, 3 * number, number / 10, camera.name)
            recording.write(frame, known_poses(number))
    assert read_video(outputs["video"]) == (25, 10.0, (HEIGHT, WIDTH))
    # Shorter than the measuring window, and ended by a failure: the frames it has decide.
    outputs = {"csv": tmp_path / "short.csv", "video": tmp_path / "short.avi"}
    with pytest.raises(KeyboardInterrupt), Recording(camera, outputs) as recording:
        recording.start(build_pipeline(PipelineConfig(), engine=default_engine))
        for number in range(4):
            recording.write(Frame(frame_at(0).image, 6 * number, number / 5, camera.name), known_poses(number))
        raise KeyboardInterrupt
    assert 4 < LIVE_RATE_FRAMES and read_video(outputs["video"]) == (4, 5.0, (HEIGHT, WIDTH))


def test_a_recording_of_still_images(tmp_path, default_engine):
    """Still images: no gap filling (independent pictures), the video is a slideshow, and a single
    still with an image suffix is written as that image."""
    folder = SourceInfo("photos", WIDTH, HEIGHT, None, 3, is_live=False, is_still=True)
    outputs = {"json": tmp_path / "photos.json", "video": tmp_path / "photos.mp4"}
    with Recording(folder, outputs, fill_gaps=5) as recording:
        recording.start(build_pipeline(PipelineConfig(), is_still=True, engine=default_engine))
        for index in range(3):
            recording.write(Frame(frame_at(0).image, index, 0.0, f"photos/{index}.jpg"), known_poses(index))
    header = json.loads(outputs["json"].read_text())["header"]
    assert header["gap_filled_max_frames"] == 0 and header["smooth"] is False
    assert read_video(outputs["video"]) == (3, STILLS_VIDEO_FPS, (HEIGHT, WIDTH))
    still = SourceInfo("photo.jpg", WIDTH, HEIGHT, None, 1, is_live=False, is_still=True)
    path = tmp_path / "photo.annotated.png"
    with Recording(still, {"video": path}) as recording:
        recording.start(build_pipeline(PipelineConfig(), is_still=True, engine=default_engine))
        recording.write(Frame(frame_at(0).image, 0, 0.0, "photo.jpg"), known_poses(0))
    assert cv2.imread(str(path)).shape == (HEIGHT, WIDTH, 3)


@pytest.mark.parametrize("kind", ["csv", "wide_csv", "json", "video"])
def test_unwritable_outputs_are_refused_before_any_file_is_made(tmp_path, kind):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for bad, message in (
        (tmp_path / "no-such-dir" / "out.mp4", "does not exist"),
        (blocker / "out.mp4", "does not exist"),  # parent is a regular file
        (tmp_path, "is a directory"),
    ):
        with pytest.raises(PoseAppError, match=message):
            Recording(INFO, {"json": tmp_path / "fine.json", kind: bad})
    with pytest.raises(PoseAppError, match="is a directory"):
        PoseFileWriter(INFO, json_path=tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]


def test_unknown_video_suffix_is_refused(tmp_path):
    with pytest.raises(PoseAppError, match=r"cannot write video .*out\.xyz: unknown suffix \(use one of .avi"):
        Recording(INFO, {"video": tmp_path / "out.xyz"})


def test_recordings_and_snapshots_never_overwrite(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda pattern: "20250102-030405")  # all within one second
    first = recording_outputs(tmp_path, video=True)
    suffixes = (".csv", ".json", ".mp4", ".angles.csv", ".reps.csv")
    assert [path.name.removeprefix("pose-20250102-030405") for path in first.values()] == list(suffixes)
    first["angles"].touch()  # any one file of a recording takes its name
    second = recording_outputs(tmp_path, video=False)
    assert set(second) == {"csv", "json", "angles", "reps"} and second["csv"].stem == first["csv"].stem + "-2"
    snapshot = snapshot_path(tmp_path)
    assert snapshot == tmp_path / "pose-snapshot-20250102-030405.png"
    snapshot.touch()
    assert snapshot_path(tmp_path) == tmp_path / "pose-snapshot-20250102-030405-2.png"
    assert unused_stem(tmp_path, "pose", (".csv",)) == tmp_path / "pose-20250102-030405"  # only .json taken
