"""The one frame loop: frames of a source → `PosePipeline.process` → sinks.

`process` (runner.py), `bench`, `compare` (compare_run.py) and `eval` (evaluate_run.py) all run
their frames through `run_frames`; what each does with a frame's poses is a sink, a callable
`sink(frame, poses, captured_at)`: the recording, the streams, a progress bar, a figure's
accumulator. `process_frame` is the loop's step for one frame, for a caller that brings its own
frames (the desktop app's inference thread takes them from its mailbox).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from pose_app.core.coverage import PersonCoverage
from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.inference.pipeline import PosePipeline
from pose_app.io.frame_source import FrameSource
from pose_app.io.pacing import MediaClock

# What a frame's poses go to: (the frame, its poses, time.perf_counter() when the frame was ready
# for the pipeline; streams measure capture-to-send latency from it). The return value is ignored.
FrameSink = Callable[[Frame, FramePoses, float], object]


@dataclass(kw_only=True)  # keyword-only: InputResult (runner.py) adds its own fields before these
class FrameCounts:
    """What the loop counts while it runs (kept up to date frame by frame, so an interrupted run
    still says how far it got)."""

    frames: int = 0
    poses: int = 0
    coverage: PersonCoverage = field(default_factory=PersonCoverage)  # was the person lost?
    last_frame: int | None = None  # the source's index of the last frame processed
    reached_end: bool = False  # the source ran out of frames (not stopped by the range or a limit)

    def add(self, frame: Frame, poses: FramePoses) -> None:
        self.frames += 1
        self.poses += len(poses.scores)
        self.coverage.add(poses.keypoints)
        self.last_frame = frame.index


def frames_in_range(
    source: FrameSource, start_s: float = 0.0, end_s: float | None = None, counts: FrameCounts | None = None
) -> Iterator[Frame]:
    """Frames of source with start_s <= time_s < end_s (still images: all of them);
    `counts.reached_end` becomes True when the source itself ran out of frames."""
    info = source.info
    if info.is_still:
        yield from iter(source.read, None)
    else:
        if start_s > 0 and info.fps and not info.is_live:
            source.seek(int(start_s * info.fps))
        for frame in iter(source.read, None):
            if frame.time_s < start_s:
                continue
            if end_s is not None and frame.time_s >= end_s:
                return
            yield frame
    if counts is not None:
        counts.reached_end = True


def process_frame(
    pipeline: PosePipeline,
    frame: Frame,
    sinks: Sequence[FrameSink] = (),
    counts: FrameCounts | None = None,
    captured_at: float | None = None,
    *,
    features: Sequence[str] = (),
    full_frame: bool = False,
) -> FramePoses:
    """One frame: its poses (`pipeline.process`, with `features` and `full_frame` passed on)
    handed to each sink in order, then counted. `captured_at`: when the frame was ready
    (perf_counter; default now, just before the pipeline runs)."""
    if captured_at is None:
        captured_at = time.perf_counter()
    poses = pipeline.process(frame, features=features, full_frame=full_frame)
    for sink in sinks:
        sink(frame, poses, captured_at)
    if counts is not None:  # after the sinks: a frame a sink failed on was not done
        counts.add(frame, poses)
    return poses


def run_frames(
    source: FrameSource,
    pipeline: PosePipeline,
    sinks: Iterable[FrameSink] = (),
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    paced: bool = False,
    max_frames: int | None = None,
    independent: bool = False,
    counts: FrameCounts | None = None,
) -> FrameCounts:
    """Every frame of `source` in [start_s, end_s) through `pipeline` into `sinks`, counted in
    `counts` (a new FrameCounts by default), which it returns.

    `paced`: a file's frames are released at their media time (MediaClock; live sources and
    still images run as they come). `max_frames`: stop after that many, without reading
    another. `independent`: every frame is a picture of its own (`pipeline.reset()` before each:
    no track carries over)."""
    counts = FrameCounts() if counts is None else counts
    sinks = tuple(sinks)
    clock = MediaClock() if paced and not (source.info.is_live or source.info.is_still) else None
    for done, frame in enumerate(frames_in_range(source, start_s, end_s, counts), start=1):
        if clock is not None:
            time.sleep(clock.delay(frame.time_s))
        captured_at = time.perf_counter()
        if independent:
            pipeline.reset()
        process_frame(pipeline, frame, sinks, counts, captured_at)
        if max_frames is not None and done >= max_frames:
            break  # before reading another frame: a limited run reads no more than it processes
    return counts
