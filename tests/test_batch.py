"""`pose-app process --ray` (run/ray_batch.py) against the local run it must equal: identical files,
a worker killed mid-video, --skip-done, a corrupt input among good ones, Ctrl-C; and the atomic
recordings Ray attempts write.

One local Ray instance with 2 CPUs serves the whole module (the machine is small and shared):
`pose-app process --ray` finds it started and uses it. The media are generated
(tests/media.py); the test on the development videos skips without ../shared."""

from __future__ import annotations

import _thread
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support import MEDIA, requires_shared

from pose_app.cli.main import main
from pose_app.core.frames import SourceInfo
from pose_app.inference.pipeline import build_pipeline
from pose_app.io.formats import json_end, json_start
from pose_app.io.recording import Recording, temporary_paths
from pose_app.run.plan import is_done, json_complete

RAY_COMPARISON_VIDEOS = (
    "basketball-426x240.mp4", "people-one-by-one-768x432.mp4", "two-people-1080p.mp4", "walk-640x480.mkv",
)
# Header fields that would make two runs' JSON differ by when or where they ran; none may exist.
WALL_CLOCK_WORDS = ("date", "elapsed", "wall", "speed", "host", "created", "duration", "timestamp", "per_s")


def run_cli(capsys, *argv):
    code = main(["process", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


# ---------------------------------------------------------------------------- without Ray


def test_ray_not_installed_is_one_line_with_the_install_command(tmp_path, capsys, monkeypatch, walk_clip):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out, err = run_cli(capsys, walk_clip, "--ray", "--csv", tmp_path / "w.csv")
    assert code == 2 and out == ""
    assert err == 'pose-app: error: --ray needs Ray, which is not installed: pip install "pose-app[ray]"\n'
    assert not (tmp_path / "w.csv").exists()


def test_ray_address_or_input_and_options_that_need_ray(tmp_path, capsys, walk_clip):
    from pose_app.cli.main import build_parser

    parser = build_parser()
    parse = lambda *argv: parser.parse_args(["process", *argv, "--csv", "o.csv"])  # noqa: E731
    args = parse("--ray", "a.mp4", "b.mp4")  # an input right after a bare --ray stays an input
    assert (args.ray, args.inputs_before, args.inputs) == ("local", ["a.mp4"], ["b.mp4"])
    args = parse("a.mp4", "--ray", "b.mp4")
    assert (args.ray, args.inputs) == ("local", ["a.mp4", "b.mp4"])
    assert parse("a.mp4", "--ray", "auto").ray == "auto"
    assert parse("a.mp4", "--ray", "ray://head:10001").ray == "ray://head:10001"
    assert parse("a.mp4", "--ray", "10.0.0.5:6379").ray == "10.0.0.5:6379"
    assert parse("a.mp4").ray is None
    code, _, err = run_cli(capsys, walk_clip, "--workers", "2", "--csv", tmp_path / "w.csv")
    assert code == 2 and "--workers" in err and "--ray" in err
    code, _, err = run_cli(capsys, "--csv", tmp_path / "w.csv")
    assert code == 2 and "no INPUT" in err


def test_skip_done_needs_a_json_per_input(tmp_path, capsys, walk_clip, people_clip):
    code, _, err = run_cli(capsys, walk_clip, "--skip-done", "--csv", tmp_path / "w.csv")
    assert code == 2 and "--skip-done" in err and "JSON" in err
    code, _, err = run_cli(
        capsys, walk_clip, people_clip, "--skip-done", "--csv", tmp_path / "all.csv", "--json", tmp_path / "{stem}.json"
    )
    assert code == 2 and "combined CSV" in err
    assert not (tmp_path / "all.csv").exists()


def test_skip_done_without_ray_redoes_only_unfinished_inputs(tmp_path, capsys, walk_clip, people_clip):
    out = tmp_path / "out"
    options = ("--out-dir", out, "--formats", "csv,wide-csv,json", "--end", "0.5", "--every", "3")
    assert run_cli(capsys, walk_clip, people_clip, *options)[0] == 0
    first = files_of(out)
    walk_json, people_csv = out / "walk-640x480.json", out / "people-640x480.csv"
    assert is_done({"json": walk_json, "csv": people_csv}) and json_complete(walk_json)
    # walk: as an interrupted run leaves it ("complete": false): done again; people: skipped.
    walk_json.write_text(walk_json.read_text().replace('"complete": true', '"complete": false'))
    os.utime(people_csv, (1, 1))
    code, stdout, _ = run_cli(capsys, walk_clip, people_clip, *options, "--skip-done")
    assert code == 0 and "2 input(s), 0 failed, 1 skipped; 1 done, 5 frames in" in stdout
    assert "people-640x480.avi: skipped, already done" in stdout and people_csv.stat().st_mtime == 1
    # people: one of its outputs is missing: done again; walk: skipped.
    people_csv.unlink()
    code, stdout, _ = run_cli(capsys, walk_clip, people_clip, *options, "--skip-done")
    assert code == 0 and "2 input(s), 0 failed, 1 skipped; 1 done, 5 frames in" in stdout
    assert files_of(out) == first
    code, stdout, _ = run_cli(capsys, walk_clip, people_clip, *options, "--skip-done")
    assert "2 input(s), 0 failed, 2 skipped; 0 done, 0 frames in" in stdout


def test_skip_done_takes_the_json_of_an_earlier_release_with_its_old_header_keys(tmp_path):
    """The header of a release before one name per setting had `tracking` and `smoothed` beside
    `track` and `smooth`: --skip-done finds such an input finished (or not) by its trailer alone."""
    header = {"source": "walk.mp4", "track": True, "smooth": True, "tracking": True, "smoothed": True}
    old_json, csv_path = tmp_path / "walk.json", tmp_path / "walk.csv"
    csv_path.write_text("source,frame\n")
    for complete, done in ((True, True), (False, False)):
        old_json.write_text(json_start(header) + json_end(0, complete))
        assert json.loads(old_json.read_text())["header"]["smoothed"] is True  # a well-formed old file
        assert is_done({"json": old_json, "csv": csv_path}) is done


def test_atomic_recording_appears_only_when_finished(tmp_path, walk_clip):
    from pose_app.inference.config import PipelineConfig
    from pose_app.io.sources import open_source

    outputs = {"csv": tmp_path / "w.csv", "json": tmp_path / "w.json", "video": tmp_path / "w.annotated.mp4"}
    pipeline = build_pipeline(PipelineConfig.from_preset("fast"))
    with open_source(str(walk_clip)) as source:
        recording = Recording(source.info, outputs, atomic=True)
        recording.start(pipeline)
        for _, frame in zip(range(3), iter(source.read, None)):
            recording.write(frame, pipeline.process(frame))
        names = sorted(path.name for path in tmp_path.iterdir())
        # Under temporary names beside the outputs, each with its output's suffix (the codec).
        assert sorted(name.rsplit(".", 1)[1] for name in names) == ["csv", "json", "mp4"]
        assert all(name.startswith(".w") and ".pose-app-" in name for name in names)
        assert not any(path.exists() for path in outputs.values())
        assert len(temporary_paths(outputs["json"])) == 1
        recording.finish()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["w.annotated.mp4", "w.csv", "w.json"]
    assert json.loads(outputs["json"].read_text())["frames_written"] == 3
    # A cancelled attempt leaves nothing.
    info = SourceInfo("cam", 640, 480, 30.0, None, is_live=True, is_still=False)
    other = {"csv": tmp_path / "c.csv", "json": tmp_path / "c.json"}
    recording = Recording(info, other, atomic=True)
    recording.start(pipeline)
    recording.finish(complete=False, discard=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["w.annotated.mp4", "w.csv", "w.json"]


# ---------------------------------------------------------------------------- with Ray


def test_ray_run_writes_the_files_of_a_local_run(tmp_path, capsys, ray_instance, long_clip, walk_clip, people_clip):
    """Three videos, the longest first so that it finishes last: every file (the combined long
    CSV in input order, the wide CSVs, JSONs and angles CSVs) byte for byte the local run's."""
    inputs = (long_clip, walk_clip, people_clip)
    folders = {"local": tmp_path / "local", "ray": tmp_path / "ray"}
    outputs = {}
    for name, folder in folders.items():
        folder.mkdir()
        extra = ("--ray",) if name == "ray" else ()
        code, stdout, stderr = run_cli(
            capsys, *inputs, *extra,
            "--csv", folder / "all.csv", "--wide-csv", folder / "{stem}.wide.csv", "--json", folder / "{stem}.json",
            "--angles", folder / "{stem}.angles.csv",
        )
        assert code == 0, stderr
        assert "3 input(s), 0 failed; 3 done, 450 frames in" in stdout
        outputs[name] = files_of(folder)
    assert "on Ray (local, 2 CPUs; 2 input(s) at a time" in stderr
    assert "the model was loaded by" in stdout and "retried" not in stdout
    assert len(outputs["local"]) == 10 and outputs["ray"] == outputs["local"]
    sources = [line.split(",", 1)[0] for line in outputs["ray"]["all.csv"].decode().splitlines()[1:]]
    assert list(dict.fromkeys(sources)) == [str(medium) for medium in inputs]
    header = json.loads(outputs["ray"]["walk-640x480.json"])["header"]
    assert not [key for key in header if any(word in key for word in WALL_CLOCK_WORDS)]


def test_a_worker_killed_mid_video_is_retried_and_the_files_equal_a_local_run(tmp_path, capsys, ray_instance, walk_clip, long_clip):
    """kill -9 of the worker processing the long clip, once it has written some rows: Ray runs the
    input again and the files are the local run's, without the dead attempt's rows."""
    slow = ("--threads", "1", "--redetect-interval", "0")  # about 4 s for the long clip
    formats = ("--formats", "csv,wide-csv,json")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert run_cli(capsys, walk_clip, long_clip, "--out-dir", local, *formats, *slow)[0] == 0
    killed = []

    def kill_mid_video() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            partial = temporary_paths(distributed / "long-320x240.csv")
            # .long-320x240.pose-app-<pid of the writing process>-<random>.csv
            if partial and partial[0].exists() and partial[0].stat().st_size > 17 * 30 * 60:
                pid = int(partial[0].name.split(".pose-app-")[1].split("-")[0])
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, partial[0].name))
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_mid_video, daemon=True)
    killer.start()
    code, stdout, stderr = run_cli(capsys, walk_clip, long_clip, "--ray", "--out-dir", distributed, *formats, *slow)
    killer.join(timeout=5)
    assert killed, "the long clip's worker was never seen mid-video"
    assert code == 0, stderr
    assert "2 input(s), 0 failed, 1 retried; 2 done, 360 frames in" in stdout
    assert "long-320x240.mp4: ok, 300 frames" in stdout and "(retried: 2 attempts)" in stdout
    assert files_of(distributed) == files_of(local)  # no dead attempt's rows, no temporary files left
    assert not (distributed / killed[0][1]).exists()


def test_skip_done_with_ray_and_a_corrupt_input_among_good_ones(tmp_path, capsys, ray_instance, walk_clip, people_clip):
    corrupt = tmp_path / "random.mp4"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 30000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(walk_clip.path.read_bytes()[:3000])
    out = tmp_path / "out"
    options = ("--out-dir", out, "--formats", "csv,json", "--end", "1.0", "--every", "2")
    code, stdout, stderr = run_cli(capsys, corrupt, walk_clip, truncated, people_clip, "--ray", *options)
    assert code == 1
    assert "4 input(s), 2 failed; 2 done, 30 frames in" in stdout and "retried" not in stdout
    errors = [line for line in stderr.splitlines() if line.startswith("pose-app: error:")]
    assert len(errors) == 2  # reported once each, never retried
    assert any("random.mp4" in line for line in errors) and any("no decodable frames" in line for line in errors)
    assert sorted(path.name for path in out.iterdir()) == [
        "people-640x480.csv", "people-640x480.json", "walk-640x480.csv", "walk-640x480.json",
    ]
    before = files_of(out)
    # Again with --skip-done: the two finished inputs are skipped, the failed ones tried again.
    code, stdout, stderr = run_cli(capsys, corrupt, walk_clip, truncated, people_clip, "--ray", *options, "--skip-done")
    assert code == 1
    assert "4 input(s), 2 failed, 2 skipped; 0 done, 0 frames in" in stdout
    assert files_of(out) == before


def test_ctrl_c_cancels_and_keeps_every_finished_input(tmp_path, capsys, ray_instance, walk_clip, long_clip, people_clip):
    """Ctrl-C once the first input is done (one input at a time): exit 130, the first input's
    files complete, nothing of the others (not even temporary files), and the summary says which
    inputs were not done."""
    out = tmp_path / "out"
    slow = ("--threads", "1", "--redetect-interval", "0")

    def interrupt_when_walk_is_done() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not json_complete(out / "walk-640x480.json"):
            time.sleep(0.01)
        time.sleep(0.5)  # the long clip is under way
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_walk_is_done, daemon=True).start()
    code, stdout, stderr = run_cli(
        capsys, walk_clip, long_clip, people_clip, "--ray", "--workers", "1", "--out-dir", out, *slow,
    )
    assert code == 130
    assert "interrupted; 2 input(s) not done:" in stderr and "--skip-done to continue" in stderr
    assert "3 input(s), 0 failed, 2 not done; 1 done" in stdout and "NOT DONE (cancelled)" in stdout
    assert sorted(path.name for path in out.iterdir()) == ["walk-640x480.csv", "walk-640x480.json"]
    assert json_complete(out / "walk-640x480.json")


@requires_shared
@pytest.mark.shared
@pytest.mark.slow
def test_shared_videos_with_ray_equal_a_local_run(tmp_path, capsys, ray_instance):
    # Four clips of different kinds (one and several people, a long one, 1080p); the exercise clips
    # added to ../shared later are not needed to compare the two runs.
    videos = [MEDIA / name for name in RAY_COMPARISON_VIDEOS]
    options = ("--formats", "csv,wide-csv,json", "--end", "3")
    assert run_cli(capsys, *videos, "--out-dir", tmp_path / "local", *options)[0] == 0
    code, stdout, _ = run_cli(capsys, *videos, "--ray", "--out-dir", tmp_path / "ray", *options)
    assert code == 0 and "4 input(s), 0 failed" in stdout
    assert files_of(tmp_path / "ray") == files_of(tmp_path / "local")
