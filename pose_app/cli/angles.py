"""`pose-app angles`: joint and segment angles of an existing long keypoint CSV, as a long angles CSV.

Old runs can be analysed without running the network again. The rows are those of
`pose_app.io.angle_csv.angle_rows`, frame by frame, in order of source (first appearance), frame,
person_id and angle; conventions in docs/angles.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pose_app.analysis.angles import angle_series, coverage_warnings
from pose_app.cli.options import add_old_spelling, check_output_file
from pose_app.core.angles import parse_angle_names
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.io.angle_csv import write_angle_csv
from pose_app.io.csv_tables import read_keypoint_csv
from pose_app.io.output_files import identities


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("keypoints", metavar="KEYPOINTS.csv", help="long keypoint CSV written by `pose-app process --csv` or the app's recording")
    parser.add_argument("--out", required=True, metavar="ANGLES.csv", help="angles CSV to write (one row per angle)")
    parser.add_argument(
        "--angle-names", metavar="NAME,...",
        help="angles to compute, in this order (default all): joint angles left_/right_ elbow, shoulder, "
        "hip, knee; segment angles trunk, shoulder_line, hip_line, left_/right_ upper_arm, forearm, "
        "thigh, shank; or the sets all, joints, segments",
    )
    add_old_spelling(parser, "--angles", "--angle-names", "angle_names", metavar="NAME,...")


def run(args: argparse.Namespace) -> int:
    names = parse_angle_names(args.angle_names)
    source, out = Path(args.keypoints), Path(args.out)
    inputs = identities([source])
    check_output_file(out, "--out", inputs=inputs)
    table = read_keypoint_csv(source)  # before the output is opened: a bad input leaves it as it was
    writer = write_angle_csv(table, out, names, inputs)  # written whole: a failure leaves no half file
    people = len({(frame.source, int(pid)) for frame in table.frames for pid in frame.person_ids})
    print(
        f"pose-app angles: {len(table.frames)} frames, {people} people, {len(names)} angles -> "
        f"{writer.rows} rows ({writer.missing} missing: a keypoint scored below {MIN_KEYPOINT_SCORE}) in {out}"
    )
    for line in coverage_warnings(table, angle_series(table, names)):
        print(f"pose-app angles: warning: {line}")
    return 0
