"""`pose-app compare VIDEO... --presets balanced,accurate`: is a faster preset good enough on my own
footage? Each preset runs over each video; the last preset is the reference (no ground truth is
needed). Printed as one table per video, `--json` for scripts; the figures are defined in
analysis/compare.py and docs/accuracy-and-speed.md."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from pose_app.analysis.compare import compare, run_preset
from pose_app.cli.options import add_pipeline_arguments, comma_list, config_from_args, positive_int
from pose_app.errors import PoseAppError
from pose_app.inference.config import PRESETS
from pose_app.inference.pipeline import open_engine
from pose_app.io.formats import check_writable, write_json_file

DEFAULT_PRESETS = ("balanced", "accurate")

COLUMNS = (
    ("person_frames", "person-frames", "{:d}"),
    ("leg_chain_frames", "leg-chain frames", "{:.2f}"),
    ("leg_chain_kept", "legs kept", "{:.2f}"),
    ("mean_confident_keypoints", "kp/person", "{:.1f}"),
    ("matched_share", "matched", "{:.1%}"),
    ("mean_oks", "mean OKS", "{:.3f}"),
    ("fps", "frames/s", "{:.0f}"),
)


def format_table(clip: str, figures: dict[str, dict[str, float | int]]) -> str:
    """One row per preset: the figures of COLUMNS; n/a where a share has nothing to count."""
    reference = list(figures)[-1]
    lines = [f"{clip} ({list(figures.values())[-1]['frames']} frames; reference: {reference})"]
    header = ["preset"] + [title for _, title, _ in COLUMNS]
    rows = [[name] + [_cell(values.get(key), fmt) for key, _, fmt in COLUMNS]
            for name, values in figures.items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _cell(value: float | int | None, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return fmt.format(value)


LEGEND = (
    "person-frames: poses found over all frames; leg-chain frames: share of the reference's frames with someone "
    "in which someone has hip, knee and ankle of one side all >= 0.3; legs kept: share of the reference's people "
    "with a full leg chain whose matched pose has one too; kp/person: keypoints >= 0.3 per pose; matched: share of "
    "the reference's people matched one-to-one with OKS >= 0.5; mean OKS: of those pairs; frames/s: the pipeline "
    "alone (video decoding excluded)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pose-app compare`."""
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="videos (or images, folders) to run every preset on")
    parser.add_argument(
        "--presets", type=comma_list(str), default=list(DEFAULT_PRESETS),
        help=f"comma-separated presets; the last is the reference (default {','.join(DEFAULT_PRESETS)}); "
        "the model and decoding options below apply to every one",
    )
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="only the first N frames of each video")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="also write every video's figures here")
    add_pipeline_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.preset is not None:
        raise PoseAppError("compare runs every preset of --presets (the last is the reference): use --presets, not --preset")
    unknown = [preset for preset in args.presets if preset not in PRESETS]
    if unknown:
        raise PoseAppError(f"unknown preset {unknown[0]!r} (choose from {', '.join(PRESETS)})")
    if args.json is not None:
        check_writable(args.json)  # before minutes of inference, not after
    config = config_from_args(args)
    configs = {preset: config.with_preset(preset) for preset in args.presets}
    engines = {}  # one engine per model, shared by the presets and videos that use it
    report = {}
    for video in args.videos:
        results, speeds = {}, {}
        for preset, preset_config in configs.items():
            key = (preset_config.model, preset_config.provider, preset_config.threads)
            if key not in engines:
                engines[key] = open_engine(preset_config)
            results[preset], speeds[preset] = run_preset(video, preset_config, engines[key], args.max_frames)
        figures = compare(results)
        for preset, speed in speeds.items():
            figures[preset]["fps"] = speed
        # JSON has no NaN: a share with nothing to count is null.
        report[str(video)] = {
            preset: {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in values.items()}
            for preset, values in figures.items()
        }
        print(format_table(str(video), figures), flush=True)
        print()
    print(LEGEND)
    if args.json is not None:
        write_json_file(args.json, {"presets": list(args.presets), "reference": args.presets[-1], "videos": report}, indent=2)
        print(f"saved {args.json}")
    return 0
