"""`pose-app plot`: angles over time, range of motion and keypoint trajectories of a keypoint or
angles CSV as a PNG, SVG or PDF figure (needs matplotlib: the `plot` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pose_app.analysis.angles import angle_series, coverage_warnings
from pose_app.analysis.plot import (
    DPI,
    FIGURE_SUFFIXES,
    INSTALL_HINT,
    first_frame,
    parse_keypoint_names,
    session_figure,
    trajectories,
)
from pose_app.cli.options import add_old_spelling, check_output_file, save_figure
from pose_app.core.angles import JOINT_ANGLES, parse_angle_names
from pose_app.errors import PoseAppError, optional_module
from pose_app.io.csv_tables import read_angle_csv, read_csv_kind, read_keypoint_csv
from pose_app.io.output_files import identities


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input", metavar="KEYPOINTS.csv|ANGLES.csv",
        help="long keypoint CSV (`pose-app process --csv`) or angles CSV (`pose-app angles`)",
    )
    parser.add_argument("--out", required=True, metavar="FIGURE.png|.svg", help="figure to write: .png, .svg or .pdf")
    parser.add_argument(
        "--angle-names", metavar="NAME,...",
        help="angles to plot (default: the joint angles, left_/right_ elbow, shoulder, hip, knee); "
        "names as for `pose-app angles`, or all, joints, segments",
    )
    add_old_spelling(parser, "--angles", "--angle-names", "angle_names", metavar="NAME,...")
    parser.add_argument("--person", type=int, metavar="ID", help="only this person_id (default: everyone)")
    parser.add_argument(
        "--trajectory", metavar="KEYPOINT,...",
        help="also draw these keypoints' paths (e.g. nose,left_wrist) over the video's first frame; keypoint CSV only",
    )


def run(args: argparse.Namespace) -> int:
    out, source = Path(args.out), Path(args.input)
    inputs = identities([source])
    check_output_file(out, "--out", FIGURE_SUFFIXES, inputs)
    names = parse_angle_names(args.angle_names, default=JOINT_ANGLES)
    keypoints = parse_keypoint_names(args.trajectory)
    optional_module("matplotlib", INSTALL_HINT)

    kind = read_csv_kind(source)
    table = None
    if kind == "keypoints":
        table = read_keypoint_csv(source)
        series = angle_series(table, names)
    else:
        if keypoints:
            raise PoseAppError(f"--trajectory needs a keypoint CSV; {source} holds angles only")
        series = read_angle_csv(source, names)
    if args.person is not None:
        present = sorted({item.person_id for item in series})
        series = [item for item in series if item.person_id == args.person]
        if not series:
            raise PoseAppError(f"{source} has no person_id {args.person} (it has {', '.join(map(str, present)) or 'nobody'})")
    if not series:
        raise PoseAppError(f"{source} holds no poses: nothing to plot")

    paths, background, frame_size, note = None, None, None, ""
    if keypoints and table is not None:
        first = next(frame for frame in table.frames if args.person is None or args.person in frame.person_ids)
        paths = trajectories(table, keypoints, first.source)
        if args.person is not None:
            paths = [path for path in paths if path.person_id == args.person]
        background = first_frame(first.source, first.frame, source.resolve().parent)
        frame_size = table.frame_sizes.get(first.source)
        if frame_size is None:  # no normalised columns: the smallest frame holding every point
            points = np.concatenate([path.xy for path in paths])
            finite = points[np.isfinite(points).all(axis=1)]
            frame_size = tuple(int(v) + 1 for v in finite.max(axis=0)) if len(finite) else (640, 480)
        if background is None:
            note = f"; {Path(first.source).name} not found: blank {frame_size[0]}x{frame_size[1]} canvas"
        else:
            note = f" over frame {first.frame} of {Path(first.source).name}"
        if len(table.sources) > 1:
            note += " (first source only)"

    title = f"{source.name}: " + ", ".join(sorted({Path(item.source).name for item in series}))
    warnings = coverage_warnings(table if table is not None else series, series)
    save_figure(session_figure(series, paths, background, frame_size, title, note, warnings), out, DPI, inputs)
    for line in warnings:
        print(f"pose-app plot: warning: {line}")
    print(f"pose-app plot: {len(series)} series, {len(names)} angles -> {out}")
    return 0
