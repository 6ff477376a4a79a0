"""`pose-app bench` on a short generated video: a table, sane figures, comparable JSON."""

import json
import os
import resource

import numpy as np
import onnxruntime
import pytest

from pose_app.cli.main import main
from pose_app.io.sources import open_source
from pose_app.run.bench import STAGES, write_synthetic_video


def test_synthetic_video_has_the_frames_asked_for_and_they_move(tmp_path):
    path = tmp_path / "clip.avi"
    write_synthetic_video(path, frames=5, size=(160, 120))
    with open_source(str(path)) as source:
        images = []
        while (frame := source.read()) is not None:
            images.append(frame.image)
    assert len(images) == 5 and images[0].shape == (120, 160, 3)
    assert np.abs(images[0].astype(int) - images[1].astype(int)).mean() > 1.0


def test_bench_prints_a_table_and_saves_consistent_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--max-frames", "4", "--presets", "fast,balanced", "--provider", "cpu", "--json", str(out)]
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    assert main(argv) == 0
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    printed = capsys.readouterr().out
    table_rows = [line.split() for line in printed.splitlines() if line.lstrip().startswith(("fast", "balanced"))]
    assert [row[0] for row in table_rows] == ["fast", "balanced"]
    assert all(row[1] == "posenet-075-int8" and row[5] == "cpu" and row[6] == "4" for row in table_rows)

    saved = json.loads(out.read_text())
    assert saved["machine"]["cpu_count"] == os.cpu_count()
    assert saved["machine"]["onnxruntime"] == onnxruntime.__version__
    results = saved["results"]
    # the snapped full-frame sizes the presets ran at
    assert [(r["preset"], r["resolution"]) for r in results] == [("fast", 257), ("balanced", 513)]
    for result in results:
        stages = result["stages"]
        assert set(stages) == set(STAGES) and result["frames"] == 4
        assert all(0 <= s["p50_ms"] <= s["p90_ms"] for s in stages.values())
        assert stages["inference"]["p50_ms"] > 0 and stages["total"]["p50_ms"] > 0
        # the total covers the stages inside it
        inner = sum(stages[s]["mean_ms"] for s in STAGES if s != "total")
        assert stages["total"]["mean_ms"] >= inner * 0.999
        # frames/s is frames over the summed per-frame totals
        assert result["fps"] == pytest.approx(1000.0 / stages["total"]["mean_ms"], rel=1e-6)
        # bench runs in this process: its peak RSS is this process's peak, read during the run
        assert peak_before - 1 <= result["peak_rss_mib"] <= peak_after + 1
        # moving shapes, nobody to follow: every frame looks again with the full-frame pass
        assert result["mode"] == "tracked-crops" and result["full_pass_share"] == 1.0


def test_bench_on_a_person_times_the_crops_between_full_frame_passes(walk_clip, capsys):
    assert main(["bench", "--source", str(walk_clip), "--max-frames", "20", "--presets", "balanced",
                 "--redetect-interval", "0.166", "--provider", "cpu"]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("balanced"))
    full_share, crops_p50 = row[4], float(row[7 + STAGES.index("crops")].split("/")[0])
    assert full_share == "20%" and crops_p50 > 0


def test_bench_reports_a_missing_video(tmp_path, capsys):
    assert main(["bench", "--video", str(tmp_path / "none.mp4")]) == 2
    assert "video not found" in capsys.readouterr().err
