"""`pose-app process` end to end on real media with the shipped model, its failure modes, the
interrupted-run guarantee, and the PosePipeline it runs on.

The media are generated from the photo in tests/data (tests/media.py): `walk_clip` (one person,
60 frames, 640x480 @ 30 fps, MJPG in Matroska), `group_image` (three people, 854x480) and
`long_clip` (300 frames, 320x240)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import cv2
import numpy as np
import pytest
from cameras import FileAsCamera
from support import REPO

from pose_app.cli.main import main
from pose_app.core.frames import SourceInfo
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.io import live_sources
from pose_app.io.formats import LONG_CSV_COLUMNS, WIDE_CSV_COLUMNS
from pose_app.io.frame_outputs import LIVE_RATE_FRAMES, LIVE_RATE_WINDOW_S
from pose_app.run.plan import unique_stems
from pose_app.run.runner import expected_frames, progress_bar


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        return reader.fieldnames, list(reader)


def run_cli(capsys, *argv):
    code = main(["process", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_video_to_every_output(tmp_path, capsys, walk_clip):
    out = {k: tmp_path / n for k, n in (("csv", "p.csv"), ("wide", "w.csv"), ("json", "p.json"), ("video", "a.mp4"))}
    code, stdout, stderr = run_cli(
        capsys, walk_clip, "--end", "1.0", "--every", "5",
        "--csv", out["csv"], "--wide-csv", out["wide"], "--json", out["json"], "--video", out["video"],
    )
    assert code == 0
    # Not a terminal: stderr says which model and provider run, and nothing else.
    assert stderr == "pose-app process: preset balanced, posenet-075-int8 on cpu\n"
    assert "1 input(s), 0 failed" in stdout and "6 frames" in stdout
    columns, rows = read_csv(out["csv"])
    assert tuple(columns) == LONG_CSV_COLUMNS
    # Frames 0, 5, ..., 25 (time < 1.0 s), the one walker found in each, 17 rows per person.
    per_person = Counter((r["frame"], r["person_id"]) for r in rows)
    assert sorted({int(f) for f, _ in per_person}) == [0, 5, 10, 15, 20, 25]
    assert set(per_person.values()) == {17}
    assert {pid for _, pid in per_person} == {"0"}  # tracked: one id throughout
    for row in rows:
        x, y = float(row["x"]), float(row["y"])
        assert float(row["x_norm"]) == pytest.approx(x / 640, abs=0.005 / 640 + 1e-6)
        assert float(row["y_norm"]) == pytest.approx(y / 480, abs=0.005 / 480 + 1e-6)
        if float(row["score"]) > 0.5:
            assert -0.5 <= x <= 639.5 and -0.5 <= y <= 479.5
        assert float(row["time_s"]) == pytest.approx(int(row["frame"]) / 30, abs=0.0011)
    # The walker's face is confidently found in the upper half of the frame (MoveNet's crops score
    # her nose 0.6-0.8 on these frames, PoseNet's above 0.8: each network's own scale).
    noses = [r for r in rows if r["keypoint"] == "nose"]
    assert np.median([float(r["score"]) for r in noses]) > 0.5
    assert all(float(r["y"]) < 240 for r in noses)
    wide_columns, wide = read_csv(out["wide"])
    assert tuple(wide_columns) == WIDE_CSV_COLUMNS and len(wide) == len(per_person)
    assert float(wide[0]["nose_x"]) == float(noses[0]["x"])
    document = json.loads(out["json"].read_text())
    header = document["header"]
    assert (header["width"], header["height"], header["fps"]) == (640, 480, 30.0)
    assert header["frame_count"] == walk_clip.frame_count == 60
    assert header["model"] == "posenet-075-int8" and header["provider"] == "cpu" and header["output_stride"] == 16
    # The preset and every setting it implies, by the options' names.
    assert header["preset"] == "balanced" and header["mode"] == "tracked-crops"
    assert (header["resolution"], header["crop_resolution"], header["crop_input_size"]) == (513, 257, [192, 192])
    assert header["crop_model"] == header["video_crop_model"] == "movenet-lightning" and header["any_orientation"]
    assert header["int8_path"].startswith("int8 u8s8-pair-bounded (") and header["crop_int8_path"] is None
    assert (header["refine"], header["redetect_interval_s"], header["min_pose_score"]) == (True, 0.33, 0.25)
    assert header["provider_notes"] == [] and header["gap_filled_max_frames"] == 0
    assert header["track"] is True and header["smooth"] is True and header["frame_step"] == 5
    assert header["keypoint_names"] == list(KEYPOINT_NAMES)
    assert document["complete"] is True and document["frames_written"] == 6
    first = document["annotations"][0]
    assert {"image_id", "category_id", "keypoints", "score", "person_id", "time_s", "source"} <= set(first)
    assert first["category_id"] == 1 and len(first["keypoints"]) == 51
    assert first["keypoints"][:2] == [float(noses[0]["x"]), float(noses[0]["y"])]
    capture = cv2.VideoCapture(str(out["video"]))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 6 and capture.get(cv2.CAP_PROP_FPS) == 6.0
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (480, 640, 3)


def test_still_image_is_not_smoothed_and_finds_every_person(tmp_path, capsys, group_image):
    code, _, _ = run_cli(capsys, group_image, "--json", tmp_path / "s.json", "--csv", tmp_path / "s.csv")
    assert code == 0
    document = json.loads((tmp_path / "s.json").read_text())
    assert document["header"]["smooth"] is False and document["header"]["track"] is True
    assert (document["header"]["width"], document["header"]["height"]) == (854, 480)
    annotations = document["annotations"]
    assert {a["file_name"] for a in annotations} == {group_image.path.name}
    assert {a["image_id"] for a in annotations} == {0}
    # One pose per person in the picture, its nose inside that person's photo.
    boxes = [actor.box(0) for actor in group_image.actors]
    noses = [a["keypoints"][:2] for a in annotations]
    assert len(annotations) == len(boxes) == 3
    assert sorted(next(k for k, (x0, y0, x1, y1) in enumerate(boxes) if x0 <= x <= x1 and y0 <= y <= y1)
                  for x, y in noses) == [0, 1, 2]
    _, rows = read_csv(tmp_path / "s.csv")
    assert len(rows) == 17 * len(annotations)


def test_several_inputs_with_failures_still_process_the_good_ones(tmp_path, capsys, walk_clip):
    walk = walk_clip.path
    corrupt = tmp_path / "random.mp4"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 30000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(walk.read_bytes()[:3000])
    out_dir = tmp_path / "out"
    code, stdout, stderr = run_cli(
        capsys, corrupt, walk, tmp_path / "missing.mp4", truncated, walk,
        "--out-dir", out_dir, "--formats", "csv,json", "--end", "0.5", "--every", "5",
    )
    assert code == 1
    assert "5 input(s), 3 failed" in stdout
    error_lines = [line for line in stderr.splitlines() if line.startswith("pose-app: error:")]
    assert len(error_lines) == 3
    assert "random.mp4" in error_lines[0] and "not found" in error_lines[1] and "no decodable frames" in error_lines[2]
    # The same video twice: distinct outputs, neither overwrote the other.
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "walk-640x480-2.csv", "walk-640x480-2.json", "walk-640x480.csv", "walk-640x480.json",
    ]
    for name in ("walk-640x480.csv", "walk-640x480-2.csv"):
        _, rows = read_csv(out_dir / name)
        assert {r["frame"] for r in rows} == {"0", "5", "10"}


def test_one_csv_for_several_inputs_tells_them_apart_by_source(tmp_path, capsys, walk_clip, group_image):
    code, _, _ = run_cli(capsys, walk_clip, group_image, "--csv", tmp_path / "all.csv", "--end", "0.2")
    assert code == 0
    _, rows = read_csv(tmp_path / "all.csv")
    sources = Counter(r["source"] for r in rows)
    # Frames 0-5 (time < 0.2 s) of the one walker; the three people of the still.
    assert sources == {str(walk_clip): 6 * 17, str(group_image): 3 * 17}


def test_every_nth_frame_of_a_camera(tmp_path, capsys, walk_clip, monkeypatch):
    """--every applies to cameras and live streams too: the recorded frame numbers are the
    camera's, all multiples of N, as the header's frame_step says."""
    monkeypatch.setattr(live_sources, "quiet_open", lambda spec, backend=None: FileAsCamera(walk_clip.path, fps=60))
    code, _, _ = run_cli(capsys, "0", "--every", "3", "--csv", tmp_path / "c.csv", "--json", tmp_path / "c.json")
    assert code == 0
    _, rows = read_csv(tmp_path / "c.csv")
    frames = sorted({int(r["frame"]) for r in rows})
    assert len(frames) >= 3 and all(frame % 3 == 0 for frame in frames), frames
    document = json.loads((tmp_path / "c.json").read_text())
    assert document["header"]["frame_step"] == 3 and document["frames_written"] >= len(frames)


def test_a_live_video_plays_at_the_rate_its_frames_were_processed(tmp_path, capsys, walk_clip, monkeypatch):
    """A 20 fps camera and processing slower than that (a slow laptop: 100 ms more per frame, so
    at most 10 frames/s however fast the machine): frames are dropped, so the annotated video's
    frame rate is that of the frames processed (in the camera's time), not the camera's 20,
    which would play the video too fast. The clip's 60 frames last 3 s: enough processed frames
    to measure a rate even on a busy machine."""
    from pose_app.inference.pipeline import PosePipeline

    monkeypatch.setattr(live_sources, "quiet_open", lambda spec, backend=None: FileAsCamera(walk_clip.path, fps=20))
    process = PosePipeline.process

    def slowly(self, *args, **kwargs):
        time.sleep(0.1)
        return process(self, *args, **kwargs)

    monkeypatch.setattr(PosePipeline, "process", slowly)
    code, _, _ = run_cli(capsys, "0", "--json", tmp_path / "c.json", "--video", tmp_path / "c.avi")
    assert code == 0
    document = json.loads((tmp_path / "c.json").read_text())
    frames = document["frames_written"]
    times = [a["time_s"] for a in document["annotations"]]  # one walker: one pose per frame found
    assert frames >= 5 and len(times) >= frames - 2 and times == sorted(set(times))
    processed_rate = (frames - 1) / (times[-1] - times[0])  # a frame where she was lost has no time
    assert processed_rate < 15  # many frames were dropped
    # The video's rate is measured on the recording's first second (or 20 frames), as the
    # recorder does (io/recording.py: LIVE_RATE_WINDOW_S): the machine's speed may change after.
    last = next((k for k, time_s in enumerate(times) if k + 1 >= LIVE_RATE_FRAMES
                 or time_s - times[0] >= LIVE_RATE_WINDOW_S), len(times) - 1)
    first_second_rate = last / (times[last] - times[0])
    video = cv2.VideoCapture(str(tmp_path / "c.avi"))
    try:
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(first_second_rate, rel=0.15)
    finally:
        video.release()


def _refusal(tmp_path, case, walk, group):
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"\x08\x01garbage" * 100)
    return {
        "missing directory": [walk, "--csv", tmp_path / "nope" / "x.csv"],
        "parent is a file": [walk, "--csv", bad_model / "x.csv"],
        "invalid model": [walk, "--csv", tmp_path / "x.csv", "--model", bad_model],
        "missing model": [walk, "--csv", tmp_path / "x.csv", "--model", tmp_path / "none.onnx"],
        "json for several inputs": [walk, group, "--json", tmp_path / "x.json"],
        "output is the input": [walk, "--video", walk],
        "same file twice": [walk, "--csv", tmp_path / "x.out", "--json", tmp_path / "x.out"],
        "nothing to write": [walk],
        "out-dir and paths": [walk, "--out-dir", tmp_path, "--csv", tmp_path / "x.csv"],
        "end before start": [walk, "--csv", tmp_path / "x.csv", "--start", "2", "--end", "1"],
        "fill gaps in a combined csv": [walk, group, "--csv", tmp_path / "x.csv", "--fill-gaps", "2"],
        "fill gaps without tracking": [walk, "--csv", tmp_path / "x.csv", "--fill-gaps", "2", "--no-track"],
    }[case]


@pytest.mark.parametrize(
    "case",
    ["missing directory", "parent is a file", "invalid model", "missing model", "json for several inputs",
     "output is the input", "same file twice", "nothing to write", "out-dir and paths", "end before start",
     "fill gaps in a combined csv", "fill gaps without tracking"],
)
def test_refused_runs_are_one_line_errors(tmp_path, capsys, case, walk_clip, group_image):
    code, stdout, stderr = run_cli(capsys, *_refusal(tmp_path, case, walk_clip.path, group_image.path))
    assert code == 2
    assert stderr.startswith("pose-app: error: ") and stderr.count("\n") == 1, stderr
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "bad_option",
    [["--resolution", "5"], ["--video", "{tmp}/out.xyz"]],
    ids=["resolution below stride+1", "unknown video suffix"],
)
def test_bad_options_are_refused_before_existing_outputs_are_touched(tmp_path, capsys, bad_option, walk_clip):
    existing = tmp_path / "earlier-run.csv"
    existing.write_text("results of an earlier run\n")
    option = [part.replace("{tmp}", str(tmp_path)) for part in bad_option]
    code, _, stderr = run_cli(capsys, walk_clip, "--csv", existing, *option)
    assert code == 2
    assert stderr.startswith("pose-app: error: ") and stderr.count("\n") == 1, stderr
    assert existing.read_text() == "results of an earlier run\n"


@pytest.mark.parametrize(
    "option, value, message",
    [("--smooth-min-cutoff", "0", "expected a finite number > 0, got 0"),
     ("--smooth-min-cutoff", "nan", "expected a finite number > 0, got nan"),
     ("--smooth-beta", "-1", "expected a finite number >= 0, got -1"),
     ("--fill-gaps", "-2", "expected an integer >= 0, got -2"),
     ("--nms-radius", "-1", "expected a finite number >= 0, got -1")],
)
def test_invalid_smoothing_and_gap_options_are_usage_errors(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["process", "clip.mp4", "--csv", str(tmp_path / "x.csv"), option, value])
    _, stderr = capsys.readouterr()
    assert exit_info.value.code == 2
    assert stderr.splitlines()[-1] == f"pose-app process: error: argument {option}: {message}"
    assert "Traceback" not in stderr


def _dropouts_filled_by_hand(rows, max_gap, min_score=0.3):
    """(frame, keypoint) -> (x, y) the filled file must hold: a plain loop over each keypoint's
    rows in frame order, independent of the vectorised fill_gaps."""
    expected = {}
    for name in KEYPOINT_NAMES:
        track = sorted((int(r["frame"]), float(r["x"]), float(r["y"]), float(r["score"])) for r in rows if r["keypoint"] == name)
        confident = [i for i, (_, _, _, score) in enumerate(track) if score >= min_score]
        for before, after in zip(confident, confident[1:]):
            if 1 <= after - before - 1 <= max_gap:
                (f0, x0, y0, _), (f1, x1, y1, _) = track[before], track[after]
                for frame, *_ in track[before + 1 : after]:
                    w = (frame - f0) / (f1 - f0)
                    expected[frame, name] = ((1 - w) * x0 + w * x1, (1 - w) * y0 + w * y1)
    return expected


def test_fill_gaps_interpolates_short_dropouts_in_every_output(tmp_path, capsys, walk_clip):
    # Frames 39-50 of the walker: a board covers her right arm on frames 40-41 and 43-48, so
    # her right elbow and wrist drop below score 0.3 for 1 or 2 frames (filled) and her wrist
    # for 6 (left alone) between confident sightings.
    def process(gap):
        names = {kind: tmp_path / f"{kind}{gap}.{ext}" for kind, ext in (("csv", "csv"), ("wide", "csv"), ("json", "json"))}
        code, _, _ = run_cli(
            capsys, walk_clip, "--start", "1.3", "--end", "1.7", "--fill-gaps", gap,
            # A single 353 px pass loses the covered arm; crops (the default) see through the board.
            "--model", "posenet-075", "--resolution", "353", "--no-refine",
            "--csv", names["csv"], "--wide-csv", names["wide"], "--json", names["json"],
        )
        assert code == 0
        return read_csv(names["csv"])[1], read_csv(names["wide"])[1], json.loads(names["json"].read_text())

    raw_rows, raw_wide, raw_json = process(0)
    rows, wide, document = process(3)
    assert {r["person_id"] for r in raw_rows} == {"0"}  # one walker, one track
    expected = _dropouts_filled_by_hand(raw_rows, max_gap=3)
    assert len(expected) >= 3  # the clip really has short dropouts to fill
    assert len(_dropouts_filled_by_hand(raw_rows, max_gap=12)) > len(expected)  # and a longer one left alone
    assert len(rows) == len(raw_rows)
    for raw, row in zip(raw_rows, rows):
        key = (int(row["frame"]), row["keypoint"])
        if key not in expected:
            assert row == raw  # confident rows and long or open-ended dropouts: untouched
            continue
        # Only x, y and their normalised forms change; the low score stays, marking the fill.
        assert {k: v for k, v in row.items() if k not in ("x", "y", "x_norm", "y_norm")} == {
            k: v for k, v in raw.items() if k not in ("x", "y", "x_norm", "y_norm")
        }
        assert float(row["score"]) < 0.3
        assert (float(row["x"]), float(row["y"])) == pytest.approx(expected[key], abs=0.006)
        # x_norm comes from the unrounded x; x has 2 decimals.
        assert float(row["x_norm"]) == pytest.approx(float(row["x"]) / 640, abs=0.005 / 640 + 1e-6)
        assert float(row["y_norm"]) == pytest.approx(float(row["y"]) / 480, abs=0.005 / 480 + 1e-6)
    # The wide CSV and the JSON hold the same filled numbers as the long CSV.
    by_key = {(int(r["frame"]), r["keypoint"]): r for r in rows}
    for record, raw_record, line in zip(document["annotations"], raw_json["annotations"], wide):
        points = np.reshape(record["keypoints"], (17, 3))
        for k, name in enumerate(KEYPOINT_NAMES):
            row = by_key[record["image_id"], name]
            assert points[k].tolist() == [float(row["x"]), float(row["y"]), float(row["score"])]
            assert [line[f"{name}_{c}"] for c in ("x", "y", "score")] == [row["x"], row["y"], row["score"]]
        assert {k: v for k, v in record.items() if k != "keypoints"} == {k: v for k, v in raw_record.items() if k != "keypoints"}
    assert len(wide) == len(raw_wide) == len(document["annotations"])
    assert document["header"]["gap_filled_max_frames"] == 3 and raw_json["header"]["gap_filled_max_frames"] == 0
    assert document["complete"] is True and document["frames_written"] == raw_json["frames_written"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(  # no temporary file left behind
        f"{kind}{gap}.{ext}" for gap in (0, 3) for kind, ext in (("csv", "csv"), ("wide", "csv"), ("json", "json"))
    )


def test_ctrl_c_leaves_whole_csv_lines_and_valid_json(tmp_path, long_clip):
    """A real SIGINT to a real run: exit 130, CSV of whole lines, JSON closed as incomplete."""
    csv_path, json_path = tmp_path / "p.csv", tmp_path / "p.json"
    process = subprocess.Popen(
        # The accurate preset (~20 frames/s): the run is still going when the signal comes, even
        # on a fast machine where the default preset would finish the clip in a second.
        [sys.executable, "-m", "pose_app", "process", str(long_clip), "--csv", str(csv_path), "--json", str(json_path),
         "--preset", "accurate"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not (csv_path.exists() and csv_path.read_text().count("\n") > 1 + 17 * 3):
        assert process.poll() is None and time.monotonic() < deadline, "no rows were written"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert "INTERRUPTED after" in stdout
    text = csv_path.read_text()
    assert text.endswith("\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(LONG_CSV_COLUMNS)
    assert all(len(row) == len(LONG_CSV_COLUMNS) for row in rows)
    assert (len(rows) - 1) % 17 == 0
    frames_in_csv = {int(row[1]) for row in rows[1:]}
    assert max(frames_in_csv) < long_clip.frame_count - 1  # it really stopped early
    document = json.loads(json_path.read_text())
    assert document["complete"] is False
    assert document["frames_written"] >= max(frames_in_csv) + 1
    assert {a["image_id"] for a in document["annotations"]} >= frames_in_csv - {max(frames_in_csv)}


def test_ctrl_c_then_skip_done_gives_the_files_of_an_uninterrupted_run(tmp_path, capsys, walk_clip, long_clip):
    """Ctrl-C in the second input; the same command with --skip-done keeps the finished input's
    files as they were and processes the interrupted one again from its first frame, as the
    message says: every file then equals an uninterrupted run's, no frame written twice."""
    out, reference = tmp_path / "out", tmp_path / "reference"
    options = ["--formats", "csv,wide-csv,json", "--preset", "fast"]
    long_csv = out / f"{long_clip.stem}.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "pose_app", "process", str(walk_clip), str(long_clip), "--out-dir", str(out), *options],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not (long_csv.exists() and long_csv.read_text().count("\n") > 1 + 17 * 3):
        assert process.poll() is None and time.monotonic() < deadline, "no rows of the second input were written"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    interrupted = [line for line in stderr.splitlines() if line.startswith("pose-app: interrupted")]
    assert len(interrupted) == 1 and interrupted[0].endswith(
        f"run the same command with --skip-done to continue: the finished inputs are skipped, {long_clip} "
        "processed again from the first frame"), stderr
    frames_cut = {int(row["frame"]) for row in read_csv(long_csv)[1]}
    assert max(frames_cut) < long_clip.frame_count - 1  # it really stopped early
    walk_files = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.glob(f"{walk_clip.stem}.*")}
    assert len(walk_files) == 3

    code, stdout, _ = run_cli(capsys, walk_clip, long_clip, "--out-dir", out, *options, "--skip-done")
    assert code == 0 and "2 input(s), 0 failed, 1 skipped; 1 done" in stdout
    assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns)
            for path in out.glob(f"{walk_clip.stem}.*")} == walk_files  # not touched
    rows = read_csv(long_csv)[1]
    keys = [(int(row["frame"]), row["person_id"], row["keypoint"]) for row in rows]
    assert len(keys) == len(set(keys))  # no frame written twice
    assert min(keys)[0] == 0 and max(keys)[0] == long_clip.frame_count - 1
    assert json.loads((out / f"{long_clip.stem}.json").read_text())["complete"] is True

    assert run_cli(capsys, walk_clip, long_clip, "--out-dir", reference, *options)[0] == 0
    assert {path.name: path.read_bytes() for path in sorted(out.iterdir())} == {
        path.name: path.read_bytes() for path in sorted(reference.iterdir())}


def test_a_url_where_nothing_listens_is_one_line_that_says_so(tmp_path, capsys):
    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.mp4"
    code, _, err = run_cli(capsys, url, "--csv", tmp_path / "x.csv")
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("pose-app: error:")] == [
        f"pose-app: error: cannot open {url}: the server could not be reached: connection refused by "
        f"127.0.0.1:{port} (nothing listens on that port)"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal():
    terminal, pipe = FakeTerminal(), io.StringIO()
    for stream in (terminal, pipe):
        with progress_bar("walk", total=100, stream=stream) as progress:
            time.sleep(0.3)
            progress.update(40)
    assert pipe.getvalue() == ""
    line = terminal.getvalue().rsplit("\r", 1)[-1]
    assert line.startswith("walk:  40%|") and "| 40/100 [" in line and "frame/s]" in line
    assert terminal.getvalue().endswith("\n")


def test_expected_frames_and_unique_stems():
    video = SourceInfo("v.mp4", 640, 480, 10.0, 1390, is_live=False, is_still=False)
    assert expected_frames(video, 0.0, None, 1) == 1390
    assert expected_frames(video, 10.0, 20.0, 5) == 20
    assert expected_frames(SourceInfo("d", 1, 1, None, 7, False, True), 0.0, None, 2) == 4
    assert unique_stems(["a/clip.mp4", "b/clip.mkv", "0", "rtsp://h/live?x=1", "a/clip.mp4"]) == [
        "clip", "clip-2", "camera0", "live", "clip-3",
    ]


def test_pipeline_tracks_ids_and_smooths_with_media_time(walk_clip):
    from pose_app.inference.engine import PoseEngine
    from pose_app.inference.estimator import PoseEstimator
    from pose_app.inference.pipeline import PosePipeline
    from pose_app.inference.smoothing import PoseSmoother
    from pose_app.inference.tracking import PoseTracker
    from pose_app.io.sources import open_source

    estimator = PoseEstimator(PoseEngine(), 513)
    pipeline = PosePipeline(estimator, tracker=PoseTracker(), smoother=PoseSmoother())
    raw = PosePipeline(estimator)
    with open_source(str(walk_clip), frame_step=8) as source:
        frames = [source.read() for _ in range(4)]
    results = [pipeline.process(frame) for frame in frames]
    assert all(r.ids.tolist() == [0] for r in results)
    assert all("track" in r.timings and "inference" in r.timings for r in results)
    unsmoothed = raw.process(frames[-1])
    assert "track" not in unsmoothed.timings
    # The smoother moved the points (the walker moves) but not far.
    shift = np.abs(results[-1].keypoints[..., :2] - unsmoothed.keypoints[..., :2])
    assert 0 < shift.max() < 60
    np.testing.assert_array_equal(results[-1].keypoints[..., 2], unsmoothed.keypoints[..., 2])
    pipeline.reset()
    again = pipeline.process(frames[-1])
    np.testing.assert_allclose(again.keypoints, unsmoothed.keypoints)  # fresh filter: no history
    with pytest.raises(ValueError, match="needs tracking"):
        PosePipeline(estimator, smoother=PoseSmoother())


def test_mirror_swaps_left_and_right_labels(tmp_path, capsys, group_image):
    from pose_app.core.skeleton import FLIP_PERMUTATION

    for name, extra in (("plain", []), ("mirrored", ["--mirrored-input"])):
        code, _, _ = run_cli(capsys, group_image, "--json", tmp_path / f"{name}.json", *extra)
        assert code == 0
    plain, mirrored = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "mirrored"))
    assert plain["header"]["mirrored_input"] is False and mirrored["header"]["mirrored_input"] is True
    plain_points = np.array([a["keypoints"] for a in plain["annotations"]]).reshape(-1, 17, 3)
    mirrored_points = np.array([a["keypoints"] for a in mirrored["annotations"]]).reshape(-1, 17, 3)
    np.testing.assert_array_equal(mirrored_points, plain_points[:, FLIP_PERMUTATION])
