"""A recording made in the desktop app equals `pose-app process` on the same file, frame for frame.

The window runs in max-speed mode (every frame processed, none dropped), so its tracker and
smoother see exactly the frames and timestamps `pose-app process` sees. The recording is made
the way a user records a whole file: pause, go to the first frame, start recording, play.
The file is the generated walker clip (tests/media.py): one person, 60 frames, 640x480 @ 30 fps.
"""

import csv
import json

import pytest
from support import GUI_WAIT_MS

from pose_app.cli import main as cli
from pose_app.cli.options import config_from_args
from pose_app.gui.settings import AppSettings
from pose_app.inference.config import PipelineConfig
from pose_app.inference.model_files import DEFAULT_MODEL, resolve_model
from pose_app.io.formats import long_csv_rows

WAIT_MS = GUI_WAIT_MS
WALK_FRAMES = 60  # the walker clip: 2 s at 30 fps


@pytest.fixture
def walk(walk_clip):
    assert walk_clip.frame_count == WALK_FRAMES
    return str(walk_clip)


@pytest.fixture(scope="module")
def cli_outputs(tmp_path_factory, walk_clip):
    """(csv path, json path) written by `pose-app process` with its default settings."""
    walk = str(walk_clip)
    folder = tmp_path_factory.mktemp("process")
    csv_path, json_path = folder / "cli.csv", folder / "cli.json"
    assert cli.main(["process", walk, "--csv", str(csv_path), "--json", str(json_path)]) == 0
    return csv_path, json_path


def read_csv(path):
    with path.open(newline="") as stream:
        return list(csv.reader(stream))


def read_json(path):
    return json.loads(path.read_text())


def shown_indices(window) -> list[int]:
    """Frame index of every result the window shows from now on."""
    shown: list[int] = []
    window.frame_shown.connect(lambda result: shown.append(result.frame.index))
    return shown


def wait_for_the_end(qtbot, window, shown) -> None:
    """Until the file ended (without looping, the capture pauses there) and its last frame is shown."""
    qtbot.waitUntil(lambda: window.capture.paused and shown[-1:] == [WALK_FRAMES - 1], timeout=WAIT_MS)


def test_app_settings_default_to_the_process_command_defaults():
    """Same model, provider, resolution, decoding and smoothing unless the user changes them."""
    args = cli.build_parser().parse_args(["process", "video.mp4", "--csv", "poses.csv"])
    process_config = config_from_args(args)
    assert AppSettings().pipeline_config() == process_config
    # and the window keeps every setting it stores under the config's name
    changed = AppSettings().with_preset("fast")
    assert changed.pipeline_config() == PipelineConfig.from_preset("fast")


def test_recording_equals_process_frame_for_frame(make_window, qtbot, tmp_path, walk, cli_outputs):
    cli_csv, cli_json = cli_outputs
    window = make_window(max_speed=True, loop=False)
    shown = shown_indices(window)
    # Play the file once first: without looping the capture pauses itself after the last frame,
    # so no frame is in flight when the recording starts; going back to frame 0 starts tracks and
    # filters afresh (as a seek does).
    window.open_source(walk)
    wait_for_the_end(qtbot, window, shown)

    gui_csv, gui_json = tmp_path / "gui.csv", tmp_path / "gui.json"
    window.start_recording(gui_csv, gui_json)
    del shown[:]
    window.seek(0)
    qtbot.waitUntil(lambda: shown == [0], timeout=WAIT_MS)
    window.toggle_pause()
    wait_for_the_end(qtbot, window, shown)
    assert shown == list(range(WALK_FRAMES)), "max-speed mode must show every frame once, in order"
    assert window.stop_recording() == WALK_FRAMES

    gui_rows, cli_rows = read_csv(gui_csv), read_csv(cli_csv)
    assert gui_rows[0] == cli_rows[0]
    assert len(gui_rows) == len(cli_rows) > 1 + 17 * WALK_FRAMES // 2
    assert gui_rows == cli_rows  # same text: same frames, ids, times and numbers at 0.01 px

    gui, process = read_json(gui_json), read_json(cli_json)
    assert gui["annotations"] == process["annotations"]
    trailer = ("frames_written", "complete")
    assert [gui[key] for key in trailer] == [process[key] for key in trailer] == [WALK_FRAMES, True]
    # The same header, every field: no field of it depends on the wall clock or on which
    # program recorded, and both name the same source path.
    assert gui["header"] == process["header"]


def test_recording_a_still_image_equals_process(make_window, qtbot, tmp_path, group_image):
    """A still image is not smoothed and runs the two-pass mode in the app as in `pose-app
    process`: the same rows and the same header."""
    folder = tmp_path / "process"
    folder.mkdir()
    cli_csv, cli_json = folder / "cli.csv", folder / "cli.json"
    assert cli.main(["process", str(group_image), "--csv", str(cli_csv), "--json", str(cli_json)]) == 0
    window = make_window(max_speed=True, loop=False)
    shown = shown_indices(window)
    window.open_source(str(group_image))
    qtbot.waitUntil(lambda: window.capture.paused and shown == [0], timeout=WAIT_MS)
    gui_csv, gui_json = tmp_path / "gui.csv", tmp_path / "gui.json"
    window.start_recording(gui_csv, gui_json)
    window.seek(0)
    qtbot.waitUntil(lambda: shown == [0, 0], timeout=WAIT_MS)
    assert window.stop_recording() == 1
    gui, process = read_json(gui_json), read_json(cli_json)
    assert process["header"]["smooth"] is False and len(process["annotations"]) == 3
    assert gui == process
    assert read_csv(gui_csv) == read_csv(cli_csv)


def rows_of_frames(rows, frames) -> list[list[str]]:
    """The long-CSV data rows (header excluded) whose frame column is in `frames`."""
    frames = {str(index) for index in frames}
    return [row for row in rows[1:] if row[1] in frames]


def test_recording_ends_with_the_file_and_a_loop_restarts_tracking(make_window, qtbot, tmp_path, walk, cli_outputs):
    """Looping on (the default): a recording started while the file plays holds the frames from
    there to the end once, with the numbers `pose-app process` gives those frames (the pipeline
    saw every frame before them too); after it, the loop restarts tracking and smoothing."""
    cli_csv, _ = cli_outputs
    # The model as a file path: the recording still names the model as `pose-app process` does.
    window = make_window(max_speed=True, model=str(resolve_model(DEFAULT_MODEL)))
    assert window.settings.loop
    results = []
    window.frame_shown.connect(results.append)
    window.open_source(walk)
    qtbot.waitUntil(lambda: window.source_info is not None, timeout=WAIT_MS)
    gui_csv, gui_json = tmp_path / "gui.csv", tmp_path / "gui.json"
    window.start_recording(gui_csv, gui_json)
    # While recording, the file does not loop: playback stops after its last frame.
    qtbot.waitUntil(lambda: window.capture.paused and window.capture.last_index == WALK_FRAMES - 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: [r.frame.index for r in results[-1:]] == [WALK_FRAMES - 1], timeout=WAIT_MS)
    frames_written = window.stop_recording()

    gui_rows, cli_rows = read_csv(gui_csv), read_csv(cli_csv)
    recorded = sorted({int(row[1]) for row in gui_rows[1:]})
    first = recorded[0]
    assert recorded == list(range(first, WALK_FRAMES)) and frames_written == WALK_FRAMES - first
    assert first < WALK_FRAMES // 2  # the recording started early in the file
    assert gui_rows[0] == cli_rows[0] and gui_rows[1:] == rows_of_frames(cli_rows, recorded)
    header = read_json(gui_json)["header"]
    assert header["model"] == DEFAULT_MODEL and read_json(gui_json)["frames_written"] == frames_written

    # Not recording: play on and the file loops. A loop restarts time, so tracks and filters
    # start afresh: the new pass's first frames get exactly the numbers process gives them.
    del results[:]
    window.toggle_pause()
    looped = 10
    qtbot.waitUntil(lambda: len(results) >= looped, timeout=WAIT_MS)
    assert [r.frame.index for r in results[:looped]] == list(range(looped))
    shown_text = "".join(long_csv_rows(r.frame, r.poses) for r in results[:looped])
    expected = rows_of_frames(cli_rows, range(looped))
    assert list(csv.reader(shown_text.splitlines())) == expected
