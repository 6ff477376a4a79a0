"""Every file a recording writes is byte-identical to what the release before the output sinks
(commit c8a7e20, where `Recording` wrote each kind in its own branch) wrote from the same poses.

The poses are those of the default pipeline on ../shared's two-person squat clip, stored once in
tests/data/output-parity/poses.npz (make_poses.py there): stored rather than recomputed, so the
expected bytes do not depend on the machine's inference. The expected files are kept as SHA-256
digests (digests.json), made by `recorded_digests` at c8a7e20; the JSON's `pose_app_version` is
the one field blanked before hashing, so that a version bump is not a difference. The annotated
video is left out: its bytes are the codec's."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pose_app.core.frames import Frame, SourceInfo
from pose_app.core.poses import FramePoses
from pose_app.inference.config import PipelineConfig
from pose_app.io.recording import Recording
from pose_app.run.outputs import OUTPUT_KINDS

DATA = Path(__file__).parent / "data" / "output-parity"
# Every kind but the video, each under its --out-dir name (the TRC and MOT one file per person).
NAMES = {"csv": "squat.csv", "wide_csv": "squat.wide.csv", "json": "squat.json", "angles": "squat.angles.csv",
         "reps": "squat.reps.csv", "trc": "squat.trc", "mot": "squat.mot"}
VERSION = re.compile(rb'"pose_app_version": "[^"]*"')
# How the recordings are made: plain, and with gaps filled into atomic (renamed) files.
CASES = {"plain": {}, "filled": {"fill_gaps": 5, "atomic": True}}


class StoredPipeline:
    """What a recording asks of the pipeline that made its poses: the JSON header and the frame step."""

    config = PipelineConfig(frame_step=2)

    def header(self) -> dict:
        return {"model": "posenet-075-int8", "provider": "cpu", "preset": "balanced", "frame_step": 2,
                "smoothed": True, "tracking": True}


def stored_frames():
    """(source info, [(frame, poses)]) of poses.npz."""
    data = np.load(DATA / "poses.npz")
    info = SourceInfo(str(data["source"]), int(data["width"]), int(data["height"]), float(data["fps"]),
                      int(data["frame_count"]), is_live=False, is_still=False)
    image = np.zeros((1, 1, 3), np.uint8)  # only the (left out) video would draw on it
    frames, start = [], 0
    for index, time_s, count in zip(data["index"].tolist(), data["time_s"].tolist(), data["count"].tolist()):
        rows = slice(start, start + count)
        start += count
        poses = FramePoses(data["keypoints"][rows], data["scores"][rows], data["ids"][rows], None, {}, None)
        frames.append((Frame(image, index, time_s, info.name), poses))
    return info, frames


def recorded_digests(folder: Path, **options) -> dict[str, str]:
    """Record the stored poses into every kind but the video in `folder`; file name -> SHA-256."""
    info, frames = stored_frames()
    outputs = {kind: folder / name for kind, name in NAMES.items()}
    with Recording(info, outputs, kinds=OUTPUT_KINDS, height_m=1.75, **options) as recording:
        recording.start(StoredPipeline())
        for frame, poses in frames:
            recording.write(frame, poses)
    return {path.name: hashlib.sha256(VERSION.sub(b'"pose_app_version": ""', path.read_bytes())).hexdigest()
            for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_recording_writes_the_same_bytes_as_before_the_output_sinks(tmp_path, case):
    expected = json.loads((DATA / "digests.json").read_text())[case]
    digests = recorded_digests(tmp_path, **CASES[case])
    # Every file is there: two people, so one TRC and one MOT each.
    assert sorted(digests) == sorted(expected)
    assert digests == expected
