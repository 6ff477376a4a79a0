"""`pose-app holds`: the holds of an isometric exercise (plank, side plank, wall sit, bridge,
single-leg stance) in a long keypoint CSV, as a holds CSV (one row per hold) and optionally a
report figure; the rules are analysis/holds.py's and docs/reps.md's ("Holds")."""

from __future__ import annotations

import argparse
from pathlib import Path

from pose_app.analysis.angles import counted
from pose_app.analysis.holds import HoldSettings, hold_notes, hold_records, session_holds
from pose_app.analysis.plot import FIGURE_SUFFIXES
from pose_app.analysis.reps_report import DPI, holds_figure
from pose_app.cli.options import (
    add_dropout_arguments,
    add_keypoint_table_arguments,
    check_output_file,
    non_negative_float,
    positive_float,
    save_figure,
)
from pose_app.cli.reps import REPORT_INSTALL_HINT
from pose_app.errors import optional_module
from pose_app.io.csv_tables import read_keypoint_csv
from pose_app.io.holds_csv import write_holds_csv
from pose_app.io.output_files import identities


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = HoldSettings()
    add_keypoint_table_arguments(parser, "HOLDS.csv", "holds CSV to write (one row per hold)",
                                 "also draw the report: the body line with each hold shaded, and a table")
    rules = parser.add_argument_group("how holds are found (docs/reps.md)")
    rules.add_argument("--min-hold", type=non_negative_float, default=defaults.min_hold_s, metavar="SECONDS",
                       help=f"shortest hold (default {defaults.min_hold_s:g})")
    rules.add_argument("--tolerance", type=positive_float, default=defaults.tolerance_deg, metavar="DEGREES",
                       help=f"how far a joint angle may move within a second and still be holding (default {defaults.tolerance_deg:g})")
    rules.add_argument("--max-break", type=non_negative_float, default=defaults.max_break_s, metavar="SECONDS",
                       help=f"longest time out of position (or out of view) inside one hold (default {defaults.max_break_s:g})")
    add_dropout_arguments(rules, defaults)


def _describe(hold) -> str:
    text = f"{hold.start_s:.2f}-{hold.end_s:.2f} s, held {hold.held_s:.1f} s"
    if hold.breaks:
        text += f" ({counted(len(hold.breaks), 'break')}, {hold.break_s:.1f} s)"
    line = hold.body_line
    if line.side:
        text += f", body line {line.mean_deg:.0f} ± {line.sd_deg:.0f}° (lowest {line.min_deg:.0f}°, {line.side} side)"
    return text


def run(args: argparse.Namespace) -> int:
    source, out = Path(args.keypoints), Path(args.out)
    report = Path(args.report) if args.report else None
    inputs = identities([source])
    check_output_file(out, "--out", inputs=inputs)
    if report is not None:
        check_output_file(report, "--report", FIGURE_SUFFIXES, inputs)
        optional_module("matplotlib", REPORT_INSTALL_HINT.replace("reps", "holds"))
    settings = HoldSettings(min_hold_s=args.min_hold, tolerance_deg=args.tolerance, max_break_s=args.max_break,
                            max_gap_s=args.max_gap, min_confidence=args.min_confidence)
    table = read_keypoint_csv(source)  # before the outputs are opened: a bad input leaves them as they were
    results, notes = session_holds(table, args.person, settings, skip_unusable=args.person is None)
    rows = [(series, analysis, hold_records(series, analysis)) for series, analysis in results]
    if report is not None:
        save_figure(holds_figure(rows, title=f"{source.name}: holds"), report, DPI, inputs)
    write_holds_csv([record for _, _, records in rows for record in records], out, inputs)
    for note in notes:
        print(f"pose-app holds: {note}")
    for series, analysis, _ in rows:
        print(f"pose-app holds: person {series.person_id}: {counted(len(analysis.holds), 'hold')}"
              + (f" of at least {settings.min_hold_s:g} s" if not analysis.holds else ""))
        for number, hold in enumerate(analysis.holds, start=1):
            print(f"pose-app holds:   {number}: {_describe(hold)}")
            for warning in hold_notes(hold):
                print(f"pose-app holds: warning: person {series.person_id}, hold {number}: {warning}")
        if analysis.note:
            print(f"pose-app holds: warning: person {series.person_id}: {analysis.note}")
    print(f"pose-app holds: -> {out}" + (f", {report}" if report else ""))
    return 0
