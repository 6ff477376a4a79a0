"""The desktop app's stream (Controls: Stream) sends what its recording writes: OSC bundles into a
real python-osc server and JSON messages to a real websockets client on 127.0.0.1, each value
equal to the recording's CSV (same frame, same person, same rounding). The walker clip
(tests/media.py): one person, 60 frames, 640x480 @ 30 fps, played in max-speed mode."""

from __future__ import annotations

import csv
import socket
from collections import defaultdict

import numpy as np
from receivers import OscReceiver, WebSocketCollector
from support import GUI_WAIT_MS

from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.gui.settings import AppSettings, file_store, read_settings

WALK_FRAMES = 60


def f32(text: str) -> float:
    return float(np.float32(float(text)))


def recorded_people(path) -> dict[int, dict[int, dict[str, dict[str, str]]]]:
    people: dict = defaultdict(lambda: defaultdict(dict))
    with open(path, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            people[int(row["frame"])][int(row["person_id"])][row["keypoint"]] = row
    return people


def test_the_app_streams_what_it_records(make_window, qtbot, tmp_path, walk_clip):
    osc = OscReceiver()
    try:
        window = make_window(max_speed=True, loop=False, stream_osc=True, osc_port=osc.port, stream_ws=True, ws_port=0)
        assert window.controls.stream.stream_osc.isChecked() and window.controls.stream.stream_ws.isChecked()
        client = WebSocketCollector(window.streams.websocket.port)  # port 0: the one the system chose
        assert client.connected.wait(30)
        qtbot.waitUntil(lambda: window.streams.websocket.clients == 1, timeout=GUI_WAIT_MS)
        shown: list[int] = []
        window.frame_shown.connect(lambda result: shown.append(result.frame.index))
        window.open_source(str(walk_clip))
        qtbot.waitUntil(lambda: window.capture.paused and shown[-1:] == [WALK_FRAMES - 1], timeout=GUI_WAIT_MS)
        # Record the file from its first frame, as a user does: the recording is the reference.
        recorded = tmp_path / "app.csv"
        window.start_recording(recorded)
        del shown[:]
        window.seek(0)
        qtbot.waitUntil(lambda: shown == [0], timeout=GUI_WAIT_MS)
        window.toggle_pause()
        qtbot.waitUntil(lambda: window.capture.paused and shown[-1:] == [WALK_FRAMES - 1], timeout=GUI_WAIT_MS)
        assert window.stop_recording() == WALK_FRAMES
        status = window.status_text()
        window.close()  # closes the streams: the client's connection ends
        osc.wait_for(2 * WALK_FRAMES)
        client.join()
    finally:
        osc.close()
    assert f"OSC {2 * WALK_FRAMES} sent, 0 dropped, " in status
    assert f"1 client(s), {2 * WALK_FRAMES} sent, 0 dropped" in status

    people = recorded_people(recorded)
    assert len(people) > WALK_FRAMES // 2
    # The file was played twice (once before recording): the second play is the recorded one.
    bundles = [(args, messages) for _, _, args, messages in osc.frames][-WALK_FRAMES:]
    assert [args[0] for args, _ in bundles] == list(range(WALK_FRAMES))
    for (frame, time_s, width, height, count), messages in bundles:
        assert (width, height, count) == (640, 480, len(people.get(frame, {})))
        expected = {}
        for person_id, rows in people.get(frame, {}).items():
            assert time_s == f32(rows["nose"]["time_s"])
            expected[f"/pose/{person_id}/score"] = (f32(rows["nose"]["person_score"]),)
            for name in KEYPOINT_NAMES:
                expected[f"/pose/{person_id}/{name}"] = tuple(f32(rows[name][field]) for field in ("x_norm", "y_norm", "score"))
        assert messages == expected
    messages = client.messages[-WALK_FRAMES:]
    assert [message["frame"] for message in messages] == list(range(WALK_FRAMES))
    for message in messages:
        for person in message["people"]:
            rows = people[message["frame"]][person["id"]]
            for name, point in person["keypoints"].items():
                assert point == {field: float(rows[name][field]) for field in ("x", "y", "x_norm", "y_norm", "score")}


def test_a_port_in_use_is_said_and_the_stream_switched_off(make_window, qtbot):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        window = make_window(stream_ws=True, ws_port=taken.getsockname()[1])
        assert "cannot serve WebSocket there" in window.message_text()
        assert window.streams is None and not window.settings.stream_ws
        assert not window.controls.stream.stream_ws.isChecked()


def test_stream_settings_are_stored_by_their_names(make_window, tmp_path):
    window = make_window()
    window.controls.stream.osc_port.setValue(9100)
    window.controls.stream.osc_format.setCurrentIndex(window.controls.stream.osc_format.findData("array"))
    window.controls.stream.stream_angles.setChecked(True)
    assert (window.settings.osc_port, window.settings.osc_format, window.settings.stream_angles) == (9100, "array", True)
    assert window.streams is None  # both streams off: nothing sent
    window.close()
    stored = read_settings(file_store(tmp_path / "settings.ini"))
    assert (stored.osc_port, stored.osc_format, stored.stream_angles) == (9100, "array", True)
    assert stored.stream_config() == AppSettings(osc_port=9100, osc_format="array", stream_angles=True).stream_config()
