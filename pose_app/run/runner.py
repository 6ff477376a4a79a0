"""The per-input runner of `pose-app process`: `process_input` opens one input, runs its frames
through the pipeline into a `Recording` (long/wide CSV, JSON, angles, annotated video) with a
progress bar, and reports how it went (`InputResult`, the summary lines).

It is the one per-input code path: the local run (local.py) calls it for each input in turn, and
`--ray` (ray_batch.py) calls it in Ray workers, one input per task.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pose_app.errors import PoseAppError, one_line
from pose_app.inference.config import PipelineConfig
from pose_app.inference.engine import PoseEngine
from pose_app.inference.pipeline import build_pipeline
from pose_app.io.frame_source import FrameSource
from pose_app.io.output_files import NO_INPUTS, FileIdentity
from pose_app.io.recording import Recording
from pose_app.io.sources import open_source
from pose_app.io.stream import PoseStreams
from pose_app.run.frame_loop import FrameCounts, run_frames
from pose_app.run.outputs import OUTPUT_KINDS
from pose_app.run.plan import RunPlan, input_stem

# Exit status when some inputs failed but the run itself went through (usage errors are 2).
EXIT_SOME_INPUTS_FAILED = 1
EXIT_INTERRUPTED = 130
PROGRESS_INTERVAL_S = 0.25


# ---------------------------------------------------------------------------- progress


def progress_bar(label: str, total: int | None, stream: IO[str] | None = None):
    """A tqdm bar over frames (count, frames/s, ETA when the total is known) on stderr, shown
    only when that stream is a terminal: piped or logged runs get the summary alone."""
    from tqdm import tqdm

    stream = stream or sys.stderr  # looked up now: sys.stderr may be replaced (tests, GUI)
    return tqdm(
        total=total, desc=label, unit="frame", file=stream, disable=not stream.isatty(),
        mininterval=PROGRESS_INTERVAL_S, dynamic_ncols=True,
    )


# ---------------------------------------------------------------------------- processing


@dataclass
class InputResult(FrameCounts):
    """What happened to one input (with the frame loop's counts: frames, poses, coverage,
    last_frame, reached_end)."""

    spec: str
    outputs: dict[str, Path]
    seconds: float = 0.0
    error: str | None = None
    interrupted: bool = False
    skipped: bool = False  # --skip-done: its outputs were already complete
    attempts: int = 0  # how many times a Ray worker started it (more than 1: retried)
    cancelled: bool = False  # a --ray run stopped (Ctrl-C) before it was done
    incomplete: str | None = None  # why the input was read only in part (truncated file, stalled stream)
    images_skipped: int = 0  # pictures of an image list that could not be read
    warnings: list[str] = field(default_factory=list)  # one line each, printed when they happen

    @property
    def done(self) -> bool:
        """Processed to the end in this run (possibly with an error of its own)."""
        return not (self.skipped or self.interrupted or self.cancelled)


def expected_frames(info, start_s: float, end_s: float | None, step: int) -> int | None:
    """How many frames a run over [start_s, end_s) with this step will deliver (for the ETA)."""
    if info.frame_count is None:
        return None
    if info.is_still or not info.fps:
        return math.ceil(info.frame_count / step) if info.is_still else None
    first = min(info.frame_count, math.ceil(start_s * info.fps))
    last = info.frame_count if end_s is None else min(info.frame_count, math.ceil(end_s * info.fps))
    return max(0, math.ceil((last - first) / step))


def _how_it_was_read(source: FrameSource, reached_end: bool, result: InputResult) -> dict:
    """The JSON trailer's counts of how the input was read, with a warning (one line, also in
    result.warnings) when it was read only in part or pictures were skipped."""
    counts: dict = {}
    problem = getattr(source, "reading_problem", lambda: None)() if reached_end else None
    if problem is not None:
        result.incomplete = problem
        counts |= {"frames_announced": source.info.frame_count, "frames_read": getattr(source, "frames_passed", None)}
        _warn(result, f"{problem}; its outputs hold what was read and say \"complete\": false")
    skipped = getattr(source, "skipped", [])
    if skipped:
        result.images_skipped = len(skipped)
        counts |= {"images_skipped": len(skipped), "images_unreadable": [str(path) for path, _ in skipped]}
        first = skipped[0][1]
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        _warn(result, f"{len(skipped)} unreadable image(s) skipped: {first}{more}")
    return counts


def _warn(result: InputResult, message: str) -> None:
    result.warnings.append(message)
    print(f"pose-app: warning: {message}", file=sys.stderr)


def process_input(
    spec: str,
    outputs: dict[str, Path | IO[str]],
    config: PipelineConfig,
    engine: PoseEngine,
    fill_gaps: int,
    result: InputResult,
    *,
    progress: Callable[[str, int | None], object] = progress_bar,
    atomic: bool = False,
    height_m: float | None = None,
    stream: PoseStreams | None = None,
    paced: bool = False,
    inputs: frozenset[FileIdentity] = NO_INPUTS,
) -> None:
    """Run one input into its outputs, filling `result`: the one per-input code path of local
    and Ray runs. PoseAppError/OSError -> result.error (the files hold the frames done, the JSON
    says "complete": false). KeyboardInterrupt propagates after the outputs were closed: kept,
    JSON marked incomplete, or with `atomic` deleted (a cancelled Ray attempt). With
    --fill-gaps, a video's finished CSV/JSON files are then rewritten with short dropouts
    filled (recording.Recording). `progress(label, expected_frames)`: a context manager with
    `update(frames)` (a tqdm bar by default). `atomic`: the files appear under their own names
    only when finished (recording.Recording), for Ray attempts that may die and be retried.
    `height_m`: the person's height, for a TRC output in metres. `stream`: every frame's poses are also handed to it (io/stream.py), a file's frames then
    released at their media time when `paced` (without a stream, frames run as fast as they can).
    `inputs`: the identities of the run's input files, which no output may be. Any other
    exception fails this input alone (result.error, one line), so that a batch goes on."""
    start = time.monotonic()
    try:
        with open_source(spec, frame_step=config.frame_step) as source:
            info = source.info
            pipeline = build_pipeline(config, is_still=info.is_still, engine=engine)
            expected = expected_frames(info, config.start_s, config.end_s, config.frame_step)
            with progress(input_stem(spec), expected) as bar:
                recording = Recording(
                    info, outputs, kinds=OUTPUT_KINDS, fill_gaps=fill_gaps, atomic=atomic, height_m=height_m,
                    inputs=inputs,
                )
                try:
                    recording.start(pipeline)
                    sinks = [lambda frame, poses, _: recording.write(frame, poses)]
                    if stream is not None:
                        sinks.append(stream.send)
                    sinks.append(lambda *_: bar.update(1))
                    run_frames(
                        source, pipeline, sinks, start_s=config.start_s, end_s=config.end_s,
                        paced=stream is not None and paced, counts=result,
                    )
                except KeyboardInterrupt:
                    recording.finish(complete=False, discard=atomic)
                    raise
                except BaseException:
                    recording.finish(complete=False)
                    raise
                counts = _how_it_was_read(source, result.reached_end, result)
                recording.finish(complete=result.incomplete is None, counts=counts)
    except PoseAppError as error:
        result.error = str(error)
    except OSError as error:
        result.error = f"writing outputs failed: {one_line(error)}"
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    except Exception as error:  # noqa: BLE001 - a bug or a library's surprise: this input fails, the batch goes on
        result.error = f"unexpected error ({type(error).__name__}): {one_line(error)}"
    finally:
        result.seconds = time.monotonic() - start


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while processing, so `kill` also leaves finished files."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _describe(result: InputResult) -> str:
    outputs = ", ".join(str(path) for path in result.outputs.values())
    retried = f" (retried: {result.attempts} attempts)" if result.attempts > 1 else ""
    if result.skipped:
        return f"  {result.spec}: skipped, already done -> {outputs}"
    if result.cancelled:
        return f"  {result.spec}: NOT DONE (cancelled)"
    if result.error:
        return f"  {result.spec}: FAILED: {result.error}{retried}"
    rate = result.frames / result.seconds if result.seconds > 0 else 0.0
    state = "INTERRUPTED after" if result.interrupted else "INCOMPLETE (read in part)," if result.incomplete else "ok,"
    skipped = f", {result.images_skipped} unreadable image(s) skipped" if result.images_skipped else ""
    line = (f"  {result.spec}: {state} {result.frames} frames{skipped}, {result.poses} poses, {rate:.1f} frames/s{retried}"
            f" -> {outputs}")
    warning = result.coverage.warning()
    return line if warning is None else f"{line}\n    warning: {warning} (try --preset accurate; docs/accuracy-and-speed.md)"


def print_summary(results: list[InputResult], wall_s: float | None = None) -> None:
    """The run's totals (inputs done, failed, skipped, retried, not done; frames and wall time),
    then one line per input."""
    failed = sum(result.error is not None for result in results)
    counts = [f"{len(results)} input(s), {failed} failed"]
    for label, count in (
        ("skipped", sum(result.skipped for result in results)),
        ("retried", sum(result.attempts > 1 for result in results)),
        ("not done", sum(result.cancelled or result.interrupted for result in results)),
    ):
        if count:
            counts.append(f"{count} {label}")
    line = "pose-app process: " + ", ".join(counts)
    if wall_s is not None:
        frames = sum(result.frames for result in results)
        done = sum(result.done and result.error is None for result in results)
        rate = frames / wall_s if wall_s > 0 else 0.0
        line += f"; {done} done, {frames} frames in {wall_s:.1f} s ({rate:.1f} frames/s)"
    print(line)
    for result in results:
        print(_describe(result))


def report_error(result: InputResult) -> None:
    """The one error line of an input that failed (source errors already name the input;
    others, e.g. an output's, get it prefixed)."""
    where = "" if result.spec in result.error else f"{result.spec}: "
    print(f"pose-app: error: {where}{result.error}", file=sys.stderr)


def continue_hint(run_plan: RunPlan, unfinished: str = "the unfinished inputs") -> str:
    """How to continue an interrupted run, when --skip-done can: what it really does. It skips
    the finished inputs; an interrupted one starts again from its first frame, because its
    tracks and smoothing filters, which the next frame needs, were not written down (its files
    are replaced, so no frame is written twice)."""
    if run_plan.shared_paths or any("json" not in plan for plan in run_plan.plans):
        return ""
    return (f"; run the same command with --skip-done to continue: the finished inputs are skipped, "
            f"{unfinished} processed again from the first frame")


