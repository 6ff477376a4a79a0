"""`pose-app plot`: a figure of a session for coaches and physiotherapists.

From a long keypoint CSV (angles computed as `pose-app angles` does) or an angles CSV: each chosen
angle over time per person (left and right of a joint in one panel), a table of the range of
motion (min, max, max - min) per angle and person, and optionally the trajectories of chosen
keypoints drawn over the first frame of the video (a blank canvas of the frame's size when the
video cannot be found). matplotlib (the `plot` extra) draws it headless, with the Agg canvas, as
PNG, SVG (text kept as text) or PDF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from pose_app.analysis.angles import MIN_PRESENCE, range_of_motion
from pose_app.core.angles import ANGLES
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES
from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import AngleSeries, KeypointTable
from pose_app.io.sources import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from matplotlib.figure import Figure


FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
INSTALL_HINT = 'pose-app plot needs matplotlib: pip install "pose-app[plot]"'
PANEL_HEIGHT_IN = 2.1
FIGURE_WIDTH_IN = 12.0
DPI = 110


@dataclass
class Trajectory:
    """One keypoint of one person over time: xy (T, 2) in frame pixels, NaN where it scored below
    the keypoint threshold."""

    person_id: int
    keypoint: str
    xy: np.ndarray


def parse_keypoint_names(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for name in names:
        if name not in KEYPOINT_NAMES:
            raise PoseAppError(f"--trajectory: no keypoint named {name!r}; keypoints: {', '.join(KEYPOINT_NAMES)}")
    return names


def trajectories(table: KeypointTable, keypoints: Sequence[str], source: str) -> list[Trajectory]:
    """The paths of `keypoints` of every person of `source`, in person_id order."""
    paths: dict[int, list[np.ndarray]] = {}
    for frame in table.frames:
        if frame.source == source:
            for person_id, pose in zip(frame.person_ids.tolist(), frame.keypoints):
                paths.setdefault(person_id, []).append(pose)
    result = []
    for person_id in sorted(paths):
        poses = np.stack(paths[person_id])
        for name in keypoints:
            points = poses[:, KEYPOINT_INDEX[name]]
            xy = np.where((points[:, 2:] >= MIN_KEYPOINT_SCORE), points[:, :2], np.nan)
            result.append(Trajectory(person_id, name, xy))
    return result


def first_frame(source: str, frame: int, near: Path) -> np.ndarray | None:
    """Frame number `frame` of the video (or the image) `source` as RGB, looked for as given and
    next to the CSV file (`near`); None when it cannot be found or read."""
    import cv2

    path = Path(source)
    for candidate in (path, near / path) if not path.is_absolute() else (path,):
        if not candidate.is_file():
            continue
        image = None
        if candidate.suffix.lower() in IMAGE_SUFFIXES:
            image = cv2.imread(str(candidate))
        else:
            capture = cv2.VideoCapture(str(candidate))
            try:
                if capture.isOpened():
                    if frame > 0:
                        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
                    ok, image = capture.read()
                    image = image if ok else None
            finally:
                capture.release()
        if image is not None:
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return None


def _label(series: AngleSeries, several_sources: bool) -> str:
    return f"{Path(series.source).name} #{series.person_id}" if several_sources else f"person {series.person_id}"


def _break_wraps(time_s: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A segment angle crossing +-180 jumps by about 360: put a gap there instead of a line across
    the panel."""
    jumps = np.flatnonzero(np.abs(np.diff(values)) > 180) + 1
    return np.insert(time_s, jumps, np.nan), np.insert(values, jumps, np.nan)


def _range_rows(series: list[AngleSeries], several_sources: bool) -> list[list[str]]:
    rows = []
    for name in series[0].names if series else ():
        for item in series:
            values = item.degrees[:, item.names.index(name)]
            seen = int(np.isfinite(values).sum())
            # Seen in some frames but fewer than MIN_PRESENCE: a range from too little to trust.
            thin = " ⚠" if 0 < seen < MIN_PRESENCE * len(values) else ""
            count = f"{seen}/{len(values)}{thin}"
            low, high, swept = range_of_motion(values, ANGLES[name].kind)
            numbers = [f"{value:.1f}" if np.isfinite(value) else "-" for value in (low, high, swept)]
            rows.append([name, _label(item, several_sources), *numbers, count])
    return rows


def session_figure(
    series: list[AngleSeries],
    paths: list[Trajectory] | None = None,
    background: np.ndarray | None = None,
    frame_size: tuple[int, int] | None = None,
    title: str = "",
    background_note: str = "",
    warnings: Sequence[str] = (),
) -> Figure:
    """The figure: one panel per joint or segment (left solid, right dashed; a colour per person)
    with its angles over time, the range-of-motion table, and the keypoint paths over `background`
    (RGB) or a blank canvas of `frame_size` (width, height); `warnings` (coverage_warnings: data too
    thin to trust) under the title, in red. matplotlib's Figure with the Agg canvas: no pyplot, no
    global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure


    names = series[0].names if series else ()
    groups = list(dict.fromkeys(ANGLES[name].group for name in names))
    several_sources = len({item.source for item in series}) > 1
    colours = [f"C{i % 10}" for i in range(len(series))]
    table_rows = _range_rows(series, several_sources)
    table_height = 0.5 + 0.24 * (len(table_rows) + 1)
    bottom_height = max(table_height, 4.8 if paths else 0.0)
    heights = [PANEL_HEIGHT_IN] * len(groups) + [bottom_height]
    figure = Figure(figsize=(FIGURE_WIDTH_IN, sum(heights) + 1.0), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    if warnings:
        figure.suptitle("\n".join([title] * bool(title) + [f"⚠ {line}" for line in warnings]), fontsize=11, color="C3")
    elif title:
        figure.suptitle(title, fontsize=12)
    grid = figure.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=(1.1, 1.0) if paths else (1, 1))

    times = np.concatenate([item.time_s for item in series]) if series else np.zeros(0)
    first_axes = None
    for row, group in enumerate(groups):
        axes = figure.add_subplot(grid[row, :], sharex=first_axes)
        first_axes = first_axes or axes
        members = [name for name in names if ANGLES[name].group == group]
        spec = ANGLES[members[0]]
        for item, colour in zip(series, colours):
            for name in members:
                values = item.degrees[:, item.names.index(name)]
                time_s, values = (
                    _break_wraps(item.time_s, values) if spec.kind == "segment" else (item.time_s, values)
                )
                side = "right" if name.startswith("right_") else "left" if name.startswith("left_") else ""
                label = ", ".join(part for part in (side, _label(item, several_sources)) if part)
                axes.plot(
                    time_s, values, color=colour, linestyle="--" if side == "right" else "-",
                    marker=".", markersize=3, linewidth=1.3, label=label,
                )
        kind = "joint angle" if spec.kind == "joint" else "segment vs horizontal, counter-clockwise +"
        axes.set_title(f"{group.replace('_', ' ')}: {kind} ({spec.description})", fontsize=10, loc="left")
        axes.set_ylabel("degrees")
        axes.grid(True, alpha=0.3)
        if spec.kind == "joint":
            axes.set_ylim(-5, 185)
            axes.set_yticks([0, 45, 90, 135, 180])
        if row == len(groups) - 1:
            axes.set_xlabel("time (s)")
        if len(times) and times.max() > times.min():
            axes.set_xlim(times.min(), times.max())
        if any(np.isfinite(line.get_ydata()).any() for line in axes.lines):
            axes.legend(fontsize=8, loc="best", ncols=min(4, len(axes.lines)))
        else:
            axes.text(
                0.5, 0.5, f"never seen: no frame has all of its keypoints scored {MIN_KEYPOINT_SCORE} or more",
                transform=axes.transAxes, ha="center", va="center", fontsize=9, color="0.4",
            )

    if paths:
        axes = figure.add_subplot(grid[-1, 0])
        width, height = frame_size or (640, 480)
        if background is not None:
            height, width = background.shape[:2]
            axes.imshow(background, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        else:
            axes.set_facecolor("white")
        keypoint_colours = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(p.keypoint for p in paths))}
        for path in paths:
            colour = keypoint_colours[path.keypoint]
            axes.plot(path.xy[:, 0], path.xy[:, 1], color=colour, linewidth=1.6)
            seen = np.flatnonzero(np.isfinite(path.xy[:, 0]))
            if len(seen):
                start, end = path.xy[seen[0]], path.xy[seen[-1]]
                axes.plot(*start, "o", color=colour, markersize=5, markeredgecolor="white")
                axes.plot(*end, "s", color=colour, markersize=5, markeredgecolor="white")
                if len({p.person_id for p in paths}) > 1:
                    axes.annotate(f"#{path.person_id}", end, fontsize=8, color=colour, xytext=(3, 3), textcoords="offset points")
        for name, colour in keypoint_colours.items():
            axes.plot([], [], color=colour, label=name)
        axes.legend(fontsize=8, loc="lower right")
        axes.set_xlim(-0.5, width - 0.5)
        axes.set_ylim(height - 0.5, -0.5)
        axes.set_aspect("equal")
        axes.set_title(f"keypoint paths (o start, \u25a1 end){background_note}", fontsize=10, loc="left")
        axes.tick_params(labelsize=8)

    table_axes = figure.add_subplot(grid[-1, 1] if paths else grid[-1, :])
    table_axes.axis("off")
    table_axes.set_title("range of motion, degrees (segments: the arc swept, min counter-\nclockwise to max); frames: with the angle / all", fontsize=10, loc="left")
    if table_rows:
        table = table_axes.table(
            cellText=table_rows, colLabels=["angle", "person", "min", "max", "max - min", "frames"],
            loc="upper center", cellLoc="right", colLoc="right",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8.5)
        table.scale(1, 1.25)
        table.auto_set_column_width(list(range(6)))
    return figure


