"""The one frame loop (run/frame_loop.py) on a scripted source and pipeline: which frames it
reads, what the sinks get and in which order, what it counts."""

from __future__ import annotations

import numpy as np
import pytest

from pose_app.core.frames import Frame, SourceInfo
from pose_app.core.poses import FramePoses
from pose_app.run.frame_loop import FrameCounts, process_frame, run_frames

FPS = 10.0


class ScriptedSource:
    """`count` frames at FPS (or still pictures), counting reads and seeks."""

    def __init__(self, count: int, is_still: bool = False, is_live: bool = False):
        self.info = SourceInfo("scripted", 8, 6, None if is_still else FPS, count, is_live=is_live, is_still=is_still)
        self.count, self.position, self.reads, self.seeks = count, 0, 0, []

    def read(self) -> Frame | None:
        self.reads += 1
        if self.position >= self.count:
            return None
        index, self.position = self.position, self.position + 1
        return Frame(np.zeros((6, 8, 3), np.uint8), index, 0.0 if self.info.is_still else index / FPS, "scripted")

    def seek(self, frame_index: int) -> None:
        self.seeks.append(frame_index)
        self.position = frame_index


class ScriptedPipeline:
    """Finds `people[i]` confident standing poses in frame i (one when not scripted); logs calls."""

    def __init__(self, people: dict[int, int] | None = None):
        self.people = people or {}
        self.calls: list[tuple] = []

    def process(self, frame: Frame, features=(), full_frame: bool = False) -> FramePoses:
        self.calls.append(("process", frame.index, tuple(features), full_frame))
        count = self.people.get(frame.index, 1)
        keypoints = np.zeros((count, 17, 3), np.float32)
        keypoints[:, :, 1] = np.linspace(0, 100, 17)
        keypoints[:, :, 2] = 0.9
        return FramePoses(keypoints, np.full(count, 0.9), np.arange(count), None, {}, None)

    def reset(self) -> None:
        self.calls.append(("reset",))


def test_the_loop_runs_the_time_range_into_every_sink_in_order_and_counts():
    source, pipeline, seen = ScriptedSource(20), ScriptedPipeline({7: 2, 8: 0}), []
    sinks = [lambda frame, poses, at: seen.append(("a", frame.index, len(poses.scores), at)),
             lambda frame, poses, at: seen.append(("b", frame.index, len(poses.scores), at))]
    counts = run_frames(source, pipeline, sinks, start_s=0.5, end_s=1.0)
    assert source.seeks == [5]
    assert [entry[:3] for entry in seen] == [(name, index, {7: 2, 8: 0}.get(index, 1))
                                             for index in range(5, 10) for name in "ab"]
    assert seen[0][3] == seen[1][3]  # both sinks get the frame's one captured_at
    assert (counts.frames, counts.poses, counts.last_frame) == (5, 5, 9)
    assert counts.coverage.frames == 5
    assert not counts.reached_end  # stopped by the end of the range, not by the source


def test_max_frames_stops_without_reading_another_frame():
    source, pipeline = ScriptedSource(20), ScriptedPipeline()
    counts = run_frames(source, pipeline, max_frames=3)
    assert counts.frames == 3 and source.reads == 3
    assert not counts.reached_end


def test_the_end_of_the_source_is_reached_and_counted_into_the_callers_counts():
    source, pipeline = ScriptedSource(4, is_still=True), ScriptedPipeline()
    mine = FrameCounts()
    assert run_frames(source, pipeline, start_s=5.0, counts=mine) is mine
    assert mine.frames == 4 and mine.reached_end  # still pictures ignore the time range
    assert source.seeks == []


def test_independent_frames_reset_the_pipeline_before_each():
    pipeline = ScriptedPipeline()
    run_frames(ScriptedSource(2, is_still=True), pipeline, independent=True)
    assert [call[0] for call in pipeline.calls] == ["reset", "process", "reset", "process"]


def test_a_failing_sink_stops_the_loop_and_its_frame_is_not_counted():
    counts = FrameCounts()

    def failing(frame, poses, at):
        if frame.index == 2:
            raise OSError("disk full")

    with pytest.raises(OSError):
        run_frames(ScriptedSource(5), ScriptedPipeline(), [failing], counts=counts)
    assert (counts.frames, counts.last_frame) == (2, 1)


def test_paced_files_wait_for_their_media_time_but_live_sources_do_not(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("pose_app.run.frame_loop.time.sleep", slept.append)
    run_frames(ScriptedSource(3), ScriptedPipeline(), paced=True)
    assert len(slept) == 3 and slept[0] == 0.0 and max(slept) > 0.0
    slept.clear()
    run_frames(ScriptedSource(3, is_live=True), ScriptedPipeline(), paced=True)
    assert slept == []


def test_one_frame_step_passes_the_callers_options_and_captured_time():
    pipeline, seen = ScriptedPipeline(), []
    poses = process_frame(pipeline, ScriptedSource(1).read(), [lambda f, p, at: seen.append(at)], captured_at=12.5,
                          features=("block_5",), full_frame=True)
    assert pipeline.calls == [("process", 0, ("block_5",), True)]
    assert seen == [12.5] and len(poses.scores) == 1
