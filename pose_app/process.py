"""`pose-app process`: detect poses in videos, images, folders, globs or streams and write
long/wide CSV, JSON and annotated video, with a progress bar and a per-input summary.

`process_input` is the one per-input code path: the local run calls it for each input in turn,
and `--ray` (batch.py) calls it in Ray workers, one input per task. `--skip-done` skips inputs
whose outputs are finished (`is_done`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pose_app.errors import PoseAppError, one_line

if TYPE_CHECKING:
    from pose_app.config import PipelineConfig
    from pose_app.engine import PoseEngine
    from pose_app.sources import FrameSource

OUTPUT_KINDS = ("csv", "wide_csv", "json", "video", "angles")
# File names under --out-dir. The video gets its own suffix so it can never be its input.
OUT_DIR_NAMES = {
    "csv": "{stem}.csv",
    "wide_csv": "{stem}.wide.csv",
    "json": "{stem}.json",
    "video": "{stem}.annotated.mp4",
    "angles": "{stem}.angles.csv",
}
STILL_VIDEO_NAME = "{stem}.annotated.png"
DEFAULT_FORMATS = ("csv", "json")
STEM_FIELD = "{stem}"
# Exit status when some inputs failed but the run itself went through (usage errors are 2).
EXIT_SOME_INPUTS_FAILED = 1
EXIT_INTERRUPTED = 130
PROGRESS_INTERVAL_S = 0.25
# The end of a JSON output, read to tell whether it is complete (--skip-done).
JSON_TAIL_BYTES = 4096
# `--ray ADDRESS`: a value that looks like none of these is an input that followed --ray.
RAY_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.-]+:\d+)$")


def _formats(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().replace("-", "_") for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in OUTPUT_KINDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(unknown) or text!r}; choose from csv, wide-csv, json, video, angles"
        )
    return names


class _RayAddress(argparse.Action):
    """`--ray [ADDRESS]`: no value -> "local". A value that is not an address (auto, ray://HOST:PORT,
    HOST:PORT) is an input that followed --ray (`--ray a.mp4 b.mp4`): it is kept as one."""

    def __call__(self, parser, namespace, value, option_string=None):
        if value is None or (RAY_ADDRESS.match(value) and not Path(value).exists()):
            namespace.ray = value or "local"
            return
        namespace.ray = "local"
        if getattr(namespace, "inputs", None):  # the inputs came before --ray
            namespace.inputs.append(value)
        else:
            namespace.inputs_before = [*getattr(namespace, "inputs_before", []), value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pose_app.cli import add_pipeline_arguments, non_negative_float, non_negative_int, positive_float, positive_int
    from pose_app.config import PipelineConfig

    parser.add_argument(
        # "*", checked in run(): an input right after a bare --ray reaches --ray's action first.
        "inputs", nargs="*", metavar="INPUT",
        help="video file, image file, folder of images, glob (quoted), or stream URL (rtsp://, http://...)",
    )
    out = parser.add_argument_group(
        "outputs",
        "With several inputs: give --out-dir, or put {stem} (the input's name) in a path; a "
        "--csv/--wide-csv path without {stem} collects every input in one file (see its source column).",
    )
    out.add_argument("--csv", metavar="PATH", help="long CSV: one row per keypoint")
    out.add_argument("--wide-csv", metavar="PATH", help="wide CSV: one row per person per frame")
    out.add_argument("--json", metavar="PATH", help="JSON: header + COCO-results keypoint records")
    out.add_argument("--video", metavar="PATH", help="annotated video with skeletons (.mp4, .avi, .mkv; .png for images)")
    out.add_argument(
        "--angles", metavar="PATH",
        help="joint and segment angles CSV, one row per angle (as `pose-app angles` on the long CSV gives them)",
    )
    out.add_argument(
        "--out-dir", metavar="DIR",
        help="write <stem>.csv, <stem>.wide.csv, <stem>.json, <stem>.annotated.mp4 per input here (created if missing)",
    )
    out.add_argument(
        "--formats", type=_formats, default=DEFAULT_FORMATS, metavar="LIST",
        help="with --out-dir: which of csv,wide-csv,json,video,angles to write (default: csv,json)",
    )
    defaults = PipelineConfig()
    frames = parser.add_argument_group("frames")
    frames.add_argument("--every", dest="frame_step", type=positive_int, metavar="N", help="process every N-th frame (default 1)")
    frames.add_argument("--start", dest="start_s", type=non_negative_float, metavar="SECONDS", help="start at this video time (default 0)")
    frames.add_argument("--end", dest="end_s", type=non_negative_float, metavar="SECONDS", help="stop before this video time (default: the end)")
    frames.add_argument(
        "--mirrored-input", action="store_const", const=True,
        help="the input is mirrored (selfie view): swap left/right labels so they stay anatomical",
    )
    tracking = parser.add_argument_group("tracking and smoothing")
    tracking.add_argument(
        "--no-track", dest="track", action="store_const", const=False,
        help="no persistent ids: person_id = detection index (implies --no-smooth, no tracked crops)",
    )
    tracking.add_argument(
        "--no-smooth", dest="smooth", action="store_const", const=False,
        help="no One Euro smoothing (it is on for videos, off for still images)",
    )
    tracking.add_argument(
        "--smooth-min-cutoff", type=positive_float, metavar="HZ",
        help=f"One Euro min cutoff: lower = smoother when still (default {defaults.smooth_min_cutoff})",
    )
    tracking.add_argument(
        "--smooth-beta", type=non_negative_float, metavar="B",
        help=f"One Euro beta: higher = less lag when moving fast (default {defaults.smooth_beta})",
    )
    tracking.add_argument(
        "--fill-gaps", type=non_negative_int, default=0, metavar="N",
        help="after each video, interpolate x, y of keypoints that drop below score 0.3 for at most "
        "N processed frames between confident ones, in the CSV/JSON files (default 0: off)",
    )
    batch = parser.add_argument_group(
        "large batches",
        "Inputs and outputs must be paths every Ray node can read and write (a shared filesystem); "
        "see docs/large-batches.md.",
    )
    batch.add_argument(
        "--ray", nargs="?", action=_RayAddress, metavar="ADDRESS",
        help="process the inputs in parallel with Ray (pip install 'pose-app[ray]'): with no ADDRESS "
        "on a local Ray instance using this machine's cores; 'auto' or ray://HOST:PORT joins a cluster",
    )
    batch.add_argument(
        "--workers", type=positive_int, metavar="N",
        help="with --ray: at most N inputs at a time (default: one per CPU)",
    )
    batch.add_argument(
        "--skip-done", action="store_true",
        help="skip inputs whose outputs exist and are complete (their JSON says \"complete\": true; "
        "needs a JSON per input), so an interrupted run continues where it stopped",
    )
    add_pipeline_arguments(parser)


# ---------------------------------------------------------------------------- output planning


def input_stem(spec: str) -> str:
    """A file-name-safe short name for an input: file stem, folder name, URL's last part."""
    from pose_app.sources import is_camera_index, is_url

    if is_camera_index(spec):
        return f"camera{spec}"
    if is_url(spec):
        text = spec.split("://", 1)[1].split("?", 1)[0].rstrip("/")
        text = text.rsplit("/", 1)[-1] or text
    else:
        path = Path(spec)
        text = path.name if path.is_dir() else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "input"


def unique_stems(specs: list[str]) -> list[str]:
    """Stems with repeats numbered (clip, clip-2, ...) so no two inputs share output files."""
    stems: list[str] = []
    for spec in specs:
        stem = base = input_stem(spec)
        number = 1
        while stem in stems:
            number += 1
            stem = f"{base}-{number}"
        stems.append(stem)
    return stems


def _is_single_image(spec: str) -> bool:
    from pose_app.sources import IMAGE_SUFFIXES

    return Path(spec).suffix.lower() in IMAGE_SUFFIXES


def _requested_templates(args: argparse.Namespace) -> dict[str, str]:
    """Output kind -> path template ({stem} allowed), from --out-dir or the path options."""
    explicit = {kind: getattr(args, kind) for kind in OUTPUT_KINDS if getattr(args, kind)}
    if args.out_dir is None:
        if not explicit:
            raise PoseAppError("nothing to write: give --csv, --wide-csv, --json, --video, --angles or --out-dir")
        return explicit
    if explicit:
        raise PoseAppError("use either --out-dir or the path options (--csv, --json, ...), not both")
    out_dir = Path(args.out_dir).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PoseAppError(f"cannot create output folder {out_dir}: {error.strerror}") from None
    return {kind: str(out_dir / OUT_DIR_NAMES[kind]) for kind in args.formats}


def plan_outputs(specs: list[str], args: argparse.Namespace) -> list[dict[str, Path]]:
    """Per input, output kind -> path. Refuses (PoseAppError) any plan in which an output would
    overwrite an input or another output; a CSV path shared by several inputs is one combined
    file by design."""
    from pose_app.formats import check_writable
    from pose_app.video_writer import check_video_suffix

    templates = _requested_templates(args)
    several = len(specs) > 1
    for kind in ("json", "video", "angles"):
        if several and kind in templates and STEM_FIELD not in templates[kind]:
            option = "--" + kind.replace("_", "-")
            raise PoseAppError(f"{option} with several inputs needs {STEM_FIELD} in its path, or use --out-dir")
    plans = []
    for spec, stem in zip(specs, unique_stems(specs)):
        plan = {}
        for kind, template in templates.items():
            if kind == "video" and args.out_dir is not None and _is_single_image(spec):
                template = str(Path(template).with_name(STILL_VIDEO_NAME))
            plan[kind] = Path(template.replace(STEM_FIELD, stem)).expanduser()
        plans.append(plan)
    _check_no_overwrites(specs, plans)
    for path in {path for plan in plans for path in plan.values()}:
        check_writable(path)
    for plan in plans:
        if "video" in plan:
            check_video_suffix(plan["video"])
    return plans


def shared_csv_paths(plans: list[dict[str, Path]]) -> set[Path]:
    """CSV paths that several inputs write into (one combined file)."""
    counts = Counter(path for plan in plans for kind, path in plan.items() if kind in ("csv", "wide_csv"))
    return {path for path, count in counts.items() if count > 1}


def _check_no_overwrites(specs: list[str], plans: list[dict[str, Path]]) -> None:
    inputs = {Path(spec).resolve() for spec in specs if Path(spec).exists()}
    owner: dict[Path, tuple[int, str]] = {}
    for number, plan in enumerate(plans):
        for kind, path in plan.items():
            resolved = path.resolve()
            if resolved in inputs:
                raise PoseAppError(f"output {path} is one of the inputs; refusing to overwrite it")
            previous = owner.setdefault(resolved, (number, kind))
            combined_csv = previous[1] == kind and kind in ("csv", "wide_csv")
            if previous != (number, kind) and not combined_csv:
                raise PoseAppError(f"two outputs would both be written to {path}")


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
class InputResult:
    """What happened to one input."""

    spec: str
    outputs: dict[str, Path]
    frames: int = 0
    poses: int = 0
    last_frame: int | None = None
    seconds: float = 0.0
    error: str | None = None
    interrupted: bool = False
    skipped: bool = False  # --skip-done: its outputs were already complete
    attempts: int = 0  # how many times a Ray worker started it (more than 1: retried)
    cancelled: bool = False  # a --ray run stopped (Ctrl-C) before it was done

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


def _frames_in_range(source: FrameSource, start_s: float, end_s: float | None) -> Iterator:
    """Frames of source with start_s <= time_s < end_s (still images: all of them)."""
    info = source.info
    if info.is_still:
        yield from iter(source.read, None)
        return
    if start_s > 0 and info.fps and not info.is_live:
        source.seek(int(start_s * info.fps))
    for frame in iter(source.read, None):
        if frame.time_s < start_s:
            continue
        if end_s is not None and frame.time_s >= end_s:
            return
        yield frame


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
) -> None:
    """Run one input into its outputs, filling `result`: the one per-input code path of local
    and Ray runs. PoseAppError/OSError -> result.error (the files hold the frames done, the JSON
    says "complete": false). KeyboardInterrupt propagates after the outputs were closed: kept,
    JSON marked incomplete, or with `atomic` deleted (a cancelled Ray attempt). With
    --fill-gaps, a video's finished CSV/JSON files are then rewritten with short dropouts
    filled (recorder.Recording). `progress(label, expected_frames)`: a context manager with
    `update(frames)` (a tqdm bar by default). `atomic`: the files appear under their own names
    only when finished (recorder.Recording), for Ray attempts that may die and be retried."""
    from pose_app.recorder import Recording
    from pose_app.sources import open_source

    start = time.monotonic()
    try:
        with open_source(spec, frame_step=config.frame_step) as source:
            info = source.info
            pipeline = config.build(is_still=info.is_still, engine=engine)
            expected = expected_frames(info, config.start_s, config.end_s, config.frame_step)
            with progress(input_stem(spec), expected) as bar:
                recording = Recording(info, outputs, fill_gaps=fill_gaps, atomic=atomic)
                try:
                    recording.start(pipeline)
                    for frame in _frames_in_range(source, config.start_s, config.end_s):
                        poses = pipeline.process(frame)
                        recording.write(frame, poses)
                        result.frames += 1
                        result.poses += len(poses.scores)
                        result.last_frame = frame.index
                        bar.update(1)
                except KeyboardInterrupt:
                    recording.finish(complete=False, discard=atomic)
                    raise
                except BaseException:
                    recording.finish(complete=False)
                    raise
                recording.finish()
    except PoseAppError as error:
        result.error = str(error)
    except OSError as error:
        result.error = f"writing outputs failed: {one_line(error)}"
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        result.seconds = time.monotonic() - start


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
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
    state = "INTERRUPTED after" if result.interrupted else "ok,"
    return f"  {result.spec}: {state} {result.frames} frames, {result.poses} poses, {rate:.1f} frames/s{retried} -> {outputs}"


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


# ---------------------------------------------------------------------------- --skip-done


def json_complete(path: Path) -> bool:
    """Whether a JSON output exists and its trailer says "complete": true (only its end is read)."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - JSON_TAIL_BYTES))
            tail = file.read().decode("utf-8", errors="replace")
    except OSError:
        return False
    _, separator, trailer = tail.rpartition("],\n")
    try:
        return bool(separator) and json.loads("{" + trailer).get("complete") is True
    except ValueError:
        return False


def is_done(plan: dict[str, Path]) -> bool:
    """Whether an input's outputs are finished: its JSON is complete (a local run writes its
    trailer after every other output is closed; a Ray attempt renames the JSON last) and every
    other output exists (an image list's pictures are not looked for)."""
    from pose_app.video_writer import IMAGE_OUTPUT_SUFFIXES

    if "json" not in plan or not json_complete(plan["json"]):
        return False
    return all(
        path.exists() for kind, path in plan.items()
        if not (kind == "video" and path.suffix.lower() in IMAGE_OUTPUT_SUFFIXES)
    )


def _check_options(config: PipelineConfig, args: argparse.Namespace) -> None:
    """Refuse option combinations that make no sense (PoseAppError, before any file is opened)."""
    if config.end_s is not None and config.end_s <= config.start_s:
        raise PoseAppError(f"--end ({config.end_s:g} s) must be after --start ({config.start_s:g} s)")
    if args.fill_gaps and not config.track:
        raise PoseAppError("--fill-gaps interpolates along a person's track: it cannot be used with --no-track")
    if getattr(args, "workers", None) is not None and getattr(args, "ray", None) is None:
        raise PoseAppError("--workers sets how many inputs Ray runs at a time: use it with --ray")


@dataclass
class RunPlan:
    """What a `process` run will do, checked before any output is opened: the same for a local
    and a Ray run."""

    config: PipelineConfig
    specs: list[str]
    plans: list[dict[str, Path]]  # per input, output kind -> path
    shared_paths: set[Path]  # CSV paths several inputs write into
    fill_gaps: int
    skip: list[bool]  # per input: --skip-done found its outputs finished


def plan_run(args: argparse.Namespace) -> RunPlan:
    """Check the options, expand the inputs and plan their outputs (PoseAppError on a problem
    with the whole run)."""
    from pose_app.cli import config_from_args
    from pose_app.sources import expand_inputs

    config = config_from_args(args)
    _check_options(config, args)
    inputs = [*getattr(args, "inputs_before", []), *args.inputs]
    if not inputs:
        raise PoseAppError("no INPUT given: name the videos, images, folders or streams to process")
    specs = expand_inputs(inputs)
    plans = plan_outputs(specs, args)
    shared_paths = shared_csv_paths(plans)
    if args.fill_gaps and shared_paths:
        raise PoseAppError(
            "--fill-gaps rewrites each input's files when that input is done: give every input its "
            f"own CSV ({STEM_FIELD} in the path, or --out-dir) instead of one combined file"
        )
    skip = [False] * len(specs)
    if getattr(args, "skip_done", False):
        if any("json" not in plan for plan in plans):
            raise PoseAppError(
                "--skip-done recognises a finished input by its JSON (\"complete\": true): add --json "
                f"with {STEM_FIELD} in its path, or json to --formats"
            )
        if shared_paths:
            raise PoseAppError(
                "--skip-done cannot keep the skipped inputs' rows in a combined CSV: give every input "
                f"its own CSV ({STEM_FIELD} in the path, or --out-dir)"
            )
        skip = [is_done(plan) for plan in plans]
    return RunPlan(config, specs, plans, shared_paths, args.fill_gaps, skip)


def run(args: argparse.Namespace) -> int:
    run_plan = plan_run(args)
    if getattr(args, "ray", None) is not None:
        from pose_app.batch import run_with_ray

        return run_with_ray(run_plan, address=args.ray, workers=args.workers)
    return run_locally(run_plan)


def report_error(result: InputResult) -> None:
    """The one error line of an input that failed (source errors already name the input;
    others, e.g. an output's, get it prefixed)."""
    where = "" if result.spec in result.error else f"{result.spec}: "
    print(f"pose-app: error: {where}{result.error}", file=sys.stderr)


def continue_hint(run_plan: RunPlan) -> str:
    """How to continue an interrupted run, when --skip-done can."""
    if run_plan.shared_paths or any("json" not in plan for plan in run_plan.plans):
        return ""
    return "; run the same command with --skip-done to continue"


def run_locally(run_plan: RunPlan) -> int:
    """The inputs one after another in this process, on one engine."""
    from pose_app.formats import open_for_writing

    config = run_plan.config
    started = time.monotonic()
    engine = config.engine()
    config.check(engine.info.output_stride)  # before any output is opened
    print(
        f"pose-app process: preset {config.preset}, {engine.info.name} on {engine.provider_label}",
        file=sys.stderr,
    )
    results = [
        InputResult(spec, plan, skipped=skip) for spec, plan, skip in zip(run_plan.specs, run_plan.plans, run_plan.skip)
    ]
    with ExitStack() as shared, _sigterm_as_interrupt():
        # A CSV path used by several inputs is opened once here and shared (one header line).
        shared_streams = {path: shared.enter_context(open_for_writing(path)) for path in sorted(run_plan.shared_paths)}
        for result, plan in zip(results, run_plan.plans):
            if result.skipped:
                continue
            outputs = {kind: shared_streams.get(path, path) for kind, path in plan.items()}
            try:
                process_input(result.spec, outputs, config, engine, run_plan.fill_gaps, result)
            except KeyboardInterrupt:
                where = "no frame" if result.last_frame is None else f"frame {result.last_frame}"
                print(
                    f"pose-app: interrupted in {result.spec} after {where}; the outputs hold every frame "
                    "up to there (whole CSV lines; the JSON is closed with \"complete\": false)"
                    + continue_hint(run_plan),
                    file=sys.stderr,
                )
                print_summary(results[: results.index(result) + 1])
                return EXIT_INTERRUPTED
            if result.error:
                report_error(result)
    print_summary(results, time.monotonic() - started)
    return EXIT_SOME_INPUTS_FAILED if any(result.error for result in results) else 0
