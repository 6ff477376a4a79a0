"""Live streaming (io/stream.py) end to end: `pose-app process --osc --ws` on generated clips
(tests/media.py) into a real python-osc server and a real websockets client on 127.0.0.1, every
value compared with the CSV files of the same run; a receiver that never reads; bad endpoints."""

from __future__ import annotations

import csv
import json
import re
import socket
import subprocess
import sys
import threading
from collections import defaultdict

import numpy as np
import pytest
from receivers import OscReceiver, WebSocketCollector, free_tcp_port, never_reading_client
from support import REPO

from pose_app.cli.main import main
from pose_app.core.angles import ANGLE_NAMES
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.errors import PoseAppError
from pose_app.io.pacing import MAX_PACING_LAG_S, MediaClock
from pose_app.io.send_queue import DropOldestQueue
from pose_app.io.stream_config import Endpoint, parse_endpoint

WALK_FRAMES = 60


def f32(text: str) -> float:
    """A CSV number as an OSC float (32 bits) carries it."""
    return float(np.float32(float(text)))


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def csv_people(path) -> dict[int, dict[int, dict[str, dict[str, str]]]]:
    """frame -> person_id -> keypoint -> the long CSV's row."""
    people: dict = defaultdict(lambda: defaultdict(dict))
    for row in read_rows(path):
        people[int(row["frame"])][int(row["person_id"])][row["keypoint"]] = row
    return people


def run_process(capsys, *argv) -> tuple[int, str, str]:
    code = main(["process", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_process_streams_every_frame_as_the_csv_has_it(tmp_path, capsys, walk_clip):
    """One OSC bundle and one WebSocket message per frame, with the documented addresses and the
    CSV's numbers (same frame, same person, same rounding), angles as the angles CSV has them; the
    file plays at its own speed."""
    paths = {kind: tmp_path / f"walk.{kind}.csv" for kind in ("csv", "angles")}
    osc = OscReceiver()
    ws_port = free_tcp_port()
    client = WebSocketCollector(ws_port)
    try:
        code, out, err = run_process(
            capsys, walk_clip, "--csv", paths["csv"], "--angles", paths["angles"], "--stream-angles",
            "--osc", f"127.0.0.1:{osc.port}", "--ws", f"127.0.0.1:{ws_port}", "--ws-wait-clients", 1,
        )
        osc.wait_for(WALK_FRAMES)
        client.join()
    finally:
        osc.close()
    assert code == 0, err
    assert f"streaming OSC to 127.0.0.1:{osc.port} (bundle, x y in 0..1 of the frame), WebSocket on " in err
    assert f"OSC 127.0.0.1:{osc.port}: {WALK_FRAMES} sent, 0 dropped, latency p50 " in out
    assert f"WebSocket ws://127.0.0.1:{ws_port}: {WALK_FRAMES} sent, 0 dropped" in out

    people = csv_people(paths["csv"])
    assert len(people) > WALK_FRAMES // 2  # the walker is found on most frames
    angles = {(int(r["frame"]), int(r["person_id"]), r["angle"]): r["degrees"] for r in read_rows(paths["angles"])}
    assert [args[0] for _, _, args, _ in osc.frames] == list(range(WALK_FRAMES))
    for _, address, (frame, time_s, width, height, count), messages in osc.frames:
        assert address == "/pose/frame" and (width, height) == (640, 480)
        assert count == len(people.get(frame, {}))
        expected = {}
        for person_id, rows in people.get(frame, {}).items():
            first = rows["nose"]
            assert time_s == f32(first["time_s"])
            expected[f"/pose/{person_id}/score"] = (f32(first["person_score"]),)
            for name in KEYPOINT_NAMES:
                row = rows[name]
                expected[f"/pose/{person_id}/{name}"] = (f32(row["x_norm"]), f32(row["y_norm"]), f32(row["score"]))
            for name in ANGLE_NAMES:
                if angles[frame, person_id, name]:  # a missing angle is not sent
                    expected[f"/pose/{person_id}/angle/{name}"] = (f32(angles[frame, person_id, name]),)
        assert messages == expected
    assert any("/angle/" in address for _, _, _, messages in osc.frames for address in messages)
    # Paced at the file's 30 fps: frame 59 is not sent before its media time (1.97 s after frame 0).
    assert osc.frames[-1][0] - osc.frames[0][0] >= 59 / 30 - MAX_PACING_LAG_S

    assert [message["frame"] for message in client.messages] == list(range(WALK_FRAMES))
    for message in client.messages:
        frame = message["frame"]
        assert (message["width"], message["height"]) == (640, 480)
        assert {person["id"] for person in message["people"]} == set(people.get(frame, {}))
        for person in message["people"]:
            rows = people[frame][person["id"]]
            assert message["time_s"] == float(rows["nose"]["time_s"])
            assert person["score"] == float(rows["nose"]["person_score"])
            assert list(person["keypoints"]) == list(KEYPOINT_NAMES)
            for name, point in person["keypoints"].items():
                assert point == {field: float(rows[name][field]) for field in ("x", "y", "x_norm", "y_norm", "score")}
            assert person["angles"] == {
                name: float(angles[frame, person["id"], name]) if angles[frame, person["id"], name] else None
                for name in ANGLE_NAMES
            }


def test_the_array_format_in_pixels_holds_every_person(tmp_path, capsys, people_clip):
    """--osc-format array --osc-pixels: one /poses message per frame (frame, time, size, people,
    then id, score and 17 x (x, y, score) per person in pixels), several people, every frame."""
    path = tmp_path / "people.csv"
    osc = OscReceiver()
    try:
        code, _, err = run_process(
            capsys, people_clip, "--csv", path, "--osc", f"127.0.0.1:{osc.port}", "--osc-format", "array",
            "--osc-pixels", "--max-speed",
        )
        osc.wait_for(people_clip.frame_count)
    finally:
        osc.close()
    assert code == 0, err
    assert "(array, x y in pixels)" in err
    people = csv_people(path)
    assert max(len(found) for found in people.values()) >= 2
    assert [args[0] for _, _, args, _ in osc.frames] == list(range(people_clip.frame_count))
    for _, address, args, messages in osc.frames:
        assert address == "/poses" and messages == {}
        frame, time_s, width, height, count = args[:5]
        found = people.get(frame, {})
        assert (width, height, count) == (640, 480, len(found))
        assert len(args) == 5 + count * (2 + 3 * len(KEYPOINT_NAMES))
        values = iter(args[5:])
        for _ in range(count):
            person_id, score = next(values), next(values)
            rows = found[person_id]
            assert time_s == f32(rows["nose"]["time_s"]) and score == f32(rows["nose"]["person_score"])
            for name in KEYPOINT_NAMES:
                assert (next(values), next(values), next(values)) == tuple(
                    f32(rows[name][field]) for field in ("x", "y", "score"))


@pytest.mark.slow
def test_a_receiver_that_never_reads_costs_frames_not_time(tmp_path, capsys, long_clip):
    """A WebSocket client that stalls gets its frames dropped (counted, reported); the run goes
    on at full speed and writes every frame; every frame is either sent or counted as dropped."""
    path = tmp_path / "long.json"
    ws_port = free_tcp_port()
    stalled: list[socket.socket] = []
    connecting = threading.Thread(target=lambda: stalled.append(never_reading_client(ws_port)), daemon=True)
    connecting.start()
    deaf = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    deaf.bind(("127.0.0.1", 0))
    try:
        code, out, err = run_process(
            capsys, long_clip, "--json", path, "--max-speed", "--stream-angles", "--osc",
            f"127.0.0.1:{deaf.getsockname()[1]}", "--ws", f"127.0.0.1:{ws_port}", "--ws-wait-clients", 1,
        )
    finally:
        deaf.close()
        for client in stalled:
            client.close()
    assert code == 0, err
    print(out)  # frames/s with a stalled receiver: compare with a run without --ws (docs/streaming.md)
    frames = long_clip.frame_count
    assert f"ok, {frames} frames" in out
    document = json.loads(path.read_text())
    assert (document["frames_written"], document["complete"]) == (frames, True)
    sent, dropped = map(int, re.search(r"WebSocket ws://127\.0\.0\.1:\d+: (\d+) sent, (\d+) dropped", out).groups())
    assert dropped > 0 and sent + dropped == frames
    # OSC never waits for its receiver; its sender drops only when encoding falls behind (a busy machine).
    sent, dropped = map(int, re.search(r"OSC 127\.0\.0\.1:\d+: (\d+) sent, (\d+) dropped", out).groups())
    assert sent + dropped == frames and sent >= frames // 2


def test_a_stream_that_fails_midway_leaves_the_other_outputs_written(tmp_path, capsys, walk_clip):
    """OSC to the broadcast address without permission fails at the first send: said in one
    line, exit status 1, the CSV still holds every frame."""
    path = tmp_path / "walk.csv"
    code, out, err = run_process(capsys, walk_clip, "--csv", path, "--osc", "255.255.255.255:9000", "--max-speed")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("pose-app: error:")]
    assert errors == [(
        "pose-app: error: OSC 255.255.255.255:9000 stopped at frame 0: [Errno 13] Permission denied; "
        "the other outputs were written"
    )]
    assert "OSC 255.255.255.255:9000: 0 sent, 0 dropped" in out
    assert len({row["frame"] for row in read_rows(path)}) == WALK_FRAMES


@pytest.fixture
def port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--osc", "localhost", "--osc expects HOST:PORT with a port 0-65535 (e.g. 127.0.0.1:9000), got 'localhost'"),
        ("--ws", "127.0.0.1:70000", "--ws expects HOST:PORT with a port 0-65535"),
        ("--osc", "no-such-host.invalid:9000", "--osc no-such-host.invalid:9000: cannot resolve host 'no-such-host.invalid'"),
        ("--ws", "IN_USE", "cannot serve WebSocket there: Address already in use"),
    ],
)
def test_a_bad_endpoint_is_one_line_and_touches_no_file(tmp_path, capsys, walk_clip, port_in_use, option, value, message):
    existing = tmp_path / "walk.csv"
    existing.write_text("an earlier run's file\n")
    value = value.replace("IN_USE", f"127.0.0.1:{port_in_use}")
    code, _, err = run_process(capsys, walk_clip, "--csv", existing, option, value)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("pose-app: error: ") and message in err
    assert existing.read_text() == "an earlier run's file\n"


def test_streaming_options_need_a_stream(capsys, walk_clip, tmp_path):
    for extra in (["--osc-pixels"], ["--stream-angles"], ["--max-speed"], ["--ws-wait-clients", "1"]):
        code, _, err = run_process(capsys, walk_clip, "--csv", tmp_path / "x.csv", *extra)
        assert code == 2 and err.startswith("pose-app: error: ") and err.count("\n") == 1, extra


def test_without_a_stream_or_with_max_speed_files_are_not_paced(tmp_path, capsys, walk_clip, monkeypatch):
    def paced(self, time_s, now=None):
        raise AssertionError("a frame was held back for its media time")

    monkeypatch.setattr(MediaClock, "delay", paced)
    assert run_process(capsys, walk_clip, "--end", "0.3", "--csv", tmp_path / "a.csv")[0] == 0
    osc = OscReceiver()
    try:
        code, _, err = run_process(capsys, walk_clip, "--end", "0.3", "--osc", f"127.0.0.1:{osc.port}", "--max-speed")
    finally:
        osc.close()
    assert code == 0, err


def test_streaming_alone_needs_no_output_file(capsys, group_image):
    osc = OscReceiver()
    try:
        code, _, err = run_process(capsys, group_image, "--osc", f"127.0.0.1:{osc.port}")
        osc.wait_for(1)
    finally:
        osc.close()
    assert code == 0, err
    assert len(osc.frames) == 1 and osc.frames[0][2][4] == 3  # the three people of the still


def test_without_python_osc_the_error_says_how_to_install(capsys, walk_clip, monkeypatch):
    for name in [name for name in sys.modules if name.split(".")[0] == "pythonosc"] + ["pythonosc"]:
        monkeypatch.setitem(sys.modules, name, None)  # import pythonosc(...) -> ImportError
    code, _, err = run_process(capsys, walk_clip, "--osc", "127.0.0.1:9000")
    assert code == 2
    assert err == "pose-app: error: streaming needs python-osc and websockets: pip install 'pose-app[stream]'\n"


@pytest.mark.parametrize("kind", ["osc", "ws"])
def test_the_example_receiver_prints_each_frame(tmp_path, capsys, walk_clip, kind):
    """examples/receive_poses.py, as docs/streaming.md runs it, against a real run."""
    port = free_tcp_port()
    target = ["--osc", str(port)] if kind == "osc" else ["--ws", f"ws://127.0.0.1:{port}"]
    receiver = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "receive_poses.py"), *target, "--count", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        if kind == "osc":
            assert "listening for OSC" in receiver.stderr.readline()  # bound before the run starts
        stream = ["--osc", f"127.0.0.1:{port}"] if kind == "osc" else ["--ws", f"127.0.0.1:{port}", "--ws-wait-clients", "1"]
        code, _, err = run_process(capsys, walk_clip, "--end", "0.5", "--max-speed", *stream)
        out, _ = receiver.communicate(timeout=30)
    finally:
        receiver.kill()
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split(" t=")[0] for line in lines] == [f"frame {index}" for index in range(5)]
    assert all(" 1 people | id 0 score " in line for line in lines)


def test_endpoints_parse_as_host_and_port():
    assert parse_endpoint("127.0.0.1:9000") == Endpoint("127.0.0.1", 9000)
    assert parse_endpoint("[::1]:8765") == Endpoint("::1", 8765) and str(Endpoint("::1", 8765)) == "[::1]:8765"
    for text in ("9000", "host:", ":9000", "a b:1", "host:port", "1.2.3.4:65536"):
        with pytest.raises(PoseAppError):
            parse_endpoint(text)


def test_the_queue_drops_the_oldest_and_counts_it():
    queue = DropOldestQueue(size=3)
    for item in range(5):
        queue.put(item)
    assert queue.dropped == 2
    queue.close()
    assert [queue.get() for _ in range(4)] == [2, 3, 4, None]


def test_the_media_clock_waits_for_media_time_and_never_rushes():
    clock = MediaClock()
    assert clock.delay(10.0, now=100.0) == 0.0  # the first frame starts the clock
    assert clock.delay(10.5, now=100.2) == pytest.approx(0.3)  # due at 100.5
    assert clock.delay(11.0, now=101.0) == 0.0  # on time
    assert clock.delay(11.1, now=101.5) == 0.0  # 0.4 s late: the clock restarts here...
    assert clock.delay(11.2, now=101.5) == pytest.approx(0.1)  # ...and runs at normal speed from it
    assert clock.delay(20.0, now=101.6) == 0.0  # a jump ahead restarts it too


def test_bench_measures_what_streaming_costs(capsys):
    """`pose-app bench --stream`: each preset plain and streaming to receivers that never read,
    alternately; the change in frames/s and each stream's sent, dropped and latency are printed."""
    assert main(["bench", "--presets", "fast", "--frames", "6", "--stream"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0:2] for line in out.splitlines() if line.split()[:1] == ["fast"]]
    assert rows == [["fast", "posenet-075-int8"], ["fast", "+stream"]] * 2
    assert re.search(r"^fast: [\d.]+ frames/s plain, [\d.]+ streaming \([+-][\d.]+ %, medians of 2 runs each\)$", out, re.M)
    assert re.search(r"^  OSC 127\.0\.0\.1:\d+: 6 sent, 0 dropped, latency p50 [\d.]+ ms", out, re.M)
    sent, dropped = map(int, re.search(r"^  WebSocket ws://127\.0\.0\.1:\d+: (\d+) sent, (\d+) dropped", out, re.M).groups())
    assert sent + dropped == 6
