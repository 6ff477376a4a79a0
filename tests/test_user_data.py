"""Never destroy, corrupt or expose a user's data (issue 26): one test per defect the sweep found,
each on real files, real video decode, real processes and real signals.

1 `--settings FILE` overwrote any file; 2 outputs overwrote inputs (hard links, an image folder's
per-frame pictures); 3 the annotated video was lost silently (full disk, SIGKILL); 4 the desktop
app ignored SIGINT/SIGTERM; 5 one bad stored setting stopped the app for good; 6 finished outputs
replaced symlinks and device nodes; 7 `--ray` listened on every interface; 8 the WebSocket stream
served any web page, any number of connections and any message size; 9 tracebacks instead of one
line, and one input's surprise abandoned the batch; 10 truncated inputs reported complete;
11 one undecodable image aborted a folder; 12 two runs on one output corrupted each other."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import REPO

from pose_app.cli.main import main
from pose_app.io.formats import LONG_CSV_COLUMNS

ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}


def pose_app(*argv, **options) -> subprocess.Popen:
    """`python -m pose_app ARGV` in a process of its own, on this worktree's code."""
    return subprocess.Popen(
        [sys.executable, "-m", "pose_app", *map(str, argv)], cwd=REPO, env=options.pop("env", ENV),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options,
    )


def run_in_process(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(stderr: str) -> str:
    """The run's stderr has no traceback and exactly one error line; returns it."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("pose-app: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def with_file_size_limit(limit_bytes: int):
    """preexec_fn: files of the process may not grow beyond `limit_bytes`, and a write beyond
    it fails (EFBIG) instead of killing the process: a full disk, as the program sees one."""
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return limit


def frames_in(path: Path) -> int:
    """How many frames a video file decodes to."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def wait_for(condition, process: subprocess.Popen, timeout_s: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended first ({what}): {process.communicate()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def csv_lines(path: Path) -> int:
    try:
        return path.read_text(encoding="utf-8").count("\n")
    except OSError:
        return 0


# ---------------------------------------------------------------------------- 1. --settings FILE


def test_a_file_that_is_not_a_settings_file_is_never_written_as_one(tmp_path, walk_clip, group_image):
    """`pose-app --settings video.mkv` (meant --source) stops before anything starts and leaves
    the video as it was; so does a JPEG and a text file. A quitting window leaves it too."""
    victims = {"video.mkv": Path(str(walk_clip)).read_bytes(), "photo.jpg": Path(str(group_image)).read_bytes(),
               "notes.txt": b"my notes\nline two\n"}
    for name, data in victims.items():
        (tmp_path / name).write_bytes(data)
    for name, data in victims.items():
        process = pose_app("--settings", tmp_path / name, "--source", walk_clip, "--quit-after-frames", "1")
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, stderr
        assert "is not a pose-app settings file" in one_error_line(stderr)
        assert (tmp_path / name).read_bytes() == data


def test_a_window_never_saves_its_settings_over_another_kind_of_file(tmp_path, make_window, walk_clip):
    from pose_app.gui.main_window import MainWindow
    from pose_app.gui.settings import AppSettings, file_store

    video = tmp_path / "video.mkv"
    video.write_bytes(Path(str(walk_clip)).read_bytes())
    window = MainWindow(file_store(video), AppSettings())
    window.close()
    assert video.read_bytes() == Path(str(walk_clip)).read_bytes()


# ---------------------------------------------------------------------------- 2. outputs that are inputs


def test_a_hard_link_to_the_input_is_refused_as_an_output(tmp_path, capsys, walk_clip):
    source = tmp_path / "in.mkv"
    shutil.copyfile(str(walk_clip), source)
    os.link(source, tmp_path / "hard.mkv")
    before = source.read_bytes()
    code, _, err = run_in_process(capsys, "process", source, "--video", tmp_path / "hard.mkv")
    assert code == 2 and "is one of the inputs" in one_error_line(err)
    assert source.read_bytes() == before


def test_an_image_folders_per_frame_pictures_never_overwrite_its_images(tmp_path, capsys, group_image):
    """--video DIR/x.png writes DIR/x-<frame>.png per image: one of those names is an input here."""
    folder = tmp_path / "shots"
    folder.mkdir()
    image = cv2.imread(str(group_image))
    cv2.imwrite(str(folder / "a.png"), image)
    cv2.imwrite(str(folder / "x-000001.png"), cv2.flip(image, 1))
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    code, _, err = run_in_process(capsys, "process", folder, "--video", folder / "x.png", "--csv", tmp_path / "p.csv")
    assert code == 2 and "x-000001.png is one of the inputs" in one_error_line(err)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


# ---------------------------------------------------------------------------- 3. the annotated video


@pytest.fixture(scope="module")
def noisy_clip(tmp_path_factory, walk_clip) -> Path:
    """The walker's frames twice over with film grain: frames that compress badly, so that the
    annotated video reaches the disk after a few frames (FFmpeg writes in blocks of 256 KiB)."""
    path = tmp_path_factory.mktemp("noisy") / "noisy.mkv"
    capture = cv2.VideoCapture(str(walk_clip))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    grain = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for frame in frames * 2:
        writer.write(cv2.add(frame, grain.integers(0, 60, frame.shape, dtype=np.uint8)))
    writer.release()
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_killed_run_leaves_a_video_that_plays(tmp_path, noisy_clip, suffix):
    """SIGKILL (no handler runs) in the middle of an annotated video: the file opens and its
    frames decode up to the last block written."""
    video, csv_path = tmp_path / f"out{suffix}", tmp_path / "out.csv"
    process = pose_app("process", noisy_clip, "--video", video, "--csv", csv_path, "--preset", "accurate")
    wait_for(lambda: os.path.exists(video) and os.path.getsize(video) > 600_000, process, what="600 kB of video")
    process.kill()
    process.communicate(timeout=60)
    assert frames_in(video) >= 3


def test_a_full_disk_fails_the_video_with_one_line_instead_of_ok(tmp_path, walk_clip):
    video, json_path = tmp_path / "out.mp4", tmp_path / "out.json"
    process = pose_app("process", walk_clip, "--video", video, "--json", json_path,
                       preexec_fn=with_file_size_limit(300_000))
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, (stdout, stderr)
    assert "writing the annotated video" in one_error_line(stderr) and "FAILED" in stdout
    document = json.loads(json_path.read_text())
    assert document["complete"] is False  # --skip-done does it again


# ---------------------------------------------------------------------------- 4. the desktop app and signals


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_desktop_app_finishes_its_recording_on_a_signal(tmp_path, long_clip, signum):
    """A recording app (real window on the test's X server) gets SIGINT or SIGTERM: it exits with
    128 + the signal, no traceback; the JSON is valid and says complete: false, the video plays,
    the repetitions file is written, the settings are saved."""
    from pose_app.gui.settings import AppSettings, save_settings_file

    settings = tmp_path / "settings.ini"
    save_settings_file(settings, AppSettings(output_dir=str(tmp_path), record_video=True, preset="fast"))
    process = pose_app("--settings", settings, "--source", long_clip, "--record")
    wait_for(lambda: any(csv_lines(path) > 1 + 17 * 5 for path in tmp_path.glob("pose-*[0-9].csv")), process,
             timeout_s=180, what="a recording")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and f"stopped by {signal.Signals(signum).name}" in stderr
    [json_path] = tmp_path.glob("pose-*.json")
    document = json.loads(json_path.read_text())
    assert document["complete"] is False and document["frames_written"] >= 5
    stem = json_path.with_suffix("")
    assert frames_in(Path(f"{stem}.mp4")) >= 1
    assert Path(f"{stem}.reps.csv").read_text().startswith("source,person_id,rep")
    assert "[pose-app]" in settings.read_text()


# ---------------------------------------------------------------------------- 5. stored settings


BAD_SETTINGS = (
    "[pose-app]\npreset=bogus\nresolution=-5\nmodel=@ByteArray(posenet)\nosc_host=local\\0host\n"
    "crop_resolution=100000\nmin_pose_score=nan\n"
)


def test_bad_stored_settings_fall_back_to_their_defaults_with_one_warning_naming_the_file(tmp_path):
    from pose_app.gui.settings import AppSettings, file_store, read_settings

    path = tmp_path / "bad.ini"
    path.write_text(BAD_SETTINGS)
    warnings: list[str] = []
    settings = read_settings(file_store(path), warnings)
    assert settings == AppSettings()
    assert len(warnings) == 1 and str(path) in warnings[0]
    for name in ("preset", "resolution", "model", "osc_host", "crop_resolution", "min_pose_score"):
        assert f"{name}=" in warnings[0]


def test_the_app_starts_on_bad_stored_settings_and_says_so_in_one_line(tmp_path, walk_clip):
    path = tmp_path / "bad.ini"
    path.write_text(BAD_SETTINGS)
    process = pose_app("--settings", path, "--source", walk_clip, "--quit-after-frames", "2", "--preset", "fast")
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if line.startswith("pose-app: warning:")]
    assert len(warnings) == 1 and str(path) in warnings[0] and "Traceback" not in stderr
    assert "displayed 2 frames" in stdout


def test_reset_settings_starts_from_the_defaults(tmp_path, walk_clip):
    from pose_app.gui.settings import AppSettings, file_store, read_settings, save_settings_file

    path = tmp_path / "mine.ini"
    save_settings_file(path, AppSettings(resolution=257, mirror_view=True))
    process = pose_app("--settings", path, "--reset-settings", "--source", walk_clip, "--quit-after-frames", "1")
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr
    stored = read_settings(file_store(path))
    assert (stored.resolution, stored.mirror_view) == (AppSettings().resolution, False)


# ---------------------------------------------------------------------------- 6. symlinks and devices


def test_finished_outputs_write_through_symlinks_and_never_replace_a_fifo(tmp_path, capsys, walk_clip):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "link.reps.csv").symlink_to(real / "reps.csv")
    (tmp_path / "link.mot").symlink_to(real / "walk.mot")
    code, _, err = run_in_process(capsys, "process", walk_clip, "--csv", tmp_path / "p.csv",
                                  "--reps", tmp_path / "link.reps.csv", "--mot", tmp_path / "link.mot")
    assert code == 0, err
    for link, target in (("link.reps.csv", "reps.csv"), ("link.mot", "walk.mot")):
        assert (tmp_path / link).is_symlink() and (real / target).is_file()  # the link kept, its target written
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    code, _, err = run_in_process(capsys, "process", walk_clip, "--csv", tmp_path / "q.csv", "--reps", fifo)
    assert code == 2 and "not a regular file" in one_error_line(err)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    code, _, err = run_in_process(capsys, "process", walk_clip, "--csv", "/dev/null")
    assert code == 2 and "not a regular file" in one_error_line(err)


# ---------------------------------------------------------------------------- 7. Ray on the loopback address


def _process_tree(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grown = {root}, True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return tree


def _listening_addresses(pids: set[int]) -> set[str]:
    """The addresses the processes listen on (TCP), as written in /proc/net/tcp*."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                addresses.add(fields[1].split(":")[0])
    return addresses


def _is_loopback(hex_address: str) -> bool:
    if len(hex_address) == 8:  # IPv4, little-endian
        return hex_address.endswith("7F")
    words = [hex_address[i:i + 8] for i in range(0, 32, 8)]
    return words == ["00000000", "00000000", "00000000", "01000000"] or (
        words[:3] == ["00000000", "00000000", "FFFF0000"] and words[3].endswith("7F")
    )


@pytest.mark.slow
def test_ray_without_an_address_listens_on_the_loopback_address_only(tmp_path, long_clip):
    pytest.importorskip("ray")
    csv_path = tmp_path / "p.csv"
    process = pose_app("process", long_clip, "--ray", "--json", tmp_path / "{stem}.json", "--csv", csv_path,
                       "--preset", "accurate")
    seen: set[str] = set()
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        seen |= _listening_addresses(_process_tree(process.pid))
        time.sleep(0.2)
    process.kill()
    process.communicate(timeout=60)
    assert seen, "Ray opened no listening socket: nothing was checked"
    assert all(_is_loopback(address) for address in seen), seen


# ---------------------------------------------------------------------------- 8. the WebSocket stream


@pytest.fixture
def websocket_stream():
    """A WebSocket stream on a free loopback port (and `open(**config)` for another config)."""
    pytest.importorskip("websockets")
    from pose_app.io.stream import PoseStreams
    from pose_app.io.stream_config import Endpoint, StreamConfig

    opened = []

    def open_stream(**config) -> PoseStreams:
        streams = PoseStreams.open(StreamConfig(ws=Endpoint("127.0.0.1", 0), **config))
        opened.append(streams)
        return streams

    yield open_stream
    for streams in opened:
        streams.close()


def _connect(port: int, origin: str | None):
    from websockets.sync.client import connect

    return connect(f"ws://127.0.0.1:{port}", origin=origin, open_timeout=10)


def test_websocket_lets_in_local_pages_files_and_programs_but_no_other_web_page(websocket_stream):
    from websockets.exceptions import InvalidStatus

    streams = websocket_stream()
    port = streams.websocket.port
    for origin in (None, "null", "http://localhost:8000", "http://127.0.0.1:5500", "https://[::1]"):
        with _connect(port, origin):
            pass
    for origin in ("https://evil.example.com", "http://localhost.evil.example.com", "http://127.0.0.1.evil.example"):
        with pytest.raises(InvalidStatus, match="403"):
            _connect(port, origin)
    allowed = websocket_stream(ws_allow_origins=("https://studio.example.com",)).websocket.port
    with _connect(allowed, "https://studio.example.com"):
        pass


def test_websocket_caps_connections_and_bounds_what_a_client_can_make_it_hold(websocket_stream):
    from websockets.exceptions import ConnectionClosed

    from pose_app.io.stream import MAX_WS_CONNECTIONS

    streams = websocket_stream()
    port = streams.websocket.port
    threads_before = threading.active_count()
    half_open = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    try:
        time.sleep(1.0)
        # Two threads per connection served (its handler, its reader), none for those refused.
        assert threading.active_count() - threads_before <= 2 * MAX_WS_CONNECTIONS + 4
        assert streams.websocket.refused >= 200 - MAX_WS_CONNECTIONS
    finally:
        for sock in half_open:
            sock.close()
    time.sleep(0.5)
    with _connect(port, None) as client:  # served again once they are gone
        client.send("x" * 100)
        with pytest.raises(ConnectionClosed):  # a message over max_size closes that connection
            client.send("x" * 2_000_000)
            client.recv(timeout=5)


def test_websocket_on_every_interface_warns_in_one_line(capsys, walk_clip, tmp_path):
    pytest.importorskip("websockets")
    code, _, err = run_in_process(capsys, "process", walk_clip, "--end", "0.2", "--csv", tmp_path / "p.csv",
                                  "--ws", "0.0.0.0:0", "--max-speed")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("pose-app: warning:")]
    assert len(warnings) == 1 and "every network interface" in warnings[0]


# ---------------------------------------------------------------------------- 9. one line, and the batch goes on


def _ground_truth_cases() -> dict[str, object]:
    base = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "keypoints": [0] * 51,
                         "num_keypoints": 0}],
        "categories": [{"id": 1, "name": "person"}],
    }

    def changed(path, value):
        document = json.loads(json.dumps(base))
        target = document
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return json.dumps(document)

    return {
        "images-not-a-list": changed(["images"], 5),
        "short-bbox": changed(["annotations", 0, "bbox"], [0, 0, 5]),
        "string-image-id": changed(["images", 0, "id"], "1"),
        "mixed-ids": json.dumps({**base, "images": [{"id": 1, "file_name": "a.jpg"}, {"id": "b", "file_name": "b.jpg"}]}),
        "no-file-name": changed(["images", 0, "file_name"], KeyError),
        "string-keypoints": changed(["annotations", 0, "keypoints"], "xyz"),
        "bool-category": changed(["annotations", 0, "category_id"], True),
        "infinite-bbox": changed(["annotations", 0, "bbox"], [0, 0, 1e400, 5]).replace("Infinity", "1e400"),
        "deep-nesting": "[" * 100_000 + "]" * 100_000,
    }


@pytest.mark.parametrize("case", list(_ground_truth_cases()))
def test_eval_on_malformed_ground_truth_is_one_line(tmp_path, capsys, case):
    gt = tmp_path / "gt.json"
    gt.write_text(_ground_truth_cases()[case])
    code, _, err = run_in_process(capsys, "eval", "--gt", gt, "--images", tmp_path)
    assert code == 2
    one_error_line(err)


def _bad_keypoint_csvs(walk_keypoints: Path) -> dict[str, str]:
    lines = walk_keypoints.read_text().splitlines()
    header, row = lines[0], lines[1].split(",")
    columns = header.split(",")

    def with_value(column: str, value: str) -> str:
        changed = list(row)
        changed[columns.index(column)] = value
        return "\n".join([header, *lines[1:20], ",".join(changed), *lines[20:40]]) + "\n"

    return {
        "inf-x": with_value("x", "inf"),
        "1e400-y": with_value("y", "1e400"),
        "nan-score": with_value("score", "nan"),
        "huge-person-id": with_value("person_id", str(2**64)),
        "huge-frame": with_value("frame", "9" * 30),
        "negative-frame": with_value("frame", "-1"),
        "inf-time": with_value("time_s", "-inf"),
        "1e400-x-norm": with_value("x_norm", "1e400"),
    }


@pytest.mark.parametrize("command", ["angles", "reps", "plot"])
def test_keypoint_csvs_with_impossible_values_are_one_line(tmp_path, capsys, walk_keypoints, command):
    pytest.importorskip("matplotlib")
    for name, text in _bad_keypoint_csvs(walk_keypoints).items():
        source = tmp_path / f"{name}.csv"
        source.write_text(text)
        out = tmp_path / ("out.png" if command == "plot" else "out.csv")
        code, _, err = run_in_process(capsys, command, source, "--out", out)
        assert code == 2, (name, err)
        assert re.search(r"line \d+", one_error_line(err)), err
        assert not out.exists()


def test_angle_and_reps_csvs_with_impossible_values_are_one_line(tmp_path, capsys, walk_keypoints):
    pytest.importorskip("matplotlib")
    angles = tmp_path / "walk.angles.csv"
    assert main(["angles", str(walk_keypoints), "--out", str(angles)]) == 0
    lines = angles.read_text().splitlines()
    for name, bad in (("degrees", "1e400"), ("confidence", "inf"), ("person_id", str(2**70)), ("time_s", "nan")):
        row = lines[1].split(",")
        row[lines[0].split(",").index(name)] = bad
        source = tmp_path / f"angles-{name}.csv"
        source.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
        code, _, err = run_in_process(capsys, "plot", source, "--out", tmp_path / "a.png")
        assert code == 2 and "line 2" in one_error_line(err), err
    from pose_app.errors import PoseAppError
    from pose_app.io.reps_csv import REPS_CSV_COLUMNS, read_reps_csv

    reps = tmp_path / "reps.csv"
    reps.write_text(",".join(REPS_CSV_COLUMNS) + "\nwalk.mkv,0,1,left_knee,left,down,1e400,1,2,170,90,80,0.5,0.5,0.9\n")
    with pytest.raises(PoseAppError, match="line 2"):
        read_reps_csv(reps)


@pytest.mark.parametrize("command", ["angles", "reps"])
def test_a_full_disk_in_angles_and_reps_keeps_the_previous_file_and_leaves_nothing_half(tmp_path, walk_keypoints, command):
    out = tmp_path / "out.csv"
    out.write_text("the previous file\n")
    process = pose_app(command, walk_keypoints, "--out", out, preexec_fn=with_file_size_limit(100),
                       env={**ENV, "MPLCONFIGDIR": str(tmp_path / "mpl")})
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, (stdout, stderr)
    assert "failed" in one_error_line(stderr)
    assert out.read_text() == "the previous file\n"
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != "mpl") == ["out.csv"]


def test_a_file_name_too_long_and_a_huge_resolution_are_one_line(tmp_path, capsys, walk_clip):
    code, _, err = run_in_process(capsys, "process", walk_clip, "--csv", tmp_path / ("a" * 300 + ".csv"))
    assert code == 2 and "too long" in one_error_line(err)
    with pytest.raises(SystemExit) as exit_info:
        main(["process", str(walk_clip), "--csv", str(tmp_path / "p.csv"), "--resolution", "100000"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("expected an integer from 1 to 2049, got 100000")


def test_an_unexpected_error_in_one_input_fails_that_input_and_the_batch_goes_on(tmp_path, capsys, group_image, monkeypatch):
    from pose_app.io import sources

    first, second = tmp_path / "first.jpg", tmp_path / "second.jpg"
    shutil.copyfile(str(group_image), first)
    shutil.copyfile(str(group_image), second)
    read_image = sources.read_image

    def surprising(path):
        if Path(path).name == "first.jpg":
            raise RuntimeError("a library's surprise")
        return read_image(path)

    monkeypatch.setattr(sources, "read_image", surprising)
    code, out, err = run_in_process(capsys, "process", first, second, "--out-dir", tmp_path / "out")
    assert code == 1
    assert "unexpected error (RuntimeError): a library's surprise" in one_error_line(err)
    assert "1 failed" in out and json.loads((tmp_path / "out" / "second.json").read_text())["complete"] is True


# ---------------------------------------------------------------------------- 10. complete means complete


def test_a_truncated_video_is_reported_incomplete_and_done_again(tmp_path, capsys, walk_clip):
    truncated = tmp_path / "half.mkv"
    data = Path(str(walk_clip)).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    capture = cv2.VideoCapture(str(truncated))
    announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert announced == walk_clip.frame_count  # the container still announces every frame
    out = tmp_path / "out"
    code, stdout, err = run_in_process(capsys, "process", truncated, "--out-dir", out, "--preset", "fast")
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("pose-app: warning:")]
    assert len(warnings) == 1 and f"of the {announced} frames it announces" in warnings[0]
    document = json.loads((out / "half.json").read_text())
    assert document["complete"] is False and document["frames_announced"] == announced
    assert 0 < document["frames_read"] < announced and document["frames_written"] == document["frames_read"]
    assert "INCOMPLETE" in stdout
    code, stdout, _ = run_in_process(capsys, "process", truncated, "--out-dir", out, "--preset", "fast", "--skip-done")
    assert code == 0 and "skipped" not in stdout  # --skip-done does it again


# ---------------------------------------------------------------------------- 11. an unreadable image in a folder


def test_an_unreadable_image_in_a_folder_is_skipped_and_counted(tmp_path, capsys, group_image):
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("a.jpg", "c.jpg", "d.jpg"):
        shutil.copyfile(str(group_image), folder / name)
    (folder / "b.jpg").write_bytes(b"not a picture at all")
    (folder / "0-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    code, stdout, err = run_in_process(capsys, "process", folder, "--out-dir", out)
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("pose-app: warning:")]
    assert len(warnings) == 1 and "2 unreadable image(s) skipped" in warnings[0]
    assert "3 frames, 2 unreadable image(s) skipped" in stdout
    document = json.loads((out / "shots.json").read_text())
    assert document["frames_written"] == 3 and document["images_skipped"] == 2
    assert {Path(record["source"]).name for record in document["annotations"]} == {"a.jpg", "c.jpg", "d.jpg"}


# ---------------------------------------------------------------------------- 12. two runs, one output


def test_a_second_run_on_the_same_outputs_stops_with_one_line_and_harms_nothing(tmp_path, capsys, long_clip):
    csv_path, json_path = tmp_path / "p.csv", tmp_path / "p.json"
    first = pose_app("process", long_clip, "--csv", csv_path, "--json", json_path, "--preset", "accurate")
    try:
        wait_for(lambda: csv_lines(csv_path) > 1 + 17 * 3, first, what="the first run's rows")
        code, out, err = run_in_process(capsys, "process", long_clip, "--csv", csv_path, "--json", json_path)
        assert code == 1 and "being written by another pose-app run" in one_error_line(err)
        assert csv_lines(csv_path) > 1 + 17 * 3  # not emptied
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    rows = list(csv.reader(io.StringIO(csv_path.read_text())))
    assert rows[0] == list(LONG_CSV_COLUMNS) and all(len(row) == len(LONG_CSV_COLUMNS) for row in rows)
    assert [row[0] for row in rows[1:]] == [str(long_clip)] * (len(rows) - 1)
    document = json.loads(json_path.read_text())
    assert document["complete"] is False and np.all(np.diff([a["image_id"] for a in document["annotations"]]) >= 0)
