"""`pose-app bench`: every preset (with the options given on top) timed per stage on a video, printed
as a table (and saved as JSON)."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pose_app.cli.options import add_old_spelling, add_pipeline_arguments, comma_list, config_from_args, positive_int
from pose_app.errors import PoseAppError
from pose_app.inference.config import PRESETS
from pose_app.io.formats import write_json_file
from pose_app.run.bench import (
    STAGES,
    SYNTHETIC_SIZE,
    BenchResult,
    bench_one,
    machine_info,
    write_synthetic_video,
)

# --stream: each preset runs plain and streaming this many times, alternately (a busy machine's
# load drifts; alternating spreads the drift over both).
STREAM_ROUNDS = 2


def format_table(results: list[BenchResult]) -> str:
    """One row per run: p50/p90 ms of each stage, frames/s, peak RSS."""
    header = ["preset", "model", "input", "mode", "full", "provider", "frames", *STAGES, "fps", "peak MiB"]
    rows = [
        [
            r.preset + (" +stream" if r.streams else ""), r.model, str(r.resolution), r.mode, f"{100 * r.full_pass_share:.0f}%", r.provider, str(r.frames),
            *(f"{r.stages[s].p50_ms:.1f}/{r.stages[s].p90_ms:.1f}" for s in STAGES),
            f"{r.fps:.1f}", "n/a" if r.peak_rss_mib is None else f"{r.peak_rss_mib:.0f}",
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in [header, *rows])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pose-app bench`."""
    parser.add_argument(
        "--source", type=Path, metavar="VIDEO",
        help="video to run on (default: a generated 640x480 clip of moving shapes)",
    )
    add_old_spelling(parser, "--video", "--source", "source", type=Path)
    parser.add_argument(
        "--presets", type=comma_list(str), default=list(PRESETS),
        help=f"comma-separated presets to run, one row each (default {','.join(PRESETS)}); "
        "the model and decoding options below apply to every row",
    )
    parser.add_argument(
        "--max-frames", type=positive_int, default=100, metavar="N",
        help="the first N frames timed per run (default 100)",
    )
    add_old_spelling(parser, "--frames", "--max-frames", "max_frames", type=positive_int)
    parser.add_argument("--json", type=Path, help="also save the results and machine info as JSON here")
    parser.add_argument(
        "--stream", action="store_true",
        help=f"also run each preset streaming (OSC with angles and a WebSocket client that never reads), "
        f"{STREAM_ROUNDS} times each way, alternately: what streaming costs and its capture-to-send latency",
    )
    add_pipeline_arguments(parser)


def stream_cost(results: list[BenchResult]) -> list[str]:
    """Per preset: median frames/s plain and streaming, the change, and the streams' totals."""
    lines = []
    for preset in dict.fromkeys(r.preset for r in results):
        plain = [r.fps for r in results if r.preset == preset and not r.streams]
        streaming = [r for r in results if r.preset == preset and r.streams]
        if not plain or not streaming:
            continue
        base, with_stream = float(np.median(plain)), float(np.median([r.fps for r in streaming]))
        lines.append(f"{preset}: {base:.1f} frames/s plain, {with_stream:.1f} streaming "
                     f"({100 * (with_stream - base) / base:+.1f} %, medians of {len(plain)} runs each)")
        lines += [f"  {line}" for line in streaming[-1].streams]
    return lines


def run(args: argparse.Namespace) -> int:
    """`pose-app bench`: every preset (with the options given on top), printed as a table (and JSON)."""
    if args.source is not None and not args.source.is_file():
        raise PoseAppError(f"video not found: {args.source}")
    unknown = [preset for preset in args.presets if preset not in PRESETS]
    if unknown:
        raise PoseAppError(f"unknown preset {unknown[0]!r} (choose from {', '.join(PRESETS)})")
    config = config_from_args(args)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        video = args.source
        if video is None:
            video = Path(scratch) / "synthetic.avi"
            write_synthetic_video(video, args.max_frames)
        for preset in args.presets:
            for streaming in (False, True) * STREAM_ROUNDS if args.stream else (False,):
                results.append(bench_one(video, config.with_preset(preset), args.max_frames, stream=streaming))
    info = machine_info()
    print(f"{info['cpu']} ({info['cpu_count']} CPUs), onnxruntime {info['onnxruntime']}")
    print(f"video: {args.source or f'synthetic {SYNTHETIC_SIZE[0]}x{SYNTHETIC_SIZE[1]}'}; stage columns: ms per frame, p50/p90")
    print(format_table(results))
    print("full: share of frames that ran the full-frame pass (the others ran on tracked crops only)")
    print("peak MiB: process peak RSS so far (ru_maxrss), so it never drops from one row to the next")
    for model, path in dict(item for r in results for item in r.int8_paths.items()).items():
        print(f"{model} runs {path}")
    if args.stream:
        print("+stream: OSC bundles with angles to a socket nobody reads and a WebSocket client that never reads;")
        print("latency: from the frame read to its message sent")
        for line in stream_cost(results):
            print(line)
    if args.json is not None:
        write_json_file(args.json, indent=2, payload={
            "machine": info,
            "video": str(args.source) if args.source else "synthetic",
            "results": [asdict(r) for r in results],
        })
        print(f"saved {args.json}")
    return 0
