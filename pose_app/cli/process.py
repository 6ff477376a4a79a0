"""`pose-app process`: detect poses in videos, images, folders, globs or streams and write
long/wide CSV, JSON, angles and annotated video, with a progress bar and a per-input summary.

The options become a checked `RunPlan` (run/plan.py), run here one input after another
(run/local.py) or with `--ray` in Ray workers (run/ray_batch.py). `--skip-done` skips inputs
whose outputs are finished."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pose_app.cli.options import (
    add_pipeline_arguments,
    config_from_args,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from pose_app.cli.stream_options import add_stream_arguments, stream_config_from_args
from pose_app.errors import PoseAppError
from pose_app.inference.config import PipelineConfig
from pose_app.io.sources import expand_inputs
from pose_app.run.local import run_locally
from pose_app.run.outputs import OUTPUT_KINDS
from pose_app.run.plan import (
    DEFAULT_FORMATS,
    STEM_FIELD,
    RunPlan,
    input_identities,
    is_done,
    plan_outputs,
    shared_csv_paths,
)
from pose_app.run.ray_batch import run_with_ray

# `--ray ADDRESS`: a value that looks like none of these is an input that followed --ray.
RAY_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.-]+:\d+)$")


def _format_list(separator: str) -> str:
    """The --formats items: csv, wide-csv, ..."""
    return separator.join(kind.format_name for kind in OUTPUT_KINDS.values())


def _formats(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().replace("-", "_") for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in OUTPUT_KINDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(unknown) or text!r}; choose from {_format_list(', ')}"
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
    for kind in OUTPUT_KINDS.values():  # one option per output kind (run/outputs.py)
        out.add_argument(kind.option, metavar="PATH", help=kind.help)
    out.add_argument(
        "--height-m", type=positive_float, metavar="METRES",
        help="the person's height: write --trc in metres, scaled by each person's height in pixels",
    )
    out.add_argument(
        "--out-dir", metavar="DIR",
        help="write <stem>.csv, <stem>.wide.csv, <stem>.json, <stem>.annotated.mp4 per input here (created if missing)",
    )
    out.add_argument(
        "--formats", type=_formats, default=DEFAULT_FORMATS, metavar="LIST",
        help=f"with --out-dir: which of {_format_list(',')} to write (default: {','.join(DEFAULT_FORMATS)})",
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
        "needs a JSON per input), so an interrupted run continues with the inputs it had not finished; an "
        "interrupted input is processed again from its first frame (its files replaced)",
    )
    add_stream_arguments(parser)
    add_pipeline_arguments(parser)


def _requested_templates(args: argparse.Namespace, streaming: bool = False) -> dict[str, str]:
    """Output kind -> path template ({stem} allowed), from --out-dir or the path options (none
    needed while `streaming`)."""
    explicit = {kind: getattr(args, kind) for kind in OUTPUT_KINDS if getattr(args, kind)}
    if args.out_dir is None:
        if not explicit and not streaming:
            options = ", ".join(kind.option for kind in OUTPUT_KINDS.values())
            raise PoseAppError(f"nothing to write: give {options} or --out-dir (or stream with --osc, --ws)")
        return explicit
    if explicit:
        raise PoseAppError("use either --out-dir or the path options (--csv, --json, ...), not both")
    out_dir = Path(args.out_dir).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PoseAppError(f"cannot create output folder {out_dir}: {error.strerror}") from None
    return {kind: str(out_dir / OUTPUT_KINDS[kind].file_name) for kind in args.formats}


def _check_options(config: PipelineConfig, args: argparse.Namespace) -> None:
    """Refuse option combinations that make no sense (PoseAppError, before any file is opened)."""
    if config.end_s is not None and config.end_s <= config.start_s:
        raise PoseAppError(f"--end ({config.end_s:g} s) must be after --start ({config.start_s:g} s)")
    if args.fill_gaps and not config.track:
        raise PoseAppError("--fill-gaps interpolates along a person's track: it cannot be used with --no-track")
    if getattr(args, "height_m", None) is not None and not getattr(args, "trc", None) and "trc" not in (
        args.formats if args.out_dir else ()
    ):
        raise PoseAppError("--height-m sets the units of the TRC file: use it with --trc (or trc in --formats)")
    if getattr(args, "workers", None) is not None and getattr(args, "ray", None) is None:
        raise PoseAppError("--workers sets how many inputs Ray runs at a time: use it with --ray")


def plan_run(args: argparse.Namespace) -> RunPlan:
    """Check the options, expand the inputs and plan their outputs (PoseAppError on a problem
    with the whole run)."""
    config = config_from_args(args)
    _check_options(config, args)
    stream = stream_config_from_args(args)
    if stream.enabled and getattr(args, "ray", None) is not None:
        raise PoseAppError("--osc and --ws stream one live run: they cannot be used with --ray")
    inputs = [*getattr(args, "inputs_before", []), *args.inputs]
    if not inputs:
        raise PoseAppError("no INPUT given: name the videos, images, folders or streams to process")
    specs = expand_inputs(inputs)
    input_files = input_identities(specs)
    plans = plan_outputs(
        specs, _requested_templates(args, stream.enabled), in_out_dir=args.out_dir is not None, inputs=input_files,
    )
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
    return RunPlan(
        config, specs, plans, shared_paths, args.fill_gaps, skip, getattr(args, "height_m", None),
        stream=stream, max_speed=args.max_speed, inputs=input_files,
    )


def run(args: argparse.Namespace) -> int:
    run_plan = plan_run(args)
    if getattr(args, "ray", None) is not None:
        return run_with_ray(run_plan, address=args.ray, workers=args.workers)
    return run_locally(run_plan)
