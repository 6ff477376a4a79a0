"""`pose-app reps`: the repetitions of an exercise in a long keypoint CSV, as a repetitions CSV
(one row per repetition) and optionally a report figure; the rules are analysis/reps.py's and
docs/reps.md's."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from pose_app.analysis.angles import counted
from pose_app.analysis.plot import FIGURE_SUFFIXES
from pose_app.analysis.rep_choice import rep_records, session_reps
from pose_app.analysis.reps import DIRECTIONS, RepSettings
from pose_app.analysis.reps_report import DPI, reps_figure
from pose_app.cli.options import (
    add_dropout_arguments,
    add_keypoint_table_arguments,
    check_output_file,
    non_negative_float,
    save_figure,
)
from pose_app.errors import optional_module
from pose_app.io.csv_tables import read_keypoint_csv
from pose_app.io.output_files import identities
from pose_app.io.reps_csv import write_reps_csv

REPORT_INSTALL_HINT = 'pose-app reps --report needs matplotlib: pip install "pose-app[plot]"'


def _thresholds(text: str) -> tuple[float, float]:
    try:
        low, high = sorted(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in degrees (e.g. 110,150), got {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low == high:
        raise argparse.ArgumentTypeError(f"expected two different finite angles, got {text!r}")
    return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = RepSettings()
    add_keypoint_table_arguments(parser, "REPS.csv", "repetitions CSV to write (one row per repetition)",
                                 "also draw the report: the angle with each repetition shaded, and a table")
    parser.add_argument(
        "--angle", metavar="NAME",
        help="the angle to count on: knee, hip, elbow, shoulder, body_line (the side that moves more clearly), or one angle "
        "such as left_knee or trunk (default: per person, of the joint angles present in at least half of the frames, "
        "the one that moves most regularly; a segment angle when no joint moves)",
    )
    rules = parser.add_argument_group("how repetitions are found (docs/reps.md)")
    rules.add_argument(
        "--thresholds", type=_thresholds, metavar="LOW,HIGH",
        help="degrees the angle must pass on its way out and back (default: automatic, from the angle's range)",
    )
    rules.add_argument("--direction", choices=DIRECTIONS, default=defaults.direction,
                       help="down: the angle falls from its rest level during a repetition (a squat's knee), up: it rises "
                       "(a sit-to-stand's knee, a raise); default auto: the rest level is where the angle starts and ends, "
                       "or stays longest")
    rules.add_argument("--min-duration", type=non_negative_float, default=defaults.min_duration_s, metavar="SECONDS",
                       help=f"shortest repetition (default {defaults.min_duration_s})")
    rules.add_argument("--min-range", type=non_negative_float, default=defaults.min_amplitude_deg, metavar="DEGREES",
                       help=f"smallest range of motion of a repetition (default {defaults.min_amplitude_deg:g})")
    rules.add_argument("--smooth", type=non_negative_float, default=defaults.smooth_s, metavar="SECONDS",
                       help=f"Savitzky-Golay window (default {defaults.smooth_s}; 0: none)")
    add_dropout_arguments(rules, defaults)


def _mean(values: list[float], decimals: int = 0) -> str:
    spread = f" ± {np.std(values, ddof=1):.{decimals}f}" if len(values) > 1 else ""
    return f"{np.mean(values):.{decimals}f}{spread}"


def _summary(analysis, records: list) -> str:
    """One line: the count, the rest level and why, the turning points and ranges."""
    text = counted(len(records), "repetition")
    if not records:
        return text
    moving = "falling" if analysis.direction == "down" else "rising"
    return (f"{text}, {moving} from a rest at {_mean([r.rest_deg for r in records])}° ({analysis.rest_reason}) "
            f"to {_mean([r.turn_deg for r in records])}°, range {_mean([r.range_deg for r in records], 1)}°")


def run(args: argparse.Namespace) -> int:
    source, out = Path(args.keypoints), Path(args.out)
    report = Path(args.report) if args.report else None
    inputs = identities([source])
    check_output_file(out, "--out", inputs=inputs)
    if report is not None:
        check_output_file(report, "--report", FIGURE_SUFFIXES, inputs)
        optional_module("matplotlib", REPORT_INSTALL_HINT)
    settings = RepSettings(
        smooth_s=args.smooth, thresholds=args.thresholds, direction=args.direction, min_duration_s=args.min_duration,
        min_amplitude_deg=args.min_range, min_confidence=args.min_confidence, max_gap_s=args.max_gap,
    )
    table = read_keypoint_csv(source)  # before the outputs are opened: a bad input leaves them as they were
    results, notes = session_reps(table, args.angle, args.person, settings, skip_unusable=args.person is None)
    rows = [(series, analysis, rep_records(series, analysis)) for series, analysis in results]
    if report is not None:
        save_figure(reps_figure(rows, title=f"{source.name}: repetitions"), report, DPI, inputs)
    write_reps_csv([record for _, _, records in rows for record in records], out, inputs)
    for note in notes:
        print(f"pose-app reps: {note}")
    for series, analysis, records in rows:
        print(f"pose-app reps: person {series.person_id}, {analysis.angle}: {_summary(analysis, records)}")
        if analysis.choice:
            print(f"pose-app reps:   counted on {analysis.choice}")
        if analysis.note:
            print(f"pose-app reps: warning: person {series.person_id}: {analysis.note}")
    print(f"pose-app reps: -> {out}" + (f", {report}" if report else ""))
    return 0
