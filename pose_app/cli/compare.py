"""`pose-app compare VIDEO... --presets balanced,accurate`: is a faster preset good enough on my own
footage? Each preset runs over each video; the last preset is the reference (no ground truth is
needed). Printed as one table per video, `--json` for scripts; the figures are defined in
analysis/compare.py and docs/accuracy-and-speed.md.

A preset may carry settings after colons, `PRESET:SETTING=VALUE:...` (e.g.
`balanced:crop_model=posenet-075-int8`), and `:full` runs the full-frame pass on every frame:
`--presets balanced,balanced:full` measures what tracked crops lose of what the full pass sees.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from pose_app.analysis.compare import compare
from pose_app.cli.options import add_pipeline_arguments, comma_list, config_from_args, positive_int
from pose_app.errors import PoseAppError
from pose_app.inference.config import PRESETS, SETTING_NAMES, PipelineConfig
from pose_app.inference.pipeline import open_engine
from pose_app.io.formats import check_writable, write_json_file
from pose_app.run.compare_run import run_preset

DEFAULT_PRESETS = ("balanced", "accurate")

COLUMNS = (
    ("person_frames", "person-frames", "{:d}"),
    ("leg_chain_frames", "leg-chain frames", "{:.2f}"),
    ("leg_chain_kept", "legs kept", "{:.2f}"),
    ("mean_confident_keypoints", "kp/person", "{:.1f}"),
    ("matched_share", "matched", "{:.1%}"),
    ("mean_oks", "mean OKS", "{:.3f}"),
    ("joints_lost", "joints lost", "{:.1%}"),
    ("full_pass_share", "full passes", "{:.0%}"),
    ("fps", "frames/s", "{:.0f}"),
)
# `:full` after a preset: the full-frame pass on every frame (no tracked crops in between).
FULL_PASS_VARIANT = "full"


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
    "the reference's people matched one-to-one with OKS >= 0.5; mean OKS: of those pairs; joints lost: share of the "
    "reference's confident keypoints this preset does not have on the matched person (against PRESET:full, the "
    "tracking loss); full passes: share of frames that ran the full-frame pass; frames/s: the pipeline alone "
    "(video decoding excluded)"
)


def preset_variant(spec: str, base: PipelineConfig) -> PipelineConfig:
    """The config of `PRESET[:full][:SETTING=VALUE...]` on top of `base` (the other options
    given); PoseAppError for an unknown preset or setting, or a value of the wrong type."""
    preset, *changes = spec.split(":")
    if preset not in PRESETS:
        where = f" in {spec!r}" if spec != preset else ""
        raise PoseAppError(f"unknown preset {preset!r}{where} (choose from {', '.join(PRESETS)})")
    config = base.with_preset(preset)
    values: dict[str, Any] = {}
    for change in changes:
        if change == FULL_PASS_VARIANT:
            values["redetect_interval_s"] = 0.0
            continue
        name, equals, text = change.partition("=")
        if not equals or name not in SETTING_NAMES:
            raise PoseAppError(f"{spec!r}: {change!r} is not '{FULL_PASS_VARIANT}' or SETTING=VALUE with a setting of "
                               f"{', '.join(SETTING_NAMES)}")
        values[name] = _setting_value(config, name, text, spec)
    return config.with_settings(**values) if values else config


def _setting_value(config: PipelineConfig, name: str, text: str, spec: str) -> Any:
    """`text` as the type of the setting's current value."""
    current = config.settings()[name]
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if isinstance(current, (int, float)) and not isinstance(current, bool):
            return type(current)(text)
        if isinstance(current, list):
            return tuple(float(part) for part in text.split("/"))
    except ValueError:
        raise PoseAppError(f"{spec!r}: {name}={text!r} is not a valid {type(current).__name__}") from None
    return None if text == "" and current is None else text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pose-app compare`."""
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="videos (or images, folders) to run every preset on")
    parser.add_argument(
        "--presets", type=comma_list(str), default=list(DEFAULT_PRESETS),
        help=f"comma-separated presets; the last is the reference (default {','.join(DEFAULT_PRESETS)}); "
        "the model and decoding options below apply to every one; a preset may carry settings, PRESET:SETTING=VALUE "
        "(e.g. balanced:video_crop_model=movenet-thunder), and PRESET:full runs the full-frame pass on every frame "
        "(balanced,balanced:full: what tracked crops lose)",
    )
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="only the first N frames of each video")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="also write every video's figures here")
    add_pipeline_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.preset is not None:
        raise PoseAppError("compare runs every preset of --presets (the last is the reference): use --presets, not --preset")
    config = config_from_args(args)
    configs = {preset: preset_variant(preset, config) for preset in args.presets}
    if args.json is not None:
        check_writable(args.json)  # before minutes of inference, not after
    engines = {}  # one engine per model, shared by the presets and videos that use it
    report = {}
    for video in args.videos:
        results, speeds, passes = {}, {}, {}
        for preset, preset_config in configs.items():
            key = (preset_config.model, preset_config.provider, preset_config.threads)
            if key not in engines:
                engines[key] = open_engine(preset_config)
            results[preset], speeds[preset], passes[preset] = run_preset(
                video, preset_config, engines[key], args.max_frames
            )
        figures = compare(results)
        for preset, speed in speeds.items():
            figures[preset]["fps"] = speed
            figures[preset]["full_pass_share"] = passes[preset]["full_passes"] / max(figures[preset]["frames"], 1)
            figures[preset]["turned_passes"] = passes[preset]["turned_passes"]
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
