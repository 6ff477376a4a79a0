"""The repetitions report of `pose-app reps --report`: per person, the angle over time with each
repetition shaded and numbered, the range of motion of each repetition (does it improve over the
session?), and a table of the repetitions with the session's mean and standard deviation. And
the holds report of `pose-app holds --report`: the body line and the other watched angles with
each hold shaded, and a table of the holds.

matplotlib (the `plot` extra) draws it headless with the Agg canvas, as PNG, SVG or PDF; the
table's numbers are those of the repetitions CSV, rounded for reading (`table_rows`).
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np

from pose_app.analysis.angles import counted
from pose_app.analysis.holds import HoldAnalysis, hold_notes
from pose_app.analysis.plot import DPI, FIGURE_WIDTH_IN
from pose_app.analysis.rep_choice import side_of
from pose_app.analysis.reps import RepAnalysis
from pose_app.core.angles import ANGLES
from pose_app.io.csv_tables import AngleSeries
from pose_app.io.holds_csv import HoldRecord
from pose_app.io.reps_csv import RepRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOT_HEIGHT_IN = 2.6
TITLE_CHARACTERS = 120  # a line of the plot's title at its font size, within the plot's width
ROW_HEIGHT_IN = 0.23
TABLE_COLUMNS = ("rep", "start s", "turn s", "end s", "rest °", "turn °", "range °", "out s", "back s", "confidence")
# (RepRecord field, decimals) of each table column after the first.
_TABLE_FIELDS = (
    ("start_s", 2), ("turn_s", 2), ("end_s", 2), ("rest_deg", 1), ("turn_deg", 1), ("range_deg", 1),
    ("out_s", 2), ("back_s", 2), ("confidence", 2),
)
# Moments in the video: no mean or spread over a session.
_MOMENTS = ("start_s", "turn_s", "end_s")


def table_rows(records: list[RepRecord]) -> list[list[str]]:
    """The report's table of one person: a row per repetition, then the session's `mean` and `sd`
    (sample standard deviation) of each measure ('-' for start, turn and end, which are moments
    in the video, and for the sd of a single repetition)."""
    rows = [[str(record.rep)] + [f"{getattr(record, name):.{decimals}f}" for name, decimals in _TABLE_FIELDS]
            for record in records]
    if records:
        values = np.array([[getattr(record, name) for name, _ in _TABLE_FIELDS] for record in records], np.float64)
        spread = values.std(axis=0, ddof=1) if len(records) > 1 else np.full(len(_TABLE_FIELDS), np.nan)
        for label, numbers in (("mean", values.mean(axis=0)), ("sd", spread)):
            rows.append([label] + [
                f"{v:.{d}f}" if np.isfinite(v) and name not in _MOMENTS else "-"
                for v, (name, d) in zip(numbers, _TABLE_FIELDS)
            ])
    return rows


def _title(series: AngleSeries, analysis: RepAnalysis, several_sources: bool) -> str:
    who = f"{series.source} person {series.person_id}" if several_sources else f"person {series.person_id}"
    title = f"{who}: {counted(len(analysis.reps), 'repetition')} of {analysis.angle.replace('_', ' ')}"
    if analysis.rest_reason:
        low, high = analysis.thresholds
        moving = "falls" if analysis.direction == "down" else "rises"
        title += (f" (the angle {moving} from its rest level, {analysis.rest_reason}, and comes back; "
                  f"thresholds {low:.0f}° and {high:.0f}°)")
    return title


def _explanation(analysis: RepAnalysis) -> tuple[str, str]:
    """The line under the title (why this angle, or the warning when the data is too thin)."""
    if analysis.note:
        return f"⚠ {analysis.note}", "C3"
    return (f"counted on {analysis.choice}", "black") if analysis.choice else ("", "black")


def reps_figure(results: list[tuple[AngleSeries, RepAnalysis, list[RepRecord]]], title: str = "") -> Figure:
    """The report: for each (series, analysis, its CSV rows), the raw and smoothed angle with the
    repetitions shaded and numbered at their turning point, the range of each repetition as bars,
    and the table (`table_rows`). matplotlib's Figure with the Agg canvas: no pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tables = [table_rows(records) for _, _, records in results]
    heights = []
    for rows in tables:
        heights += [PLOT_HEIGHT_IN, 0.45 + ROW_HEIGHT_IN * (len(rows) + 1)]
    figure = Figure(figsize=(FIGURE_WIDTH_IN, sum(heights) + 0.8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title, fontsize=12)
    grid = figure.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=(3.2, 1.0))
    several_sources = len({series.source for series, _, _ in results}) > 1
    for number, ((series, analysis, records), rows) in enumerate(zip(results, tables)):
        axes = figure.add_subplot(grid[2 * number, 0])
        column = series.names.index(analysis.angle)
        axes.plot(series.time_s, series.degrees[:, column], ".", color="0.65", markersize=2.5, label="as detected")
        axes.plot(analysis.times, analysis.smoothed, color="C0", linewidth=1.5, label="smoothed")
        for value in analysis.thresholds:
            if np.isfinite(value):
                axes.axhline(value, color="0.4", linestyle=":", linewidth=1)
        for rep, record in zip(analysis.reps, records):
            axes.axvspan(rep.start_s, rep.end_s, color="C1", alpha=0.18, linewidth=0)
            axes.annotate(str(record.rep), (rep.turn_s, rep.turn_deg), ha="center",
                          va="top" if analysis.direction == "down" else "bottom",
                          xytext=(0, -4 if analysis.direction == "down" else 4), textcoords="offset points",
                          fontsize=9, fontweight="bold", color="C3")
        spec = ANGLES[analysis.angle]
        line, colour = _explanation(analysis)
        # Wrapped to the plot's width: one long line ran into the bars' title beside it.
        text = "\n".join(textwrap.wrap(_title(series, analysis, several_sources), TITLE_CHARACTERS)
                         + textwrap.wrap(line, TITLE_CHARACTERS))
        axes.set_title(text, fontsize=10, loc="left", color=colour)
        axes.set_ylabel(f"{analysis.angle} (°)" if spec.kind == "joint" else f"{analysis.angle} (° vs horizontal)")
        axes.set_xlabel("time (s)")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8, loc="best")

        bars = figure.add_subplot(grid[2 * number, 1])
        if records:
            bars.bar([r.rep for r in records], [r.range_deg for r in records], color="C1")
            bars.set_xticks([r.rep for r in records])
        bars.set_title("range of each repetition (°)", fontsize=10, loc="left")
        bars.set_xlabel("repetition")
        bars.grid(True, axis="y", alpha=0.3)

        table_axes = figure.add_subplot(grid[2 * number + 1, :])
        table_axes.axis("off")
        side = side_of(analysis.angle)
        table_axes.set_title(
            f"repetitions of person {series.person_id}{f' ({side} side)' if side else ''}: times in seconds of the video, "
            "angles in degrees; confidence = mean lowest keypoint score",
            fontsize=9, loc="left",
        )
        if rows:
            table = table_axes.table(cellText=rows, colLabels=list(TABLE_COLUMNS), loc="upper center",
                                     cellLoc="right", colLoc="right")
            table.auto_set_font_size(False)
            table.set_fontsize(8.5)
            table.scale(1, 1.2)
        else:
            table_axes.text(0.5, 0.6, "no repetition counted", ha="center", va="center", fontsize=10, color="0.4")
    return figure


HOLD_TABLE_COLUMNS = ("hold", "start s", "end s", "duration s", "held s", "breaks", "break s", "body line °", "sd °",
                      "lowest °", "seen")


def hold_table_rows(records: list[HoldRecord]) -> list[list[str]]:
    """The holds report's table of one person: a row per hold ('-' for a body line never seen)."""

    def degrees(value: float) -> str:
        return f"{value:.1f}" if np.isfinite(value) else "-"

    return [[str(r.hold), f"{r.start_s:.2f}", f"{r.end_s:.2f}", f"{r.duration_s:.2f}", f"{r.held_s:.2f}", str(r.breaks),
             f"{r.break_s:.2f}", degrees(r.body_line_mean_deg), degrees(r.body_line_sd_deg), degrees(r.body_line_min_deg),
             f"{r.body_line_seen:.0%}"] for r in records]


def holds_figure(results: list[tuple[AngleSeries, HoldAnalysis, list[HoldRecord]]], title: str = "") -> Figure:
    """The holds report: for each (series, analysis, its CSV rows), the watched joint angles and the
    body line over time with each hold shaded and numbered (its breaks hatched), and the table
    (`hold_table_rows`). matplotlib's Figure with the Agg canvas: no pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tables = [hold_table_rows(records) for _, _, records in results]
    heights = []
    for rows in tables:
        heights += [PLOT_HEIGHT_IN, 0.45 + ROW_HEIGHT_IN * (max(len(rows), 1) + 1)]
    figure = Figure(figsize=(FIGURE_WIDTH_IN, sum(heights) + 0.8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title, fontsize=12)
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    several_sources = len({series.source for series, _, _ in results}) > 1
    for number, ((series, analysis, records), rows) in enumerate(zip(results, tables)):
        axes = figure.add_subplot(grid[2 * number])
        for name in analysis.angles:
            if name.endswith("body_line"):
                continue
            column = series.names.index(name)
            axes.plot(series.time_s, series.degrees[:, column], color="0.7", linewidth=0.8)
        axes.plot([], [], color="0.7", linewidth=0.8, label="the other watched angles")
        axes.plot(analysis.times, analysis.body_line, color="C0", linewidth=1.8,
                  label=f"body line ({analysis.body_line_side}: shoulder-hip-ankle)")
        for hold, record in zip(analysis.holds, records):
            axes.axvspan(hold.start_s, hold.end_s, color="C2", alpha=0.18, linewidth=0)
            for start, end in hold.breaks:
                axes.axvspan(start, end, facecolor="none", edgecolor="C3", hatch="//", linewidth=0)
            axes.annotate(str(record.hold), ((hold.start_s + hold.end_s) / 2, 1.0), xycoords=("data", "axes fraction"),
                          ha="center", va="top", fontsize=9, fontweight="bold", color="C2")
        who = f"{series.source} person {series.person_id}" if several_sources else f"person {series.person_id}"
        heading = f"{who}: {counted(len(analysis.holds), 'hold')} (shaded; breaks hatched)"
        warnings = [analysis.note] if analysis.note else []
        warnings += [f"hold {r.hold}: {text}" for hold, r in zip(analysis.holds, records) for text in hold_notes(hold)]
        if warnings:
            heading += "\n⚠ " + "; ".join(warnings)
        axes.set_title(heading, fontsize=10, loc="left", color="C3" if warnings else "black")
        axes.set_ylabel("joint angle (°)")
        axes.set_xlabel("time (s)")
        axes.set_ylim(0, 185)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8, loc="lower left", framealpha=0.9)

        table_axes = figure.add_subplot(grid[2 * number + 1])
        table_axes.axis("off")
        table_axes.set_title(f"holds of person {series.person_id}: times in seconds of the video; body line = "
                             "shoulder-hip-ankle angle, 180° = straight; seen = share of the hold it was measured in",
                             fontsize=9, loc="left")
        if rows:
            table = table_axes.table(cellText=rows, colLabels=list(HOLD_TABLE_COLUMNS), loc="upper center",
                                     cellLoc="right", colLoc="right")
            table.auto_set_font_size(False)
            table.set_fontsize(8.5)
            table.scale(1, 1.2)
        else:
            table_axes.text(0.5, 0.6, "no hold found", ha="center", va="center", fontsize=10, color="0.4")
    return figure
