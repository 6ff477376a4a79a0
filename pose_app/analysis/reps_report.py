"""The repetitions report of `pose-app reps --report`: per person, the angle over time with each
repetition shaded and numbered, the range of motion of each repetition (does it improve over the
session?), and a table of the repetitions with the session's mean and standard deviation.

matplotlib (the `plot` extra) draws it headless with the Agg canvas, as PNG, SVG or PDF; the
table's numbers are those of the repetitions CSV, rounded for reading (`table_rows`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pose_app.analysis.plot import DPI, FIGURE_WIDTH_IN
from pose_app.analysis.reps import RepAnalysis, side_of
from pose_app.core.angles import ANGLES
from pose_app.io.csv_tables import AngleSeries
from pose_app.io.reps_csv import RepRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOT_HEIGHT_IN = 2.6
ROW_HEIGHT_IN = 0.23
TABLE_COLUMNS = ("rep", "start s", "bottom s", "end s", "min °", "max °", "range °", "down s", "up s", "confidence")
# (RepRecord field, decimals) of each table column after the first.
_TABLE_FIELDS = (
    ("start_s", 2), ("bottom_s", 2), ("end_s", 2), ("min_deg", 1), ("max_deg", 1), ("range_deg", 1),
    ("down_s", 2), ("up_s", 2), ("confidence", 2),
)
# Moments in the video: no mean or spread over a session.
_MOMENTS = ("start_s", "bottom_s", "end_s")


def table_rows(records: list[RepRecord]) -> list[list[str]]:
    """The report's table of one person: a row per repetition, then the session's `mean` and `sd`
    (sample standard deviation) of each measure ('-' for start, bottom and end, which are moments
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
    low, high = analysis.thresholds
    moving = "falls" if analysis.direction == "down" else "rises"
    return (f"{who}: {len(analysis.reps)} repetitions of {analysis.angle.replace('_', ' ')} "
            f"(the angle {moving} and comes back; thresholds {low:.0f}° and {high:.0f}°)")


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
            axes.annotate(str(record.rep), (rep.bottom_s, rep.depth_deg), ha="center",
                          va="top" if analysis.direction == "down" else "bottom",
                          xytext=(0, -4 if analysis.direction == "down" else 4), textcoords="offset points",
                          fontsize=9, fontweight="bold", color="C3")
        spec = ANGLES[analysis.angle]
        axes.set_title(_title(series, analysis, several_sources), fontsize=10, loc="left")
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
            table_axes.text(0.5, 0.6, "no repetition found", ha="center", va="center", fontsize=10, color="0.4")
    return figure
